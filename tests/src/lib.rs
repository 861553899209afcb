//! Helpers shared by Hearth's integration tests.

use std::path::PathBuf;

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// The three files of an oracle folder: `(config.json, model.safetensors, io.safetensors)`.
pub fn oracle(family: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = fixture(&format!("oracle/{family}"));
    let read =
        |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
    (read("config.json"), read("model.safetensors"), read("io.safetensors"))
}
