#!/usr/bin/env bash
# Prepares what bench/gpu.sh needs on a bare GPU machine that reaches no registry: the release
# binary with the `cuda` feature, stripped and xz-compressed (bench/gpu-bundle/hearth.xz), and the
# Vulkan loader as Debian packages for amd64 (.gl/*.deb). Both are git-ignored: name them in the
# device tool's `carry` (bench/GPU.md). Run on the build machine:
#   bench/gpu_pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
if ! cargo build --release -p hearth --features cuda; then
  # cubecl-cuda 0.11 builds cubecl-llvm, whose build script downloads LLVM: a machine that reaches
  # only the package registries cannot build it. The binary then measures Vulkan and WGSL only.
  echo "gpu_pack: --features cuda did not build (see above); packing the binary without CUDA" >&2
  cargo build --release -p hearth
fi
mkdir -p bench/gpu-bundle
strip -o bench/gpu-bundle/hearth "$target/release/hearth"
xz -T0 -9 -f bench/gpu-bundle/hearth
ls -l bench/gpu-bundle/hearth.xz
# The loader and its friends, as the device tool's README says (amd64, whatever this machine is).
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
ls -l .gl
grep -qxF '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
echo "carry: .gl and bench/gpu-bundle; run: bench/gpu.sh"
