//! What the CPU kernels share, below every op that has one (`attention`'s and those in `cpu`):
//! giving a kernel node's parents their gradients, flex tensors in and out as f32 slices, the rows
//! a rayon task takes, the deterministic backward of a row-wise layer, and a pointer tasks writing
//! disjoint parts of a buffer may share; the threads ([`par`]), the SIMD ([`simd`]), and what the
//! kernels' tests share ([`testing`]).

pub(crate) mod par;
pub mod simd;
#[cfg(test)]
pub(crate) mod testing;

use burn::backend::flex::{Flex, FlexTensor};
use burn::tensor::{DType, Shape, TensorData};

use par::*;

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
