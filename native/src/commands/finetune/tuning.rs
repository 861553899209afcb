//! The fine-tuning engine `hearth finetune` and `hearth eval glue` share: a pretrained checkpoint
//! becomes a [`Tunable`] (BERT or GPT-2 with a head, or T5 text-to-text), trained on a task's
//! units with AdamW and a linear schedule, evaluated on dev every so often with early stopping;
//! the best (or last) model answers every evaluation set.

use std::time::Instant;

use burn::tensor::Device;
use hearth_core::Error;
use hearth_core::eval::argmax;
use hearth_core::eval::downstream::{Gold, Kind, Metric, Prediction, TaskSpec, Unit, mean_score};
use hearth_core::finetune::{
    Encoded, FinetuneConfig, Finetuner, Head, InputFormat, Label, LabeledText, Seq2Seq, Text2TextFormat,
    classifier_config_json, greedy_decode, head_loss, scores, seq2seq_loss,
};
use hearth_core::models::{LanguageModel, Model, ModelConfig, SequenceClassifier};
use hearth_core::objectives::Rng;
use hearth_core::readback::block_on;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::engine::{Cadence, Flow, JobRun, due};
use hearth_core::train::{Engine, Job, Sink, Steps};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::storage::checkpoint::write_atomic;

/// The optimisation settings of one fine-tuning run (`hearth finetune`'s and the suites' flags).
#[derive(clap::Args, Clone, Debug)]
pub struct Tuning {
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Share of the steps spent warming up (then linear decay to 0).
    #[arg(long, default_value_t = 0.1)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Clip the gradients' global norm to this (0: never).
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f64,
    /// Tokens per example (longer ones are truncated, the longer text of a pair first).
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    /// T5: tokens of the target text (decoding stops there too; ReCoRD's answers are entity names)
    /// [default: 16].
    #[arg(long)]
    pub max_target_len: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Tuning {
    /// The target length of a text-to-text fine-tune.
    pub fn max_target(&self) -> usize {
        self.max_target_len.unwrap_or(16)
    }

    /// Refuses the text-to-text settings (`--max-target-len`, a task `prefix`) for a model that is
    /// fine-tuned with a classification head, before anything is written.
    pub fn refuse_inapplicable(&self, model: &Model, config: &ModelConfig, prefix: &str) -> Result<(), Error> {
        if model.seq2seq_lm().is_some() {
            return Ok(());
        }
        let given = [("--max-target-len", self.max_target_len.is_some()), ("--prefix", !prefix.is_empty())];
        match given.iter().find(|(_, on)| *on) {
            Some((flag, _)) => Err(Error::Refused(format!(
                "{flag} does not apply: it shapes a text-to-text fine-tune (T5), and this {} is fine-tuned with a classification head",
                config.model_type()
            ))),
            None => Ok(()),
        }
    }
}

/// When a run looks at dev, and what it keeps.
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// Evaluate on dev every N steps (0: once per epoch); always after the last step.
    pub every: u64,
    /// Stop after this many evaluations without improvement (0: never, and the last model is kept).
    pub patience: usize,
    /// The index of the task metric that decides "improvement".
    pub select: usize,
}

/// The pretrained checkpoint a run starts from (a fresh copy per task).
pub struct Pretrained<'a> {
    pub model: &'a Model,
    pub config: &'a ModelConfig,
    pub tokenizer: &'a Tokenizer,
    pub device: &'a Device,
}

/// How units become model inputs: a classifier's layout and head, or an encoder-decoder's
/// text-to-text pairs.
enum Format {
    Classifier(InputFormat, Head),
    Text2Text(Text2TextFormat),
}

/// The model being fine-tuned: a pretrained model with a classification head, or an
/// encoder-decoder trained text-to-text.
enum Tunable {
    Classifier(Finetuner<SequenceClassifier>),
    Text2Text(Finetuner<Model>),
}

/// A fine-tuned model, ready to answer (dropout off).
pub enum Tuned {
    Classifier(SequenceClassifier),
    Text2Text(Model),
}

/// Units as the model reads them: a classifier's rows, or text-to-text pairs.
enum Encodings {
    Rows(Vec<Vec<Encoded>>),
    Pairs(Vec<Seq2Seq>),
}

