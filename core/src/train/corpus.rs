//! From raw text to training tokens, the host-side part both the CLI and the browser run: text cut
//! into documents, a held-out split, and the tokenizer kind each model family trains.

use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::tokenizer::{Tokenizer, TokenizerKind};

/// Blocks separated by blank lines, each with its line wraps and runs of spaces made single spaces.
pub fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|p| !p.is_empty()).collect()
}

/// The last `fraction` of `docs` (at least one, never all) held out for validation.
pub fn split_validation(mut docs: Vec<String>, fraction: f64, source: &str) -> Result<(Vec<String>, Vec<String>)> {
    let n_val = ((docs.len() as f64 * fraction).round() as usize).max(1).min(docs.len().saturating_sub(1));
    if n_val == 0 {
        return Err(Error::Config(format!(
            "{source} has {} document(s); give more text (paragraphs separated by blank lines) or a validation set",
            docs.len()
        )));
    }
    let val = docs.split_off(docs.len() - n_val);
    Ok((docs, val))
}

/// The tokenizer a new run of this family trains (byte-level BPE for GPT-2 and LLaMA, WordPiece
/// for BERT, Unigram for T5: the registry's fact).
pub fn tokenizer_kind(model: &ModelConfig) -> TokenizerKind {
    model.family().tokenizer_kind()
}

/// Every document's tokens, each followed by `eos`, in one stream (sequentially; the CLI has a
/// parallel version with a progress bar).
pub fn tokenize_documents(tokenizer: &Tokenizer, docs: &[String], eos: u32) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for doc in docs {
        out.extend(tokenizer.encode(doc)?);
        out.push(eos);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_the_validation_split() {
        let docs = paragraphs("one\ntwo  three\n\n\n\nfour\n\n  \n\nfive");
        assert_eq!(docs, vec!["one two three", "four", "five"]);
        let (train, val) = split_validation(docs.clone(), 0.05, "x").unwrap();
        assert_eq!((train.len(), val), (2, vec!["five".to_string()]));
        let (train, val) = split_validation(docs, 0.9, "x").unwrap();
        assert_eq!((train.len(), val.len()), (1, 2), "never all documents held out");
        let err = split_validation(vec!["alone".into()], 0.05, "the corpus").unwrap_err().to_string();
        assert!(err.contains("the corpus has 1 document"), "{err}");
    }
}
