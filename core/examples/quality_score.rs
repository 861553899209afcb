//! Score a JSONL corpus (`{"id", "text", ...}` per line) with hearth_core::quality and write one JSONL
//! decision per document. All I/O lives here, not in the library.
//!
//! ```text
//! cargo run --release -p hearth-core --example quality_score -- IN.jsonl OUT.jsonl [--lang CODES] [--tokens]
//! ```
//! * filters: `gopher_rep`, `gopher_quality`, `c4` (datatrove defaults), `c4_fineweb`
//!   (`filter_no_terminal_punct=False`), `fineweb_quality`: `"ok"` or datatrove's reason; `c4_text_hash` is
//!   XXH3-64 of the C4-rewritten text (default settings) when kept.
//! * `minhash_dup`: keep-first streaming MinHash decision (FineWeb config, seed 1), `sig0`: first
//!   signature value (for bit-identity checks against datatrove's `.minhash.sig` files).
//! * `--lang en,de,...`: also `lang`, `lang_conf`.
//! * `--tokens`: also `n_words`, `tok_hash` (hash of the word list) and `simple_words`.
//!
//! Timings (one thread) go to stderr as one JSON object.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::{Duration, Instant};

use hearth_core::quality::filters::{C4Quality, FineWebQuality, GopherQuality, GopherRepetition};
use hearth_core::quality::language::LanguageId;
use hearth_core::quality::minhash::{MinhashConfig, Minhasher, NearDedup, datatrove_removals};
use hearth_core::quality::text;
use serde_json::{Value, json};

fn verdict(r: Result<(), &'static str>) -> &'static str {
    r.err().unwrap_or("ok")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: score IN.jsonl OUT.jsonl [--lang en,de,...] [--tokens]");
        std::process::exit(2);
    }
    let tokens = args.iter().any(|a| a == "--tokens");
    let lang = args.iter().position(|a| a == "--lang").map(|i| args[i + 1].clone());
    let reader = BufReader::new(std::fs::File::open(&args[0]).expect("open input"));
    let docs: Vec<Value> = reader.lines().map(|l| serde_json::from_str(&l.unwrap()).expect("json")).collect();

    // warm up lazily-built regexes so timings measure steady state
    let _ = text::word_tokenize("warm-up, (text) e.g. 10km");

    let grep = GopherRepetition::default();
    let gq = GopherQuality::default();
    let c4 = C4Quality::default();
    let c4f = C4Quality::fineweb();
    let fw = FineWebQuality::default();
    let mh = Minhasher::new(&MinhashConfig::default());
    let mut dedup = NearDedup::new(1 << 30); // exact for any corpus this script sees
    let lid = lang.map(|l| LanguageId::new(&l.split(',').collect::<Vec<_>>()).expect("languages"));

    let (mut t_tok, mut t_filters, mut t_mh, mut t_lang) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut per_filter = [Duration::ZERO; 5];
    let mut all_sigs: Vec<Vec<u64>> = Vec::with_capacity(docs.len());
    let mut records: Vec<Value> = Vec::with_capacity(docs.len());
    let mut out = BufWriter::new(std::fs::File::create(&args[1]).expect("create output"));
    let t_all = Instant::now();
    for d in &docs {
        let id = d["id"].clone();
        let text = d["text"].as_str().unwrap_or("");

        let t0 = Instant::now();
        let words = text::word_tokenize(text);
        let t1 = Instant::now();
        let r_rep = verdict(grep.check_words(text, &words));
        let ta = Instant::now();
        let r_gq = verdict(gq.check_words(text, &words));
        let tb = Instant::now();
        let c4_out = c4.filter(text);
        let tc = Instant::now();
        let r_c4f = verdict(c4f.check(text));
        let td = Instant::now();
        let r_fw = verdict(fw.check_words(text, &words));
        let t2 = Instant::now();
        per_filter[0] += ta - t1;
        per_filter[1] += tb - ta;
        per_filter[2] += tc - tb;
        per_filter[3] += td - tc;
        per_filter[4] += t2 - td;
        let sig = mh.signature(text);
        let dup = dedup.check_and_insert(&mh.band_keys(&sig));
        let t3 = Instant::now();
        t_tok += t1 - t0;
        t_filters += t2 - t1;
        t_mh += t3 - t2;

        let mut rec: Value = json!({
            "id": id,
            "gopher_rep": r_rep,
            "gopher_quality": r_gq,
            "c4": c4_out.as_ref().err().copied().unwrap_or("ok"),
            "c4_text_hash": c4_out.as_ref().ok().map(|t| format!("{:016x}", fnv64(t))),
            "c4_fineweb": r_c4f,
            "fineweb_quality": r_fw,
            "minhash_dup": dup,
            "sig0": sig.first().map(|v| v.to_string()),
            "sig_hash": format!("{:016x}", fnv64(&sig.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))),
        });
        if let Some(lid) = &lid {
            let t = Instant::now();
            let r = lid.detect(text);
            t_lang += t.elapsed();
            rec["lang"] = json!(r.map(|x| x.0));
            rec["lang_conf"] = json!(r.map(|x| x.1));
        }
        if tokens {
            rec["n_words"] = json!(words.len());
            rec["tok_hash"] = json!(format!("{:016x}", fnv64(&words.join("\u{1}"))));
            let simple = text::simplify_text(text);
            rec["simple_words"] = json!(text::word_tokenize(&simple).len());
        }
        all_sigs.push(sig);
        records.push(rec);
    }
    let t = Instant::now();
    let batch = datatrove_removals(&all_sigs, 14, 8);
    let t_batch = t.elapsed();
    for (mut rec, rm) in records.into_iter().zip(batch) {
        rec["minhash_dup_batch"] = json!(rm);
        serde_json::to_writer(&mut out, &rec).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    let n = docs.len() as f64;
    let secs = |d: Duration| d.as_secs_f64();
    eprintln!(
        "{}",
        json!({
            "docs": docs.len(),
            "total_s": secs(t_all.elapsed()),
            "tokenize_s": secs(t_tok),
            "filters_s": secs(t_filters),
            "filters_incl_tokenize_docs_per_s": n / secs(t_tok + t_filters),
            "minhash_s": secs(t_mh),
            "minhash_docs_per_s": n / secs(t_mh),
            "lang_s": secs(t_lang),
            "per_filter_s": {"gopher_rep": secs(per_filter[0]), "gopher_quality": secs(per_filter[1]), "c4": secs(per_filter[2]),
                             "c4_fineweb": secs(per_filter[3]), "fineweb_quality": secs(per_filter[4])},
            "near_dups": dedup.duplicates(),
            "batch_cluster_s": secs(t_batch),
        })
    );
}

/// Stable 64-bit FNV-1a, so the example needs no extra dependency.
fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
