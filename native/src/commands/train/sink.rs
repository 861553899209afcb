//! Where `hearth train` sends what the engine's jobs produce: the progress bar and the lines above
//! it, `metrics.jsonl`, checkpoint folders, and the stop asked for by Ctrl-C. Every rank drives the
//! engine alike (the collectives inside the jobs meet); rank 0 alone prints and writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hearth_core::Error;
use hearth_core::train::{Checkpoint, Sink, Trainer};
use serde_json::Value;

use crate::faults;
use crate::report::{Metrics, steps_bar};
use crate::storage::checkpoint;

/// The CLI's sink: a progress bar, rank 0's `metrics.jsonl` and checkpoint folders.
pub struct Files {
    bar: indicatif::ProgressBar,
    rank0: bool,
    /// Rank 0's metrics file (`None` on the other ranks).
    metrics: Option<Metrics>,
    pub metrics_path: PathBuf,
    out_dir: PathBuf,
    tokenizer_json: String,
    keep_last: usize,
    start: Instant,
    interrupt: Interrupt,
}

impl Files {
    /// The sink of a run starting at `trainer`'s step; a resumed run's metrics keep the lines up
    /// to that step (the interrupted run's later lines belong to lost steps).
    pub fn open(out_dir: &Path, trainer: &Trainer, tokenizer_json: String, resumed: bool) -> Result<Self, Error> {
        let rank0 = trainer.rank_and_world().0 == 0;
        let config = trainer.config();
        let metrics_path = out_dir.join("metrics.jsonl");
        let bar = if rank0 { steps_bar(config.max_steps) } else { indicatif::ProgressBar::hidden() };
        bar.set_position(trainer.state().step);
        let metrics = match (rank0, resumed) {
            (false, _) => None,
            (true, false) => Some(Metrics::open(&metrics_path, true)?),
            (true, true) => {
                truncate_metrics_after(&metrics_path, trainer.state().step)?;
                Some(Metrics::open(&metrics_path, false)?)
            }
        };
        Ok(Self {
            bar,
            rank0,
            metrics,
            metrics_path,
            out_dir: out_dir.to_path_buf(),
            tokenizer_json,
            keep_last: config.keep_last,
            start: Instant::now(),
            interrupt: Interrupt::install(),
        })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Ends an interrupted run (exit status 130), rank 0 saying how to continue.
    pub fn exit_interrupted(&self, step: u64, checkpoint: Option<&str>) -> ! {
        if self.rank0 {
            self.bar.abandon();
            eprintln!(
                "interrupted after step {step}; checkpoint written to {}; continue with the same command and --resume",
                checkpoint.unwrap_or_default()
            );
        }
        std::process::exit(130);
    }
}

impl Sink for Files {
    fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn before_step(&mut self) {
        faults::before_step(); // tests only: time to land a kill between checkpoints
    }

    fn progress(&mut self, step: u64, record: Option<&Value>) -> Result<(), Error> {
        self.bar.set_position(step);
        if let Some(r) = record {
            let number = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
            self.bar.set_message(format!(
                "loss {:.3}  lr {:.2e}  {:.0} tok/s",
                number("loss"),
                number("lr"),
                number("tokens_per_s")
            ));
        }
        Ok(())
    }

    /// A line above the bar (rank 0 only).
    fn say(&mut self, line: String) {
        if !self.rank0 {
            return;
        }
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn keep(&mut self, record: &Value) -> Result<(), Error> {
        match &mut self.metrics {
            Some(metrics) => metrics.log(record),
            None => Ok(()),
        }
    }

    fn keeps_checkpoints(&self) -> bool {
        true
    }

    /// Rank 0 writes (the engine asks only the rank that got the checkpoint).
    fn save(&mut self, step: u64, ckpt: &Checkpoint) -> Result<String, Error> {
        let dir = checkpoint::save(&self.out_dir, step, ckpt, &self.tokenizer_json, self.keep_last)?;
        Ok(dir.display().to_string())
    }

    fn stop_requested(&self) -> Option<bool> {
        Some(self.interrupt.requested())
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

/// Ctrl-C (or SIGTERM) on any rank: every rank finishes the step, a checkpoint is written, the run
/// stops; a second signal stops at once.
struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    fn install() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if handler_flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        Self { flag }
    }

    fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}
