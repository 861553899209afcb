//! The training loop, one optimizer step at a time, so that the CLI runs it in a plain loop and the
//! browser a few steps per animation frame.

use std::collections::HashMap;

use burn::module::ParamId;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::data::{Cursor, TokenSource, Windows};
use super::optim::{adamw, global_norm, scale_grads, without_state_for};
use super::precision::{LossScaler, Precision, apply_or_fail, grads_to_f32, half_copy};
use super::{Objective, TrainConfig};
use crate::error::{Error, Result};
use crate::hf::params::{trainable, with_stable_ids};
use crate::models::{LanguageModel, ModelConfig};
use crate::objectives::span::encoder_decoder_batch;
use crate::objectives::{Batch, MaskingConfig, Rng, SpanCorruption, causal_batch, mask_tokens};
use crate::parallel::{Collective, data_parallel, partition};
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
    /// f16's dynamic loss scale (absent for f32 and bf16).
    #[serde(default)]
    pub loss_scaler: Option<LossScaler>,
}

/// The bytes of a checkpoint: an HF model folder plus the optimizer and the trainer state.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config_json: String,
    pub model_safetensors: Vec<u8>,
    /// burn's optimizer record (burnpack): one, or one per rank under ZeRO stage 1.
    pub optimizer_shards: Vec<Vec<u8>>,
    pub state_json: String,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct StepStats {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: u64,
    /// f16 only: the gradients overflowed, so the update was skipped and the loss scale halved.
    pub skipped: bool,
    /// The loss scale this step ran with (1 without one).
    pub loss_scale: f64,
}

/// This process's place among data-parallel ranks.
struct Parallel {
    collective: Box<dyn Collective>,
    /// ZeRO stage 1: which rank keeps optimizer state for, and updates, each parameter.
    owner: Option<HashMap<ParamId, usize>>,
}

