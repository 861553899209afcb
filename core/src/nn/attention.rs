//! Scaled dot-product attention, the one function every family calls.
//!
//! `softmax(q·kᵀ·scale + bias, masked) · v`, written as HF's "eager" attention does it: masked
//! scores are set to the lowest finite f32 (`torch.finfo(float32).min`), so a row whose keys are all
//! masked gets a uniform distribution rather than NaN.

use burn::nn::Dropout;
use burn::tensor::{Bool, Device, Int, Tensor, activation::softmax};

/// What HF fills masked scores with.
pub const MASKED_SCORE: f32 = f32::MIN;

/// Additive terms and masks over the `[batch, heads, q_len, k_len]` score matrix; each broadcasts.
#[derive(Clone, Debug, Default)]
pub struct AttentionBias {
    /// Added to the scores before masking (T5's relative position bias), `[1|b, h, tq, tk]`.
    pub additive: Option<Tensor<4>>,
    /// `true` where a query must not see a key, `[1|b, 1|h, 1|tq, tk]`.
    pub mask: Option<Tensor<4, Bool>>,
}

impl AttentionBias {
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

    pub fn with_additive(mut self, bias: Tensor<4>) -> Self {
        self.additive = Some(bias);
        self
    }
}

fn broadcast_shape(a: [usize; 4], b: [usize; 4]) -> [usize; 4] {
    std::array::from_fn(|i| a[i].max(b[i]))
}

/// `true` above the diagonal: query `i` may not see key `j > i`. `[1, 1, t, t]`
/// (burn names masks after the part they keep: `tril_mask` is true outside the lower triangle.)
pub fn causal_mask(t: usize, device: &Device) -> Tensor<4, Bool> {
    Tensor::<2, Bool>::tril_mask([t, t], 0, device).unsqueeze::<4>()
}

/// From an HF `attention_mask` (`1` = attend, `0` = padding) `[b, tk]` to `[b, 1, 1, tk]`.
pub fn padding_mask(attention_mask: Tensor<2, Int>) -> Tensor<4, Bool> {
    attention_mask.equal_elem(0).unsqueeze_dims::<4>(&[1, 2])
}

/// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]` -> `[b, h, tq, dh]`
pub fn scaled_dot_product_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: &AttentionBias,
    scale: Option<f64>,
    dropout: &Dropout,
) -> Tensor<4> {
    let mut scores = q.matmul(k.swap_dims(2, 3)); // [b, h, tq, tk]
    if let Some(scale) = scale {
        scores = scores * scale;
    }
    if let Some(additive) = &bias.additive {
        scores = scores + additive.clone();
    }
    if let Some(mask) = &bias.mask {
        let shape = scores.dims();
        scores = scores.mask_fill(mask.clone().expand(shape), MASKED_SCORE);
    }
    let probs = dropout.forward(softmax(scores, 3));
    probs.matmul(v)
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
