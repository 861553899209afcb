//! `hearth eval glue DIR` and `hearth eval superglue DIR`: every task present in the folder
//! (official layouts), fine-tuned from one checkpoint and scored on its dev split with the task's
//! official metrics; a table, the average, and JSON.

pub mod glue;
pub mod superglue;
mod tsv;

use std::path::{Path, PathBuf};

use hearth_core::Error;
use hearth_core::eval::downstream::{Metric, TaskSpec, Unit, mean_score};
use serde_json::json;

use crate::commands::finetune::tuning::{Checks, Pretrained, Tuning, fine_tune};
use crate::storage::model::{ModelArgs, load};

/// A task read from its files: what it is, its training units, and its evaluation sets (the
/// prefix their metrics get: MNLI's `m_` and `mm_`).
pub struct LoadedTask {
    pub spec: TaskSpec,
    pub train: Vec<Unit>,
    pub evals: Vec<(&'static str, Vec<Unit>)>,
}

/// A suite's task as found in the folder.
pub enum Found {
    Task(LoadedTask),
    /// Its folder (named) is not there: skipped.
    Absent(&'static str),
    Unreadable(Error),
}

impl Found {
    /// The task read from `dir/folder`, when that folder is there.
    fn read(dir: &Path, folder: &'static str, read: impl FnOnce(&Path) -> Result<LoadedTask, Error>) -> Found {
        let path = dir.join(folder);
        if !path.is_dir() {
            return Found::Absent(folder);
        }
        match read(&path) {
            Ok(task) => Found::Task(task),
            Err(e) => Found::Unreadable(e),
        }
    }

