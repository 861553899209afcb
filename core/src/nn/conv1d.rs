//! GPT-2's `Conv1D`: a linear layer whose weight is stored `[d_input, d_output]` (the transpose of
//! `torch.nn.Linear`). See `transformers/pytorch_utils.py::Conv1D`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct Conv1D {
    /// `[d_input, d_output]`
    pub weight: Param<Tensor<2>>,
    /// `[d_output]`
    pub bias: Param<Tensor<1>>,
}

impl Conv1D {
    pub fn new(d_input: usize, d_output: usize, std: f64, device: &Device) -> Self {
        Self { weight: super::normal([d_input, d_output], std, device), bias: super::zeros([d_output], device) }
    }

    /// `[.., d_input]` -> `[.., d_output]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        super::project(x, self.weight.val(), Some(self.bias.val()))
    }
}
