#!/usr/bin/env python3
"""Writes GLUE and SuperGLUE folders in the official layouts, with tasks made from the bundled text.

  python3 data/make_benchmark_data.py OUT [--train N] [--dev N] [--seed S]

makes OUT/glue/{CoLA,SST-2,MRPC,STS-B,QQP,MNLI,QNLI,RTE,WNLI}/ (GLUE's TSVs: the same columns,
headers and label values as the download script's files; CoLA without a header) and
OUT/superglue/{BoolQ,CB,COPA,MultiRC,ReCoRD,RTE,WiC,WSC}/ (SuperGLUE's JSONL: train.jsonl and
val.jsonl with the released keys). The layouts are real; the tasks are not the benchmark's: each is
a rule over sentences of Pride and Prejudice that a model can learn (acceptability = word order kept,
sentiment = Austen or jargon from data/classify, paraphrase = a word dropped, similarity = the share
of words kept, entailment = a prefix, …). They test the readers, the formulations and the metrics
end to end, and show that fine-tuning learns; real scores need the real data (see the README).

`tests/fixtures/benchmarks` is `--train 16 --dev 8`. Deterministic for a seed.
"""
import argparse
import json
import random
import re
from pathlib import Path

here = Path(__file__).resolve().parent
ap = argparse.ArgumentParser()
ap.add_argument("out", type=Path)
ap.add_argument("--train", type=int, default=400)
ap.add_argument("--dev", type=int, default=100)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
rng = random.Random(args.seed)


def sentences(text):
    for block in re.split(r"\n\s*\n", text):
        p = " ".join(block.split())
        if not p or re.match(r"^(Chapter|CHAPTER|VOLUME)\b", p):
            continue
        for s in re.split(r'(?<!\bMr\.)(?<!\bMrs\.)(?<=[.!?])\s+(?=["A-Z])', p):
            s = s.strip()
            if 6 <= len(s.split()) <= 30 and "\t" not in s and not re.search(r"[0-9_\[\]]", s):
                yield s


pool = list(sentences((here / "pride_and_prejudice.txt").read_text()))
cut = len(pool) * 4 // 5
split_pool = {"train": pool[:cut], "dev": pool[cut:]}
classify = {}
for split, file in [("train", "train.tsv"), ("dev", "dev.tsv")]:
    rows = [l.split("\t") for l in (here / "classify" / file).read_text().splitlines()[1:]]
    classify[split] = [(s, l) for s, l in rows if l in ("austen", "jargon")]


def n_of(split):
    return args.train if split == "train" else args.dev


def pick(split):
    return rng.choice(split_pool[split])


def shuffled(s):
    w = s.split()
    while True:
        rng.shuffle(w)
        if " ".join(w) != s:
            return " ".join(w)


def drop_word(s):
    w = s.split()
    del w[rng.randrange(1, len(w) - 1)]
    return " ".join(w)


def prefix(s):
    w = s.split()
    return " ".join(w[: rng.randrange(4, max(5, len(w) - 1))]).rstrip(",;") + "."


def negated(s):
    for verb in (" was ", " is ", " had ", " could ", " would ", " should ", " did "):
        if verb in s:
            return s.replace(verb, verb + "not ", 1)
    return None


def tsv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        if header:
            f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")


def jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({**r, "idx": i}, ensure_ascii=False) + "\n")


def nli3(split):
    """(premise, hypothesis, label) with entailment (a prefix), contradiction (negated), neutral."""
    while True:
        s = pick(split)
        kind = rng.choice(["entailment", "contradiction", "neutral"])
        if kind == "entailment":
            return s, prefix(s), kind
        if kind == "contradiction" and negated(s):
            return s, negated(s), kind
        if kind == "neutral":
            return s, pick(split), kind


def binary_pair(split):
    s = pick(split)
    return (s, prefix(s), 1) if rng.random() < 0.5 else (s, pick(split), 0)


