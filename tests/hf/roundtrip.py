#!/usr/bin/env python3
"""Hearth → transformers → Hearth: what transformers reads is what Hearth wrote.

For each family (GPT-2, BERT, T5, LLaMA) this trains a tiny model with `hearth train` for a few steps,
loads the checkpoint with transformers (refusing any missing, unexpected or mismatched key and any
config value transformers reads differently), computes transformers' logits, loss and the
gradient of every parameter on a batch, writes them as an oracle folder (`io.safetensors`), and
runs `hearth parity` on it: Hearth must reproduce transformers' numbers on its own checkpoint.

    pip install torch transformers                   # CPU is enough
    cargo build --release -p hearth
    python3 tests/hf/roundtrip.py                    # or --hearth PATH --keep DIR

Exit status 0 when every family passes.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, BertForMaskedLM, GPT2LMHeadModel, LlamaForCausalLM, T5ForConditionalGeneration

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# (name, preset, transformers class, extra `hearth train` settings). The untied T5 (a separate LM
# head, T5 v1.1's layout, no output scaling) is the case transformers 5 derives most from the config.
CASES = [
    ("gpt-tiny", "gpt-tiny", GPT2LMHeadModel, ["--model.n_layer", "2"]),
    ("bert-tiny", "bert-tiny", BertForMaskedLM, ["--model.num_hidden_layers", "2"]),
    ("t5-tiny", "t5-tiny", T5ForConditionalGeneration, []),
    ("t5-tiny-untied", "t5-tiny", T5ForConditionalGeneration, ["--model.tie_word_embeddings", "false"]),
    # GQA (4 query heads over 2 key/value heads) with an untied head; and Qwen2's biases with MQA.
    ("llama-tiny", "llama-tiny", LlamaForCausalLM, ["--model.tie_word_embeddings", "false"]),
    ("llama-tiny-bias", "llama-tiny", LlamaForCausalLM,
     ["--model.attention_bias", "true", "--model.num_key_value_heads", "1", "--model.head_dim", "48"]),
]


def hearth_train(hearth, preset, extra, out_dir, corpus):
    args = [hearth, "train", "--backend", "flex", "--preset", preset, "--out-dir", out_dir, "--data", corpus,
            "--max-steps", "6", "--batch-size", "4", "--block-size", "32", "--tokenizer-vocab-size", "400",
            "--checkpoint-every", "6", "--eval-every", "6", "--eval-batches", "1", "--zero-shot", "[]",
            "--warmup-steps", "2", "--lr", "1e-2", *extra]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    steps = sorted(d for d in os.listdir(out_dir) if d.startswith("step-"))
    return os.path.join(out_dir, steps[-1])


# Keys transformers 5.24 overrides whatever the file says. T5Config always sets tie_word_embeddings
# to True; an untied checkpoint keeps its own lm_head.weight (transformers does not tie weights that
# differ in the file) and `scale_decoder_outputs: false` carries the rest, so the model is the same:
# `hearth parity` below proves it.
FORCED = {("t5", "tie_word_embeddings")}


def load_in_transformers(cls, ckpt):
    """The checkpoint as transformers reads it; refuses missing/unexpected/mismatched keys."""
    model, info = cls.from_pretrained(ckpt, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"} | ({"errors": info["error_msgs"]} if info.get("error_msgs") else {})
    if problems:
        raise SystemExit(f"{ckpt}: transformers reports {problems}")
    # Every key Hearth wrote is read back as written (nothing left to transformers' defaults).
    written = json.load(open(os.path.join(ckpt, "config.json")))
    read = AutoConfig.from_pretrained(ckpt).to_dict()
    differ = {k: (v, read.get(k)) for k, v in written.items()
              if k not in ("transformers_version",) and read.get(k) != v and (read["model_type"], k) not in FORCED}
    if differ:
        raise SystemExit(f"{ckpt}: transformers reads these config keys differently: {differ}")
    return model


def batch(preset, config, generator):
    """Inputs as the oracle folders hold them (int64), for a batch of 2."""
    v = config.vocab_size
    ids = torch.randint(4, v, (2, 16), generator=generator)
    if preset in ("gpt-tiny", "llama-tiny"):
        return {"input_ids": ids, "labels": ids.clone()}
    if preset == "bert-tiny":
        mask = torch.ones_like(ids)
        mask[1, 12:] = 0
        labels = torch.full_like(ids, -100)
        labels[:, 3] = ids[:, 3]
        labels[0, 7] = ids[0, 7]
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids), "labels": labels}
    labels = torch.randint(4, v, (2, 8), generator=generator)
    start = torch.full((2, 1), config.decoder_start_token_id, dtype=torch.long)
    return {"input_ids": ids, "labels": labels, "decoder_input_ids": torch.cat([start, labels[:, :-1]], 1)}


def oracle(model, inputs, folder):
    """Writes io.safetensors: the inputs, transformers' logits, loss and every gradient."""
    model.eval()  # dropout off, as Hearth's parity runs
    model.zero_grad()
    out = model(**inputs)
    out.loss.backward()
    tensors = {k: v.contiguous() for k, v in inputs.items()}
    tensors["logits"] = out.logits.detach().contiguous()
    tensors["loss"] = out.loss.detach().reshape(1)
    for name, p in model.named_parameters():
        if p.grad is not None:
            tensors[f"grad.{name}"] = p.grad.detach().contiguous()
    save_file(tensors, os.path.join(folder, "io.safetensors"))
    return out.loss.item(), sum(1 for k in tensors if k.startswith("grad."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearth", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "hearth"))
    ap.add_argument("--keep", help="keep the checkpoints and oracle folders here")
    args = ap.parse_args()
    if not os.path.exists(args.hearth):
        raise SystemExit(f"{args.hearth} not found: cargo build --release -p hearth, or pass --hearth")
    work = args.keep or tempfile.mkdtemp(prefix="hearth-roundtrip-")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(ROOT, "data", "pride_and_prejudice.txt")) as f:
        text = f.read()
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w") as f:
        f.write(text[: text.rfind("\n\n", 0, 120_000)])
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, hearth {args.hearth}")
    failed = []
    for name, preset, cls, extra in CASES:
        run_dir = os.path.join(work, name)
        shutil.rmtree(run_dir, ignore_errors=True)
        ckpt = hearth_train(args.hearth, preset, extra, run_dir, corpus)
        model = load_in_transformers(cls, ckpt)
        folder = os.path.join(work, f"{name}-oracle")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(ckpt, folder)
        loss, grads = oracle(model, batch(preset, model.config, torch.Generator().manual_seed(0)), folder)
        print(f"\n== {name}: {ckpt} loads in transformers ({cls.__name__}, no missing/unexpected/mismatched keys); "
              f"transformers' loss {loss:.6f}, {grads} gradients")
        result = subprocess.run([args.hearth, "parity", folder, "--backend", "flex"], capture_output=True, text=True)
        print(result.stdout.rstrip())
        if result.returncode != 0:
            print(result.stderr.rstrip())
            failed.append(name)
    print(f"\n{len(CASES) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
