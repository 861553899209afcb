//! The training loop, one optimizer step at a time, so that the CLI runs it in a plain loop and the
//! browser a few steps per animation frame. A step reads: batch → forward/backward per micro-batch
//! → reduce over ranks → clip → update. The parts live apart: batches in `objectives::Collator`,
//! the optimizer in `optim`, mixed precision and the loss scaler in `precision`, the ranks in
//! `parallel::DataParallel`.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Tensor};
use rand::SeedableRng;

use super::TrainConfig;
use super::data::{Cursor, TokenSource, Windows};
use super::optim::{sum_of_squares, without_state_for};
use super::precision::{LossScaler, Precision, apply_or_fail, grads_to_f32, half_copy};
use super::state::{Checkpoint, StepStats, TrainState};
use crate::error::{Error, Result};
use crate::hf::params::{trainable, with_stable_ids};
use crate::models::{LanguageModel, Model, ModelConfig};
use crate::objectives::{Batch, Collator, Rng};
use crate::parallel::Collective;
use crate::parallel::data_parallel::DataParallel;
use crate::readback::{self, block_on};

pub struct Trainer {
    /// The model (any family), on the autodiff device, its parameters tracked.
    pub model: Model,
    pub model_config: ModelConfig,
    pub state: TrainState,
    optim: ModuleOptimizer,
    collator: Collator,
    windows: Windows,
    device: Device,
    precision: Precision,
    parallel: Option<DataParallel>,
    /// The steps taken since their numbers were last read, oldest first (see [`Trainer::read_stats`]).
    pending: Vec<Pending>,
    /// What the trainer changed from the config, for the user (e.g. f32 on a device without f16).
    pub notices: Vec<String>,
}

/// A step whose loss and gradient norm may still be on the device.
struct Pending {
    stats: StepStats,
    /// `[loss, Σ‖g‖²]` on the device, or `None` when the step read them already (f16's loss
    /// scaler and data parallelism need them on the host within the step).
    values: Option<Tensor<1>>,
}

impl Trainer {
    /// A trainer at step 0. `device` is the plain device; training runs on its autodiff decorator.
    pub fn new(
        model: Model,
        model_config: ModelConfig,
        config: TrainConfig,
        collator: Collator,
        device: &Device,
    ) -> Self {
        let device = device.clone().autodiff();
        let model = trainable(with_stable_ids(model));
        let optim = config.optimizer().adamw(&model);
        let windows = Windows::new(collator.window(config.block_size), config.seed);
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
        Self {
            model,
            model_config,
            state,
            optim,
            collator,
            windows,
            device,
            precision,
            parallel: None,
            pending: Vec::new(),
            notices,
        }
    }

    /// A trainer continuing from a checkpoint's state and optimizer; `model` holds its weights.
    pub fn resume(
        model: Model,
        model_config: ModelConfig,
        checkpoint_state: &str,
        optimizer: Vec<u8>,
        collator: Collator,
        device: &Device,
    ) -> Result<Self> {
        let mut state: TrainState = serde_json::from_str(checkpoint_state)
            .map_err(|e| Error::Config(format!("trainer_state.json: not a Hearth trainer state ({e})")))?;
        let mut trainer = Self::new(model, model_config, state.config.clone(), collator, device);
        state.loss_scaler = LossScaler::for_run(trainer.precision, &state.config, state.loss_scaler.take());
        trainer.optim = trainer
            .optim
            .clone()
            .from_bytes_on(Bytes::from_bytes_vec(optimizer), device)
            .map_err(|e| Error::Config(format!("optimizer state: {e:?}")))?;
        trainer.state = state;
        Ok(trainer)
    }

