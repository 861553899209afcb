#!/usr/bin/env bash
# Builds the browser demo into www/: the wasm module and its JS bindings (www/pkg/) and the bundled
# corpora (www/corpus/). Then serve www/ with any static server, e.g.
#   python3 -m http.server --directory www --bind 127.0.0.1 8080   →  http://127.0.0.1:8080
#
#   web/build.sh                  a quick build while working on the page (the release profile:
#                                 40 MB, 6.5 MB gzip; ~2 min after a change here)
#   web/build.sh --optimize-size  the module to serve, and the one .ci/run tests: the `web` profile
#                                 (opt-level z, fat LTO, one codegen unit) then binaryen's wasm-opt
#                                 -Oz until it converges: 11.8 MB, 3.4 MB gzip (one -Oz pass left
#                                 12.04 MB; from nothing ~13 CPU-min of rustc, wasm-bindgen-cli
#                                 included, then ~8 min of wasm-opt on one core; its output is cached)
set -euo pipefail
cd "$(dirname "$0")/.."
optimize=false
for arg in "$@"; do
  case "$arg" in
    --optimize-size) optimize=true ;;
    *) echo "unknown option $arg (web/build.sh [--optimize-size])" >&2; exit 2 ;;
  esac
done

# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock.
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version (once; a few minutes on 2 cores)"
  # Only the wasm-bindgen binary, without TLS (the test runner's webdriver downloads need it, this
  # build does not): no rustls/ring to compile. Not --locked: its lock names a yanked webpki-roots.
  cargo install wasm-bindgen-cli --version "$version" --no-default-features --bin wasm-bindgen
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# The release profile, as everywhere in the workspace (one build cache), or the size-optimised `web`
# profile (Cargo.toml) for serving; getrandom's wasm_js backend is chosen by crate features
# (core/Cargo.toml), so no RUSTFLAGS are needed.
profile=release
if $optimize; then profile=web; fi
cargo build --profile "$profile" --target wasm32-unknown-unknown -p hearth-web
wasm="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$profile/hearth_web.wasm"
wasm-bindgen --target web --no-typescript --out-dir www/pkg "$wasm"
if $optimize; then
  # npm's binaryen 132, pinned (Debian's wasm-opt 108 produces a module that fails to load). The
  # features are those rustc's wasm32 target emits, with simd128 (.cargo/config.toml). Its output is
  # kept beside the build cache under the input's hash: an unchanged module is not optimised twice.
  cache="${CARGO_TARGET_DIR:-target}/wasm-opt"
  key=$(sha256sum www/pkg/hearth_web_bg.wasm | cut -c1-32)
  if [ ! -f "$cache/$key.wasm" ]; then
    mkdir -p "$cache"
    npm exec --yes --package=binaryen@132.0.0 -- wasm-opt -Oz --converge --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
      www/pkg/hearth_web_bg.wasm -o "$cache/$key.wasm.part"
    mv "$cache/$key.wasm.part" "$cache/$key.wasm"
  fi
  cp "$cache/$key.wasm" www/pkg/hearth_web_bg.wasm
fi

# Which build this is, for the browser test (it holds the served one to the size limits).
echo "{\"profile\": \"$profile\"}" > www/pkg/build.json

mkdir -p www/corpus
cp data/pride_and_prejudice.txt data/persuasion_sample.txt www/corpus/
echo "built www/pkg/hearth_web_bg.wasm ($(du -h www/pkg/hearth_web_bg.wasm | cut -f1)); serve www/ and open it"
