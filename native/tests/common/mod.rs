//! What the command-line tests share: the `hearth` binary under test, a scratch folder per test,
//! and a success check that shows the output when it fails.

#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `hearth` built for these tests (Mesa wants a runtime dir for Vulkan).
pub fn hearth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
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
