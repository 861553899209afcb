#!/usr/bin/env python3
"""Why a starter-sized T5 fills every span with ",": transformers' T5 in the same setting as
`web/make_starters.sh` would train it (Pride and Prejudice, a Unigram tokenizer of 1024, T5's span
corruption, AdamW + warmup + cosine), with what tells the plateau apart from learning:

  first-token acc    how often the argmax at a span's first target token is right (the unigram
                     baseline is ~0.05, a left-neighbour bigram table's 0.16)
  cross@sentinel     per decoder layer, per head: the cross-attention mass that the decoder's
                     <extra_id_k> inputs put on the encoder's <extra_id_k> (1/spans when a head
                     attends to every sentinel alike)
  enc0 neighbours    per head of the encoder's first layer: the attention mass that sentinel rows
                     put on positions i-1 and i+1

    pip install torch transformers
    python3 bench/t5_span_plateau.py --steps 3000 --lr 1e-3
    python3 bench/t5_span_plateau.py --local-bias 2 --first-only --density 0.047   # one span per block
    python3 bench/t5_span_plateau.py --rebuild --data /path/to/austen.txt --batch-size 64   # denoising: learns

--rebuild trains the decoder to write the whole block back (the starter's `--objective denoise`)
and scores the spans' first tokens in it: 0.10 / 0.08 / 0.14 / 0.15 at steps 250 / 500 / 750 / 1000
on the six Austen novels, where span corruption stays at ~0.05 (runs of up to 6000 steps). --rms-scale
(each tensor's step scaled by its RMS, as Adafactor and nanoT5 do, lr 2e-2) leaves span corruption
on its plateau too, and --local-bias with it is unlearned within 250 steps.

PyTorch and transformers are needed here only; nothing in Hearth's build or tests uses this.
"""

import argparse
import math
import os
import time

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5Attention

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTINELS = 100
FIRST_SENTINEL = 3  # after <pad>, </s>, <unk>

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--steps", type=int, default=3000)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--block-size", type=int, default=64)
p.add_argument("--density", type=float, default=0.15, help="noise density")
p.add_argument("--mean-span", type=float, default=3.0)
p.add_argument("--d-model", type=int, default=128)
p.add_argument("--d-kv", type=int, default=32)
p.add_argument("--d-ff", type=int, default=256)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--initializer-factor", type=float, default=1.0)
p.add_argument("--bias-std", type=float, default=None, help="relative-bias init std (HF: factor/sqrt(d_model))")
p.add_argument("--local-bias", type=float, default=0.0,
               help="add -slope*distance to each head's relative bias at init, slope halving per head")
p.add_argument("--first-only", action="store_true", help="train on span-first tokens alone")
p.add_argument("--rms-scale", action="store_true",
               help="scale each tensor's step by its root mean square (nanoT5's AdamWScale, Adafactor's scale_parameter)")
p.add_argument("--rebuild", action="store_true",
               help="target the whole original block (T5's MASS-style denoising) instead of the spans")
p.add_argument("--data", default="data/pride_and_prejudice.txt")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)

# ---- data: the corpus as one line (newlines would become <unk>), a Unigram tokenizer, a 90/10 split
text = " ".join(open(os.path.join(ROOT, args.data)).read().split())
tok = Tokenizer(models.Unigram())
tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
specials = ["<pad>", "</s>", "<unk>"] + [f"<extra_id_{i}>" for i in range(SENTINELS)]
chunks = [text[i:i + 2000] for i in range(0, len(text), 2000)]
tok.train_from_iterator(chunks, trainers.UnigramTrainer(vocab_size=1024, special_tokens=specials, unk_token="<unk>"))
ids = np.array(tok.encode(text).ids)
split = int(len(ids) * 0.9)


def split_into(total, parts):
    """`total` as `parts` positive lengths, at random (T5's _random_segmentation)."""
    cuts = np.sort(rng.choice(np.arange(1, total), parts - 1, replace=False)) if parts > 1 else []
    return np.diff(np.concatenate([[0], cuts, [total]]).astype(int))


def noise_mask(length):
    """T5's random_spans_noise_mask: alternating kept and noise spans, starting with a kept one."""
    noise = max(1, round(length * args.density))
    spans = max(1, round(noise / args.mean_span))
    mask, at = np.zeros(length, bool), 0
    for keep, drop in zip(split_into(length - noise, spans), split_into(noise, spans)):
        at += keep
        mask[at:at + drop] = True
        at += drop
    return mask


def example(lo, hi):
    """(encoder input, target, indices of span-first tokens in the target) from ids[lo:hi]."""
    start = rng.integers(lo, hi - args.block_size)
    x, mask = ids[start:start + args.block_size], noise_mask(args.block_size)
    inp, tgt, firsts, span, i = [], [], [], 0, 0
    while i < len(x):
        if not mask[i]:
            inp.append(x[i]); i += 1
            continue
        inp.append(FIRST_SENTINEL + span); tgt.append(FIRST_SENTINEL + span); firsts.append(len(tgt))
        while i < len(x) and mask[i]:
            tgt.append(x[i]); i += 1
        span += 1
    if args.rebuild:  # the decoder writes the block back; score the spans' first tokens in it
        starts = [i for i in range(len(x)) if mask[i] and (i == 0 or not mask[i - 1])]
        return inp, list(x) + [1], starts
    return inp, tgt + [1], firsts


