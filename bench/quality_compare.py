"""Side-by-side: hearth_quality (Rust, core/examples/quality_score.rs) vs datatrove 0.10.1 on one corpus.

    python3 -m venv dtv && dtv/bin/pip install "datatrove[processing]==0.10.1" orjson spacy nltk "xxhash<4" tokenizers
    cargo build --release -p hearth-core --example quality_score
    python3 bench/quality_corpus.py corpus.jsonl        # 3460 documents from the shared corpora, planted copies and junk
    dtv/bin/python bench/quality_compare.py corpus.jsonl WORKDIR [--score-bin PATH] [--lang]

* datatrove filters are called per document (`filter(doc)`, the same call their pipeline step
  makes): GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(),
  C4QualityFilter(filter_no_terminal_punct=False) (FineWeb's setting), FineWebQualityFilter().
* datatrove MinHash runs as its 4 pipeline stages (LocalPipelineExecutor, 1 worker each):
  MinhashDedupSignature -> MinhashDedupBuckets (14 tasks) -> MinhashDedupCluster ->
  MinhashDedupFilter, FineWeb's MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8).
* the Rust example writes its decisions; this script reports per-rule agreement, MinHash
  removal precision/recall (datatrove's removals as reference), signature bit-identity, word
  count agreement, and single-thread throughput of both.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def fnv64(s: str) -> str:
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def run_datatrove_filters(docs, want_tokens):
    from datatrove.data import Document
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)
    from datatrove.utils.text import simplify_text, split_into_words

    filters = {
        "gopher_rep": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(),
        "c4_fineweb": C4QualityFilter(filter_no_terminal_punct=False),
        "fineweb_quality": FineWebQualityFilter(),
    }
    # warm up spaCy
    split_into_words("warm-up, (text) e.g. 10km")
    out = []
    t_filters = 0.0
    for d in docs:
        rec = {"id": d["id"]}
        t0 = time.perf_counter()
        for name, f in filters.items():
            doc = Document(text=d["text"], id=str(d["id"]))
            r = f.filter(doc)
            if r is True:
                rec[name] = "ok"
                if name == "c4":
                    rec["c4_text_hash"] = fnv64(doc.text)
            else:
                rec[name] = r[1] if isinstance(r, tuple) else "dropped"
        t_filters += time.perf_counter() - t0
        if want_tokens:
            words = split_into_words(d["text"])
            rec["n_words"] = len(words)
            rec["tok_hash"] = fnv64("\x01".join(words))
            rec["simple_words"] = len(split_into_words(simplify_text(d["text"])))
        out.append(rec)
    return out, t_filters


def run_datatrove_minhash(corpus, work, docs):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    base = Path(work) / "dt_minhash"
    os.system(f"rm -rf {base}")
    reader = lambda: JsonlReader(str(Path(corpus).parent), glob_pattern=Path(corpus).name, id_key="id")
    stages = [
        ("signature", [reader(), MinhashDedupSignature(output_folder=str(base / "sigs"), config=cfg)], 1),
        ("buckets", [MinhashDedupBuckets(input_folder=str(base / "sigs"), output_folder=str(base / "buckets"), config=cfg)], cfg.num_buckets),
        ("cluster", [MinhashDedupCluster(input_folder=str(base / "buckets"), output_folder=str(base / "remove"), config=cfg)], 1),
        ("filter", [reader(), MinhashDedupFilter(input_folder=str(base / "remove"),
                                                 exclusion_writer=JsonlWriter(str(base / "removed"), compression=None)),
                    JsonlWriter(str(base / "kept"), compression=None)], 1),
    ]
    times = {}
    for name, pipe, tasks in stages:
        t0 = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipe, tasks=tasks, workers=1, logging_dir=str(base / f"logs_{name}")).run()
        times[name] = time.perf_counter() - t0
    removed = set()
    for f in (base / "removed").glob("*.jsonl"):
        for line in f.open():
            removed.add(int(json.loads(line)["id"]))
    # signature values straight from datatrove's own code, for a bit-identity check
    sig_step = MinhashDedupSignature(output_folder=str(base / "tmp"), config=cfg)
    sig0 = {}
    t0 = time.perf_counter()
    for d in docs:
        sh = sig_step.get_shingles(d["text"])
        if sh.size:
            sig = sig_step.get_signature(sh)
            sig0[d["id"]] = fnv64(",".join(str(v) for bucket in sig for v in bucket))
        else:
            sig0[d["id"]] = fnv64("")
    times["signature_only_direct"] = time.perf_counter() - t0
    return removed, sig0, times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("work")
    ap.add_argument("--score-bin", default="target/release/examples/quality_score")
    ap.add_argument("--tokens", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    docs = [json.loads(l) for l in open(args.corpus)]
    kinds = {d["id"]: d["kind"] for d in docs}

    # --- Rust
    rust_out = work / "rust.jsonl"
    cmd = [args.score_bin, args.corpus, str(rust_out)] + (["--tokens"] if args.tokens else [])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rust_wall = time.perf_counter() - t0
    rust_t = json.loads(p.stderr.strip().splitlines()[-1])
    rust = {r["id"]: r for r in map(json.loads, open(rust_out))}

    # --- datatrove
    dt, dt_filters_s = run_datatrove_filters(docs, args.tokens)
    dt = {r["id"]: r for r in dt}
    removed_dt, sig0_dt, mh_times = run_datatrove_minhash(args.corpus, work, docs)

    # --- compare
    n = len(docs)
    report = {"docs": n, "rules": {}}
    lines = []
    for rule in ["gopher_rep", "gopher_quality", "c4", "c4_fineweb", "fineweb_quality"]:
        same_decision = sum((rust[i][rule] == "ok") == (dt[i][rule] == "ok") for i in rust)
        same_reason = sum(rust[i][rule] == dt[i][rule] for i in rust)
        dropped = sum(dt[i][rule] != "ok" for i in dt)
        report["rules"][rule] = {"decision_agreement": same_decision / n, "reason_agreement": same_reason / n,
                                 "datatrove_dropped": dropped,
                                 "disagreements": [(i, rust[i][rule], dt[i][rule]) for i in rust if rust[i][rule] != dt[i][rule]][:20]}
        lines.append(f"{rule:16s} decision {100*same_decision/n:7.3f}%  reason {100*same_reason/n:7.3f}%  (datatrove dropped {dropped})")
    both_ok = [i for i in rust if rust[i]["c4"] == "ok" and dt[i]["c4"] == "ok"]
    same_text = sum(rust[i]["c4_text_hash"] == dt[i]["c4_text_hash"] for i in both_ok)
    report["c4_rewritten_text_identical"] = same_text / max(1, len(both_ok))
    lines.append(f"c4 rewritten text identical: {same_text}/{len(both_ok)}")
    for rule in report["rules"]:
        c = Counter(dt[i][rule] for i in dt)
        report["rules"][rule]["datatrove_reasons"] = dict(c)

    removed_rs = {i for i in rust if rust[i]["minhash_dup"]}
    tp = len(removed_rs & removed_dt)
    prec = tp / max(1, len(removed_rs))
    rec = tp / max(1, len(removed_dt))
    sig_same = sum(rust[i]["sig_hash"] == sig0_dt[i] for i in rust)
    removed_batch = {i for i in rust if rust[i]["minhash_dup_batch"]}
    tpb = len(removed_batch & removed_dt)
    prec_b, rec_b = tpb / max(1, len(removed_batch)), tpb / max(1, len(removed_dt))
    report["minhash"] = {"removed_rust": len(removed_rs), "removed_datatrove": len(removed_dt), "precision": prec,
                         "recall": rec, "signatures_identical": sig_same / n,
                         "batch_removed": len(removed_batch), "batch_precision": prec_b, "batch_recall": rec_b,
                         "removed_by_kind_datatrove": dict(Counter(kinds[i] for i in removed_dt)),
                         "removed_by_kind_rust": dict(Counter(kinds[i] for i in removed_rs)),
                         "only_rust": sorted(removed_rs - removed_dt)[:20], "only_datatrove": sorted(removed_dt - removed_rs)[:20]}
    lines.append(f"minhash removed: rust {len(removed_rs)} datatrove {len(removed_dt)}  P={prec:.4f} R={rec:.4f}  "
                 f"full signatures identical {sig_same}/{n}")
    lines.append(f"minhash batch (datatrove_removals) removed {len(removed_batch)}: P={prec_b:.4f} R={rec_b:.4f}")
    lines.append(f"  removed by kind, datatrove: {dict(Counter(kinds[i] for i in removed_dt))}")
    lines.append(f"  removed by kind, rust:      {dict(Counter(kinds[i] for i in removed_rs))}")
    if args.tokens:
        same_n = sum(rust[i]["n_words"] == dt[i]["n_words"] for i in rust)
        same_tok = sum(rust[i]["tok_hash"] == dt[i]["tok_hash"] for i in rust)
        same_simple = sum(rust[i]["simple_words"] == dt[i]["simple_words"] for i in rust)
        report["tokens"] = {"n_words_equal": same_n / n, "tokens_identical": same_tok / n, "simple_words_equal": same_simple / n,
                            "differ": [i for i in rust if rust[i]["tok_hash"] != dt[i]["tok_hash"]][:50]}
        lines.append(f"word tokens identical {same_tok}/{n}, word counts equal {same_n}/{n}, simplified word counts equal {same_simple}/{n}")

    dt_mh_total = sum(v for k, v in mh_times.items() if k != "signature_only_direct")
    thr = {
        "rust_filters_docs_per_s": rust_t["filters_incl_tokenize_docs_per_s"],
        "datatrove_filters_docs_per_s": n / dt_filters_s,
        "rust_minhash_docs_per_s": rust_t["minhash_docs_per_s"],
        "datatrove_minhash_signature_docs_per_s": n / mh_times["signature_only_direct"],
        "datatrove_minhash_4stages_docs_per_s": n / dt_mh_total,
        "datatrove_minhash_stage_seconds": mh_times,
        "rust_process_wall_s": rust_wall,
    }
    thr["filters_speedup"] = thr["rust_filters_docs_per_s"] / thr["datatrove_filters_docs_per_s"]
    thr["minhash_speedup_vs_signature"] = thr["rust_minhash_docs_per_s"] / thr["datatrove_minhash_signature_docs_per_s"]
    thr["minhash_speedup_vs_4stages"] = thr["rust_minhash_docs_per_s"] / thr["datatrove_minhash_4stages_docs_per_s"]
    report["throughput"] = thr
    lines.append(f"filters (4 filters + C4 fineweb variant, incl. tokenization): rust {thr['rust_filters_docs_per_s']:.0f} docs/s, "
                 f"datatrove {thr['datatrove_filters_docs_per_s']:.1f} docs/s -> {thr['filters_speedup']:.1f}x")
    lines.append(f"minhash: rust (signature+bands+dedup) {thr['rust_minhash_docs_per_s']:.0f} docs/s; datatrove signature "
                 f"{thr['datatrove_minhash_signature_docs_per_s']:.1f} docs/s ({thr['minhash_speedup_vs_signature']:.1f}x), "
                 f"4 stages {thr['datatrove_minhash_4stages_docs_per_s']:.1f} docs/s ({thr['minhash_speedup_vs_4stages']:.1f}x)")
    (work / "report.json").write_text(json.dumps(report, indent=1, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
