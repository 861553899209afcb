//! `hearth parity` as a user runs it: exit status, the printed verdict, one-line errors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn oracle(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/oracle").join(family)
}

fn hearth(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).output().expect("hearth runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn parity_passes_on_the_oracle_folders() {
    for family in ["gpt2", "bert", "t5"] {
        let dir = oracle(family);
        let (code, stdout, stderr) = hearth(&["parity", dir.to_str().unwrap(), "--backend", "flex"]);
        assert_eq!(code, 0, "{family}: {stdout}{stderr}");
        assert!(stdout.contains("PASS"), "{stdout}");
        assert!(stdout.contains("logits") && stdout.contains("loss"), "{stdout}");
    }
}

#[test]
fn parity_chooses_its_backend_as_the_other_commands_do() {
    // Without --backend: wgpu on a hardware adapter, flex (saying so) where the only adapter is a
    // software renderer (lavapipe in CI), as `train`, `generate` and `eval` choose.
    let dir = oracle("bert");
    let (code, stdout, stderr) = hearth(&["parity", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    if stderr.contains("software renderer") {
        assert!(stdout.contains("parity on flex"), "software adapter only, so flex: {stdout}");
    } else {
        assert!(stdout.contains("parity on wgpu"), "a hardware adapter, so wgpu: {stdout}{stderr}");
    }
}

#[test]
fn parity_fails_on_perturbed_weights() {
    let tmp = std::env::temp_dir().join(format!("hearth-perturbed-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = oracle("gpt2");
    for f in ["config.json", "io.safetensors"] {
        std::fs::copy(src.join(f), tmp.join(f)).unwrap();
    }
    // Flip a few low mantissa bits of every weight: a ~1e-3 relative change, past 1e-4.
    let mut weights = std::fs::read(src.join("model.safetensors")).unwrap();
    let header = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize + 8;
    for chunk in weights[header..].chunks_exact_mut(4) {
        let x = f32::from_le_bytes(chunk.try_into().unwrap()) * 1.001;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    std::fs::write(tmp.join("model.safetensors"), &weights).unwrap();

    let (code, stdout, _) = hearth(&["parity", tmp.to_str().unwrap(), "--backend", "flex", "--tol", "1e-4"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    // A looser tolerance accepts the same folder.
    let (code, stdout, _) = hearth(&["parity", tmp.to_str().unwrap(), "--backend", "flex", "--tol", "0.5"]);
    assert_eq!(code, 0, "{stdout}");
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn missing_files_and_unknown_model_types_are_one_line_errors() {
    let tmp = std::env::temp_dir().join(format!("hearth-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (code, stdout, stderr) = hearth(&["parity", tmp.to_str().unwrap(), "--backend", "flex"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("config.json") && stderr.contains("cannot read"),
        "{stderr}"
    );

    let src = oracle("bert");
    for f in ["model.safetensors", "io.safetensors"] {
        std::fs::copy(src.join(f), tmp.join(f)).unwrap();
    }
    std::fs::write(tmp.join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    let (code, _, stderr) = hearth(&["parity", tmp.to_str().unwrap(), "--backend", "flex"]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("config.json") && stderr.contains("unknown model_type \"mamba\""), "{stderr}");
    std::fs::remove_dir_all(&tmp).ok();
}