/// What a run gives back.
pub struct FineTuned {
    pub steps: u64,
    pub best_step: u64,
    /// The selected model's dev metrics.
    pub dev: Vec<(Metric, f64)>,
    /// Its answers to each of the other evaluation sets.
    pub predictions: Vec<Vec<Prediction>>,
    pub model: Tuned,
    pub seconds: f64,
}

/// One evaluation during a run, for the caller to log.
pub struct Evaluation<'a> {
    pub step: u64,
    pub epoch: usize,
    pub train_loss: f64,
    /// The task's dev metrics, in the order of its `metrics`.
    pub dev: &'a [f64],
}

/// The classifier head a task of `kind` needs.
fn head(spec: &TaskSpec) -> Head {
    match spec.kind {
        Kind::Classes => Head::Classes(spec.labels.len()),
        Kind::Regression => Head::Regression,
        Kind::Choice(n) => Head::Choice(n),
        Kind::Candidates => Head::Classes(2),
    }
}

/// Fine-tunes `pre` on `train`, evaluating on `dev` as `checks` says, and answers `others` with the
/// kept model. `on_eval` sees each evaluation (a line, a log record).
pub fn fine_tune(
    pre: &Pretrained<'_>,
    spec: &TaskSpec,
    train: &[Unit],
    dev: &[Unit],
    others: &[&[Unit]],
    tuning: &Tuning,
    checks: Checks,
    on_eval: &mut dyn FnMut(&Evaluation<'_>) -> Result<(), Error>,
) -> Result<FineTuned, Error> {
    if train.is_empty() || dev.is_empty() {
        return Err(Error::Input(format!("{}: the training and dev sets need at least one example each", spec.name)));
    }
    let start = Instant::now();
    let format = match pre.model.seq2seq_lm() {
        Some(_) => {
            Format::Text2Text(Text2TextFormat::new(pre.config, pre.tokenizer, tuning.max_len, tuning.max_target())?)
        }
        None => Format::Classifier(InputFormat::new(pre.config, pre.tokenizer, tuning.max_len)?, head(spec)),
    };
    let train_enc = encode(&format, pre.tokenizer, spec, train)?;
    let dev_enc = encode(&format, pre.tokenizer, spec, dev)?;
    let steps_per_epoch = train.len().div_ceil(tuning.batch_size.max(1)) as u64;
    let total_steps = steps_per_epoch * tuning.epochs.max(1) as u64;
    let warmup_steps = (total_steps as f64 * tuning.warmup_ratio).round() as u64;
    let config = FinetuneConfig::linear(
        tuning.lr,
        warmup_steps,
        total_steps,
        tuning.weight_decay,
        tuning.grad_clip,
        tuning.seed,
    );
    pre.device.seed(tuning.seed); // the new head's weights
    let tunable = match &format {
        Format::Text2Text(_) => Tunable::Text2Text(Finetuner::new(pre.model.clone(), config, pre.device)),
        Format::Classifier(_, head) => {
            let classifier = pre.config.classifier(pre.model.clone(), head.num_outputs(), pre.device)?;
            Tunable::Classifier(Finetuner::new(classifier, config, pre.device))
        }
    };
    let eval_every = if checks.every == 0 { steps_per_epoch } else { checks.every };
    let mut steps = FineTuning {
        tunable,
        format: &format,
        data: &train_enc,
        batch_size: tuning.batch_size.max(1),
        rng: Rng::seed_from_u64(tuning.seed ^ 0xF1E7),
        order: Vec::new(), // none yet: the first step starts the first epoch
        next: 0,
        epoch: 0,
        step: 0,
        last_loss: f64::NAN,
        loss_sum: (0.0, 0),
    };
    let mut dev_job = DevEvaluation {
        every: eval_every,
        last_step: total_steps,
        checks,
        spec,
        dev,
        dev_enc: &dev_enc,
        tokenizer: pre.tokenizer,
        device: pre.device,
        fallback: mean_score(train), // stands in for an unreadable T5 score
        best: None,
        since_best: 0,
    };
    let mut sink = TuneSink { bar: crate::report::steps_bar(total_steps), name: spec.name, start, on_eval };
    let cadence = Cadence { last: total_steps, log_every: Some(1), checkpoint_every: 0 };
    block_on(Engine::new(cadence, None).run(&mut steps, total_steps, &mut [&mut dev_job], &mut sink))?;
    sink.bar.finish_and_clear();
    let step = steps.step;
    let (_, best_step, dev_metrics, model) = dev_job.best.ok_or_else(|| Error::Input("no training step ran".into()))?;
    let predictions = others
        .iter()
        .map(|units| {
            model.predict(
                &format,
                spec,
                units,
                &encode(&format, pre.tokenizer, spec, units)?,
                pre.tokenizer,
                pre.device,
            )
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(FineTuned {
        steps: step,
        best_step,
        dev: dev_metrics,
        predictions,
        model,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A fine-tune as core's engine steps it: the task's units in shuffled batches, epoch after epoch.
struct FineTuning<'a> {
    tunable: Tunable,
    format: &'a Format,
    data: &'a Encodings,
    batch_size: usize,
    rng: Rng,
    /// This epoch's order of the units, and where the next batch starts in it.
    order: Vec<usize>,
    next: usize,
    /// The current epoch (1-based) and the steps taken.
    epoch: usize,
    step: u64,
    last_loss: f64,
    /// The training loss summed since the last dev evaluation, and its steps.
    loss_sum: (f64, usize),
}

impl FineTuning<'_> {
    fn units(&self) -> usize {
        match self.data {
            Encodings::Rows(rows) => rows.len(),
            Encodings::Pairs(pairs) => pairs.len(),
        }
    }

    /// The mean training loss since the last call.
    fn take_mean_loss(&mut self) -> f64 {
        let (sum, n) = std::mem::take(&mut self.loss_sum);
        sum / n.max(1) as f64
    }
}

impl Steps for FineTuning<'_> {
    fn done(&self) -> u64 {
        self.step
    }

    async fn advance(&mut self) -> Result<(), Error> {
        if self.next >= self.order.len() {
            // A new epoch: the units in a new order.
            self.order = (0..self.units()).collect();
            self.order.shuffle(&mut self.rng);
            (self.next, self.epoch) = (0, self.epoch + 1);
        }
        let end = (self.next + self.batch_size).min(self.order.len());
        let loss = self.tunable.step(self.format, self.data, &self.order[self.next..end])?;
        self.next = end;
        self.step += 1;
        self.last_loss = loss;
        self.loss_sum = (self.loss_sum.0 + loss, self.loss_sum.1 + 1);
        Ok(())
    }

    /// The step, its epoch and its loss (read back within the step already: host values).
    async fn record(&mut self, _seconds: f64) -> Result<serde_json::Value, Error> {
        Ok(serde_json::json!({"step": self.step, "epoch": self.epoch, "loss": self.last_loss}))
    }
}

/// The dev evaluation, every `every` steps and at the last, keeping the best model, with early
/// stopping after `patience` evaluations without improvement.
struct DevEvaluation<'a> {
    every: u64,
    last_step: u64,
    checks: Checks,
    spec: &'a TaskSpec,
    dev: &'a [Unit],
    dev_enc: &'a Encodings,
    tokenizer: &'a Tokenizer,
    device: &'a Device,
    fallback: f64,
    /// The selected model: its score, step, dev metrics.
    best: Option<(f64, u64, Vec<(Metric, f64)>, Tuned)>,
    since_best: usize,
}

impl<'f> Job<FineTuning<'f>> for DevEvaluation<'_> {
    fn due(&self, step: u64) -> bool {
        due(self.every, step, self.last_step)
    }

    fn run<'a>(
        &'a mut self,
        steps: &'a mut FineTuning<'f>,
        record: &'a mut serde_json::Value,
        _sink: &'a mut dyn Sink,
    ) -> JobRun<'a> {
        Box::pin(async move {
            let model = steps.tunable.tuned();
            let preds = model.predict(steps.format, self.spec, self.dev, self.dev_enc, self.tokenizer, self.device)?;
            let metrics = self.spec.score(self.dev, &preds, self.fallback);
            record["loss"] = steps.take_mean_loss().into(); // the mean since the last evaluation
            record["dev"] = metrics.iter().map(|(_, v)| *v).collect::<Vec<f64>>().into();
            let score = metrics[self.checks.select].1;
            let better = self.best.as_ref().is_none_or(|b| score > b.0);
            if better || self.checks.patience == 0 {
                self.best = Some((score, steps.step, metrics, model));
                self.since_best = 0;
                return Ok(Flow::Go);
            }
            self.since_best += 1;
            Ok(match self.since_best >= self.checks.patience {
                true => Flow::Stop(format!(
                    "early stop: no better dev {} in {} evaluations",
                    self.spec.metrics[self.checks.select].name(),
                    self.since_best
                )),
                false => Flow::Go,
            })
        })
    }
}

