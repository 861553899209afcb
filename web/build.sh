#!/usr/bin/env bash
# Builds the browser demo into www/: the wasm module and its JS bindings (www/pkg/) and the bundled
# corpora (www/corpus/). Then serve www/ with any static server, e.g.
#   python3 -m http.server --directory www --bind 127.0.0.1 8080   →  http://127.0.0.1:8080
set -euo pipefail
cd "$(dirname "$0")/.."

# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock.
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version (once; 2-15 min on 2 cores)"
  cargo install wasm-bindgen-cli --version "$version" # not --locked: its lock names a yanked webpki-roots
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# The release profile, as everywhere in the workspace (one build cache); getrandom's wasm_js
# backend is chosen by crate features (core/Cargo.toml), so no RUSTFLAGS are needed.
cargo build --release --target wasm32-unknown-unknown -p hearth-web
wasm="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/hearth_web.wasm"
wasm-bindgen --target web --no-typescript --out-dir www/pkg "$wasm"

mkdir -p www/corpus
cp data/pride_and_prejudice.txt data/persuasion_sample.txt www/corpus/
echo "built www/pkg/hearth_web_bg.wasm ($(du -h www/pkg/hearth_web_bg.wasm | cut -f1)); serve www/ and open it"
