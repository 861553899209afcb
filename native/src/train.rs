//! `hearth train`: from text (or prepared shards) to a pretrained model, with progress, metrics,
//! a loss curve, checkpoints that resume exactly, and a summary of what the model learned.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::tcp::TcpCollective;
use burn::tensor::Device;
use hearth_core::error::io;
use hearth_core::generate::{Sampling, fill_mask, generate, text2text};
use hearth_core::models::presets::preset;
use hearth_core::models::{LanguageModel, Model, ModelConfig};
use hearth_core::objectives::Rng;
use hearth_core::parallel::Collective;
use hearth_core::readback::block_on;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::corpus::{paragraphs, split_validation, tokenizer_kind};
use hearth_core::train::run::{Start, build_model, document_separator, fit_model_config};
use hearth_core::train::trainer::ObjectiveSpec;
use hearth_core::train::{TokenSource, TrainConfig, Trainer};
use hearth_core::{Backend, Error, fit};
use rand::SeedableRng;

use crate::checkpoint;
use crate::corpus::{self, unigram_baseline};
use crate::report::{Metrics, loss_curve_svg, read_curves};

/// The corpus the default run trains on: Jane Austen's *Pride and Prejudice* (public domain).
pub const BUNDLED_CORPUS: &str = include_str!("../../data/pride_and_prejudice.txt");

#[derive(clap::Args)]
#[command(after_long_help = run_file_keys_help())]
pub struct Args {
    /// A TOML run file (the keys below, `--keys`; `[model]` for HF config overrides).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from the latest intact checkpoint in the run's out_dir.
    #[arg(long)]
    resume: bool,
    /// Start a new run in an out_dir that holds another run's checkpoints and metrics, removing them
    /// first (without it such a folder is refused, and nothing in it is touched).
    #[arg(long)]
    overwrite: bool,
    /// List every run-file key with its type, default and meaning, and exit.
    #[arg(long)]
    keys: bool,
    /// Any config key as `--key value` (`--lr 3e-4`, `--preset bert-tiny`, `--model.n_layer 6`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    overrides: Vec<String>,
}

/// `hearth train --help`'s list of run-file keys (from `TrainConfig`, see `train::keys`).
fn run_file_keys_help() -> String {
    format!(
        "Run-file keys (in a --config TOML file, or on the command line as --key value, `_` or `-`):\n\n{}",
        hearth_core::train::keys::keys_table()
    )
}

pub fn load_config(file: Option<&Path>, overrides: &[String]) -> Result<TrainConfig, Error> {
    let mut table: toml::Table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(io("read", path.display()))?;
            toml::from_str(&text).map_err(|e| Error::Config(e.message().to_string()).in_file(path.display()))?
        }
        None => Default::default(),
    };
    crate::overrides::apply(&mut table, overrides)?;
    TrainConfig::from_toml(&toml::to_string(&table).expect("a table serialises"))
}

/// Training and validation tokens, and the tokenizer, from what the config names.
struct Data {
    tokenizer: Tokenizer,
    tokenizer_trained_here: bool,
    train: Box<dyn TokenSource>,
    val: Box<dyn TokenSource>,
    source: String,
}

