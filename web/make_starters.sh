#!/usr/bin/env bash
# Builds the page's starter model, www/starters/gpt/ (config.json, model.safetensors,
# tokenizer.json): a GPT of d_model 128 and 2 layers pretrained by `hearth train` on the bundled
# Pride and Prejudice (the page's corpus) on the CPU, 1000 steps of 16 × 128 tokens (~1.5 min here).
# It is committed (2.2 MB), so the page offers it without a build; this script remakes it (the same
# seed, the same model: its byte-level BPE tokenizer trains deterministically). No BERT or T5 yet:
# at this size they stay on the plateau of predicting frequent tokens (BERT's masked-LM loss ~5.4
# for 8000 steps; T5 fills every span with "," after 6000), so they would not answer sensibly.
#
#   web/make_starters.sh          (after `cargo build --release`; HEARTH=path/to/hearth to choose)
set -euo pipefail
cd "$(dirname "$0")/.."
hearth="${HEARTH:-${CARGO_TARGET_DIR:-target}/release/hearth}"
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
common=(--backend flex --data data/pride_and_prejudice.txt --block-size 128 --tokenizer-vocab-size 1024
  --eval-every 1000 --zero-shot-limit 20)
"$hearth" train "${common[@]}" --out-dir "$runs/gpt" --preset gpt-tiny --max-steps 1000 --batch-size 16 \
  --lr 3e-3 --min-lr 3e-4 --warmup-steps 50 --checkpoint-every 1000 \
  --model.n_embd 128 --model.n_layer 2 --model.n_head 4 --model.n_positions 128
for family in gpt; do
  mkdir -p "www/starters/$family"
  for f in config.json model.safetensors tokenizer.json; do
    cp "$(ls -d "$runs/$family"/step-* | tail -1)/$f" "www/starters/$family/$f"
  done
done
du -sh www/starters/*