    #[cfg(test)]
    fn task(&self) -> &LoadedTask {
        match self {
            Found::Task(t) => t,
            Found::Absent(f) => panic!("no {f} folder"),
            Found::Unreadable(e) => panic!("{e}"),
        }
    }
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
    #[command(flatten)]
    tuning: Tuning,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Save each task's fine-tuned model here, in HF format (`DIR/cola/`, …).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Replace the models an earlier run saved in --save.
    #[arg(long)]
    overwrite: bool,
}

/// One task's outcome.
struct Scored {
    task: &'static str,
    metrics: Vec<(String, f64)>,
    /// The same metrics of the majority answer.
    majority: Vec<(String, f64)>,
    train: usize,
    dev: usize,
    seconds: f64,
}

impl Scored {
    /// The task's score: the mean of its metrics (GLUE's rule for tasks with two).
    fn score(&self) -> f64 {
        mean(&self.metrics)
    }
}

fn mean(metrics: &[(String, f64)]) -> f64 {
    metrics.iter().map(|m| m.1).sum::<f64>() / metrics.len().max(1) as f64
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
    for (task, found) in found {
        if !args.tasks.is_empty() && !args.tasks.iter().any(|t| t == task) {
            continue;
        }
        match found {
            Found::Task(t) => tasks.push(t),
            Found::Absent(folder) => {
                println!("{task}: skipped (no {folder}/ in {})", args.dir.display());
                skipped.push(task);
            }
            Found::Unreadable(e) => return Err(e),
        }
    }
    if tasks.is_empty() {
        return Err(Error::Input(format!(
            "{} holds none of {name}'s task folders; download the benchmark and give its folder",
            args.dir.display()
        )));
    }
    if let Some(dir) = &args.save {
        for t in &tasks {
            crate::commands::finetune::tuning::claim_out_dir(&dir.join(t.spec.name), args.overwrite)?;
        }
    }
    let m = load(&args.model)?;
    args.tuning.refuse_inapplicable(&m.model, &m.config, "")?;
    m.check_batch(args.tuning.batch_size.max(1), args.tuning.max_len, false, "fine-tuning")?;
    use hearth_core::models::LanguageModel;
    let how = if m.model.seq2seq_lm().is_some() { "text-to-text" } else { "with a task head" };
    println!(
        "hearth eval {}: {} from {} ({:.2}M parameters) on {}, fine-tuned {how} per task: {} epochs, batch {}, lr {}",
        name.to_lowercase(),
        m.config.model_type(),
        m.dir.display(),
        m.model.num_params() as f64 / 1e6,
        m.backend,
        args.tuning.epochs,
        args.tuning.batch_size,
        args.tuning.lr
    );
    let tuning = &args.tuning;
    // Dev once, after the last step: the final model is reported, as HF's run_glue.py does.
    let checks = Checks { every: u64::MAX, patience: 0, select: 0 };
    let pre = Pretrained { model: &m.model, config: &m.config, tokenizer: &m.tokenizer, device: &m.device };
    let mut results = Vec::new();
    for mut task in tasks {
        if args.limit > 0 {
            task.train.truncate(args.limit);
        }
        let (first, rest) = task.evals.split_first().expect("a task has an evaluation set");
        let others: Vec<&[Unit]> = rest.iter().map(|e| e.1.as_slice()).collect();
        println!("{}: {} train / {} dev examples", task.spec.name, task.train.len(), first.1.len());
        let tuned = fine_tune(&pre, &task.spec, &task.train, &first.1, &others, tuning, checks, &mut |_| Ok(()))?;
        let named = |prefix: &str, values: &[(Metric, f64)]| -> Vec<(String, f64)> {
            values.iter().map(|(m, v)| (format!("{prefix}{}", m.name()), *v)).collect()
        };
        // An unreadable T5 score stands at the mean training score, as on dev inside `fine_tune`.
        let fallback = mean_score(&task.train);
        let mut metrics = named(first.0, &tuned.dev);
        for ((prefix, units), preds) in rest.iter().zip(&tuned.predictions) {
            metrics.extend(named(prefix, &task.spec.score(units, preds, fallback)));
        }
        let mut majority = Vec::new();
        for (prefix, units) in &task.evals {
            majority.extend(named(prefix, &task.spec.score(units, &task.spec.majority(&task.train, units), fallback)));
        }
        if let Some(dir) = &args.save {
            tuned.model.save(&dir.join(task.spec.name), &m.config, &task.spec, &m.tokenizer)?;
        }
        let scored = Scored {
            task: task.spec.name,
            metrics,
            majority,
            train: task.train.len(),
            dev: first.1.len(),
            seconds: tuned.seconds,
        };
        let shown: Vec<String> = scored.metrics.iter().map(|(k, v)| format!("{k} {:.2}", v * 100.0)).collect();
        println!("{}: {}  ({} steps, {:.1}s)", scored.task, shown.join("  "), tuned.steps, tuned.seconds);
        results.push(scored);
    }
    let average = results.iter().map(Scored::score).sum::<f64>() / results.len() as f64;
    println!("\n== {name} (dev; ×100)");
    println!(
        "{:<10} {:<34} {:>7} {:>9} {:>7} {:>6} {:>8}",
        "task", "metrics", "score", "majority", "train", "dev", "seconds"
    );
    for r in &results {
        let shown: Vec<String> = r.metrics.iter().map(|(k, v)| format!("{k} {:.1}", v * 100.0)).collect();
        println!(
            "{:<10} {:<34} {:>7.1} {:>9.1} {:>7} {:>6} {:>8.1}",
            r.task,
            shown.join(" / "),
            r.score() * 100.0,
            mean(&r.majority) * 100.0,
            r.train,
            r.dev,
            r.seconds
        );
    }
    let majority = results.iter().map(|r| mean(&r.majority)).sum::<f64>() / results.len() as f64;
    println!(
        "{:<10} {:<34} {:>7.1} {:>9.1}",
        "average",
        format!("{} of {} tasks", results.len(), results.len() + skipped.len()),
        average * 100.0,
        majority * 100.0
    );
    if let Some(path) = &args.json {
        let value = json!({
            "suite": name, "model": m.dir, "model_type": m.config.model_type(),
            "tasks": results.iter().map(|r| json!({
                "task": r.task, "metrics": r.metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "score": r.score(), "train": r.train, "dev": r.dev, "seconds": r.seconds,
                "majority": r.majority.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "average": average, "majority_average": majority, "skipped": skipped,
            "settings": {
                "epochs": tuning.epochs, "batch_size": tuning.batch_size, "lr": tuning.lr, "max_len": tuning.max_len,
                "seed": tuning.seed, "limit": args.limit,
            },
        });
        crate::storage::checkpoint::write_atomic(
            path,
            serde_json::to_string_pretty(&value).expect("JSON serialises").as_bytes(),
        )?;
        println!("json {}", path.display());
    }
    Ok(())
}
