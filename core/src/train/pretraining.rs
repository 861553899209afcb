//! Pretraining as the engine drives it: the [`Trainer`] over its training data ([`Pretraining`]),
//! and its periodic jobs — validation loss ([`Validation`]) and zero-shot tasks ([`ZeroShot`]).

use burn::tensor::Device;
use serde_json::{Value, json};

use super::data::TokenSource;
use super::engine::{Cadence, Flow, Job, JobRun, Sink, Steps, due};
use super::precision::Precision;
use super::state::{Checkpoint, StepStats};
use super::trainer::Trainer;
use crate::error::Result;
use crate::eval::{Task, TaskResult, run_suite};
use crate::tokenizer::Tokenizer;

/// A trainer stepping through its training data.
pub struct Pretraining<'a> {
    pub trainer: &'a mut Trainer,
    train: &'a dyn TokenSource,
    /// The run's tokens when this process started training (a resumed run's at its checkpoint).
    pub start_tokens: u64,
    /// The newest step's numbers read.
    pub last: Option<StepStats>,
}

impl<'a> Pretraining<'a> {
    pub fn new(trainer: &'a mut Trainer, train: &'a dyn TokenSource) -> Self {
        let start_tokens = trainer.state().tokens;
        Self { trainer, train, start_tokens, last: None }
    }

    /// The engine's cadence for this run: a record every `log_every` steps, checkpoints every
    /// `checkpoint_every`.
    pub fn cadence(&self) -> Cadence {
        let config = self.trainer.config();
        Cadence { last: config.max_steps, log_every: Some(config.log_every), checkpoint_every: config.checkpoint_every }
    }

    /// Tokens per second since this process started training.
    pub fn tokens_per_s(&self, seconds: f64) -> f64 {
        (self.trainer.state().tokens - self.start_tokens) as f64 / seconds.max(1e-9)
    }
}

impl Steps for Pretraining<'_> {
    fn done(&self) -> u64 {
        self.trainer.state().step
    }

    async fn advance(&mut self) -> Result<()> {
        self.trainer.step_async(self.train).await
    }

    /// `step`, `loss`, `lr`, `grad_norm`, `tokens`, `tokens_per_s`, `elapsed_s` (and f16's
    /// `loss_scale` and `skipped`): a line of `metrics.jsonl`.
    async fn record(&mut self, seconds: f64) -> Result<Value> {
        let stats = self.trainer.last_stats().await?.or(self.last).expect("a step was taken");
        self.last = Some(stats);
        let mut record = json!({
            "step": stats.step, "loss": stats.loss, "lr": stats.lr, "grad_norm": stats.grad_norm,
            "tokens": self.trainer.state().tokens, "tokens_per_s": self.tokens_per_s(seconds), "elapsed_s": seconds,
        });
        if self.trainer.precision() == Precision::F16 {
            record["loss_scale"] = stats.loss_scale.into();
            record["skipped"] = stats.skipped.into();
        }
        Ok(record)
    }

    fn any_rank(&mut self, flag: bool) -> Result<bool> {
        self.trainer.any_rank(flag)
    }

    fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        self.trainer.checkpoint()
    }

    fn barrier(&mut self) -> Result<()> {
        self.trainer.barrier()
    }
}

/// The validation loss, every `eval_every` steps and at the last step (every rank: the ranks
/// share the batches).
pub struct Validation<'v> {
    val: &'v dyn TokenSource,
    every: u64,
    last_step: u64,
    pub last: Option<f64>,
}

impl<'v> Validation<'v> {
    pub fn new(trainer: &Trainer, val: &'v dyn TokenSource) -> Self {
        let config = trainer.config();
        Self { val, every: config.eval_every, last_step: config.max_steps, last: None }
    }
}

impl<'p> Job<Pretraining<'p>> for Validation<'_> {
    fn due(&self, step: u64) -> bool {
        due(self.every, step, self.last_step)
    }

    fn run<'a>(
        &'a mut self,
        steps: &'a mut Pretraining<'p>,
        record: &'a mut Value,
        sink: &'a mut dyn Sink,
    ) -> JobRun<'a> {
        Box::pin(async move {
            let loss = steps.trainer.evaluate_async(self.val).await?;
            record["val_loss"] = loss.into();
            record["val_ppl"] = loss.exp().into();
            sink.say(format!(
                "step {:>6}  train loss {:.4}  val loss {loss:.4}  val ppl {:.2}  {:.0} tok/s",
                steps.done(),
                record["loss"].as_f64().unwrap_or(f64::NAN),
                loss.exp(),
                record["tokens_per_s"].as_f64().unwrap_or(0.0)
            ));
            self.last = Some(loss);
            Ok(Flow::Go)
        })
    }
}

/// Zero-shot tasks, every `zero_shot_every` steps and at the last step.
pub struct ZeroShot<'t> {
    tasks: Vec<Task>,
    tokenizer: &'t Tokenizer,
    device: Device,
    every: u64,
    limit: usize,
    last_step: u64,
    pub last: Option<Vec<TaskResult>>,
}

impl<'t> ZeroShot<'t> {
    pub fn new(trainer: &Trainer, tasks: Vec<Task>, tokenizer: &'t Tokenizer, device: &Device) -> Self {
        let config = trainer.config();
        Self {
            tasks,
            tokenizer,
            device: device.clone(),
            every: config.zero_shot_every,
            limit: config.zero_shot_limit,
            last_step: config.max_steps,
            last: None,
        }
    }
}

impl<'p> Job<Pretraining<'p>> for ZeroShot<'_> {
    fn due(&self, step: u64) -> bool {
        !self.tasks.is_empty() && due(self.every, step, self.last_step)
    }

    fn run<'a>(
        &'a mut self,
        steps: &'a mut Pretraining<'p>,
        record: &'a mut Value,
        sink: &'a mut dyn Sink,
    ) -> JobRun<'a> {
        Box::pin(async move {
            let model = steps.trainer.inference_model();
            let results = run_suite(&model, self.tokenizer, &self.tasks, self.limit, 32, &self.device)?;
            let shown: Vec<String> = results.iter().map(|r| format!("{} {:.3}", r.task, r.metrics["acc"])).collect();
            sink.say(format!("step {:>6}  zero-shot acc: {}", steps.done(), shown.join(", ")));
            record["zero_shot"] = results.iter().map(|r| (r.task.clone(), json!(r.metrics))).collect();
            self.last = Some(results);
            Ok(Flow::Go)
        })
    }
}
