//! `torch.nn.LayerNorm` over the last dimension with HF parameter names (`weight`, `bias`).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use hearth_shaders::cpu;

use super::dtype::{downcast, in_f32, upcast};

#[derive(Module, Debug)]
pub struct LayerNorm {
    /// `[d]`
    pub weight: Param<Tensor<1>>,
    /// `[d]`
    pub bias: Param<Tensor<1>>,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(d: usize, eps: f64, device: &Device) -> Self {
        Self { weight: super::ones([d], device), bias: super::zeros([d], device), eps }
    }

    /// `[.., d]` -> `[.., d]`: `(x - mean) / sqrt(var + eps) * weight + bias` (biased variance),
    /// computed in f32 whatever the input's dtype (as under `torch.autocast`), returned in it.
    /// On flex this is one kernel pass forward and backward (`hearth_shaders::cpu`), in f32.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (weight, bias) = (upcast(self.weight.val()).0, upcast(self.bias.val()).0);
        if cpu::applies(&x.device()) {
            return in_f32(x, |x| cpu::layer_norm::layer_norm(x, weight, bias, self.eps));
        }
        let (x, dtype) = upcast(x);
        let (var, mean) = x.clone().var_mean_bias(D - 1);
        let x = (x - mean) / (var + self.eps).sqrt();
        let y = x * weight.unsqueeze() + bias.unsqueeze();
        downcast(y, dtype)
    }
}
