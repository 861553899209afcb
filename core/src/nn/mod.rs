//! Building blocks shared by the model families. Each stores its parameters under the names and in
//! the layouts Hugging Face checkpoints use, so a module path *is* the checkpoint key.

pub mod activation;
pub mod attention;
pub mod conv1d;
pub mod dtype;
pub mod layer_norm;
pub mod linear;
pub mod loss;
pub mod recompute;
pub mod rms_norm;

pub use activation::Activation;
pub use attention::{AttentionBias, scaled_dot_product_attention};
pub use conv1d::Conv1D;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use loss::cross_entropy_with_ignore;
pub use recompute::recompute;
pub use rms_norm::RmsNorm;

use burn::module::{Initializer, Param};
use burn::tensor::{Device, Int, Tensor};

/// `Normal(0, std)`, the initialiser every family here uses for weights (HF `initializer_range`).
pub(crate) fn normal<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Param<Tensor<D>> {
    Initializer::Normal { mean: 0.0, std }.init(shape, device)
}

pub(crate) fn zeros<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Initializer::Zeros.init(shape, device)
}

pub(crate) fn ones<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Initializer::Ones.init(shape, device)
}

/// burn's `Embedding` (`weight [n, d]`, as HF names it), initialised `Normal(0, std)`.
pub(crate) fn embedding_table(n: usize, d: usize, std: f64, device: &Device) -> burn::nn::Embedding {
    burn::nn::Embedding { weight: normal([n, d], std, device) }
}

/// `x [.., d_in]·weight [d_in, d_out] (+ bias)` -> `[.., d_out]` as ONE matrix product over all
/// rows (`[n, d_in]·[d_in, d_out]`). burn's `linear` keeps a `[b, t, d]` input batched when `t`
/// fills its row tiles, and a batched product against a shared weight re-packs that weight per
/// batch entry (and for a broadcast `matmul`, reduces the weight's gradient over the batch
/// afterwards): on the CPU backend the single product is the faster one, forward and backward.
pub(crate) fn project<const D: usize>(x: Tensor<D>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<D> {
    let dims = x.dims();
    let [d_in, d_out] = weight.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = burn::tensor::module::linear(x.reshape([rows, d_in]), weight, bias); // [n, d_out]
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
}

/// burn's `Dropout` with probability `p`.
pub(crate) fn dropout(p: f64) -> burn::nn::Dropout {
    burn::nn::DropoutConfig::new(p).init()
}

/// Each row's last real token `[b, 1]` under a right-padded `attention_mask [b, t]` (1 = token);
/// the last position without one.
pub(crate) fn last_token_index(
    attention_mask: Option<&Tensor<2, Int>>,
    b: usize,
    t: usize,
    device: &Device,
) -> Tensor<2, Int> {
    match attention_mask {
        Some(m) => (m.clone().sum_dim(1) - 1).clamp_min(0),
        None => Tensor::<2, Int>::full([b, 1], t as i64 - 1, device),
    }
}

/// `h [b, t, d]` at one position per row (`index [b, 1]`) -> `[b, d]`.
pub(crate) fn gather_rows(h: Tensor<3>, index: Tensor<2, Int>) -> Tensor<2> {
    let [b, _, d] = h.dims();
    h.gather(1, index.unsqueeze_dim::<3>(2).expand([b, 1, d])).reshape([b, d])
}