/// A fine-tune's sink: its progress bar, and each dev evaluation handed to the caller's `on_eval`
/// (a line, a log record).
struct TuneSink<'a> {
    bar: indicatif::ProgressBar,
    name: &'a str,
    start: Instant,
    on_eval: &'a mut dyn FnMut(&Evaluation<'_>) -> Result<(), Error>,
}

impl Sink for TuneSink<'_> {
    fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn progress(&mut self, step: u64, record: Option<&serde_json::Value>) -> Result<(), Error> {
        self.bar.set_position(step);
        if let Some(r) = record {
            let loss = r["loss"].as_f64().unwrap_or(f64::NAN);
            self.bar.set_message(format!("{} epoch {}  loss {loss:.3}", self.name, r["epoch"]));
        }
        Ok(())
    }

    fn say(&mut self, line: String) {
        self.bar.suspend(|| println!("{line}"));
    }

    /// Only evaluations go to the caller (every step's record passes by for the progress bar).
    fn keep(&mut self, record: &serde_json::Value) -> Result<(), Error> {
        let Some(dev) = record.get("dev").and_then(|d| d.as_array()) else { return Ok(()) };
        let dev: Vec<f64> = dev.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
        let evaluation = Evaluation {
            step: record["step"].as_u64().unwrap_or(0),
            epoch: record["epoch"].as_u64().unwrap_or(0) as usize,
            train_loss: record["loss"].as_f64().unwrap_or(f64::NAN),
            dev: &dev,
        };
        let on_eval = &mut self.on_eval;
        self.bar.suspend(|| on_eval(&evaluation))
    }
}

