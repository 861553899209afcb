//! `hearth finetune`: a pretrained BERT or GPT-2 plus a classification head, trained on a
//! GLUE-style file with its own schedule (linear warmup and decay), evaluated on a dev split
//! during training with early stopping, the best model kept in HF format.

use std::path::PathBuf;
use std::time::Instant;

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::eval::{ClassificationMetrics, majority_class};
use hearth_core::finetune::{
    AnyClassifier, Classifier, Encoded, FinetuneConfig, Finetuner, InputFormat, LabeledText, classifier_config_json,
    predict, to_safetensors,
};
use hearth_core::models::ModelConfig;
use hearth_core::objectives::Rng;
use hearth_core::tokenizer::Tokenizer;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::json;

use crate::checkpoint::write_atomic;
use crate::infer::{ModelArgs, load};
use crate::labeled_data::{self, Columns, Row};
use crate::report::Metrics;

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
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Share of the steps spent warming up (then linear decay to 0).
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f64,
    /// Tokens per example (longer ones are truncated, the longer text of a pair first).
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// Evaluate on dev every N steps (0: once per epoch).
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Stop after this many evaluations without improvement (0: never).
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// The dev metric that picks the best model: accuracy, f1 or mcc.
    #[arg(long, default_value = "accuracy")]
    metric: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn run(args: Args) -> Result<(), Error> {
    if !["accuracy", "f1", "mcc"].contains(&args.metric.as_str()) {
        return Err(Error::Config(format!("--metric {}: choose accuracy, f1 or mcc", args.metric)));
    }
    let columns =
        Columns { text: args.text_column.clone(), pair: args.pair_column.clone(), label: args.label_column.clone() };
    let mut train_rows = labeled_data::read(&args.train, &columns)?;
    let mut rng = Rng::seed_from_u64(args.seed);
    let dev_rows = match &args.dev {
        Some(p) => labeled_data::read(p, &columns)?,
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
        Some(p) => Some(labeled_data::read(p, &columns)?),
        None => None,
    };
    let labels = labeled_data::label_set(&train_rows);
    if labels.len() < 2 {
        return Err(Error::Input(format!(
            "--train has a single label ({}); classification needs two or more",
            labels[0]
        )));
    }

    let m = load(&args.model)?;
    let format = InputFormat::new(&m.config, &m.tokenizer, args.max_len)?;
    m.check_batch(args.batch_size.max(1), args.max_len, false, "fine-tuning")?;
    let encode = |rows: &[Row], what: &str| -> Result<Vec<Encoded>, Error> {
        rows.iter()
            .map(|(text, pair, label)| {
                let label = labels.iter().position(|l| l == label).ok_or_else(|| {
                    Error::Input(format!(
                        "{what} has the label \"{label}\", which --train never uses (labels: {})",
                        labels.join(", ")
                    ))
                })?;
                format.encode(&m.tokenizer, &LabeledText { text: text.clone(), pair: pair.clone(), label })
            })
            .collect()
    };
    let train = encode(&train_rows, "the training data")?;
    let dev = encode(&dev_rows, "the dev data")?;
    let test = match &test_rows {
        Some(rows) => Some(encode(rows, "the test data")?),
        None => None,
    };

    let steps_per_epoch = train.len().div_ceil(args.batch_size.max(1)) as u64;
    let total_steps = steps_per_epoch * args.epochs as u64;
    let config = FinetuneConfig {
        lr: args.lr,
        weight_decay: args.weight_decay,
        warmup_steps: (total_steps as f64 * args.warmup_ratio).round() as u64,
        total_steps,
        grad_clip: args.grad_clip,
        seed: args.seed,
    };
    println!(
        "hearth finetune: {} from {} on {}: {} train / {} dev{} examples, labels {}, {} epochs × {steps_per_epoch} steps",
        m.config.model_type(),
        m.dir.display(),
        m.backend,
        train.len(),
        dev.len(),
        test.as_ref().map_or(String::new(), |t| format!(" / {} test", t.len())),
        labels.join(", "),
        args.epochs
    );
    m.device.seed(args.seed); // the new head's weights
    let ctx = Context {
        args,
        labels,
        format,
        train,
        dev,
        test,
        config,
        tokenizer: m.tokenizer.clone(),
        base: m.config.clone(),
    };
    match AnyClassifier::from_pretrained(m.model, &m.config, ctx.labels.len(), &m.device)? {
        AnyClassifier::Bert(c) => ctx.run(c, &m.device),
        AnyClassifier::Gpt2(c) => ctx.run(c, &m.device),
    }
}

struct Context {
    args: Args,
    labels: Vec<String>,
    format: InputFormat,
    train: Vec<Encoded>,
    dev: Vec<Encoded>,
    test: Option<Vec<Encoded>>,
    config: FinetuneConfig,
    tokenizer: Tokenizer,
    base: ModelConfig,
}

