//! T5's `T5LayerNorm`: RMS norm with a scale and no bias, no mean subtraction.
//! See `transformers/models/t5/modeling_t5.py::T5LayerNorm`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct RmsNorm {
    /// `[d]`
    pub weight: Param<Tensor<1>>,
    pub eps: f64,
}

impl RmsNorm {
    pub fn new(d: usize, eps: f64, device: &Device) -> Self {
        Self { weight: super::ones([d], device), eps }
    }

    /// `[.., d]` -> `[.., d]`: `x / sqrt(mean(x²) + eps) * weight`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let variance = x.clone().square().mean_dim(D - 1);
        x * (variance + self.eps).sqrt().recip() * self.weight.val().unsqueeze()
    }
}
