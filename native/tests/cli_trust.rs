//! Options honoured or refused, never ignored, and folders the next command can use, as a user
//! types the commands: a resume that would change the model is refused and leaves the run folder
//! byte-identical; a prepare stopped by a broken input goes on with `--resume` once it is fixed, to
//! the bytes of a prepare that never stopped; global options work after the subcommand too.

use std::path::{Path, PathBuf};

mod common;
use common::{fails, ok, run, scratch, snapshot, write_novel_prefix};

/// The first 60 kB of the bundled corpus (whole paragraphs).
fn corpus(dir: &Path) -> PathBuf {
    let path = dir.join("corpus.txt");
    write_novel_prefix(&path, 60_000);
    path
}

fn tiny(out: &Path, corpus: &Path, steps: &str) -> Vec<String> {
    #[rustfmt::skip]
    let args = [
        "train", "--backend", "flex", "--out-dir", out.to_str().unwrap(), "--data", corpus.to_str().unwrap(),
        "--max-steps", steps, "--batch-size", "4", "--block-size", "32", "--model.n_layer", "1",
        "--model.n_positions", "32", "--tokenizer-vocab-size", "300", "--checkpoint-every", "4",
        "--eval-every", "4", "--eval-batches", "2", "--zero-shot", "[]",
    ];
    args.iter().map(|s| s.to_string()).collect()
}