def batch(lo, hi):
    rows = [example(lo, hi) for _ in range(args.batch_size)]
    b, li, lt = len(rows), max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    inp, att = torch.zeros(b, li, dtype=torch.long), torch.zeros(b, li, dtype=torch.long)
    tgt, first = torch.full((b, lt), -100), torch.zeros(b, lt, dtype=torch.bool)
    for r, (i, t, f) in enumerate(rows):
        inp[r, :len(i)], att[r, :len(i)], tgt[r, :len(t)], first[r, f] = torch.tensor(i), 1, torch.tensor(t), True
    return inp, att, tgt, first


# ---- model: HF's init, optionally with another relative-bias init
cfg = T5Config(vocab_size=tok.get_vocab_size(), d_model=args.d_model, d_kv=args.d_kv, d_ff=args.d_ff,
               num_layers=args.layers, num_heads=args.heads, dropout_rate=0.0,
               initializer_factor=args.initializer_factor, feed_forward_proj="relu",
               decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
cfg._attn_implementation = "eager"  # attention weights come back
model = T5ForConditionalGeneration(cfg)
with torch.no_grad():
    for stack, bidirectional in ((model.encoder, True), (model.decoder, False)):
        table = stack.block[0].layer[0].SelfAttention.relative_attention_bias.weight  # [buckets, heads]
        if args.bias_std is not None:
            table.normal_(0, args.bias_std)
        if args.local_bias > 0:
            d = torch.arange(-256, 257)
            buckets = T5Attention._relative_position_bucket(d, bidirectional=bidirectional,
                                                            num_buckets=table.shape[0], max_distance=128)
            nearest = torch.zeros(table.shape[0])
            for bucket in range(table.shape[0]):
                hit = d[buckets == bucket].abs()
                nearest[bucket] = hit.min() if len(hit) else 0
            for h in range(table.shape[1]):
                table[:, h] -= args.local_bias * 0.5**h * nearest

opt = torch.optim.AdamW([{"params": [p]} for p in model.parameters()], lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))


def lr_at(step):
    warm = min(1.0, (step + 1) / 100)
    return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))


@torch.no_grad()
def evaluate():
    model.eval()
    loss, right, total = 0.0, 0, 0
    for _ in range(8):
        inp, att, tgt, first = batch(split, len(ids))
        out = model(input_ids=inp, attention_mask=att, labels=tgt)
        loss += out.loss.item() / 8
        right += (out.logits.argmax(-1)[first] == tgt[first]).sum().item()
        total += first.sum().item()
    inp, att, tgt, _ = batch(split, len(ids))
    out = model(input_ids=inp, attention_mask=att, labels=tgt, output_attentions=True)
    dec_in = model._shift_right(tgt)
    is_sentinel = (dec_in >= FIRST_SENTINEL) & (dec_in < FIRST_SENTINEL + SENTINELS)  # [B, Tdec]
    same = (dec_in.unsqueeze(2) == inp.unsqueeze(1)) & is_sentinel.unsqueeze(2)       # [B, Tdec, Tenc]
    cross = " ".join("/".join(f"{v:.2f}" for v in (w * same.unsqueeze(1)).sum(-1).permute(0, 2, 1)[is_sentinel].mean(0))
                     for w in out.cross_attentions)                                    # w: [B, H, Tdec, Tenc]
    enc0 = out.encoder_attentions[0]                                                   # [B, H, Tenc, Tenc]
    rows = ((inp >= FIRST_SENTINEL) & (inp < FIRST_SENTINEL + SENTINELS)).nonzero().tolist()
    n = enc0.shape[-1]
    neighbours = "/".join(
        f"{sum((enc0[b, h, i, i - 1] if i > 0 else 0) + (enc0[b, h, i, i + 1] if i + 1 < n else 0) for b, i in rows) / len(rows):.2f}"
        for h in range(enc0.shape[1]))
    model.train()
    return loss, right / total, cross, neighbours


t0 = time.time()
for step in range(args.steps + 1):
    if step % 250 == 0:
        loss, acc, cross, neighbours = evaluate()
        print(f"step {step} val loss {loss:.3f} first-token acc {acc:.3f} cross@sentinel {cross} "
              f"enc0 neighbours {neighbours} ({time.time() - t0:.0f}s)", flush=True)
    if step == args.steps:
        break
    for g in opt.param_groups:
        scale = max(1e-3, g["params"][0].detach().pow(2).mean().sqrt().item()) if args.rms_scale else 1.0
        g["lr"] = lr_at(step) * scale
    inp, att, tgt, first = batch(0, split)
    dec_in = model._shift_right(tgt)  # from the whole target, also when only first tokens are scored
    if args.first_only:
        tgt = tgt.masked_fill(~first, -100)
    loss = model(input_ids=inp, attention_mask=att, decoder_input_ids=dec_in, labels=tgt).loss
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

model.eval()
for prompt in ["she was <extra_id_0> happy", "mr. <extra_id_0> was", "it is a truth universally <extra_id_0> that"]:
    out = model.generate(torch.tensor([tok.encode(prompt).ids]), max_new_tokens=6, decoder_start_token_id=0)
    print(prompt, "->", tok.decode(out[0].tolist(), skip_special_tokens=False))
