//! `hearth prepare`: a corpus of any size to token shards, in bounded memory. Documents stream in
//! from many files (`storage::documents`), are judged by the quality rules (`quality`) and
//! tokenized a chunk at a time on every thread, and go, in input order, to the train or validation
//! split by a hash of their text; tokens land in numbered shards as they come (`writer`). After each chunk the position is committed to a state file, so an
//! interrupted run continues with `--resume`; the output is the same bytes for any number of
//! threads, however often it was interrupted.

mod quality;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::tokenizer::Tokenizer;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use self::quality::{Pipeline, Report, Rules};
use self::writer::{ShardWriter, SplitProgress};
use crate::storage::checkpoint::write_atomic;
use crate::storage::documents::{Input, documents, expand};
use crate::storage::shards::ShardMeta;

#[derive(clap::Args)]
pub struct PrepareArgs {
    /// Files, folders (the .txt, .jsonl, .ndjson and .parquet files below them, also .gz/.zst) and
    /// quoted patterns ("data/*.jsonl.zst"): .txt is read as paragraphs, .jsonl as a field per line
    /// (see --field), .parquet as a column.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// tokenizer.json to tokenize with.
    #[arg(long, short)]
    tokenizer: PathBuf,
    /// Output folder (train-NNNNNN.bin, val-NNNNNN.bin, meta.json, tokenizer.json).
    #[arg(long, short)]
    out: PathBuf,
    /// Share of documents held out for validation, each chosen by a hash of its text and --seed
    /// (the same split however the inputs are ordered or cut into files).
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// Seed of the validation split's hash.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The JSON field or Parquet column that holds the text.
    #[arg(long, default_value = "text")]
    field: String,
    /// Tokens per shard (the last one holds the rest).
    #[arg(long, default_value_t = 100_000_000)]
    shard_tokens: u64,
    /// Memory budget in GiB: the text tokenized at once is a sixteenth of it.
    #[arg(long, default_value_t = 1.0)]
    memory: f64,
    /// Continue the interrupted prepare in --out (the same command, with --resume).
    #[arg(long)]
    resume: bool,
    /// Deduplicate, keeping the first document of each group in input order: `exact` (the same
    /// text after Unicode NFC and whitespace folding), `minhash` (near-duplicates: word 5-grams,
    /// 14 bands × 8 hashes, ~0.75 Jaccard, as FineWeb's datatrove setup). Comma-separated.
    #[arg(long, value_delimiter = ',')]
    dedup: Vec<String>,
    /// Memory for --dedup's sets of seen documents, in GiB, whatever the corpus size: exact while
    /// they fit, then a Bloom filter of this size whose false-positive rate (unique documents
    /// taken for duplicates) the summary and meta.json state. Exact, a set takes about 10 bytes a
    /// key (one a document for exact, 14 for minhash) and room to double: the default keeps about
    /// 2 million documents exact under minhash.
    #[arg(long)]
    dedup_memory: Option<f64>,
    /// Quality filters, with datatrove's published thresholds: `gopher-repetition`, `gopher-quality`,
    /// `c4` (C4's line rules: lines without terminal punctuation, javascript/cookie lines dropped;
    /// lorem ipsum, curly braces, fewer than 5 sentences drop the document), `fineweb` (FineWeb's
    /// three rules), `language=CODE` (lingua's top language with score ≥ 0.65). Comma-separated;
    /// they run in FineWeb's order. What each removed goes to meta.json and samples to removed.jsonl.
    #[arg(long, value_delimiter = ',')]
    filter: Vec<String>,
    /// Thresholds other than datatrove's: a TOML file with a table per filter of --filter and
    /// datatrove's parameter names (`[gopher-quality]` `min_doc_words = 100`, `[c4]`
    /// `filter_no_terminal_punct = false`, `[gopher-repetition]` `dup_line_frac = 0.2`,
    /// `[fineweb]` `short_line_thr = 0.5`); unset keys keep datatrove's values.
    #[arg(long)]
    filter_config: Option<PathBuf>,
}

