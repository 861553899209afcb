//! The training loop's periodic jobs, each owning the decision when it is due (torchtitan's split):
//! the step log (progress bar, `metrics.jsonl`), validation, zero-shot evaluation, checkpoints,
//! and stopping on a signal. Every rank runs every job at the same steps, so that the collectives
//! inside them (validation's sum, the checkpoint's optimizer shards, the stop vote) meet; rank 0
//! alone prints and writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::tensor::Device;
use hearth_core::Error;
use hearth_core::eval::{Task, TaskResult};
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::Trainer;
use hearth_core::train::{Precision, StepStats, TokenSource, TrainConfig};

use crate::report::{Metrics, steps_bar};
use crate::storage::checkpoint;

/// The progress bar and `metrics.jsonl`: a record per step, written every `log_every` steps and
/// whenever it holds an evaluation, which is also printed.
pub struct StepLog {
    bar: indicatif::ProgressBar,
    rank0: bool,
    /// Rank 0's metrics file (`None` on the other ranks).
    metrics: Option<Metrics>,
    pub path: PathBuf,
    log_every: u64,
    /// f16: the loss scale and skipped steps go into each record.
    scaled: bool,
    start: Instant,
    start_tokens: u64,
    pub last: Option<StepStats>,
}

impl StepLog {
    /// The log of a run starting at `trainer`'s step; a resumed run's file keeps the lines up to
    /// that step (the interrupted run's later lines belong to lost steps).
    pub fn open(out_dir: &Path, trainer: &Trainer, resumed: bool, rank0: bool) -> Result<Self, Error> {
        let config = trainer.config();
        let path = out_dir.join("metrics.jsonl");
        let bar = if rank0 { steps_bar(config.max_steps) } else { indicatif::ProgressBar::hidden() };
        bar.set_position(trainer.state().step);
        let metrics = match (rank0, resumed) {
            (false, _) => None,
            (true, false) => Some(Metrics::open(&path, true)?),
            (true, true) => {
                truncate_metrics_after(&path, trainer.state().step)?;
                Some(Metrics::open(&path, false)?)
            }
        };
        Ok(Self {
            bar,
            rank0,
            metrics,
            path,
            log_every: config.log_every.max(1),
            scaled: trainer.precision() == Precision::F16,
            start: Instant::now(),
            start_tokens: trainer.state().tokens,
            last: None,
        })
    }

    /// Tokens per second since this process started training.
    pub fn tokens_per_s(&self, tokens: u64) -> f64 {
        (tokens - self.start_tokens) as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }

    /// The run's tokens when this process started training (a resumed run's at its checkpoint).
    pub fn start_tokens(&self) -> u64 {
        self.start_tokens
    }

    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The step's record, when its numbers are wanted: every `log_every` steps, at the last step,
    /// and at a step that evaluates (`evaluating`). Only then are they read back from the device
    /// (a non-finite loss is caught there, naming its step).
    pub fn maybe_record(
        &mut self,
        trainer: &mut Trainer,
        evaluating: bool,
    ) -> Result<Option<serde_json::Value>, Error> {
        let step = trainer.state().step;
        self.bar.set_position(step);
        if !(step % self.log_every == 0 || evaluating || step == trainer.config().max_steps) {
            return Ok(None);
        }
        let Some(stats) = trainer.last_stats_now()? else { return Ok(None) };
        Ok(Some(self.record(&stats, trainer.state().tokens)))
    }

    /// The record of `stats`, shown on the bar.
    fn record(&mut self, stats: &StepStats, tokens: u64) -> serde_json::Value {
        let tok_s = self.tokens_per_s(tokens);
        self.bar.set_position(stats.step);
        self.bar.set_message(format!("loss {:.3}  lr {:.2e}  {:.0} tok/s", stats.loss, stats.lr, tok_s));
        self.last = Some(*stats);
        let mut record = serde_json::json!({
            "step": stats.step, "loss": stats.loss, "lr": stats.lr, "grad_norm": stats.grad_norm,
            "tokens": tokens, "tokens_per_s": tok_s, "elapsed_s": self.elapsed_s(),
        });
        if self.scaled {
            record["loss_scale"] = stats.loss_scale.into();
            record["skipped"] = stats.skipped.into();
        }
        record
    }

    /// Writes `record` when due: every `log_every` steps, and whenever it holds an evaluation.
    pub fn maybe_write(&mut self, record: Option<serde_json::Value>) -> Result<(), Error> {
        let Some(record) = record else { return Ok(()) };
        let step = record["step"].as_u64().unwrap_or(0);
        let evaluated = record.get("val_loss").is_some() || record.get("zero_shot").is_some();
        match &mut self.metrics {
            Some(metrics) if step % self.log_every == 0 || evaluated => metrics.log(record),
            _ => Ok(()),
        }
    }

    /// A line above the bar (rank 0 only).
    pub fn println(&self, line: String) {
        if !self.rank0 {
            return;
        }
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    pub fn abandon(&self) {
        self.bar.abandon();
    }
}

/// Drops metric lines past `step`.
fn truncate_metrics_after(path: &Path, step: u64) -> Result<(), Error> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .collect();
    checkpoint::write_atomic(path, (kept.join("\n") + if kept.is_empty() { "" } else { "\n" }).as_bytes())
}

/// The validation loss, every `eval_every` steps and at the last step.
pub struct Validation {
    every: u64,
    pub last: Option<f64>,
}

impl Validation {
    pub fn new(config: &TrainConfig) -> Self {
        Self { every: config.eval_every, last: None }
    }

    /// Whether it runs after `step`.
    pub fn due(&self, step: u64, config: &TrainConfig) -> bool {
        config.due(self.every, step)
    }

