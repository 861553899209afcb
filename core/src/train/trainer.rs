//! The training loop, one optimizer step at a time, so that the CLI runs it in a plain loop and the
//! browser a few steps per animation frame.

use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::data::{Cursor, TokenSource, Windows};
use super::optim::{adamw, global_norm, scale_grads};
use super::{Objective, TrainConfig};
use crate::error::{Error, Result};
use crate::hf::params::{trainable, with_stable_ids};
use crate::models::{LanguageModel, ModelConfig};
use crate::objectives::span::encoder_decoder_batch;
use crate::objectives::{Batch, MaskingConfig, Rng, SpanCorruption, causal_batch, mask_tokens};
use crate::readback::{self, block_on};
use crate::tokenizer::Tokenizer;

/// How windows of tokens become a batch, with the token ids the objective needs.
#[derive(Clone, Debug)]
pub enum ObjectiveSpec {
    Causal,
    Masked { masking: MaskingConfig, cls: u32, sep: u32, word_start: Option<Vec<bool>> },
    Span { corruption: SpanCorruption, pad: u32, decoder_start: u32 },
}

impl ObjectiveSpec {
    /// The objective `config` asks for (or the family's own), with ids from `tokenizer`.
    pub fn new(config: &TrainConfig, model: &ModelConfig, tokenizer: &Tokenizer) -> Result<Self> {
        let family_default = match model {
            ModelConfig::Gpt2(_) => Objective::Causal,
            ModelConfig::Bert(_) => Objective::Masked,
            ModelConfig::T5(_) => Objective::Span,
        };
        let objective = config.objective.unwrap_or(family_default);
        if objective != family_default {
            return Err(Error::Config(format!(
                "objective {objective:?} does not fit a {} model (GPT-2 trains causal, BERT masked, T5 span)",
                model.model_type()
            )));
        }
        let need = |id: Option<u32>, what: &str| {
            id.ok_or_else(|| {
                Error::Config(format!("the tokenizer has no {what} token, which the {objective:?} objective needs"))
            })
        };
        Ok(match objective {
            Objective::Causal => Self::Causal,
            Objective::Masked => {
                let mask = need(tokenizer.mask_id(), "[MASK]")?;
                let sep = need(tokenizer.eos_id(), "[SEP]")?;
                let cls = tokenizer.cls_id().unwrap_or(sep);
                let mut masking = MaskingConfig::bert(mask, model.vocab_size() as u32, tokenizer.special_ids());
                masking.rate = config.mask_rate;
                masking.whole_word = config.whole_word_masking;
                let word_start = config.whole_word_masking.then(|| {
                    (0..model.vocab_size() as u32)
                        .map(|id| tokenizer.token(id).is_none_or(|t| !t.starts_with("##")))
                        .collect()
                });
                Self::Masked { masking, cls, sep, word_start }
            }
            Objective::Span => {
                let sentinels = tokenizer.sentinel_ids();
                if sentinels.is_empty() {
                    return Err(Error::Config(
                        "the tokenizer has no <extra_id_N> sentinel tokens, which span corruption needs".into(),
                    ));
                }
                let eos = need(tokenizer.eos_id(), "</s>")?;
                let mut corruption = SpanCorruption::t5(sentinels, eos);
                corruption.noise_density = config.noise_density;
                corruption.mean_span_length = config.mean_span_length;
                let decoder_start = match model {
                    ModelConfig::T5(c) => c.decoder_start_token(),
                    _ => 0,
                };
                Self::Span { corruption, pad: tokenizer.pad_id().unwrap_or(0), decoder_start }
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Causal => "causal LM",
            Self::Masked { .. } => "masked LM",
            Self::Span { .. } => "span corruption",
        }
    }

    /// Raw tokens per sequence, for sequences of `block_size` model positions.
    pub fn window(&self, block_size: usize) -> usize {
        match self {
            Self::Masked { .. } => block_size - 2, // [CLS] … [SEP]
            _ => block_size,
        }
    }

    pub fn batch(&self, windows: &[Vec<u32>], rng: &mut Rng) -> Result<Batch> {
        Ok(match self {
            Self::Causal => causal_batch(windows),
            Self::Masked { masking, cls, sep, word_start } => {
                let (mut input_ids, mut labels) = (Vec::new(), Vec::new());
                for w in windows {
                    let ids: Vec<u32> = std::iter::once(*cls).chain(w.iter().copied()).chain([*sep]).collect();
                    let starts: Option<Vec<bool>> = word_start
                        .as_ref()
                        .map(|ws| ids.iter().map(|&t| ws.get(t as usize).copied().unwrap_or(true)).collect());
                    let (i, l) = mask_tokens(&ids, starts.as_deref(), masking, rng);
                    input_ids.push(i);
                    labels.push(l);
                }
                Batch { input_ids, attention_mask: None, decoder_input_ids: None, labels: Some(labels) }
            }
            Self::Span { corruption, pad, decoder_start } => {
                let pairs = windows.iter().map(|w| corruption.corrupt(w, rng)).collect::<Result<Vec<_>>>()?;
                encoder_decoder_batch(&pairs, *pad, *decoder_start)
            }
        })
    }
}

/// What a checkpoint holds beyond the weights and the optimizer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps taken.
    pub step: u64,
    /// Tokens consumed (model positions of every sequence).
    pub tokens: u64,
    pub cursor: Cursor,
    /// The objectives' random source (masks, spans).
    pub rng: Rng,
    pub config: TrainConfig,
}

/// The bytes of a checkpoint: an HF model folder plus the optimizer and the trainer state.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config_json: String,
    pub model_safetensors: Vec<u8>,
    /// burn's optimizer record (burnpack).
    pub optimizer: Vec<u8>,
    pub state_json: String,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct StepStats {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: u64,
}

pub struct Trainer<M: LanguageModel> {
    pub model: M,
    pub model_config: ModelConfig,
    pub state: TrainState,
    optim: ModuleOptimizer,
    objective: ObjectiveSpec,
    windows: Windows,
    device: Device,
}

impl<M: LanguageModel> Trainer<M> {
    /// A trainer at step 0. `device` is the plain device; training runs on its autodiff decorator.
    pub fn new(
        model: M,
        model_config: ModelConfig,
        config: TrainConfig,
        objective: ObjectiveSpec,
        device: &Device,
    ) -> Self {
        let device = device.clone().autodiff();
        let model = trainable(with_stable_ids(model));
        let optim = adamw(&config, &model);
        let windows = Windows::new(objective.window(config.block_size), config.seed);
        let state =
            TrainState { step: 0, tokens: 0, cursor: Cursor::default(), rng: Rng::seed_from_u64(config.seed), config };
        Self { model, model_config, state, optim, objective, windows, device }
    }

