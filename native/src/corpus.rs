//! Text in, token ids out: plain text, JSONL (a "text" field per line) and `hearth prepare` shards
//! (memory-mapped u16/u32 token streams, documents separated by EOS).

use std::fs::File;
use std::path::{Path, PathBuf};

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::TokenSource;
use hearth_core::train::corpus::paragraphs;
use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

fn io_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Input(what.to_string()).in_file(path.display())
}

/// The documents of a file: for `.parquet` (a Hugging Face dataset export) and `.jsonl`, each
/// row's "text"; otherwise paragraphs (blocks separated by blank lines), with hard line wraps
/// joined by spaces.
pub fn read_documents(path: &Path) -> Result<Vec<String>, Error> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return read_parquet(path);
    }
    let bytes = std::fs::read(path).map_err(io("read", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        io_error(
            path,
            format!(
                "is not UTF-8 (invalid byte at offset {}); convert it with iconv -t UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let docs: Vec<String> = if path.extension().is_some_and(|e| e == "jsonl") {
        let mut docs = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| io_error(path, format!("line {}: not JSON ({e})", i + 1)))?;
            let t = v
                .get("text")
                .and_then(|t| t.as_str())
                .ok_or_else(|| io_error(path, format!("line {}: no \"text\" string field", i + 1)))?;
            docs.push(t.to_string());
        }
        docs
    } else {
        paragraphs(&text)
    };
    if docs.is_empty() {
        return Err(io_error(path, "holds no text; give a corpus with at least one non-empty line"));
    }
    Ok(docs)
}

/// The "text" column of a Parquet file, read row group by row group through the record API
/// (projected to that one column).
fn read_parquet(path: &Path) -> Result<Vec<String>, Error> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    use parquet::schema::types::Type;

    let file = File::open(path).map_err(|e| io_error(path, format!("cannot open it ({e})")))?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| io_error(path, format!("not a readable Parquet file ({e})")))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let text = schema.root_schema().get_fields().iter().find(|f| f.name() == "text").cloned().ok_or_else(|| {
        io_error(path, "has no \"text\" column; Hearth reads the text of each row from a column named text")
    })?;
    let projection = Type::group_type_builder("schema").with_fields(vec![text]).build().expect("a one-column schema");
    let rows = reader.get_row_iter(Some(projection)).map_err(|e| io_error(path, format!("cannot read rows ({e})")))?;
    let mut docs = Vec::new();
    for row in rows {
        let row = row.map_err(|e| io_error(path, format!("cannot read a row ({e})")))?;
        for (_, field) in row.get_column_iter() {
            match field {
                Field::Str(s) if !s.trim().is_empty() => docs.push(s.clone()),
                Field::Str(_) | Field::Null => {}
                other => return Err(io_error(path, format!("its \"text\" column holds {other:?}, not strings"))),
            }
        }
    }
    if docs.is_empty() {
        return Err(io_error(path, "holds no text; give a corpus with at least one non-empty row"));
    }
    Ok(docs)
}

/// Every document tokenized (in parallel, with a progress bar), each followed by `eos`, as one stream.
pub fn tokenize_documents(tokenizer: &Tokenizer, docs: &[String], eos: u32) -> Result<Vec<u32>, Error> {
    let bar = indicatif::ProgressBar::new(docs.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "tokenizing {bar:30} {pos}/{len} documents [{elapsed_precise} < {eta_precise}]",
        )
        .expect("template"),
    );
    let encoded: Vec<Vec<u32>> = docs
        .par_iter()
        .map(|d| {
            bar.inc(1);
            tokenizer.encode(d)
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();
    Ok(encoded
        .into_iter()
        .flat_map(|mut ids| {
            ids.push(eos);
            ids
        })
        .collect())
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
}

/// Writes `train.bin`, `val.bin` (u16 when the vocabulary fits, else u32, little-endian),
/// `meta.json` and the tokenizer into `dir`; the last `val_fraction` of documents is held out.
pub fn write_shards(dir: &Path, tokenizer: &Tokenizer, docs: &[String], val_fraction: f64) -> Result<ShardMeta, Error> {
    let eos = tokenizer
        .eos_id()
        .ok_or_else(|| Error::Config("the tokenizer has no end-of-text token to separate documents".into()))?;
    std::fs::create_dir_all(dir).map_err(io("create", dir.display()))?;
    let n_val = ((docs.len() as f64 * val_fraction).round() as usize).min(docs.len().saturating_sub(1));
    let (train_docs, val_docs) = docs.split_at(docs.len() - n_val);
    let wide = tokenizer.vocab_size() > u16::MAX as usize + 1;
    let mut sizes = [0usize; 2];
    for (i, (name, part)) in [("train.bin", train_docs), ("val.bin", val_docs)].into_iter().enumerate() {
        let ids = tokenize_documents(tokenizer, part, eos)?;
        sizes[i] = ids.len();
        let bytes: Vec<u8> = if wide {
            ids.iter().flat_map(|t| t.to_le_bytes()).collect()
        } else {
            ids.iter().flat_map(|&t| (t as u16).to_le_bytes()).collect()
        };
        crate::checkpoint::write_atomic(&dir.join(name), &bytes)?;
    }
    let meta = ShardMeta {
        dtype: if wide { "u32" } else { "u16" }.into(),
        vocab_size: tokenizer.vocab_size(),
        eos_id: eos,
        train_tokens: sizes[0],
        val_tokens: sizes[1],
        documents: docs.len(),
    };
    crate::checkpoint::write_atomic(&dir.join("meta.json"), serde_json::to_string_pretty(&meta).unwrap().as_bytes())?;
    crate::checkpoint::write_atomic(&dir.join("tokenizer.json"), tokenizer.to_json()?.as_bytes())?;
    Ok(meta)
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

/// A prepared folder: its meta and shards.
pub fn open_prepared(dir: &Path) -> Result<(ShardMeta, MmapShard, MmapShard, PathBuf), Error> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(io("read", meta_path.display()))?;
    let meta: ShardMeta = serde_json::from_str(&text)
        .map_err(|e| io_error(&meta_path, format!("not a `hearth prepare` meta.json ({e})")))?;
    let train = MmapShard::open(&dir.join("train.bin"), &meta.dtype)?;
    let val = MmapShard::open(&dir.join("val.bin"), &meta.dtype)?;
    Ok((meta, train, val, dir.join("tokenizer.json")))
}

/// Cross-entropy (nats/token) of `val` under the unigram distribution of `train` (add-one
/// smoothed): the loss of a model that ignores context, the baseline a trained model must beat.
pub fn unigram_baseline(train: &dyn TokenSource, val: &dyn TokenSource, vocab: usize) -> f64 {
    let mut counts = vec![1.0f64; vocab];
    let mut buf = vec![0u32; 1 << 16];
    let mut start = 0;
    while start < train.len() {
        let n = buf.len().min(train.len() - start);
        train.read(start, &mut buf[..n]);
        for &t in &buf[..n] {
            counts[(t as usize).min(vocab - 1)] += 1.0;
        }
        start += n;
    }
    let total: f64 = counts.iter().sum();
    let mut nll = 0.0;
    let mut start = 0;
    while start < val.len() {
        let n = buf.len().min(val.len() - start);
        val.read(start, &mut buf[..n]);
        nll -= buf[..n].iter().map(|&t| (counts[(t as usize).min(vocab - 1)] / total).ln()).sum::<f64>();
        start += n;
    }
    nll / val.len().max(1) as f64
}