/// [`tiny`] with another family's preset in place of GPT-2's layer and position settings.
fn tiny_preset(out: &Path, corpus: &Path, preset: &str) -> Vec<String> {
    let mut args = tiny(out, corpus, "2");
    let i = args.iter().position(|a| a == "--model.n_layer").unwrap();
    args.drain(i..i + 4); // GPT-2's keys
    args.extend(["--preset", preset].map(String::from));
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_resume_keeps_the_model_and_says_what_changed() {
    let dir = scratch("trust-resume");
    let (text, out) = (corpus(&dir), dir.join("run"));
    ok(run(&strs(&tiny(&out, &text, "4"))));
    let before = snapshot(&out);

    // A setting that would change the model (or the data, or the objective): refused, nothing touched.
    for (extra, key) in [
        (&["--model.n_embd", "64"][..], "model"),
        (&["--preset", "llama-tiny"][..], "preset"),
        (&["--tokenizer-vocab-size", "400"][..], "tokenizer_vocab_size"),
        (&["--block-size", "16"][..], "block_size"),
        (&["--batch-size", "8"][..], "the tokens per optimizer step would change"),
    ] {
        let mut args = tiny(&out, &text, "8");
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--resume".into());
        let e = fails(&strs(&args));
        assert!(e.contains("--resume:") && e.contains(key), "{extra:?}: {e}");
        assert_eq!(snapshot(&out), before, "{extra:?}: the run folder is unchanged");
    }

    // Settings that may change on resume are taken, and the header says which.
    let mut args = tiny(&out, &text, "8");
    args.extend(["--eval-every", "8", "--lr", "1e-3", "--resume"].map(String::from));
    let o = ok(run(&strs(&args)));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("changed since step 4's checkpoint:") && stdout.contains("max_steps 4 → 8"), "{stdout}");
    assert!(stdout.contains("eval_every 4 → 8") && stdout.contains("lr 0.003 → 0.001"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn out_of_range_objective_settings_are_refused_before_any_work() {
    let dir = scratch("trust-range");
    let (text, out) = (corpus(&dir), dir.join("run"));
    let mut args = tiny(&out, &text, "4");
    args.extend(["--preset", "t5-tiny", "--mean-span-length", "0"].map(String::from));
    let e = fails(&strs(&args));
    assert!(e.contains("mean_span_length must be at least 1"), "{e}");
    assert!(!out.exists(), "nothing was written");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn global_options_work_after_the_subcommand() {
    let dir = scratch("trust-threads");
    let (text, out) = (corpus(&dir), dir.join("run"));
    let mut args = tiny(&out, &text, "2");
    args.extend(["--threads", "1"].map(String::from));
    ok(run(&strs(&args)));
    let mut args = tiny(&dir.join("other"), &text, "2");
    args.extend(["--threads", "0"].map(String::from));
    let out = run(&strs(&args));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads 0: give a positive number"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_prepare_stopped_by_a_broken_line_resumes_once_it_is_fixed() {
    let dir = scratch("trust-prepare");
    let tok = dir.join("tokenizer.json");
    let text = corpus(&dir);
    #[rustfmt::skip]
    ok(run(&["tokenizer", "train", text.to_str().unwrap(), "--vocab-size", "300", "-o", tok.to_str().unwrap()]));
    let docs: Vec<String> =
        (0..400).map(|i| format!("{{\"text\": \"document {i} says something of its own\"}}")).collect();
    let (good, input) = (docs.join("\n") + "\n", dir.join("docs.jsonl"));
    let mut broken = docs.clone();
    broken[300] = "{\"text\": \"a line cut off".into();
    std::fs::write(&input, broken.join("\n") + "\n").unwrap();
    let prepare = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "prepare",
            input.to_str().unwrap(),
            "-t",
            tok.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--memory",
            "0.00002",
        ];
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let out = dir.join("shards");
    let e = fails(&strs(&prepare(&out, &[])));
    assert!(e.contains("line 301") && e.contains("fix the input, then run the same command with --resume"), "{e}");
    // The same command again says the same way on; with --resume, after the fix, it completes.
    let again = fails(&strs(&prepare(&out, &[])));
    assert!(again.contains("--resume"), "{again}");
    std::fs::write(&input, &good).unwrap();
    ok(run(&strs(&prepare(&out, &["--resume"]))));

    let whole = dir.join("whole");
    ok(run(&strs(&prepare(&whole, &[]))));
    assert_eq!(snapshot(&out), snapshot(&whole), "resumed after the fix = never stopped");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn options_that_do_not_apply_are_refused_and_the_header_says_what_was_built() {
    let dir = scratch("trust-apply");
    let (text, out) = (corpus(&dir), dir.join("run"));
    let base = tiny(&out, &text, "2");
    for (extra, says) in [
        (
            &["--mask-rate", "0.2"][..],
            "mask_rate does not apply to this run: it sets the masked objective, and this run trains causal",
        ),
        (&["--mean-span-length", "5"][..], "mean_span_length does not apply to this run"),
        (&["--whole-word-masking", "true"][..], "whole_word_masking does not apply to this run"),
        (&["--loss-scale", "1024"][..], "loss_scale does not apply to this run: loss scaling is f16's"),
        (&["--val-data", text.to_str().unwrap(), "--val-fraction", "0.2"][..], "val_fraction does not apply"),
    ] {
        let mut args = base.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        let e = fails(&strs(&args));
        assert!(e.contains(says), "{extra:?}: {e}");
        assert!(!out.exists(), "{extra:?}: nothing was written");
    }

    // A given tokenizer sizes the embedding table, unless vocab_size is set; the header says which.
    let tok = dir.join("tokenizer.json");
    ok(run(&["tokenizer", "train", text.to_str().unwrap(), "--vocab-size", "280", "-o", tok.to_str().unwrap()]));
    let without: Vec<String> = {
        let i = base.iter().position(|a| a == "--tokenizer-vocab-size").unwrap();
        [&base[..i], &base[i + 2..]].concat()
    };
    let mut args = without.clone();
    args.extend(["--tokenizer".into(), tok.to_str().unwrap().into()]);
    let stdout = String::from_utf8_lossy(&ok(run(&strs(&args))).stdout).into_owned();
    assert!(stdout.contains("vocabulary 280)"), "{stdout}");
    let step =
        std::fs::read_dir(&out).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("step-"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(step.unwrap().path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["vocab_size"], 280);
    std::fs::remove_dir_all(&out).unwrap();
    let mut args = without;
    args.extend(["--tokenizer", tok.to_str().unwrap(), "--model.vocab_size", "512"].map(String::from));
    let stdout = String::from_utf8_lossy(&ok(run(&strs(&args))).stdout).into_owned();
    assert!(stdout.contains("vocabulary 280, embedding table 512 rows (vocab_size)"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inference_refuses_an_input_longer_than_the_model_or_the_machine() {
    let dir = scratch("trust-infer");
    let text = corpus(&dir);
    let gpt = dir.join("gpt");
    ok(run(&strs(&tiny(&gpt, &text, "2"))));
    let long = "It is a truth universally acknowledged. ".repeat(40);
    let e = fails(&["generate", "-m", gpt.to_str().unwrap(), "--backend", "flex", &long]);
    assert!(e.contains("generate: the input is") && e.contains("longer than the model's position table (32)"), "{e}");
    let svg = dir.join("attention.svg");
    let e =
        fails(&["attention", "-m", gpt.to_str().unwrap(), "--backend", "flex", &long, "--svg", svg.to_str().unwrap()]);
    assert!(e.contains("attention: the input is") && e.contains("position table (32)"), "{e}");
    assert!(!svg.exists(), "nothing was written");

    // A T5 has no position table: a long input is measured against the machine's memory.
    let t5 = dir.join("t5");
    ok(run(&strs(&tiny_preset(&t5, &text, "t5-tiny"))));
    let huge = "word ".repeat(26_000); // one argument holds at most 128 KiB
    let e = fails(&["text2text", "-m", t5.to_str().unwrap(), "--backend", "flex", &huge]);
    assert!(e.contains("text2text: the input is") && e.contains("shorten it"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn text_to_text_settings_are_refused_for_a_classifier() {
    let dir = scratch("trust-finetune");
    let (text, gpt) = (corpus(&dir), dir.join("gpt"));
    ok(run(&strs(&tiny(&gpt, &text, "2"))));
    let train = dir.join("train.tsv");
    std::fs::write(&train, "sentence\tlabel\nit is good\t1\nit is bad\t0\nvery good\t1\nvery bad\t0\n").unwrap();
    let out = dir.join("tuned");
    let tune = |extra: &[&str]| -> Vec<String> {
        #[rustfmt::skip]
        let args = [
            "finetune", "-m", gpt.to_str().unwrap(), "--backend", "flex", "--train", train.to_str().unwrap(),
            "--out-dir", out.to_str().unwrap(), "--epochs", "3", "--batch-size", "2",
        ];
        args.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    for (flag, value) in [("--max-target-len", "8"), ("--prefix", "sst2")] {
        let e = fails(&strs(&tune(&[flag, value])));
        assert!(e.contains(&format!("{flag} does not apply")) && e.contains("classification head"), "{e}");
        assert!(!out.exists(), "nothing was written");
    }
    // A fine-tune stopped before it saved a model (its loss blew up) leaves only its metrics; the
    // next fine-tune into that folder goes ahead and says so.
    let blown = run(&strs(&tune(&["--lr", "1e30"])));
    let stderr = String::from_utf8_lossy(&blown.stderr);
    assert!(!blown.status.success() && stderr.contains("non-finite"), "{stderr}");
    assert!(!out.join("model.safetensors").exists() && out.join("metrics.jsonl").exists());
    let again = ok(run(&strs(&tune(&["--lr", "1e-3"]))));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("saved no model; this one replaces them"), "{stderr}");
    assert!(out.join("model.safetensors").exists() && out.join("eval_results.json").exists());
    // A folder with a saved model is still refused.
    let e = fails(&strs(&tune(&[])));
    assert!(e.contains("holds an earlier fine-tuned model") && e.contains("--overwrite"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sampling_and_evaluation_settings_that_do_not_apply_are_refused() {
    let dir = scratch("trust-eval");
    let text = corpus(&dir);
    let gpt = dir.join("gpt");
    ok(run(&strs(&tiny(&gpt, &text, "2"))));
    let g = gpt.to_str().unwrap();
    // Greedy decoding draws nothing: the sampling settings have no meaning there.
    for flag in [["--top-k", "5"], ["--top-p", "0.5"], ["--seed", "3"]] {
        let e = fails(&["generate", "-m", g, "--backend", "flex", "Mr. Darcy", "--temperature", "0", flag[0], flag[1]]);
        assert!(e.contains(&format!("{} does not apply", flag[0])) && e.contains("--temperature 0"), "{e}");
    }
    ok(run(&["generate", "-m", g, "--backend", "flex", "Mr. Darcy", "--max-new-tokens", "2", "--top-k", "5"]));
    // A causal model is scored without masks or spans to draw.
    let t = text.to_str().unwrap();
    let e = fails(&["eval", "perplexity", "-m", g, "--backend", "flex", t, "--seed", "3"]);
    assert!(e.contains("--seed does not apply") && e.contains("is a gpt2"), "{e}");
    // Nothing to draw without few-shot examples.
    let e = fails(&["eval", "zero-shot", "-m", g, "--backend", "flex", "--fewshot-seed", "7"]);
    assert!(e.contains("--fewshot-seed does not apply") && e.contains("--num-fewshot"), "{e}");
    // A half precision for a benchmark that measures none.
    let e = fails(&["bench", "memory", "--preset", "gpt-bench-tiny", "--only", "f32,f32+ckpt", "--half", "bf16"]);
    assert!(e.contains("--half does not apply") && e.contains("runs f32 alone"), "{e}");

    // A masked model's pseudo-perplexity slides no windows.
    let bert = dir.join("bert");
    ok(run(&strs(&tiny_preset(&bert, &text, "bert-tiny"))));
    let e = fails(&["eval", "perplexity", "-m", bert.to_str().unwrap(), "--backend", "flex", t, "--stride", "16"]);
    assert!(e.contains("--stride does not apply") && e.contains("is a bert"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A CUDA build on a machine without the NVIDIA driver (CI's): `--backend cuda` is one line naming
/// what is missing, before anything is written, not burn's panic on its device thread.
#[cfg(feature = "cuda")]
#[test]
fn backend_cuda_without_a_driver_says_what_is_missing() {
    let has_driver = ["libcuda.so.1", "libcuda.so"].iter().any(|lib| {
        std::process::Command::new("sh")
            .args(["-c", &format!("ldconfig -p | grep -q ' {lib} '")])
            .status()
            .is_ok_and(|s| s.success())
    });
    if has_driver {
        eprintln!("skipped: this machine has a CUDA driver");
        return;
    }
    let dir = scratch("cuda");
    let out = dir.join("run");
    let corpus = corpus(&dir);
    let mut args = tiny(&out, &corpus, "1");
    args[2] = "cuda".into(); // --backend cuda
    let stderr = fails(&strs(&args));
    assert!(stderr.contains("backend cuda: no CUDA driver here"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "nothing is written");
}
