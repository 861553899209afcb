//! The training engine every front end drives — `hearth train`, the page, fine-tuning and `hearth
//! bench train` — as nanoGPT's loop with torchtitan's split: one optimizer step, then each periodic
//! job, which decides itself whether it is due. What the jobs produce leaves through a [`Sink`]
//! (a progress bar and files natively, messages to the page in the browser), so core does no I/O.
//!
//! A step's numbers stay on the device until its record is wanted (every `log_every` steps, and at
//! an evaluation; pretraining validates at its last step): only then are they read back, and a
//! non-finite loss is caught there, naming its step and the last good checkpoint.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use super::state::Checkpoint;
use crate::error::{Error, Result};

/// Whether a job run every `every` steps (0: at the last step only) is due after `step` of a run
/// ending at `last`: at each multiple of `every`, and at the last step. The one cadence of every
/// periodic job of every front end.
pub fn due(every: u64, step: u64, last: u64) -> bool {
    (every > 0 && step % every == 0) || step == last
}

/// What the engine trains, one optimizer step at a time: pretraining's `Trainer` over its data
/// ([`super::trainer::Pretraining`]), a fine-tune, a benchmark's synthetic batches.
pub trait Steps {
    /// Optimizer steps taken so far.
    fn done(&self) -> u64;
    /// One optimizer step; nothing is read back.
    fn advance(&mut self) -> impl Future<Output = Result<()>>;
    /// The newest step's record, its numbers read back now; `seconds` since this process started
    /// training (for its speed).
    fn record(&mut self, seconds: f64) -> impl Future<Output = Result<Value>>;
    /// Whether `flag` is set on any rank (every rank votes after every step; alone: `flag`).
    fn any_rank(&mut self, flag: bool) -> Result<bool> {
        Ok(flag)
    }
    /// Everything needed to continue exactly here (with data parallelism every rank takes part and
    /// rank 0 gets it); `None` where there is nothing to keep.
    fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        Ok(None)
    }
    /// Every rank waits here (after a stop's checkpoint, until it is stored).
    fn barrier(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Where a run's output goes: the CLI's progress bar, `metrics.jsonl` and checkpoint folders; the
/// page's messages; a benchmark's timer.
pub trait Sink {
    /// Seconds since this process started training (on the page, the browser's clock).
    fn seconds(&self) -> f64;
    /// Before every step (the CLI's hook for its kill-and-resume tests; a benchmark's timer).
    fn before_step(&mut self) {}
    /// After every step: where the run is, and the step's record when one was read.
    fn progress(&mut self, _step: u64, _record: Option<&Value>) -> Result<()> {
        Ok(())
    }
    /// A line for the user.
    fn say(&mut self, line: String);
    /// A record to keep: every `log_every` steps, and every evaluation.
    fn keep(&mut self, record: &Value) -> Result<()>;
    /// Whether this front end keeps checkpoints (when it does not, none is made).
    fn keeps_checkpoints(&self) -> bool {
        false
    }
    /// Stores the checkpoint of `step`; where it went.
    fn save(&mut self, _step: u64, _checkpoint: &Checkpoint) -> Result<String> {
        Err(Error::Input("this front end keeps no checkpoints".into()))
    }
    /// Whether the user asked the run to stop (Ctrl-C, SIGTERM); `None` where no one can ask
    /// (then the ranks do not vote on it after each step).
    fn stop_requested(&self) -> Option<bool> {
        None
    }
}

/// What a job tells the engine after it ran.
pub enum Flow {
    Go,
    /// End the run here (early stopping), with the line that says why.
    Stop(String),
}

/// A job's run: a future borrowing the job, the steps, the record and the sink.
pub type JobRun<'a> = Pin<Box<dyn Future<Output = Result<Flow>> + 'a>>;

/// A periodic job: validation, zero-shot tasks, a fine-tune's dev evaluation with early stopping.
/// Every rank runs every job at the same steps, so that the collectives inside them meet.
pub trait Job<S> {
    /// Whether it runs after `step`.
    fn due(&self, step: u64) -> bool;
    /// Runs after a step it is due at, adding what it found to that step's record.
    fn run<'a>(&'a mut self, steps: &'a mut S, record: &'a mut Value, sink: &'a mut dyn Sink) -> JobRun<'a>;
}

/// When the engine reads records, keeps them and saves checkpoints.
#[derive(Clone, Copy, Debug)]
pub struct Cadence {
    /// The run's last step.
    pub last: u64,
    /// Read and keep a record every this many steps (`None`: only at evaluations).
    pub log_every: Option<u64>,
    /// Checkpoint every this many steps and at the last (0: at the last only); needs a sink that
    /// keeps checkpoints.
    pub checkpoint_every: u64,
}

impl Cadence {
    fn logs(&self, step: u64) -> bool {
        self.log_every.is_some_and(|every| step % every.max(1) == 0)
    }
}

/// How a run (or a stretch of it) ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The user asked it to stop (on any rank); a checkpoint was stored.
    pub interrupted: bool,
    /// A job ended it early, and why.
    pub stopped_early: Option<String>,
    /// The newest record read (with what the jobs added).
    pub last_record: Option<Value>,
}

