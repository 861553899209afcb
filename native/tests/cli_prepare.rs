//! `hearth prepare` as a user runs it: the same documents give the same shards from one file or
//! from several files in several formats, on 1 or 2 threads, and after kills and `--resume`; a run
//! trains on many shards exactly as on one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{hearth, novel, ok, scratch};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus")
}

/// The fixtures' documents, in the order of `austen_sample.parquet` (400 rows),
/// `austen_sample_zstd.parquet` (50) and `austen_sample.jsonl` (50): the first 400 paragraphs of
/// the bundled corpus, then the first 50 twice.
fn documents() -> Vec<String> {
    let paragraphs: Vec<String> = paragraphs().into_iter().take(400).collect();
    paragraphs.iter().chain(&paragraphs[..50]).chain(&paragraphs[..50]).cloned().collect()
}

/// The bundled corpus's paragraphs, each on one line with single spaces.
fn paragraphs() -> Vec<String> {
    let text = novel();
    text.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|p| !p.is_empty()).collect()
}

fn jsonl(docs: &[String]) -> Vec<u8> {
    docs.iter().map(|d| serde_json::json!({ "id": 1, "text": d }).to_string() + "\n").collect::<String>().into_bytes()
}

/// A 400-token BPE trained on the Parquet fixture.
fn tokenizer(dir: &Path) -> PathBuf {
    let tok = dir.join("tokenizer.json");
    let parquet = s(&fixtures().join("austen_sample.parquet"));
    ok(hearth()
        .args(["tokenizer", "train", &parquet, "--kind", "bpe", "--vocab-size", "400", "-o", &s(&tok)])
        .output()
        .unwrap());
    tok
}

/// `hearth [--threads t] prepare inputs… -t tok -o out` with small chunks (about 7 kB of text) and
/// shards of 3000 tokens.
fn prepare(threads: usize, inputs: &[PathBuf], tok: &Path, out: &Path, extra: &[&str]) -> Command {
    prepare_in_shards_of("3000", threads, inputs, tok, out, extra)
}

fn prepare_in_shards_of(
    tokens: &str,
    threads: usize,
    inputs: &[PathBuf],
    tok: &Path,
    out: &Path,
    extra: &[&str],
) -> Command {
    let mut c = hearth();
    c.args(["--threads", &threads.to_string(), "prepare"]).args(inputs.iter().map(|p| s(p)));
    c.args(["-t", &s(tok), "-o", &s(out), "--shard-tokens", tokens, "--memory", "0.0001", "--val-fraction", "0.1"]);
    c.args(extra);
    c
}

