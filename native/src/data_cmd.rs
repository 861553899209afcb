//! `hearth tokenizer train` and `hearth prepare`.

use std::path::PathBuf;

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::tokenizer::{Tokenizer, TokenizerKind};

use crate::corpus;

#[derive(clap::Args)]
pub struct TokenizerTrainArgs {
    /// Text files (.txt, .jsonl) to train on.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// bpe (byte-level, GPT-2), wordpiece (BERT) or unigram (T5).
    #[arg(long, default_value = "bpe")]
    kind: TokenizerKind,
    #[arg(long, default_value_t = 8192)]
    vocab_size: usize,
    /// Special tokens (comma-separated); defaults per kind.
    #[arg(long, value_delimiter = ',')]
    special_tokens: Option<Vec<String>>,
    /// Where to write tokenizer.json.
    #[arg(long, short, default_value = "tokenizer.json")]
    out: PathBuf,
}

pub fn run_tokenizer_train(args: TokenizerTrainArgs) -> Result<(), Error> {
    let mut docs = Vec::new();
    for f in &args.files {
        docs.extend(corpus::read_documents(f)?);
    }
    let specials = args.special_tokens.unwrap_or_else(|| args.kind.default_special_tokens());
    let tok = Tokenizer::train(args.kind, args.vocab_size, &specials, docs.iter())?;
    crate::checkpoint::write_atomic(&args.out, tok.to_json()?.as_bytes())?;
    println!("{:?} tokenizer with {} tokens written to {}", args.kind, tok.vocab_size(), args.out.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct PrepareArgs {
    /// Text files (.txt, .jsonl with a "text" field).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// tokenizer.json to tokenize with.
    #[arg(long, short)]
    tokenizer: PathBuf,
    /// Output folder (train.bin, val.bin, meta.json, tokenizer.json).
    #[arg(long, short)]
    out: PathBuf,
    /// Fraction of documents held out for validation.
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
}

pub fn run_prepare(args: PrepareArgs) -> Result<(), Error> {
    let bytes = std::fs::read(&args.tokenizer).map_err(io("read", args.tokenizer.display()))?;
    let tok = Tokenizer::from_json(&bytes).map_err(|e| e.in_file(args.tokenizer.display()))?;
    let bar = indicatif::ProgressBar::new(args.files.len() as u64);
    let mut docs = Vec::new();
    for f in &args.files {
        bar.set_message(f.display().to_string());
        docs.extend(corpus::read_documents(f)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let meta = corpus::write_shards(&args.out, &tok, &docs, args.val_fraction)?;
    println!(
        "{} documents → {} train / {} val tokens ({}) in {}",
        meta.documents,
        meta.train_tokens,
        meta.val_tokens,
        meta.dtype,
        args.out.display()
    );
    Ok(())
}