fn load_data(config: &TrainConfig, model: &ModelConfig, resume_tokenizer: Option<Tokenizer>) -> Result<Data, Error> {
    let given_tokenizer = match (&resume_tokenizer, &config.tokenizer) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => {
            let bytes =
                checkpoint::read(Path::new(path), "").or_else(|_| std::fs::read(path).map_err(io("read", path)))?;
            Some(Tokenizer::from_json(&bytes).map_err(|e| e.in_file(path))?)
        }
        (None, None) => None,
    };
    // A folder from `hearth prepare`.
    if let Some(dir) = config.data.as_deref().map(Path::new).filter(|p| p.join("meta.json").exists()) {
        let (meta, train, val, tok_path) = corpus::open_prepared(dir)?;
        let tokenizer = match given_tokenizer {
            Some(t) => t,
            None => Tokenizer::from_json(&checkpoint::read(dir, "tokenizer.json")?)
                .map_err(|e| e.in_file(tok_path.display()))?,
        };
        if tokenizer.vocab_size() != meta.vocab_size {
            return Err(Error::Config(format!(
                "the shards were tokenized with a {}-token vocabulary but the tokenizer has {}; prepare the data with this tokenizer",
                meta.vocab_size,
                tokenizer.vocab_size()
            )));
        }
        return Ok(Data {
            tokenizer,
            tokenizer_trained_here: false,
            train: Box::new(train),
            val: Box::new(val),
            source: dir.display().to_string(),
        });
    }
    let (docs, source) = match &config.data {
        Some(path) => (corpus::read_documents(Path::new(path))?, path.clone()),
        None => (paragraphs(BUNDLED_CORPUS), "bundled Pride and Prejudice".to_string()),
    };
    let (train_docs, val_docs): (Vec<String>, Vec<String>) = match &config.val_data {
        Some(path) => (docs, corpus::read_documents(Path::new(path))?),
        None => split_validation(docs, config.val_fraction, &source)?,
    };
    let (tokenizer, trained) = match given_tokenizer {
        Some(t) => (t, false),
        None => {
            let kind = tokenizer_kind(model);
            let t =
                Tokenizer::train(kind, config.tokenizer_vocab_size, &kind.default_special_tokens(), train_docs.iter())?;
            (t, true)
        }
    };
    let eos = document_separator(&tokenizer)?;
    let train = corpus::tokenize_documents(&tokenizer, &train_docs, eos)?;
    let val = corpus::tokenize_documents(&tokenizer, &val_docs, eos)?;
    Ok(Data { tokenizer, tokenizer_trained_here: trained, train: Box::new(train), val: Box::new(val), source })
}

fn model_config(config: &TrainConfig) -> Result<ModelConfig, Error> {
    match &config.init_from {
        Some(dir) => {
            let dir = Path::new(dir);
            ModelConfig::from_json(&checkpoint::read(dir, "config.json")?)
                .map_err(|e| e.in_file(dir.join("config.json").display()))
        }
        None => preset(&config.preset, &config.model),
    }
}

