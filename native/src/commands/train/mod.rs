//! `hearth train`: from text (or prepared shards) to a pretrained model, with progress, metrics,
//! a loss curve, checkpoints that resume exactly, and a summary of what the model learned.
//!
//! `run` assembles the run (the out_dir's policy, the data, the plan core checks and builds) and
//! then drives core's engine, which every rank runs alike: where its output goes is `sink`, what
//! is printed around the loop `summary`, the data `dataset`.

mod dataset;
mod sink;
mod summary;

use std::path::{Path, PathBuf};

use hearth_core::error::io;
use hearth_core::models::ModelConfig;
use hearth_core::parallel::Collective;
use hearth_core::readback::block_on;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::pretraining::{Pretraining, Validation, ZeroShot};
use hearth_core::train::run::{Resume, RunPlan, Start};
use hearth_core::train::{Engine, Sink, Trainer};
use hearth_core::train::{Precision, TrainConfig};
use hearth_core::{Backend, Error, footprint};

use self::dataset::{Data, load_data, model_config};
use self::sink::Files;
use crate::distributed::Ranks;
use crate::storage::checkpoint;

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
    TrainConfig::from_toml(&toml::to_string(&load_table(file, overrides)?).expect("a table serialises"))
}

/// The run file's table with the `--key value` settings applied.
fn load_table(file: Option<&Path>, overrides: &[String]) -> Result<toml::Table, Error> {
    let mut table: toml::Table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(io("read", path.display()))?;
            toml::from_str(&text).map_err(|e| Error::Config(e.message().to_string()).in_file(path.display()))?
        }
        None => Default::default(),
    };
    crate::overrides::apply(&mut table, overrides)?;
    Ok(table)
}

