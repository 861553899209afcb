//! Checkpoints on disk: each is a folder `step-NNNNNNNN/` holding an HF model folder
//! (`config.json`, `model.safetensors`, `tokenizer.json`) plus `optimizer.bpk` (one file per rank
//! under ZeRO stage 1), `trainer_state.json` and `checksums.json` (each file's size and CRC-32). A
//! folder is written under a temporary name and renamed when complete, so a run killed mid-write
//! leaves the previous checkpoint as the latest; the oldest beyond `keep_last` are removed after a
//! new one lands. A resume takes the newest checkpoint whose files still match their checksums.
//!
//! A run folder belongs to one run: a new run into a folder that holds another run's checkpoints
//! or metrics is refused unless it resumes it or is told to overwrite it ([`refuse_other_run`]).

use std::path::{Path, PathBuf};

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::train::Checkpoint;

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let fail = |e: std::io::Error| io("write", path.display())(e);
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

/// The manifest of a checkpoint folder: each file's size and CRC-32 (crc32fast: a damaged or
/// truncated file is caught at resume, at gigabytes per second).
const MANIFEST: &str = "checksums.json";

fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// A file's length and CRC-32, read through a fixed buffer (a checkpoint's files can be gigabytes).
fn file_crc32(path: &Path) -> std::io::Result<(u64, u32)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let (mut h, mut len, mut buf) = (crc32fast::Hasher::new(), 0u64, vec![0u8; 1 << 20]);
    loop {
        match file.read(&mut buf)? {
            0 => return Ok((len, h.finalize())),
            n => {
                h.update(&buf[..n]);
                len += n as u64;
            }
        }
    }
}

/// `step-00000400`: a complete checkpoint's folder name (`with_suffix`: also one set aside,
/// `step-00000400.damaged`, `step-00000400.damaged.2`).
fn is_checkpoint_name(name: &str, with_suffix: bool) -> bool {
    let Some(rest) = name.strip_prefix("step-") else { return false };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits == 8 && (rest.len() == 8 || (with_suffix && rest[8..].starts_with(".damaged")))
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
    let fail = |p: &Path, e: std::io::Error| io("write", p.display())(e);
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
    let mut manifest = serde_json::Map::new();
    for (name, bytes) in files {
        let name = name.as_str();
        std::fs::write(tmp.join(name), bytes).map_err(|e| fail(&tmp.join(name), e))?;
        manifest.insert(name.to_string(), serde_json::json!({"bytes": bytes.len(), "crc32": crc32(bytes)}));
        crate::faults::while_writing_checkpoint(step); // tests only
    }
    let manifest = serde_json::to_string_pretty(&serde_json::json!({ "files": manifest })).expect("json");
    std::fs::write(tmp.join(MANIFEST), manifest).map_err(|e| fail(&tmp.join(MANIFEST), e))?;
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
            let step = name.strip_prefix("step-").filter(|_| is_checkpoint_name(&name, false))?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

pub fn latest(out_dir: &Path) -> Option<(u64, PathBuf)> {
    list(out_dir).pop()
}

/// Why the checkpoint in `dir` cannot be trusted, or `None` when every file it lists is there with
/// its size and CRC-32. A folder without `checksums.json` (written before Hearth kept one) must
/// at least hold the files a resume reads; their loaders check the rest.
pub fn damage(dir: &Path) -> Option<String> {
    let Ok(text) = std::fs::read(dir.join(MANIFEST)) else {
        let required = ["config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"];
        return required.iter().find(|f| !dir.join(f).is_file()).map(|f| format!("{f} is missing"));
    };
    let manifest: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(_) => return Some(format!("{MANIFEST} is not valid JSON")),
    };
    let Some(files) = manifest["files"].as_object().filter(|f| !f.is_empty()) else {
        return Some(format!("{MANIFEST} lists no files"));
    };
    for (name, want) in files {
        match file_crc32(&dir.join(name)) {
            Err(_) => return Some(format!("{name} is missing")),
            Ok((len, _)) if Some(len) != want["bytes"].as_u64() => {
                return Some(format!("{name} has {len} bytes, {} when written", want["bytes"]));
            }
            Ok((_, crc)) if Some(crc as u64) != want["crc32"].as_u64() => {
                return Some(format!("{name} does not match its checksum"));
            }
            Ok(_) => {}
        }
    }
    None
}

