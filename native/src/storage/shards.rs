//! The shards `hearth prepare` writes, read back: memory-mapped u16/u32 token streams, documents
//! separated by EOS, and the `meta.json` beside them.

use std::fs::File;
use std::path::{Path, PathBuf};

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::train::TokenSource;
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

fn io_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Input(what.to_string()).in_file(path.display())
}

/// What `hearth prepare` writes beside the shards.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardMeta {
    pub dtype: String,
    pub vocab_size: usize,
    pub eos_id: u32,
    pub train_tokens: usize,
    pub val_tokens: usize,
    pub documents: usize,
    /// The shards of each split, in order (empty in a folder from before shards: `train.bin`,
    /// `val.bin`).
    #[serde(default)]
    pub train_shards: Vec<String>,
    #[serde(default)]
    pub val_shards: Vec<String>,
    /// What `--dedup` and `--filter` ran and removed (absent when none ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<serde_json::Value>,
}

/// A memory-mapped shard: tokens are read where they lie, never loaded whole.
pub struct MmapShard {
    map: Mmap,
    wide: bool,
}

impl MmapShard {
    pub fn open(path: &Path, dtype: &str) -> Result<Self, Error> {
        let file = File::open(path)
            .map_err(|e| io_error(path, format!("cannot open it ({e}); run `hearth prepare` first")))?;
        // SAFETY: the shard is written once by `hearth prepare` (atomically) and only read here.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_error(path, format!("cannot map it ({e})")))?;
        let wide = match dtype {
            "u16" => false,
            "u32" => true,
            other => return Err(io_error(path, format!("unknown token dtype \"{other}\" in meta.json"))),
        };
        if map.len() % if wide { 4 } else { 2 } != 0 {
            return Err(io_error(
                path,
                "is truncated (its size is not a whole number of tokens); run `hearth prepare` again",
            ));
        }
        Ok(Self { map, wide })
    }
}

impl TokenSource for MmapShard {
    fn len(&self) -> usize {
        self.map.len() / if self.wide { 4 } else { 2 }
    }
    fn read(&self, start: usize, out: &mut [u32]) {
        if self.wide {
            for (o, b) in out.iter_mut().zip(self.map[start * 4..].chunks_exact(4)) {
                *o = u32::from_le_bytes(b.try_into().unwrap());
            }
        } else {
            for (o, b) in out.iter_mut().zip(self.map[start * 2..].chunks_exact(2)) {
                *o = u16::from_le_bytes([b[0], b[1]]) as u32;
            }
        }
    }
}

/// A split's shards as one token stream: a read may run across a shard boundary, so a window's
/// position (and a checkpoint's data cursor) is exact whatever the shard size.
pub struct ShardSet {
    shards: Vec<MmapShard>,
    /// Where each shard starts in the stream, and the stream's length last.
    starts: Vec<usize>,
}

impl ShardSet {
    pub fn new(shards: Vec<MmapShard>) -> Self {
        let mut starts = vec![0];
        for s in &shards {
            starts.push(starts.last().expect("one start") + s.len());
        }
        Self { shards, starts }
    }
}

impl TokenSource for ShardSet {
    fn len(&self) -> usize {
        *self.starts.last().expect("one start")
    }
    fn read(&self, start: usize, out: &mut [u32]) {
        let (mut at, mut done) = (start, 0);
        let mut shard = self.starts.partition_point(|&s| s <= at) - 1;
        while done < out.len() {
            let n = (self.starts[shard + 1] - at).min(out.len() - done);
            self.shards[shard].read(at - self.starts[shard], &mut out[done..done + n]);
            (at, done, shard) = (at + n, done + n, shard + 1);
        }
    }
}

/// A prepared folder: its meta, its train and validation streams, and its tokenizer's path.
pub fn open_prepared(dir: &Path) -> Result<(ShardMeta, ShardSet, ShardSet, PathBuf), Error> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(io("read", meta_path.display()))?;
    let meta: ShardMeta = serde_json::from_str(&text)
        .map_err(|e| io_error(&meta_path, format!("not a `hearth prepare` meta.json ({e})")))?;
    let open = |names: &[String], single: &str| -> Result<ShardSet, Error> {
        let names = if names.is_empty() { vec![single.to_string()] } else { names.to_vec() };
        Ok(ShardSet::new(names.iter().map(|n| MmapShard::open(&dir.join(n), &meta.dtype)).collect::<Result<_, _>>()?))
    };
    let (train, val) = (open(&meta.train_shards, "train.bin")?, open(&meta.val_shards, "val.bin")?);
    for (set, tokens, split) in [(&train, meta.train_tokens, "train"), (&val, meta.val_tokens, "validation")] {
        if set.len() != tokens {
            return Err(io_error(
                &meta_path,
                format!("counts {tokens} {split} tokens but the shards hold {}; run `hearth prepare` again", set.len()),
            ));
        }
    }
    Ok((meta, train, val, dir.join("tokenizer.json")))
}
