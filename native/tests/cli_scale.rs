//! The memory and scale techniques, each against the plain f32 single-process run it must match:
//! data parallelism over two processes on 127.0.0.1, started by `hearth launch` (the TCP ring) or,
//! with `HEARTH_TEST_LAUNCHER=mpiexec`, by MPI (the same curve as one process with the same
//! global batch), ZeRO stage 1 (the same curve as plain data parallelism, its optimizer state
//! sharded, resumed exactly from sharded checkpoints), mixed precision (tracks f32; the loss scale
//! backs off and grows as GradScaler's does), and activation checkpointing (the same curve).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{hearth, ok, write_novel_prefix};

fn scratch(name: &str) -> PathBuf {
    common::scratch(&format!("scale-{name}"))
}

/// A port no one listens on (for one launch's rendezvous).
fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string()
}

/// A tiny GPT on the first 60 kB of the bundled corpus, logging every step.
fn tiny(out: &Path, steps: u32, extra: &[&str]) -> Vec<String> {
    let corpus = out.with_extension("txt");
    if !corpus.exists() {
        write_novel_prefix(&corpus, 60_000);
    }
    let mut args: Vec<String> = [
        "train",
        "--backend",
        "flex",
        "--data",
        corpus.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--model.n_layer",
        "2",
        "--model.n_embd",
        "64",
        "--model.n_head",
        "4",
        "--model.n_positions",
        "32",
        "--block-size",
        "32",
        "--batch-size",
        "4",
        "--tokenizer-vocab-size",
        "300",
        "--eval-every",
        "4",
        "--eval-batches",
        "2",
        "--checkpoint-every",
        "4",
        "--keep-last",
        "10",
        "--log-every",
        "1",
        "--warmup-steps",
        "2",
        "--zero-shot",
        "[]",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["--max-steps".to_string(), steps.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn on_mpi() -> bool {
    std::env::var("HEARTH_TEST_LAUNCHER").is_ok_and(|l| l == "mpiexec")
}

/// `hearth launch --nproc-per-node n --` (the TCP ring), or `mpiexec -n n hearth` when the tests
/// run on MPI (`HEARTH_TEST_LAUNCHER=mpiexec`, with a hearth built with the `mpi` feature).
fn launcher(ranks: usize) -> Command {
    if on_mpi() {
        let mut c = Command::new("mpiexec");
        c.args(["-n", &ranks.to_string(), env!("CARGO_BIN_EXE_hearth")]);
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
        return c;
    }
    let mut c = hearth();
    c.args(["launch", "--nproc-per-node", &ranks.to_string(), "--master-port", &free_port(), "--"]);
    c
}

fn launch(ranks: usize, args: &[String]) -> Output {
    launcher(ranks).args(args).output().expect("the launcher runs")
}

/// Each logged step: `(step, loss, grad_norm, val_loss)`, and the whole record.
fn curve(out: &Path) -> Vec<(u64, f64, f64, Option<f64>, serde_json::Value)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap_or(f64::NAN), // null: not finite (a skipped f16 step)
                v["val_loss"].as_f64(),
                v,
            )
        })
        .collect()
}

