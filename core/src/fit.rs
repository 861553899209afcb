//! Will it fit? Before any work, a run's tensors against what the device can hold: every parameter
//! and the largest activations against the largest buffer one tensor may occupy (on wgpu one
//! storage binding: the adapter's `maxStorageBufferBindingSize`, 128 MiB on lavapipe and in
//! WebGPU's defaults), and a training step's estimated peak against the memory (RAM on flex). A
//! refusal is one line naming the tensor or the estimate, the limit, and what to change — instead
//! of a device panic or the allocator's abort midway.

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::models::{MemoryDims, ModelConfig};
use crate::train::{Precision, TrainConfig};

/// What a device can hold, where it says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceLimits {
    /// The device as a refusal names it: `flex (CPU)`, `wgpu: llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub device: String,
    /// The largest buffer one tensor may occupy (wgpu: one storage binding); `None`: no such limit.
    pub max_binding: Option<u64>,
    /// The memory a run may use (RAM on flex; on wgpu where the API states the heap's size).
    pub memory: Option<u64>,
}

impl DeviceLimits {
    /// The limits `device` states: on wgpu its largest binding and (where the API says) its memory;
    /// elsewhere only `ram`, the machine's memory as the caller reads it (the browser cannot).
    pub fn of(device: &Device, name: impl Into<String>, ram: Option<u64>) -> Self {
        match hearth_shaders::memory::limits(device) {
            Some(l) => Self { device: name.into(), max_binding: Some(l.max_binding), memory: l.max_memory },
            None => Self { device: name.into(), max_binding: None, memory: ram },
        }
    }
}

/// A tensor a run allocates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSize {
    /// `transformer.wte.weight`, `logits`, …
    pub name: String,
    pub shape: Vec<usize>,
    pub bytes: u64,
}

impl TensorSize {
    fn new(name: impl Into<String>, shape: Vec<usize>, elem_bytes: u64) -> Self {
        let bytes = shape.iter().product::<usize>() as u64 * elem_bytes;
        Self { name: name.into(), shape, bytes }
    }
}

/// Every parameter's name and shape, without allocating the model (burn initialises lazily).
pub fn param_sizes(config: &ModelConfig) -> Vec<TensorSize> {
    config
        .init(&Device::flex())
        .param_shapes()
        .into_iter()
        .map(|(name, shape)| TensorSize::new(name, shape, 4))
        .collect()
}

/// The largest activations of a forward (and backward) over `batch` sequences of `seq` tokens:
/// the logits, the feed-forward's hidden layer, and the attention scores where attention runs
/// through burn's composition (`fused`: a kernel that never writes them, see [`fused_attention`]).
pub fn activation_sizes(
    config: &ModelConfig,
    batch: usize,
    seq: usize,
    fused: bool,
    training: bool,
) -> Vec<TensorSize> {
    let m = config.family().memory_dims();
    let mut out = vec![
        TensorSize::new("logits", vec![batch, seq, m.vocab], 4),
        TensorSize::new("feed-forward activations", vec![batch, seq, m.ffn], 4),
    ];
    if !attention_fused(&m, fused, training) {
        out.push(TensorSize::new("attention scores", vec![batch, m.heads, seq, seq], 4));
    }
    out
}

fn attention_fused(m: &MemoryDims, fused: bool, training: bool) -> bool {
    fused && m.fusable && !(training && m.attn_dropout > 0.0)
}

/// Refuses, naming the largest tensor that exceeds `limits.max_binding` and what to do, before a
/// device error could surface as a panic. `work`: what was asked ("training", "parity").
pub fn check_tensors(tensors: &[TensorSize], limits: &DeviceLimits, work: &str) -> Result<()> {
    let Some(limit) = limits.max_binding else { return Ok(()) };
    let Some(worst) = tensors.iter().filter(|t| t.bytes > limit).max_by_key(|t| t.bytes) else { return Ok(()) };
    let is_param = worst.name.contains('.');
    let fix = if is_param {
        "use another backend (--backend flex), or a smaller vocabulary or width"
    } else {
        "use a smaller batch_size or block_size (in training, grad_accum keeps the tokens per step), another backend (--backend flex), or a smaller vocabulary"
    };
    Err(Error::Refused(format!(
        "{work}: {} {:?} needs {} but one buffer on {} holds at most {} (the adapter's largest storage binding); {fix}",
        worst.name,
        worst.shape,
        human(worst.bytes),
        limits.device,
        human(limit)
    )))
}

/// Every parameter of `config` and the activations of `batch` sequences of `seq` tokens (see
/// [`activation_sizes`]) against the device's largest binding: the check each command makes before
/// it builds or loads a model.
pub fn check_model(
    config: &ModelConfig,
    (batch, seq): (usize, usize),
    fused: bool,
    training: bool,
    limits: &DeviceLimits,
    work: &str,
) -> Result<()> {
    let mut tensors = param_sizes(config);
    tensors.extend(activation_sizes(config, batch, seq, fused, training));
    check_tensors(&tensors, limits, work)
}

