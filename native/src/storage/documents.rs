//! The documents of a corpus, read as streams: many files, folders and globs at once; plain text
//! (paragraphs), JSON lines (one field per line), either of them gzip- or zstd-compressed, and
//! Parquet (a column, one row group at a time: the layout of a Hugging Face dataset export). Memory
//! holds one line, paragraph or row group, never a file. A bad file names itself and its line or
//! row group.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::tokenizer::Tokenizer;
use rayon::prelude::*;

/// How a file's documents are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Paragraphs: blocks separated by blank lines, line wraps and runs of spaces made one space.
    Text,
    /// One JSON object per line, the document in a string field.
    Jsonl,
    /// A string column, read by row group.
    Parquet,
}

/// A file of the corpus.
#[derive(Clone, Debug)]
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
    /// `.gz` or `.zst` (text and JSON lines).
    pub compression: Option<&'static str>,
    /// Bytes on disk (compressed, where it is).
    pub bytes: u64,
}

impl Input {
    pub fn new(path: PathBuf) -> Result<Self, Error> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        let (stem, compression) = match () {
            _ if name.ends_with(".gz") => (&name[..name.len() - 3], Some("gz")),
            _ if name.ends_with(".zst") => (&name[..name.len() - 4], Some("zst")),
            _ => (name.as_str(), None),
        };
        let format = match () {
            _ if stem.ends_with(".parquet") && compression.is_none() => Format::Parquet,
            _ if stem.ends_with(".parquet") => {
                return Err(Error::Input(
                    "a compressed Parquet file; Parquet compresses inside (decompress the file)".into(),
                )
                .in_file(path.display()));
            }
            _ if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") => Format::Jsonl,
            _ => Format::Text,
        };
        let bytes = std::fs::metadata(&path).map_err(io("read", path.display()))?.len();
        Ok(Self { path, format, compression, bytes })
    }
}

/// Whether a file in a folder is part of the corpus: text, JSON lines or Parquet by its name
/// (`.txt`, `.jsonl`, `.ndjson`, `.parquet`, the first two also `.gz`/`.zst`), so that a dataset's
/// README or `.gitattributes` stays out.
fn is_corpus_file(name: &str) -> bool {
    let name = name.to_lowercase();
    let name = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".zst")).unwrap_or(&name);
    [".txt", ".jsonl", ".ndjson", ".parquet"].iter().any(|ext| name.ends_with(ext))
}

/// The files named by `paths`, in order: a file as given (read as text unless its name says JSON
/// lines or Parquet), a folder as its corpus files below it (sorted by name; see
/// [`is_corpus_file`]), a pattern (`data/*.jsonl.zst`, quoted so the shell leaves it) as its
/// matches, sorted.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, Error> {
    let mut inputs = Vec::new();
    for path in paths {
        let text = path.to_string_lossy();
        if !path.exists() && text.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(&text)
                .map_err(|e| Error::Input(format!("not a valid pattern ({e})")).in_file(&text))?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matches.is_empty() {
                return Err(Error::Input("matches no file".into()).in_file(&text));
            }
            for p in matches {
                inputs.push(Input::new(p)?);
            }
        } else if path.is_dir() {
            let before = inputs.len();
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                let entry = entry.map_err(|e| Error::Input(format!("cannot list it ({e})")).in_file(path.display()))?;
                let name = entry.file_name().to_string_lossy();
                if entry.file_type().is_file() && !name.starts_with('.') && is_corpus_file(&name) {
                    inputs.push(Input::new(entry.into_path())?);
                }
            }
            if inputs.len() == before {
                return Err(Error::Input(
                    "is a folder without .txt, .jsonl, .ndjson or .parquet files (or .gz/.zst of the first three)"
                        .into(),
                )
                .in_file(path.display()));
            }
        } else {
            inputs.push(Input::new(path.clone())?);
        }
    }
    Ok(inputs)
}

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Input(what.to_string()).in_file(path.display())
}

/// Counts the bytes read from the file into `read` (for the progress bar).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The documents of `input`, from the `field` of each JSON line or Parquet row; `read` counts the
/// file's bytes as they are read.
pub fn documents(
    input: &Input,
    field: &str,
    read: Arc<AtomicU64>,
) -> Result<Box<dyn Iterator<Item = Result<String, Error>> + Send>, Error> {
    let path = &input.path;
    if input.format == Format::Parquet {
        return Ok(Box::new(ParquetDocs::open(path, field, read)?));
    }
    let file = File::open(path).map_err(io("open", path.display()))?;
    let file = Counting { inner: file, read };
    let stream: Box<dyn Read + Send> = match input.compression {
        Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Some(_) => Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| bad(path, format!("not zstd ({e})")))?),
        None => Box::new(file),
    };
    let lines = Lines { reader: BufReader::with_capacity(1 << 20, stream), path: path.clone(), number: 0, offset: 0 };
    Ok(match input.format {
        Format::Jsonl => Box::new(JsonLines { lines, field: field.to_string() }),
        _ => Box::new(Paragraphs { lines }),
    })
}

/// Lines as UTF-8, with their number for errors.
struct Lines {
    reader: BufReader<Box<dyn Read + Send>>,
    path: PathBuf,
    number: u64,
    offset: u64,
}

