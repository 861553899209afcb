#!/usr/bin/env python3
"""Hearth's LLaMA against transformers' on the same tokens: the default recipe (`hearth train`'s
defaults: batch 16 × 128, 600 AdamW steps, lr 3e-3 → 3e-4 with 40 warm-up steps, weight decay 0.1
on matrices, global-norm clipping at 1) on `llama-tiny`, once by `hearth train` and once by
transformers' `LlamaForCausalLM` in PyTorch, both reading the token shards one `hearth prepare`
wrote. Prints both validation curves (the same validation windows, evaluated as Hearth does: the
first `eval_batches` batches of consecutive windows) and the final ratio; `--json` writes them.

    pip install torch transformers numpy
    cargo build --release -p hearth
    python3 bench/llama_curve.py [--steps 600] [--threads 2] [--json llama_curve.json]
"""
import argparse
import glob
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import torch
import transformers

from pytorch_reference import schedule  # Hearth's warm-up + cosine, beside this script

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def shards(folder, split):
    files = sorted(glob.glob(os.path.join(folder, f"{split}-*.bin")))
    meta = json.load(open(os.path.join(folder, "meta.json")))
    dtype = np.uint32 if meta.get("vocab_size", 0) > 65535 else np.uint16
    return np.concatenate([np.fromfile(f, dtype=dtype) for f in files]).astype(np.int64)


def evaluate(model, val, block, batch, batches):
    """Mean loss per target over the first `batches` batches of consecutive windows, as Hearth
    evaluates (no more batches than the validation split holds)."""
    batches = min(batches, len(val) // block // batch)
    model.eval()
    total, targets = 0.0, 0
    with torch.no_grad():
        for b in range(batches):
            rows = [val[(b * batch + i) * block:(b * batch + i + 1) * block] for i in range(batch)]
            ids = torch.tensor(np.stack(rows))
            loss = model(input_ids=ids, labels=ids).loss.item()
            n = batch * (block - 1)
            total += loss * n
            targets += n
    model.train()
    return total / targets


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearth", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "hearth"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", help="keep the run folders here")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = a.work or tempfile.mkdtemp(prefix="hearth-llama-curve-")
    os.makedirs(work, exist_ok=True)
    corpus = os.path.join(ROOT, "data", "pride_and_prejudice.txt")
    run = lambda *args: subprocess.run([a.hearth, "--threads", str(a.threads), *args], check=True, stdout=subprocess.DEVNULL)
    tok, data, out = os.path.join(work, "tokenizer.json"), os.path.join(work, "data"), os.path.join(work, "hearth")
    if not os.path.exists(os.path.join(data, "meta.json")):
        run("tokenizer", "train", corpus, "--kind", "bpe", "--vocab-size", "1024", "-o", tok)
        run("prepare", corpus, "-t", tok, "-o", data)
    batch, block, eval_every, eval_batches = 16, 128, 100, 8
    t0 = time.time()
    run("train", "--preset", "llama-tiny", "--backend", "flex", "--data", data, "--out-dir", out, "--overwrite",
        "--max-steps", str(a.steps), "--zero-shot", "[]", "--eval-every", str(eval_every))
    hearth_s = time.time() - t0
    hearth_curve = {r["step"]: r["val_loss"] for r in map(json.loads, open(os.path.join(out, "metrics.jsonl"))) if "val_loss" in r}
    ckpt = sorted(glob.glob(os.path.join(out, "step-*")))[-1]

    # The same model (Hearth's config.json, transformers' own init), optimizer and schedule.
    train, val = shards(data, "train"), shards(data, "val")
    config = transformers.AutoConfig.from_pretrained(ckpt)
    torch.manual_seed(1337)
    model = transformers.LlamaForCausalLM(config)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.99), eps=1e-8)
    rng = np.random.default_rng(1337)
    windows = len(train) // block
    order = rng.permutation(windows)
    torch_curve, t0 = {}, time.time()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = schedule(step, 3e-3, 3e-4, 40, a.steps)
        picks = [order[(step * batch + i) % windows] for i in range(batch)]
        ids = torch.tensor(np.stack([train[w * block:(w + 1) * block] for w in picks]))
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % eval_every == 0 or step + 1 == a.steps:
            torch_curve[step + 1] = evaluate(model, val, block, batch, eval_batches)
    torch_s = time.time() - t0

    print(f"llama-tiny ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters), {a.steps} steps × {batch}·{block} tokens, "
          f"transformers {transformers.__version__}, torch {torch.__version__}, {a.threads} threads")
    print(f"{'step':>6} {'hearth val':>11} {'transformers val':>17}")
    for step in sorted(torch_curve):
        h = hearth_curve.get(step)
        print(f"{step:>6} {h if h is None else round(h, 4)!s:>11} {torch_curve[step]:>17.4f}")
    last = max(torch_curve)
    ratio = hearth_curve[last] / torch_curve[last]
    print(f"final held-out loss: hearth {hearth_curve[last]:.4f}, transformers {torch_curve[last]:.4f}: ratio {ratio:.4f} "
          f"({abs(ratio - 1) * 100:.2f}% apart); wall {hearth_s:.0f} s vs {torch_s:.0f} s")
    if a.json:
        json.dump({"hearth": hearth_curve, "transformers": torch_curve, "ratio": ratio, "hearth_s": hearth_s,
                   "transformers_s": torch_s, "steps": a.steps}, open(a.json, "w"), indent=2)
    return 0 if abs(ratio - 1) <= 0.02 else 1


if __name__ == "__main__":
    raise SystemExit(main())
