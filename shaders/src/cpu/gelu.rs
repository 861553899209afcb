//! GELU's tanh approximation (GPT-2's `gelu_new`), `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`,
//! computed as the identical `x·σ(2z)`, forward and backward one pass each.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use rayon::prelude::*;

use super::simd::exp;
use super::{contiguous, tensor, values};
use crate::multiversion;

/// `2·√(2/π)`
const C: f32 = 2.0 * 0.797_884_6;
const A: f32 = 0.044_715;
/// Elements per rayon task.
const TASK: usize = 16_384;

pub(crate) fn forward(x: &FlexTensor) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let x = contiguous(x);
    let x = values(&x);
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(TASK).zip(x.par_chunks(TASK)).for_each(|(y, x)| forward_slice(x, y));
    tensor(y, shape)
}

multiversion! {
    fn forward_slice(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            let z2 = C * x * (1.0 + A * x * x);
            *y = x / (1.0 + exp(-z2));
        }
    }
}

/// `dx = dy·(σ + x·σ·(1 − σ)·2z')`, `σ = σ(2z)`, `2z' = C·(1 + 3A·x²)`.
pub(crate) fn backward(x: &FlexTensor, dy: &FlexTensor) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let (x, dy) = (contiguous(x), contiguous(dy));
    let (x, dy) = (values(&x), values(&dy));
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(TASK)
        .zip(x.par_chunks(TASK).zip(dy.par_chunks(TASK)))
        .for_each(|(dx, (x, dy))| backward_slice(x, dy, dx));
    tensor(dx, shape)
}

multiversion! {
    fn backward_slice(x: &[f32], dy: &[f32], dx: &mut [f32]) {
        for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            let x2 = x * x;
            let s = 1.0 / (1.0 + exp(-C * x * (1.0 + A * x2)));
            *dx = dy * (s + x * s * (1.0 - s) * C * (1.0 + 3.0 * A * x2));
        }
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<Flex>(node.id, backward(&ops.state, &dy));
        }
    }
}

pub(crate) fn autodiff<C: CheckpointStrategy>(x: FloatTensor<Autodiff<Flex, C>>) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = [x.node()];
    let x = x.into_primitive();
    match GeluBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let y = forward(&x);
            prep.finish(x, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&x)),
    }
}

/// `[..]` -> `[..]` through the kernel (see [`super::applies`]).
pub fn gelu_tanh<const D: usize>(x: burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D> {
    use super::CpuKernelOps;
    use burn::backend::Dispatch;
    burn::tensor::Tensor::from_dispatch(Dispatch::cpu_gelu_tanh(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, random};
    use burn::tensor::{Tensor, activation};

    /// burn's own tanh GELU (`gelu_approximate`): the formula as PyTorch writes it, with `tanh`.
    #[test]
    fn values_and_gradients_match_burns_tanh_gelu() {
        let x = random([3, 40_000], 5) * 6.0;
        let up = random([3, 40_000], 6);
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let y: Tensor<2> =
                if fused { super::gelu_tanh(x.clone()) } else { activation::gelu_approximate(x.clone()) };
            let grads = (y.clone() * up.clone()).sum().backward();
            (y, x.grad(&grads).unwrap())
        };
        let ((y, dx), (y0, dx0)) = (run(true), run(false));
        assert_close(y, y0, 2e-6, "y");
        assert_close(dx, dx0, 2e-6, "dx");
    }
}
