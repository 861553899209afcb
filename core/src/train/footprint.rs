//! A training step's estimated peak memory against the machine's (RAM on flex, the heap where the
//! API states it), and the switches that would make a run fit: the step's part of the footprint
//! (`crate::footprint` sizes the tensors).

use crate::error::{Error, Result};
use crate::footprint::{DeviceLimits, attention_fused, check_model, human, param_count};
use crate::models::ModelConfig;
use crate::train::{Precision, TrainConfig};

/// A training step's estimated peak memory, in bytes, by part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeakEstimate {
    /// f32 weights and gradients, AdamW's two moments (this rank's share under ZeRO-1), and the
    /// half-precision copy in mixed precision.
    pub state: u64,
    /// What the blocks keep for backward.
    pub activations: u64,
    /// The logits, their log-softmax and gradient.
    pub logits: u64,
    pub total: u64,
}

/// The process itself: code, tokenizer, data, allocator slack.
const BASELINE: u64 = 160 << 20;

/// Estimates one process's peak memory for a training step of `run` on `world` data-parallel
/// ranks. The model of what burn keeps (per block: about 9 `d`-wide and 3 feed-forward-wide
/// tensors and 4 copies of the attention scores; with activation checkpointing the matmul
/// outputs, 6 + 1 + 1, and one block recomputed; 5 logit-sized tensors for the loss) was fitted to
/// measured peaks (`hearth bench memory`, flex): GPT-2 124M at 2 × 1024 measured 9199 MiB (f32),
/// 5446 (checkpointing), 7619 (bf16). T5's decoder sees the span-corruption targets, about a
/// quarter of the block.
pub fn training_peak(config: &ModelConfig, run: &TrainConfig, world: usize, fused: bool) -> PeakEstimate {
    peak(config, param_count(config), run, world, fused)
}

/// [`training_peak`] for a model of `params` parameters (counted once by callers that estimate
/// several variants of a run).
fn peak(config: &ModelConfig, params: u64, run: &TrainConfig, world: usize, fused: bool) -> PeakEstimate {
    let m = config.family().memory_dims();
    let half = run.precision != Precision::F32;
    let optimizer_share = if run.zero_stage == 1 { world.max(1) as u64 } else { 1 };
    let state = params * 8 + params * 8 / optimizer_share + if half { params * 4 } else { 0 };

    let b = (run.batch_size / world.max(1)).max(1) as u64;
    let t = run.block_size as u64;
    let t_dec = if m.decoder_layers > 0 { t.div_ceil(4) } else { 0 };
    let e: u64 = if half { 2 } else { 4 };
    let (d, ffn, h) = (m.d as u64, m.ffn as u64, m.heads as u64);
    // Scores: the softmax runs in f32 whatever the compute dtype.
    let score_bytes = if half { 3 } else { 4 };
    let fused = attention_fused(&m, fused, true);
    // What one block keeps for `tq` query positions attending over each of `keys`.
    let block = |tq: u64, keys: &[u64], all: bool| {
        let (widths, copies) = if all { (9 * d + 3 * ffn, 4) } else { (6 * d + ffn, 1) };
        let scores: u64 = if fused { 0 } else { keys.iter().map(|tk| b * h * tq * tk * score_bytes).sum() };
        b * tq * widths * e + copies * scores
    };
    let (enc, dec) = (m.layers as u64, m.decoder_layers as u64);
    let activations = if run.gradient_checkpointing {
        let recomputed = block(t, &[t], true).max(block(t_dec, &[t_dec, t], true));
        enc * block(t, &[t], false) + dec * block(t_dec, &[t_dec, t], false) + recomputed
    } else {
        enc * block(t, &[t], true) + dec * block(t_dec, &[t_dec, t], true)
    };
    let t_out = if dec > 0 { t_dec } else { t };
    let logits = b * t_out * m.vocab as u64 * (e + 4 * 4);
    PeakEstimate { state, activations, logits, total: BASELINE + state + activations + logits }
}

