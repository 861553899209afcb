//! `hearth eval perplexity` and `hearth eval zero-shot`: how good a checkpoint is, as a table on
//! stdout and as JSON (`--json FILE`).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use hearth_core::Error;
use hearth_core::eval::{Nll, Scorer, Task, TaskResult, causal_nll, objective_eval, pseudo_nll, run_task};
use hearth_core::models::{Model, ModelConfig};
use hearth_core::objectives::{Collator, Noise};
use hearth_core::tokenizer::Tokenizer;
use serde_json::json;

use crate::infer::{Loaded, ModelArgs, load};

/// Zero-shot tasks built from *Persuasion*, which the default run never trains on
/// (`data/make_eval_data.py` rebuilds them).
pub const BUNDLED_TASKS: [(&str, &str); 4] = [
    ("persuasion_next_sentence", include_str!("../../data/tasks/persuasion_next_sentence.jsonl")),
    ("persuasion_sentence_ending", include_str!("../../data/tasks/persuasion_sentence_ending.jsonl")),
    ("persuasion_word_order", include_str!("../../data/tasks/persuasion_word_order.jsonl")),
    ("persuasion_last_word", include_str!("../../data/tasks/persuasion_last_word.jsonl")),
];

/// Tasks named by `specs`: `bundled`, a .jsonl file, or a folder of them.
pub fn load_tasks(specs: &[String]) -> Result<Vec<Task>, Error> {
    let mut tasks = Vec::new();
    for spec in specs {
        if spec == "bundled" {
            for (name, text) in BUNDLED_TASKS {
                tasks.push(Task::from_jsonl(name, text)?);
            }
            continue;
        }
        let path = Path::new(spec);
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut f: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::Input(format!("cannot list it ({e})")).in_file(path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            f.sort();
            f
        } else {
            vec![path.to_path_buf()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Error::Input(format!("cannot read it ({e}); give a .jsonl task file, a folder of them, or `bundled`"))
                    .in_file(file.display())
            })?;
            let name = file.file_stem().map_or("task".into(), |s| s.to_string_lossy().into_owned());
            tasks.push(Task::from_jsonl(&name, &text).map_err(|e| e.in_file(file.display()))?);
        }
    }
    Ok(tasks)
}

/// Scores every task (the first `limit` examples of each; 0: all).
pub fn zero_shot_suite(
    model: &Model,
    config: &ModelConfig,
    tokenizer: &Tokenizer,
    tasks: &[Task],
    limit: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<TaskResult>, Error> {
    let scorer = Scorer::new(model, config, tokenizer)?;
    tasks.iter().map(|t| run_task(&scorer, tokenizer, t, limit, batch_size, device)).collect()
}

/// One line per task: accuracy (± standard error) against chance or the majority answer.
pub fn print_zero_shot(results: &[TaskResult]) {
    println!("{:<28} {:>5}  {:>14}  {:>9}  {:>12}", "task", "n", "acc ± stderr", "acc_norm", "vs chance");
    for r in results {
        let m = &r.metrics;
        let (second, baseline) = match r.kind {
            "cloze" => (format!("ppl {:.1}", m["perplexity"]), m["majority_baseline"]),
            _ => (format!("{:.3}", m["acc_norm"]), m["chance"]),
        };
        println!(
            "{:<28} {:>5}  {:>6.3} ± {:.3}  {:>9}  {:>12}",
            r.task,
            r.n,
            m["acc"],
            m["acc_stderr"],
            second,
            format!("{baseline:.3}{}", if r.kind == "cloze" { " (majority)" } else { "" })
        );
    }
}

fn write_json(path: &Option<PathBuf>, value: &serde_json::Value) -> Result<(), Error> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(value).expect("JSON serialises");
        crate::checkpoint::write_atomic(path, text.as_bytes())?;
        println!("json {}", path.display());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ZeroShotArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Task files (.jsonl), folders of them, or `bundled` (four tasks from *Persuasion*).
    #[arg(default_value = "bundled")]
    tasks: Vec<String>,
    /// Examples per task (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run_zero_shot(args: ZeroShotArgs) -> Result<(), Error> {
    let tasks = load_tasks(&args.tasks)?;
    let m = load(&args.model)?;
    println!(
        "model {} ({}, {:.2}M parameters)",
        m.dir.display(),
        m.config.model_type(),
        m.model.num_params() as f64 / 1e6
    );
    let results = zero_shot_suite(&m.model, &m.config, &m.tokenizer, &tasks, args.limit, args.batch_size, &m.device)?;
    print_zero_shot(&results);
    write_json(&args.json, &json!({ "model": m.dir, "model_type": m.config.model_type(), "results": results }))
}

