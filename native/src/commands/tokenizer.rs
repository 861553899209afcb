//! `hearth tokenizer train`.

use std::path::PathBuf;

use hearth_core::Error;
use hearth_core::tokenizer::{Tokenizer, TokenizerKind};

use crate::storage::documents;

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
        docs.extend(documents::read_all(f)?);
    }
    let specials = args.special_tokens.unwrap_or_else(|| args.kind.default_special_tokens());
    let tok = Tokenizer::train(args.kind, args.vocab_size, &specials, docs.iter())?;
    crate::storage::checkpoint::write_atomic(&args.out, tok.to_json()?.as_bytes())?;
    println!("{:?} tokenizer with {} tokens written to {}", args.kind, tok.vocab_size(), args.out.display());
    Ok(())
}