/// Each unit as the model reads it.
fn encode(format: &Format, tokenizer: &Tokenizer, spec: &TaskSpec, units: &[Unit]) -> Result<Encodings, Error> {
    match format {
        Format::Text2Text(f) => Ok(Encodings::Pairs(
            units.iter().map(|u| f.encode(tokenizer, &u.t5_input, &spec.t5_target(u))).collect::<Result<_, _>>()?,
        )),
        Format::Classifier(f, _) => Ok(Encodings::Rows(
            units
                .iter()
                .map(|u| {
                    u.rows
                        .iter()
                        .enumerate()
                        .map(|(i, (text, pair))| {
                            let label = match &u.gold {
                                Gold::Score(s) => Label::Score(*s),
                                Gold::Class(c) => Label::Class(*c),
                                Gold::Answers(golds) => Label::Class(golds.contains(&u.candidates[i]) as usize),
                            };
                            f.encode(tokenizer, &LabeledText { text: text.clone(), pair: pair.clone(), label })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<_, _>>()?,
        )),
    }
}

impl Tunable {
    /// One optimizer step on the units at `batch`.
    fn step(&mut self, format: &Format, data: &Encodings, batch: &[usize]) -> Result<f64, Error> {
        match (self, format, data) {
            (Tunable::Classifier(t), Format::Classifier(f, head), Encodings::Rows(rows)) => {
                let examples: Vec<&Encoded> = batch.iter().flat_map(|&i| &rows[i]).collect();
                t.step(|model, device| head_loss(model, *head, &examples, f.pad, device))
            }
            (Tunable::Text2Text(t), Format::Text2Text(f), Encodings::Pairs(pairs)) => {
                let examples: Vec<&Seq2Seq> = batch.iter().map(|&i| &pairs[i]).collect();
                t.step(|model, device| seq2seq_loss(model, &examples, f, device))
            }
            _ => unreachable!("the encodings follow the format, the model the format"),
        }
    }

    fn tuned(&self) -> Tuned {
        match self {
            Tunable::Classifier(t) => Tuned::Classifier(t.inference().0),
            Tunable::Text2Text(t) => Tuned::Text2Text(t.inference().0),
        }
    }
}

impl Tuned {
    /// The model's answer to each unit.
    fn predict(
        &self,
        format: &Format,
        spec: &TaskSpec,
        units: &[Unit],
        data: &Encodings,
        tokenizer: &Tokenizer,
        device: &Device,
    ) -> Result<Vec<Prediction>, Error> {
        let (model, pad, rows) = match (self, format, data) {
            (Tuned::Classifier(m), Format::Classifier(f, _), Encodings::Rows(rows)) => (m, f.pad, rows),
            (Tuned::Text2Text(model), Format::Text2Text(f), Encodings::Pairs(pairs)) => {
                let model = model.seq2seq_lm().expect("a text-to-text model is an encoder-decoder");
                let sources: Vec<&[u32]> = pairs.iter().map(|p| p.input.as_slice()).collect();
                let outputs = greedy_decode(model, &sources, f, 64, device)?;
                return outputs.iter().map(|ids| Ok(spec.read_t5(&tokenizer.decode(ids)?))).collect();
            }
            _ => unreachable!("the encodings follow the format, the model the format"),
        };
        let flat: Vec<&Encoded> = rows.iter().flatten().collect();
        let s = scores(model, &flat, pad, 64, device)?;
        let mut next = s.into_iter();
        Ok(units
            .iter()
            .map(|u| {
                let unit_scores: Vec<Vec<f32>> = next.by_ref().take(u.rows.len()).collect();
                match spec.kind {
                    Kind::Classes => Prediction::Class(argmax(&unit_scores[0])),
                    Kind::Regression => Prediction::Score(unit_scores[0][0] as f64),
                    Kind::Choice(_) => Prediction::Class(argmax(&unit_scores.iter().map(|s| s[0]).collect::<Vec<_>>())),
                    Kind::Candidates => {
                        let margin: Vec<f32> = unit_scores.iter().map(|s| s[1] - s[0]).collect();
                        Prediction::Text(u.candidates[argmax(&margin)].clone())
                    }
                }
            })
            .collect())
    }

    /// The model as an HF folder: config.json, model.safetensors, tokenizer.json.
    pub fn save(
        &self,
        dir: &std::path::Path,
        base: &ModelConfig,
        spec: &TaskSpec,
        tokenizer: &Tokenizer,
    ) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(hearth_core::error::io("create", dir.display()))?;
        let (weights, config) = match self {
            Tuned::Classifier(m) => {
                // A decoder's classifier finds each row's last token by the pad id.
                let pad = InputFormat::new(base, tokenizer, 1)?.pad;
                (m.to_safetensors()?, classifier_config_json(base, m.architecture(), head(spec), &spec.labels, pad))
            }
            Tuned::Text2Text(m) => (m.to_safetensors()?, base.to_json()),
        };
        write_atomic(&dir.join("model.safetensors"), &weights)?;
        write_atomic(&dir.join("config.json"), config.as_bytes())?;
        write_atomic(&dir.join("tokenizer.json"), tokenizer.to_json()?.as_bytes())
    }

    pub fn architecture(&self) -> &'static str {
        match self {
            Tuned::Classifier(m) => m.architecture(),
            Tuned::Text2Text(_) => "T5ForConditionalGeneration",
        }
    }
}

/// A fine-tuned model's folder is never overwritten by accident: one that holds an earlier
/// model or results is refused (before any work) unless `overwrite`. A fine-tune that stopped
/// before saving its model (a non-finite loss, an interrupt) leaves only its metrics: the next
/// command into the folder replaces them, and says so.
pub fn claim_out_dir(dir: &std::path::Path, overwrite: bool) -> Result<(), Error> {
    let earlier: Vec<&str> = ["model.safetensors", "config.json", "metrics.jsonl", "eval_results.json"]
        .into_iter()
        .filter(|f| dir.join(f).exists())
        .collect();
    if earlier == ["metrics.jsonl"] {
        eprintln!(
            "note: {} holds the metrics of a fine-tune that saved no model; this one replaces them",
            dir.display()
        );
        return Ok(());
    }
    if !earlier.is_empty() && !overwrite {
        return Err(Error::Refused(format!(
            "{} holds an earlier fine-tuned model ({}); give another folder, or --overwrite to replace it",
            dir.display(),
            earlier.join(", ")
        )));
    }
    Ok(())
}