/// Refuses a key this run sets that has no meaning for it (its objective, its precision, its
/// tokenizer), naming why: a setting that does not apply is never silently ignored.
fn refuse_inapplicable(set: &toml::Table, config: &TrainConfig, model_config: &ModelConfig) -> Result<(), Error> {
    use hearth_core::train::Objective;
    let objective = config.objective.unwrap_or(model_config.family().objectives()[0]);
    let refuse = |key: &str, why: String| Err(Error::Refused(format!("{key} does not apply to this run: {why}")));
    for key in set.keys() {
        match key.as_str() {
            "mask_rate" | "whole_word_masking" if objective != Objective::Masked => {
                return refuse(key, format!("it sets the masked objective, and this run trains {}", objective.name()));
            }
            "noise_density" | "mean_span_length" if !matches!(objective, Objective::Span | Objective::Denoise) => {
                return refuse(
                    key,
                    format!("it sets span corruption (span, denoise), and this run trains {}", objective.name()),
                );
            }
            "tokenizer_vocab_size" if set.contains_key("tokenizer") => {
                return refuse(key, "it sizes a tokenizer trained for the run, and --tokenizer gives one".into());
            }
            "loss_scale" | "loss_scale_growth_interval" if config.precision != Precision::F16 => {
                return refuse(
                    key,
                    format!("loss scaling is f16's, and this run computes in {}", config.precision.name()),
                );
            }
            "val_fraction" if set.contains_key("val_data") => {
                return refuse(key, "it holds out part of data when val_data is not given, and val_data is".into());
            }
            _ => {}
        }
    }
    Ok(())
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
    let set = load_table(args.config.as_deref(), &args.overrides)?;
    let config = TrainConfig::from_toml(&toml::to_string(&set).expect("a table serialises"))?;
    let out_dir = PathBuf::from(&config.out_dir);
    // Data parallelism: the launcher (`hearth launch`, mpiexec, srun) says which rank this is.
    let (ranks, mut collective) = crate::distributed::join()?;
    let (rank, world) = (ranks.rank, ranks.world);
    let OutDir { earlier_run, resume_from } = claim_out_dir(&config, &out_dir, args.resume, args.overwrite, rank == 0)?;

    // A resumed run goes on as it started: what it may change is said in the header, the rest refused.
    let state_json = match &resume_from {
        Some((_, dir)) => Some(String::from_utf8_lossy(&checkpoint::read(dir, "trainer_state.json")?).into_owned()),
        None => None,
    };
    let resume_changes = match (&resume_from, &state_json) {
        (Some((step, dir)), Some(json)) => {
            let state: hearth_core::train::TrainState = serde_json::from_str(json).map_err(|e| {
                Error::Config(format!("trainer_state.json: not a Hearth trainer state ({e})")).in_file(dir.display())
            })?;
            let changes = config.resume_changes(&state.config)?;
            Some(match changes.is_empty() {
                true => format!("settings: those of step {step}'s checkpoint, unchanged"),
                false => format!("changed since step {step}'s checkpoint: {}", changes.join(", ")),
            })
        }
        _ => None,
    };
    let model_config = match &resume_from {
        Some((_, dir)) => ModelConfig::from_json(&checkpoint::read(dir, "config.json")?)?,
        None => model_config(&config)?,
    };
    refuse_inapplicable(&set, &config, &model_config)?;
    let resumed = resume_from.as_ref().map(|(_, d)| d.as_path());
    let data = shared_data(&config, &model_config, resumed, collective.as_mut())?;
    // Where the weights come from: the checkpoint resumed, init_from, or new from the seed.
    let saved = match (&resume_from, &config.init_from) {
        (Some((_, dir)), _) => Some(checkpoint::read(dir, "model.safetensors")?),
        (None, Some(dir)) => Some(checkpoint::read(Path::new(dir), "model.safetensors")?),
        (None, None) => None,
    };
    let start = match &saved {
        Some(weights) => Start::Saved(weights),
        // The embedding table follows the tokenizer (trained here or given) unless vocab_size is set.
        None => Start::New { vocab_from_tokenizer: !config.model.contains_key("vocab_size") },
    };
    let mut plan = RunPlan::new(config, model_config, &data.tokenizer, start)?;
    let (backend, device) = crate::backend::choose_for_rank(&plan.config.backend, &ranks)?;
    plan.config.backend = backend.to_string();
    let memory_line = check_memory(&plan, backend, &device, &ranks)?;

    let resume = match (&resume_from, state_json) {
        (Some((_, dir)), Some(state_json)) => {
            Some((state_json, checkpoint::read_optimizer(dir, rank, world, plan.config.zero_stage)?, dir))
        }
        _ => None,
    };
    let mut trainer = match resume {
        Some((state_json, optimizer, dir)) => plan
            .trainer(&device, Some(Resume { state_json: &state_json, optimizer }))
            .map_err(|e| e.in_file(dir.display()))?,
        None => plan.trainer(&device, None)?,
    };
    if let Some(c) = collective {
        trainer = block_on(trainer.with_parallel(c))?;
    }
    // Every run evaluates at its last step: too little validation data is refused here, before
    // --overwrite removes an earlier run or anything is written.
    trainer.validation_batches(data.val.as_ref())?;

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
        for notice in trainer.notices() {
            eprintln!("hearth: {notice}");
        }
        let resumed = resume_from.as_ref().map(|(_, d)| d.as_path());
        let device_line =
            crate::backend::describe(backend, &device, trainer.config().fused_attention, trainer.precision());
        let mut lines = vec![device_line.as_str(), memory_line.as_str()];
        lines.extend(resume_changes.as_deref());
        summary::header(&trainer, &data, backend, &out_dir, &lines, resumed);
        checkpoint::write_atomic(&out_dir.join("run.toml"), trainer.config().to_toml().as_bytes())?;
    }
    train(trainer, &data, backend, &device, &out_dir, resume_from.map(|(_, d)| d))
}

/// The loop, on every rank alike: core's engine (nanoGPT's `train.py`: a step, then each periodic
/// job, which decides itself whether it is due), its output sent to files and the terminal.
fn train(
    mut trainer: Trainer,
    data: &Data,
    backend: Backend,
    device: &burn::tensor::Device,
    out_dir: &Path,
    resumed: Option<PathBuf>,
) -> Result<(), Error> {
    let rank0 = trainer.rank_and_world().0 == 0;
    let max_steps = trainer.config().max_steps;
    let tasks = crate::commands::eval::load_tasks(&trainer.config().zero_shot)?;
    let mut files = Files::open(out_dir, &trainer, data.tokenizer.to_json()?, resumed.is_some())?;
    let mut validation = Validation::new(&trainer, data.val.as_ref());
    let mut zero_shot = ZeroShot::new(&trainer, tasks, &data.tokenizer, device);
    let mut steps = Pretraining::new(&mut trainer, data.train.as_ref());
    let mut engine = Engine::new(steps.cadence(), resumed.map(|d| d.display().to_string()));
    let outcome = block_on(engine.run(&mut steps, max_steps, &mut [&mut validation, &mut zero_shot], &mut files))?;
    let (start_tokens, last) = (steps.start_tokens, steps.last);
    if outcome.interrupted && trainer.state().step < max_steps {
        files.exit_interrupted(trainer.state().step, engine.last_checkpoint.as_deref());
    }
    if !rank0 {
        return Ok(());
    }
    files.finish();
    let seconds = files.seconds();
    let finished = summary::Finished {
        seconds,
        start_tokens,
        last,
        validation: validation.last,
        zero_shot: zero_shot.last,
        checkpoint: engine.last_checkpoint,
        metrics: files.metrics_path,
    };
    summary::summary(&trainer, data, backend, device, finished)
}

