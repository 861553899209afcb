//! `hearth bench attention` as a user runs it: a small table with both paths, JSON written, and
//! the fused path's saved memory below the composition's.

use std::process::Command;

#[test]
fn bench_attention_prints_both_paths_and_writes_json() {
    let json = std::env::temp_dir().join(format!("hearth-bench-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench", "attention", "--seq", "64,128", "--iters", "1", "--heads", "2", "--json"])
        .arg(&json)
        .output()
        .expect("hearth runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("fused ms") && stdout.contains("ratio"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let fused = row["fused"]["saved_bytes"].as_u64().unwrap();
        let composed = row["composed"]["saved_bytes"].as_u64().expect("the composition ran");
        assert!(fused < composed, "fused keeps less between forward and backward: {row}");
        assert!(row["fused"]["ms"].as_f64().unwrap() > 0.0);
    }
    std::fs::remove_file(json).ok();
}

/// `hearth bench train` on flex, a few steps of the tiny benchmark GPT: the JSON's numbers agree
/// with one another and with the FLOPs formula worked out by hand.
#[test]
fn bench_train_reports_consistent_numbers() {
    let json = std::env::temp_dir().join(format!("hearth-bench-train-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench", "train", "--preset", "gpt-bench-tiny", "--backend", "flex", "--batch-size", "4"])
        .args(["--seq", "32", "--warmup", "1", "--steps", "3", "--peak-tflops", "0.5", "--json"])
        .arg(&json)
        .output()
        .expect("hearth runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for field in ["tokens/s", "step time", "TFLOP/s", "MFU", "peak memory"] {
        assert!(stdout.contains(field), "{field} missing: {stdout}");
    }
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).ok();
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs());
    // gpt-bench-tiny: vocab 512, 256 positions, d 128, 2 layers.
    let (v, p, d, l) = (512.0, 256.0, 128.0, 2.0);
    let params = v * d + p * d + l * (12.0 * d * d + 13.0 * d) + 2.0 * d;
    assert_eq!(f("params"), params);
    assert_eq!(f("params_flops"), params - p * d, "without the position table");
    assert_eq!(f("flops_per_token"), 6.0 * (params - p * d) + 12.0 * l * 32.0 * d);
    assert_eq!(f("tokens_per_step"), 4.0 * 32.0);
    assert!(close(f("tokens_per_s"), 4.0 * 32.0 * 3.0 / f("timed_s")), "{r}");
    let steps: Vec<f64> = r["step_ms"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(steps.len(), 3);
    assert!(close(steps.iter().sum::<f64>(), f("timed_s") * 1e3));
    assert!(close(f("step_ms_mean"), f("timed_s") * 1e3 / 3.0));
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(close(f("step_ms_median"), sorted[1]));
    assert!(close(f("achieved_tflops"), f("flops_per_token") * f("tokens_per_s") / 1e12));
    assert!(close(f("mfu"), f("achieved_tflops") / 0.5));
    assert!(f("peak_memory_bytes") > 1e6, "{r}");
    assert!(f("loss_first").is_finite() && (f("loss_first") - 512f64.ln()).abs() < 0.5, "{r}");
}

/// `hearth bench memory` on a tiny GPT: every combination runs, and ZeRO stage 1 halves the
/// optimizer state each of 2 ranks holds (the per-rank saving it exists for).
#[test]
fn bench_memory_measures_each_combination_and_zero_1_halves_the_optimizer_state() {
    let json = std::env::temp_dir().join(format!("hearth-bench-memory-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["bench", "memory", "--preset", "gpt-bench-tiny", "--batch-size", "2", "--seq", "16"])
        .args(["--steps", "1", "--warmup", "0", "--only", "f32,bf16+ckpt,f32+ddp,f32+zero1", "--json"])
        .arg(&json)
        .output()
        .expect("hearth runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 4, "{stdout}");
    let run = |name: &str| runs.iter().find(|r| r["combination"] == name).unwrap_or_else(|| panic!("{name}: {stdout}"));
    for r in runs {
        assert!(r["peak_bytes_per_rank"].as_u64().unwrap() > 0, "{r}");
        assert!(r["error"].is_null(), "{r}");
    }
    let replicated = run("f32+ddp")["optimizer_state_bytes_per_rank"].as_u64().unwrap() as f64;
    let sharded = run("f32+zero1")["optimizer_state_bytes_per_rank"].as_u64().unwrap() as f64;
    assert_eq!(run("f32")["optimizer_state_bytes_per_rank"].as_u64().unwrap() as f64, replicated);
    assert!((0.4..0.6).contains(&(sharded / replicated)), "ZeRO-1 per rank {sharded} of {replicated}");
    // The same step on the same data: the data-parallel runs end on the single run's loss.
    let loss = |name: &str| run(name)["loss_last"].as_f64().unwrap();
    assert!((loss("f32") - loss("f32+ddp")).abs() < 1e-4 && (loss("f32+ddp") - loss("f32+zero1")).abs() < 1e-6);
    std::fs::remove_file(json).ok();
}
