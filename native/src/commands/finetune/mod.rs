//! `hearth finetune`: a pretrained BERT or GPT-2 plus a classification head, or a T5 trained
//! text-to-text (the label as target text), on a GLUE-style file with its own schedule (linear
//! warmup and decay), evaluated on a dev split during training with early stopping, the best
//! model kept in HF format.

pub mod tuning;

use std::path::PathBuf;

use hearth_core::Error;
use hearth_core::eval::downstream::{Gold, Kind, Metric, Prediction, TaskSpec, Unit};
use hearth_core::eval::{ClassificationMetrics, majority_class};
use hearth_core::objectives::Rng;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::json;

use crate::report::Metrics;
use crate::storage::checkpoint::write_atomic;
use crate::storage::labeled::{self, Columns, Row};
use crate::storage::model::{ModelArgs, load};
use tuning::{Checks, Evaluation, Pretrained, Tuning, fine_tune};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Training examples (.tsv, .csv, .jsonl) with a text (and optional pair) column and a label column.
    #[arg(long)]
    train: PathBuf,
    /// Development examples for early stopping (default: 10% of --train held out).
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Test examples, scored once with the best model.
    #[arg(long)]
    test: Option<PathBuf>,
    /// The text column (default: the first of sentence, text, sentence1, premise, question1, question).
    #[arg(long)]
    text_column: Option<String>,
    /// The second text of a pair (default: sentence2, hypothesis, question2 or sentence, when the text
    /// column is one of a pair's names).
    #[arg(long)]
    pair_column: Option<String>,
    /// The label column (default: label, gold_label or labels).
    #[arg(long)]
    label_column: Option<String>,
    /// Where the fine-tuned model (HF folder), metrics.jsonl and eval_results.json go.
    #[arg(long, default_value = "runs/finetune")]
    out_dir: PathBuf,
    /// Replace the model and results an earlier fine-tune left in --out-dir.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    tuning: Tuning,
    /// Evaluate on dev every N steps (0: once per epoch).
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Stop after this many evaluations without improvement (0: never).
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// The dev metric that picks the best model: accuracy, f1 or mcc.
    #[arg(long, default_value = "accuracy")]
    metric: String,
    /// T5: the task prefix of each input (T5's own: "sst2", "mnli", …); the input reads
    /// "PREFIX sentence: …" (a pair: "PREFIX sentence1: … sentence2: …") and the target is the label.
    #[arg(long, default_value = "")]
    prefix: String,
}

