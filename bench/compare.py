#!/usr/bin/env python3
"""Hearth against PyTorch, alternately, on the same machine and at the same CPU thread count:
`hearth --threads T bench train` and `bench/pytorch_reference.py --threads T` run in turn for
several rounds (so that a change in the machine's load hits both), for the tiny GPT and the 10M
GPT; prints the median tokens/s of each and the median of the per-round ratios Hearth / PyTorch.
Without PyTorch it says so and prints Hearth's numbers alone.

    python3 bench/compare.py                       # 5 rounds, flex, 1 thread
    python3 bench/compare.py --rounds 3 --threads 1,2 --json compare.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, preset, batch, seq, warm-up steps, timed steps
MODELS = {
    "tiny": ("gpt-bench-tiny", 8, 64, 5, 30),
    "10m": ("gpt-10m", 8, 128, 2, 5),
}


def run_json(cmd):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        out = subprocess.run(cmd + ["--json", path], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--models", default="tiny,10m", help="comma-separated: " + ",".join(MODELS))
    p.add_argument("--backend", default="flex")
    p.add_argument("--threads", default="1", help="CPU thread counts, comma-separated (e.g. 1,2): each runs both")
    p.add_argument("--hearth", default=os.path.join(ROOT, "target", "release", "hearth"),
                   help="the hearth binary (default: target/release/hearth; $CARGO_TARGET_DIR is honoured)")
    p.add_argument("--json", help="write every measurement and the summary here")
    a = p.parse_args()
    if "CARGO_TARGET_DIR" in os.environ and a.hearth == p.get_default("hearth"):
        a.hearth = os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "hearth")
    if not os.path.exists(a.hearth):
        sys.exit(f"compare.py: no hearth binary at {a.hearth}; cargo build --release --workspace first")
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("compare.py: PyTorch is not installed (see README, 'Speed'); measuring Hearth alone")
    threads = [int(t) for t in a.threads.split(",")]
    ref = [sys.executable, os.path.join(ROOT, "bench", "pytorch_reference.py")]

    results = {}
    for name in a.models.split(","):
        preset, batch, seq, warmup, steps = MODELS[name]
        shape = ["--preset", preset, "--batch-size", str(batch), "--seq", str(seq),
                 "--warmup", str(warmup), "--steps", str(steps)]
        rows = {**{f"hearth-{t}t": [] for t in threads}, **{f"pytorch-{t}t": [] for t in threads if have_torch}}
        for r in range(a.rounds):
            line = f"{name} round {r + 1}/{a.rounds}:"
            for t in threads:
                h = run_json([a.hearth, "--threads", str(t), "bench", "train", "--backend", a.backend] + shape)
                rows[f"hearth-{t}t"].append(h)
                line += f" hearth {t}t {h['tokens_per_s']:.0f}"
                if have_torch:
                    pt = run_json(ref + shape + ["--threads", str(t)])
                    rows[f"pytorch-{t}t"].append(pt)
                    line += f", pytorch {t}t {pt['tokens_per_s']:.0f};"
            print(line + " tok/s", flush=True)
        results[name] = rows

    print()
    header = f"{'model':<7} {'params':>8} {'batch×seq':>10}"
    for t in threads:
        header += f" {f'hearth {t}t':>10}" + (f" {f'torch {t}t':>10} {'ratio':>6}" if have_torch else "")
    print(header + f"   (hearth on {a.backend}; tokens/s, medians of the rounds; ratio = median of hearth/pytorch per round)")
    summary = {}
    for name, rows in results.items():
        first = rows[f"hearth-{threads[0]}t"][0]
        line = f"{name:<7} {first['params'] / 1e6:>7.2f}M {first['batch_size']:>4}×{first['seq']:<5}"
        summary[name] = {}
        for t in threads:
            h = [m["tokens_per_s"] for m in rows[f"hearth-{t}t"]]
            line += f" {statistics.median(h):>10.0f}"
            summary[name][f"hearth_{t}t_tokens_per_s"] = statistics.median(h)
            if have_torch:
                pt = [m["tokens_per_s"] for m in rows[f"pytorch-{t}t"]]
                ratio = statistics.median(x / y for x, y in zip(h, pt))
                line += f" {statistics.median(pt):>10.0f} {ratio:>6.2f}"
                summary[name][f"pytorch_{t}t_tokens_per_s"] = statistics.median(pt)
                summary[name][f"ratio_{t}t"] = ratio
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summary, "runs": results}, f, indent=2)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
