#!/usr/bin/env bash
# Builds the page's starter models, www/starters/{gpt,bert,t5}/ (config.json, model.safetensors,
# tokenizer.json): models pretrained by `hearth train` on the bundled Pride and Prejudice (the
# page's corpus) on the CPU. They are committed (2.2, 2.2 and 3.7 MB), so the page offers them
# without a build; this script remakes them byte-identical from the same seed and the committed
# tokenizers (each family's rerun checked with md5sum).
#
#   gpt   d 128, 2 layers, 4 heads, 128 positions: 1000 steps of 16 × 128 tokens (~1.5 min here)
#   bert  d 128, 2 layers, 4 heads, 64 positions: 8000 steps of 32 × 64 (~15 min). Masked LM sits on
#         a plateau (predicting frequent tokens, loss ~5.4) until attention learns to look at the
#         neighbours; with HF's initializer_range 0.02 a model this small stayed there for 8000
#         steps (PyTorch + transformers the same), with 0.1 it leaves it after ~2500.
#   t5    d 128, 2 + 2 layers, 4 heads: 2000 steps of 64 × 64 with `--objective denoise` (~15 min):
#         span corruption's input, the whole text as the target. Span corruption itself does not
#         work at this size: every run tried (up to 6000 steps; lr 1e-3 to 1e-2; initializer factor
#         0.5 to 3; one span per block; 8 heads; dropout 0.1; batch 256) fills each span with ",";
#         transformers' T5 does the same, and bench/t5_span_plateau.py shows where it stalls: even
#         with its cross attention on the sentinel and the sentinel's encoder row on its
#         neighbours, a span's first token stays at unigram accuracy (~0.05): it is the only link
#         from the target to the text around the span, and the decoder sees ~100 such targets a
#         step. Denoising makes every position a target, so the decoder learns the language as an
#         LM does and fills a span from the text before it (the testbed's `--rebuild`: first-token
#         accuracy 0.15 by step 1000).
#
# Each run reuses the committed tokenizer.json of its family when there is one: HF tokenizers'
# WordPiece and Unigram trainers are not deterministic (they iterate randomly keyed hash maps; the
# same text gives WordPiece's vocabulary under other ids, Unigram's scores in other last bits), so
# a tokenizer trained anew would make another model. `--new-tokenizers` trains them anew (byte-
# level BPE is deterministic: GPT's comes out the same either way).
#
#   web/make_starters.sh [--new-tokenizers] [gpt] [bert] [t5]   (default: all three; after
#   `cargo build --release`; HEARTH=path/to/hearth to choose the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
hearth="${HEARTH:-${CARGO_TARGET_DIR:-target}/release/hearth}"
new_tokenizers=false
families=()
for arg in "$@"; do
  case "$arg" in
    --new-tokenizers) new_tokenizers=true ;;
    gpt | bert | t5) families+=("$arg") ;;
    *) echo "unknown argument $arg (web/make_starters.sh [--new-tokenizers] [gpt] [bert] [t5])" >&2; exit 2 ;;
  esac
done
[ ${#families[@]} -gt 0 ] || families=(gpt bert t5)
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

common=(--backend flex --data data/pride_and_prejudice.txt --tokenizer-vocab-size 1024 --seed 1337
  --zero-shot-limit 20)
GPT_ARGS=(--preset gpt-tiny --max-steps 1000 --batch-size 16 --block-size 128 --lr 3e-3 --min-lr 3e-4
  --warmup-steps 50 --eval-every 1000 --checkpoint-every 1000
  --model.n_embd 128 --model.n_layer 2 --model.n_head 4 --model.n_positions 128)
BERT_ARGS=(--preset bert-tiny --max-steps 8000 --batch-size 32 --block-size 64 --lr 3e-3 --min-lr 3e-4
  --warmup-steps 100 --eval-every 2000 --checkpoint-every 8000
  --model.hidden_size 128 --model.num_hidden_layers 2 --model.num_attention_heads 4
  --model.intermediate_size 512 --model.max_position_embeddings 64 --model.initializer_range 0.1)
T5_ARGS=(--preset t5-tiny --objective denoise --max-steps 2000 --batch-size 64 --block-size 64 --lr 3e-3
  --min-lr 3e-4 --warmup-steps 100 --eval-every 1000 --checkpoint-every 2000
  --model.d_model 128 --model.d_kv 32 --model.d_ff 256 --model.num_layers 2 --model.num_decoder_layers 2
  --model.num_heads 4)

for family in "${families[@]}"; do
  case "$family" in
    gpt) args=("${GPT_ARGS[@]}") ;;
    bert) args=("${BERT_ARGS[@]}") ;;
    t5) args=("${T5_ARGS[@]}") ;;
  esac
  committed="www/starters/$family/tokenizer.json"
  if ! $new_tokenizers && [ -f "$committed" ]; then
    cp "$committed" "$runs/$family-tokenizer.json"
    args+=(--tokenizer "$runs/$family-tokenizer.json")
  fi
  echo "== $family"
  "$hearth" train "${common[@]}" "${args[@]}" --out-dir "$runs/$family"
  mkdir -p "www/starters/$family"
  for f in config.json model.safetensors tokenizer.json; do
    cp "$(ls -d "$runs/$family"/step-* | sort -V | tail -1)/$f" "www/starters/$family/$f"
  done
done
du -sh www/starters/*
