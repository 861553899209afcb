#!/usr/bin/env python3
"""Writes tests/fixtures/hf_configs/<preset>.json: the config.json that transformers itself writes
(model.save_pretrained) for each of Hearth's model presets, beside the hyper-parameters it was
given. tests/tests/hf_config.rs checks that Hearth writes the same config for the same preset
(and that the presets still set these hyper-parameters: change a preset, re-run this script).

    pip install torch transformers     # CPU is enough
    python3 tests/hf/write_config_references.py                # every preset
    python3 tests/hf/write_config_references.py llama-tiny     # just these

The presets' hyper-parameters are those of each family's `PRESETS` (core/src/models/<family>.rs).
"""
import json
import os
import sys
import tempfile

import torch
import transformers
from transformers import (BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM, T5Config, T5ForConditionalGeneration)

PRESETS = {
    "gpt-tiny": {"model_type": "gpt2", "vocab_size": 1024, "n_positions": 128, "n_embd": 128, "n_layer": 4, "n_head": 4},
    "gpt-bench-tiny": {"model_type": "gpt2", "vocab_size": 512, "n_positions": 256, "n_embd": 128, "n_layer": 2, "n_head": 4},
    "gpt-10m": {"model_type": "gpt2", "vocab_size": 8192, "n_positions": 256, "n_embd": 320, "n_layer": 6, "n_head": 5},
    "gpt2-124m": {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12},
    "bert-tiny": {"model_type": "bert", "vocab_size": 1024, "hidden_size": 128, "num_hidden_layers": 2,
                  "num_attention_heads": 2, "intermediate_size": 512, "max_position_embeddings": 128, "pad_token_id": 0},
    "bert-base": {"model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
                  "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512, "pad_token_id": 0},
    "t5-tiny": {"model_type": "t5", "vocab_size": 1024, "d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 2,
                "num_heads": 4, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": True,
                "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0},
    "t5-base": {"model_type": "t5", "vocab_size": 32128, "d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12,
                "num_heads": 12, "feed_forward_proj": "relu", "pad_token_id": 0, "eos_token_id": 1,
                "decoder_start_token_id": 0},
    "llama-tiny": {"model_type": "llama", "vocab_size": 1024, "hidden_size": 128, "intermediate_size": 352,
                   "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
                   "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
                   "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}},
    "llama-135m": {"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
                   "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
                   "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
                   "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}},
}
FAMILIES = {"gpt2": (GPT2Config, GPT2LMHeadModel), "bert": (BertConfig, BertForMaskedLM),
            "t5": (T5Config, T5ForConditionalGeneration), "llama": (LlamaConfig, LlamaForCausalLM)}


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf_configs")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    wanted = sys.argv[1:] or list(PRESETS)
    for name, params in PRESETS.items():
        if name not in wanted:
            continue
        config_cls, model_cls = FAMILIES[params["model_type"]]
        config = config_cls(**{k: v for k, v in params.items() if k != "model_type"})
        model = model_cls(config)  # a real model, saved as a user would: config.json as transformers writes it
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            with open(os.path.join(d, "config.json")) as f:
                written = json.load(f)
        reference = {"preset": name, "transformers_version": transformers.__version__,
                     "hyper_parameters": params, "config_json": written}
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump(reference, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"{name}: {len(written)} keys")


if __name__ == "__main__":
    sys.exit(main())
