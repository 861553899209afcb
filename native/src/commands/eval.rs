//! `hearth eval perplexity` and `hearth eval zero-shot`: how good a checkpoint is, as a table on
//! stdout and as JSON (`--json FILE`).

use std::path::PathBuf;

use hearth_core::Error;
use hearth_core::eval::{Nll, Task, TaskResult, causal_nll, objective_eval, pseudo_nll, run_suite};
use hearth_core::models::LanguageModel;
use hearth_core::objectives::{Collator, Noise};
use serde_json::json;

use crate::storage::model::{Loaded, ModelArgs, load};

/// Tasks named by `specs` (`bundled`, a .jsonl file, a folder of them, MMLU's folder), zero-shot.
pub fn load_tasks(specs: &[String]) -> Result<Vec<Task>, Error> {
    Ok(crate::storage::tasks::load(specs, 0, 0)?.into_iter().map(|p| p.task).collect())
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
        crate::storage::checkpoint::write_atomic(path, text.as_bytes())?;
        println!("json {}", path.display());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ZeroShotArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Task files (.jsonl: Hearth's layout, HellaSwag's or LAMBADA's as released), folders of
    /// them, MMLU's folder (dev/ and test/ of <subject>_<split>.csv), or `bundled` (four tasks
    /// from *Persuasion*).
    #[arg(default_value = "bundled")]
    tasks: Vec<String>,
    /// Examples shown before each question, in lm-evaluation-harness's format: MMLU's are the
    /// first K of the subject's dev file, other tasks' are drawn from the task (seeded).
    #[arg(long, default_value_t = 0)]
    num_fewshot: usize,
    /// Seed of the few-shot draw [default: 1234, the harness's].
    #[arg(long)]
    fewshot_seed: Option<u64>,
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
    if args.num_fewshot == 0 && args.fewshot_seed.is_some() {
        return Err(Error::Refused(
            "--fewshot-seed does not apply: it draws the examples of --num-fewshot, which is 0".into(),
        ));
    }
    let prompted = crate::storage::tasks::load(&args.tasks, args.num_fewshot, args.fewshot_seed.unwrap_or(1234))?;
    let groups: Vec<Option<&str>> = prompted.iter().map(|p| p.group).collect();
    let tasks: Vec<Task> = prompted.into_iter().map(|p| p.task).collect();
    let m = load(&args.model)?;
    println!(
        "model {} ({}, {:.2}M parameters)",
        m.dir.display(),
        m.config.model_type(),
        m.model.num_params() as f64 / 1e6
    );
    let results = run_suite(&m.model, &m.tokenizer, &tasks, args.limit, args.batch_size, &m.device)?;
    print_zero_shot(&results);
    let mut summary = serde_json::Map::new();
    for group in ["mmlu"] {
        let members: Vec<&TaskResult> =
            results.iter().zip(&groups).filter(|(_, g)| **g == Some(group)).map(|(r, _)| r).collect();
        if members.is_empty() {
            continue;
        }
        let macro_acc = members.iter().map(|r| r.metrics["acc"]).sum::<f64>() / members.len() as f64;
        let n: usize = members.iter().map(|r| r.n).sum();
        let micro_acc = members.iter().map(|r| r.metrics["acc"] * r.n as f64).sum::<f64>() / n.max(1) as f64;
        println!(
            "{group} ({} subjects, {n} questions, {}-shot): macro accuracy {macro_acc:.4}, micro {micro_acc:.4} (chance 0.25)",
            members.len(),
            args.num_fewshot
        );
        summary.insert(
            group.into(),
            json!({"subjects": members.len(), "n": n, "acc_macro": macro_acc, "acc_micro": micro_acc}),
        );
    }
    write_json(
        &args.json,
        &json!({
            "model": m.dir, "model_type": m.config.model_type(), "num_fewshot": args.num_fewshot,
            "results": results, "groups": summary,
        }),
    )
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
    /// Masked and encoder-decoder models: the masks and spans of the masked-LM and
    /// span-corruption numbers are drawn from this seed [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run_perplexity(args: PerplexityArgs) -> Result<(), Error> {
    let m = load(&args.model)?;
    let causal = m.model.causal_lm().is_some();
    let refused = match (causal, args.stride.is_some(), args.seed.is_some()) {
        (false, true, _) => Some(("--stride", "it slides a causal model's windows")),
        (true, _, true) => {
            Some(("--seed", "it draws the masks and spans of a masked or encoder-decoder model's numbers"))
        }
        _ => None,
    };
    if let Some((flag, why)) = refused {
        return Err(Error::Refused(format!(
            "{flag} does not apply: {why}, and {} is a {}",
            m.dir.display(),
            m.config.model_type()
        )));
    }
    let seed = args.seed.unwrap_or(0);
    let docs = crate::storage::documents::read_all(&args.file)?;
    let bytes: usize = docs.iter().map(String::len).sum();
    let eos = m.tokenizer.eos_id().ok_or_else(|| Error::Config("the tokenizer has no end-of-text token".into()))?;
    let all = crate::storage::documents::tokenize_with_progress(&m.tokenizer, &docs, eos)?;
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
    // A masked LM's pseudo-perplexity scores 8 × batch_size rows at once.
    let rows_at_once = if m.model.masked_lm().is_some() { args.batch_size * 8 } else { args.batch_size };
    m.check_batch(rows_at_once.max(1), block, true, "perplexity")?;
    let mut rows: Vec<(&str, f64)> = Vec::new();
    let Loaded { model, config, tokenizer, device, dir, .. } = &m;
    if let Some(g) = model.causal_lm() {
        let stride = args.stride.unwrap_or(block / 2).max(1);
        let nll = causal_nll(g, tokens, scored_bytes, block, stride, args.batch_size, device)?;
        push_nll(&mut rows, "", &nll);
    } else if let Some(b) = model.masked_lm() {
        {
            let collator = Collator::new(None, Noise::default(), config, tokenizer)?;
            let e = objective_eval(model, &collator, tokens, block, args.batch_size, usize::MAX, seed, device)?;
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
    } else {
        // An encoder-decoder: its own objective's loss (span corruption for T5).
        let collator = Collator::new(None, Noise::default(), config, tokenizer)?;
        let e = objective_eval(model, &collator, tokens, block, args.batch_size, usize::MAX, seed, device)?;
        rows.push(("span targets", e.targets as f64));
        rows.push(("span-corruption loss (nats/target)", e.loss));
        rows.push(("span-corruption perplexity", e.loss.exp()));
        rows.push(("span token accuracy", e.accuracy));
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
