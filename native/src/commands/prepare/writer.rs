//! Token shards on disk: numbered files of `shard_tokens` tokens each (`train-000000.bin`, …; u16
//! little-endian where the vocabulary fits, else u32), written as the tokens come. A shard is
//! written under a hidden `.partial` name and renamed when full, so a finished shard is whole;
//! the partial one is cut back to the last commit when a run resumes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use hearth_core::Error;
use hearth_core::error::io;
use serde::{Deserialize, Serialize};

/// One split's shards being written.
pub struct ShardWriter {
    dir: PathBuf,
    split: &'static str,
    wide: bool,
    shard_tokens: u64,
    /// The committed position: finished shards, and tokens in the partial one.
    pub done: SplitProgress,
    /// Tokens written into the partial shard since (not yet committed).
    pending: u64,
    file: BufWriter<File>,
}

/// Where a split stands: `shards` finished, `partial` tokens in the next, `tokens` in all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitProgress {
    pub shards: u64,
    pub partial: u64,
    pub tokens: u64,
}

pub fn shard_name(split: &str, index: u64) -> String {
    format!("{split}-{index:06}.bin")
}

fn partial_path(dir: &Path, split: &str, index: u64) -> PathBuf {
    dir.join(format!(".{}.partial", shard_name(split, index)))
}

impl ShardWriter {
    /// A writer continuing from `done` (a new split: the default): shards past it are removed and
    /// the partial shard is cut back to `done.partial` tokens.
    pub fn open(
        dir: &Path,
        split: &'static str,
        wide: bool,
        shard_tokens: u64,
        done: SplitProgress,
    ) -> Result<Self, Error> {
        let width = if wide { 4 } else { 2 };
        // Whatever a killed run wrote after its last commit.
        for index in done.shards.. {
            let (finished, partial) = (dir.join(shard_name(split, index)), partial_path(dir, split, index));
            if index == done.shards && finished.exists() && !partial.exists() {
                // Renamed just before the kill: it is the partial shard again.
                std::fs::rename(&finished, &partial).map_err(io("rename", finished.display()))?;
                continue;
            }
            let mut any = false;
            for path in [finished, partial].into_iter().filter(|p| p.exists() && index > done.shards) {
                std::fs::remove_file(&path).map_err(io("remove", path.display()))?;
                any = true;
            }
            if index > done.shards && !any {
                break;
            }
        }
        let path = partial_path(dir, split, done.shards);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open", path.display()))?;
        let have = file.metadata().map_err(io("read", path.display()))?.len();
        if have < done.partial * width {
            return Err(Error::Input(format!(
                "holds {} tokens but the last commit counted {}; prepare again without --resume",
                have / width,
                done.partial
            ))
            .in_file(path.display()));
        }
        file.set_len(done.partial * width).map_err(io("write", path.display()))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0)).map_err(io("write", path.display()))?;
        Ok(Self { dir: dir.to_path_buf(), split, wide, shard_tokens, done, pending: 0, file })
    }

    /// Appends `tokens`, finishing shards as they fill.
    pub fn push(&mut self, tokens: &[u32]) -> Result<(), Error> {
        let mut rest = tokens;
        while !rest.is_empty() {
            let room = (self.shard_tokens - self.done.partial - self.pending) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            let mut bytes = Vec::with_capacity(now.len() * 4);
            for &t in now {
                if self.wide {
                    bytes.extend_from_slice(&t.to_le_bytes());
                } else {
                    bytes.extend_from_slice(&(t as u16).to_le_bytes());
                }
            }
            let path = partial_path(&self.dir, self.split, self.done.shards);
            self.file.write_all(&bytes).map_err(io("write", path.display()))?;
            self.pending += now.len() as u64;
            if self.done.partial + self.pending == self.shard_tokens {
                self.finish_shard()?;
            }
            rest = later;
        }
        Ok(())
    }

    /// The partial shard, full (or the last one), renamed to its final name.
    fn finish_shard(&mut self) -> Result<(), Error> {
        let partial = partial_path(&self.dir, self.split, self.done.shards);
        self.file.flush().map_err(io("write", partial.display()))?;
        self.file.get_ref().sync_all().map_err(io("write", partial.display()))?;
        let finished = self.dir.join(shard_name(self.split, self.done.shards));
        std::fs::rename(&partial, &finished).map_err(io("rename", partial.display()))?;
        self.done.tokens += self.pending;
        self.done.shards += 1;
        self.done.partial = 0;
        self.pending = 0;
        let next = partial_path(&self.dir, self.split, self.done.shards);
        self.file = BufWriter::with_capacity(1 << 20, File::create(&next).map_err(io("create", next.display()))?);
        Ok(())
    }

    /// The token type on disk, as `meta.json` names it.
    pub fn dtype(&self) -> &'static str {
        if self.wide { "u32" } else { "u16" }
    }

    /// Everything pushed so far, on disk; the progress to record in the state file.
    pub fn commit(&mut self) -> Result<SplitProgress, Error> {
        let partial = partial_path(&self.dir, self.split, self.done.shards);
        self.file.flush().map_err(io("write", partial.display()))?;
        self.file.get_ref().sync_data().map_err(io("write", partial.display()))?;
        self.done.partial += self.pending;
        self.done.tokens += self.pending;
        self.pending = 0;
        Ok(self.done)
    }

    /// The last shard finished (unless empty); the names of all of them.
    pub fn finish(mut self) -> Result<Vec<String>, Error> {
        self.commit()?;
        if self.done.partial > 0 {
            self.finish_shard()?;
        }
        let empty = partial_path(&self.dir, self.split, self.done.shards);
        drop(self.file);
        std::fs::remove_file(&empty).map_err(io("remove", empty.display()))?;
        Ok((0..self.done.shards).map(|i| shard_name(self.split, i)).collect())
    }
}
