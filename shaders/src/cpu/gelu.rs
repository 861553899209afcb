//! GELU, both forms HF configs name, forward and backward one pass each:
//! - exact, `x·Φ(x) = x/2·(1 + erf(x/√2))` (BERT's `gelu`), with a vectorising `erf`;
//! - the tanh approximation (GPT-2's `gelu_new`), `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`,
//!   computed as the identical `x·σ(2z)`.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;

use super::memory_bound::{self, Kernel};
use crate::multiversion;
use crate::plumbing::par::*;
use crate::plumbing::simd::exp;
use crate::plumbing::{contiguous, tensor, values};

/// `2·√(2/π)`
const C: f32 = 2.0 * 0.797_884_6;
const A: f32 = 0.044_715;
/// `1/√(2π)`
const INV_SQRT_2PI: f32 = 0.398_942_3;
/// Elements per rayon task.
const TASK: usize = 16_384;

/// `erf(x)`: Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), no libm call.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152) * t + 1.421_413_8) * t - 0.284_496_74) * t + 0.254_829_6) * t;
    let y = 1.0 - poly * exp(-a * a);
    if x < 0.0 { -y } else { y }
}

pub(crate) fn forward(x: &FlexTensor, exact: bool) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let x = contiguous(x);
    let x = values(&x);
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(TASK).zip(x.par_chunks(TASK)).for_each(|(y, x)| forward_slice(x, y, exact));
    tensor(y, shape)
}

multiversion! {
    fn forward_slice(x: &[f32], y: &mut [f32], exact: bool) {
        if exact {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            }
        } else {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x / (1.0 + exp(-C * x * (1.0 + A * x * x)));
            }
        }
    }
}

/// Exact: `dx = dy·(Φ(x) + x·φ(x))`. Tanh: `dx = dy·(σ + x·σ·(1 − σ)·2z')`, `σ = σ(2z)`,
/// `2z' = C·(1 + 3A·x²)`.
pub(crate) fn backward(x: &FlexTensor, dy: &FlexTensor, exact: bool) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let (x, dy) = (contiguous(x), contiguous(dy));
    let (x, dy) = (values(&x), values(&dy));
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(TASK)
        .zip(x.par_chunks(TASK).zip(dy.par_chunks(TASK)))
        .for_each(|(dx, (x, dy))| backward_slice(x, dy, dx, exact));
    tensor(dx, shape)
}

multiversion! {
    fn backward_slice(x: &[f32], dy: &[f32], dx: &mut [f32], exact: bool) {
        if exact {
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
                *dx = dy * (cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x));
            }
        } else {
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                let x2 = x * x;
                let s = 1.0 / (1.0 + exp(-C * x * (1.0 + A * x2)));
                *dx = dy * (s + x * s * (1.0 - s) * C * (1.0 + 3.0 * A * x2));
            }
        }
    }
}

/// Memory-bound, as burn's own elementwise ops (see `memory_bound`).
pub(crate) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    exact: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    let kernel = Kernel {
        forward: |[x], exact| forward(x, exact),
        backward: |[x], dy, exact| [backward(x, dy, exact)],
        setting: exact,
    };
    memory_bound::autodiff::<C, 1, bool>(kernel, [x])
}

/// `[..]` -> `[..]` through the kernel (see [`super::applies`]): exact GELU, or with `exact`
/// false the tanh approximation.
pub fn gelu<const D: usize>(x: burn::tensor::Tensor<D>, exact: bool) -> burn::tensor::Tensor<D> {
    use super::CpuKernelOps;
    use burn::backend::Dispatch;
    burn::tensor::Tensor::from_dispatch(Dispatch::cpu_gelu(x.into_dispatch(), exact))
}

#[cfg(test)]
mod tests {
    use crate::plumbing::testing::{assert_close, random};
    use burn::tensor::{Tensor, activation};

    fn check(exact: bool, reference: impl Fn(Tensor<2>) -> Tensor<2>) {
        let x = random([3, 40_000], 5) * 6.0;
        let up = random([3, 40_000], 6);
        let run = |fused: bool| {
            let x = x.clone().require_grad();
            let y: Tensor<2> = if fused { super::gelu(x.clone(), exact) } else { reference(x.clone()) };
            let grads = (y.clone() * up.clone()).sum().backward();
            (y, x.grad(&grads).unwrap())
        };
        let ((y, dx), (y0, dx0)) = (run(true), run(false));
        assert_close(y, y0, 2e-6, "y");
        assert_close(dx, dx0, 2e-6, "dx");
    }

    /// burn's own tanh GELU (`gelu_approximate`): the formula as PyTorch writes it, with `tanh`.
    #[test]
    fn tanh_gelu_matches_burns() {
        check(false, activation::gelu_approximate);
    }

    /// The exact GELU as `hearth_core::nn::activation` composes it from `erf` (whose backward
    /// autodiff takes exactly).
    #[test]
    fn exact_gelu_matches_the_erf_composition() {
        check(true, |x| x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5);
    }
}
