//! Helpers shared by Hearth's integration tests.

use std::path::PathBuf;

/// `tests/fixtures/<rel>`. The folder is read at run time (`cargo test` sets `CARGO_MANIFEST_DIR`):
/// this library is not rebuilt when a build cache is reused from a clone at another path, so the
/// compile-time value can name a clone that is gone.
pub fn fixture(rel: &str) -> PathBuf {
    let dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    dir.join("fixtures").join(rel)
}

/// The three files of an oracle folder: `(config.json, model.safetensors, io.safetensors)`.
pub fn oracle(family: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = fixture(&format!("oracle/{family}"));
    let read =
        |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()));
    (read("config.json"), read("model.safetensors"), read("io.safetensors"))
}

/// `n` random token ids below `vocab` from a fixed generator seeded with `seed` (a step's cost
/// and numbers do not depend on the text).
pub fn random_tokens(seed: u64, vocab: u32, n: usize) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}