/// What a prepare is: every setting that shapes the bytes. A resumed run must match it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Settings {
    inputs: Vec<(String, u64)>,
    tokenizer_crc32: u32,
    val_fraction: f64,
    seed: u64,
    field: String,
    shard_tokens: u64,
    /// The quality rules (absent in a state file from before them: none).
    #[serde(default, skip_serializing_if = "Rules::is_empty")]
    rules: Rules,
}

/// The state file: the settings and the position of the last commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    settings: Settings,
    position: Position,
    documents: u64,
    train: SplitProgress,
    val: SplitProgress,
    #[serde(default)]
    report: Report,
}

const STATE: &str = ".prepare-state.json";

/// The next document to read: input `input`, after `skip` of its documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Position {
    input: usize,
    skip: u64,
}

pub fn run(args: PrepareArgs) -> Result<(), Error> {
    let tokenizer_json = std::fs::read(&args.tokenizer).map_err(io("read", args.tokenizer.display()))?;
    let tokenizer = Tokenizer::from_json(&tokenizer_json).map_err(|e| e.in_file(args.tokenizer.display()))?;
    let eos = tokenizer.eos_id().ok_or_else(|| {
        Error::Config("the tokenizer has no end-of-text token to separate documents".into())
            .in_file(args.tokenizer.display())
    })?;
    if !(0.0..1.0).contains(&args.val_fraction) || args.shard_tokens == 0 || !(args.memory > 0.0) {
        return Err(Error::Config("--val-fraction lies in [0, 1), --shard-tokens and --memory are positive".into()));
    }
    let thresholds = match &args.filter_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(io("read", path.display()))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| Error::Config(e.message().trim().to_string()).in_file(path.display()))?;
            Some(table)
        }
        None => None,
    };
    let dedup_memory_gib = match (args.dedup_memory, args.dedup.is_empty()) {
        (Some(_), true) => {
            return Err(Error::Refused(
                "--dedup-memory does not apply: it sizes --dedup's sets, and no --dedup is given".into(),
            ));
        }
        (Some(gib), false) if !(gib > 0.0) => return Err(Error::Config("--dedup-memory is positive (GiB)".into())),
        (gib, _) => gib,
    };
    let rules = Rules { dedup: args.dedup.clone(), filter: args.filter.clone(), thresholds, dedup_memory_gib };
    let mut pipeline = Pipeline::new(&rules)?; // unknown rules refused before anything is written
    let inputs = expand(&args.inputs)?;
    let settings = Settings {
        inputs: inputs.iter().map(|i| (i.path.display().to_string(), i.bytes)).collect(),
        tokenizer_crc32: crc32fast::hash(&tokenizer_json),
        val_fraction: args.val_fraction,
        seed: args.seed,
        field: args.field.clone(),
        shard_tokens: args.shard_tokens,
        rules: rules.clone(),
    };
    let state = claim_out(&args.out, settings, args.resume)?;
    let wide = tokenizer.vocab_size() > u16::MAX as usize + 1;
    let mut train = ShardWriter::open(&args.out, "train", wide, args.shard_tokens, state.train)?;
    let mut val = ShardWriter::open(&args.out, "val", wide, args.shard_tokens, state.val)?;

    let total: u64 = inputs.iter().map(|i| i.bytes).sum();
    let read = Arc::new(AtomicU64::new(inputs[..state.position.input].iter().map(|i| i.bytes).sum()));
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("template"),
    );
    let chunk_bytes = ((args.memory * (1u64 << 30) as f64) / 16.0).max(4096.0) as usize;
    let threshold = (args.val_fraction * 2f64.powi(64)) as u64;
    if !rules.is_empty() && state.position != Position::default() {
        replay(&mut pipeline, &inputs, &args.field, state.position, chunk_bytes)?;
        pipeline.report = state.report.clone();
    }
    let mut stream = Stream::new(&inputs, &args.field, read.clone(), state.position)?;
    let (mut documents_done, start, start_tokens) =
        (state.documents, Instant::now(), state.train.tokens + state.val.tokens);
    let mut chunks = 0u64;
    loop {
        let chunk = stream.chunk(chunk_bytes, None).map_err(|e| stopped(e, &args.out, documents_done))?; // about chunk_bytes of text
        if chunk.is_empty() {
            break;
        }
        // Judged and tokenized on every thread, decided in input order: the same on any threads.
        // Without rules a document is only tokenized (no copy, nothing judged).
        let judged: Vec<(Option<quality::Judged>, Vec<u32>)> = chunk
            .par_iter()
            .map(|doc| {
                if rules.is_empty() {
                    return Ok((None, tokenizer.encode(doc)?));
                }
                let judged = pipeline.judge(doc);
                let ids = tokenizer.encode(judged.verdict.as_deref().unwrap_or(doc.as_str()))?;
                Ok((Some(judged), ids))
            })
            .collect::<Result<_, Error>>()
            .map_err(|e| stopped(e, &args.out, documents_done))?;
        for (doc, (judged, ids)) in chunk.iter().zip(judged) {
            if let Some(judged) = judged
                && !pipeline.decide(doc, judged, ids.len() as u64)
            {
                continue;
            }
            let split = if split_hash(doc, args.seed) < threshold { &mut val } else { &mut train };
            split.push(&ids)?;
            split.push(&[eos])?;
            documents_done += 1;
        }
        chunks += 1;
        crate::faults::before_prepare_commit(chunks); // tests only
        let state = State {
            settings: state.settings.clone(),
            position: stream.position(),
            documents: documents_done,
            train: train.commit()?,
            val: val.commit()?,
            report: pipeline.report.clone(),
        };
        write_atomic(&args.out.join(STATE), serde_json::to_string_pretty(&state).expect("json").as_bytes())?;
        let tokens = state.train.tokens + state.val.tokens;
        bar.set_position(read.load(Ordering::Relaxed));
        let removed = if rules.is_empty() { String::new() } else { format!(" ({})", pipeline.summary()) };
        bar.set_message(format!(
            "{documents_done} documents{removed}, {tokens} tokens, {:.2}M tokens/s",
            (tokens - start_tokens) as f64 / start.elapsed().as_secs_f64().max(1e-9) / 1e6
        ));
    }
    bar.finish_and_clear();
    if documents_done == 0 && pipeline.report.read == 0 {
        return Err(Error::Input("the inputs hold no text; give files with at least one document".into()));
    }
    if documents_done == 0 {
        return Err(Error::Refused(format!(
            "the rules removed all {} documents ({}); loosen --dedup/--filter (the state in {} resumes with the same ones)",
            pipeline.report.read,
            pipeline.summary(),
            args.out.display()
        )));
    }
    let dedup_sets = (!rules.is_empty()).then(|| pipeline.dedup_sets());
    let quality = dedup_sets.as_ref().map(|sets| (&rules, &pipeline.report, sets));
    let meta = finish(&args.out, train, val, &tokenizer, &tokenizer_json, eos, documents_done, quality)?; // last shards, meta.json
    let seconds = start.elapsed().as_secs_f64();
    let (train_tokens, val_tokens) = (meta.train_tokens as u64, meta.val_tokens as u64);
    println!(
        "{} documents → {} train / {} val tokens ({}) in {} + {} shards in {}; {:.1}s, {:.2}M tokens/s{}",
        meta.documents,
        meta.train_tokens,
        meta.val_tokens,
        meta.dtype,
        meta.train_shards.len(),
        meta.val_shards.len(),
        args.out.display(),
        seconds,
        (train_tokens + val_tokens - start_tokens) as f64 / seconds.max(1e-9) / 1e6,
        crate::report::peak_rss().map_or(String::new(), |b| format!(", peak memory {} MiB", b >> 20))
    );
    if !rules.is_empty() {
        println!(
            "{} documents read, {}: per rule in meta.json, samples in {}",
            pipeline.report.read,
            pipeline.summary(),
            args.out.join("removed.jsonl").display()
        );
        if let Some(line) = dedup_sets.as_ref().and_then(Pipeline::dedup_memory_line) {
            println!("{line}");
        }
    }
    if val_tokens == 0 {
        eprintln!("warning: no document fell in the validation split; raise --val-fraction, or train with --val-data");
    }
    Ok(())
}

