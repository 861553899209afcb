#!/usr/bin/env python3
"""The PyTorch side of `hearth bench train`: the same GPT-2, batch, sequence length and optimizer
step, printing the same fields (and the same JSON keys with --json).

The model is HF's GPT-2 written nanoGPT-style: learned positions, pre-LN blocks, fused qkv
projection, `F.scaled_dot_product_attention(is_causal=True)`, GELU with the tanh approximation
(`gelu_new`, what Hearth's GPT-2 uses, as HF's config says), LayerNorm eps 1e-5, the LM head tied
to the token embedding, no dropout, HF's init (normal 0.02, residual projections / sqrt(2 L)).
The step is Hearth's: causal LM loss over positions 1..T (HF's shift), backward, clipping by the
global gradient norm, AdamW (weight decay on matrices and embeddings only), the learning rate of
Hearth's warm-up + cosine schedule, the loss and the gradient norm read every step. Random
tokens, uniform over the vocabulary. FLOPs per token: 6 N + 12 n_layer seq d_model, with N the
parameters without the position table (nanoGPT / PaLM), as `hearth bench train` counts them.
"""

import argparse
import json
import math
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("pytorch_reference.py: PyTorch is not installed (pip install torch); nothing to measure", file=sys.stderr)
    sys.exit(3)

# Hearth's presets (core/src/models/presets.rs).
PRESETS = {
    "gpt-bench-tiny": dict(vocab_size=512, n_positions=256, n_embd=128, n_layer=2, n_head=4),
    "gpt-10m": dict(vocab_size=8192, n_positions=256, n_embd=320, n_layer=6, n_head=5),
    "gpt-tiny": dict(vocab_size=1024, n_positions=128, n_embd=128, n_layer=4, n_head=4),
    "gpt2-124m": dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),
}

# Dense peaks, TFLOP/s, by device name: (name, FP32 without tensor cores, bf16/f16 tensor cores);
# the same table as Hearth's (native/src/commands/bench/train.rs).
KNOWN_PEAKS = [
    ("H200", 67.0, 989.4), ("H100 PCIe", 51.2, 756.0), ("H100", 67.0, 989.4), ("A100", 19.5, 312.0),
    ("L40S", 91.6, 362.1), ("L4", 30.3, 121.0), ("A10", 31.2, 125.0), ("T4", 8.1, 65.0), ("V100", 15.7, 125.0),
    ("RTX 4090", 82.6, 165.2), ("RTX 3090", 35.6, 71.0), ("MI300X", 163.4, 1307.4),
]


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab_size, n_positions, n_embd, n_layer, n_head):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p) if "ln" in name and name.endswith("weight") else nn.init.zeros_(p)
            else:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied head
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))


