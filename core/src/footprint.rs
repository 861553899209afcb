//! A model's footprint against what the device can hold, before any work: every parameter and the
//! largest activations against the largest buffer one tensor may occupy (on wgpu one storage
//! binding: the adapter's `maxStorageBufferBindingSize`, 128 MiB on lavapipe and in WebGPU's
//! defaults), and an inference input against the position table and the memory. A training step's
//! peak is estimated above this, in `train::footprint`. A refusal is one line naming the tensor or
//! the estimate, the limit, and what to change — instead of a device panic or the allocator's
//! abort midway.

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::models::{MemoryDims, ModelConfig};

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

pub(crate) fn attention_fused(m: &MemoryDims, fused: bool, training: bool) -> bool {
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

/// Parameters of `config`, counted from their sizes.
pub(crate) fn param_count(config: &ModelConfig) -> u64 {
    param_sizes(config).iter().map(|t| t.bytes / 4).sum()
}

/// Whether attention on `device` takes a kernel that never stores the `T×T` scores (the WGSL
/// kernel on wgpu, the CPU kernel on flex; both take half-precision runs upcast), unless the run
/// turned them off (`fused_attention = false`).
pub fn fused_attention(device: &burn::tensor::Device, enabled: bool) -> bool {
    enabled && (crate::nn::attention::runs_wgsl(device) || hearth_shaders::cpu::applies(device))
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
        assert!(check_model(&tiny, (16, 128), true, true, &lavapipe, "training").is_ok());
        let err = check_model(&tiny, (512, 128), true, true, &lavapipe, "training").unwrap_err().to_string();
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
}