/// The duplicate sets of a resumed prepare, rebuilt by judging and deciding again (on every thread,
/// in input order) the documents before `until`, the position it resumes from.
fn replay(pipeline: &mut Pipeline, inputs: &[Input], field: &str, until: Position, bytes: usize) -> Result<(), Error> {
    if !pipeline.names().iter().any(|n| matches!(*n, "exact" | "minhash")) {
        return Ok(());
    }
    let mut stream = Stream::new(inputs, field, Arc::new(AtomicU64::new(0)), Position::default())?;
    loop {
        let chunk = stream.chunk(bytes, Some(until))?;
        if chunk.is_empty() {
            return Ok(());
        }
        let judged: Vec<_> = chunk.par_iter().map(|doc| pipeline.judge(doc)).collect();
        for (doc, judged) in chunk.iter().zip(judged) {
            pipeline.replay(doc, judged);
        }
    }
}

/// A prepare stopped by its input: the folder keeps its last commit, and `--resume` goes on from
/// there once the input is fixed (an input not yet read to its end may change; see [`resumable`]).
fn stopped(e: Error, out: &Path, documents: u64) -> Error {
    Error::Refused(format!(
        "{e}; {} keeps the {documents} documents prepared before it: fix the input, then run the same command with --resume",
        out.display()
    ))
}

