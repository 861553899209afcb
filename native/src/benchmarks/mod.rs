//! `hearth eval glue DIR` and `hearth eval superglue DIR`: every task present in the folder
//! (official layouts), fine-tuned from one checkpoint and scored on its dev split with the task's
//! official metrics; a table, the average, and JSON.

pub mod glue;
pub mod superglue;
mod tsv;

use std::path::PathBuf;

use hearth_core::Error;
use hearth_core::eval::downstream::{Metric, TaskSpec, Unit};
use serde_json::json;

use crate::finetune::engine::{Pretrained, Tuning, fit};
use crate::infer::{ModelArgs, load};

/// A task read from its files: what it is, its training units, and its evaluation sets (the
/// prefix their metrics get: MNLI's `m_` and `mm_`).
pub struct LoadedTask {
    pub spec: TaskSpec,
    pub train: Vec<Unit>,
    pub evals: Vec<(&'static str, Vec<Unit>)>,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Suite {
    Glue,
    Superglue,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The benchmark's folder as downloaded (GLUE: CoLA/, SST-2/, … with train.tsv and dev.tsv;
    /// SuperGLUE: BoolQ/, CB/, … with train.jsonl and val.jsonl).
    dir: PathBuf,
    /// Only these tasks (comma-separated, e.g. `cola,sst2`; default: every task present).
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Training examples per task (0: all), for a quick look.
    #[arg(long, default_value_t = 0)]
    limit: usize,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// T5: target tokens (ReCoRD's answers are entity names).
    #[arg(long, default_value_t = 16)]
    max_target_len: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One task's outcome.
struct Scored {
    task: &'static str,
    metrics: Vec<(String, f64)>,
    train: usize,
    dev: usize,
    seconds: f64,
}

impl Scored {
    /// The task's score: the mean of its metrics (GLUE's rule for tasks with two).
    fn score(&self) -> f64 {
        self.metrics.iter().map(|m| m.1).sum::<f64>() / self.metrics.len().max(1) as f64
    }
}

pub fn run(suite: Suite, args: Args) -> Result<(), Error> {
    let (name, found) = match suite {
        Suite::Glue => ("GLUE", glue::load(&args.dir)),
        Suite::Superglue => ("SuperGLUE", superglue::load(&args.dir)),
    };
    if let Some(t) = args.tasks.iter().find(|t| !found.iter().any(|(n, _)| n == t)) {
        let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
        return Err(Error::Config(format!("--tasks {t}: {name} has {}", names.join(", "))));
    }
    let mut tasks = Vec::new();
    let mut skipped = Vec::new();
    for (task, loaded) in found {
        if !args.tasks.is_empty() && !args.tasks.iter().any(|t| t == task) {
            continue;
        }
        match loaded {
            Ok(t) => tasks.push(t),
            Err(why) if why.starts_with("no ") && why.ends_with(" folder") => {
                println!("{task}: skipped ({why} in {})", args.dir.display());
                skipped.push(task);
            }
            Err(e) => return Err(Error::Input(format!("{task}: {e}"))),
        }
    }
    if tasks.is_empty() {
        return Err(Error::Input(format!(
            "{} holds none of {name}'s task folders; download the benchmark and give its folder",
            args.dir.display()
        )));
    }
    let m = load(&args.model)?;
    m.check_batch(args.batch_size.max(1), args.max_len, false, "fine-tuning")?;
    let how =
        if matches!(m.config, hearth_core::models::ModelConfig::T5(_)) { "text-to-text" } else { "with a task head" };
    println!(
        "hearth eval {}: {} from {} ({:.2}M parameters) on {}, fine-tuned {how} per task: {} epochs, batch {}, lr {}",
        name.to_lowercase(),
        m.config.model_type(),
        m.dir.display(),
        m.model.num_params() as f64 / 1e6,
        m.backend,
        args.epochs,
        args.batch_size,
        args.lr
    );
    let tuning = Tuning {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        warmup_ratio: args.warmup_ratio,
        weight_decay: args.weight_decay,
        grad_clip: 1.0,
        max_len: args.max_len,
        max_target: args.max_target_len,
        eval_every: u64::MAX, // dev once, after the last step: the final model is reported
        patience: 0,
        seed: args.seed,
    };
    let pre = Pretrained { model: &m.model, config: &m.config, tokenizer: &m.tokenizer, device: &m.device };
    let mut results = Vec::new();
    for mut task in tasks {
        if args.limit > 0 {
            task.train.truncate(args.limit);
        }
        let (first, rest) = task.evals.split_first().expect("a task has an evaluation set");
        let others: Vec<&[Unit]> = rest.iter().map(|e| e.1.as_slice()).collect();
        println!("{}: {} train / {} dev examples", task.spec.name, task.train.len(), first.1.len());
        let fitted = fit(&pre, &task.spec, &task.train, &first.1, &others, &tuning, 0, &mut |_| Ok(()))?;
        let named = |prefix: &str, values: &[(Metric, f64)]| -> Vec<(String, f64)> {
            values.iter().map(|(m, v)| (format!("{prefix}{}", m.name()), *v)).collect()
        };
        let mut metrics = named(first.0, &fitted.dev);
        for ((prefix, units), preds) in rest.iter().zip(&fitted.predictions) {
            metrics.extend(named(prefix, &task.spec.score(units, preds, 0.0)));
        }
        let scored = Scored {
            task: task.spec.name,
            metrics,
            train: task.train.len(),
            dev: first.1.len(),
            seconds: fitted.seconds,
        };
        let shown: Vec<String> = scored.metrics.iter().map(|(k, v)| format!("{k} {:.2}", v * 100.0)).collect();
        println!("{}: {}  ({} steps, {:.1}s)", scored.task, shown.join("  "), fitted.steps, fitted.seconds);
        results.push(scored);
    }
    let average = results.iter().map(Scored::score).sum::<f64>() / results.len() as f64;
    println!("\n== {name} (dev; ×100)");
    println!("{:<10} {:<30} {:>7} {:>8} {:>6} {:>8}", "task", "metrics", "score", "train", "dev", "seconds");
    for r in &results {
        let shown: Vec<String> = r.metrics.iter().map(|(k, v)| format!("{k} {:.1}", v * 100.0)).collect();
        println!(
            "{:<10} {:<30} {:>7.1} {:>8} {:>6} {:>8.1}",
            r.task,
            shown.join(" / "),
            r.score() * 100.0,
            r.train,
            r.dev,
            r.seconds
        );
    }
    println!(
        "{:<10} {:<30} {:>7.1}",
        "average",
        format!("{} of {} tasks", results.len(), results.len() + skipped.len()),
        average * 100.0
    );
    if let Some(path) = &args.json {
        let value = json!({
            "suite": name, "model": m.dir, "model_type": m.config.model_type(),
            "tasks": results.iter().map(|r| json!({
                "task": r.task, "metrics": r.metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "score": r.score(), "train": r.train, "dev": r.dev, "seconds": r.seconds,
            })).collect::<Vec<_>>(),
            "average": average, "skipped": skipped,
            "settings": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "max_len": args.max_len, "seed": args.seed, "limit": args.limit},
        });
        crate::checkpoint::write_atomic(
            path,
            serde_json::to_string_pretty(&value).expect("JSON serialises").as_bytes(),
        )?;
        println!("json {}", path.display());
    }
    Ok(())
}
