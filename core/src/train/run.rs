//! A run assembled from its parts, one way for every front end: `hearth train` and the page
//! (`Session::create`, `Session::open`) fit the model's config, build the model and wrap it in a
//! trainer here, so they accept and refuse the same runs with the same words (torchtitan's
//! `Trainer.__init__`, the one place a run is built).

use burn::module::Module;
use burn::tensor::Device;

use super::data::TokenSource;
use super::precision::Precision;
use super::state::{Checkpoint, StepStats, TrainState};
use super::{TrainConfig, Trainer};
use crate::error::{Error, Result};
use crate::fit::{self, DeviceLimits, PeakEstimate};
use crate::models::{BertForMaskedLm, Gpt2LmHeadModel, LanguageModel, T5ForConditionalGeneration};
use crate::objectives::Collator;
use crate::parallel::Collective;
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

    /// Before anything is built: every tensor fits one binding of `limits`, and the step's estimated
    /// peak fits its memory, for one of `world` data-parallel ranks on `device`.
    pub fn check_fits(&self, device: &Device, world: usize, limits: &DeviceLimits) -> Result<PeakEstimate> {
        let fused = fit::fused_attention(device, self.config.fused_attention);
        fit::check_training(&self.model_config, &self.config, world, fused, limits)
    }

    /// The model built on `device` ([`build_model`]) in a trainer: at step 0, or continuing from
    /// `resume` with this run's config from here on.
    pub fn trainer(self, device: &Device, resume: Option<Resume>) -> Result<AnyTrainer> {
        let model = build_model(&self.config, &self.model_config, self.start, device)?;
        let (config, model_config, collator) = (self.config, self.model_config, self.collator);
        macro_rules! trainer {
            ($variant:ident, $m:expr) => {
                AnyTrainer::$variant(match resume {
                    None => Trainer::new($m, model_config, config, collator, device),
                    Some(r) => {
                        let mut t = Trainer::resume($m, model_config, r.state_json, r.optimizer, collator, device)?;
                        t.set_config(config);
                        t
                    }
                })
            };
        }
        Ok(match model {
            Model::Gpt2(m) => trainer!(Gpt2, m),
            Model::Bert(m) => trainer!(Bert, m),
            Model::T5(m) => trainer!(T5, m),
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

/// [`Trainer`]'s methods, on whichever family the run holds.
impl AnyTrainer {
    /// See [`Trainer::with_parallel`].
    pub async fn with_parallel(self, collective: Box<dyn Collective>) -> Result<Self> {
        Ok(match self {
            AnyTrainer::Gpt2(t) => AnyTrainer::Gpt2(t.with_parallel(collective).await?),
            AnyTrainer::Bert(t) => AnyTrainer::Bert(t.with_parallel(collective).await?),
            AnyTrainer::T5(t) => AnyTrainer::T5(t.with_parallel(collective).await?),
        })
    }

    pub fn step(&mut self, train: &dyn TokenSource) -> Result<StepStats> {
        each_trainer!(self, t => t.step(train))
    }

    pub async fn step_async(&mut self, train: &dyn TokenSource) -> Result<StepStats> {
        each_trainer!(self, t => t.step_async(train).await)
    }

    pub fn validation_batches(&self, val: &dyn TokenSource) -> Result<usize> {
        each_trainer!(self, t => t.validation_batches(val))
    }

    pub fn evaluate(&mut self, val: &dyn TokenSource) -> Result<f64> {
        each_trainer!(self, t => t.evaluate(val))
    }

    pub async fn evaluate_async(&mut self, val: &dyn TokenSource) -> Result<f64> {
        each_trainer!(self, t => t.evaluate_async(val).await)
    }

    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        each_trainer!(self, t => t.checkpoint())
    }

    pub fn any_rank(&mut self, flag: bool) -> Result<bool> {
        each_trainer!(self, t => t.any_rank(flag))
    }

    pub fn barrier(&mut self) -> Result<()> {
        each_trainer!(self, t => t.barrier())
    }

    pub fn rank_and_world(&self) -> (usize, usize) {
        each_trainer!(self, t => t.rank_and_world())
    }

    pub fn state(&self) -> &TrainState {
        each_trainer!(self, t => &t.state)
    }

    pub fn config(&self) -> &TrainConfig {
        each_trainer!(self, t => t.config())
    }

    pub fn model_config(&self) -> &ModelConfig {
        each_trainer!(self, t => &t.model_config)
    }

    pub fn objective_name(&self) -> &'static str {
        each_trainer!(self, t => t.objective_name())
    }

    pub fn precision(&self) -> Precision {
        each_trainer!(self, t => t.precision())
    }

    pub fn notices(&self) -> &[String] {
        each_trainer!(self, t => &t.notices)
    }

    pub fn num_params(&self) -> usize {
        each_trainer!(self, t => t.model.num_params())
    }

    /// The model as it stands, for inference (no autodiff, dropout off).
    pub fn model(&self) -> Model {
        each_trainer!(self, t => t.model.valid().into_model())
    }
}