/// The loop, with what it carries between calls (the page runs it a few steps at a time).
pub struct Engine {
    pub cadence: Cadence,
    /// Where the newest checkpoint went (the one resumed from, at first).
    pub last_checkpoint: Option<String>,
}

impl Engine {
    pub fn new(cadence: Cadence, resumed_from: Option<String>) -> Self {
        Self { cadence, last_checkpoint: resumed_from }
    }

    /// Trains until step `until` (or a stop): a step, then each job that is due.
    pub async fn run<S: Steps>(
        &mut self,
        steps: &mut S,
        until: u64,
        jobs: &mut [&mut dyn Job<S>],
        sink: &mut dyn Sink,
    ) -> Result<Outcome> {
        let mut outcome = Outcome::default();
        while steps.done() < until {
            sink.before_step(); // tests: time to land a kill between checkpoints
            steps.advance().await.map_err(|e| self.explain(e))?; // micro-batches, reduce, clip, update
            let step = steps.done();
            let jobs_due: Vec<bool> = jobs.iter().map(|job| job.due(step)).collect();
            let evaluating = jobs_due.contains(&true);
            let logging = self.cadence.logs(step);
            let mut record = match logging || evaluating {
                true => Some(steps.record(sink.seconds()).await.map_err(|e| self.explain(e))?), // read back only now
                false => None,
            };
            sink.progress(step, record.as_ref())?;
            if let Some(record) = record.as_mut() {
                for (job, _) in jobs.iter_mut().zip(&jobs_due).filter(|(_, due)| **due) {
                    if let Flow::Stop(why) = job.run(steps, record, sink).await? {
                        outcome.stopped_early = Some(why);
                    }
                }
                sink.keep(record)?; // every log_every, and every evaluation
            }
            let stop = match sink.stop_requested() {
                Some(asked) => steps.any_rank(asked)?, // Ctrl-C on any rank stops them all
                None => false,
            };
            if sink.keeps_checkpoints() && (due(self.cadence.checkpoint_every, step, self.cadence.last) || stop) {
                if let Some(checkpoint) = steps.checkpoint().map_err(|e| self.explain(e))? {
                    self.last_checkpoint = Some(sink.save(step, &checkpoint)?);
                }
            }
            if stop {
                steps.barrier()?; // every rank waits until the checkpoint is stored
            }
            if record.is_some() {
                outcome.last_record = record;
            }
            if let Some(why) = &outcome.stopped_early {
                sink.say(why.clone());
                break;
            }
            if stop {
                outcome.interrupted = true;
                break;
            }
        }
        Ok(outcome)
    }