/// The newest checkpoint of `out_dir` that is intact (see [`damage`]); newer damaged ones are
/// named on stderr and, with `set_aside` (a resume, which will write newer checkpoints), renamed
/// `step-NNNNNNNN.damaged` (kept, never deleted, no longer taken as checkpoints). An error when none
/// is intact, so that a run never starts again from scratch silently.
pub fn latest_intact(out_dir: &Path, set_aside: bool) -> Result<(u64, PathBuf), Error> {
    let all = list(out_dir);
    let mut damaged: Vec<(PathBuf, String)> = Vec::new();
    for (step, dir) in all.iter().rev() {
        match damage(dir) {
            None => {
                for (bad, why) in &damaged {
                    let mut note = String::new();
                    if set_aside {
                        let aside = (1..)
                            .map(|i| match i {
                                1 => PathBuf::from(format!("{}.damaged", bad.display())),
                                i => PathBuf::from(format!("{}.damaged.{i}", bad.display())),
                            })
                            .find(|p| !p.exists())
                            .expect("a free name");
                        std::fs::rename(bad, &aside).map_err(|e| {
                            Error::Input(format!("cannot set the damaged checkpoint aside ({e})"))
                                .in_file(bad.display())
                        })?;
                        note = format!("set aside as {}; ", aside.display());
                    }
                    eprintln!(
                        "warning: {} is damaged ({why}); {note}using the newest intact checkpoint, {}",
                        bad.display(),
                        dir.display()
                    );
                }
                return Ok((*step, dir.clone()));
            }
            Some(why) => damaged.push((dir.clone(), why)),
        }
    }
    if damaged.is_empty() {
        return Err(Error::Refused(format!("no complete checkpoint in {}", out_dir.display())));
    }
    let listed: Vec<String> = damaged.iter().map(|(d, why)| format!("{} ({why})", d.display())).collect();
    Err(Error::Refused(format!("every checkpoint in {} is damaged: {}", out_dir.display(), listed.join(", "))))
}

/// What a run leaves in its folder: checkpoints (complete, partial or set aside), `metrics.jsonl`,
/// `run.toml`, the loss curve.
pub fn run_files(out_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            is_checkpoint_name(&name, true)
                || name
                    .strip_prefix('.')
                    .and_then(|n| n.strip_suffix(".partial"))
                    .is_some_and(|n| is_checkpoint_name(n, false))
                || ["metrics.jsonl", "run.toml", "loss_curve.svg"].contains(&name.as_str())
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// A new run (no `--resume`) into `out_dir`: refused, touching nothing, when the folder holds
/// another run (a checkpoint, complete, partial or set aside, or logged metrics; a start that failed
/// before its first step leaves neither), unless `overwrite`. Returns the earlier run's files, for
/// [`remove_run`].
pub fn refuse_other_run(out_dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, Error> {
    let files = run_files(out_dir);
    let name = |f: &PathBuf| f.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let is_checkpoint = |n: &str| n.starts_with("step-") || n.starts_with(".step-");
    let checkpoints = files.iter().filter(|f| is_checkpoint(&name(f))).count();
    let metrics = out_dir.join("metrics.jsonl");
    let logged = std::fs::metadata(&metrics).is_ok_and(|m| m.len() > 0);
    if overwrite {
        return Ok(files);
    }
    if checkpoints == 0 && !logged {
        return Ok(Vec::new()); // a start that failed early: its run.toml is rewritten, nothing lost
    }
    let mut shown: Vec<String> = files.iter().map(name).filter(|n| !is_checkpoint(n)).collect();
    if checkpoints > 0 {
        shown.insert(0, format!("{checkpoints} checkpoint(s)"));
    }
    Err(Error::Refused(format!(
        "{} already holds another run ({}); continue it with --resume, replace it with --overwrite, or choose another --out-dir",
        out_dir.display(),
        shown.join(", ")
    )))
}

/// Removes the earlier run's files (`--overwrite`), and only those.
pub fn remove_run(files: &[PathBuf]) -> Result<(), Error> {
    for f in files {
        let removed = if f.is_dir() { std::fs::remove_dir_all(f) } else { std::fs::remove_file(f) };
        removed.map_err(|e| Error::Input(format!("cannot remove it for --overwrite ({e})")).in_file(f.display()))?;
    }
    Ok(())
}

pub fn read(dir: &Path, name: &str) -> Result<Vec<u8>, Error> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(io("read", path.display()))
}
