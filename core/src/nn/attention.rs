//! Scaled dot-product attention, the one function every family calls.
//!
//! `softmax(q·kᵀ·scale + bias, masked) · v`, written as HF's "eager" attention does it: masked
//! scores are set to the lowest finite f32 (`torch.finfo(float32).min`), so a row whose keys are all
//! masked gets a uniform distribution rather than NaN.

use burn::nn::Dropout;
use burn::tensor::{Bool, DType, Device, Int, Tensor, activation::softmax};

use super::dtype::{downcast, upcast};

/// What HF fills masked scores with.
pub const MASKED_SCORE: f32 = f32::MIN;

thread_local! {
    /// The attention weights of every call, in call order, while [`recording_attention`] runs.
    static RECORDED: std::cell::RefCell<Option<Vec<Tensor<4>>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `forward` and returns, beside its result, the attention weights `[b, h, tq, tk]` of every
/// attention call it made on this thread, in call order (each row sums to 1; dropout is not
/// applied to them). The calls go through the composition, which computes the weights, rather than
/// a fused kernel, which never writes them.
pub fn recording_attention<R>(forward: impl FnOnce() -> R) -> (R, Vec<Tensor<4>>) {
    RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = forward();
    (out, RECORDED.with(|r| r.borrow_mut().take().unwrap_or_default()))
}

fn recording() -> bool {
    RECORDED.with(|r| r.borrow().is_some())
}

/// Additive terms and masks over the `[batch, heads, q_len, k_len]` score matrix; each broadcasts.
///
/// The two masks every family builds are kept in structured form (`causal`, `key_padding`) so the
/// fused kernel can apply them without the `[tq, tk]` matrix; `mask` holds any other boolean mask.
#[derive(Clone, Debug)]
pub struct AttentionBias {
    /// Added to the scores before masking (T5's relative position bias), `[1|b, h, tq, tk]`.
    pub additive: Option<Tensor<4>>,
    /// `true` where a query must not see a key, `[1|b, 1|h, 1|tq, tk]` (any mask not expressed by
    /// `causal` and `key_padding`; it sends the call to the composition).
    pub mask: Option<Tensor<4, Bool>>,
    /// Query `i` does not see key `j > i + tk - tq` (for `tq == tk`: the future).
    pub causal: bool,
    /// `true` where a key is padding, `[b, tk]`.
    pub key_padding: Option<Tensor<2, Bool>>,
    /// Use the fused WGSL kernel where it applies (wgpu backend, no additive bias, no general mask,
    /// no active attention dropout); otherwise, and when this is off, the composition below.
    pub fused: bool,
}

impl Default for AttentionBias {
    fn default() -> Self {
        AttentionBias { additive: None, mask: None, causal: false, key_padding: None, fused: true }
    }
}

impl AttentionBias {
    /// Adds a general boolean mask (ORed with any earlier one).
    pub fn with_mask(mut self, mask: Tensor<4, Bool>) -> Self {
        self.mask = Some(match self.mask.take() {
            None => mask,
            Some(m) => {
                let shape = broadcast_shape(m.dims(), mask.dims());
                m.expand(shape).bool_or(mask.expand(shape))
            }
        });
        self
    }

    /// Adds the causal mask (see [`causal_mask`]).
    pub fn with_causal(mut self) -> Self {
        self.causal = true;
        self
    }

    /// Masks the padding keys of an HF `attention_mask` `[b, tk]` (`1` = attend, `0` = padding).
    pub fn with_key_padding(mut self, attention_mask: Tensor<2, Int>) -> Self {
        let padding = attention_mask.equal_elem(0);
        self.key_padding = Some(match self.key_padding.take() {
            None => padding,
            Some(p) => p.bool_or(padding),
        });
        self
    }

    pub fn with_additive(mut self, bias: Tensor<4>) -> Self {
        self.additive = Some(bias);
        self
    }

    /// Turns the fused kernel on or off for the calls that use this bias.
    pub fn with_fused(mut self, fused: bool) -> Self {
        self.fused = fused;
        self
    }

    /// Every mask as one boolean tensor that broadcasts over `[b, h, tq, tk]`, for the composition.
    pub fn combined_mask(&self, tq: usize, tk: usize, device: &Device) -> Option<Tensor<4, Bool>> {
        let mut all = AttentionBias { mask: self.mask.clone(), ..AttentionBias::default() };
        if self.causal {
            all = all.with_mask(causal_mask(tq, tk, device));
        }
        if let Some(padding) = &self.key_padding {
            all = all.with_mask(padding.clone().unsqueeze_dims::<4>(&[1, 2]));
        }
        all.mask
    }
}

fn broadcast_shape(a: [usize; 4], b: [usize; 4]) -> [usize; 4] {
    std::array::from_fn(|i| a[i].max(b[i]))
}

/// `true` where query `i` may not see key `j > i + tk - tq` (for `tq == tk`: the future). `[1, 1, tq, tk]`
/// (burn names masks after the part they keep: `tril_mask` is true outside the lower triangle.)
pub fn causal_mask(tq: usize, tk: usize, device: &Device) -> Tensor<4, Bool> {
    Tensor::<2, Bool>::tril_mask([tq, tk], tk as i64 - tq as i64, device).unsqueeze::<4>()
}

/// How many fused attention forwards this thread has launched: lets tests assert that a model
/// really took the fused path (the counter is per thread, so parallel tests do not mix).
pub fn fused_launches() -> u64 {
    hearth_shaders::attention::fused_launches()
}

/// Whether a device runs the hand-written WGSL kernels: burn's wgpu backend with its WGSL compiler
/// (browsers' WebGPU, Metal, DX12, and Vulkan where WGSL is chosen), autodiff or not. Under the
/// SPIR-V compiler (Vulkan on a hardware adapter) and on CUDA a WGSL template cannot be loaded, and
/// attention takes burn's composition there (see [`attention_path`]).
pub fn runs_wgsl(device: &Device) -> bool {
    hearth_shaders::device::shader_language(device) == Some(hearth_shaders::device::ShaderLanguage::Wgsl)
}

/// Which attention a model on `device` runs where nothing else sends it to the composition (no
/// additive bias, no general mask, no active dropout), for the run's header; `half`: the run
/// computes in f16 or bf16.
pub fn attention_path(device: &Device, fused: bool, half: Option<DType>) -> &'static str {
    use hearth_shaders::device::ShaderLanguage;
    if !fused {
        return "burn's composition (fused_attention = false)";
    }
    if hearth_shaders::cpu::applies(device) {
        return match half {
            Some(_) => "the fused CPU kernel (in f32)",
            None => "the fused CPU kernel",
        };
    }
    match hearth_shaders::device::shader_language(device) {
        Some(ShaderLanguage::Wgsl) => match half {
            Some(DType::F16) => "the fused WGSL kernel in f16 (f32 accumulation)",
            Some(_) => "the fused WGSL kernel (in f32: WGSL has no bf16)",
            None => "the fused WGSL kernel",
        },
        Some(ShaderLanguage::SpirV) => {
            "burn's composition (the fused kernel is WGSL, which the SPIR-V compiler cannot load; --backend webgpu runs it)"
        }
        Some(ShaderLanguage::Other(_)) => {
            "burn's composition (the fused kernel is WGSL, which this runtime cannot load)"
        }
        None => "burn's composition",
    }
}

/// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]` -> `[b, h, tq, dh]`
///
/// On wgpu under the WGSL compiler, with `bias.fused`, this runs the fused kernel of `hearth_shaders::attention` (forward
/// and backward, memory linear in the sequence length), and on flex the CPU kernel of
/// `hearth_shaders::attention::cpu` (the same, threaded per head), unless one of these sends it
/// to the composition: an additive bias (T5 self-attention's relative position bias, which needs its own
/// O(T²) gradient), a general `mask`, attention dropout that is active (training with `p > 0`), or
/// shapes the kernel does not take (head dim not a multiple of 4 or above 256, k/v batch or heads
/// broadcast on wgpu). Every other backend (SPIR-V, CUDA) uses the composition. f16 inputs run the
/// f16 WGSL kernel (f32 accumulation); bf16 ones (and f16 on the CPU) the f32 kernel on upcast q, k,
/// v, as the composition upcasts its softmax.
pub fn scaled_dot_product_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: &AttentionBias,
    scale: Option<f64>,
    dropout: &Dropout,
) -> Tensor<4> {
    let dropout_active = dropout.prob > 0.0 && dropout.training.is_enabled() && q.device().is_autodiff();
    // What sends every backend to the composition; then each kernel's own device and shapes.
    let kernel_may_run =
        bias.fused && bias.additive.is_none() && bias.mask.is_none() && !dropout_active && !recording();
    let wgpu =
        kernel_may_run && runs_wgsl(&q.device()) && hearth_shaders::attention::supports(q.dims(), k.dims(), v.dims());
    let cpu = kernel_may_run
        && hearth_shaders::cpu::applies(&q.device())
        && hearth_shaders::attention::cpu::supports(q.dims(), k.dims(), v.dims());
    let (causal, padding, scale_f) = (bias.causal, bias.key_padding.clone(), scale.unwrap_or(1.0));
    if wgpu && q.dtype() == DType::F16 {
        // The WGSL kernels keep f16 q, k, v, O and gradients in f16 and accumulate in f32.
        return fused_attention(q, k, v, causal, padding, scale_f);
    }
    if wgpu || cpu {
        // f32 kernels: other half-precision q, k, v (bf16; f16 on the CPU) are upcast around them,
        // as the composition upcasts its softmax.
        let (q, dtype) = upcast(q);
        let (k, v) = (upcast(k).0, upcast(v).0);
        let o = match wgpu {
            true => fused_attention(q, k, v, causal, padding, scale_f),
            false => hearth_shaders::attention::cpu::attention(q, k, v, causal, padding, scale_f as f32),
        };
        return downcast(o, dtype);
    }
    let (k, v) = (repeat_kv(k, q.dims()[1]), repeat_kv(v, q.dims()[1]));
    composed_attention(q, k, v, bias, scale, dropout)
}