glue = args.out / "glue"
for split in ("train", "dev"):
    n = n_of(split)
    f = f"{split}.tsv"
    rows = []
    for _ in range(n):
        s = pick(split)
        ok = rng.random() < 0.6
        rows.append(("austen1813", int(ok), "" if ok else "*", s if ok else shuffled(s)))
    tsv(glue / "CoLA" / f, None, rows)
    tsv(glue / "SST-2" / f, ["sentence", "label"], [(s, int(l == "austen")) for s, l in rng.sample(classify[split], n)])
    rows = []
    for i in range(n):
        s = pick(split)
        para = rng.random() < 0.6
        rows.append((int(para), 2 * i, 2 * i + 1, s, drop_word(s) if para else pick(split)))
    tsv(glue / "MRPC" / f, ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], rows)
    rows = []
    for i in range(n):
        s, o = pick(split), pick(split).split()
        w = s.split()
        keep = rng.randrange(0, 6)  # 0..5 fifths of the words kept
        k = round(len(w) * keep / 5)
        t = " ".join(w[:k] + o[k:]) if k < len(w) else s
        rows.append((i, "main-captions", "austen", "1813", i, "austen", "austen", s, t, f"{keep:.3f}"))
    header = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"]
    tsv(glue / "STS-B" / f, header, rows)
    rows = []
    for i in range(n):
        s = pick(split)
        dup = rng.random() < 0.4
        q1 = s.rstrip(".!\"") + "?"
        q2 = (drop_word(s).rstrip(".!\"") + "?") if dup else pick(split).rstrip(".!\"") + "?"
        rows.append((i, 2 * i, 2 * i + 1, q1, q2, int(dup)))
    tsv(glue / "QQP" / f, ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows)
    parses = ["sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse", "sentence2_parse"]
    for name in (["train"] if split == "train" else ["dev_matched", "dev_mismatched"]):
        labels = ["label1"] if split == "train" else ["label1", "label2", "label3", "label4", "label5"]
        rows = []
        for i in range(n):
            p, h, l = nli3(split)
            rows.append((i, i, f"{i}e", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", p, h, *[l] * len(labels), l))
        tsv(glue / "MNLI" / f"{name}.tsv", ["index", "promptID", "pairID", "genre", *parses, "sentence1", "sentence2", *labels, "gold_label"], rows)
    rows = []
    for i in range(n):
        s = pick(split)
        q = "What of " + " ".join(s.split()[1:5]).rstrip(",;.") + "?"
        yes = rng.random() < 0.5
        rows.append((i, q, s if yes else pick(split), "entailment" if yes else "not_entailment"))
    tsv(glue / "QNLI" / f, ["index", "question", "sentence", "label"], rows)
    rows = []
    for i in range(n):
        s, h, l = binary_pair(split)
        rows.append((i, s, h, "entailment" if l else "not_entailment"))
    tsv(glue / "RTE" / f, ["index", "sentence1", "sentence2", "label"], rows)
    tsv(glue / "WNLI" / f, ["index", "sentence1", "sentence2", "label"], [(i, *binary_pair(split)) for i in range(n)])

sg = args.out / "superglue"
WOMEN = ["Elizabeth", "Jane", "Lydia", "Charlotte", "Kitty", "Mary", "Lady Catherine", "Mrs. Bennet", "Georgiana", "Caroline"]
MEN = ["Darcy", "Bingley", "Wickham", "Mr. Collins", "Mr. Bennet", "Sir William", "Colonel Fitzwilliam", "Mr. Gardiner"]
NAMES = WOMEN + MEN
for split in ("train", "dev"):
    n = n_of(split)
    f = "train.jsonl" if split == "train" else "val.jsonl"
    rows = []
    for _ in range(n):
        i = rng.randrange(len(split_pool[split]) - 3)
        passage = " ".join(split_pool[split][i : i + 3])
        yes = rng.random() < 0.6
        q = (split_pool[split][i + rng.randrange(3)] if yes else pick(split)).rstrip(".!\"").lower()
        rows.append({"question": "is it said that " + q, "passage": passage, "label": yes})
    jsonl(sg / "BoolQ" / f, rows)
    jsonl(sg / "CB" / f, [dict(zip(("premise", "hypothesis", "label"), nli3(split))) for _ in range(n)])
    rows = []
    for _ in range(n):
        i = rng.randrange(len(split_pool[split]) - 1)
        a, b, other = split_pool[split][i], split_pool[split][i + 1], pick(split)
        question = rng.choice(["cause", "effect"])
        premise, right = (b, a) if question == "cause" else (a, b)
        label = rng.randrange(2)
        choices = [other, other]
        choices[label] = right
        rows.append({"premise": premise, "choice1": choices[0], "choice2": choices[1], "question": question, "label": label})
    jsonl(sg / "COPA" / f, rows)
    rows = []
    for _ in range(max(1, n // 4)):
        i = rng.randrange(len(split_pool[split]) - 4)
        sents = split_pool[split][i : i + 4]
        text = "".join(f"<b>Sent {k + 1}: </b>{s}<br>" for k, s in enumerate(sents))
        questions = []
        for q in range(2):
            answers = [{"text": prefix(rng.choice(sents)), "label": 1} for _ in range(2)]
            answers += [{"text": prefix(pick(split)), "label": 0} for _ in range(2)]
            rng.shuffle(answers)
            questions.append({"question": "Which words begin a sentence of the story?", "answers": [{**a, "idx": k} for k, a in enumerate(answers)], "idx": q})
        rows.append({"passage": {"text": text, "questions": questions}, "version": 1.1})
    jsonl(sg / "MultiRC" / f, rows)
    rows = []
    while len(rows) < max(1, n // 2):
        i = rng.randrange(len(split_pool[split]) - 6)
        sents = split_pool[split][i : i + 6]
        passage = " ".join(sents[:5]) + "\n@highlight\n" + prefix(sents[0])
        entities = sorted({(m.start(), m.end() - 1) for name in NAMES for m in re.finditer(re.escape(name), passage)})
        query_names = [name for name in NAMES if name in sents[5] and name in passage]
        if len(entities) < 2 or not query_names:
            continue
        answer = query_names[0]
        start = passage.index(answer)
        query = sents[5].replace(answer, "@placeholder", 1)
        rows.append({
            "source": "austen",
            "passage": {"text": passage, "entities": [{"start": s, "end": e} for s, e in entities]},
            "qas": [{"query": query, "answers": [{"start": start, "end": start + len(answer) - 1, "text": answer}], "idx": len(rows)}],
        })
    jsonl(sg / "ReCoRD" / f, rows)
    rows = []
    for _ in range(n):
        s, h, l = binary_pair(split)
        rows.append({"premise": s, "hypothesis": h, "label": "entailment" if l else "not_entailment"})
    jsonl(sg / "RTE" / f, rows)
    rows = []
    while len(rows) < n:
        s1 = pick(split)
        words = [w for w in s1.split() if w.isalpha() and len(w) > 3]
        if not words:
            continue
        word = rng.choice(words)
        same = rng.random() < 0.5
        others = [t for t in rng.sample(split_pool[split], 200) if f" {word} " in f" {t} " and t != s1]
        if not same and not others:
            continue
        s2 = drop_word(s1) if same else others[0]
        if f" {word} " not in f" {s2} ":
            continue
        st1, st2 = s1.find(word), s2.find(word)
        rows.append({"word": word, "sentence1": s1, "sentence2": s2, "start1": st1, "end1": st1 + len(word), "start2": st2, "end2": st2 + len(word), "label": same})
    jsonl(sg / "WiC" / f, rows)
    rows = []
    for _ in range(n):
        name = rng.choice(NAMES)
        pronoun = rng.choice(["she", "he"])
        rest = rng.choice(["said that", "thought that", "knew that", "hoped that"])
        tail = rng.choice(["would come.", "was right.", "had been unkind.", "could not stay."])
        text = f"{name} {rest} {pronoun} {tail}"
        words = text.split(" ")
        span2 = words.index(pronoun)
        rows.append({
            "text": text,
            "target": {"span1_index": 0, "span1_text": name, "span2_index": span2, "span2_text": pronoun},
            "label": (name in WOMEN) == (pronoun == "she"),
        })
    jsonl(sg / "WSC" / f, rows)