/// What a run finds in its out_dir: a new run's refusal (or, with --overwrite, the earlier run's
/// files to remove), or the checkpoint to resume.
struct OutDir {
    earlier_run: Vec<PathBuf>,
    resume_from: Option<(u64, PathBuf)>,
}

/// A new run never mixes with another in the same folder: refused before any work, or (with
/// --overwrite) the earlier run's files are removed once the run is about to write.
fn claim_out_dir(
    config: &TrainConfig,
    out_dir: &Path,
    resume: bool,
    overwrite: bool,
    rank0: bool,
) -> Result<OutDir, Error> {
    let earlier_run = if !resume && rank0 { checkpoint::refuse_other_run(out_dir, overwrite)? } else { Vec::new() };
    let resume_from = match resume {
        true => Some(checkpoint::latest_intact(out_dir, rank0).map_err(|e| {
            let way_on = if checkpoint::run_files(out_dir).is_empty() {
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
        if let (Some(init), Some(out)) = (inside(Path::new(init)), inside(out_dir))
            && init.starts_with(&out)
        {
            return Err(Error::Refused(format!(
                "init_from {} lies in {}, which --overwrite would clear; copy it elsewhere first",
                init.display(),
                out.display()
            )));
        }
    }
    Ok(OutDir { earlier_run, resume_from })
}

/// The run's data, tokenized alike on every rank: rank 0 reads (or trains) the tokenizer, or takes
/// the resumed checkpoint's, and hands it to the others.
fn shared_data(
    config: &TrainConfig,
    model_config: &ModelConfig,
    resumed: Option<&Path>,
    collective: Option<&mut Box<dyn Collective>>,
) -> Result<Data, Error> {
    let resume_tokenizer = match resumed {
        Some(dir) => Some(Tokenizer::from_json(&checkpoint::read(dir, "tokenizer.json")?)?),
        None => None,
    };
    match collective {
        Some(c) if c.rank() != 0 => {
            let shared = c.broadcast_bytes(Vec::new())?;
            let (trained, json) =
                shared.split_first().ok_or_else(|| Error::Distributed("rank 0 sent no tokenizer".into()))?;
            let mut data = load_data(config, model_config, Some(Tokenizer::from_json(json)?))?;
            data.tokenizer_trained_here = *trained == 1;
            Ok(data)
        }
        Some(c) => {
            let data = load_data(config, model_config, resume_tokenizer)?;
            let mut shared = vec![data.tokenizer_trained_here as u8];
            shared.extend(data.tokenizer.to_json()?.into_bytes());
            c.broadcast_bytes(shared)?;
            Ok(data)
        }
        None => load_data(config, model_config, resume_tokenizer),
    }
}

/// Before any work: every tensor fits one binding, and the step's estimated peak fits the memory
/// (this process's share of it); the header's memory line.
fn check_memory(
    plan: &RunPlan,
    backend: Backend,
    device: &burn::tensor::Device,
    ranks: &Ranks,
) -> Result<String, Error> {
    let (world, local_world) = (ranks.world, ranks.local_world);
    let mut limits = crate::backend::limits(backend, device);
    if let Some(gib) = plan.config.max_memory_gib {
        limits.memory = Some((gib * (1u64 << 30) as f64) as u64);
        limits.device = format!("max_memory_gib ({})", limits.device);
    } else if backend == Backend::Flex && local_world > 1 {
        // The processes on this machine share its memory.
        limits.memory = limits.memory.map(|m| m / local_world as u64);
        limits.device = format!("{} (its share for {local_world} processes on this machine)", limits.device);
    }
    let peak = plan.check_fits(device, world, &limits)?;
    Ok(match limits.memory {
        Some(m) => format!(
            "estimated peak memory {} per process ({} has {})",
            footprint::human(peak.total),
            limits.device,
            footprint::human(m)
        ),
        None => format!("estimated peak memory {} per process", footprint::human(peak.total)),
    })
}