impl Context {
    fn run<C: Classifier>(self, model: C, device: &burn::tensor::Device) -> Result<(), Error> {
        let Context { args, labels, format, train, dev, test, config, tokenizer, base } = self;
        let k = labels.len();
        std::fs::create_dir_all(&args.out_dir).map_err(io("create", args.out_dir.display()))?;
        let mut metrics_log = Metrics::open(&args.out_dir.join("metrics.jsonl"), true)?;
        let mut tuner = Finetuner::new(model, config.clone(), device);
        let eval_every =
            if args.eval_every == 0 { train.len().div_ceil(args.batch_size.max(1)) as u64 } else { args.eval_every };
        let dev_labels: Vec<usize> = dev.iter().map(|e| e.label).collect();
        let bar = crate::report::steps_bar(config.total_steps);
        let start = Instant::now();
        let mut rng = Rng::seed_from_u64(args.seed ^ 0xF1E7);
        let mut best: Option<(f64, u64, ClassificationMetrics, C)> = None;
        let mut since_best = 0;
        let mut loss_sum = (0.0, 0usize);
        'epochs: for epoch in 0..args.epochs {
            let mut order: Vec<usize> = (0..train.len()).collect();
            order.shuffle(&mut rng);
            for chunk in order.chunks(args.batch_size.max(1)) {
                let batch: Vec<&Encoded> = chunk.iter().map(|&i| &train[i]).collect();
                let loss = tuner.step(&batch, format.pad)?;
                loss_sum = (loss_sum.0 + loss, loss_sum.1 + 1);
                bar.set_position(tuner.step);
                bar.set_message(format!("epoch {}  loss {loss:.3}", epoch + 1));
                if tuner.step % eval_every == 0 || tuner.step == config.total_steps {
                    let preds = tuner.predict(&dev, format.pad, 64)?;
                    let m = ClassificationMetrics::compute(&preds, &dev_labels, k);
                    let score = m.get(&args.metric).expect("metric checked");
                    let train_loss = loss_sum.0 / loss_sum.1.max(1) as f64;
                    loss_sum = (0.0, 0);
                    metrics_log.log(json!({
                        "step": tuner.step, "epoch": epoch + 1, "loss": train_loss,
                        "dev": {"accuracy": m.accuracy, "f1": m.f1, "mcc": m.mcc},
                    }))?;
                    let line = format!(
                        "step {:>5}  train loss {train_loss:.4}  dev accuracy {:.4}  f1 {:.4}  mcc {:.4}",
                        tuner.step, m.accuracy, m.f1, m.mcc
                    );
                    if bar.is_hidden() {
                        println!("{line}")
                    } else {
                        bar.println(line)
                    }
                    if best.as_ref().is_none_or(|b| score > b.0) {
                        let model = tuner.model.valid();
                        save(&args.out_dir, &model, &base, &labels, format.pad, &tokenizer)?;
                        best = Some((score, tuner.step, m, model));
                        since_best = 0;
                    } else {
                        since_best += 1;
                        if args.patience > 0 && since_best >= args.patience {
                            bar.println(format!(
                                "early stop: no better dev {} in {since_best} evaluations",
                                args.metric
                            ));
                            break 'epochs;
                        }
                    }
                }
            }
        }
        bar.finish_and_clear();
        let (_, best_step, dev_metrics, model) = best.ok_or_else(|| Error::Input("no training step ran".into()))?;
        let majority = majority_class(&train.iter().map(|e| e.label).collect::<Vec<_>>(), k);
        let baseline = |set: &[Encoded]| {
            let l: Vec<usize> = set.iter().map(|e| e.label).collect();
            ClassificationMetrics::compute(&vec![majority; l.len()], &l, k)
        };
        let dev_base = baseline(&dev);
        println!(
            "\n== summary ({} steps, {:.1}s; best dev {} at step {best_step})",
            tuner.step,
            start.elapsed().as_secs_f64(),
            args.metric
        );
        println!("{:<22} {:>9} {:>9} {:>9} {:>6}", "", "accuracy", "f1", "mcc", "n");
        let row = |name: &str, m: &ClassificationMetrics| {
            println!("{name:<22} {:>9.4} {:>9.4} {:>9.4} {:>6}", m.accuracy, m.f1, m.mcc, m.n)
        };
        row("dev", &dev_metrics);
        row("dev, majority class", &dev_base);
        let mut results = json!({
            "labels": labels, "best_step": best_step, "steps": tuner.step, "metric": args.metric,
            "dev": dev_metrics, "dev_majority_baseline": dev_base, "majority_label": labels[majority],
        });
        if let Some(test) = &test {
            let preds = predict(&model, test, format.pad, 64, device)?;
            let l: Vec<usize> = test.iter().map(|e| e.label).collect();
            let m = ClassificationMetrics::compute(&preds, &l, k);
            let b = baseline(test);
            row("test", &m);
            row("test, majority class", &b);
            results["test"] = serde_json::to_value(&m).expect("serialises");
            results["test_majority_baseline"] = serde_json::to_value(&b).expect("serialises");
        }
        let path = args.out_dir.join("eval_results.json");
        write_atomic(&path, serde_json::to_string_pretty(&results).expect("serialises").as_bytes())?;
        println!(
            "model {} (HF {}; config.json has id2label)  results {}",
            args.out_dir.display(),
            model.architecture(),
            path.display()
        );
        Ok(())
    }
}

/// The classifier as an HF folder: config.json (with `id2label`), model.safetensors, tokenizer.json.
fn save<C: Classifier>(
    dir: &std::path::Path,
    model: &C,
    base: &ModelConfig,
    labels: &[String],
    pad: u32,
    tokenizer: &Tokenizer,
) -> Result<(), Error> {
    write_atomic(&dir.join("model.safetensors"), &to_safetensors(model)?)?;
    write_atomic(&dir.join("config.json"), classifier_config_json(base, model.architecture(), labels, pad).as_bytes())?;
    write_atomic(&dir.join("tokenizer.json"), tokenizer.to_json()?.as_bytes())
}
