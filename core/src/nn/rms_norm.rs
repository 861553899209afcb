//! T5's `T5LayerNorm`: RMS norm with a scale and no bias, no mean subtraction.
//! See `transformers/models/t5/modeling_t5.py::T5LayerNorm`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::dtype::{downcast, in_f32, upcast};

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

    /// `[.., d]` -> `[.., d]`: `x / sqrt(mean(x²) + eps) * weight`, in f32 whatever the input's
    /// dtype; HF too takes the variance in f32 and scales in the weight's dtype.
    /// On flex this is one kernel pass forward and backward (`hearth_shaders::cpu`), in f32.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let weight = self.weight.val();
        if hearth_shaders::cpu::applies(&x.device()) {
            let weight = upcast(weight).0;
            return in_f32(x, |x| hearth_shaders::cpu::rms_norm::rms_norm(x, weight, self.eps));
        }
        let (x, dtype) = upcast(x);
        let variance = x.clone().square().mean_dim(D - 1);
        let x = downcast(x * (variance + self.eps).sqrt().recip(), dtype);
        x * weight.unsqueeze()
    }
}