pub fn run(mut args: Args) -> Result<(), Error> {
    // `--resume`, `--overwrite` and `--keys` after the `--key value` settings land among them.
    for (flag, on) in [("--resume", &mut args.resume), ("--overwrite", &mut args.overwrite), ("--keys", &mut args.keys)]
    {
        if let Some(i) = args.overrides.iter().position(|a| a == flag) {
            args.overrides.remove(i);
            *on = true;
        }
    }
    if args.keys {
        print!("{}", hearth_core::train::keys::keys_table());
        return Ok(());
    }
    if args.resume && args.overwrite {
        return Err(Error::Refused(
            "--resume continues the run in out_dir and --overwrite replaces it; choose one".into(),
        ));
    }
    let mut config = load_config(args.config.as_deref(), &args.overrides)?;
    let out_dir = PathBuf::from(&config.out_dir);
    let rank0 = std::env::var("RANK").map_or(true, |r| r == "0");
    // A new run never mixes with another in the same folder: refused before any work, or (with
    // --overwrite) the earlier run's files are removed once the run is about to write.
    let earlier_run =
        if !args.resume && rank0 { checkpoint::refuse_other_run(&out_dir, args.overwrite)? } else { Vec::new() };
    let resume_from = match args.resume {
        true => Some(checkpoint::latest_intact(&out_dir, rank0).map_err(|e| {
            let way_on = if checkpoint::run_files(&out_dir).is_empty() {
                "start without --resume"
            } else {
                "nothing was trained; restore a checkpoint, or start over with --overwrite"
            };
            Error::Refused(format!("--resume: {e}; {way_on}"))
        })?),
        false => None,
    };
    // --overwrite clears out_dir: a model to start from must not lie inside it.
    if let Some(init) = config.init_from.as_deref().filter(|_| !earlier_run.is_empty()) {
        let inside = |p: &Path| std::fs::canonicalize(p).ok();
        if let (Some(init), Some(out)) = (inside(Path::new(init)), inside(&out_dir))
            && init.starts_with(&out)
        {
            return Err(Error::Refused(format!(
                "init_from {} lies in {}, which --overwrite would clear; copy it elsewhere first",
                init.display(),
                out.display()
            )));
        }
    }

    let mut model_config = match &resume_from {
        Some((_, dir)) => ModelConfig::from_json(&checkpoint::read(dir, "config.json")?)?,
        None => model_config(&config)?,
    };
    let resume_tokenizer = match &resume_from {
        Some((_, dir)) => Some(Tokenizer::from_json(&checkpoint::read(dir, "tokenizer.json")?)?),
        None => None,
    };
    // Data parallelism: torchrun's variables (set by `hearth launch`) name this process's rank.
    let mut collective = TcpCollective::from_env().map_err(Error::Distributed)?;
    let rank = collective.as_ref().map_or(0, |c| c.rank());
    let data = match collective.as_mut() {
        // Rank 0 reads (or trains) the tokenizer and hands it to the others, so that every rank
        // tokenizes with the same one.
        Some(c) if rank != 0 => {
            let shared = c.broadcast_bytes(Vec::new()).map_err(Error::Distributed)?;
            let (trained, json) =
                shared.split_first().ok_or_else(|| Error::Distributed("rank 0 sent no tokenizer".into()))?;
            let mut data = load_data(&config, &model_config, Some(Tokenizer::from_json(json)?))?;
            data.tokenizer_trained_here = *trained == 1;
            data
        }
        Some(c) => {
            let data = load_data(&config, &model_config, resume_tokenizer)?;
            let mut shared = vec![data.tokenizer_trained_here as u8];
            shared.extend(data.tokenizer.to_json()?.into_bytes());
            c.broadcast_bytes(shared).map_err(Error::Distributed)?;
            data
        }
        None => load_data(&config, &model_config, resume_tokenizer)?,
    };
    // Where the weights come from: the checkpoint resumed, init_from, or new from the seed.
    let saved = match (&resume_from, &config.init_from) {
        (Some((_, dir)), _) => Some(checkpoint::read(dir, "model.safetensors")?),
        (None, Some(dir)) => Some(checkpoint::read(Path::new(dir), "model.safetensors")?),
        (None, None) => None,
    };
    let start = match &saved {
        Some(weights) => Start::Saved(weights),
        None => Start::New { vocab_from_tokenizer: data.tokenizer_trained_here },
    };
    fit_model_config(&config, &mut model_config, &data.tokenizer, start)?;
    let objective = ObjectiveSpec::new(&config, &model_config, &data.tokenizer)?;
    let (backend, device) = crate::backend::choose_for_rank(&config.backend)?;
    config.backend = backend.to_string();
    // Before any work: every tensor fits one binding, and the step's estimated peak fits the memory.
    let var = |key: &str| std::env::var(key).ok().and_then(|w| w.parse::<usize>().ok()).unwrap_or(1).max(1);
    let (world, local_world) = (var("WORLD_SIZE"), var("LOCAL_WORLD_SIZE"));
    let fused = fit::fused_attention(&device, config.fused_attention);
    let mut limits = crate::backend::limits(backend, &device);
    if let Some(gib) = config.max_memory_gib {
        limits.memory = Some((gib * (1u64 << 30) as f64) as u64);
        limits.device = format!("max_memory_gib ({})", limits.device);
    } else if backend == Backend::Flex && local_world > 1 {
        // The processes on this machine share its memory.
        limits.memory = limits.memory.map(|m| m / local_world as u64);
        limits.device = format!("{} (its share for {local_world} processes on this machine)", limits.device);
    }
    let peak = fit::check_training(&model_config, &config, world, fused, &limits)?;
    let memory_line = match limits.memory {
        Some(m) => format!(
            "estimated peak memory {} per process ({} has {})",
            fit::human(peak.total),
            limits.device,
            fit::human(m)
        ),
        None => format!("estimated peak memory {} per process", fit::human(peak.total)),
    };

    if rank == 0 {
        if !earlier_run.is_empty() {
            checkpoint::remove_run(&earlier_run)?;
            eprintln!(
                "note: --overwrite: removed the earlier run in {} ({} files)",
                out_dir.display(),
                earlier_run.len()
            );
        }
        std::fs::create_dir_all(&out_dir).map_err(io("create", out_dir.display()))?;
    }
    let model = build_model(&config, &model_config, start, &device)?;
    let collective = collective.map(|c| Box::new(c) as Box<dyn Collective>);
    let ctx = RunContext {
        config,
        model_config,
        objective,
        data,
        device,
        backend,
        out_dir,
        resume_from,
        collective,
        memory_line,
    };
    match model {
        Model::Gpt2(m) => ctx.run(m),
        Model::Bert(m) => ctx.run(m),
        Model::T5(m) => ctx.run(m),
    }
}

