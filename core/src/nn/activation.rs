//! The activation functions HF configs name (`hidden_act`, `activation_function`, `dense_act_fn`).

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    /// Exact GELU, `x·Φ(x)` (BERT's `gelu`).
    Gelu,
    /// The tanh approximation (GPT-2's and T5 v1.1's `gelu_new`; `gelu_pytorch_tanh` is the same).
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    #[serde(alias = "swish")]
    Silu,
    Tanh,
}

impl Activation {
    /// `[..]` -> `[..]`, elementwise.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => activation::relu(x),
            Self::Gelu => gelu_exact(x),
            Self::GeluNew => activation::gelu_approximate(x),
            Self::Silu => activation::silu(x),
            Self::Tanh => activation::tanh(x),
        }
    }
}

/// `x·Φ(x) = x/2·(1 + erf(x/√2))`, composed from `erf` so that autodiff differentiates it exactly.
/// burn 0.22.1's fused `gelu` has a backward that, on the cubecl (wgpu) backend, is the derivative
/// of the *tanh approximation*: BERT's gradients then drift ~1e-4 from PyTorch's (the parity test
/// caught it). `erf`'s own backward is exact on every backend.
fn gelu_exact<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5
}