/// Whether a prepare started with `then` may go on with `now`: the same settings and inputs, where
/// an input the last commit had not read to its end may have changed (a broken line fixed), but
/// none that it had.
fn resumable(then: &Settings, now: &Settings, position: Position) -> bool {
    let names = |s: &Settings| s.inputs.iter().map(|(path, _)| path.clone()).collect::<Vec<_>>();
    let read = position.input.min(then.inputs.len());
    Settings { inputs: Vec::new(), ..then.clone() } == Settings { inputs: Vec::new(), ..now.clone() }
        && names(then) == names(now)
        && then.inputs[..read] == now.inputs[..read]
}

/// The prepared folder completed: the last shards finished, the tokenizer and `meta.json` written
/// (last: its presence says the folder is whole), the state file removed.
fn finish(
    out: &Path,
    train: ShardWriter,
    val: ShardWriter,
    tokenizer: &Tokenizer,
    tokenizer_json: &[u8],
    eos: u32,
    documents: u64,
    quality: Option<(&Rules, &Report, &serde_json::Value)>,
) -> Result<ShardMeta, Error> {
    let (train_tokens, val_tokens) = (train.done.tokens, val.done.tokens);
    let meta = ShardMeta {
        dtype: train.dtype().into(),
        vocab_size: tokenizer.vocab_size(),
        eos_id: eos,
        train_tokens: train_tokens as usize,
        val_tokens: val_tokens as usize,
        documents: documents as usize,
        train_shards: train.finish()?,
        val_shards: val.finish()?,
        quality: quality.as_ref().map(|(rules, report, dedup_sets)| {
            serde_json::json!({
                "dedup": rules.dedup,
                "filter": rules.filter,
                "thresholds": rules.thresholds,
                "documents_read": report.read,
                "removed": report.removed,
                "reasons": report.reasons,
                "dedup_sets": dedup_sets,
            })
        }),
    };
    if let Some((_, report, _)) = quality {
        let lines: Vec<String> = report
            .samples
            .iter()
            .flat_map(|(rule, texts)| {
                texts.iter().map(move |t| serde_json::json!({"rule": rule, "text": t}).to_string())
            })
            .collect();
        write_atomic(&out.join("removed.jsonl"), (lines.join("\n") + "\n").as_bytes())?;
    }
    write_atomic(&out.join("tokenizer.json"), tokenizer_json)?;
    write_atomic(&out.join("meta.json"), serde_json::to_string_pretty(&meta).expect("json").as_bytes())?;
    std::fs::remove_file(out.join(STATE)).map_err(io("remove", out.join(STATE).display()))?;
    Ok(meta)
}