/// Grouped-query attention for the composition: `[b, kv, t, dh]` with each key/value head repeated
/// for the `heads / kv` query heads it serves -> `[b, heads, t, dh]` (HF's `repeat_kv`). The fused
/// kernels read the shared head instead.
pub fn repeat_kv(x: Tensor<4>, heads: usize) -> Tensor<4> {
    let [b, kv, t, dh] = x.dims();
    if kv == heads {
        return x;
    }
    assert!(kv > 0 && heads % kv == 0, "{heads} query heads do not group over {kv} key/value heads");
    x.unsqueeze_dim::<5>(2).expand([b, kv, heads / kv, t, dh]).reshape([b, heads, t, dh])
}

/// The fused kernel (wgpu under the WGSL compiler only; see [`scaled_dot_product_attention`] for when it applies).
pub fn fused_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    causal: bool,
    key_padding: Option<Tensor<2, Bool>>,
    scale: f64,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    use hearth_shaders::attention::FusedAttentionOps;
    let has_padding = key_padding.is_some();
    let padding = match key_padding {
        Some(p) => p.int(),
        None => Tensor::<2, Int>::zeros([1, 1], &q.device()),
    };
    Tensor::from_dispatch(Dispatch::fused_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        padding.into_dispatch(),
        scale as f32,
        causal,
        has_padding,
    ))
}

/// burn's composition: the scores `[b, h, tq, tk]` materialised, HF eager semantics.
pub fn composed_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: &AttentionBias,
    scale: Option<f64>,
    dropout: &Dropout,
) -> Tensor<4> {
    let (tq, tk) = (q.dims()[2], k.dims()[2]);
    let device = q.device();
    // The scale goes on q ([.., tq, dh]) rather than on the scores ([.., tq, tk]): one pass over the
    // smaller tensor, forward and backward, whenever tk > dh.
    let q = match scale {
        Some(scale) => q * scale,
        None => q,
    };
    // Half-precision scores are upcast: the bias, the mask and the softmax run in f32.
    let (mut scores, dtype) = upcast(q.matmul(k.swap_dims(2, 3))); // [b, h, tq, tk]
    if let Some(additive) = &bias.additive {
        scores = scores + upcast(additive.clone()).0;
    }
    if let Some(mask) = bias.combined_mask(tq, tk, &device) {
        let shape = scores.dims();
        scores = scores.mask_fill(mask.expand(shape), MASKED_SCORE);
    }
    let probs = downcast(softmax(scores, 3), dtype);
    RECORDED.with(|r| {
        if let Some(recorded) = r.borrow_mut().as_mut() {
            recorded.push(probs.clone());
        }
    });
    dropout.forward(probs).matmul(v)
}

/// `[b, t, h·dh]` -> `[b, h, t, dh]`
pub fn split_heads(x: Tensor<3>, n_heads: usize) -> Tensor<4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, n_heads, d / n_heads]).swap_dims(1, 2)
}

/// `[b, h, t, dh]` -> `[b, t, h·dh]`
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * dh])
}