def schedule(step, lr, min_lr, warmup, total):
    """Hearth's warm-up + cosine (core/src/train/schedule.rs)."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step >= total:
        return min_lr
    progress = (step - warmup) / max(total - warmup, 1)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt-bench-tiny", choices=sorted(PRESETS))
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--n-embd", type=int)
    p.add_argument("--n-layer", type=int)
    p.add_argument("--n-head", type=int)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU); default: PyTorch's own")
    p.add_argument("--peak-tflops", type=float)
    p.add_argument("--json")
    p.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"],
                   help="f32, or mixed precision: the forward under torch.autocast in bf16/f16, f32 master weights")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (its compile time is in the warm-up)")
    # Hearth's TrainConfig defaults (core/src/train/config.rs).
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--min-lr", type=float, default=3e-4)
    p.add_argument("--lr-warmup", type=int, default=40)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1337)
    a = p.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = dict(PRESETS[a.preset])
    for k in ("vocab_size", "n_embd", "n_layer", "n_head"):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    if a.seq > cfg["n_positions"]:
        cfg["n_positions"] = a.seq
    dev = torch.device(a.device)
    model = GPT(**cfg).to(dev)
    decay = [q for q in model.parameters() if q.dim() >= 2]
    no_decay = [q for q in model.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps,
    )
    total = a.warmup + a.steps
    tokens_per_step = a.batch_size * a.seq
    gen = torch.Generator().manual_seed(a.seed)
    data = torch.randint(0, cfg["vocab_size"], (total, a.batch_size, a.seq), generator=gen).to(dev)
    cuda = dev.type == "cuda"
    step_model = torch.compile(model) if a.compile else model
    amp_dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(a.dtype)
    scaler = torch.amp.GradScaler(dev.type) if a.dtype == "f16" else None

    params = sum(q.numel() for q in model.parameters())
    params_flops = params - model.wpe.weight.numel()
    flops_tok = 6 * params_flops + 12 * cfg["n_layer"] * a.seq * cfg["n_embd"]
    threads = torch.get_num_threads()
    print(
        f"pytorch {torch.__version__} reference: {a.preset} (GPT-2, vocab {cfg['vocab_size']}, d {cfg['n_embd']}, "
        f"{cfg['n_layer']} layers, {cfg['n_head']} heads; {params / 1e6:.2f}M parameters) on {a.device}"
        f"{'' if cuda else f' ({threads} threads)'}, {a.dtype}{' compiled' if a.compile else ''}, batch {a.batch_size} × seq {a.seq}, "
        f"{a.warmup} warm-up + {a.steps} timed steps, random tokens"
    )
    times, losses = [], []
    for i in range(total):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = schedule(i, a.lr, a.min_lr, a.lr_warmup, total)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = step_model(data[i])
        opt.zero_grad(set_to_none=True)
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        if a.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        else:
            norm = torch.sqrt(sum((q.grad.float() ** 2).sum() for q in model.parameters()))
        losses.append(loss.item())  # Hearth reads the loss and the norm every step too
        norm = norm.item()
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)

    timed_s = sum(times)
    tokens_per_s = tokens_per_step * a.steps / timed_s
    achieved = flops_tok * tokens_per_s / 1e12
    name = torch.cuda.get_device_name(dev) if cuda else None
    peak, peak_source = a.peak_tflops, "--peak-tflops"
    if peak is None and name:
        hit = next((h for h in KNOWN_PEAKS if h[0] in name), None)
        if hit and a.dtype == "f32":
            peak, peak_source = hit[1], f"FP32 dense peak of {hit[0]} (data sheet)"
        elif hit:
            peak, peak_source = hit[2], f"{a.dtype} tensor-core dense peak of {hit[0]} (data sheet)"
        else:
            peak, peak_source = None, f"unknown for {name}"
    elif peak is None:
        peak_source = "unknown for the CPU; pass --peak-tflops"
    mfu = achieved / peak if peak else None
    if cuda:
        mem, mem_source = torch.cuda.max_memory_reserved(dev), "torch.cuda.max_memory_reserved"
    else:
        mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        mem_source = "process RSS high-water mark (ru_maxrss)"

    med, mean = statistics.median(times) * 1e3, timed_s / len(times) * 1e3
    print(f"tokens/s        {tokens_per_s:.0f}")
    print(f"step time       median {med:.2f} ms, mean {mean:.2f} ms")
    print(f"achieved        {achieved:.4f} TFLOP/s ({flops_tok} FLOPs/token = 6·{params_flops} + "
          f"12·{cfg['n_layer']}·{a.seq}·{cfg['n_embd']})")
    print(f"MFU             {mfu * 100:.2f}% of {peak} TFLOP/s ({peak_source})" if mfu is not None
          else f"MFU             n/a (peak {peak_source})")
    print(f"peak memory     {mem / 2**20:.1f} MiB ({mem_source})")
    print(f"loss            {losses[0]:.4f} → {losses[-1]:.4f}")
    if a.json:
        out = {
            "tool": "pytorch", "torch": torch.__version__, "backend": a.device, "adapter": name,
            "precision": a.dtype, "compile": a.compile,
            "threads": None if cuda else threads, "preset": a.preset, **cfg,
            "batch_size": a.batch_size, "seq": a.seq, "grad_accum": 1, "warmup": a.warmup, "steps": a.steps,
            "params": params, "params_flops": params_flops, "flops_per_token": flops_tok,
            "flops_formula": "6*params_flops + 12*n_layer*seq*n_embd (params_flops: parameters without the position table)",
            "tokens_per_step": tokens_per_step, "timed_s": timed_s, "tokens_per_s": tokens_per_s,
            "step_ms_median": med, "step_ms_mean": mean, "step_ms": [t * 1e3 for t in times],
            "achieved_tflops": achieved, "peak_tflops": peak, "peak_source": peak_source, "mfu": mfu,
            "peak_memory_bytes": mem, "memory_source": mem_source,
            "loss_first": losses[0], "loss_last": losses[-1], "lr": a.lr, "beta1": a.beta1, "beta2": a.beta2,
            "eps": a.eps, "weight_decay": a.weight_decay, "grad_clip": a.grad_clip,
        }
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