pub struct Trainer<M: LanguageModel> {
    pub model: M,
    pub model_config: ModelConfig,
    pub state: TrainState,
    optim: ModuleOptimizer,
    objective: ObjectiveSpec,
    windows: Windows,
    device: Device,
    precision: Precision,
    parallel: Option<Parallel>,
    /// What the trainer changed from the config, for the user (e.g. f32 on a device without f16).
    pub notices: Vec<String>,
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
        let (precision, notice) = config.precision.supported_on(&device);
        let loss_scaler = LossScaler::for_run(precision, &config, None);
        let state = TrainState {
            step: 0,
            tokens: 0,
            cursor: Cursor::default(),
            rng: Rng::seed_from_u64(config.seed),
            config,
            loss_scaler,
        };
        let notices = notice.into_iter().collect();
        Self { model, model_config, state, optim, objective, windows, device, precision, parallel: None, notices }
    }

    /// The precision steps run in (the config's, or f32 where the device lacks it).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Makes this trainer one of `collective.world()` data-parallel ranks: rank 0's weights go to
    /// every rank, each rank computes `batch_size / world` rows of every micro-batch, and the
    /// gradients are averaged before each update. With `config.zero_stage == 1` each rank keeps
    /// optimizer state only for its share of the parameters ([`partition`]).
    pub async fn with_parallel(mut self, collective: Box<dyn Collective>) -> Result<Self> {
        let world = collective.world();
        if world <= 1 {
            return Ok(self);
        }
        if self.config().batch_size % world != 0 {
            return Err(Error::Config(format!(
                "batch_size {} does not split over {world} ranks; make it a multiple of {world}",
                self.config().batch_size
            )));
        }
        let rank = collective.rank();
        let owner: Option<HashMap<ParamId, usize>> =
            (self.config().zero_stage == 1).then(|| partition(&self.model, world).into_iter().collect());
        if let Some(owner) = &owner {
            // State resumed from an unsharded checkpoint: keep only this rank's share.
            self.optim =
                without_state_for(self.optim.clone(), &self.state.config, &self.model, |id| owner[&id] != rank);
        }
        self.parallel = Some(Parallel { collective, owner: None });
        // Every rank continues from rank 0's step, data cursor and random state (a rank that
        // resumed from another checkpoint than rank 0 would train on other rows: refuse).
        let state = serde_json::to_vec(&self.state).expect("state serialises");
        let parallel = self.parallel.as_mut().expect("set above");
        let shared: TrainState = serde_json::from_slice(&parallel.collective.broadcast_bytes(state)?)
            .map_err(|e| Error::Distributed(format!("rank 0 sent no trainer state ({e})")))?;
        if shared.step != self.state.step {
            return Err(Error::Distributed(format!(
                "rank {rank} is at step {} but rank 0 at step {}: every rank must resume from the same checkpoint (a shared out_dir, or the same folder copied to every machine)",
                self.state.step, shared.step
            )));
        }
        self.state = shared;
        let collective = self.parallel.as_mut().expect("just set").collective.as_mut();
        self.model = data_parallel::sync_params(&self.model, &|_| 0, collective).await?;
        self.parallel.as_mut().expect("set above").owner = owner;
        Ok(self)
    }

    /// `(rank, world)`: `(0, 1)` without data parallelism.
    pub fn rank_and_world(&self) -> (usize, usize) {
        self.parallel.as_ref().map_or((0, 1), |p| (p.collective.rank(), p.collective.world()))
    }

    /// Waits for every rank (no-op without data parallelism).
    pub fn barrier(&mut self) -> Result<()> {
        match &mut self.parallel {
            None => Ok(()),
            Some(p) => p.collective.barrier(),
        }
    }

    /// The run's configuration from now on (a resumed run's own settings over the checkpoint's):
    /// the precision and its loss scaler follow it.
    pub fn set_config(&mut self, config: TrainConfig) {
        // The same request was resolved (and any fallback noted) when the trainer was built.
        if config.precision != self.state.config.precision {
            let (precision, notice) = config.precision.supported_on(&self.device);
            self.notices.extend(notice);
            if precision != self.precision {
                self.notices.push(format!(
                    "precision: {} from here on (the checkpoint trained in {})",
                    precision.name(),
                    self.precision.name()
                ));
            }
            self.precision = precision;
        }
        self.state.loss_scaler = LossScaler::for_run(self.precision, &config, self.state.loss_scaler.take());
        self.state.config = config;
    }

    /// Whether any rank says `flag` (every rank must call this at the same point); `flag` alone
    /// without data parallelism.
    pub fn any_rank(&mut self, flag: bool) -> Result<bool> {
        match &mut self.parallel {
            None => Ok(flag),
            Some(p) => {
                let mut v = [flag as u8 as f32];
                p.collective.all_reduce_sum(&mut v)?;
                Ok(v[0] > 0.0)
            }
        }
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
        let mut state: TrainState = serde_json::from_str(checkpoint_state)
            .map_err(|e| Error::Config(format!("trainer_state.json: not a Hearth trainer state ({e})")))?;
        let mut trainer = Self::new(model, model_config, state.config.clone(), objective, device);
        state.loss_scaler = LossScaler::for_run(trainer.precision, &state.config, state.loss_scaler.take());
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
        // draws what the uninterrupted one did, and per rank so that ranks draw different masks
        // (rank 0 draws what a single process draws).
        let (rank, world) = self.rank_and_world();
        self.device.seed(
            config
                .seed
                .wrapping_add(step.wrapping_mul(0x2545_F491_4F6C_DD1D))
                .wrapping_add((rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        let scale = self.state.loss_scaler.as_ref().map_or(1.0, |s| s.scale);
        let accum = config.accumulation();
        let mut accumulator = GradientsAccumulator::<M>::new();
        let mut loss_sum = 0.0;
        let mut tokens = 0;
        for _ in 0..accum {
            // Every rank builds the whole micro-batch (the same windows and masks as one process
            // would) and computes its own rows of it.
            let mut batch = self.next_batch(train)?;
            tokens += batch.input_ids.iter().map(Vec::len).sum::<usize>() as u64;
            if world > 1 {
                batch = batch.shard(rank, world);
            }
            let compute = match self.precision.dtype() {
                Some(dtype) => half_copy(&self.model, dtype),
                None => self.model.clone(),
            };
            let output = compute.forward_inputs(batch.to_inputs(&self.device))?;
            let loss = output.loss.ok_or_else(|| Error::Input("the batch has no labels".into()))?;
            let value = readback::scalar::<1, f32>(loss.clone()).await? as f64;
            if !value.is_finite() && self.state.loss_scaler.is_none() && world == 1 {
                return Err(Error::NonFinite { step: step + 1, what: format!("loss {value}") });
            }
            loss_sum += value;
            let grads = GradientsParams::from_grads((loss / (accum as f64 / scale)).backward(), &compute);
            let grads = match self.precision {
                Precision::F32 => grads,
                _ => grads_to_f32(&self.model, grads, scale),
            };
            accumulator.accumulate(&self.model, grads);
        }
        let mut grads = accumulator.grads();
        let mut loss = loss_sum / accum as f64;
        if self.parallel.is_some() {
            let collective = self.parallel.as_mut().expect("checked").collective.as_mut();
            loss = data_parallel::all_reduce_mean(&self.model, &mut grads, loss, collective).await?;
        }
        let grad_norm = global_norm(&self.model, &grads).await?;
        let apply = apply_or_fail(self.state.loss_scaler.as_mut(), step, loss, grad_norm)?; // or skip (f16)
        let lr = config.schedule().lr(step);
        if apply {
            if config.grad_clip > 0.0 && grad_norm > config.grad_clip {
                scale_grads(&self.model, &mut grads, config.grad_clip / (grad_norm + 1e-6));
            }
            let owner = self.parallel.as_ref().and_then(|p| p.owner.clone());
            if let Some(owner) = &owner {
                data_parallel::keep_grads(&self.model, &mut grads, |id| owner[&id] == rank);
            }
            self.model = self.optim.step(lr, self.model.clone(), grads);
            if let Some(owner) = &owner {
                let collective = self.parallel.as_mut().expect("checked").collective.as_mut();
                self.model = data_parallel::sync_params(&self.model, &|id| owner[&id], collective).await?;
            }
        }
        self.state.step += 1;
        self.state.tokens += tokens;
        Ok(StepStats { step: self.state.step, loss, lr, grad_norm, tokens, skipped: !apply, loss_scale: scale })
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

    /// Everything needed to continue exactly where this trainer is. With data parallelism every
    /// rank calls it (under ZeRO stage 1 the optimizer shards travel to rank 0), and rank 0 gets it:
    /// a checkpoint is written once.
    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        let optimizer = |optim: &ModuleOptimizer| -> Result<Vec<u8>> {
            Ok(optim.into_bytes().map_err(|e| Error::Config(format!("optimizer state: {e:?}")))?.to_vec())
        };
        // Replicated state: rank 0's alone is written (the others serialise nothing).
        let optimizer_shards = match &mut self.parallel {
            Some(p) if p.owner.is_some() => match p.collective.gather_bytes(&optimizer(&self.optim)?)? {
                Some(shards) => shards,
                None => return Ok(None),
            },
            Some(p) if p.collective.rank() != 0 => return Ok(None),
            _ => vec![optimizer(&self.optim)?],
        };
        let model = self.model.clone().into_model();
        Ok(Some(Checkpoint {
            config_json: self.model_config.to_json(),
            model_safetensors: block_on(model.to_safetensors_async())?,
            optimizer_shards,
            state_json: serde_json::to_string_pretty(&self.state).expect("state serialises"),
        }))
    }

    /// Bytes of optimizer state this rank holds (the saving ZeRO stage 1 makes, measured).
    pub fn optimizer_state_bytes(&self) -> usize {
        self.optim.into_bytes().map(|b| b.len()).unwrap_or(0)
    }
}