    /// Makes this trainer one of `collective.world()` data-parallel ranks: rank 0's weights, step,
    /// data cursor and random state go to every rank, each rank computes `batch_size / world` rows
    /// of every micro-batch, and the gradients are averaged before each update. With
    /// `config.zero_stage == 1` each rank keeps optimizer state only for its share of the
    /// parameters ([`crate::parallel::partition`]).
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
        let mut parallel = DataParallel::new(collective, self.config().zero_stage == 1, &self.model);
        if self.config().zero_stage == 1 {
            // State resumed from an unsharded checkpoint: keep only this rank's share.
            self.optim = without_state_for(self.optim.clone(), &self.state.config.optimizer(), &self.model, |id| {
                !parallel.owns(id)
            });
        }
        // A rank that resumed from another checkpoint than rank 0 would train on other rows: refuse.
        let shared = parallel.broadcast(&self.state)?;
        if shared.step != self.state.step {
            return Err(Error::Distributed(format!(
                "rank {} is at step {} but rank 0 at step {}: every rank must resume from the same checkpoint (a shared out_dir, or the same folder copied to every machine)",
                parallel.rank(),
                self.state.step,
                shared.step
            )));
        }
        self.state = shared;
        self.model = parallel.broadcast_params(&self.model).await?;
        self.parallel = Some(parallel);
        Ok(self)
    }

    /// `(rank, world)`: `(0, 1)` without data parallelism.
    pub fn rank_and_world(&self) -> (usize, usize) {
        self.parallel.as_ref().map_or((0, 1), |p| (p.rank(), p.world()))
    }

    /// Waits for every rank (no-op without data parallelism).
    pub fn barrier(&mut self) -> Result<()> {
        self.parallel.as_mut().map_or(Ok(()), DataParallel::barrier)
    }

    /// Whether any rank says `flag` (every rank must call this at the same point); `flag` alone
    /// without data parallelism.
    pub fn any_rank(&mut self, flag: bool) -> Result<bool> {
        self.parallel.as_mut().map_or(Ok(flag), |p| p.any(flag))
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

    pub fn config(&self) -> &TrainConfig {
        &self.state.config
    }

    /// The objective, as the header names it ("causal LM", …).
    pub fn objective_name(&self) -> &'static str {
        self.collator.name()
    }

    /// The precision steps run in (the config's, or f32 where the device lacks it).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// One optimizer step: `accumulation()` micro-batches, global-norm clipping, AdamW. Its loss
    /// and gradient norm stay on the device: read them with [`Trainer::read_stats`].
    pub fn step(&mut self, train: &dyn TokenSource) -> Result<()> {
        block_on(self.step_async(train))
    }

    /// [`Trainer::step`], with any device read awaited (what a browser page calls).
    ///
    /// Nothing is read back to the host in a step (a GPU would wait for it, twice a step) except
    /// what it cannot go on without: f16's loss scaler decides from the gradients' finiteness
    /// whether to apply the step (one read, as PyTorch's `GradScaler`), and data parallelism sums
    /// the gradients on the host. A non-finite loss or gradient is caught when the numbers are
    /// read, naming the first step it happened at.
    pub async fn step_async(&mut self, train: &dyn TokenSource) -> Result<()> {
        let config = self.config().clone();
        let step = self.state.step;
        self.seed_dropout(step);
        let scale = self.state.loss_scaler.as_ref().map_or(1.0, |s| s.scale);
        let accum = config.accumulation();
        let mut accumulator = GradientsAccumulator::<Model>::new();
        let (mut loss_sum, mut tokens) = (None, 0);
        for _ in 0..accum {
            let batch = self.next_batch(train)?; // the whole micro-batch, as one process builds it
            tokens += batch.input_ids.iter().map(Vec::len).sum::<usize>() as u64;
            let (loss, grads) = self.forward_backward(batch, accum, scale)?; // this rank's rows
            loss_sum = Some(match loss_sum {
                Some(sum) => sum + loss,
                None => loss,
            });
            accumulator.accumulate(&self.model, grads);
        }
        let mut grads = accumulator.grads();
        let loss = loss_sum.expect("at least one micro-batch") / accum as f64; // on the device
        let lr = config.schedule().lr(step);
        let mut stats = StepStats {
            step: step + 1,
            loss: f64::NAN,
            lr,
            grad_norm: f64::NAN,
            tokens,
            skipped: false,
            loss_scale: scale,
        };
        let sumsq = match sum_of_squares(&self.model, &grads) {
            Some(s) => s,
            None => Tensor::zeros([1], &self.device.clone().inner()),
        };
        let mut values = Some(Tensor::cat(vec![loss, sumsq.clone()], 0));
        let on_host = self.parallel.is_some() || self.state.loss_scaler.is_some();
        if on_host {
            // The ranks' mean loss and gradients are summed on the host; f16's scaler decides from
            // the numbers whether the step applies.
            let [loss, local_sumsq] = read_pair(values.take().expect("set above")).await?;
            stats.loss = self.reduce(&mut grads, loss).await?; // the mean over ranks
            let (sumsq, sumsq_value) = match self.parallel.is_some() {
                true => {
                    let reduced = sum_of_squares(&self.model, &grads).expect("gradients after the reduce");
                    let value = readback::scalar::<1, f32>(reduced.clone()).await? as f64;
                    (reduced, value)
                }
                false => (sumsq, local_sumsq),
            };
            stats.grad_norm = sumsq_value.sqrt();
            stats.skipped = !apply_or_fail(self.state.loss_scaler.as_mut(), step, stats.loss, stats.grad_norm)?;
            if !stats.skipped {
                config.optimizer().clip(&self.model, &mut grads, &sumsq);
                self.update(grads, lr).await?;
            }
        } else {
            config.optimizer().clip(&self.model, &mut grads, &sumsq);
            self.update(grads, lr).await?;
        }
        self.pending.push(Pending { stats, values });
        self.state.step += 1;
        self.state.tokens += tokens;
        Ok(())
    }

    /// The numbers of the steps taken since the last read (one read from the device for all of
    /// them), newest last; an error naming the first step whose loss or gradient norm was not
    /// finite (without f16's loss scaler, which skips such steps instead).
    pub async fn read_stats(&mut self) -> Result<Vec<StepStats>> {
        let pending = std::mem::take(&mut self.pending);
        let on_device: Vec<Tensor<1>> = pending.iter().filter_map(|p| p.values.clone()).collect();
        let mut values = match on_device.is_empty() {
            true => Vec::new(),
            false => readback::f32s(Tensor::cat(on_device, 0)).await?,
        }
        .into_iter();
        let mut read = Vec::with_capacity(pending.len());
        for p in pending {
            let mut stats = p.stats;
            if p.values.is_some() {
                let (loss, sumsq) =
                    (values.next().expect("two values a step"), values.next().expect("two values a step"));
                stats.loss = loss as f64;
                stats.grad_norm = (sumsq as f64).sqrt();
                apply_or_fail(None, stats.step - 1, stats.loss, stats.grad_norm)?;
            }
            read.push(stats);
        }
        Ok(read)
    }

    /// The newest step's numbers (see [`Trainer::read_stats`]); `None` before the first step.
    pub async fn last_stats(&mut self) -> Result<Option<StepStats>> {
        Ok(self.read_stats().await?.pop())
    }

    /// [`Trainer::last_stats`], blocking (native front ends).
    pub fn last_stats_now(&mut self) -> Result<Option<StepStats>> {
        block_on(self.last_stats())
    }

    pub fn state(&self) -> &TrainState {
        &self.state
    }

    pub fn model_config(&self) -> &ModelConfig {
        &self.model_config
    }

    /// What the trainer changed from the config, for the user.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// One step and its numbers, read at once (tests, and front ends that show every step).
    pub fn step_and_read(&mut self, train: &dyn TokenSource) -> Result<StepStats> {
        self.step(train)?;
        Ok(block_on(self.last_stats())?.expect("a step was taken"))
    }

    /// Dropout draws from the backend's generator: seeded per step, so that a resumed run draws
    /// what the uninterrupted one did, and per rank, so that ranks draw different masks (rank 0
    /// draws what a single process draws).
    fn seed_dropout(&self, step: u64) {
        let (rank, _) = self.rank_and_world();
        self.device.seed(
            self.config()
                .seed
                .wrapping_add(step.wrapping_mul(0x2545_F491_4F6C_DD1D))
                .wrapping_add((rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
    }

    fn next_batch(&mut self, train: &dyn TokenSource) -> Result<Batch> {
        if self.windows.count(train) == 0 {
            return Err(Error::Input(format!(
                "the training data has {} tokens, fewer than one sequence of {}; add text or lower block_size",
                train.len(),
                self.collator.window(self.config().block_size)
            )));
        }
        let windows: Vec<Vec<u32>> =
            (0..self.config().batch_size).map(|_| self.windows.next(train, &mut self.state.cursor)).collect();
        self.collator.batch(&windows, &mut self.state.rng)
    }

    /// This rank's rows of `batch` forward (in the run's precision) and backward: the loss (`[1]`
    /// f32, on the device, out of the graph), and the f32 gradients of the loss over the `accum`
    /// micro-batches of a step (scaled by `scale`, the loss scale, for the backward, and unscaled
    /// after).
    fn forward_backward(&mut self, batch: Batch, accum: usize, scale: f64) -> Result<(Tensor<1>, GradientsParams)> {
        let (rank, world) = self.rank_and_world();
        let batch = if world > 1 { batch.shard(rank, world) } else { batch };
        let compute = match self.precision.dtype() {
            Some(dtype) => half_copy(&self.model, dtype),
            None => self.model.clone(),
        };
        let output = compute.forward_inputs(batch.to_inputs(&self.device))?;
        let loss = output.loss.ok_or_else(|| Error::Input("the batch has no labels".into()))?;
        let value = loss.clone().inner().cast(burn::tensor::FloatDType::F32);
        let grads = GradientsParams::from_grads((loss / (accum as f64 / scale)).backward(), &compute);
        let grads = match self.precision {
            Precision::F32 => grads,
            _ => grads_to_f32(&self.model, grads, scale),
        };
        Ok((value, grads))
    }

    /// The gradients and `loss` averaged over the ranks (as they are without data parallelism).
    async fn reduce(&mut self, grads: &mut GradientsParams, loss: f64) -> Result<f64> {
        match &mut self.parallel {
            Some(p) => p.reduce(&self.model, grads, loss).await,
            None => Ok(loss),
        }
    }

    /// AdamW at `lr`; under ZeRO stage 1 on this rank's parameters, the rest then from their owners.
    async fn update(&mut self, mut grads: GradientsParams, lr: f64) -> Result<()> {
        if let Some(p) = &self.parallel {
            p.keep_own_grads(&self.model, &mut grads);
        }
        self.model = self.optim.step(lr, self.model.clone(), grads);
        if let Some(p) = &mut self.parallel {
            self.model = p.gather_updated(self.model.clone()).await?;
        }
        Ok(())
    }

    /// Mean loss per target over the first `eval_batches` batches of `val`, in file order, with
    /// masks drawn from a fixed seed: the same number for the same weights, at every evaluation.
    /// With data parallelism the ranks share the batches and add their sums (every rank calls it).
    pub fn evaluate(&mut self, val: &dyn TokenSource) -> Result<f64> {
        block_on(self.evaluate_async(val))
    }

    /// How many batches of `val` an evaluation reads; an error naming the fix when `val` holds
    /// less than one (a run checks this before its first step, not at its first evaluation).
    pub fn validation_batches(&self, val: &dyn TokenSource) -> Result<usize> {
        let config = self.config();
        let available = self.windows.count(val) / config.batch_size;
        if available == 0 {
            return Err(Error::Input(format!(
                "the validation data has {} tokens, fewer than one batch of {} × {}; add text, raise val_fraction or lower batch_size",
                val.len(),
                config.batch_size,
                self.collator.window(config.block_size)
            )));
        }
        Ok(available.min(config.eval_batches.max(1)))
    }

    /// [`Trainer::evaluate`], with its device reads awaited.
    pub async fn evaluate_async(&mut self, val: &dyn TokenSource) -> Result<f64> {
        let batches = self.validation_batches(val)?;
        let model = self.model.valid();
        let device = self.device.clone().inner();
        let config = self.config();
        let (rank, world) = self.rank_and_world();
        let mut rng = Rng::seed_from_u64(config.seed ^ 0xE7A1);
        // [loss, targets] per batch, filled by the rank that evaluates it (every world-th): the sum
        // over ranks adds each value to zeros, so every rank ends with the bits one process gets.
        let mut per_batch = vec![0f32; 2 * batches];
        for b in 0..batches {
            let windows: Vec<Vec<u32>> =
                (0..config.batch_size).map(|i| self.windows.sequential(val, b * config.batch_size + i)).collect();
            let batch = self.collator.batch(&windows, &mut rng)?; // every rank draws every batch's masks
            if b % world != rank {
                continue;
            }
            let targets = match &self.collator {
                Collator::Causal => batch.input_ids.iter().map(|r| r.len() - 1).sum(),
                _ => batch.num_targets(),
            };
            let output = model.forward_inputs(batch.to_inputs(&device))?;
            per_batch[2 * b] = readback::scalar::<1, f32>(output.loss.expect("labels given")).await?;
            per_batch[2 * b + 1] = targets as f32;
        }
        if let Some(p) = &mut self.parallel {
            p.sum(&mut per_batch)?;
        }
        let (mut weighted, mut targets) = (0.0, 0.0);
        for pair in per_batch.chunks(2) {
            weighted += pair[0] as f64 * pair[1] as f64;
            targets += pair[1] as f64;
        }
        Ok(weighted / f64::max(targets, 1.0))
    }

    /// Everything needed to continue exactly where this trainer is. With data parallelism every
    /// rank calls it (under ZeRO stage 1 the optimizer shards travel to rank 0), and rank 0 gets it:
    /// a checkpoint is written once.
    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        // Never a checkpoint of weights a non-finite step has touched: its steps' numbers first.
        if !self.pending.is_empty() {
            block_on(self.read_stats())?;
        }
        let own = || -> Result<Vec<u8>> {
            Ok(self.optim.into_bytes().map_err(|e| Error::Config(format!("optimizer state: {e:?}")))?.to_vec())
        };
        let optimizer_shards = match &mut self.parallel {
            Some(p) => match p.gather_optimizer(own)? {
                Some(shards) => shards,
                None => return Ok(None),
            },
            None => vec![own()?],
        };
        let model = self.model.clone();
        Ok(Some(Checkpoint {
            config_json: self.model_config.to_json(),
            model_safetensors: block_on(model.to_safetensors_async())?,
            optimizer_shards,
            state_json: serde_json::to_string_pretty(&self.state).expect("state serialises"),
        }))
    }

    /// The model as it stands, for inference (no autodiff, dropout off).
    pub fn inference_model(&self) -> Model {
        self.model.valid()
    }

    pub fn num_params(&self) -> usize {
        burn::module::Module::num_params(&self.model)
    }

    /// Bytes of optimizer state this rank holds (the saving ZeRO stage 1 makes, measured).
    pub fn optimizer_state_bytes(&self) -> usize {
        self.optim.into_bytes().map(|b| b.len()).unwrap_or(0)
    }
}

/// The two values of a `[2]` tensor, read in one go.
async fn read_pair(values: Tensor<1>) -> Result<[f64; 2]> {
    let v = readback::f32s(values).await?;
    Ok([v[0] as f64, v[1] as f64])
}
