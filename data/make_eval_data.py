#!/usr/bin/env python3
"""Builds the bundled evaluation data from the public-domain texts in ../shared/corpus.

  data/tasks/persuasion_next_sentence.jsonl  multiple choice: the true next sentence among four
  data/tasks/persuasion_word_order.jsonl     multiple choice: the sentence among three word shuffles
  data/tasks/persuasion_sentence_ending.jsonl  multiple choice: a sentence's true second half among four
  data/tasks/persuasion_last_word.jsonl      cloze: the last word of a sentence (LAMBADA style)
  data/classify/{train,dev,test}.tsv         SST-2 layout (sentence<TAB>label): austen / bible / jargon
  data/persuasion_sample.txt                 the first chapters of Persuasion, for `hearth eval perplexity`

Persuasion is the held-out novel (never trained on by the default run, which reads Pride and
Prejudice). Deterministic: `python3 data/make_eval_data.py ../shared/corpus` rewrites the same bytes.
"""
import json
import random
import re
import sys
from pathlib import Path

corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus")
out = Path(__file__).resolve().parent


def paragraphs(text):
    for block in re.split(r"\n\s*\n", text):
        p = " ".join(block.split())
        if p and not re.match(r"^(Chapter|CHAPTER|VOLUME)\b", p):
            yield p


def sentences(text):
    for p in paragraphs(text):
        for s in re.split(r'(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<=[.!?])\s+(?=["A-Z])', p):
            yield s.strip()


def good(s, lo=6, hi=40):
    n = len(s.split())
    return lo <= n <= hi and s[-1] in '.!?"' and not re.search(r"[0-9_\[\]│├┼]", s)


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


persuasion = (corpus / "en/austen_Persuasion.txt").read_text()
sents = list(sentences(persuasion))

# Next sentence: context = two sentences, choices = the true third and three of similar length.
rng = random.Random(0)
ok = [i for i in range(2, len(sents)) if good(sents[i]) and good(sents[i - 1], 3, 60)]
rows = []
for i in rng.sample(ok, 300):
    n = len(sents[i].split())
    pool = [j for j in ok if abs(j - i) > 20 and abs(len(sents[j].split()) - n) <= max(2, n // 5)]
    choices = [sents[i]] + [sents[j] for j in rng.sample(pool, 3)]
    order = list(range(4))
    rng.shuffle(order)
    rows.append({
        "context": sents[i - 2] + " " + sents[i - 1],
        "choices": [" " + choices[k] for k in order],
        "gold": order.index(0),
    })
write_jsonl(out / "tasks/persuasion_next_sentence.jsonl", rows)

# Word order: the sentence or three shuffles of its words (final punctuation kept in place).
rng = random.Random(1)
rows = []
for i in rng.sample([i for i in ok if 8 <= len(sents[i].split()) <= 25], 300):
    words = sents[i].split()
    choices = [sents[i]]
    while len(choices) < 4:
        w = words[:]
        rng.shuffle(w)
        s = " ".join(w)
        if s not in choices:
            choices.append(s)
    order = list(range(4))
    rng.shuffle(order)
    rows.append({"context": sents[i - 1], "choices": [" " + choices[k] for k in order], "gold": order.index(0)})
write_jsonl(out / "tasks/persuasion_word_order.jsonl", rows)

# Sentence ending (HellaSwag-like): context = previous sentence + the first half of a sentence,
# choices = its true second half and the second halves of three other sentences of similar length.
rng = random.Random(4)
halves = []
for i in ok:
    w = sents[i].split()
    if 10 <= len(w) <= 30:
        cut = len(w) // 2
        halves.append((i, " ".join(w[:cut]), " ".join(w[cut:])))
rows = []
for i, head, tail in rng.sample(halves, 300):
    n = len(tail.split())
    pool = [t for j, _, t in halves if abs(j - i) > 20 and abs(len(t.split()) - n) <= max(1, n // 5)]
    choices = [tail] + rng.sample(pool, 3)
    order = list(range(4))
    rng.shuffle(order)
    rows.append({"context": sents[i - 1] + " " + head, "choices": [" " + choices[k] for k in order], "gold": order.index(0)})
write_jsonl(out / "tasks/persuasion_sentence_ending.jsonl", rows)

# Last word: context = previous sentence + the sentence without its last word.
rng = random.Random(2)
rows = []
cands = [i for i in ok if len(sents[i].split()) >= 10 and re.search(r"\s[a-z]{2,}[.!?]$", sents[i])]
for i in rng.sample(cands, 300):
    m = re.search(r"\s([a-z]{2,})([.!?])$", sents[i])
    rows.append({"context": sents[i - 1] + " " + sents[i][: m.start()], "target": " " + m.group(1)})
write_jsonl(out / "tasks/persuasion_last_word.jsonl", rows)

# Classification: sentences from Austen (Emma), the King James Bible and the Jargon File.
rng = random.Random(3)
emma = [s for s in sentences((corpus / "en/austen_Emma.txt").read_text()) if good(s, 6, 35)]
kjv_text = re.sub(r"^\s*\d+\s+", "", (corpus / "en/kjv_bible.txt").read_text(), flags=re.M)
kjv = [s for s in sentences(kjv_text) if good(s, 6, 35)]
jargon = [s for s in sentences((corpus / "en/jargon.txt").read_text()) if good(s, 6, 35)]
data = (
    [(s, "austen") for s in rng.sample(emma, 1500)]
    + [(s, "bible") for s in rng.sample(kjv, 900)]
    + [(s, "jargon") for s in rng.sample(jargon, 600)]
)
rng.shuffle(data)
splits = {"train": data[:2000], "dev": data[2000:2400], "test": data[2400:]}
for name, rows in splits.items():
    with open(out / f"classify/{name}.tsv", "w") as f:
        f.write("sentence\tlabel\n")
        for s, label in rows:
            f.write(s.replace("\t", " ") + "\t" + label + "\n")

# A held-out text for perplexity: Persuasion's first three chapters.
start = persuasion.index("Chapter 1")
end = persuasion.index("Chapter 4")
(out / "persuasion_sample.txt").write_text(persuasion[start:end])
