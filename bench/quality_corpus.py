"""Build the side-by-side test corpus (JSONL: id, text, kind, src) from the shared corpora ($HEARTH_SHARED/corpus, default ../shared/corpus).

Base documents are windows of consecutive lines from every file (English prose, wiki XML,
11-language Debian reference, Rust code), plus planted exact duplicates, near duplicates
(few word edits, high Jaccard) and far variants (many edits, low Jaccard), and junk
documents built to trip specific rules. Deterministic (seed 1234).
"""
import json
import os
import random
import sys
from pathlib import Path

C = Path(os.environ.get("HEARTH_SHARED", "../shared")) / "corpus"
rng = random.Random(1234)
out_path = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus.jsonl")

docs = []


def add(text, kind, src):
    docs.append({"id": len(docs), "text": text, "kind": kind, "src": src})


def windows(path, n, lo, hi, kind="base"):
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for _ in range(n):
        size = rng.randint(lo, hi)
        start = rng.randrange(0, max(1, len(lines) - size))
        text = "\n".join(lines[start:start + size]).strip("\n")
        if text.strip():
            add(text, kind, path.name)


for f in sorted((C / "en").glob("austen_*.txt")):
    windows(f, 150, 8, 80)
windows(C / "en/kjv_bible.txt", 300, 5, 60)
windows(C / "en/shakespeare_gut.txt", 300, 10, 90)
windows(C / "en/jargon.txt", 200, 10, 80)
windows(C / "en/enwiki_sample.xml", 300, 10, 80)
lee = [l for l in (C / "en/lee_background_news.txt").read_text().splitlines() if l.strip()]
for l in rng.sample(lee, min(300, len(lee))):
    add(l, "base", "lee_background_news.txt")
for f in sorted((C / "multi").glob("*.txt")):
    windows(f, 40 if "_en" not in f.name else 150, 10, 80)
windows(C / "code/rustc_1.63_src_12MB.rs.txt", 200, 10, 80)

base = list(docs)
prose = [d for d in base if d["src"].startswith(("austen", "lee", "kjv", "shakespeare")) and len(d["text"].split()) >= 120]
vocab = [w for d in prose[:200] for w in d["text"].split()]


def edit_words(text, frac):
    # replace a fraction of whitespace-separated words, keeping line structure
    lines = text.split("\n")
    toks = [(i, j) for i, l in enumerate(lines) for j, _ in enumerate(l.split(" "))]
    split = [l.split(" ") for l in lines]
    for i, j in rng.sample(toks, max(1, int(len(toks) * frac))):
        split[i][j] = rng.choice(vocab)
    return "\n".join(" ".join(s) for s in split)


for d in rng.sample(prose, 100):
    add(d["text"], "exact_dup", f"dup_of:{d['id']}")
for d in rng.sample(prose, 150):
    add(edit_words(d["text"], rng.uniform(0.005, 0.02)), "near_dup", f"near_of:{d['id']}")
for d in rng.sample(prose, 60):
    add(edit_words(d["text"], rng.uniform(0.15, 0.3)), "far_variant", f"far_of:{d['id']}")

# junk
words = vocab
for k in range(20):  # repeated lines / paragraphs
    line = " ".join(rng.choices(words, k=rng.randint(5, 15)))
    add("\n".join([line] * rng.randint(5, 30) + [" ".join(rng.choices(words, k=40))]), "junk_repeat", "junk")
for k in range(15):  # bullet lists
    add("\n".join("- " + " ".join(rng.choices(words, k=rng.randint(2, 8))) for _ in range(rng.randint(10, 40))), "junk_bullets", "junk")
for k in range(10):  # ellipsis lines
    add("\n".join(" ".join(rng.choices(words, k=rng.randint(4, 12))) + "..." for _ in range(rng.randint(10, 30))), "junk_ellipsis", "junk")
for k in range(10):  # hashtags
    add(" ".join(rng.choice(["#" + w, w]) for w in rng.choices(words, k=rng.randint(60, 200))), "junk_hashtags", "junk")
for k in range(10):  # lorem ipsum / policy / javascript inside prose
    d = rng.choice(prose)["text"].split("\n")
    extra = rng.choice(["Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
                        "Please enable JavaScript to view the comments powered by Disqus.",
                        "By using this site you agree to our Terms of Use and Privacy Policy.",
                        "This website uses cookies to improve your experience."])
    d.insert(rng.randrange(len(d) + 1), extra)
    add("\n".join(d), "junk_boiler", "junk")
for k in range(10):  # random symbols / numbers
    add(" ".join("".join(rng.choices("0123456789$%&*+=<>|~^", k=rng.randint(1, 8))) for _ in range(rng.randint(50, 300))), "junk_symbols", "junk")
for k in range(10):  # short lines, no punctuation
    add("\n".join(" ".join(rng.choices(words, k=rng.randint(1, 4))) for _ in range(rng.randint(20, 60))), "junk_short_lines", "junk")
for k in range(10):  # very long words / no stop words
    add(" ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(11, 25))) for _ in range(rng.randint(60, 200))) + ".", "junk_longwords", "junk")
for k in range(5):  # tiny docs
    add(" ".join(rng.choices(words, k=rng.randint(1, 30))), "junk_tiny", "junk")

# shuffle planted docs among base docs, but keep every original before its copies
order = list(range(len(docs)))
rng.shuffle(order)
pos = {i: p for p, i in enumerate(order)}
for d in docs:
    if d["src"].startswith(("dup_of:", "near_of:", "far_of:")):
        orig = int(d["src"].split(":")[1])
        if pos[orig] > pos[d["id"]]:
            pos[orig], pos[d["id"]] = pos[d["id"]], pos[orig]
final = sorted(docs, key=lambda d: pos[d["id"]])
remap = {d["id"]: i for i, d in enumerate(final)}
with out_path.open("w") as f:
    for i, d in enumerate(final):
        src = d["src"]
        if ":" in src:
            a, b = src.split(":")
            src = f"{a}:{remap[int(b)]}"
        f.write(json.dumps({"id": i, "text": d["text"], "kind": d["kind"], "src": src}, ensure_ascii=False) + "\n")
print(f"wrote {len(final)} docs to {out_path}")
