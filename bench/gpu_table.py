#!/usr/bin/env python3
"""Merges the JSON files `bench/gpu.sh` wrote into one (`gpu.json` in the same folder) and prints
the table: tokens/s, MFU against the GPU's dense peak for the dtype, peak memory, and each Hearth
row's ratio to PyTorch eager (bf16 eager for half-precision rows, f32 eager for f32 rows; bf16
eager when the f32 one was not measured). Rows that did not run say why (from their log).

    python3 bench/gpu_table.py bench/results/gpu-YYYYMMDD-HHMM
"""
import json
import pathlib
import sys

ROWS = [
    ("hearth-vulkan-f32", "Hearth wgpu · Vulkan SPIR-V · f32 · burn's attention"),
    ("hearth-vulkan-bf16", "Hearth wgpu · Vulkan SPIR-V · bf16 · burn's attention"),
    ("hearth-webgpu-f32-fused", "Hearth wgpu · WGSL · f32 · fused attention"),
    ("hearth-webgpu-f32-composed", "Hearth wgpu · WGSL · f32 · attention composed"),
    ("hearth-webgpu-f16-fused", "Hearth wgpu · WGSL · f16 · fused attention"),
    ("hearth-cuda-bf16", "Hearth cuda · bf16 · burn's attention"),
    ("pytorch-eager-bf16", "PyTorch eager · bf16 · SDPA"),
    ("pytorch-compile-bf16", "PyTorch torch.compile · bf16"),
    ("pytorch-eager-f32", "PyTorch eager · f32 · SDPA"),
]


def load(folder, name):
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def why(folder, name):
    log = folder / f"{name}.log"
    if not log.exists():
        return "not run"
    lines = [l for l in log.read_text().splitlines() if l.strip()]
    return lines[-1][:90] if lines else "no output"


def main():
    folder = pathlib.Path(sys.argv[1])
    rows = {name: load(folder, name) for name, _ in ROWS}
    eager = {"f32": rows.get("pytorch-eager-f32"), "half": rows.get("pytorch-eager-bf16")}
    out = {"rows": [], "attention": load(folder, "attention"), "parity": {}, "adapters": load(folder, "adapters")}
    for b in ("vulkan", "webgpu"):
        out["parity"][b] = load(folder, f"parity-{b}")
    smi = folder / "nvidia-smi.txt"
    out["gpu"] = smi.read_text().strip() if smi.exists() else None
    print(f"{'run':<52} {'tokens/s':>10} {'MFU':>7} {'peak MiB':>9} {'vs eager':>9}")
    for name, label in ROWS:
        r = rows[name]
        if r is None:
            print(f"{label:<52} {'—':>10}   {why(folder, name)}")
            out["rows"].append({"name": name, "label": label, "ran": False, "why": why(folder, name)})
            continue
        precision = r.get("precision") or ("bf16" if "bf16" in name else "f32")
        asked = next((p for p in ("bf16", "f16", "f32") if p in name), precision)
        if precision != asked:
            label = f"{label} (ran {precision}: no {asked} here)"
        ref = eager["f32"] if precision == "f32" and eager["f32"] else eager["half"] or eager["f32"]
        ratio = r["tokens_per_s"] / ref["tokens_per_s"] if ref and name.startswith("hearth") else None
        mfu = r.get("mfu")
        mem = r.get("peak_memory_bytes")
        print(
            f"{label:<52} {r['tokens_per_s']:>10.0f} {('%.1f%%' % (100 * mfu)) if mfu else 'n/a':>7} "
            f"{(mem / 2**20) if mem else float('nan'):>9.0f} {('%.2fx' % ratio) if ratio else '':>9}"
        )
        extra = {k: r.get(k) for k in ("kernel_launches_per_step", "host_reads_per_step", "bytes_uploaded_per_step", "device")}
        out["rows"].append({"name": name, "label": label, "ran": True, "precision": precision,
                            "tokens_per_s": r["tokens_per_s"], "mfu": mfu, "peak_tflops": r.get("peak_tflops"),
                            "peak_memory_bytes": mem, "ratio_to_pytorch_eager": ratio,
                            "step_ms_median": r.get("step_ms_median"), "loss_last": r.get("loss_last"), **extra})
    att = out["attention"]
    if att:
        print("\nattention (causal, fused WGSL vs burn's composition, forward + backward):")
        for row in att["rows"]:
            c = row.get("composed")
            print(f"  T={row['seq']:>5}  fused {row['fused']['ms']:.1f} ms {row['fused']['peak_bytes'] / 2**20:.0f} MiB"
                  + (f"  composed {c['ms']:.1f} ms {c['peak_bytes'] / 2**20:.0f} MiB" if c else "  composed —"))
    for b, p in out["parity"].items():
        if p:
            print(f"parity {b} vs flex: logits {p['logits_max_rel']:.2e}, loss {p['loss_rel']:.2e} "
                  f"({'PASS' if p['passed'] else 'FAIL'})")
        else:
            print(f"parity {b} vs flex: {why(folder, 'parity-' + b)}")
    (folder / "gpu.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {folder / 'gpu.json'}")


if __name__ == "__main__":
    main()
