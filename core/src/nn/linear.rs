//! `torch.nn.Linear` with its weight stored as Hugging Face stores it: `[d_output, d_input]`.
//! (burn's own `Linear` stores `[d_input, d_output]`; keeping the HF layout means a checkpoint
//! tensor loads and saves as is, with no transpose table.)

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct Linear {
    /// `[d_output, d_input]`
    pub weight: Param<Tensor<2>>,
    /// `[d_output]`
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// Weight ~ Normal(0, std), bias zero (HF `_init_weights` for every family here).
    pub fn new(d_input: usize, d_output: usize, bias: bool, std: f64, device: &Device) -> Self {
        Self {
            weight: super::normal([d_output, d_input], std, device),
            bias: bias.then(|| super::zeros([d_output], device)),
        }
    }

    /// `[.., d_input]` -> `[.., d_output]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        super::project(x, self.weight.val().transpose(), self.bias.as_ref().map(|b| b.val()))
    }
}