struct RunContext {
    config: TrainConfig,
    model_config: ModelConfig,
    objective: ObjectiveSpec,
    data: Data,
    device: Device,
    backend: Backend,
    out_dir: PathBuf,
    resume_from: Option<(u64, PathBuf)>,
    /// Data parallelism: this process's link to the other ranks.
    collective: Option<Box<dyn Collective>>,
    /// The step's estimated peak memory, for the header.
    memory_line: String,
}

impl RunContext {
    fn run<M: LanguageModel>(self, model: M) -> Result<(), Error> {
        let RunContext {
            config,
            model_config,
            objective,
            data,
            device,
            backend,
            out_dir,
            resume_from,
            collective,
            memory_line,
        } = self;
        let (rank, world) = collective.as_ref().map_or((0, 1), |c| (c.rank(), c.world()));
        let objective_name = objective.name();
        let mut trainer = match &resume_from {
            Some((_, dir)) => {
                let state = String::from_utf8_lossy(&checkpoint::read(dir, "trainer_state.json")?).into_owned();
                let mut t = Trainer::resume(
                    model,
                    model_config.clone(),
                    &state,
                    checkpoint::read_optimizer(dir, rank, world, config.zero_stage)?,
                    objective,
                    &device,
                )
                .map_err(|e| e.in_file(dir.display()))?;
                t.set_config(config.clone());
                t
            }
            None => Trainer::new(model, model_config.clone(), config.clone(), objective, &device),
        };
        if let Some(collective) = collective {
            trainer = block_on(trainer.with_parallel(collective))?;
        }
        if rank != 0 {
            return run_follower(trainer, &config, data.train.as_ref());
        }
        for notice in &trainer.notices {
            eprintln!("hearth: {notice}");
        }
        let tokenizer_json = data.tokenizer.to_json()?;
        let params = trainer.model.num_params();
        let tokens_per_step = config.batch_size * config.block_size * config.accumulation();
        println!(
            "hearth: {} ({:.2}M parameters) on {backend}, {}, data: {} ({} train / {} val tokens, vocabulary {})",
            model_config.model_type(),
            params as f64 / 1e6,
            objective_name,
            data.source,
            data.train.len(),
            data.val.len(),
            data.tokenizer.vocab_size()
        );
        println!(
            "         {} steps × {tokens_per_step} tokens (batch {} × block {} × accumulation {}), lr {} → {}, out_dir {}",
            config.max_steps,
            config.batch_size,
            config.block_size,
            config.accumulation(),
            config.lr,
            config.min_lr,
            out_dir.display()
        );
        println!("         {memory_line}");
        let precision = trainer.precision();
        if world > 1 || precision != hearth_core::train::Precision::F32 || config.gradient_checkpointing {
            println!(
                "         {} compute{}{}{}",
                precision.name(),
                if precision == hearth_core::train::Precision::F32 { "" } else { " (f32 master weights)" },
                if config.gradient_checkpointing { ", activation checkpointing per block" } else { "" },
                match (world, config.zero_stage) {
                    (1, _) => String::new(),
                    (w, 1) => format!(", {w} data-parallel ranks, ZeRO stage 1 (optimizer state sharded)"),
                    (w, _) =>
                        format!(", {w} data-parallel ranks ({} sequences each per micro-batch)", config.batch_size / w),
                }
            );
        }
        if let Some((step, dir)) = &resume_from {
            println!("         resuming at step {step} from {}", dir.display());
        }
        checkpoint::write_atomic(&out_dir.join("run.toml"), config.to_toml().as_bytes())?;
        let metrics_path = out_dir.join("metrics.jsonl");
        let mut metrics = Metrics::open(&metrics_path, resume_from.is_none())?;
        if let Some((step, _)) = &resume_from {
            truncate_metrics_after(&metrics_path, *step);
            metrics = Metrics::open(&metrics_path, false)?;
        }

        let tasks = crate::evaluate::load_tasks(&config.zero_shot)?;
        let mut last_zero_shot = None;
        let bar = crate::report::steps_bar(config.max_steps);
        bar.set_position(trainer.state.step);
        let start = Instant::now();
        let start_tokens = trainer.state.tokens;
        let mut last = None;
        let mut last_val = None;
        let mut last_ckpt: Option<PathBuf> = resume_from.as_ref().map(|(_, d)| d.clone());
        let interrupted = interrupt_flag();
        let step_delay = std::env::var("HEARTH_TEST_STEP_DELAY_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(std::time::Duration::from_millis);
        while trainer.state.step < config.max_steps {
            if let Some(d) = step_delay {
                std::thread::sleep(d); // lets the kill-and-resume test land a SIGKILL between checkpoints
            }
            let stats = match trainer.step(data.train.as_ref()) {
                Ok(s) => s,
                Err(Error::NonFinite { step, what }) => {
                    bar.abandon();
                    let kept = last_ckpt.as_ref().map_or("no checkpoint was written yet".to_string(), |d| {
                        format!("the last good checkpoint is {}", d.display())
                    });
                    // Still a non-finite error (its kind kept), saying where the run stopped.
                    return Err(Error::NonFinite { step, what: format!("{what} (stopped; {kept})") });
                }
                Err(e) => return Err(e),
            };
            let elapsed = start.elapsed().as_secs_f64();
            let tok_s = (trainer.state.tokens - start_tokens) as f64 / elapsed.max(1e-9);
            bar.set_position(stats.step);
            bar.set_message(format!("loss {:.3}  lr {:.2e}  {:.0} tok/s", stats.loss, stats.lr, tok_s));
            let mut record = serde_json::json!({
                "step": stats.step, "loss": stats.loss, "lr": stats.lr, "grad_norm": stats.grad_norm,
                "tokens": trainer.state.tokens, "tokens_per_s": tok_s, "elapsed_s": elapsed,
            });
            if precision == hearth_core::train::Precision::F16 {
                record["loss_scale"] = stats.loss_scale.into();
                record["skipped"] = stats.skipped.into();
            }
            let is_last = stats.step == config.max_steps;
            if (config.eval_every > 0 && stats.step % config.eval_every == 0) || is_last {
                let val = trainer.evaluate(data.val.as_ref())?;
                record["val_loss"] = val.into();
                record["val_ppl"] = val.exp().into();
                let line = format!(
                    "step {:>6}  train loss {:.4}  val loss {:.4}  val ppl {:.2}  {:.0} tok/s",
                    stats.step,
                    stats.loss,
                    val,
                    val.exp(),
                    tok_s
                );
                if bar.is_hidden() {
                    println!("{line}")
                } else {
                    bar.println(line)
                }
                last_val = Some(val);
            }
            let zero_shot_due = (config.zero_shot_every > 0 && stats.step % config.zero_shot_every == 0) || is_last;
            if !tasks.is_empty() && zero_shot_due {
                let results = crate::evaluate::zero_shot_suite(
                    &trainer.model.valid().into_model(),
                    &model_config,
                    &data.tokenizer,
                    &tasks,
                    config.zero_shot_limit,
                    32,
                    &device,
                )?;
                let shown: Vec<String> =
                    results.iter().map(|r| format!("{} {:.3}", r.task, r.metrics["acc"])).collect();
                let line = format!("step {:>6}  zero-shot acc: {}", stats.step, shown.join(", "));
                if bar.is_hidden() {
                    println!("{line}")
                } else {
                    bar.println(line)
                }
                record["zero_shot"] = results.iter().map(|r| (r.task.clone(), serde_json::json!(r.metrics))).collect();
                last_zero_shot = Some(results);
            }
            if stats.step % config.log_every.max(1) == 0
                || record.get("val_loss").is_some()
                || record.get("zero_shot").is_some()
            {
                metrics.log(record)?;
            }
            let stop = trainer.any_rank(interrupted.load(std::sync::atomic::Ordering::SeqCst))?;
            if checkpoint_due(&config, stats.step, stop)
                && let Some(ckpt) = trainer.checkpoint()?
            {
                last_ckpt = Some(checkpoint::save(&out_dir, stats.step, &ckpt, &tokenizer_json, config.keep_last)?);
            }
            if stop {
                trainer.barrier()?; // the other ranks exit only once this checkpoint is on disk
            }
            last = Some(stats);
            if stop && !is_last {
                bar.abandon();
                let dir = last_ckpt.as_ref().map_or(String::new(), |d| d.display().to_string());
                eprintln!(
                    "interrupted after step {}; checkpoint written to {dir}; continue with the same command and --resume",
                    stats.step
                );
                std::process::exit(130);
            }
        }
        bar.finish_and_clear();
        let elapsed = start.elapsed().as_secs_f64();
        let (train_curve, val_curve) = read_curves(&metrics_path);
        let curve = out_dir.join("loss_curve.svg");
        let svg = loss_curve_svg(&train_curve, &val_curve, &format!("{} · {}", model_config.model_type(), data.source));
        if let Err(e) = checkpoint::write_atomic(&curve, svg.as_bytes()) {
            // The run and its checkpoints are complete; only the picture is missing.
            eprintln!("warning: {e}; the metrics are in {}", metrics_path.display());
        }

        println!("\n== summary");
        let tokens = trainer.state.tokens - start_tokens;
        println!(
            "steps {}  tokens {}  time {:.1}s  {:.0} tokens/s on {backend}",
            trainer.state.step,
            tokens,
            elapsed,
            tokens as f64 / elapsed.max(1e-9)
        );
        if let Some(s) = last {
            println!("final train loss {:.4}", s.loss);
        }
        if let (Some(val), ModelConfig::Gpt2(_)) = (last_val, &model_config) {
            let baseline = unigram_baseline(data.train.as_ref(), data.val.as_ref(), data.tokenizer.vocab_size());
            println!(
                "validation loss {val:.4} (perplexity {:.2}); unigram baseline {baseline:.4} (perplexity {:.2})",
                val.exp(),
                baseline.exp()
            );
        } else if let Some(val) = last_val {
            println!("validation loss {val:.4} (perplexity {:.2})", val.exp());
        }
        if let Some(dir) = &last_ckpt {
            println!("checkpoint {} (HF format: config.json, model.safetensors, tokenizer.json)", dir.display());
        }
        if let Some(results) = &last_zero_shot {
            println!("zero-shot ({} examples per task at most):", config.zero_shot_limit);
            crate::evaluate::print_zero_shot(results);
        }
        println!("metrics {}  loss curve {}", metrics_path.display(), curve.display());
        show_what_it_learned(
            trainer.model.valid().into_model(),
            &model_config,
            &data.tokenizer,
            &device.clone(),
            config.seed,
        )?;
        Ok(())
    }
}

/// Ctrl-C (or SIGTERM) sets the flag: the run finishes the step, writes a checkpoint and stops; a
/// second one stops at once.
fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    interrupted
}

