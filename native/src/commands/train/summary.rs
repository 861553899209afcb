//! What `hearth train` prints around the loop: the header (model, data, steps, memory), and at
//! the end the summary (speed, losses beside the unigram baseline, where everything is) with a
//! sample of what the model learned.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use hearth_core::eval::TaskResult;
use hearth_core::generate::{Sampling, fill_mask, generate, text2text};
use hearth_core::models::{LanguageModel, Model};
use hearth_core::objectives::Rng;
use hearth_core::readback::block_on;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::{Precision, StepStats, TrainConfig};
use hearth_core::train::{TokenSource, Trainer};
use hearth_core::{Backend, Error};
use rand::SeedableRng;

use super::dataset::Data;
use crate::report::{loss_curve_svg, read_curves};
use crate::storage::checkpoint;

/// The lines before the first step.
pub fn header(
    trainer: &Trainer,
    data: &Data,
    backend: Backend,
    out_dir: &Path,
    lines: &[&str],
    resumed: Option<&Path>,
) {
    let config = trainer.config();
    let (_, world) = trainer.rank_and_world();
    let tokens_per_step = config.batch_size * config.block_size * config.accumulation();
    println!(
        "hearth: {} ({:.2}M parameters) on {backend}, {}, data: {} ({} train / {} val tokens, {})",
        trainer.model_config().model_type(),
        trainer.num_params() as f64 / 1e6,
        trainer.objective_name(),
        data.source,
        data.train.len(),
        data.val.len(),
        match (data.tokenizer.vocab_size(), trainer.model_config().vocab_size()) {
            (tokens, rows) if tokens == rows => format!("vocabulary {tokens}"),
            (tokens, rows) => format!("vocabulary {tokens}, embedding table {rows} rows (vocab_size)"),
        }
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
    for line in lines {
        println!("         {line}");
    }
    let precision = trainer.precision();
    if world > 1 || precision != Precision::F32 || config.gradient_checkpointing {
        println!(
            "         {} compute{}{}{}",
            precision.name(),
            if precision == Precision::F32 { "" } else { " (f32 master weights)" },
            if config.gradient_checkpointing { ", activation checkpointing per block" } else { "" },
            match (world, config.zero_stage) {
                (1, _) => String::new(),
                (w, 1) => format!(", {w} data-parallel ranks, ZeRO stage 1 (optimizer state sharded)"),
                (w, _) =>
                    format!(", {w} data-parallel ranks ({} sequences each per micro-batch)", config.batch_size / w),
            }
        );
    }
    if let Some(dir) = resumed {
        println!("         resuming at step {} from {}", trainer.state().step, dir.display());
    }
}

/// What the loop leaves for the summary: its time, its jobs' last results, where things are.
pub struct Finished {
    pub seconds: f64,
    /// The run's tokens when this process started training.
    pub start_tokens: u64,
    pub last: Option<StepStats>,
    pub validation: Option<f64>,
    pub zero_shot: Option<Vec<TaskResult>>,
    pub checkpoint: Option<String>,
    pub metrics: PathBuf,
}

/// The jobs' results after the last step, the loss curve, and a sample from the model.
pub fn summary(trainer: &Trainer, data: &Data, backend: Backend, device: &Device, run: Finished) -> Result<(), Error> {
    let config: &TrainConfig = trainer.config();
    let model_config = trainer.model_config();
    let elapsed = run.seconds;
    let (train_curve, val_curve) = read_curves(&run.metrics);
    let curve = run.metrics.with_file_name("loss_curve.svg");
    let svg = loss_curve_svg(&train_curve, &val_curve, &format!("{} · {}", model_config.model_type(), data.source));
    if let Err(e) = checkpoint::write_atomic(&curve, svg.as_bytes()) {
        // The run and its checkpoints are complete; only the picture is missing.
        eprintln!("warning: {e}; the metrics are in {}", run.metrics.display());
    }

    println!("\n== summary");
    let tokens = trainer.state().tokens - run.start_tokens;
    println!(
        "steps {}  tokens {}  time {:.1}s  {:.0} tokens/s on {backend}",
        trainer.state().step,
        tokens,
        elapsed,
        tokens as f64 / elapsed.max(1e-9)
    );
    if let Some(s) = run.last {
        println!("final train loss {:.4}", s.loss);
    }
    let causal = model_config.family().objectives()[0] == hearth_core::models::Objective::Causal;
    if let (Some(val), true) = (run.validation, causal) {
        let baseline = unigram_baseline(data.train.as_ref(), data.val.as_ref(), data.tokenizer.vocab_size());
        println!(
            "validation loss {val:.4} (perplexity {:.2}); unigram baseline {baseline:.4} (perplexity {:.2})",
            val.exp(),
            baseline.exp()
        );
    } else if let Some(val) = run.validation {
        println!("validation loss {val:.4} (perplexity {:.2})", val.exp());
    }
    if let Some(dir) = &run.checkpoint {
        println!("checkpoint {dir} (HF format: config.json, model.safetensors, tokenizer.json)");
    }
    if let Some(results) = &run.zero_shot {
        println!("zero-shot ({} examples per task at most):", config.zero_shot_limit);
        crate::commands::eval::print_zero_shot(results);
    }
    println!("metrics {}  loss curve {}", run.metrics.display(), curve.display());
    show_what_it_learned(trainer.inference_model(), &data.tokenizer, device, config.seed)
}

/// What the trained model does, by what it can: a sample (a causal LM), a filled [MASK] (a masked
/// LM) or a filled span (an encoder-decoder).
fn show_what_it_learned(model: Model, tokenizer: &Tokenizer, device: &Device, seed: u64) -> Result<(), Error> {
    let mut rng = Rng::seed_from_u64(seed);
    if let Some(m) = model.causal_lm() {
        let prompt = "It is a truth universally acknowledged";
        let ids = tokenizer.encode(prompt)?;
        let out = block_on(generate(m, &ids, 80, Sampling::default(), tokenizer.eos_id(), &mut rng, device))?;
        println!("\nsample (temperature 0.8, top-k 40):\n  {prompt}{}", tokenizer.decode(&out)?);
    } else if let Some(m) = model.masked_lm() {
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
        println!("\nfill-mask: \"it is a truth universally acknowledged that a [MASK] man\" → {}", shown.join(", "));
    } else if let Some(m) = model.seq2seq_lm() {
        let s0 = tokenizer.sentinel_ids().first().copied().unwrap_or(0);
        let mut ids = tokenizer.encode("It is a truth universally")?;
        ids.push(s0);
        ids.extend(tokenizer.encode("that a single man in possession of a good fortune")?);
        let eos = tokenizer.eos_id().unwrap_or(1);
        ids.push(eos);
        let out = block_on(text2text(m, &ids, eos, 20, Sampling::GREEDY, &mut rng, device))?;
        println!(
            "\nspan filling: \"It is a truth universally <extra_id_0> that a single man …\" → {}",
            tokenizer.decode(&out)?
        );
    }
    Ok(())
}

/// Cross-entropy (nats/token) of `val` under the unigram distribution of `train` (add-one
/// smoothed): the loss of a model that ignores context, the baseline a trained model must beat.
fn unigram_baseline(train: &dyn TokenSource, val: &dyn TokenSource, vocab: usize) -> f64 {
    let mut counts = vec![1.0f64; vocab];
    let mut buf = vec![0u32; 1 << 16];
    let mut start = 0;
    while start < train.len() {
        let n = buf.len().min(train.len() - start);
        train.read(start, &mut buf[..n]);
        for &t in &buf[..n] {
            counts[(t as usize).min(vocab - 1)] += 1.0;
        }
        start += n;
    }
    let total: f64 = counts.iter().sum();
    let mut nll = 0.0;
    let mut start = 0;
    while start < val.len() {
        let n = buf.len().min(val.len() - start);
        val.read(start, &mut buf[..n]);
        nll -= buf[..n].iter().map(|&t| (counts[(t as usize).min(vocab - 1)] / total).ln()).sum::<f64>();
        start += n;
    }
    nll / val.len().max(1) as f64
}
