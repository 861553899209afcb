//! CPU kernels for burn's flex backend, registered as burn custom ops with their own backward:
//! the memory-bound layers of a transformer as one pass each over their data, forward and
//! backward, threaded over rows (rayon) and vectorised (see [`crate::plumbing::simd`]).
//!
//! - [`layer_norm`]: LayerNorm over the last dimension.
//! - [`rms_norm`]: T5's RMS norm.
//! - [`gelu`]: GELU, exact (BERT) and the tanh approximation (GPT-2's `gelu_new`).
//! - [`swiglu`]: LLaMA's gated feed-forward activation, `silu(gate) · up`.
//! - [`cross_entropy`]: log-softmax and the negative log-likelihood of the labels in one pass; the
//!   backward writes `softmax − one-hot` straight from the logits and the kept log-sum-exp (the
//!   `[n, vocab]` log-probabilities are never stored).
//! - attention: its CPU kernel lives beside its WGSL one in [`crate::attention`] (`cpu.rs`); this
//!   registry registers it with the others.
//!
//! Each kernel's test compares its values and gradients with burn's composition of the same
//! layer (the code path every other backend takes). The kernels take f32; callers in
//! `hearth_core::nn` use them on flex when [`enabled`] (half-precision inputs upcast around them),
//! and the composition otherwise.

pub mod cross_entropy;
pub mod gelu;
pub mod layer_norm;
mod memory_bound;
pub mod rms_norm;
pub mod swiglu;

use std::cell::Cell;

use crate::plumbing::ints;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::Device;

/// The kernels as burn ops: flex runs the forward alone, Autodiff<flex> keeps what backward reads.
#[backend_extension(Autodiff, Flex)]
pub trait CpuKernelOps: Backend {
    /// `x [.., d]`, `weight, bias [d]` -> `[.., d]`.
    fn cpu_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self>;
    /// `x [.., d]`, `weight [d]` -> `[.., d]`.
    fn cpu_rms_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, eps: f32) -> FloatTensor<Self>;
    /// `[..]` -> `[..]`: exact GELU, or the tanh approximation when `exact` is false.
    fn cpu_gelu(x: FloatTensor<Self>, exact: bool) -> FloatTensor<Self>;
    /// `gate, up [..]` -> `silu(gate) · up`.
    fn cpu_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `logits [n, v]`, `labels [n]` -> the negative log-likelihood per row `[n]`, `0` where the
    /// label is `ignore_index`.
    fn cpu_cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore_index: i64) -> FloatTensor<Self>;
}

impl CpuKernelOps for Flex {
    fn cpu_layer_norm(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, eps: f32) -> FlexTensor {
        layer_norm::forward(&x, &weight, &bias, eps)
    }
    fn cpu_rms_norm(x: FlexTensor, weight: FlexTensor, eps: f32) -> FlexTensor {
        rms_norm::forward(&x, &weight, eps)
    }
    fn cpu_gelu(x: FlexTensor, exact: bool) -> FlexTensor {
        gelu::forward(&x, exact)
    }
    fn cpu_swiglu(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        swiglu::forward(&gate, &up)
    }
    fn cpu_cross_entropy(logits: FlexTensor, labels: FlexTensor, ignore_index: i64) -> FlexTensor {
        cross_entropy::forward(&logits, &ints(&labels), ignore_index).0
    }
}

/// The autodiff versions: each kernel's forward, keeping what its backward reads.
impl<C: CheckpointStrategy> CpuKernelOps for Autodiff<Flex, C> {
    fn cpu_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        layer_norm::autodiff::<C>(x, weight, bias, eps)
    }
    fn cpu_rms_norm(x: FloatTensor<Self>, weight: FloatTensor<Self>, eps: f32) -> FloatTensor<Self> {
        rms_norm::autodiff::<C>(x, weight, eps)
    }
    fn cpu_gelu(x: FloatTensor<Self>, exact: bool) -> FloatTensor<Self> {
        gelu::autodiff::<C>(x, exact)
    }
    fn cpu_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        swiglu::autodiff::<C>(gate, up)
    }
    fn cpu_cross_entropy(logits: FloatTensor<Self>, labels: IntTensor<Self>, ignore_index: i64) -> FloatTensor<Self> {
        cross_entropy::autodiff::<C>(logits, labels, ignore_index)
    }
}

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Turns the CPU kernels on or off for the layers this thread builds (on by default); off, every
/// layer runs burn's composition (the reference the kernels are tested against).
pub fn set_enabled(on: bool) {
    ENABLED.with(|e| e.set(on));
}

/// Whether the CPU kernels are on for this thread (see [`set_enabled`]).
pub fn enabled() -> bool {
    ENABLED.with(|e| e.get())
}

/// Whether layers on `device` go through the CPU kernels: flex (autodiff or not), kernels
/// [`enabled`]. The kernels take f32: callers run half-precision inputs on an f32 copy.
pub fn applies(device: &Device) -> bool {
    use burn::backend::DispatchDevice;
    let mut d = device.as_dispatch();
    if let DispatchDevice::Autodiff(inner) = d {
        d = inner;
    }
    enabled() && matches!(d, DispatchDevice::Flex(_))
}
