//! CPU kernels for burn's flex backend, registered as burn custom ops with their own backward:
//! the memory-bound layers of a transformer as one pass each over their data, forward and
//! backward, threaded over rows (rayon) and vectorised (see [`simd`]).
//!
//! - [`layer_norm`]: LayerNorm over the last dimension.
//! - [`rms_norm`]: T5's RMS norm.
//! - [`gelu`]: GELU, exact (BERT) and the tanh approximation (GPT-2's `gelu_new`).
//! - [`swiglu`]: LLaMA's gated feed-forward activation, `silu(gate) · up`.
//! - [`cross_entropy`]: log-softmax and the negative log-likelihood of the labels in one pass; the
//!   backward writes `softmax − one-hot` straight from the logits and the kept log-sum-exp (the
//!   `[n, vocab]` log-probabilities are never stored).
//! - [`attention`]: scaled dot-product attention per (batch, head), query blocks at a time: the
//!   scores of one block live in a scratch buffer (memory linear in the sequence length), the
//!   backward recomputes them from the kept log-sum-exp, as the WGSL kernel does on the GPU.
//!
//! Each kernel's test compares its values and gradients with burn's composition of the same
//! layer (the code path every other backend takes). The kernels take f32; callers in
//! `hearth_core::nn` use them on flex when [`enabled`] (half-precision inputs upcast around them),
//! and the composition otherwise.

pub mod attention;
pub mod cross_entropy;
pub mod gelu;
pub mod layer_norm;
mod memory_bound;
mod par;
pub mod rms_norm;
pub mod simd;
pub mod swiglu;

use std::cell::Cell;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::{DType, Device, Shape, TensorData};
use par::*;

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
    /// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]`, `key_padding [b, tk]` (non-zero = masked; read
    /// only when `has_padding`) -> `[b, h, tq, dh]` (stored as `[b, tq, h, dh]`, so that merging the
    /// heads afterwards is a view).
    fn cpu_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FloatTensor<Self>;
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
    fn cpu_attention(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        key_padding: FlexTensor,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FlexTensor {
        let params = attention::Params::new(&q, &k, scale, causal);
        let pad = has_padding.then(|| attention::padding(&key_padding));
        attention::forward(&params, &q, &k, &v, pad.as_deref()).0
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
    fn cpu_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_padding: IntTensor<Self>,
        scale: f32,
        causal: bool,
        has_padding: bool,
    ) -> FloatTensor<Self> {
        attention::autodiff::<C>(q, k, v, key_padding, scale, causal, has_padding)
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

/// Gives each parent of a kernel's node (`ops.parents`, with `id` reading a node's id: burn does
/// not export the node's type) its gradient; a parent autodiff does not track gets none.
pub(crate) fn register<P, const N: usize>(
    grads: &mut burn::backend::autodiff::grads::Gradients,
    parents: [Option<P>; N],
    values: [FlexTensor; N],
    id: impl Fn(&P) -> burn::backend::autodiff::NodeId,
) {
    for (node, grad) in parents.into_iter().zip(values) {
        if let Some(node) = node {
            grads.register::<Flex>(id(&node), grad);
        }
    }
}

/// `t`'s f32 elements in order, copied only when `t` is a strided view.
pub(crate) fn contiguous(t: &FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "the CPU kernels take f32 tensors");
    t.to_contiguous()
}

/// The f32 elements of a contiguous tensor.
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// A contiguous f32 tensor of `shape` holding `data`.
pub(crate) fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.into()))
}

/// An int tensor's elements as i64 (flex keeps ints as i64 or i32).
pub(crate) fn ints(t: &FlexTensor) -> Vec<i64> {
    let t = t.to_contiguous();
    match t.dtype() {
        DType::I64 => t.as_slice::<i64>().expect("contiguous").to_vec(),
        DType::I32 => t.as_slice::<i32>().expect("contiguous").iter().map(|&v| v as i64).collect(),
        other => panic!("the CPU kernels take i64 or i32 labels and masks, not {other:?}"),
    }
}

/// Rows per rayon task for rows of `d` elements: tasks of at least ~16K elements, so that the
/// small tensors of a tiny model are not split into more tasks than they are worth.
pub(crate) fn rows_per_task(d: usize) -> usize {
    (16_384 / d.max(1)).max(1)
}

/// The backward of a row-wise layer with per-column parameters (the norms): `rows(x, dy, dx,
/// sums)` runs on fixed tasks of rows of `d`, each task adding into its own `K` column sums (the
/// parameters' gradients), and the tasks' sums are added in task order, so the result does not
/// depend on which thread ran what (a resumed run repeats an uninterrupted one bit for bit).
/// Returns `dx` and the `K` sums.
pub(crate) fn rows_backward<const K: usize>(
    x: &[f32],
    dy: &[f32],
    d: usize,
    rows: impl Fn(&[f32], &[f32], &mut [f32], &mut [Vec<f32>; K]) + Sync,
) -> (Vec<f32>, [Vec<f32>; K]) {
    let task = rows_per_task(d) * d;
    let mut dx = vec![0.0; x.len()];
    let partials: Vec<[Vec<f32>; K]> = dx
        .par_chunks_mut(task)
        .zip(x.par_chunks(task).zip(dy.par_chunks(task)))
        .map(|(dx, (x, dy))| {
            let mut sums = std::array::from_fn(|_| vec![0.0; d]);
            rows(x, dy, dx, &mut sums);
            sums
        })
        .collect();
    let mut sums: [Vec<f32>; K] = std::array::from_fn(|_| vec![0.0; d]);
    for partial in partials {
        for (sum, part) in sums.iter_mut().zip(partial) {
            sum.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
    }
    (dx, sums)
}

/// A pointer that rayon tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub *mut f32);
// SAFETY: every task writes elements no other task reads or writes (see each use).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

#[cfg(test)]
pub(crate) mod testing {
    //! What the kernel tests share: random tensors on flex with autodiff, and a comparison.
    use burn::tensor::{Device, Tensor, TensorData};

    pub fn device() -> Device {
        Device::flex().autodiff()
    }

    /// Uniform in [-1, 1), the same for the same seed.
    pub fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
        let n = shape.iter().product();
        let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let data: Vec<f32> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect();
        Tensor::from_data(TensorData::new(data, shape), &device())
    }

    /// `a` and `b` agree within `tol` relative to `b`'s largest magnitude.
    pub fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, tol: f32, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}: shapes");
        let a: Vec<f32> = a.into_data().try_to_vec().unwrap();
        let b: Vec<f32> = b.into_data().try_to_vec().unwrap();
        let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= tol * scale, "{what}: largest difference {worst:e} against a largest value {scale:e}");
    }
}