fn checkpoint_due(config: &TrainConfig, step: u64, stop: bool) -> bool {
    (config.checkpoint_every > 0 && step % config.checkpoint_every == 0) || step == config.max_steps || stop
}

/// A rank other than 0: the same steps, and its part in checkpoints (ZeRO's optimizer shards);
/// rank 0 evaluates, logs and writes.
fn run_follower<M: LanguageModel>(
    mut trainer: Trainer<M>,
    config: &TrainConfig,
    train: &dyn TokenSource,
) -> Result<(), Error> {
    let interrupted = interrupt_flag();
    while trainer.state.step < config.max_steps {
        let stats = trainer.step(train)?;
        let stop = trainer.any_rank(interrupted.load(std::sync::atomic::Ordering::SeqCst))?;
        if checkpoint_due(config, stats.step, stop) {
            trainer.checkpoint()?;
        }
        if stop {
            trainer.barrier()?; // rank 0 has written the checkpoint
            if stats.step < config.max_steps {
                std::process::exit(130);
            }
        }
    }
    Ok(())
}

/// Drops metric lines past `step` (they belong to the interrupted run's lost steps).
fn truncate_metrics_after(path: &Path, step: u64) {
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .collect();
    let _ = checkpoint::write_atomic(path, (kept.join("\n") + if kept.is_empty() { "" } else { "\n" }).as_bytes());
}

