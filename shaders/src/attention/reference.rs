//! The plain reference the fused kernels are tested against (llm.c style: the obvious composition
//! beside the kernel). Same semantics as `hearth_core::nn::attention::scaled_dot_product_attention`
//! without bias or dropout: masked scores are set to `f32::MIN`, so a fully masked row is uniform.

use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int, Tensor};

/// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]`, `key_padding [b, tk]` (non-zero = masked) -> `[b, h, tq, dh]`.
/// Causal: query `i` sees key `j <= i + tk - tq`.
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    key_padding: Option<Tensor<2, Int>>,
    scale: f32,
    causal: bool,
) -> Tensor<4> {
    let [b, _, tq, _] = q.dims();
    let tk = k.dims()[2];
    let device = q.device();
    let mut scores = q.matmul(k.swap_dims(2, 3)) * scale; // [b, h, tq, tk]
    let mut mask: Option<Tensor<4, Bool>> = None;
    if causal {
        let offset = tk as i64 - tq as i64;
        // burn names masks after what they keep: `tril_mask` is true above the (offset) diagonal.
        mask = Some(Tensor::<2, Bool>::tril_mask([tq, tk], offset, &device).unsqueeze::<4>());
    }
    if let Some(pad) = key_padding {
        let m = pad.not_equal_elem(0).reshape([b, 1, 1, tk]);
        mask = Some(match mask {
            None => m,
            Some(c) => c.expand([b, 1, tq, tk]).bool_or(m.expand([b, 1, tq, tk])),
        });
    }
    if let Some(mask) = mask {
        let shape = scores.dims();
        scores = scores.mask_fill(mask.expand(shape), f32::MIN);
    }
    softmax(scores, 3).matmul(v)
}
