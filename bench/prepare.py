#!/usr/bin/env python3
"""`hearth prepare` beside Hugging Face `tokenizers`' own `encode_batch`, on the same corpus in the
same run: peak resident memory (`/usr/bin/time -v`), wall time and tokens per second.

    python3 bench/prepare.py --gib 2 --tokenizer tests/fixtures/tokenizers/gpt2/tokenizer.json

The corpus is generated: JSON lines whose "text" is a paragraph of the source files (the bundled
corpus, or every .txt under --source), each with its round number, repeated until the file holds
--gib GiB. The reference reads the same file line by line and tokenizes batches of --batch texts
with `Tokenizer.encode_batch` (the same Rust library, threaded by its own rayon pool), writing the
ids as Hearth writes them (u16 when the vocabulary fits), so the ratio is what Hearth's pipeline
costs around the tokenizer: streaming, the split, shards, commits.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(path: Path, gib: float, sources: list[Path]) -> int:
    paragraphs = []
    for src in sources:
        text = src.read_text(encoding="utf-8", errors="replace")
        paragraphs += [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    target, written, docs, round_ = int(gib * (1 << 30)), 0, 0, 0
    with path.open("w", encoding="utf-8") as f:
        while written < target:
            for p in paragraphs:
                line = json.dumps({"text": f"{round_}: {p}"}, ensure_ascii=False) + "\n"
                f.write(line)
                written += len(line.encode("utf-8"))
                docs += 1
                if written >= target:
                    break
            round_ += 1
    return docs


def timed(cmd: list[str], env=None) -> dict:
    start = time.time()
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.time() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return {"wall_s": wall, "peak_rss_mib": peak_kb / 1024, "stdout": out.stdout}


REFERENCE = r"""
import json, sys, array
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
eos = tok.token_to_id("<|endoftext|>") or 0
wide = tok.get_vocab_size() > 65536
batch, total = [], 0
with open(sys.argv[2], encoding="utf-8") as f, open(sys.argv[3], "wb") as out:
    def flush():
        global total
        ids = array.array("I" if wide else "H")
        for enc in tok.encode_batch(batch, add_special_tokens=False):
            ids.extend(enc.ids)
            ids.append(eos)
        total += len(ids)
        ids.tofile(out)
        batch.clear()
    for line in f:
        batch.append(json.loads(line)["text"])
        if len(batch) == int(sys.argv[4]):
            flush()
    if batch:
        flush()
print(total)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--tokenizer", default=str(ROOT / "tests/fixtures/tokenizers/gpt2/tokenizer.json"))
    ap.add_argument("--source", help="a folder of .txt files (default: the bundled corpus)")
    ap.add_argument("--hearth", default=os.environ.get("HEARTH_BIN", str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/hearth")))
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--rules", metavar="ARGS", help="also run hearth prepare with these arguments "
                    "(e.g. --rules='--dedup exact,minhash --filter gopher-quality,c4') and report its memory and speed")
    ap.add_argument("--no-reference", action="store_true", help="skip the tokenizers reference")
    args = ap.parse_args()

    work = Path(args.workdir) / "hearth-prepare-bench"
    work.mkdir(parents=True, exist_ok=True)
    sources = sorted(Path(args.source).rglob("*.txt")) if args.source else sorted((ROOT / "data").glob("*.txt"))
    corpus = work / "corpus.jsonl"
    if not corpus.exists() or corpus.stat().st_size < args.gib * (1 << 30):
        docs = generate(corpus, args.gib, sources)
        print(f"corpus: {corpus} ({corpus.stat().st_size / (1 << 30):.2f} GiB, {docs} documents)")
    size = corpus.stat().st_size

    out = work / "shards"
    subprocess.run(["rm", "-rf", str(out), str(work / "reference.bin")], check=True)
    hearth = timed([args.hearth, "prepare", str(corpus), "-t", args.tokenizer, "-o", str(out)])
    meta = json.loads((out / "meta.json").read_text())
    hearth_tokens = meta["train_tokens"] + meta["val_tokens"]

    rows = [("hearth prepare", hearth, hearth_tokens)]
    if args.rules:
        ruled = work / "shards-rules"
        subprocess.run(["rm", "-rf", str(ruled)], check=True)
        rules = shlex.split(args.rules)
        r = timed([args.hearth, "prepare", str(corpus), "-t", args.tokenizer, "-o", str(ruled), *rules])
        meta = json.loads((ruled / "meta.json").read_text())
        rows.append((f"hearth prepare {args.rules}", r, meta["train_tokens"] + meta["val_tokens"]))
        print(f"rules: {meta['quality']['documents_read']} documents read, kept {meta['documents']}, removed "
              + ", ".join(f"{k} {v['documents']}" for k, v in meta["quality"]["removed"].items()))
    ref, ref_tokens = None, 0
    if not args.no_reference:
        script = work / "reference.py"
        script.write_text(REFERENCE)
        ref = timed([sys.executable, str(script), args.tokenizer, str(corpus), str(work / "reference.bin"), str(args.batch)])
        ref_tokens = int(ref["stdout"].strip())
        rows.append((f"tokenizers encode_batch ({args.batch})", ref, ref_tokens))
    print(f"\n{size / (1 << 30):.2f} GiB of JSONL, tokenizer {args.tokenizer}, {os.cpu_count()} cores")
    print(f"{'':34} {'tokens':>12} {'wall s':>8} {'M tokens/s':>11} {'MB/s':>7} {'peak RSS MiB':>13}")
    for name, r, tokens in rows:
        print(f"{name:34} {tokens:>12} {r['wall_s']:>8.1f} {tokens / r['wall_s'] / 1e6:>11.2f} "
              f"{size / r['wall_s'] / 1e6:>7.1f} {r['peak_rss_mib']:>13.0f}")
    if ref:
        print(f"Hearth / reference tokens per second: {(hearth_tokens / hearth['wall_s']) / (ref_tokens / ref['wall_s']):.2f}")
    if args.json and ref:
        Path(args.json).write_text(json.dumps({
            "bytes": size, "hearth": {k: v for k, v in hearth.items() if k != "stdout"} | {"tokens": hearth_tokens},
            "reference": {k: v for k, v in ref.items() if k != "stdout"} | {"tokens": ref_tokens},
        }, indent=2))


if __name__ == "__main__":
    main()