/// The largest difference between two runs' losses, gradient norms and validation losses.
fn max_gap(a: &Path, b: &Path) -> f64 {
    let (a, b) = (curve(a), curve(b));
    assert_eq!(a.len(), b.len(), "both runs log every step");
    let mut gap: f64 = 0.0;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        gap = gap.max((x.1 - y.1).abs()).max((x.2 - y.2).abs());
        if let (Some(u), Some(v)) = (x.3, y.3) {
            gap = gap.max((u - v).abs());
        }
    }
    gap
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn two_processes_train_on_the_curve_of_one_and_zero_1_shards_the_optimizer() {
    let dir = scratch("ddp");
    let (single, ddp, zero, resumed) = (dir.join("single"), dir.join("ddp"), dir.join("zero"), dir.join("resumed"));
    ok(hearth().args(tiny(&single, 12, &[])).output().unwrap());
    ok(launch(2, &tiny(&ddp, 12, &[])));
    // The same global batch of 4 rows, 2 per rank: the same curve up to float summation order.
    let gap = max_gap(&single, &ddp);
    assert!(gap < 1e-4, "2 ranks vs 1 process: losses differ by {gap}");
    // Written once, by rank 0: 12 metric lines, one folder per checkpoint.
    assert_eq!(curve(&ddp).len(), 12);
    assert_eq!(entries(&ddp).iter().filter(|n| n.starts_with("step-")).count(), 3);

    ok(launch(2, &tiny(&zero, 12, &["--zero-stage", "1"])));
    // ZeRO-1 does the same arithmetic as replicated data parallelism, split by parameter.
    let gap = max_gap(&ddp, &zero);
    assert!(gap < 1e-6, "ZeRO-1 vs replicated: {gap}");
    let gap = max_gap(&single, &zero);
    assert!(gap < 1e-4, "ZeRO-1 on 2 ranks vs 1 process: {gap}");
    let ckpt = zero.join("step-00000004");
    let files = entries(&ckpt);
    assert!(files.contains(&"optimizer-rank00-of-02.bpk".to_string()), "{files:?}");
    assert!(files.contains(&"optimizer-rank01-of-02.bpk".to_string()), "{files:?}");
    let shard = |r: usize| std::fs::metadata(ckpt.join(format!("optimizer-rank{r:02}-of-02.bpk"))).unwrap().len();
    let whole = std::fs::metadata(ddp.join("step-00000004/optimizer.bpk")).unwrap().len();
    assert!(
        shard(0) < whole * 2 / 3 && shard(1) < whole * 2 / 3,
        "each shard holds about half: {} {} of {whole}",
        shard(0),
        shard(1)
    );

    // Resuming from step 4's sharded checkpoint lands on the uninterrupted run's curve.
    std::fs::create_dir_all(&resumed).unwrap();
    let copy = resumed.join("step-00000004");
    std::fs::create_dir_all(&copy).unwrap();
    for f in &files {
        std::fs::copy(ckpt.join(f), copy.join(f)).unwrap();
    }
    let lines: Vec<String> =
        std::fs::read_to_string(zero.join("metrics.jsonl")).unwrap().lines().take(4).map(String::from).collect();
    std::fs::write(resumed.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
    ok(launch(2, &tiny(&resumed, 12, &["--zero-stage", "1", "--resume"])));
    let gap = max_gap(&zero, &resumed);
    assert!(gap < 1e-6, "resumed ZeRO-1 run vs uninterrupted: {gap}");

    // A sharded state resumes only on as many ranks as wrote it, and says so.
    let out = hearth().args(tiny(&resumed, 16, &["--zero-stage", "1", "--resume"])).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("sharded over 2 ranks"), "{stderr}");
    // And only with ZeRO-1 on: replicated ranks would each treat their half as the whole state.
    let out = launch(2, &tiny(&resumed, 16, &["--resume"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("zero_stage = 1"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// SIGTERM to the launcher (a scheduler's stop, `kill`): every rank finishes the step in flight,
/// rank 0 writes its checkpoint before any rank exits, and `--resume` lands on the curve of a run
/// that was never stopped.
#[cfg(unix)]
#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features hearth/fault-injection")]
fn a_stopped_launch_checkpoints_once_and_resumes_on_the_same_curve() {
    let dir = scratch("stop");
    let (whole, stopped) = (dir.join("whole"), dir.join("stopped"));
    ok(launch(2, &tiny(&whole, 12, &["--zero-stage", "1", "--checkpoint-every", "100"])));
    let args = tiny(&stopped, 12, &["--zero-stage", "1", "--checkpoint-every", "100"]);
    let child = launcher(2)
        .args(&args)
        .env("HEARTH_TEST_STEP_DELAY_MS", "300")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    // Whole lines only: the run is writing the file while this reads it.
    let logged = || std::fs::read_to_string(stopped.join("metrics.jsonl")).map_or(0, |t| t.matches('\n').count());
    while logged() < 3 {
        assert!(start.elapsed().as_secs() < 120, "the run did not reach step 3");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    send_sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Every rank exits with 130; `hearth launch` reports it, MPICH's mpiexec at times reports 0 for
    // a job it was told to stop.
    assert!(!out.status.success() || on_mpi(), "{stderr}");
    let written: Vec<String> = entries(&stopped).into_iter().filter(|n| n.starts_with("step-")).collect();
    assert_eq!(written.len(), 1, "one checkpoint, at the step the ranks stopped: {written:?}");
    let step: u64 = written[0]["step-".len()..].parse().unwrap();
    assert!((3..12).contains(&step), "{written:?}");
    let files = entries(&stopped.join(&written[0]));
    assert!(files.contains(&"optimizer-rank01-of-02.bpk".to_string()), "{files:?}");
    ok(launch(2, &[args, vec!["--resume".into()]].concat()));
    let gap = max_gap(&whole, &stopped);
    assert!(gap < 1e-6, "stopped at step {step} and resumed vs never stopped: {gap}");
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
fn send_sigterm(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_failing_rank_stops_the_run_with_a_one_line_error() {
    let dir = scratch("fail");
    // 3 rows do not split over 2 ranks: every rank refuses, the launcher names the failure.
    let out = launch(2, &tiny(&dir.join("odd"), 4, &["--batch-size", "3"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("batch_size 3 does not split over 2 ranks"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn mixed_precision_tracks_f32_and_scales_the_loss_like_grad_scaler() {
    let dir = scratch("mixed");
    let on = |backend: &str, precision: &str, extra: &[&str]| {
        let out = dir.join(format!("{backend}-{precision}{}", extra.len()));
        let mut args = tiny(&out, 12, &["--backend", backend, "--precision", precision, "--lr", "3e-3"]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let output = ok(hearth().args(args).output().unwrap());
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (out, said)
    };
    // f16 compute on lavapipe (wgpu: WGSL on a software adapter) with f32 master weights, through
    // the f16 build of the fused attention kernel: the f32 curve within 1e-3 (pure f16 diverges
    // here: issue 7), and bf16 on flex.
    let (wgpu_f32, _) = on("wgpu", "f32", &[]);
    let (wgpu_f16, said) = on("wgpu", "f16", &[]);
    assert!(said.contains("attention: the fused WGSL kernel in f16"), "{said}");
    let gap = max_gap(&wgpu_f32, &wgpu_f16);
    assert!(gap < 1e-3, "f16 mixed precision vs f32 on wgpu: {gap}");
    assert!(curve(&wgpu_f16).iter().all(|r| r.4["loss_scale"] == 65536.0 && r.4["skipped"] == false));
    let (flex_f32, _) = on("flex", "f32", &[]);
    let (flex_bf16, _) = on("flex", "bf16", &[]);
    let gap = max_gap(&flex_f32, &flex_bf16);
    assert!(gap < 1e-2, "bf16 mixed precision vs f32 on flex: {gap}");
    assert!(gap > 0.0, "bf16 really computed in bf16");
    // lavapipe has no bf16: a clear message, then f32 (the same curve exactly).
    let (wgpu_bf16, stderr) = on("wgpu", "bf16", &[]);
    assert!(stderr.contains("this device has no bf16 arithmetic; training in f32"), "{stderr}");
    let gap = max_gap(&wgpu_f32, &wgpu_bf16);
    assert!(gap < 1e-6, "the f32 fallback vs f32: {gap} (lavapipe runs differ by ~1e-7)");

    // A scale too large for f16 overflows: the step is skipped and the scale halves until it
    // fits; after 3 clean steps it doubles.
    let (scaled, _) = on("flex", "f16", &["--loss-scale", "1048576", "--loss-scale-growth-interval", "3"]);
    let steps = curve(&scaled);
    let scale = |i: usize| steps[i].4["loss_scale"].as_f64().unwrap();
    let skipped = |i: usize| steps[i].4["skipped"].as_bool().unwrap();
    assert!(skipped(0), "2^20 overflows this model's f16 gradients");
    let mut clean = 0;
    for i in 0..steps.len() - 1 {
        let expected = if skipped(i) {
            clean = 0;
            scale(i) / 2.0
        } else {
            clean += 1;
            if clean == 3 {
                clean = 0;
                scale(i) * 2.0
            } else {
                scale(i)
            }
        };
        assert_eq!(scale(i + 1), expected, "step {}: {:?}", i + 1, steps[i].4);
    }
    assert!((0..steps.len()).any(|i| !skipped(i)), "the scale came down to one that fits");
    assert!((1..steps.len()).any(|i| scale(i) > scale(i - 1)), "the scale grew after clean steps");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn activation_checkpointing_keeps_every_family_on_its_curve() {
    let dir = scratch("ckpt");
    let corpus = dir.join("corpus.txt");
    write_novel_prefix(&corpus, 60_000);
    for (preset, backend) in [("gpt-tiny", "flex"), ("bert-tiny", "flex"), ("t5-tiny", "flex"), ("gpt-tiny", "wgpu")] {
        let run = |name: &str, checkpointing: &str, tokenizer: Option<&Path>| {
            let out = dir.join(format!("{preset}-{backend}-{name}"));
            let mut args: Vec<String> = vec!["train".into(), "--data".into(), corpus.to_str().unwrap().into()];
            for (k, v) in [
                ("--backend", backend),
                ("--preset", preset),
                ("--out-dir", out.to_str().unwrap()),
                ("--block-size", "32"),
                ("--batch-size", "4"),
                ("--max-steps", "6"),
                ("--log-every", "1"),
                ("--eval-every", "3"),
                ("--eval-batches", "2"),
                ("--checkpoint-every", "6"),
                ("--zero-shot", "[]"),
                ("--gradient-checkpointing", checkpointing),
            ] {
                args.extend([k.to_string(), v.to_string()]);
            }
            match tokenizer {
                Some(t) => args.extend(["--tokenizer".to_string(), t.to_str().unwrap().to_string()]),
                None => args.extend(["--tokenizer-vocab-size".to_string(), "300".to_string()]),
            }
            ok(hearth().args(args).output().unwrap());
            out
        };
        // WordPiece and Unigram training is not deterministic run to run: both runs get one tokenizer.
        let tokenizer = run("tokenizer", "false", None).join("step-00000006/tokenizer.json");
        let (off, on) = (run("off", "false", Some(&tokenizer)), run("on", "true", Some(&tokenizer)));
        let gap = max_gap(&off, &on);
        assert!(gap < 1e-5, "{preset} on {backend}: checkpointing changed the curve by {gap}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