/// An inference input of `tokens` against the model and the device, before its forward: the
/// model's position table, one buffer per activation, and all of them together at most half the
/// memory (a T5's relative positions have no table, so a long input is stopped here, not by the
/// allocator). `work` names the command in the refusal.
pub fn check_input(config: &ModelConfig, tokens: usize, fused: bool, limits: &DeviceLimits, work: &str) -> Result<()> {
    if let Some(max) = config.max_positions()
        && tokens > max
    {
        return Err(Error::Refused(format!(
            "{work}: the input is {tokens} tokens, longer than the model's position table ({max}); shorten it"
        )));
    }
    let tensors = activation_sizes(config, 1, tokens, fused, false);
    check_tensors(&tensors, limits, work)?;
    let total: u64 = tensors.iter().map(|t| t.bytes).sum();
    match limits.memory {
        Some(memory) if total > memory / 2 => Err(Error::Refused(format!(
            "{work}: the input is {tokens} tokens, whose forward needs about {} of the {} {} has; shorten it",
            human(total),
            human(memory),
            limits.device
        ))),
        _ => Ok(()),
    }
}

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

fn param_count(config: &ModelConfig) -> u64 {
    param_sizes(config).iter().map(|t| t.bytes / 4).sum()
}

/// Whether attention on `device` takes a kernel that never stores the `T×T` scores (the WGSL
/// kernel on wgpu, the CPU kernel on flex; both take half-precision runs upcast), unless the run
/// turned them off (`fused_attention = false`).
pub fn fused_attention(device: &burn::tensor::Device, enabled: bool) -> bool {
    enabled && (crate::nn::attention::runs_wgsl(device) || hearth_shaders::cpu::applies(device))
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

/// `1.5 GiB`, `96.0 MiB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn parameters_are_sized_from_the_config_as_the_model_has_them() {
        let gpt2 = preset("gpt2-124m", &Default::default()).unwrap();
        let sizes = param_sizes(&gpt2);
        let total: u64 = sizes.iter().map(|t| t.bytes).sum();
        assert_eq!(total, 124_439_808 * 4);
        let wte = sizes.iter().find(|t| t.name == "transformer.wte.weight").unwrap();
        assert_eq!((wte.shape.clone(), wte.bytes), (vec![50257, 768], 154_389_504));
        // BERT too (whose padding row is left alone here), against the model itself.
        let bert = preset("bert-tiny", &Default::default()).unwrap();
        let model: Vec<(String, Vec<usize>)> = bert.init(&Device::flex()).param_shapes();
        let sized: Vec<(String, Vec<usize>)> = param_sizes(&bert).into_iter().map(|t| (t.name, t.shape)).collect();
        assert_eq!(sized, model);
    }

    #[test]
    fn a_tensor_over_the_binding_limit_is_refused_naming_it() {
        let gpt2 = preset("gpt2-124m", &Default::default()).unwrap();
        let lavapipe = DeviceLimits { device: "wgpu: llvmpipe".into(), max_binding: Some(128 << 20), memory: None };
        let err = check_tensors(&param_sizes(&gpt2), &lavapipe, "parity").unwrap_err().to_string();
        assert_eq!(
            err,
            "parity: transformer.wte.weight [50257, 768] needs 147.2 MiB but one buffer on wgpu: llvmpipe holds at most \
             128.0 MiB (the adapter's largest storage binding); use another backend (--backend flex), or a smaller \
             vocabulary or width"
        );
        // The tiny model fits, its logits too; a large batch's logits do not.
        let tiny = preset("gpt-tiny", &Default::default()).unwrap();
        assert!(check_training(&tiny, &run(16, 128), 1, true, &lavapipe).is_ok());
        let err = check_training(&tiny, &run(512, 128), 1, true, &lavapipe).unwrap_err().to_string();
        assert!(err.starts_with("training: logits [512, 128, 1024] needs 256.0 MiB"), "{err}");
        assert!(err.contains("smaller batch_size"), "{err}");
        // Unfused attention's scores count (flex has no binding limit, so only wgpu is checked);
        // the fused kernel writes none, unless attention dropout sends training to the composition.
        let scores = |config: &ModelConfig, fused, training| {
            activation_sizes(config, 4, 128, fused, training).into_iter().any(|t| t.name == "attention scores")
        };
        assert!(activation_sizes(&tiny, 4, 128, false, true).contains(&TensorSize::new(
            "attention scores",
            vec![4, 4, 128, 128],
            4
        )));
        assert!(scores(&tiny, true, true), "attn_pdrop 0.1 while training: the composition");
        assert!(!scores(&tiny, true, false), "inference: the fused kernel");
        let mut no_dropout = tiny.clone();
        no_dropout.set_dropout(0.0);
        assert!(!scores(&no_dropout, true, true));
        let t5 = preset("t5-tiny", &Default::default()).unwrap();
        assert!(scores(&t5, true, false), "T5's relative bias always takes the composition");
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
