//! A run assembled from its parts, one way for every front end: `hearth train` and the page
//! (`Session::create`, `Session::open`) fit the model's config, build the model and wrap it in a
//! trainer here, so they accept and refuse the same runs with the same words (torchtitan's
//! `Trainer.__init__`, the one place a run is built).

use burn::tensor::Device;

use super::{TrainConfig, Trainer};
use crate::error::{Error, Result};
use crate::footprint::{self, DeviceLimits};
use crate::models::LanguageModel;
use crate::objectives::Collator;
use crate::tokenizer::Tokenizer;
use crate::train::footprint::{PeakEstimate, check_training};
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

/// A run checked and ready to build: its config, the model's config fitted to it, the collator of
/// its objective, and where the weights come from. Every front end builds its run through this, so
/// that they accept and refuse the same runs with the same words.
pub struct RunPlan<'a> {
    pub config: TrainConfig,
    pub model_config: ModelConfig,
    pub collator: Collator,
    start: Start<'a>,
}

/// A checkpoint's trainer state (`trainer_state.json`) and this rank's optimizer state, to resume.
pub struct Resume<'a> {
    pub state_json: &'a str,
    pub optimizer: Vec<u8>,
}

impl<'a> RunPlan<'a> {
    /// The model config fitted to the run ([`fit_model_config`]) and the collator of the run's
    /// objective with the tokenizer's ids; nothing is built yet.
    pub fn new(
        config: TrainConfig,
        mut model_config: ModelConfig,
        tokenizer: &Tokenizer,
        start: Start<'a>,
    ) -> Result<Self> {
        fit_model_config(&config, &mut model_config, tokenizer, start)?;
        let collator = Collator::new(config.objective, config.noise(), &model_config, tokenizer)?;
        Ok(Self { config, model_config, collator, start })
    }

    /// A run on token ids its caller makes up (`hearth bench train`'s random tokens): no tokenizer
    /// to fit, the same position-table and dropout rules as every other run, a new model.
    pub fn synthetic(config: TrainConfig, mut model_config: ModelConfig, collator: Collator) -> Result<Self> {
        fit_to_run(&config, &mut model_config)?;
        Ok(Self { config, model_config, collator, start: Start::New { vocab_from_tokenizer: false } })
    }

    /// Before anything is built: every tensor fits one binding of `limits`, and the step's estimated
    /// peak fits its memory, for one of `world` data-parallel ranks on `device`.
    pub fn check_fits(&self, device: &Device, world: usize, limits: &DeviceLimits) -> Result<PeakEstimate> {
        let fused = footprint::fused_attention(device, self.config.fused_attention);
        check_training(&self.model_config, &self.config, world, fused, limits)
    }

    /// The model built on `device` ([`build_model`]) in a trainer: at step 0, or continuing from
    /// `resume` with this run's config from here on.
    pub fn trainer(self, device: &Device, resume: Option<Resume>) -> Result<Trainer> {
        let model = build_model(&self.config, &self.model_config, self.start, device)?;
        let (config, model_config, collator) = (self.config, self.model_config, self.collator);
        Ok(match resume {
            None => Trainer::new(model, model_config, config, collator, device),
            Some(r) => {
                let mut t = Trainer::resume(model, model_config, r.state_json, r.optimizer, collator, device)?;
                t.set_config(config);
                t
            }
        })
    }
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
    fit_to_run(config, model_config)
}

/// The rules of every run, tokenizer or not: `block_size` within the position table, the run's
/// `dropout` (when set) in place of the model's.
fn fit_to_run(config: &TrainConfig, model_config: &mut ModelConfig) -> Result<()> {
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
