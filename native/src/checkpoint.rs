//! Checkpoints on disk: each is a folder `step-NNNNNNNN/` holding an HF model folder
//! (`config.json`, `model.safetensors`, `tokenizer.json`) plus `optimizer.bpk` (one file per rank
//! under ZeRO stage 1) and `trainer_state.json`. A folder is written under a temporary name and renamed when complete, so
//! a run killed mid-write leaves the previous checkpoint as the latest; the oldest beyond
//! `keep_last` are removed after a new one lands.

use std::path::{Path, PathBuf};

use hearth_core::Error;
use hearth_core::train::Checkpoint;

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let fail = |e: std::io::Error| Error::Input(format!("cannot write it ({e})")).in_file(path.display());
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// The optimizer state's file: `optimizer.bpk`, or one per rank when ZeRO stage 1 sharded it.
pub fn optimizer_file(rank: usize, shards: usize) -> String {
    if shards <= 1 { "optimizer.bpk".into() } else { format!("optimizer-rank{rank:02}-of-{shards:02}.bpk") }
}

/// The optimizer state `rank` of `world` resumes from: the one file, or its own shard (a sharded
/// state resumes only on as many ranks as wrote it, with ZeRO stage 1 on).
pub fn read_optimizer(dir: &Path, rank: usize, world: usize, zero_stage: u8) -> Result<Vec<u8>, Error> {
    if dir.join("optimizer.bpk").exists() {
        return read(dir, "optimizer.bpk");
    }
    let shards = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("optimizer-rank"))
        .count();
    if shards == 0 {
        return read(dir, "optimizer.bpk");
    }
    if shards != world || zero_stage != 1 {
        return Err(Error::Config(format!(
            "the optimizer state is sharded over {shards} ranks (ZeRO stage 1); resume with {shards} processes and zero_stage = 1"
        ))
        .in_file(dir.display()));
    }
    read(dir, &optimizer_file(rank, shards))
}

pub fn step_dir(out_dir: &Path, step: u64) -> PathBuf {
    out_dir.join(format!("step-{step:08}"))
}

/// Writes a complete checkpoint folder for `step`, then prunes old ones.
pub fn save(
    out_dir: &Path,
    step: u64,
    ckpt: &Checkpoint,
    tokenizer_json: &str,
    keep_last: usize,
) -> Result<PathBuf, Error> {
    let final_dir = step_dir(out_dir, step);
    let tmp = out_dir.join(format!(".step-{step:08}.partial"));
    let fail = |p: &Path, e: std::io::Error| Error::Input(format!("cannot write it ({e})")).in_file(p.display());
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| fail(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| fail(&tmp, e))?;
    let shards = ckpt.optimizer_shards.len();
    let optimizer = ckpt.optimizer_shards.iter().enumerate().map(|(rank, bytes)| (optimizer_file(rank, shards), bytes));
    let files = [
        ("config.json".to_string(), ckpt.config_json.as_bytes()),
        ("model.safetensors".to_string(), &ckpt.model_safetensors[..]),
        ("tokenizer.json".to_string(), tokenizer_json.as_bytes()),
    ]
    .into_iter()
    .chain(optimizer.map(|(name, bytes)| (name, &bytes[..])))
    .chain([("trainer_state.json".to_string(), ckpt.state_json.as_bytes())]);
    for (name, bytes) in files {
        let name = name.as_str();
        std::fs::write(tmp.join(name), bytes).map_err(|e| fail(&tmp.join(name), e))?;
        // Fault injection for the test that kills a run (SIGKILL) while a checkpoint is being written.
        if std::env::var("HEARTH_TEST_KILL_IN_CHECKPOINT").is_ok_and(|s| s == step.to_string()) {
            let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
            std::process::abort();
        }
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| fail(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| fail(&final_dir, e))?;
    let mut all = list(out_dir);
    while all.len() > keep_last.max(1) {
        let (_, old) = all.remove(0);
        std::fs::remove_dir_all(&old).ok();
    }
    Ok(final_dir)
}

/// Complete checkpoints, oldest first.
pub fn list(out_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(out_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name.strip_prefix("step-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

pub fn latest(out_dir: &Path) -> Option<(u64, PathBuf)> {
    list(out_dir).pop()
}

pub fn read(dir: &Path, name: &str) -> Result<Vec<u8>, Error> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| Error::Input(format!("cannot read it ({e})")).in_file(path.display()))
}
