//! What a run trains on: the tokenizer (given, resumed, or trained here), the training and
//! validation tokens (a text file, a folder from `hearth prepare`, or the bundled corpus), and the
//! model's config (a preset, or `init_from`'s).

use std::path::Path;

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::models::ModelConfig;
use hearth_core::models::presets::preset;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::corpus::{paragraphs, split_validation, tokenizer_kind};
use hearth_core::train::run::document_separator;
use hearth_core::train::{TokenSource, TrainConfig};

use crate::storage::checkpoint;
use crate::storage::{documents, shards};

/// The corpus the default run trains on: Jane Austen's *Pride and Prejudice* (public domain).
pub const BUNDLED_CORPUS: &str = include_str!("../../../../data/pride_and_prejudice.txt");

/// Training and validation tokens, and the tokenizer, from what the config names.
pub struct Data {
    pub tokenizer: Tokenizer,
    pub tokenizer_trained_here: bool,
    pub train: Box<dyn TokenSource>,
    pub val: Box<dyn TokenSource>,
    /// The data as the header names it.
    pub source: String,
}

pub fn load_data(
    config: &TrainConfig,
    model: &ModelConfig,
    resume_tokenizer: Option<Tokenizer>,
) -> Result<Data, Error> {
    let given_tokenizer = match (&resume_tokenizer, &config.tokenizer) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => {
            let bytes =
                checkpoint::read(Path::new(path), "").or_else(|_| std::fs::read(path).map_err(io("read", path)))?;
            Some(Tokenizer::from_json(&bytes).map_err(|e| e.in_file(path))?)
        }
        (None, None) => None,
    };
    // A folder from `hearth prepare`.
    if let Some(dir) = config.data.as_deref().map(Path::new).filter(|p| p.join("meta.json").exists()) {
        let (meta, train, val, tok_path) = shards::open_prepared(dir)?;
        let tokenizer = match given_tokenizer {
            Some(t) => t,
            None => Tokenizer::from_json(&checkpoint::read(dir, "tokenizer.json")?)
                .map_err(|e| e.in_file(tok_path.display()))?,
        };
        if tokenizer.vocab_size() != meta.vocab_size {
            return Err(Error::Config(format!(
                "the shards were tokenized with a {}-token vocabulary but the tokenizer has {}; prepare the data with this tokenizer",
                meta.vocab_size,
                tokenizer.vocab_size()
            )));
        }
        return Ok(Data {
            tokenizer,
            tokenizer_trained_here: false,
            train: Box::new(train),
            val: Box::new(val),
            source: dir.display().to_string(),
        });
    }
    let (docs, source) = match &config.data {
        Some(path) => (documents::read_all(Path::new(path))?, path.clone()),
        None => (paragraphs(BUNDLED_CORPUS), "bundled Pride and Prejudice".to_string()),
    };
    let (train_docs, val_docs): (Vec<String>, Vec<String>) = match &config.val_data {
        Some(path) => (docs, documents::read_all(Path::new(path))?),
        None => split_validation(docs, config.val_fraction, &source)?,
    };
    let (tokenizer, trained) = match given_tokenizer {
        Some(t) => (t, false),
        None => {
            let kind = tokenizer_kind(model);
            let t =
                Tokenizer::train(kind, config.tokenizer_vocab_size, &kind.default_special_tokens(), train_docs.iter())?;
            (t, true)
        }
    };
    let eos = document_separator(&tokenizer)?;
    let train = documents::tokenize_with_progress(&tokenizer, &train_docs, eos)?;
    let val = documents::tokenize_with_progress(&tokenizer, &val_docs, eos)?;
    Ok(Data { tokenizer, tokenizer_trained_here: trained, train: Box::new(train), val: Box::new(val), source })
}

pub fn model_config(config: &TrainConfig) -> Result<ModelConfig, Error> {
    match &config.init_from {
        Some(dir) => {
            let dir = Path::new(dir);
            ModelConfig::from_json(&checkpoint::read(dir, "config.json")?)
                .map_err(|e| e.in_file(dir.join("config.json").display()))
        }
        None => preset(&config.preset, &config.model),
    }
}