/// Every file of a prepared folder with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn the_same_documents_give_the_same_shards_from_any_files_formats_and_threads() {
    let dir = scratch("prepare-same");
    let tok = tokenizer(&dir);
    let docs = documents();

    // One JSONL file.
    let all = dir.join("all.jsonl");
    std::fs::write(&all, jsonl(&docs)).unwrap();
    let one = dir.join("one");
    let out = ok(prepare(2, &[all.clone()], &tok, &one, &[]).output().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("500 documents"), "{stdout}");
    let reference = files(&one);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(one.join("meta.json")).unwrap()).unwrap();
    let train_shards = meta["train_shards"].as_array().unwrap().len();
    assert!(train_shards >= 3, "several shards: {meta}");
    assert!(meta["val_tokens"].as_u64().unwrap() > 0, "{meta}");
    let shard_bytes: u64 = reference.iter().filter(|(n, _)| n.ends_with(".bin")).map(|(_, b)| b.len() as u64).sum();
    let tokens = meta["train_tokens"].as_u64().unwrap() + meta["val_tokens"].as_u64().unwrap();
    assert_eq!(shard_bytes, 2 * tokens, "u16 tokens, all of them in the shards");
    assert!(!reference.iter().any(|(n, _)| n.starts_with('.')), "no partial shard or state is left");

    // The fixtures: two Parquet files (snappy, zstd) and a JSONL.
    let fixture_run = dir.join("fixtures");
    let inputs =
        ["austen_sample.parquet", "austen_sample_zstd.parquet", "austen_sample.jsonl"].map(|f| fixtures().join(f));
    ok(prepare(2, &inputs, &tok, &fixture_run, &[]).output().unwrap());
    assert!(files(&fixture_run) == reference, "Parquet + Parquet + JSONL differ from one JSONL");

    // A folder of text, gzip and zstd JSONL (read in name order), and a quoted pattern.
    let folder = dir.join("mixed");
    std::fs::create_dir_all(&folder).unwrap();
    let text: String = docs[..200].iter().map(|d| format!("{d}\n\n")).collect();
    std::fs::write(folder.join("a.txt"), text.replace(". ", ".\n")).unwrap(); // hard line wraps
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&jsonl(&docs[200..400])).unwrap();
    std::fs::write(folder.join("b.jsonl.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(folder.join("c.jsonl.zst"), zstd::encode_all(&jsonl(&docs[400..450])[..], 3).unwrap()).unwrap();
    let tail = dir.join("tail");
    std::fs::create_dir_all(&tail).unwrap();
    std::fs::write(tail.join("d.jsonl"), jsonl(&docs[450..])).unwrap();
    let mixed = dir.join("mixed-out");
    ok(prepare(2, &[folder.clone(), tail.join("*.jsonl")], &tok, &mixed, &[]).output().unwrap());
    assert!(files(&mixed) == reference, "text + .jsonl.gz + .jsonl.zst + pattern differ from one JSONL");

    // `hearth train --data` reads the folder as the same documents (the header's token counts).
    let header = |data: &Path| {
        let run = dir.join(format!("run-{}", data.file_name().unwrap().to_string_lossy()));
        #[rustfmt::skip]
        let out = ok(hearth().args([
            "train", "--backend", "flex", "--data", &s(data), "--out-dir", &s(&run), "--max-steps", "1",
            "--batch-size", "2", "--block-size", "16", "--model.n_positions", "16", "--model.n_layer", "1",
            "--model.n_embd", "16", "--tokenizer-vocab-size", "300", "--eval-batches", "1", "--zero-shot-limit", "1",
        ]).output().unwrap());
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = stdout.lines().next().unwrap_or_default().to_string();
        line[line.rfind('(').unwrap()..].to_string() // (N train / M val tokens, vocabulary V)
    };
    let both = dir.join("both");
    std::fs::create_dir_all(&both).unwrap();
    std::fs::copy(folder.join("a.txt"), both.join("a.txt")).unwrap();
    std::fs::copy(folder.join("b.jsonl.gz"), both.join("b.jsonl.gz")).unwrap();
    let first = dir.join("first.jsonl");
    std::fs::write(&first, jsonl(&docs[..400])).unwrap();
    assert_eq!(header(&both), header(&first), "a folder of .txt and .jsonl.gz trains on the same tokens as one JSONL");

    // One thread.
    let single = dir.join("single");
    ok(prepare(1, &[all], &tok, &single, &[]).output().unwrap());
    assert!(files(&single) == reference, "1 thread differs from 2");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features hearth/fault-injection")]
fn a_killed_prepare_resumes_to_the_same_bytes() {
    let dir = scratch("prepare-resume");
    let tok = tokenizer(&dir);
    let all = dir.join("all.jsonl");
    std::fs::write(&all, jsonl(&documents())).unwrap();
    let whole = dir.join("whole");
    ok(prepare(2, &[all.clone()], &tok, &whole, &[]).output().unwrap());

    let killed = dir.join("killed");
    // Killed (SIGKILL) with chunk 4, then again with chunk 9 of the resumed run: each time after the
    // chunk's tokens were written and before its commit.
    for chunk in ["4", "9"] {
        let resume: &[&str] = if chunk == "4" { &[] } else { &["--resume"] };
        let out = prepare(2, &[all.clone()], &tok, &killed, resume)
            .env("HEARTH_TEST_KILL_IN_PREPARE", chunk)
            .output()
            .unwrap();
        assert!(!out.status.success(), "killed at chunk {chunk}");
    }
    let again = prepare(2, &[all.clone()], &tok, &killed, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && stderr.contains("--resume"),
        "an interrupted prepare is not started over: {stderr}"
    );
    let other = prepare(2, &[all.clone()], &tok, &killed, &["--resume", "--seed", "7"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && stderr.contains("other inputs, tokenizer or settings"), "{stderr}");
    ok(prepare(2, &[all.clone()], &tok, &killed, &["--resume"]).output().unwrap());
    assert!(files(&killed) == files(&whole), "killed twice and resumed differs from uninterrupted");

    let done = prepare(2, &[all], &tok, &killed, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!done.status.success() && stderr.contains("already holds prepared shards"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn training_on_many_shards_follows_the_curve_of_one() {
    let dir = scratch("prepare-train");
    let tok = tokenizer(&dir);
    let all = dir.join("all.jsonl");
    std::fs::write(&all, jsonl(&documents())).unwrap();
    let mut losses = Vec::new();
    for shard_tokens in ["1000", "100000000"] {
        let shards = dir.join(format!("shards-{shard_tokens}"));
        ok(prepare_in_shards_of(shard_tokens, 2, &[all.clone()], &tok, &shards, &[]).output().unwrap());
        let run = dir.join(format!("run-{shard_tokens}"));
        #[rustfmt::skip]
        let out = ok(hearth().args([
            "train", "--backend", "flex", "--data", &s(&shards), "--out-dir", &s(&run), "--max-steps", "12",
            "--batch-size", "4", "--block-size", "32", "--model.n_positions", "32", "--model.n_layer", "1",
            "--model.n_embd", "32", "--eval-every", "6", "--eval-batches", "2", "--checkpoint-every", "12", "--log-every", "1",
        ]).output().unwrap());
        assert!(String::from_utf8_lossy(&out.stdout).contains("train /"), "trains on the shards");
        losses.push(
            std::fs::read_to_string(run.join("metrics.jsonl"))
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (v["step"].as_u64(), v["loss"].as_f64(), v["val_loss"].as_f64())
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(losses[0].len(), 12);
    assert_eq!(losses[0], losses[1], "the windows read across shard boundaries are the tokens of one shard");
    std::fs::remove_dir_all(&dir).ok();
}

/// Documents of several paragraphs of the bundled novel, with planted copies and junk: an exact
/// copy (extra spaces), a near copy (one word in ~300 changed: 5-gram Jaccard ≈ 0.97), a far
/// variant (every third word changed: Jaccard ≈ 0), lorem ipsum, a keyword list, the same line
/// twenty times, and a German text. The copies are of documents the filters keep (as datatrove
/// would: `hearth_core::quality`), so that only the duplicate rules can remove them.
fn planted() -> Vec<String> {
    use hearth_core::quality::filters::{C4Quality, GopherQuality, GopherRepetition};
    let paragraphs: Vec<String> =
        paragraphs().into_iter().filter(|p| p.split(' ').count() > 20 && p.ends_with(['.', '"', '!', '?'])).collect();
    let mut docs: Vec<String> = paragraphs.chunks(4).take(60).map(|c| c.join("\n")).collect();
    let kept = |d: &str| {
        GopherRepetition::default().check(d).is_ok()
            && GopherQuality::default().check(d).is_ok()
            && C4Quality::default().check(d).is_ok()
    };
    let good: Vec<usize> = (0..docs.len()).filter(|&i| kept(&docs[i])).collect();
    assert!(good.len() >= 4, "the novel's documents pass the filters");
    docs.push(docs[good[0]].replace(' ', "  "));
    let mut near: Vec<&str> = docs[good[1]].split(' ').collect();
    near[40] = "zebra";
    docs.push(near.join(" "));
    let far: Vec<String> = docs[good[2]]
        .split(' ')
        .enumerate()
        .map(|(i, w)| if i % 3 == 0 { format!("{w}x") } else { w.to_string() })
        .collect();
    docs.push(far.join(" "));
    docs.push(format!("{} Lorem ipsum dolor sit amet, consectetur adipiscing elit.", docs[good[3]]));
    docs.push("cheap shoes buy online best price free shipping discount sale ".repeat(30));
    docs.push(format!("{}\n", "Click here to subscribe to our newsletter today.").repeat(20));
    docs.push(
        "Es war einmal ein König, der hatte drei Töchter. Die jüngste war so schön, dass die Sonne selbst sich \
         wunderte, so oft sie ihr ins Gesicht schien. Nahe bei dem Schlosse lag ein großer dunkler Wald, und in \
         dem Walde unter einer alten Linde war ein Brunnen. Wenn nun der Tag recht heiß war, so ging das \
         Königskind hinaus in den Wald und setzte sich an den Rand des kühlen Brunnens. Und wenn sie Langeweile \
         hatte, so nahm sie eine goldene Kugel, warf sie in die Höhe und fing sie wieder; das war ihr liebstes \
         Spielwerk. Nun trug es sich einmal zu, dass die goldene Kugel nicht in ihr Händchen fiel."
            .into(),
    );
    docs
}

fn quality_of(dir: &Path) -> serde_json::Value {
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    meta["quality"].clone()
}

#[test]
fn dedup_and_filters_remove_the_planted_copies_and_junk_on_any_threads() {
    let dir = scratch("prepare-quality");
    let tok = tokenizer(&dir);
    let docs = planted();
    let all = dir.join("planted.jsonl");
    std::fs::write(&all, jsonl(&docs)).unwrap();
    let rules = ["--dedup", "exact,minhash", "--filter", "language=en,gopher-repetition,gopher-quality,c4"];

    // Nothing asked, nothing removed: every document is in the shards and meta.json has no report.
    let plain = dir.join("plain");
    ok(prepare(2, &[all.clone()], &tok, &plain, &[]).output().unwrap());
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(plain.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["documents"], docs.len());
    assert!(meta.get("quality").is_none() && !plain.join("removed.jsonl").exists());

    let out = dir.join("filtered");
    ok(prepare(2, &[all.clone()], &tok, &out, &rules).output().unwrap());
    let q = quality_of(&out);
    let removed = |rule: &str| q["removed"][rule]["documents"].as_u64().unwrap_or(0);
    assert_eq!(q["documents_read"], docs.len());
    assert_eq!(removed("exact"), 1, "the copy with extra spaces: {q}");
    assert_eq!(removed("minhash"), 1, "the near copy, not the far variant: {q}");
    assert_eq!(q["reasons"]["near_duplicate"], 1, "{q}");
    assert_eq!(removed("language"), 1, "the German text: {q}");
    assert_eq!(q["reasons"]["lorem_ipsum"], 1, "{q}");
    let junk = removed("gopher-repetition") + removed("gopher-quality") + removed("c4");
    assert!(junk >= 3, "lorem ipsum, the keyword list and the repeated line: {q}");
    let total: u64 =
        ["exact", "minhash", "language", "c4", "gopher-repetition", "gopher-quality"].map(removed).iter().sum();
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["documents"].as_u64().unwrap(), docs.len() as u64 - total, "every removal counted once");
    assert!(q["removed"]["exact"]["tokens"].as_u64().unwrap() > 100, "tokens removed are counted: {q}");
    let samples = std::fs::read_to_string(out.join("removed.jsonl")).unwrap();
    assert!(samples.contains("\"rule\":\"language\"") && samples.contains("Königskind"), "{samples}");

    // The same bytes on one thread.
    let single = dir.join("single");
    ok(prepare(1, &[all.clone()], &tok, &single, &rules).output().unwrap());
    assert!(files(&single) == files(&out), "1 thread differs from 2");

    // Thresholds other than datatrove's, by datatrove's names; a misspelt one is refused.
    let config = dir.join("quality.toml");
    std::fs::write(&config, "[gopher-quality]\nmax_doc_words = 150\n").unwrap();
    let strict = dir.join("strict");
    let c = s(&config);
    ok(prepare(2, &[all.clone()], &tok, &strict, &["--filter", "gopher-quality", "--filter-config", &c])
        .output()
        .unwrap());
    let q = quality_of(&strict);
    assert!(q["reasons"]["gopher_long_doc"].as_u64().unwrap() > 10, "{q}");
    assert_eq!(q["thresholds"]["gopher-quality"]["max_doc_words"], 150, "meta.json records the thresholds");
    std::fs::write(&config, "[gopher-quality]\nmax_words = 150\n").unwrap();
    let bad =
        prepare(2, &[all.clone()], &tok, &dir.join("typo"), &["--filter", "gopher-quality", "--filter-config", &c])
            .output()
            .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("[gopher-quality]: unknown field `max_words`"), "{stderr}");
    std::fs::write(&config, "[c4]\nmin_num_sentences = 2\n").unwrap();
    let bad =
        prepare(2, &[all.clone()], &tok, &dir.join("other"), &["--filter", "gopher-quality", "--filter-config", &c])
            .output()
            .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("[c4] sets no filter this prepare runs"), "{stderr}");

    // An unknown rule is refused before anything is written.
    let bad = prepare(2, &[all], &tok, &dir.join("bad"), &["--filter", "gopher"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("--filter gopher: unknown; choose from"), "{stderr}");
    assert!(!dir.join("bad").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features hearth/fault-injection")]
fn a_killed_prepare_with_dedup_resumes_to_the_same_bytes() {
    let dir = scratch("prepare-quality-resume");
    let tok = tokenizer(&dir);
    let mut docs = planted();
    // Copies across chunk boundaries: the resumed run must remember what came before its kill.
    docs.extend(docs.clone());
    let all = dir.join("planted.jsonl");
    std::fs::write(&all, jsonl(&docs)).unwrap();
    let rules = ["--dedup", "exact,minhash", "--filter", "gopher-quality,c4"];
    let whole = dir.join("whole");
    ok(prepare(2, &[all.clone()], &tok, &whole, &rules).output().unwrap());
    assert!(quality_of(&whole)["removed"]["exact"]["documents"].as_u64().unwrap() >= docs.len() as u64 / 2 - 5);

    let killed = dir.join("killed");
    let out =
        prepare(2, &[all.clone()], &tok, &killed, &rules).env("HEARTH_TEST_KILL_IN_PREPARE", "6").output().unwrap();
    assert!(!out.status.success());
    let mut resume = rules.to_vec();
    resume.push("--resume");
    ok(prepare(2, &[all], &tok, &killed, &resume).output().unwrap());
    assert!(files(&killed) == files(&whole), "killed and resumed differs from uninterrupted");
    std::fs::remove_dir_all(&dir).ok();
}

/// `n` documents of 30 words drawn from 5000 made-up ones (no two alike by chance), every 50th
/// an exact copy of the one 25 before it.
fn random_documents(n: usize) -> (Vec<String>, usize) {
    let words: Vec<String> = (0..5000).map(|i| format!("w{i:x}q")).collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut docs: Vec<String> = Vec::with_capacity(n);
    let mut copies = 0;
    for i in 0..n {
        if i % 50 == 49 {
            docs.push(docs[i - 25].clone());
            copies += 1;
            continue;
        }
        let doc: Vec<&str> = (0..30)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                words[(state % 5000) as usize].as_str()
            })
            .collect();
        docs.push(doc.join(" ") + ".");
    }
    (docs, copies)
}

/// The peak memory `hearth prepare` reports in its summary, MiB.
fn peak_mib(stdout: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(stdout);
    let tail = text.split("peak memory ").nth(1).unwrap_or_else(|| panic!("no peak memory in {text}"));
    tail.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn dedup_memory_stays_within_its_budget_whatever_the_corpus_size() {
    let dir = scratch("prepare-dedup-memory");
    let tok = tokenizer(&dir);
    // 4 MiB for the sets: a hash set of 200k documents' 15 keys would need over 30 MB.
    let budget = 4.0 * (1u64 << 20) as f64;
    let rules = ["--dedup", "exact,minhash", "--dedup-memory", "0.00390625"];
    let mut peaks = Vec::new();
    for n in [40_000, 200_000] {
        let (docs, copies) = random_documents(n);
        let input = dir.join(format!("random-{n}.jsonl"));
        std::fs::write(&input, jsonl(&docs)).unwrap();
        let out = dir.join(format!("out-{n}"));
        // Chunks of 640 kB of text (--memory 0.01), shards of 10M tokens.
        let mut prepare = hearth();
        prepare.args(["--threads", "2", "prepare", &s(&input), "-t", &s(&tok), "-o", &s(&out)]);
        prepare.args(["--shard-tokens", "10000000", "--memory", "0.01", "--val-fraction", "0.1"]).args(rules);
        let run = ok(prepare.output().unwrap());
        let q = quality_of(&out);
        let sets = &q["dedup_sets"];

        // Every planted copy is found (a set never forgets a key); beyond them, the unique
        // documents taken for duplicates stay within what meta.json states (its final rate, the
        // highest the filter had, on every document, plus five deviations).
        let removed = |rule: &str| q["removed"][rule]["documents"].as_u64().unwrap_or(0) as f64;
        let within = |rule: &str, planted: f64| {
            let expected = sets[rule]["false_positive_rate"].as_f64().unwrap() * n as f64;
            let extra = removed(rule) - planted;
            assert!(extra >= 0.0 && extra <= expected + 5.0 * expected.sqrt() + 3.0, "{rule}: {extra} extra: {q}");
        };
        within("exact", copies as f64);
        within("minhash", 0.0);
        let memory: f64 = ["exact", "minhash"].iter().map(|s| sets[*s]["memory_bytes"].as_f64().unwrap()).sum();
        assert!(memory <= budget, "the sets hold {memory} bytes: {q}");
        if n == 200_000 {
            assert_eq!(sets["minhash"]["bloom_filter"], true, "200k documents outgrow 4 MiB exactly: {q}");
            let stdout = String::from_utf8_lossy(&run.stdout);
            assert!(stdout.contains("--dedup-memory reached: ") && stdout.contains("Bloom filter"), "{stdout}");
        }
        peaks.push(peak_mib(&run.stdout));
    }
    eprintln!("peak memory: {} MiB for 40k documents, {} MiB for 200k", peaks[0], peaks[1]);
    // Five times the documents, the same memory (the sets alone would grow by over 25 MB).
    assert!(peaks[1] <= peaks[0] + 8, "peak memory {} MiB for 40k documents, {} MiB for 200k", peaks[0], peaks[1]);

    // Without --dedup there is nothing to size.
    let (docs, _) = random_documents(100);
    let input = dir.join("few.jsonl");
    std::fs::write(&input, jsonl(&docs)).unwrap();
    let bad = prepare(2, &[input], &tok, &dir.join("refused"), &["--dedup-memory", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("--dedup-memory does not apply"), "{stderr}");
    assert!(!dir.join("refused").exists());
    std::fs::remove_dir_all(&dir).ok();
}