/// Refuses a training run whose estimated peak exceeds `limits.memory`, with the estimate and
/// what each switch would bring it to; also checks every tensor against the largest binding.
/// Returns the estimate.
pub fn check_training(
    config: &ModelConfig,
    run: &TrainConfig,
    world: usize,
    fused: bool,
    limits: &DeviceLimits,
) -> Result<PeakEstimate> {
    let local_batch = (run.batch_size / world.max(1)).max(1);
    check_model(config, (local_batch, run.block_size), fused, true, limits, "training")?;
    let params = param_count(config);
    let estimate = peak(config, params, run, world, fused);
    let Some(memory) = limits.memory else { return Ok(estimate) };
    if estimate.total <= memory {
        return Ok(estimate);
    }
    let with = |change: &dyn Fn(&mut TrainConfig)| {
        let mut c = run.clone();
        change(&mut c);
        peak(config, params, &c, world, fused).total
    };
    // Each switch alone, then the largest batch that fits with every switch on.
    let mut fixes = Vec::new();
    if !run.gradient_checkpointing {
        fixes.push(format!("gradient_checkpointing = true ({})", human(with(&|c| c.gradient_checkpointing = true))));
    }
    if run.precision == Precision::F32 {
        fixes.push(format!("precision = \"bf16\" ({})", human(with(&|c| c.precision = Precision::Bf16))));
    }
    let all_on = |c: &mut TrainConfig| {
        c.gradient_checkpointing = true;
        if c.precision == Precision::F32 {
            c.precision = Precision::Bf16;
        }
    };
    let ranks = world.max(1);
    let mut batch = run.batch_size;
    let with_all = |batch: usize| {
        with(&|c| {
            all_on(c);
            c.batch_size = batch;
        })
    };
    while batch > ranks && with_all(batch) > memory {
        batch = (batch / 2).max(ranks);
    }
    let fits = with_all(batch);
    let one_switch_fits = (!run.gradient_checkpointing && with(&|c| c.gradient_checkpointing = true) <= memory)
        || (run.precision == Precision::F32 && with(&|c| c.precision = Precision::Bf16) <= memory);
    if fits <= memory && batch == run.batch_size && fixes.len() > 1 && !one_switch_fits {
        // Neither switch alone fits, both together do at this batch size.
        fixes.push(format!("gradient_checkpointing and bf16 together ({})", human(fits)));
    }
    if fits <= memory && batch < run.batch_size {
        let mut together: Vec<&str> = Vec::new();
        if !run.gradient_checkpointing {
            together.push("gradient_checkpointing");
        }
        if run.precision == Precision::F32 {
            together.push("bf16");
        }
        together.push("");
        fixes.push(format!(
            "{}batch_size = {batch} with grad_accum = {} for the same tokens per step ({})",
            together.join(" and "),
            run.accumulation() * run.batch_size.div_ceil(batch),
            human(fits)
        ));
    }
    let advice = if fits > memory {
        format!(
            "even with every switch and batch_size = {batch} it needs {}: train a smaller model or block_size, or shard it over more processes (zero_stage = 1)",
            human(fits)
        )
    } else {
        format!("make it fit with {}", fixes.join(", or "))
    };
    Err(Error::Refused(format!(
        "training needs about {} at its peak (weights and optimizer {}, activations {}, logits {}) but {} has {}; {advice}",
        human(estimate.total),
        human(estimate.state),
        human(estimate.activations),
        human(estimate.logits),
        limits.device,
        human(memory),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::footprint::fused_attention;
    use crate::models::presets::preset;

    fn run(batch: usize, block: usize) -> TrainConfig {
        TrainConfig { batch_size: batch, block_size: block, ..Default::default() }
    }

    #[test]
    fn the_estimate_tracks_measured_peaks() {
        // `hearth bench memory --preset gpt2-124m --batch-size 2 --seq 1024` on flex (README,
        // "Memory, and many GPUs"): peak RSS per process.
        let gpt2 = preset("gpt2-124m", &Default::default()).unwrap();
        let mib = |c: &TrainConfig, world| training_peak(&gpt2, c, world, false).total as f64 / (1 << 20) as f64;
        let f32_run = run(2, 1024);
        let ckpt = TrainConfig { gradient_checkpointing: true, ..run(2, 1024) };
        let bf16 = TrainConfig { precision: Precision::Bf16, ..run(2, 1024) };
        let zero = TrainConfig { zero_stage: 1, ..run(2, 1024) };
        // And small runs (`hearth train --preset P --max-steps 20`, peak RSS of the whole process,
        // flex, 2026-12): the tokenizer's vocabulary, batch 16 (gpt-10m: 8) × 128.
        let small = |name: &str, vocab: usize, batch: usize| {
            let mut c = preset(name, &Default::default()).unwrap();
            c.set_vocab_size(vocab);
            training_peak(&c, &run(batch, 128), 1, false).total as f64 / (1 << 20) as f64
        };
        for (what, estimate, measured) in [
            ("gpt-tiny", small("gpt-tiny", 1024, 16), 328.5),
            ("bert-tiny", small("bert-tiny", 1024, 16), 212.4),
            ("t5-tiny", small("t5-tiny", 1024, 16), 245.5),
            ("gpt-10m", small("gpt-10m", 7322, 8), 780.6),
        ] {
            let ratio = estimate / measured;
            eprintln!("{what}: estimated {estimate:.0} MiB, measured {measured} ({ratio:.2})");
            assert!(
                (0.75..1.35).contains(&ratio),
                "{what}: estimated {estimate:.0} MiB, measured {measured} ({ratio:.2})"
            );
        }
        for (what, estimate, measured) in [
            ("f32", mib(&f32_run, 1), 9199.0),
            ("checkpointing", mib(&ckpt, 1), 5446.0),
            ("bf16", mib(&bf16, 1), 7619.0),
            ("f32 DDP, 2 ranks", mib(&f32_run, 2), 6078.0),
            ("f32 ZeRO-1, 2 ranks", mib(&zero, 2), 5641.0),
        ] {
            let ratio = estimate / measured;
            eprintln!("{what}: estimated {estimate:.0} MiB, measured {measured} ({ratio:.2})");
            assert!(
                (0.8..1.25).contains(&ratio),
                "{what}: estimated {estimate:.0} MiB, measured {measured} ({ratio:.2})"
            );
        }
    }

    #[test]
    fn flex_attention_stores_no_scores_in_either_precision() {
        let flex = burn::tensor::Device::flex();
        assert!(fused_attention(&flex, true));
        assert!(!fused_attention(&flex, false), "turned off by the run");
        let mut gpt2 = preset("gpt2-124m", &Default::default()).unwrap();
        gpt2.set_dropout(0.0); // active attention dropout takes the composition on every backend
        let run = |precision| TrainConfig { batch_size: 8, block_size: 1024, precision, ..TrainConfig::default() };
        for precision in [Precision::F32, Precision::Bf16] {
            let on = training_peak(&gpt2, &run(precision), 1, fused_attention(&flex, true));
            let off = training_peak(&gpt2, &run(precision), 1, false);
            assert!(on.activations < off.activations, "{precision:?}: the kernel keeps no scores");
        }
    }

    #[test]
    fn a_run_over_the_memory_is_refused_with_the_switches_that_fit() {
        let gpt2 = preset("gpt2-124m", &Default::default()).unwrap();
        let machine = DeviceLimits { device: "flex (CPU)".into(), max_binding: None, memory: Some(8 << 30) };
        assert!(
            check_training(&gpt2, &TrainConfig { gradient_checkpointing: true, ..run(1, 1024) }, 1, false, &machine)
                .is_ok()
        );
        let err = check_training(&gpt2, &run(8, 1024), 1, false, &machine).unwrap_err().to_string();
        assert!(err.starts_with("training needs about "), "{err}");
        assert!(err.contains("but flex (CPU) has 8.0 GiB"), "{err}");
        for fix in [
            "gradient_checkpointing = true (",
            "precision = \"bf16\" (",
            "gradient_checkpointing and bf16 and batch_size = 2 with grad_accum = 4",
        ] {
            assert!(err.contains(fix), "{fix}: {err}");
        }
        assert!(!err.contains('\n'));
        // Nothing fits: said so, with what it would take.
        let small = DeviceLimits { memory: Some(1 << 30), ..machine };
        let err = check_training(&gpt2, &run(8, 1024), 1, false, &small).unwrap_err().to_string();
        assert!(err.contains("even with every switch and batch_size = 1 it needs"), "{err}");
    }
}
