//! `hearth train` as a user runs it: runs killed between checkpoints or in the middle of writing
//! one resume exactly; each family trains and its model answers; bad input is a one-line error.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{fails, hearth, run, scratch, snapshot, write_novel_prefix};

/// The first 120 kB of the bundled corpus (whole paragraphs).
fn small_corpus(dir: &Path) -> PathBuf {
    let path = dir.join("corpus.txt");
    write_novel_prefix(&path, 120_000);
    path
}

fn tiny_run(out: &Path, corpus: &Path) -> Vec<String> {
    [
        "train",
        "--backend",
        "flex",
        "--out-dir",
        out.to_str().unwrap(),
        "--data",
        corpus.to_str().unwrap(),
        "--max-steps",
        "12",
        "--batch-size",
        "4",
        "--block-size",
        "32",
        "--model.n_layer",
        "1",
        "--model.n_positions",
        "32",
        "--tokenizer-vocab-size",
        "300",
        "--checkpoint-every",
        "4",
        "--eval-every",
        "4",
        "--eval-batches",
        "2",
        "--log-every",
        "1",
        "--keep-last",
        "5",
        "--warmup-steps",
        "2",
        "--dropout",
        "0.1",
        "--zero-shot-limit",
        "4",
    ]
    .map(String::from)
    .to_vec()
}

/// `step → (loss, val_loss)` from a run's metrics.
fn curve(out: &Path) -> Vec<(u64, f64, Option<f64>)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap(), v["val_loss"].as_f64())
        })
        .collect()
}

fn checkpoints(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with("step-"))
        .collect();
    v.sort();
    v
}

/// Starts `args` slowed to 150 ms a step and returns once step 4's checkpoint exists, so that
/// whatever the caller does next lands before step 8's.
fn slow_run_past_step_4(args: &[String], out: &Path) -> Child {
    let mut child = hearth()
        .args(args)
        .env("HEARTH_TEST_STEP_DELAY_MS", "150")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let path = out.join("step-00000004");
    let start = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "run ended before {}", path.display());
        assert!(start.elapsed() < Duration::from_secs(120), "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features hearth/fault-injection")]