    /// A step's error, saying where a non-finite run stopped and what it keeps.
    pub fn explain(&self, error: Error) -> Error {
        match error {
            Error::NonFinite { step, what } => {
                let kept = self.last_checkpoint.as_ref().map_or("no checkpoint was written yet".to_string(), |d| {
                    format!("the last good checkpoint is {d}")
                });
                Error::NonFinite { step, what: format!("{what} (stopped; {kept})") }
            }
            e => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readback::block_on;
    use serde_json::json;

    /// Counts steps and reads; a non-finite loss at `bad_step`.
    #[derive(Default)]
    struct Counter {
        step: u64,
        reads: Vec<u64>,
        bad_step: Option<u64>,
    }

    impl Steps for Counter {
        fn done(&self) -> u64 {
            self.step
        }
        async fn advance(&mut self) -> Result<()> {
            self.step += 1;
            Ok(())
        }
        async fn record(&mut self, seconds: f64) -> Result<Value> {
            if self.bad_step == Some(self.step) {
                return Err(Error::NonFinite { step: self.step, what: "loss NaN".into() });
            }
            self.reads.push(self.step);
            Ok(json!({"step": self.step, "elapsed_s": seconds}))
        }
        fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
            let bytes = format!("{}", self.step);
            Ok(Some(Checkpoint {
                config_json: String::new(),
                model_safetensors: Vec::new(),
                optimizer_shards: Vec::new(),
                state_json: bytes,
            }))
        }
    }

    /// Runs at multiples of `every` (and the last step); stops the run at `stop_at`.
    struct Every {
        every: u64,
        last: u64,
        ran: Vec<u64>,
        stop_at: Option<u64>,
    }

    impl Job<Counter> for Every {
        fn due(&self, step: u64) -> bool {
            due(self.every, step, self.last)
        }
        fn run<'a>(&'a mut self, steps: &'a mut Counter, record: &'a mut Value, sink: &'a mut dyn Sink) -> JobRun<'a> {
            Box::pin(async move {
                self.ran.push(steps.done());
                record["val"] = steps.done().into();
                sink.say(format!("evaluated at {}", steps.done()));
                Ok(match self.stop_at == Some(steps.done()) {
                    true => Flow::Stop("no better".into()),
                    false => Flow::Go,
                })
            })
        }
    }

    #[derive(Default)]
    struct Collect {
        kept: Vec<Value>,
        saved: Vec<u64>,
        said: Vec<String>,
        /// Asked to stop once this many steps ran (`None`: no one can ask).
        stop_after: Option<u64>,
        steps_seen: u64,
    }

    impl Sink for Collect {
        fn seconds(&self) -> f64 {
            1.5
        }
        fn progress(&mut self, step: u64, _record: Option<&Value>) -> Result<()> {
            self.steps_seen = step;
            Ok(())
        }
        fn say(&mut self, line: String) {
            self.said.push(line);
        }
        fn keep(&mut self, record: &Value) -> Result<()> {
            self.kept.push(record.clone());
            Ok(())
        }
        fn keeps_checkpoints(&self) -> bool {
            true
        }
        fn save(&mut self, step: u64, _checkpoint: &Checkpoint) -> Result<String> {
            self.saved.push(step);
            Ok(format!("step-{step}"))
        }
        fn stop_requested(&self) -> Option<bool> {
            self.stop_after.map(|after| self.steps_seen >= after)
        }
    }

    fn steps_of(records: &[Value]) -> Vec<u64> {
        records.iter().map(|r| r["step"].as_u64().unwrap()).collect()
    }

    #[test]
    fn a_job_is_due_at_each_multiple_of_its_cadence_and_at_the_last_step() {
        assert_eq!((1..=45).filter(|&s| due(10, s, 45)).collect::<Vec<_>>(), [10, 20, 30, 40, 45]);
        assert_eq!((1..=45).filter(|&s| due(0, s, 45)).collect::<Vec<_>>(), [45], "0: the last step only");
    }

    #[test]
    fn numbers_are_read_only_when_a_record_is_due_and_jobs_run_when_they_are() {
        let (mut steps, mut sink) = (Counter::default(), Collect::default());
        let mut validation = Every { every: 10, last: 25, ran: Vec::new(), stop_at: None };
        let cadence = Cadence { last: 25, log_every: Some(4), checkpoint_every: 12 };
        let mut engine = Engine::new(cadence, None);
        let outcome = block_on(engine.run(&mut steps, 25, &mut [&mut validation], &mut sink)).unwrap();
        // Logged every 4 steps, evaluated at 10, 20 and the last: read then, and only then.
        let expected = [4, 8, 10, 12, 16, 20, 24, 25];
        assert_eq!(steps.reads, expected);
        assert_eq!(steps_of(&sink.kept), expected);
        assert_eq!(validation.ran, [10, 20, 25]);
        assert_eq!(sink.kept.iter().filter(|r| r.get("val").is_some()).count(), 3);
        assert_eq!(sink.kept[0]["elapsed_s"], 1.5, "the sink's clock");
        assert_eq!(sink.saved, [12, 24, 25], "every checkpoint_every, and the last");
        assert_eq!(engine.last_checkpoint.as_deref(), Some("step-25"));
        assert!(!outcome.interrupted && outcome.stopped_early.is_none());
        assert_eq!(outcome.last_record.unwrap()["step"], 25);
    }

    #[test]
    fn a_run_driven_a_few_steps_at_a_time_sees_each_evaluation_once() {
        let (mut steps, mut sink) = (Counter::default(), Collect::default());
        let mut validation = Every { every: 10, last: 45, ran: Vec::new(), stop_at: None };
        let mut engine = Engine::new(Cadence { last: 45, log_every: None, checkpoint_every: 0 }, None);
        for until in (7..=45).step_by(7).chain([45]) {
            block_on(engine.run(&mut steps, until, &mut [&mut validation], &mut sink)).unwrap();
        }
        assert_eq!(validation.ran, [10, 20, 30, 40, 45]);
        assert_eq!(steps.reads, [10, 20, 30, 40, 45], "no records between evaluations");
    }

    #[test]
    fn a_job_ends_the_run_early_and_says_why() {
        let (mut steps, mut sink) = (Counter::default(), Collect::default());
        let mut dev = Every { every: 5, last: 100, ran: Vec::new(), stop_at: Some(15) };
        let cadence = Cadence { last: 100, log_every: None, checkpoint_every: 0 };
        let outcome = block_on(Engine::new(cadence, None).run(&mut steps, 100, &mut [&mut dev], &mut sink)).unwrap();
        assert_eq!(steps.step, 15);
        assert_eq!(outcome.stopped_early.as_deref(), Some("no better"));
        assert_eq!(sink.said.last().map(String::as_str), Some("no better"));
    }

    #[test]
    fn a_stop_asked_for_saves_a_checkpoint_and_ends_the_run() {
        let (mut steps, mut sink) = (Counter::default(), Collect { stop_after: Some(7), ..Default::default() });
        let cadence = Cadence { last: 100, log_every: Some(10), checkpoint_every: 50 };
        let outcome = block_on(Engine::new(cadence, None).run(&mut steps, 100, &mut [], &mut sink)).unwrap();
        assert!(outcome.interrupted);
        assert_eq!((steps.step, sink.saved.as_slice()), (7, [7].as_slice()));
    }

    #[test]
    fn a_non_finite_step_names_the_last_good_checkpoint() {
        let (mut steps, mut sink) = (Counter { bad_step: Some(8), ..Default::default() }, Collect::default());
        let cadence = Cadence { last: 100, log_every: Some(4), checkpoint_every: 4 };
        let mut engine = Engine::new(cadence, Some("resumed-dir".into()));
        let error = block_on(engine.run(&mut steps, 100, &mut [], &mut sink)).unwrap_err().to_string();
        assert!(error.contains("loss NaN (stopped; the last good checkpoint is step-4)"), "{error}");
        let mut fresh = Engine::new(cadence, Some("resumed-dir".into()));
        let (mut steps, mut sink) = (Counter { bad_step: Some(4), ..Default::default() }, Collect::default());
        let error = block_on(fresh.run(&mut steps, 100, &mut [], &mut sink)).unwrap_err().to_string();
        assert!(error.contains("the last good checkpoint is resumed-dir"), "{error}");
    }
}
