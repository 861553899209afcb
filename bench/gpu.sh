#!/usr/bin/env bash
# GPT-2 124M at seq 1024 on a GPU: `hearth bench train` on wgpu (Vulkan), then the PyTorch
# reference on CUDA when PyTorch sees one; prints both. Run from anywhere:
#   bench/gpu.sh                      # batch 8, 2 warm-up + 5 timed steps
#   BATCH=4 STEPS=10 bench/gpu.sh     # PEAK_TFLOPS=67 sets the MFU peak when the GPU is not known
set -euo pipefail

cd "$(dirname "$0")/.."
BATCH="${BATCH:-8}"
SEQ="${SEQ:-1024}"
WARMUP="${WARMUP:-2}"
STEPS="${STEPS:-5}"
OUT="${OUT:-bench-gpu}"
mkdir -p "$OUT"

peak=()
if [ -n "${PEAK_TFLOPS:-}" ]; then
    peak=(--peak-tflops "$PEAK_TFLOPS")
fi
shape=(--preset gpt2-124m --batch-size "$BATCH" --seq "$SEQ" --warmup "$WARMUP" --steps "$STEPS")

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

cargo build --release --workspace
target="${CARGO_TARGET_DIR:-target}"

echo "== hearth, wgpu"
"$target/release/hearth" bench train --backend wgpu "${shape[@]}" "${peak[@]}" --json "$OUT/hearth-wgpu.json"

echo "== pytorch"
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    python3 bench/pytorch_reference.py --device cuda "${shape[@]}" "${peak[@]}" --json "$OUT/pytorch-cuda.json"
else
    echo "PyTorch with CUDA is not available here (pip install torch); hearth's numbers stand alone"
fi
echo "JSON in $OUT/"