/// The document's place in the split: validation when the hash falls under the threshold.
fn split_hash(doc: &str, seed: u64) -> u64 {
    twox_hash::XxHash64::oneshot(seed, doc.as_bytes())
}

/// The state to start from: a new prepare needs an out folder without another one in it; a resumed
/// one needs the state file of the same settings.
fn claim_out(out: &Path, settings: Settings, resume: bool) -> Result<State, Error> {
    let state_path = out.join(STATE);
    if out.join("meta.json").exists() {
        return Err(Error::Refused(format!(
            "{} already holds prepared shards; choose another --out (nothing was changed)",
            out.display()
        )));
    }
    if resume {
        let text = std::fs::read_to_string(&state_path).map_err(|_| {
            Error::Refused(format!("--resume: {} holds no interrupted prepare; start without --resume", out.display()))
        })?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| Error::Input(format!("not a prepare state ({e})")).in_file(state_path.display()))?;
        if !resumable(&state.settings, &settings, state.position) {
            return Err(Error::Refused(format!(
                "--resume: the prepare in {} was started with other inputs, tokenizer or settings; run the same command with --resume",
                out.display()
            )));
        }
        return Ok(State { settings, ..state });
    }
    if state_path.exists() {
        return Err(Error::Refused(format!(
            "{} holds an interrupted prepare; continue it with --resume, or choose another --out",
            out.display()
        )));
    }
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Refused(format!("{} is not empty; choose a new or empty --out", out.display())));
    }
    std::fs::create_dir_all(out).map_err(io("create", out.display()))?;
    let state = State {
        settings,
        position: Position::default(),
        documents: 0,
        train: SplitProgress::default(),
        val: SplitProgress::default(),
        report: Report::default(),
    };
    // Written before the first shard byte: whatever stops this prepare, `--resume` can go on.
    write_atomic(&state_path, serde_json::to_string_pretty(&state).expect("json").as_bytes())?;
    Ok(state)
}

/// The documents of every input in order, with the position of the next one.
struct Stream<'a> {
    inputs: &'a [Input],
    field: &'a str,
    read: Arc<AtomicU64>,
    position: Position,
    current: Option<Box<dyn Iterator<Item = Result<String, Error>> + Send>>,
}

impl<'a> Stream<'a> {
    /// The stream at `position` (the documents before it are read and dropped).
    fn new(inputs: &'a [Input], field: &'a str, read: Arc<AtomicU64>, position: Position) -> Result<Self, Error> {
        let mut stream =
            Self { inputs, field, read, position: Position { input: position.input, skip: 0 }, current: None };
        if position.input < inputs.len() {
            let mut docs = documents(&inputs[position.input], field, stream.read.clone())?;
            for _ in 0..position.skip {
                docs.next().transpose()?;
            }
            stream.position.skip = position.skip;
            stream.current = Some(docs);
        }
        Ok(stream)
    }

    fn position(&self) -> Position {
        self.position
    }

    /// The next documents, about `bytes` of text (at least one, unless the inputs are done or the
    /// stream is at `until`).
    fn chunk(&mut self, bytes: usize, until: Option<Position>) -> Result<Vec<String>, Error> {
        let (mut docs, mut size) = (Vec::new(), 0);
        while size < bytes && until != Some(self.position) {
            let Some(doc) = self.next_doc()? else { break };
            size += doc.len();
            docs.push(doc);
        }
        Ok(docs)
    }

    fn next_doc(&mut self) -> Result<Option<String>, Error> {
        while self.position.input < self.inputs.len() {
            if self.current.is_none() {
                self.current = Some(documents(&self.inputs[self.position.input], self.field, self.read.clone())?);
            }
            match self.current.as_mut().expect("opened above").next().transpose()? {
                Some(doc) => {
                    self.position.skip += 1;
                    return Ok(Some(doc));
                }
                None => {
                    self.current = None;
                    self.position = Position { input: self.position.input + 1, skip: 0 };
                }
            }
        }
        Ok(None)
    }
}
