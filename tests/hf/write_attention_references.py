#!/usr/bin/env python3
"""Writes tests/fixtures/oracle/<family>/attentions.safetensors: the attention weights transformers
computes (eager attention, `output_attentions=True`) for the first input row of each oracle model,
the reference `attention_maps` is tested against (tests/tests/attention_maps.rs).

  python3 tests/hf/write_attention_references.py

Keys: `self.<layer>` (GPT-2, BERT), `encoder.<layer>`, `decoder.<layer>`, `cross.<layer>` (T5),
each `[heads, queries, keys]` float32; `input_ids` and, for T5, `decoder_input_ids` (one row).
"""
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForCausalLM, T5ForConditionalGeneration

root = Path(__file__).resolve().parents[1] / "fixtures" / "oracle"
for family, cls in [("gpt2", AutoModelForCausalLM), ("bert", AutoModelForMaskedLM), ("t5", T5ForConditionalGeneration)]:
    d = root / family
    config = AutoConfig.from_pretrained(d)
    config._attn_implementation = "eager"
    model = cls.from_pretrained(d, config=config).eval()
    io = load_file(d / "io.safetensors")
    ids = io["input_ids"][:1]
    out = {"input_ids": ids.contiguous()}
    with torch.no_grad():
        if family == "t5":
            dec = io["decoder_input_ids"][:1]
            r = model(input_ids=ids, decoder_input_ids=dec, output_attentions=True)
            out["decoder_input_ids"] = dec.contiguous()
            for name, maps in [("encoder", r.encoder_attentions), ("decoder", r.decoder_attentions), ("cross", r.cross_attentions)]:
                for l, a in enumerate(maps):
                    out[f"{name}.{l}"] = a[0].contiguous()
        else:
            r = model(input_ids=ids, output_attentions=True)
            for l, a in enumerate(r.attentions):
                out[f"self.{l}"] = a[0].contiguous()
    save_file(out, d / "attentions.safetensors")
    print(family, {k: tuple(v.shape) for k, v in out.items()})
