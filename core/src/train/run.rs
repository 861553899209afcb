//! A run assembled from its parts, one way for every front end: `hearth train` and the page
//! (`Session::create`, `Session::open`) fit the model's config, build the model and wrap it in a
//! trainer here, so they accept and refuse the same runs with the same words (torchtitan's
//! `Trainer.__init__`, the one place a run is built).

use burn::tensor::Device;

use super::trainer::ObjectiveSpec;
use super::{TrainConfig, Trainer};
use crate::error::{Error, Result};
use crate::models::{BertForMaskedLm, Gpt2LmHeadModel, T5ForConditionalGeneration};
use crate::tokenizer::Tokenizer;
use crate::{Model, ModelConfig};

/// Where a run's weights come from.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// Initialised here from the run's seed. `vocab_from_tokenizer`: the tokenizer was trained
    /// for this run, so the embedding table takes its size.
    New { vocab_from_tokenizer: bool },
    /// Saved weights (HF `model.safetensors` bytes): a resumed run, `init_from`, an opened checkpoint.
    Saved(&'a [u8]),
}

/// Fits `model_config` to the run before the model is built: a new model takes the tokenizer's
/// special tokens (and its vocabulary size, see [`Start::New`]); the tokenizer must fit the
/// embedding table and `block_size` the position table; the run's `dropout`, when set, replaces
/// the model's.
pub fn fit_model_config(
    config: &TrainConfig,
    model_config: &mut ModelConfig,
    tokenizer: &Tokenizer,
    start: Start,
) -> Result<()> {
    if let Start::New { vocab_from_tokenizer } = start {
        if vocab_from_tokenizer {
            model_config.set_vocab_size(tokenizer.vocab_size());
        }
        model_config.set_special_tokens(tokenizer);
    }
    tokenizer.check_fits(model_config.vocab_size())?;
    if let Some(max) = model_config.max_positions()
        && config.block_size > max
    {
        return Err(Error::Config(format!(
            "block_size {} is longer than the model's position table ({max}); lower block_size or enlarge the table (n_positions / max_position_embeddings)",
            config.block_size
        )));
    }
    if let Some(p) = config.dropout {
        model_config.set_dropout(p);
    }
    Ok(())
}

/// The run's model on `device` (new from the run's seed, or the saved weights), with the run's
/// fused attention and activation checkpointing.
pub fn build_model(config: &TrainConfig, model_config: &ModelConfig, start: Start, device: &Device) -> Result<Model> {
    let mut model = match start {
        Start::New { .. } => {
            device.seed(config.seed); // the same weights for the same seed, on every front end
            model_config.init(device)
        }
        Start::Saved(weights) => Model::from_hf(model_config, weights, device)?,
    };
    model.set_fused_attention(config.fused_attention);
    model.set_gradient_checkpointing(config.gradient_checkpointing);
    Ok(model)
}

/// The end-of-text token that follows every document in the token stream.
pub fn document_separator(tokenizer: &Tokenizer) -> Result<u32> {
    tokenizer
        .eos_id()
        .ok_or_else(|| Error::Config("the tokenizer has no end-of-text token to separate documents".into()))
}

/// A trainer over whichever family the run holds.
pub enum AnyTrainer {
    Gpt2(Trainer<Gpt2LmHeadModel>),
    Bert(Trainer<BertForMaskedLm>),
    T5(Trainer<T5ForConditionalGeneration>),
}

/// `$body` with `$t` bound to the trainer inside an [`AnyTrainer`] (or a reference to one).
#[macro_export]
macro_rules! each_trainer {
    ($trainer:expr, $t:ident => $body:expr) => {
        match $trainer {
            $crate::train::run::AnyTrainer::Gpt2($t) => $body,
            $crate::train::run::AnyTrainer::Bert($t) => $body,
            $crate::train::run::AnyTrainer::T5($t) => $body,
        }
    };
}

impl AnyTrainer {
    /// A trainer at step 0 for `model` (see [`Trainer::new`]).
    pub fn new(
        model: Model,
        model_config: ModelConfig,
        config: TrainConfig,
        objective: ObjectiveSpec,
        device: &Device,
    ) -> Self {
        match model {
            Model::Gpt2(m) => AnyTrainer::Gpt2(Trainer::new(m, model_config, config, objective, device)),
            Model::Bert(m) => AnyTrainer::Bert(Trainer::new(m, model_config, config, objective, device)),
            Model::T5(m) => AnyTrainer::T5(Trainer::new(m, model_config, config, objective, device)),
        }
    }
}