fn a_run_killed_between_or_during_checkpoints_resumes_on_the_same_curve() {
    let dir = scratch("resume");
    let corpus = small_corpus(&dir);

    let full = dir.join("full");
    let out = run(&tiny_run(&full, &corpus).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = curve(&full);
    assert_eq!(reference.len(), 12);
    assert!(reference[11].1 < reference[0].1, "loss fell: {reference:?}");

    // SIGKILL between the checkpoints of steps 4 and 8.
    let killed = dir.join("killed");
    let args = tiny_run(&killed, &corpus);
    let mut child = slow_run_past_step_4(&args, &killed);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(checkpoints(&killed), vec!["step-00000004"]);
    let resumed = run(&args.iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resuming at step 4"));
    assert_eq!(curve(&killed), reference, "the resumed curve equals the uninterrupted one");

    // Ctrl-C (SIGINT): the step in flight finishes, a checkpoint is written, exit 130.
    let interrupted = dir.join("interrupted");
    let args = tiny_run(&interrupted, &corpus);
    let child = slow_run_past_step_4(&args, &interrupted);
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted after step"));
    let saved = checkpoints(&interrupted);
    assert!(saved.len() == 2 && saved[0] == "step-00000004", "step 4's, and one at the interruption: {saved:?}");
    let resumed = run(&args.iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(curve(&interrupted), reference);

    // Killed while writing the checkpoint of step 8: step 4 stays the latest complete one.
    let aborted = dir.join("aborted");
    let args = tiny_run(&aborted, &corpus);
    let status = hearth().args(&args).env("HEARTH_TEST_KILL_IN_CHECKPOINT", "8").output().unwrap().status;
    assert!(!status.success());
    assert_eq!(checkpoints(&aborted), vec!["step-00000004"], "the half-written checkpoint is not taken as one");
    assert!(aborted.join(".step-00000008.partial").exists());
    let resumed = run(&args.iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(curve(&aborted), reference);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn each_family_trains_and_answers() {
    let dir = scratch("families");
    let corpus = small_corpus(&dir);
    let common = |out: &Path, preset: &str| -> Vec<String> {
        let mut a = tiny_run(out, &corpus);
        a.extend(
            ["--preset", preset, "--max-steps", "30", "--eval-every", "30", "--lr", "2e-3", "--zero-shot-limit", "10"]
                .map(String::from),
        );
        a
    };
    for (preset, extra) in [
        ("gpt-tiny", vec![]),
        ("bert-tiny", vec!["--model.max_position_embeddings", "32", "--batch-size", "16", "--max-steps", "60"]),
        ("t5-tiny", vec![]),
    ] {
        let out_dir = dir.join(preset);
        let mut args = common(&out_dir, preset);
        if preset != "gpt-tiny" {
            let i = args.iter().position(|a| a == "--model.n_positions").unwrap();
            args.drain(i..i + 2);
        }
        args.extend(extra.into_iter().map(String::from));
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{preset}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let c = curve(&out_dir);
        let first: f64 = c[..3].iter().map(|r| r.1).sum::<f64>() / 3.0;
        let last: f64 = c[c.len() - 3..].iter().map(|r| r.1).sum::<f64>() / 3.0;
        assert!(last < first - 0.3, "{preset}: loss fell from {first:.3} to {last:.3}");
        assert!(out_dir.join("loss_curve.svg").exists());
        let ckpt = checkpoints(&out_dir).pop().map(|c| out_dir.join(c)).unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer.json", "optimizer.bpk", "trainer_state.json"] {
            assert!(ckpt.join(f).exists(), "{preset}: {f}");
        }
        // The bundled zero-shot suite ran after the last step and went into the metrics.
        let last: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap().lines().last().unwrap(),
        )
        .unwrap();
        let acc = last["zero_shot"]["persuasion_word_order"]["acc"].as_f64();
        assert!(acc.is_some_and(|a| (0.0..=1.0).contains(&a)), "{preset}: {last}");
        assert!(stdout.contains("zero-shot"), "{preset}: {stdout}");
    }
    let model = |p: &str| dir.join(p).to_str().unwrap().to_string();
    let out = run(&["generate", "--backend", "flex", "-m", &model("gpt-tiny"), "It is", "--max-new-tokens", "10"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("It is") && text.trim_end_matches('\n').len() > "It is".len() + 3, "{text}");

    let out = run(&["fill-mask", "--backend", "flex", "-m", &model("bert-tiny"), "she was [MASK] happy", "-k", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let probs: Vec<f64> = text.lines().skip(1).map(|l| l.split_whitespace().last().unwrap().parse().unwrap()).collect();
    assert_eq!(probs.len(), 3, "{text}");
    assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs.iter().sum::<f64>() <= 1.0, "{text}");

    let out = run(&[
        "text2text",
        "--backend",
        "flex",
        "-m",
        &model("t5-tiny"),
        "It is a <extra_id_0> universally",
        "--max-new-tokens",
        "8",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tokens: "));

    // Attention heat maps for each family: the JSON holds every map (T5: encoder, decoder, cross),
    // each row sums to 1, and the SVG has one cell per (query, key) pair.
    for (preset, attention, maps) in [("gpt-tiny", "encoder", 1), ("bert-tiny", "encoder", 2), ("t5-tiny", "cross", 6)]
    {
        let (svg, json) = (dir.join(format!("{preset}-att.svg")), dir.join(format!("{preset}-att.json")));
        let out = run(&[
            "attention",
            "--backend",
            "flex",
            "-m",
            &model(preset),
            "she was very happy",
            "--layer",
            "0",
            "--head",
            "1",
            "--attention",
            attention,
            "--svg",
            svg.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{preset}: {text}{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let all = v["maps"].as_array().unwrap();
        assert_eq!(all.len(), maps, "{preset}");
        for m in all {
            let (q, k) = (m["queries"].as_u64().unwrap() as usize, m["keys"].as_u64().unwrap() as usize);
            let w: Vec<f64> = m["weights"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            assert_eq!(w.len(), m["heads"].as_u64().unwrap() as usize * q * k);
            assert!(w.chunks(k).all(|row| (row.iter().sum::<f64>() - 1.0).abs() < 1e-4), "{preset}: rows sum to 1");
        }
        let tokens = v["tokens"].as_array().unwrap().len();
        let queries = if preset == "t5-tiny" { v["decoder_tokens"].as_array().unwrap().len() } else { tokens };
        let cells = std::fs::read_to_string(&svg).unwrap().matches("<rect x=").count();
        assert_eq!(cells, queries * tokens, "{preset}: a {queries} × {tokens} heat map");
    }

    // Perplexity for each family, as a table and as JSON.
    for (preset, key) in
        [("gpt-tiny", "perplexity"), ("bert-tiny", "pseudo-perplexity"), ("t5-tiny", "span-corruption perplexity")]
    {
        let json = dir.join(format!("{preset}.json"));
        let out = run(&[
            "eval",
            "perplexity",
            "--backend",
            "flex",
            "-m",
            &model(preset),
            corpus.to_str().unwrap(),
            "--block-size",
            "32",
            "--max-tokens",
            "300",
            "--json",
            json.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(key), "{preset}: {text}{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let value = v["metrics"][key].as_f64().unwrap();
        assert!(value.is_finite() && value > 1.0, "{preset}: {v}");
        if preset == "gpt-tiny" {
            let m = &v["metrics"];
            let loss = m["loss (nats/token)"].as_f64().unwrap();
            assert!((m["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-6 * loss.exp());
            let bytes = v["bytes"].as_f64().unwrap() * 300.0 / v["tokens"].as_f64().unwrap();
            let bpb = loss * m["tokens scored"].as_f64().unwrap() / (std::f64::consts::LN_2 * bytes.round());
            assert!((m["bits per byte"].as_f64().unwrap() - bpb).abs() < 1e-6, "{v}");
        }
    }

    // Zero-shot on the bundled tasks.
    let json = dir.join("zero-shot.json");
    let out = run(&[
        "eval",
        "zero-shot",
        "--backend",
        "flex",
        "-m",
        &model("gpt-tiny"),
        "--limit",
        "12",
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{v}");
    for r in results {
        assert_eq!(r["n"], 12, "{r}");
        assert!(text.contains(r["task"].as_str().unwrap()));
    }

    // Fine-tuning both families on a slice of the bundled classification set.
    let classify = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/classify");
    let head = |name: &str, n: usize| {
        let text = std::fs::read_to_string(classify.join(name)).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text.lines().take(n + 1).collect::<Vec<_>>().join("\n")).unwrap();
        path
    };
    let (train, dev) = (head("train.tsv", 160), head("dev.tsv", 40));
    let finetune = |preset: &str, out_dir: &Path, extra: &[&str]| {
        let mut args = vec![
            "finetune",
            "--backend",
            "flex",
            "-m",
            &model(preset),
            "--train",
            train.to_str().unwrap(),
            "--dev",
            dev.to_str().unwrap(),
            "--epochs",
            "1",
            "--max-len",
            "32",
            "--lr",
            "1e-3",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    for (preset, arch, head_weight) in [
        ("bert-tiny", "BertForSequenceClassification", "classifier.weight"),
        ("gpt-tiny", "GPT2ForSequenceClassification", "score.weight"),
    ] {
        let out_dir = dir.join(format!("{preset}-finetuned"));
        let out =
            finetune(preset, &out_dir, &["--test", dev.to_str().unwrap(), "--eval-every", "5", "--batch-size", "16"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{preset}: {text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("majority class"), "{text}");
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["architectures"][0], arch);
        assert_eq!(config["id2label"]["0"], "austen");
        assert_eq!(config["label2id"]["jargon"], 2);
        let weights = std::fs::read(out_dir.join("model.safetensors")).unwrap();
        let n = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + n]).unwrap();
        assert_eq!(header[head_weight]["shape"][0], 3, "{preset}: a 3-way head");
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("eval_results.json")).unwrap()).unwrap();
        let acc = results["test"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc) && results["dev_majority_baseline"]["accuracy"].as_f64().is_some());
        // The best dev model is what was saved and tested: its test set is the dev set here.
        assert_eq!(results["test"]["accuracy"], results["dev"]["accuracy"], "{results}");
    }
    // T5 fine-tunes text-to-text: the label is the target text, read back by greedy decoding.
    let out_dir = dir.join("t5-tiny-finetuned");
    let out = finetune("t5-tiny", &out_dir, &["--prefix", "style"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "t5: {text}{}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "t5");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("eval_results.json")).unwrap()).unwrap();
    assert!(results["dev"]["accuracy"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{results}");
    // A second fine-tune into the same folder is refused before any work, and nothing changes.
    let before = std::fs::read(out_dir.join("model.safetensors")).unwrap();
    let out = finetune("t5-tiny", &out_dir, &[]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.lines().filter(|l| l.starts_with("error: ")).count() == 1, "{e}");
    assert!(e.contains("holds an earlier fine-tuned model") && e.contains("--overwrite"), "{e}");
    assert_eq!(std::fs::read(out_dir.join("model.safetensors")).unwrap(), before);

    // GLUE and SuperGLUE on official-layout files: every task, each family (T5 text-to-text).
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/benchmarks");
    for preset in ["bert-tiny", "gpt-tiny", "t5-tiny"] {
        for (suite, tasks) in [("glue", 9), ("superglue", 8)] {
            let json = dir.join(format!("{preset}-{suite}.json"));
            let (model, data) = (model(preset), fixtures.join(suite));
            #[rustfmt::skip]
            let mut args = vec![
                "eval", suite, "--backend", "flex", "-m", &model, data.to_str().unwrap(),
                "--epochs", "1", "--batch-size", "8", "--max-len", "64", "--json", json.to_str().unwrap(),
            ];
            if preset == "t5-tiny" {
                args.extend(["--max-target-len", "6"]); // text-to-text only: refused for the others
            }
            let out = run(&args);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{preset} {suite}: {text}{}", String::from_utf8_lossy(&out.stderr));
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
            let results = v["tasks"].as_array().unwrap();
            assert_eq!(results.len(), tasks, "{preset} {suite}: {v}");
            let mut sum = 0.0;
            for r in results {
                let metrics = r["metrics"].as_object().unwrap();
                let majority = r["majority"].as_object().unwrap();
                assert_eq!(metrics.keys().collect::<Vec<_>>(), majority.keys().collect::<Vec<_>>(), "{r}");
                let values: Vec<f64> = metrics.values().map(|m| m.as_f64().unwrap()).collect();
                // Matthews and the correlations lie in [-1, 1], the rest in [0, 1].
                assert!(values.iter().all(|m| (-1.0..=1.0).contains(m)), "{preset} {suite}: {r}");
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                assert!((r["score"].as_f64().unwrap() - mean).abs() < 1e-12, "{r}");
                sum += mean;
                assert!(text.contains(r["task"].as_str().unwrap()), "{text}");
            }
            assert!((v["average"].as_f64().unwrap() - sum / tasks as f64).abs() < 1e-12);
            let names: Vec<&str> = results.iter().map(|r| r["task"].as_str().unwrap()).collect();
            let expected: &[&str] = if suite == "glue" {
                &["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
            } else {
                &["boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc"]
            };
            assert_eq!(names, expected);
            let keys = |t: &str| -> Vec<String> {
                results.iter().find(|r| r["task"] == t).unwrap()["metrics"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect()
            };
            if suite == "glue" {
                assert_eq!(keys("mnli"), ["m_acc", "mm_acc"]);
                assert_eq!(keys("stsb"), ["pearson", "spearman"]);
                assert_eq!(keys("cola"), ["mcc"]);
            } else {
                assert_eq!(keys("multirc"), ["em", "f1a"]);
                assert_eq!(keys("record"), ["em", "f1"]);
            }
            assert!(text.contains("average"), "{text}");
        }
    }

    // MMLU's layout, 5-shot: a score per subject and the macro average.
    let mmlu = dir.join("mmlu");
    for (split, n) in [("dev", 5), ("test", 6)] {
        std::fs::create_dir_all(mmlu.join(split)).unwrap();
        for subject in ["astronomy", "world_religions"] {
            let rows: String = (0..n)
                .map(|i| format!("\"Which, {i}, of these?\",one,two,three,four,{}\n", ["A", "B", "C", "D"][i % 4]))
                .collect();
            std::fs::write(mmlu.join(split).join(format!("{subject}_{split}.csv")), rows).unwrap();
        }
    }
    let json = dir.join("mmlu.json");
    let out = run(&[
        "eval",
        "zero-shot",
        "--backend",
        "flex",
        "-m",
        &model("gpt-tiny"),
        mmlu.to_str().unwrap(),
        "--num-fewshot",
        "5",
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("mmlu_astronomy") && text.contains("mmlu_world_religions") && text.contains("macro accuracy"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let accs: Vec<f64> =
        v["results"].as_array().unwrap().iter().map(|r| r["metrics"]["acc"].as_f64().unwrap()).collect();
    assert_eq!(v["groups"]["mmlu"]["subjects"], 2);
    assert!((v["groups"]["mmlu"]["acc_macro"].as_f64().unwrap() - (accs[0] + accs[1]) / 2.0).abs() < 1e-12, "{v}");

    let odd = dir.join("odd.tsv");
    std::fs::write(&odd, "sentence\tlabel\nShall I compare thee to a summer's day?\tpoetry\n").unwrap();
    let e = fails(&[
        "finetune",
        "--backend",
        "flex",
        "-m",
        &model("bert-tiny"),
        "--train",
        train.to_str().unwrap(),
        "--dev",
        odd.to_str().unwrap(),
    ]);
    assert!(e.contains("\"poetry\"") && e.contains("--train never uses"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_a_one_line_error_naming_the_problem() {
    let dir = scratch("bad");
    let corpus = small_corpus(&dir);
    let base = |extra: &[&str]| -> Vec<String> {
        let mut a = tiny_run(&dir.join("run"), &corpus);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let go = |extra: &[&str]| fails(&base(extra).iter().map(String::as_str).collect::<Vec<_>>());

    assert!(go(&["--learning-rat", "3"]).contains("unknown field `learning_rat`"));
    assert!(go(&["--model.n_head", "3"]).contains("n_embd (128) is not divisible by n_head (3)"));
    assert!(go(&["--block-size", "64"]).contains("longer than the model's position table (32)"));
    let gpt2_tok = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tokenizers/gpt2/tokenizer.json");
    let e = go(&["--tokenizer", gpt2_tok.to_str().unwrap()]);
    assert!(e.contains("tokenizer_vocab_size does not apply to this run"), "{e}");

    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "\n\n  \n").unwrap();
    assert!(go(&["--data", empty.to_str().unwrap()]).contains("holds no text"));
    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait\n").unwrap();
    let e = go(&["--data", latin1.to_str().unwrap()]);
    assert!(e.contains("latin1.txt") && e.contains("is not UTF-8"), "{e}");
    let e = go(&["--data", dir.join("missing.txt").to_str().unwrap()]);
    assert!(e.contains("missing.txt") && e.contains("cannot read"), "{e}");
    let task = dir.join("task.jsonl");
    std::fs::write(&task, "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 0}\n{\"context\": \"a\"}\n")
        .unwrap();
    let e = go(&["--zero-shot", &format!("[\"{}\"]", task.display())]);
    assert!(e.contains("task.jsonl") && e.contains("line 2"), "{e}");

    // Validation data short of one batch is refused before the first step (every run evaluates
    // at its last), not after the steps before its first evaluation.
    let short = dir.join("short-val");
    let e = go(&["--batch-size", "1000", "--out-dir", short.to_str().unwrap()]);
    assert!(e.contains("fewer than one batch of 1000 × ") && e.contains("raise val_fraction"), "{e}");
    let logged = std::fs::read_to_string(short.join("metrics.jsonl")).unwrap_or_default();
    assert!(!logged.contains("\"step\""), "no step ran before the refusal: {logged}");

    // A diverging run stops at the first non-finite loss and names the last good checkpoint.
    let e = go(&[
        "--lr",
        "1e12",
        "--min-lr",
        "0",
        "--warmup-steps",
        "0",
        "--grad-clip",
        "0",
        "--checkpoint-every",
        "1",
        "--out-dir",
        dir.join("nan").to_str().unwrap(),
    ]);
    assert!(e.contains("non-finite") && e.contains("at step") && e.contains("last good checkpoint is"), "{e}");
    let kept = checkpoints(&dir.join("nan"));
    assert!(!kept.is_empty(), "the checkpoints before the divergence are kept");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn parquet_and_jsonl_prepare_into_shards_that_train() {
    let dir = scratch("prepare");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let tok = dir.join("tokenizer.json");
    let out = run(&[
        "tokenizer",
        "train",
        &s(&fixtures.join("austen_sample.parquet")),
        "--kind",
        "bpe",
        "--vocab-size",
        "400",
        "-o",
        &s(&tok),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tokenizer with"));

    let shards = dir.join("shards");
    let out = run(&[
        "prepare",
        &s(&fixtures.join("austen_sample.parquet")),
        &s(&fixtures.join("austen_sample_zstd.parquet")),
        &s(&fixtures.join("austen_sample.jsonl")),
        "-t",
        &s(&tok),
        "-o",
        &s(&shards),
        "--val-fraction",
        "0.1",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("500 documents"), "400 + 50 + 50 rows: {stdout}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shards.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["dtype"], "u16");
    let train_tokens = meta["train_tokens"].as_u64().unwrap();
    assert_eq!(std::fs::metadata(shards.join("train-000000.bin")).unwrap().len(), 2 * train_tokens);

    let run_dir = dir.join("run");
    let out = run(&[
        "train",
        "--backend",
        "flex",
        "--data",
        &s(&shards),
        "--out-dir",
        &s(&run_dir),
        "--max-steps",
        "20",
        "--batch-size",
        "4",
        "--block-size",
        "32",
        "--model.n_positions",
        "32",
        "--eval-every",
        "20",
        "--eval-batches",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("({train_tokens} train /")), "trains on the memory-mapped shard: {stdout}");
    let c = curve(&run_dir);
    assert!(c.last().unwrap().1 < c[0].1 - 0.5, "{c:?}");

    let bad = dir.join("no_text.parquet");
    std::fs::copy(fixtures.join("austen_sample.jsonl"), &bad).unwrap();
    let e = fails(&["prepare", &s(&bad), "-t", &s(&tok), "-o", &s(&dir.join("x"))]);
    assert!(e.contains("no_text.parquet") && e.contains("not a readable Parquet file"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Flips one byte in the middle of `path` (the size stays: only the checksum can tell).
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_run_folder_holds_one_run_and_a_damaged_checkpoint_is_never_trusted() {
    let dir = scratch("one-run");
    let corpus = small_corpus(&dir);
    let first = dir.join("run");
    let args = tiny_run(&first, &corpus);
    let with = |extra: &[&str]| -> Vec<String> {
        args.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect::<Vec<_>>()
    };
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = curve(&first);
    let before = snapshot(&first);
    assert!(before.iter().any(|(p, _)| p.ends_with("step-00000012/checksums.json")), "each checkpoint has checksums");

    // Another run into the same folder is refused, naming the folder and the ways on; nothing changes.
    let e = fails(&with(&["--seed", "7", "--max-steps", "2"]).iter().map(String::as_str).collect::<Vec<_>>());
    for part in
        [first.to_str().unwrap(), "already holds another run (3 checkpoint(s)", "--resume", "--overwrite", "--out-dir"]
    {
        assert!(e.contains(part), "{part}: {e}");
    }
    assert!(snapshot(&first) == before, "the first run is untouched");
    // --overwrite with validation data short of one batch: refused before it removes anything.
    let e = fails(&with(&["--overwrite", "--batch-size", "1000"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("fewer than one batch of 1000 × "), "{e}");
    assert!(snapshot(&first) == before, "the first run survives a refused --overwrite");

    // The newest checkpoint damaged (one byte of its weights): --resume says so, sets it aside and
    // continues from the newest intact one, on the uninterrupted curve.
    let damaged = dir.join("damaged");
    copy_dir(&first, &damaged);
    std::fs::remove_dir_all(damaged.join("step-00000012")).unwrap();
    damage(&damaged.join("step-00000008/model.safetensors"));
    let resumed = run(&tiny_run(&damaged, &corpus).iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("step-00000008 is damaged (model.safetensors does not match its checksum)"), "{stderr}");
    assert!(stderr.contains("step-00000004"), "names the checkpoint it resumes from: {stderr}");
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resuming at step 4"));
    assert!(damaged.join("step-00000008.damaged").is_dir(), "the damaged checkpoint is kept, set aside");
    assert_eq!(curve(&damaged), reference, "resumed from step 4 onto the uninterrupted curve");

    // Every checkpoint damaged: refused, nothing trained, never a silent start from scratch.
    let ruined = dir.join("ruined");
    copy_dir(&first, &ruined);
    for step in ["00000004", "00000008", "00000012"] {
        let state = ruined.join(format!("step-{step}/trainer_state.json"));
        let text = std::fs::read(&state).unwrap();
        std::fs::write(&state, &text[..text.len() / 2]).unwrap(); // truncated
    }
    let before = snapshot(&ruined);
    let e = fails(&tiny_run(&ruined, &corpus).iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    assert!(
        e.contains("every checkpoint in") && e.contains("is damaged") && e.contains("trainer_state.json has"),
        "{e}"
    );
    assert!(snapshot(&ruined) == before, "nothing written");

    // --overwrite never clears a model the run starts from.
    let init = first.join("step-00000012");
    let before = snapshot(&first);
    let e = fails(
        &with(&["--overwrite", "--init-from", init.to_str().unwrap()]).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(e.contains("which --overwrite would clear; copy it elsewhere first"), "{e}");
    assert!(snapshot(&first) == before, "the first run is untouched");

    // --overwrite replaces the first run: only the new run's checkpoints and metrics remain, and
    // files that are not the run's stay.
    std::fs::write(first.join("step-notes.md"), "mine").unwrap();
    let out = run(&with(&["--seed", "7", "--max-steps", "2", "--checkpoint-every", "2", "--overwrite"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(checkpoints(&first), vec!["step-00000002", "step-notes.md"]);
    assert_eq!(curve(&first).len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_keys_lists_every_run_file_key() {
    let out = run(&["train", "--keys"]);
    assert!(out.status.success());
    let keys = String::from_utf8_lossy(&out.stdout);
    for line in ["warmup_steps", "precision", "zero_shot", "gradient_checkpointing"] {
        assert!(keys.lines().any(|l| l.starts_with(line)), "{line} listed: {keys}");
    }
    let warmup = keys.lines().find(|l| l.starts_with("warmup_steps ")).unwrap();
    assert!(warmup.contains("integer ≥ 0") && warmup.trim_end().ends_with("40"), "{warmup}");
    let help = String::from_utf8_lossy(&run(&["train", "--help"]).stdout).into_owned();
    assert!(help.contains("Run-file keys") && help.contains("loss_scale_growth_interval"), "{help}");
}

#[test]
fn a_run_larger_than_the_machine_is_refused_before_it_starts() {
    let dir = scratch("too-big");
    let corpus = small_corpus(&dir);
    let out_dir = dir.join("run");
    // GPT-2 124M at block 1024 on flex, with `batch` sequences per step and the extra settings.
    let train = |batch: &str, extra: &[&str]| {
        let mut args = vec!["train", "--backend", "flex", "--preset", "gpt2-124m", "--batch-size", batch];
        args.extend(["--block-size", "1024", "--data", corpus.to_str().unwrap(), "--tokenizer-vocab-size", "300"]);
        args.extend(["--out-dir", out_dir.to_str().unwrap()]);
        args.extend(extra);
        fails(&args)
    };
    let e = train("4096", &[]);
    // The machine's RAM (or its container's limit), whatever it is here.
    assert!(e.contains("training needs about") && e.contains("but flex (CPU) has"), "{e}");
    assert!(e.contains("gradient_checkpointing = true (") && e.contains("precision = \"bf16\" ("), "{e}");
    assert!(!out_dir.exists(), "nothing written");
    // With the memory named (max_memory_gib), the advice is exact: every switch and the largest
    // batch that fits, with the accumulation that keeps the tokens per step.
    let e = train("64", &["--max-memory-gib", "16"]);
    assert!(e.contains("but max_memory_gib (flex (CPU)) has 16.0 GiB"), "{e}");
    // Neither switch alone fits (flex's attention kernel keeps no scores), both together do.
    assert!(e.contains("or gradient_checkpointing and bf16 together ("), "{e}");
    assert!(!out_dir.exists(), "nothing written");
    // Four times the batch: the largest that fits with every switch, and the accumulation.
    let e = train("256", &["--max-memory-gib", "16"]);
    let advice = "gradient_checkpointing and bf16 and batch_size = 64 with grad_accum = 4 for the same tokens per step";
    assert!(e.contains(advice), "{e}");
    assert!(!out_dir.exists(), "nothing written");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[cfg(target_os = "linux")]
fn running_out_of_memory_says_what_to_change() {
    // Under a 3 GB address-space limit, a step that needs more fails an allocation: the run ends with
    // one line naming the switches (then Rust's own message and the abort). max_memory_gib lifts the
    // check before the run, which would refuse it on a machine with less than the ~18 GiB it needs;
    // the corpus again as validation data holds a batch of 256 × 256 (its 5% would not).
    let dir = scratch("oom");
    let corpus = small_corpus(&dir);
    let hearth = env!("CARGO_BIN_EXE_hearth");
    let script = format!(
        "ulimit -v 3000000; exec {hearth} train --backend flex --preset gpt-10m --batch-size 256 --block-size 256 \
         --data {0} --val-data {0} --tokenizer-vocab-size 300 --max-steps 2 --out-dir {1} --zero-shot [] --max-memory-gib 1000",
        corpus.display(),
        dir.join("run").display()
    );
    let out = Command::new("sh").args(["-c", &script]).env("XDG_RUNTIME_DIR", std::env::temp_dir()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("error: out of memory: an allocation of"), "{stderr}");
    assert!(stderr.contains("gradient_checkpointing = true") && stderr.contains("--keys"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sampling_settings_out_of_range_are_refused_with_the_range() {
    for (args, want) in [
        (&["generate", "-m", "nowhere", "x", "--top-p", "2"][..], "top_p 2 is out of range; it must lie in (0, 1]"),
        (&["generate", "-m", "nowhere", "x", "--top-p", "0"][..], "top_p 0 is out of range"),
        (
            &["generate", "-m", "nowhere", "x", "--temperature", "-0.5"][..],
            "temperature -0.5 is out of range; it must be ≥ 0",
        ),
        (&["generate", "-m", "nowhere", "x", "--top-k", "-1"][..], "top_k -1 is out of range; it must be ≥ 0"),
        (
            &["generate", "-m", "nowhere", "x", "--max-new-tokens", "0"][..],
            "max_new_tokens 0 is out of range; it must be ≥ 1",
        ),
        (&["text2text", "-m", "nowhere", "x", "--max-new-tokens", "-3"][..], "max_new_tokens -3 is out of range"),
    ] {
        let e = fails(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn a_batch_larger_than_one_device_buffer_is_refused_before_any_work() {
    // On wgpu (lavapipe in CI: 128 MiB per storage binding) the activations of 40 000 windows of 32
    // tokens cannot be one buffer: one line names the largest, never a device panic.
    let dir = scratch("binding");
    let corpus = small_corpus(&dir);
    let out = dir.join("run");
    let trained = run(&tiny_run(&out, &corpus).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let e = fails(&[
        "eval",
        "perplexity",
        "--backend",
        "wgpu",
        "-m",
        out.to_str().unwrap(),
        corpus.to_str().unwrap(),
        "--batch-size",
        "40000",
        "--block-size",
        "32",
    ]);
    assert!(
        e.contains("perplexity: feed-forward activations [40000, 32, 512] needs 2.4 GiB but one buffer on webgpu ("),
        "{e}"
    );
    assert!(e.contains("holds at most") && e.contains("smaller batch_size"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[cfg(target_os = "linux")]
fn a_metric_that_cannot_be_written_stops_the_run() {
    // metrics.jsonl on a full disk (/dev/full answers every write with ENOSPC): the run stops with
    // one line naming the file, instead of training on with its metrics silently lost.
    let dir = scratch("full-disk");
    let corpus = small_corpus(&dir);
    let out = dir.join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink("/dev/full", out.join("metrics.jsonl")).unwrap();
    let e = fails(&tiny_run(&out, &corpus).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("metrics.jsonl") && e.contains("cannot write it") && e.contains("No space left"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
