#!/usr/bin/env bash
# The GPU table in one go, on a bare GPU machine (bench/GPU.md says how to prepare it):
#   bench/gpu.sh            GPT-2 124M, seq 1024, batch 8: Hearth on Vulkan (SPIR-V and WGSL, f32 and
#                           half precision, fused attention on and off), on CUDA (bf16), PyTorch eager
#                           (SDPA) and torch.compile in bf16; `hearth bench attention` at T = 1024…8192;
#                           the 124M model on the GPU against flex. One JSON, one table, within $BUDGET s.
#   bench/gpu.sh --smoke    the same script on this machine's software Vulkan (lavapipe), tiny preset.
# It needs no network and no build: the hearth binary comes from $HEARTH_BIN, bench/gpu-bundle/hearth.xz
# (made by bench/gpu_pack.sh), or target/release/hearth; the Vulkan loader from the system or from the
# .deb files in .gl/ or bench/gpu-bundle/debs/.
set -uo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
start=$(date +%s)
if [ $smoke = 1 ]; then
    BUDGET="${BUDGET:-280}"
    OUT="${OUT:-$(mktemp -d /tmp/hearth-gpu-smoke.XXXX)}"
    shape=(--preset gpt-bench-tiny --batch-size 4 --seq 64 --warmup 1 --steps 2)
    torch_shape=(--preset gpt-bench-tiny --batch-size 4 --seq 64 --warmup 1 --steps 2)
    attention_seq=64,128
    parity=(--preset gpt-bench-tiny --batch-size 2 --seq 64)
    per_run=90
else
    BUDGET="${BUDGET:-480}"
    OUT="${OUT:-bench/results/gpu-$(date -u +%Y%m%d-%H%M)}"
    shape=(--preset gpt2-124m --batch-size 8 --seq 1024 --warmup 2 --steps 5)
    torch_shape=(--preset gpt2-124m --batch-size 8 --seq 1024 --warmup 2 --steps 5)
    attention_seq=1024,2048,4096,8192
    parity=(--preset gpt2-124m --batch-size 2 --seq 1024)
    per_run=150