pub fn run(args: Args) -> Result<(), Error> {
    const METRICS: [Metric; 3] = [Metric::Accuracy, Metric::F1, Metric::Matthews];
    let select = ["accuracy", "f1", "mcc"]
        .iter()
        .position(|m| *m == args.metric)
        .ok_or_else(|| Error::Config(format!("--metric {}: choose accuracy, f1 or mcc", args.metric)))?;
    let columns =
        Columns { text: args.text_column.clone(), pair: args.pair_column.clone(), label: args.label_column.clone() };
    let mut train_rows = labeled::read(&args.train, &columns)?;
    let mut rng = Rng::seed_from_u64(args.tuning.seed);
    let dev_rows = match &args.dev {
        Some(p) => labeled::read(p, &columns)?,
        None => {
            train_rows.shuffle(&mut rng);
            let n = (train_rows.len() / 10).max(1);
            if train_rows.len() < 2 {
                return Err(Error::Input("--train has a single example; give more, or a --dev file".into()));
            }
            train_rows.split_off(train_rows.len() - n)
        }
    };
    let test_rows = match &args.test {
        Some(p) => Some(labeled::read(p, &columns)?),
        None => None,
    };
    let labels = labeled::label_set(&train_rows);
    if labels.len() < 2 {
        return Err(Error::Input(format!(
            "--train has a single label ({}); classification needs two or more",
            labels[0]
        )));
    }
    let spec = TaskSpec { name: "finetune", kind: Kind::Classes, labels: labels.clone(), metrics: METRICS.to_vec() };
    let units = |rows: &[Row], what: &str| -> Result<Vec<Unit>, Error> {
        rows.iter().map(|row| unit(row, &labels, &args.prefix, what)).collect()
    };
    let train = units(&train_rows, "the training data")?;
    let dev = units(&dev_rows, "the dev data")?;
    let test = match &test_rows {
        Some(rows) => Some(units(rows, "the test data")?),
        None => None,
    };

    tuning::claim_out_dir(&args.out_dir, args.overwrite)?;
    let m = load(&args.model)?;
    let tuning = &args.tuning;
    tuning.refuse_inapplicable(&m.model, &m.config, &args.prefix)?;
    m.check_batch(tuning.batch_size.max(1), tuning.max_len, false, "fine-tuning")?;
    println!(
        "hearth finetune: {} from {} on {}: {} train / {} dev{} examples, labels {}, {} epochs × {} steps",
        m.config.model_type(),
        m.dir.display(),
        m.backend,
        train.len(),
        dev.len(),
        test.as_ref().map_or(String::new(), |t| format!(" / {} test", t.len())),
        labels.join(", "),
        tuning.epochs,
        train.len().div_ceil(tuning.batch_size.max(1)),
    );
    std::fs::create_dir_all(&args.out_dir).map_err(hearth_core::error::io("create", args.out_dir.display()))?;
    let mut metrics_log = Metrics::open(&args.out_dir.join("metrics.jsonl"), true)?;
    let mut on_eval = |e: &Evaluation<'_>| -> Result<(), Error> {
        let (acc, f1, mcc) = (e.dev[0], e.dev[1], e.dev[2]);
        metrics_log.log(&json!({
            "step": e.step, "epoch": e.epoch, "loss": e.train_loss,
            "dev": {"accuracy": acc, "f1": f1, "mcc": mcc},
        }))?;
        println!("step {:>5}  train loss {:.4}  dev accuracy {acc:.4}  f1 {f1:.4}  mcc {mcc:.4}", e.step, e.train_loss);
        Ok(())
    };
    let pre = Pretrained { model: &m.model, config: &m.config, tokenizer: &m.tokenizer, device: &m.device };
    let others: Vec<&[Unit]> = test.iter().map(Vec::as_slice).collect();
    let checks = Checks { every: args.eval_every, patience: args.patience, select };
    let tuned = fine_tune(&pre, &spec, &train, &dev, &others, tuning, checks, &mut on_eval)?;
    tuned.model.save(&args.out_dir, &m.config, &spec, &m.tokenizer)?;

    let k = labels.len();
    let gold =
        |set: &[Unit]| -> Vec<usize> { set.iter().map(|u| if let Gold::Class(c) = u.gold { c } else { 0 }).collect() };
    let majority = majority_class(&gold(&train), k);
    let baseline = |set: &[Unit]| {
        let l = gold(set);
        ClassificationMetrics::compute(&vec![majority; l.len()], &l, k)
    };
    let dev_metrics =
        ClassificationMetrics { accuracy: tuned.dev[0].1, f1: tuned.dev[1].1, mcc: tuned.dev[2].1, n: dev.len() };
    let dev_base = baseline(&dev);
    println!(
        "\n== summary ({} steps, {:.1}s; best dev {} at step {})",
        tuned.steps, tuned.seconds, args.metric, tuned.best_step
    );
    println!("{:<22} {:>9} {:>9} {:>9} {:>6}", "", "accuracy", "f1", "mcc", "n");
    let row = |name: &str, m: &ClassificationMetrics| {
        println!("{name:<22} {:>9.4} {:>9.4} {:>9.4} {:>6}", m.accuracy, m.f1, m.mcc, m.n)
    };
    row("dev", &dev_metrics);
    row("dev, majority class", &dev_base);
    let mut results = json!({
        "labels": labels, "best_step": tuned.best_step, "steps": tuned.steps, "metric": args.metric,
        "dev": dev_metrics, "dev_majority_baseline": dev_base, "majority_label": labels[majority],
    });
    if let (Some(test), Some(preds)) = (&test, tuned.predictions.first()) {
        let s = spec.score(test, preds, 0.0);
        let m = ClassificationMetrics { accuracy: s[0].1, f1: s[1].1, mcc: s[2].1, n: test.len() };
        let b = baseline(test);
        row("test", &m);
        row("test, majority class", &b);
        let invalid = preds.iter().filter(|p| matches!(p, Prediction::Invalid(_))).count();
        if invalid > 0 {
            println!("({invalid} test answers were none of the labels and count as wrong)");
        }
        results["test"] = serde_json::to_value(&m).expect("serialises");
        results["test_majority_baseline"] = serde_json::to_value(&b).expect("serialises");
    }
    let path = args.out_dir.join("eval_results.json");
    write_atomic(&path, serde_json::to_string_pretty(&results).expect("serialises").as_bytes())?;
    println!(
        "model {} (HF {}{}) results {}",
        args.out_dir.display(),
        tuned.model.architecture(),
        if matches!(m.config, hearth_core::models::ModelConfig::T5(_)) { "" } else { "; config.json has id2label" },
        path.display()
    );
    Ok(())
}

/// A labelled row as a unit: the classifier reads the text (and pair), T5 reads
/// `PREFIX sentence: …` (or `sentence1: … sentence2: …`) and writes the label.
fn unit((text, pair, label): &Row, labels: &[String], prefix: &str, what: &str) -> Result<Unit, Error> {
    let class = labels.iter().position(|l| l == label).ok_or_else(|| {
        Error::Input(format!(
            "{what} has the label \"{label}\", which --train never uses (labels: {})",
            labels.join(", ")
        ))
    })?;
    let fields = match pair {
        Some(p) => format!("sentence1: {text} sentence2: {p}"),
        None => format!("sentence: {text}"),
    };
    let t5_input = if prefix.is_empty() { fields } else { format!("{prefix} {fields}") };
    Ok(Unit {
        rows: vec![(text.clone(), pair.clone())],
        t5_input,
        gold: Gold::Class(class),
        group: 0,
        candidates: vec![],
    })
}
