//! The activation functions HF configs name (`hidden_act`, `activation_function`, `dense_act_fn`).

use burn::tensor::{Tensor, activation};

use super::dtype::in_f32;
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
            Self::GeluNew => gelu_tanh(x),
            Self::Silu => activation::silu(x),
            Self::Tanh => activation::tanh(x),
        }
    }
}

/// `x·Φ(x) = x/2·(1 + erf(x/√2))`, composed from `erf` so that autodiff differentiates it exactly.
/// burn 0.22.1's fused `gelu` has a backward that, on the cubecl (wgpu) backend, is the derivative
/// of the *tanh approximation*: BERT's gradients then drift ~1e-4 from PyTorch's (the parity test
/// caught it). `erf`'s own backward is exact on every backend.
/// On flex: one kernel pass forward and backward (`hearth_shaders::cpu::gelu`), in f32.
fn gelu_exact<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if hearth_shaders::cpu::applies(&x.device()) {
        return in_f32(x, |x| hearth_shaders::cpu::gelu::gelu(x, true));
    }
    x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5
}

/// The tanh approximation, `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, written as the identical
/// `x·σ(2·√(2/π)·x·(1 + 0.044715·x²))` (since `(1 + tanh z)/2 = σ(2z)`). burn's `gelu_approximate`
/// composes `powf(x, 3)` and `tanh`, whose backward takes another `powf`: on the CPU backend those
/// libm calls were a quarter of a tiny GPT's training step. Here: products, one `exp` per element
/// (the sigmoid) and a sigmoid backward that reuses its output.
/// On flex: one kernel pass forward and backward (`hearth_shaders::cpu::gelu`), in f32.
fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if hearth_shaders::cpu::applies(&x.device()) {
        return in_f32(x, |x| hearth_shaders::cpu::gelu::gelu(x, false));
    }
    const TWO_SQRT_2_OVER_PI: f64 = 2.0 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;
    let z2 = x.clone() * ((x.clone() * x.clone()) * (TWO_SQRT_2_OVER_PI * 0.044715) + TWO_SQRT_2_OVER_PI);
    x * activation::sigmoid(z2)
}

/// A gated feed-forward's inner activation, `act(gate) · up` (SwiGLU with `silu`, GeGLU with a
/// GELU). On flex SwiGLU is one kernel pass forward and backward (`hearth_shaders::cpu::swiglu`),
/// in f32.
pub fn gated<const D: usize>(act: Activation, gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    if act == Activation::Silu && hearth_shaders::cpu::applies(&gate.device()) {
        let (gate, dtype) = super::dtype::upcast(gate);
        let up = super::dtype::upcast(up).0;
        return super::dtype::downcast(hearth_shaders::cpu::swiglu::swiglu(gate, up), dtype);
    }
    act.forward(gate) * up
}
