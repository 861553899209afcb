#!/usr/bin/env python3
"""Writes the LLaMA oracle folders tests/fixtures/oracle/{llama,llama_bias}/: tiny `LlamaForCausalLM`
models and what Hugging Face `transformers` (CPU, float32, eager attention, dropout off) computes
for them, in the layout of the GPT-2, BERT and T5 oracles (tests/fixtures/oracle/README.md).

    pip install torch transformers safetensors      # CPU is enough
    python3 tests/hf/make_llama_oracle.py           # writes both folders, then checks them
    python3 tests/hf/make_llama_oracle.py --check   # only reloads and checks the folders

Each folder holds:
  config.json, model.safetensors  as `save_pretrained` writes them (HF names:
                                  model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ...)
  io.safetensors                  `input_ids`, `attention_mask` (all ones), `labels` (= input_ids,
                                  shifted inside the loss as GPT-2's), int64 [2, 16]; `logits` [2, 16, 512];
                                  `loss` [1]; `grad.<name>` for every name of `model.named_parameters()`
  attentions.safetensors          `self.<layer>` [heads, queries, keys] for the first input row and
                                  that row's `input_ids` [1, 16] (as tests/hf/write_attention_references.py)
  meta.json                       seed, inputs, loss, versions, how the weights were initialised

The two models differ on purpose in what a LLaMA port gets wrong:
  llama       GQA (4 query heads, 2 KV heads), head_dim 24 != hidden/heads = 16, intermediate 96
              (not a multiple of hidden), untied lm_head, no biases
  llama_bias  MQA (4 query heads, 1 KV head), head_dim 16 (the default), biases on q, k, v and o
              (`attention_bias`), lm_head tied to the embedding (only `model.embed_tokens.weight`
              is a parameter, so its gradient carries the LM head's share too)
Weights are re-initialised after construction: every Linear / Embedding weight and every bias
~ N(0, 0.1), every RMSNorm weight 1 + N(0, 0.1), so logits, biases and gradients are not trivially
small or zero (HF's own init: N(0, 0.02), zero biases, unit norms).

The check reloads each folder with `AutoModelForCausalLM.from_pretrained` (refusing missing,
unexpected or mismatched keys), requires config.json to read back as written, and reproduces the
stored logits, loss, gradients and attention maps.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "oracle"
SEED = 1234
BATCH, SEQ = 2, 16
INIT_STD = 0.1
INIT = (f"re-initialised after construction (torch.manual_seed({SEED}), in named_parameters order): "
        f"every Linear/Embedding weight and bias ~ N(0, {INIT_STD}); every RMSNorm weight 1 + N(0, {INIT_STD})")

COMMON = dict(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    hidden_act="silu",
    max_position_embeddings=64,
    initializer_range=INIT_STD,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    attention_dropout=0.0,
    mlp_bias=False,
)
CASES = {
    "llama": dict(COMMON, num_key_value_heads=2, head_dim=24, tie_word_embeddings=False, attention_bias=False),
    "llama_bias": dict(COMMON, num_key_value_heads=1, tie_word_embeddings=True, attention_bias=True),
}


def build(settings):
    config = LlamaConfig(**settings)
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config).to(torch.float32).eval()  # eval: dropout off
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # input_layernorm, post_attention_layernorm, model.norm
                p.copy_(1.0 + INIT_STD * torch.randn_like(p))
            else:
                p.normal_(0.0, INIT_STD)
    return model


def run(model, inputs):
    """HF's logits, loss and every parameter's gradient on `inputs`."""
    model.zero_grad()
    out = model(**inputs)
    out.loss.backward()
    grads = {f"grad.{n}": p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
    return out.logits.detach().contiguous(), out.loss.detach().reshape(1), grads


def attentions(model, ids):
    with torch.no_grad():
        r = model(input_ids=ids, output_attentions=True)
    out = {"input_ids": ids.contiguous()}
    for l, a in enumerate(r.attentions):
        out[f"self.{l}"] = a[0].contiguous()
    return out


def write(family, settings):
    d = ROOT / family
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    model = build(settings)
    ids = torch.randint(3, settings["vocab_size"], (BATCH, SEQ), dtype=torch.int64)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    logits, loss, grads = run(model, inputs)

    model.save_pretrained(d)
    # The oracle layout is config.json + model.safetensors; the generation defaults are not part of it.
    (d / "generation_config.json").unlink(missing_ok=True)
    tensors = {k: v.contiguous() for k, v in inputs.items()}
    tensors.update(logits=logits, loss=loss, **grads)
    save_file(tensors, d / "io.safetensors")
    save_file(attentions(model, ids[:1]), d / "attentions.safetensors")
    meta = {
        "model": family,
        "seed": SEED,
        "inputs": sorted(inputs),
        "loss": loss.item(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attn_implementation": "eager",
        "init": INIT,
        "num_key_value_heads": settings["num_key_value_heads"],
        "head_dim": model.config.head_dim,
        "attention_bias": settings["attention_bias"],
        "tie_word_embeddings": settings["tie_word_embeddings"],
        "parameters": [n for n, _ in model.named_parameters()],
    }
    with open(d / "meta.json", "w") as f:
        json.dump(meta, f, indent=2)
    for f in d.iterdir():  # safetensors writes 0600; the other fixtures are 0644
        f.chmod(0o644)
    print(f"{family}: loss {loss.item():.6f}, {len(grads)} gradients -> {d}")


def max_diff(a, b):
    return (a.double() - b.double()).abs().max().item()


def check(family):
    """Reloads the folder with transformers and reproduces what it stores."""
    d = ROOT / family
    model, info = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", output_loading_info=True)
    model = model.to(torch.float32).eval()
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"{d}: transformers reports {problems}")
    written = json.loads((d / "config.json").read_text())
    read = AutoConfig.from_pretrained(d).to_dict()
    differ = {k: (v, read.get(k)) for k, v in written.items() if read.get(k) != v}
    if differ:
        raise SystemExit(f"{d}: transformers reads these config keys differently: {differ}")
    io = load_file(d / "io.safetensors")
    inputs = {k: io[k] for k in ("input_ids", "attention_mask", "labels")}
    logits, loss, grads = run(model, inputs)
    worst = {"logits": max_diff(logits, io["logits"]), "loss": max_diff(loss, io["loss"])}
    stored = {k for k in io if k.startswith("grad.")}
    if stored != set(grads):
        raise SystemExit(f"{d}: gradients stored {sorted(stored ^ set(grads))} differ from the parameters")
    worst["grads"] = max(max_diff(grads[k], io[k]) for k in grads)
    att = load_file(d / "attentions.safetensors")
    again = attentions(model, att["input_ids"])
    worst["attentions"] = max(max_diff(again[k], att[k]) for k in att if k.startswith("self."))
    ok = all(v <= 1e-5 for v in worst.values())
    print(f"{family}: reloaded with {type(model).__name__}; max abs diff {worst}; {'ok' if ok else 'MISMATCH'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only reload and check the existing folders")
    args = ap.parse_args()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    torch.use_deterministic_algorithms(True)
    if not args.check:
        for family, settings in CASES.items():
            write(family, settings)
    return 0 if all([check(f) for f in CASES]) else 1


if __name__ == "__main__":
    sys.exit(main())