#[derive(clap::Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Text to evaluate on (.txt, .jsonl with "text", .parquet).
    file: PathBuf,
    /// Tokens per window (default: the model's context, at most 1024).
    #[arg(long)]
    block_size: Option<usize>,
    /// Causal models: tokens between window starts; each token is scored once with up to
    /// block_size − stride tokens of context (default: block_size / 2).
    #[arg(long)]
    stride: Option<usize>,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Score at most this many tokens (0: all). Pseudo-perplexity costs one forward row per token.
    #[arg(long, default_value_t = 0)]
    max_tokens: usize,
    /// Masks and spans for the masked-LM and span-corruption numbers are drawn from this seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run_perplexity(args: PerplexityArgs) -> Result<(), Error> {
    let m = load(&args.model)?;
    let docs = crate::corpus::read_documents(&args.file)?;
    let bytes: usize = docs.iter().map(String::len).sum();
    let eos = m.tokenizer.eos_id().ok_or_else(|| Error::Config("the tokenizer has no end-of-text token".into()))?;
    let all = crate::corpus::tokenize_documents(&m.tokenizer, &docs, eos)?;
    let n = if args.max_tokens == 0 { all.len() } else { args.max_tokens.min(all.len()) };
    let tokens = &all[..n];
    // Bytes of the scored part (exact when the whole text is scored).
    let scored_bytes = (bytes as f64 * n as f64 / all.len().max(1) as f64).round() as usize;
    let block = args.block_size.unwrap_or(m.config.max_positions().unwrap_or(512).min(1024));
    if let Some(max) = m.config.max_positions()
        && block > max
    {
        return Err(Error::Config(format!("--block-size {block} is longer than the model's position table ({max})")));
    }
    // BERT's pseudo-perplexity scores 8 × batch_size rows at once.
    let rows_at_once = if matches!(m.model, Model::Bert(_)) { args.batch_size * 8 } else { args.batch_size };
    m.check_batch(rows_at_once.max(1), block, true, "perplexity")?;
    let mut rows: Vec<(&str, f64)> = Vec::new();
    let Loaded { model, config, tokenizer, device, dir, .. } = &m;
    match (model, config) {
        (Model::Gpt2(g), _) => {
            let stride = args.stride.unwrap_or(block / 2).max(1);
            let nll = causal_nll(g, tokens, scored_bytes, block, stride, args.batch_size, device)?;
            push_nll(&mut rows, "", &nll);
        }
        (Model::Bert(b), _) => {
            let collator = Collator::new(None, Noise::default(), config, tokenizer)?;
            let e = objective_eval(b, &collator, tokens, block, args.batch_size, usize::MAX, args.seed, device)?;
            rows.push(("masked-LM targets", e.targets as f64));
            rows.push(("masked-LM loss (nats/target)", e.loss));
            rows.push(("masked-LM accuracy", e.accuracy));
            let ids = (
                tokenizer.cls_id().unwrap_or(eos),
                eos,
                tokenizer.mask_id().ok_or_else(|| Error::Config("the tokenizer has no [MASK] token".into()))?,
            );
            let nll = pseudo_nll(b, tokens, scored_bytes, ids, block, args.batch_size * 8, device)?;
            push_nll(&mut rows, "pseudo-", &nll);
        }
        (Model::T5(t), _) => {
            let collator = Collator::new(None, Noise::default(), config, tokenizer)?;
            let e = objective_eval(t, &collator, tokens, block, args.batch_size, usize::MAX, args.seed, device)?;
            rows.push(("span targets", e.targets as f64));
            rows.push(("span-corruption loss (nats/target)", e.loss));
            rows.push(("span-corruption perplexity", e.loss.exp()));
            rows.push(("span token accuracy", e.accuracy));
        }
    }
    println!("model {} ({}, {:.2}M parameters)", dir.display(), config.model_type(), model.num_params() as f64 / 1e6);
    println!(
        "text  {} ({bytes} bytes, {} tokens{})",
        args.file.display(),
        all.len(),
        if n < all.len() { format!("; the first {n} scored") } else { String::new() }
    );
    println!("{:<36} {:>12}", "metric", "value");
    for (name, value) in &rows {
        if value.fract() == 0.0 && *value > 1.0 {
            println!("{name:<36} {value:>12}");
        } else {
            println!("{name:<36} {value:>12.4}");
        }
    }
    let metrics: serde_json::Map<String, serde_json::Value> =
        rows.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    write_json(
        &args.json,
        &json!({
            "model": dir, "model_type": config.model_type(), "file": args.file, "bytes": bytes,
            "tokens": all.len(), "tokens_scored": n, "block_size": block, "metrics": metrics,
        }),
    )
}

fn push_nll(rows: &mut Vec<(&str, f64)>, prefix: &str, nll: &Nll) {
    let pseudo = !prefix.is_empty();
    rows.push((if pseudo { "tokens scored (pseudo)" } else { "tokens scored" }, nll.tokens as f64));
    rows.push((if pseudo { "pseudo-loss (nats/token)" } else { "loss (nats/token)" }, nll.loss()));
    rows.push((if pseudo { "pseudo-perplexity" } else { "perplexity" }, nll.perplexity()));
    rows.push((if pseudo { "pseudo bits per byte" } else { "bits per byte" }, nll.bits_per_byte()));
}