fi
mkdir -p "$OUT"
say() { printf '== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }
left() { echo $(( BUDGET - ($(date +%s) - start) )); }

# 1. The binary.
bin="${HEARTH_BIN:-}"
if [ -z "$bin" ] && [ -f bench/gpu-bundle/hearth.xz ]; then
    bin=/tmp/hearth-gpu
    xz -dc bench/gpu-bundle/hearth.xz > "$bin" && chmod +x "$bin" || { echo "gpu.sh: cannot unpack bench/gpu-bundle/hearth.xz"; exit 2; }
fi
if [ -z "$bin" ]; then
    bin="${CARGO_TARGET_DIR:-target}/release/hearth"
fi
[ -x "$bin" ] || { echo "gpu.sh: no hearth binary ($bin): run bench/gpu_pack.sh on the build machine first (bench/GPU.md)"; exit 2; }

# 2. The Vulkan loader (a bare machine may lack it), and the NVIDIA driver's ICD where the loader
#    does not find it by itself.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
    debs=$(ls .gl/*.deb bench/gpu-bundle/debs/*.deb 2>/dev/null)
    [ -n "$debs" ] || { echo "gpu.sh: no Vulkan loader (libvulkan.so.1) and no .deb to install it from; see bench/GPU.md"; exit 2; }
    for f in $debs; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES="$icd" __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# NVRTC (which compiles burn's CUDA kernels): the CUDA toolkit's when there is one, else the wheel
# PyTorch brought (nvidia-cuda-nvrtc); `--backend cuda` names it when it is missing.
if ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc.so'; then
    nvrtc=$(python3 -c 'import nvidia.cuda_nvrtc as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null || true)
    [ -d "$nvrtc" ] && export LD_LIBRARY_PATH="$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# 3. The adapter: a real run needs the NVIDIA GPU on Vulkan, and says so in seconds otherwise.
say "adapters"
if [ $smoke = 1 ]; then
    timeout 60 "$bin" bench adapters --json "$OUT/adapters.json" || { echo "gpu.sh: no Vulkan adapter at all"; exit 2; }
else
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/nvidia-smi.txt"
    timeout 60 "$bin" bench adapters --require NVIDIA --json "$OUT/adapters.json" || exit 2
fi

# 4. The runs, each with its own time limit, skipped (and said so) when the budget is spent.
status=0
run() { # name, command...
    local name=$1; shift
    local t; t=$(left); [ "$t" -gt "$per_run" ] && t=$per_run
    if [ "$t" -lt 20 ]; then echo "skipped: the budget ($BUDGET s) is spent" > "$OUT/$name.log"; say "$name: skipped (budget)"; return; fi
    say "$name"
    timeout "$t" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        echo "exit $rc$([ $rc = 124 ] && echo " (over its ${t}s limit)")" >> "$OUT/$name.log"
        tail -3 "$OUT/$name.log" | sed 's/^/    /'
    fi
}
bench=("$bin" bench train "${shape[@]}")
run hearth-vulkan-f32            "${bench[@]}" --backend vulkan --json "$OUT/hearth-vulkan-f32.json"
run hearth-vulkan-bf16           "${bench[@]}" --backend vulkan --precision bf16 --json "$OUT/hearth-vulkan-bf16.json"
run hearth-webgpu-f32-fused      "${bench[@]}" --backend webgpu --json "$OUT/hearth-webgpu-f32-fused.json"
run hearth-webgpu-f32-composed   "${bench[@]}" --backend webgpu --fused-attention false --json "$OUT/hearth-webgpu-f32-composed.json"
run hearth-webgpu-f16-fused      "${bench[@]}" --backend webgpu --precision f16 --json "$OUT/hearth-webgpu-f16-fused.json"
if "$bin" bench adapters 2>/dev/null | grep -q '^cuda *built in' && [ $smoke = 0 ]; then
    run hearth-cuda-bf16         "${bench[@]}" --backend cuda --precision bf16 --json "$OUT/hearth-cuda-bf16.json"
else
    echo "skipped: $([ $smoke = 1 ] && echo 'no CUDA here (smoke run)' || echo 'this hearth was built without --features cuda')" > "$OUT/hearth-cuda-bf16.log"
fi
if python3 -c 'import torch' 2>/dev/null; then
    if [ $smoke = 1 ]; then
        run pytorch-eager-f32    python3 bench/pytorch_reference.py "${torch_shape[@]}" --threads 2 --json "$OUT/pytorch-eager-f32.json"
    else
        run pytorch-eager-bf16   python3 bench/pytorch_reference.py --device cuda --dtype bf16 "${torch_shape[@]}" --json "$OUT/pytorch-eager-bf16.json"
        run pytorch-compile-bf16 python3 bench/pytorch_reference.py --device cuda --dtype bf16 --compile "${torch_shape[@]}" --json "$OUT/pytorch-compile-bf16.json"
        run pytorch-eager-f32    python3 bench/pytorch_reference.py --device cuda "${torch_shape[@]}" --json "$OUT/pytorch-eager-f32.json"
    fi
else
    echo "skipped: no PyTorch here" > "$OUT/pytorch-eager-f32.log"
fi
run attention "$bin" bench attention --causal --seq "$attention_seq" --json "$OUT/attention.json"
run parity-vulkan "$bin" bench parity "${parity[@]}" --backend vulkan --json "$OUT/parity-vulkan.json"
run parity-webgpu "$bin" bench parity "${parity[@]}" --backend webgpu --json "$OUT/parity-webgpu.json"

# 5. One JSON and one table.
say "table"
python3 bench/gpu_table.py "$OUT" || status=1
say "done: $OUT"
exit $status
