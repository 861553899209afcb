//! What the command-line tests share: the `hearth` binary under test, a scratch folder per test,
//! and a success check that shows the output when it fails.

#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `hearth` built for these tests (Mesa wants a runtime dir for Vulkan).
pub fn hearth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

/// `hearth args`, run to the end.
pub fn run(args: &[&str]) -> Output {
    hearth().args(args).output().expect("hearth runs")
}

/// The bundled corpus, *Pride and Prejudice*.
pub fn novel() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/pride_and_prejudice.txt")).unwrap()
}

/// The bundled corpus's first `bytes` (whole paragraphs), written to `path`.
pub fn write_novel_prefix(path: &Path, bytes: usize) {
    let text = novel();
    std::fs::write(path, &text[..text[..bytes].rfind("\n\n").unwrap()]).unwrap();
}

/// An empty folder `hearth-<name>-<pid>` in the temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `output`, asserted successful (its stdout and stderr in the message).
pub fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `hearth args` expecting failure: its exit status is not 0 and its stderr holds one
/// `error:` line (Mesa's runtime-dir warning aside), which it returns.
pub fn fails(args: &[&str]) -> String {
    let out = hearth().args(args).output().expect("hearth runs");
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error: ")).count(), 1, "one error line: {stderr}");
    stderr
}

/// Every file below `dir` (its path relative to `dir`) with its bytes, sorted: two folders, or one
/// before and after a command, compare equal when they hold the same bytes.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                all.push((path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
            }
        }
    }
    all.sort();
    all
}