impl Lines {
    /// The next line without its `\n`, or `None` at the end.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> Result<Option<String>, Error> {
        buf.clear();
        let n = self.reader.read_until(b'\n', buf).map_err(|e| bad(&self.path, format!("cannot read it ({e})")))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = String::from_utf8(std::mem::take(buf)).map_err(|e| {
            bad(
                &self.path,
                format!(
                    "is not UTF-8 (line {}, byte {}); convert it with iconv -t UTF-8",
                    self.number,
                    self.offset + e.utf8_error().valid_up_to() as u64
                ),
            )
        })?;
        self.offset += n as u64;
        Ok(Some(line))
    }
}

/// Paragraphs, as `hearth_core::train::corpus::paragraphs` cuts a whole text.
struct Paragraphs {
    lines: Lines,
}

impl Iterator for Paragraphs {
    type Item = Result<String, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        let (mut paragraph, mut buf) = (String::new(), Vec::new());
        loop {
            match self.lines.next_line(&mut buf) {
                Err(e) => return Some(Err(e)),
                Ok(None) => return (!paragraph.is_empty()).then_some(Ok(paragraph)),
                Ok(Some(line)) if line.is_empty() && !paragraph.is_empty() => return Some(Ok(paragraph)),
                Ok(Some(line)) => {
                    for word in line.split_whitespace() {
                        if !paragraph.is_empty() {
                            paragraph.push(' ');
                        }
                        paragraph.push_str(word);
                    }
                }
            }
        }
    }
}

/// The string `field` of each non-blank line's JSON object.
struct JsonLines {
    lines: Lines,
    field: String,
}

impl Iterator for JsonLines {
    type Item = Result<String, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        loop {
            let line = match self.lines.next_line(&mut buf) {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => line,
            };
            let n = self.lines.number;
            let path = &self.lines.path;
            let mut value: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => return Some(Err(bad(path, format!("line {n}: not JSON ({e})")))),
            };
            return Some(match value.get_mut(&self.field).map(serde_json::Value::take) {
                Some(serde_json::Value::String(text)) => Ok(text),
                _ => Err(bad(path, format!("line {n}: no \"{}\" string field (choose one with --field)", self.field))),
            });
        }
    }
}

/// A Parquet file's string column, one row group in memory at a time.
struct ParquetDocs {
    reader: parquet::file::serialized_reader::SerializedFileReader<File>,
    projection: parquet::schema::types::Type,
    path: PathBuf,
    read: Arc<AtomicU64>,
    group: usize,
    rows: std::vec::IntoIter<String>,
}

impl ParquetDocs {
    fn open(path: &Path, field: &str, read: Arc<AtomicU64>) -> Result<Self, Error> {
        use parquet::file::reader::FileReader;
        use parquet::file::serialized_reader::SerializedFileReader;
        use parquet::schema::types::Type;

        let file = File::open(path).map_err(io("open", path.display()))?;
        let reader =
            SerializedFileReader::new(file).map_err(|e| bad(path, format!("not a readable Parquet file ({e})")))?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let column =
            schema.root_schema().get_fields().iter().find(|f| f.name() == field).cloned().ok_or_else(|| {
                bad(path, format!("has no \"{field}\" column; choose the column with the text with --field"))
            })?;
        let projection = Type::group_type_builder("schema").with_fields(vec![column]).build().expect("one column");
        Ok(Self { reader, projection, path: path.to_path_buf(), read, group: 0, rows: Vec::new().into_iter() })
    }

    /// The next row group's non-blank strings.
    fn next_group(&mut self) -> Result<Option<Vec<String>>, Error> {
        use parquet::file::reader::FileReader;
        use parquet::record::Field;

        let metadata = self.reader.metadata();
        if self.group >= metadata.num_row_groups() {
            return Ok(None);
        }
        let g = self.group;
        self.group += 1;
        let at = |what: String| bad(&self.path, format!("row group {g}: {what}"));
        let group = self.reader.get_row_group(g).map_err(|e| at(format!("cannot read it ({e})")))?;
        let rows =
            group.get_row_iter(Some(self.projection.clone())).map_err(|e| at(format!("cannot read rows ({e})")))?;
        let mut docs = Vec::new();
        for row in rows {
            let row = row.map_err(|e| at(format!("cannot read a row ({e})")))?;
            for (_, field) in row.get_column_iter() {
                match field {
                    Field::Str(s) if !s.trim().is_empty() => docs.push(s.clone()),
                    Field::Str(_) | Field::Null => {}
                    other => return Err(at(format!("the column holds {other:?}, not strings"))),
                }
            }
        }
        self.read.fetch_add(metadata.row_group(g).compressed_size() as u64, Ordering::Relaxed);
        Ok(Some(docs))
    }
}

impl Iterator for ParquetDocs {
    type Item = Result<String, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(doc) = self.rows.next() {
                return Some(Ok(doc));
            }
            match self.next_group() {
                Ok(Some(docs)) => self.rows = docs.into_iter(),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Every document of a file, a folder or a pattern (see [`expand`]), in memory: what `hearth train
/// --data`, `hearth tokenizer train` and `hearth eval` read. Without any document it is an error.
pub fn read_all(path: &Path) -> Result<Vec<String>, Error> {
    let mut docs = Vec::new();
    for input in expand(&[path.to_path_buf()])? {
        for doc in documents(&input, "text", Arc::default())? {
            docs.push(doc?);
        }
    }
    if docs.is_empty() {
        return Err(bad(path, "holds no text; give a corpus with at least one non-empty line"));
    }
    Ok(docs)
}

/// Every document tokenized (in parallel, with a progress bar), each followed by `eos`, as one stream.
pub fn tokenize_with_progress(tokenizer: &Tokenizer, docs: &[String], eos: u32) -> Result<Vec<u32>, Error> {
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