/// A sample (GPT), a filled [MASK] (BERT) or a filled span (T5) from the trained model.
pub fn show_what_it_learned(
    model: Model,
    config: &ModelConfig,
    tokenizer: &Tokenizer,
    device: &Device,
    seed: u64,
) -> Result<(), Error> {
    let mut rng = Rng::seed_from_u64(seed);
    match (&model, config) {
        (Model::Gpt2(m), ModelConfig::Gpt2(c)) => {
            let prompt = "It is a truth universally acknowledged";
            let ids = tokenizer.encode(prompt)?;
            let out = block_on(generate(
                m,
                &ids,
                80,
                c.n_positions,
                Sampling::default(),
                tokenizer.eos_id(),
                &mut rng,
                device,
            ))?;
            println!("\nsample (temperature 0.8, top-k 40):\n  {prompt}{}", tokenizer.decode(&out)?);
        }
        (Model::Bert(m), _) => {
            let mask = tokenizer.mask_id().ok_or_else(|| Error::Config("no [MASK] token".into()))?;
            let (cls, sep) = (tokenizer.cls_id().unwrap_or(mask), tokenizer.eos_id().unwrap_or(mask));
            let mut ids = vec![cls];
            ids.extend(tokenizer.encode("it is a truth universally acknowledged that a single man")?);
            let at = ids.len() - 2;
            ids[at] = mask;
            ids.push(sep);
            let top = block_on(fill_mask(m, &ids, mask, 5, device))?;
            let shown: Vec<String> =
                top[0].iter().map(|&(t, p)| format!("{} {:.2}", tokenizer.token(t).unwrap_or_default(), p)).collect();
            println!(
                "\nfill-mask: \"it is a truth universally acknowledged that a [MASK] man\" → {}",
                shown.join(", ")
            );
        }
        (Model::T5(m), ModelConfig::T5(c)) => {
            let s0 = tokenizer.sentinel_ids().first().copied().unwrap_or(0);
            let mut ids = tokenizer.encode("It is a truth universally")?;
            ids.push(s0);
            ids.extend(tokenizer.encode("that a single man in possession of a good fortune")?);
            let eos = tokenizer.eos_id().unwrap_or(1);
            ids.push(eos);
            let out =
                block_on(text2text(m, &ids, c.decoder_start_token(), eos, 20, Sampling::GREEDY, &mut rng, device))?;
            println!(
                "\nspan filling: \"It is a truth universally <extra_id_0> that a single man …\" → {}",
                tokenizer.decode(&out)?
            );
        }
        _ => {}
    }
    Ok(())
}
