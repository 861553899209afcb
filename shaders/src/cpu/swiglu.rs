//! SwiGLU's gate, `silu(gate) · up` (LLaMA's feed-forward between its projections), forward and
//! backward one pass each over the two inputs: `silu(g) = g·σ(g)`,
//! `d gate = dy · up · σ(g)·(1 + g·(1 − σ(g)))`, `d up = dy · silu(g)`. The composition stores
//! `σ(g)`, `silu(g)` and the product; this stores nothing (the inputs are read back).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;

use super::memory_bound::{self, Kernel};
use crate::multiversion;
use crate::plumbing::par::*;
use crate::plumbing::simd::exp;
use crate::plumbing::{contiguous, tensor, values};

/// Elements per rayon task.
const TASK: usize = 16_384;

pub(crate) fn forward(gate: &FlexTensor, up: &FlexTensor) -> FlexTensor {
    let shape = gate.layout().shape().clone();
    let (gate, up) = (contiguous(gate), contiguous(up));
    let (g, u) = (values(&gate), values(&up));
    let mut y = vec![0.0; g.len()];
    y.par_chunks_mut(TASK)
        .zip(g.par_chunks(TASK).zip(u.par_chunks(TASK)))
        .for_each(|(y, (g, u))| forward_slice(g, u, y));
    tensor(y, shape)
}

multiversion! {
    fn forward_slice(g: &[f32], u: &[f32], y: &mut [f32]) {
        for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
            *y = g / (1.0 + exp(-g)) * u;
        }
    }
}

pub(crate) fn backward(gate: &FlexTensor, up: &FlexTensor, dy: &FlexTensor) -> [FlexTensor; 2] {
    let shape = gate.layout().shape().clone();
    let (gate, up, dy) = (contiguous(gate), contiguous(up), contiguous(dy));
    let (g, u, dy) = (values(&gate), values(&up), values(&dy));
    let (mut dg, mut du) = (vec![0.0; g.len()], vec![0.0; g.len()]);
    dg.par_chunks_mut(TASK)
        .zip(du.par_chunks_mut(TASK))
        .zip(g.par_chunks(TASK).zip(u.par_chunks(TASK)).zip(dy.par_chunks(TASK)))
        .for_each(|((dg, du), ((g, u), dy))| backward_slice(g, u, dy, dg, du));
    [tensor(dg, shape.clone()), tensor(du, shape)]
}

multiversion! {
    fn backward_slice(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
        for ((((dg, du), &g), &u), &dy) in dg.iter_mut().zip(du.iter_mut()).zip(g).zip(u).zip(dy) {
            let s = 1.0 / (1.0 + exp(-g));
            *du = dy * g * s;
            *dg = dy * u * s * (1.0 + g * (1.0 - s));
        }
    }
}

/// Memory-bound, as burn's own elementwise ops (see `memory_bound`).
pub(crate) fn autodiff<C: CheckpointStrategy>(
    gate: FloatTensor<Autodiff<Flex, C>>,
    up: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let kernel =
        Kernel { forward: |[g, u], ()| forward(g, u), backward: |[g, u], dy, ()| backward(g, u, dy), setting: () };
    memory_bound::autodiff::<C, 2, ()>(kernel, [gate, up])
}

/// `silu(gate) · up` through the kernel (see [`super::applies`]); `gate` and `up` of one shape.
pub fn swiglu<const D: usize>(gate: burn::tensor::Tensor<D>, up: burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D> {
    use super::CpuKernelOps;
    use burn::backend::Dispatch;
    burn::tensor::Tensor::from_dispatch(Dispatch::cpu_swiglu(gate.into_dispatch(), up.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use crate::plumbing::testing::{assert_close, random};
    use burn::tensor::{Tensor, activation};

    /// Against burn's composition (`silu(gate) * up`, what every other backend runs).
    #[test]
    fn swiglu_matches_the_composition() {
        let gate = random([3, 20_000], 7) * 8.0;
        let up = random([3, 20_000], 8) * 2.0;
        let dy = random([3, 20_000], 9);
        let run = |fused: bool| {
            let (g, u) = (gate.clone().require_grad(), up.clone().require_grad());
            let y: Tensor<2> =
                if fused { super::swiglu(g.clone(), u.clone()) } else { activation::silu(g.clone()) * u.clone() };
            let grads = (y.clone() * dy.clone()).sum().backward();
            (y, g.grad(&grads).unwrap(), u.grad(&grads).unwrap())
        };
        let ((y, dg, du), (y0, dg0, du0)) = (run(true), run(false));
        assert_close(y, y0, 2e-6, "y");
        assert_close(dg, dg0, 2e-6, "d gate");
        assert_close(du, du0, 2e-6, "d up");
    }
}