    /// A trainer continuing from a checkpoint; `model` holds its weights.
    pub fn resume(
        model: M,
        model_config: ModelConfig,
        checkpoint_state: &str,
        optimizer: Vec<u8>,
        objective: ObjectiveSpec,
        device: &Device,
    ) -> Result<Self> {
        let state: TrainState = serde_json::from_str(checkpoint_state)
            .map_err(|e| Error::Config(format!("trainer_state.json: not a Hearth trainer state ({e})")))?;
        let mut trainer = Self::new(model, model_config, state.config.clone(), objective, device);
        trainer.optim = trainer
            .optim
            .clone()
            .from_bytes(Bytes::from_bytes_vec(optimizer))
            .map_err(|e| Error::Config(format!("optimizer state: {e:?}")))?;
        trainer.state = state;
        Ok(trainer)
    }

    pub fn config(&self) -> &TrainConfig {
        &self.state.config
    }

    fn next_batch(&mut self, train: &dyn TokenSource) -> Result<Batch> {
        if self.windows.count(train) == 0 {
            return Err(Error::Input(format!(
                "the training data has {} tokens, fewer than one sequence of {}; add text or lower block_size",
                train.len(),
                self.objective.window(self.config().block_size)
            )));
        }
        let windows: Vec<Vec<u32>> =
            (0..self.config().batch_size).map(|_| self.windows.next(train, &mut self.state.cursor)).collect();
        self.objective.batch(&windows, &mut self.state.rng)
    }

    /// One optimizer step: `accumulation()` micro-batches, global-norm clipping, AdamW.
    pub fn step(&mut self, train: &dyn TokenSource) -> Result<StepStats> {
        block_on(self.step_async(train))
    }