    pub fn maybe_run(
        &mut self,
        trainer: &mut Trainer,
        val: &dyn TokenSource,
        record: &mut Option<serde_json::Value>,
        log: &StepLog,
    ) -> Result<(), Error> {
        let step = trainer.state().step;
        let Some(record) = record.as_mut().filter(|_| self.due(step, trainer.config())) else { return Ok(()) };
        let loss = trainer.evaluate(val)?; // the ranks share the batches
        record["val_loss"] = loss.into();
        record["val_ppl"] = loss.exp().into();
        log.println(format!(
            "step {step:>6}  train loss {:.4}  val loss {loss:.4}  val ppl {:.2}  {:.0} tok/s",
            record["loss"].as_f64().unwrap_or(f64::NAN),
            loss.exp(),
            record["tokens_per_s"].as_f64().unwrap_or(0.0)
        ));
        self.last = Some(loss);
        Ok(())
    }
}

/// Zero-shot tasks (`zero_shot`), every `zero_shot_every` steps and at the last step.
pub struct ZeroShot {
    tasks: Vec<Task>,
    every: u64,
    limit: usize,
    device: Device,
    pub last: Option<Vec<TaskResult>>,
}

impl ZeroShot {
    pub fn new(config: &TrainConfig, device: &Device) -> Result<Self, Error> {
        Ok(Self {
            tasks: crate::commands::eval::load_tasks(&config.zero_shot)?,
            every: config.zero_shot_every,
            limit: config.zero_shot_limit,
            device: device.clone(),
            last: None,
        })
    }

    /// Whether it runs after `step`.
    pub fn due(&self, step: u64, config: &TrainConfig) -> bool {
        !self.tasks.is_empty() && config.due(self.every, step)
    }

    pub fn maybe_run(
        &mut self,
        trainer: &Trainer,
        tokenizer: &Tokenizer,
        record: &mut Option<serde_json::Value>,
        log: &StepLog,
    ) -> Result<(), Error> {
        let step = trainer.state().step;
        let Some(record) = record.as_mut().filter(|_| self.due(step, trainer.config())) else { return Ok(()) };
        let model = trainer.inference_model();
        let results =
            crate::commands::eval::zero_shot_suite(&model, tokenizer, &self.tasks, self.limit, 32, &self.device)?;
        let shown: Vec<String> = results.iter().map(|r| format!("{} {:.3}", r.task, r.metrics["acc"])).collect();
        log.println(format!("step {step:>6}  zero-shot acc: {}", shown.join(", ")));
        record["zero_shot"] = results.iter().map(|r| (r.task.clone(), serde_json::json!(r.metrics))).collect();
        self.last = Some(results);
        Ok(())
    }
}

/// Checkpoints every `checkpoint_every` steps, at the last step and when the run stops; every rank
/// takes part (ZeRO's optimizer shards travel to rank 0), rank 0 writes.
pub struct Checkpointer {
    out_dir: PathBuf,
    tokenizer_json: String,
    every: u64,
    keep_last: usize,
    /// The newest checkpoint on disk (the one resumed from, at first).
    pub last: Option<PathBuf>,
}

impl Checkpointer {
    pub fn new(
        out_dir: &Path,
        config: &TrainConfig,
        tokenizer: &Tokenizer,
        resumed: Option<PathBuf>,
    ) -> Result<Self, Error> {
        Ok(Self {
            out_dir: out_dir.to_path_buf(),
            tokenizer_json: tokenizer.to_json()?,
            every: config.checkpoint_every,
            keep_last: config.keep_last,
            last: resumed,
        })
    }

    /// Saves when due or when `stop`; on a stop every rank then waits until the checkpoint is on disk.
    pub fn maybe_save(&mut self, trainer: &mut Trainer, stop: bool) -> Result<(), Error> {
        let step = trainer.state().step;
        if (trainer.config().due(self.every, step) || stop)
            && let Some(ckpt) = trainer.checkpoint()?
        {
            self.last = Some(checkpoint::save(&self.out_dir, step, &ckpt, &self.tokenizer_json, self.keep_last)?);
        }
        if stop {
            trainer.barrier()?;
        }
        Ok(())
    }

    /// A step's error, saying where a non-finite run stopped and what it keeps.
    pub fn explain(&self, error: Error) -> Error {
        match error {
            Error::NonFinite { step, what } => {
                let kept = self.last.as_ref().map_or("no checkpoint was written yet".to_string(), |d| {
                    format!("the last good checkpoint is {}", d.display())
                });
                Error::NonFinite { step, what: format!("{what} (stopped; {kept})") }
            }
            e => e,
        }
    }
}

/// Ctrl-C (or SIGTERM) on any rank: every rank finishes the step, a checkpoint is written, the run
/// stops; a second signal stops at once.
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    pub fn install() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if handler_flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        Self { flag }
    }

    /// Whether any rank was interrupted (every rank votes, after every step).
    pub fn on_any_rank(&self, trainer: &mut Trainer) -> Result<bool, Error> {
        trainer.any_rank(self.flag.load(Ordering::SeqCst))
    }

    /// Ends an interrupted run (exit status 130), rank 0 saying how to continue.
    pub fn exit(log: &StepLog, checkpoints: &Checkpointer, step: u64, rank0: bool) -> ! {
        if rank0 {
            log.abandon();
            let dir = checkpoints.last.as_ref().map_or(String::new(), |d| d.display().to_string());
            eprintln!(
                "interrupted after step {step}; checkpoint written to {dir}; continue with the same command and --resume"
            );
        }
        std::process::exit(130);
    }
}
