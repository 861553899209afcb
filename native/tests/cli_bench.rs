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