    /// [`Trainer::step`], with its device reads awaited (what a browser page calls).
    pub async fn step_async(&mut self, train: &dyn TokenSource) -> Result<StepStats> {
        let config = self.config().clone();
        let step = self.state.step;
        // Dropout draws from the backend's generator: seed it per step so that a resumed run
        // draws what the uninterrupted one did.
        self.device.seed(config.seed.wrapping_add(step.wrapping_mul(0x2545_F491_4F6C_DD1D)));
        let accum = config.accumulation();
        let mut accumulator = GradientsAccumulator::<M>::new();
        let mut loss_sum = 0.0;
        let mut tokens = 0;
        for _ in 0..accum {
            let batch = self.next_batch(train)?;
            tokens += batch.input_ids.iter().map(Vec::len).sum::<usize>() as u64;
            let output = self.model.forward_inputs(batch.to_inputs(&self.device))?;
            let loss = output.loss.ok_or_else(|| Error::Input("the batch has no labels".into()))?;
            let value = readback::scalar::<1, f32>(loss.clone()).await? as f64;
            if !value.is_finite() {
                return Err(Error::NonFinite { step: step + 1, what: format!("loss {value}") });
            }
            loss_sum += value;
            let grads = (loss / accum as f64).backward();
            accumulator.accumulate(&self.model, GradientsParams::from_grads(grads, &self.model));
        }
        let mut grads = accumulator.grads();
        let grad_norm = global_norm(&self.model, &grads).await?;
        if !grad_norm.is_finite() {
            return Err(Error::NonFinite { step: step + 1, what: format!("gradient norm {grad_norm}") });
        }
        if config.grad_clip > 0.0 && grad_norm > config.grad_clip {
            scale_grads(&self.model, &mut grads, config.grad_clip / (grad_norm + 1e-6));
        }
        let lr = config.schedule().lr(step);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.state.step += 1;
        self.state.tokens += tokens;
        Ok(StepStats { step: self.state.step, loss: loss_sum / accum as f64, lr, grad_norm, tokens })
    }

    /// Mean loss per target over the first `eval_batches` batches of `val`, in file order, with
    /// masks drawn from a fixed seed: the same number for the same weights, at every evaluation.
    pub fn evaluate(&self, val: &dyn TokenSource) -> Result<f64> {
        block_on(self.evaluate_async(val))
    }

    /// [`Trainer::evaluate`], with its device reads awaited.
    pub async fn evaluate_async(&self, val: &dyn TokenSource) -> Result<f64> {
        let model = self.model.valid();
        let device = self.device.clone().inner();
        let config = self.config();
        let available = self.windows.count(val) / config.batch_size;
        if available == 0 {
            return Err(Error::Input(format!(
                "the validation data has {} tokens, fewer than one batch of {} × {}; add text or raise val_fraction",
                val.len(),
                config.batch_size,
                self.objective.window(config.block_size)
            )));
        }
        let mut rng = Rng::seed_from_u64(config.seed ^ 0xE7A1);
        let (mut weighted, mut targets) = (0.0, 0usize);
        for b in 0..available.min(config.eval_batches.max(1)) {
            let windows: Vec<Vec<u32>> =
                (0..config.batch_size).map(|i| self.windows.sequential(val, b * config.batch_size + i)).collect();
            let batch = self.objective.batch(&windows, &mut rng)?;
            let n = match &self.objective {
                ObjectiveSpec::Causal => batch.input_ids.iter().map(|r| r.len() - 1).sum(),
                _ => batch.num_targets(),
            };
            let output = model.forward_inputs(batch.to_inputs(&device))?;
            let loss = readback::scalar::<1, f32>(output.loss.expect("labels given")).await? as f64;
            weighted += loss * n as f64;
            targets += n;
        }
        Ok(weighted / targets.max(1) as f64)
    }

    /// Everything needed to continue exactly where this trainer is.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let model = self.model.clone().into_model();
        Ok(Checkpoint {
            config_json: self.model_config.to_json(),
            model_safetensors: block_on(model.to_safetensors_async())?,
            optimizer: self.optim.into_bytes().map_err(|e| Error::Config(format!("optimizer state: {e:?}")))?.to_vec(),
            state_json: serde_json::to_string_pretty(&self.state).expect("state serialises"),
        })
    }
}
