//! T5's RMS norm, `weight·x/√(mean(x²) + eps)` over the last dimension (no mean subtracted, no
//! bias), forward and backward one pass over the rows each.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;

use super::memory_bound::{self, Kernel};
use crate::multiversion;
use crate::plumbing::par::*;
use crate::plumbing::simd::{sum_map, sum_zip3};
use crate::plumbing::{contiguous, rows_backward, rows_per_task, tensor, values};

/// A row's `1/√(mean(x²) + eps)`.
#[inline(always)]
fn row_inverse_rms(x: &[f32], eps: f32) -> f32 {
    1.0 / (sum_map(x, |v| v * v) / x.len() as f32 + eps).sqrt()
}

pub(crate) fn forward(x: &FlexTensor, weight: &FlexTensor, eps: f32) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let (x, w) = (contiguous(x), contiguous(weight));
    let (x, w) = (values(&x), values(&w));
    let d = w.len();
    let mut y = vec![0.0; x.len()];
    let rows = rows_per_task(d);
    y.par_chunks_mut(rows * d).zip(x.par_chunks(rows * d)).for_each(|(y, x)| forward_rows(x, w, eps, y));
    tensor(y, shape)
}

multiversion! {
    fn forward_rows(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
        let d = w.len();
        for (x, y) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let r = row_inverse_rms(x, eps);
            for j in 0..d {
                y[j] = w[j] * (x[j] * r);
            }
        }
    }
}

/// `dx = r·(g − x·r²·mean(g·x))` with `g = dy·weight`, and `dweight = Σ_rows dy·x·r` (`r` taken
/// again from `x`, as in `layer_norm::backward`).
pub(crate) fn backward(x: &FlexTensor, weight: &FlexTensor, dy: &FlexTensor, eps: f32) -> [FlexTensor; 2] {
    let shape = x.layout().shape().clone();
    let (x, w, dy) = (contiguous(x), contiguous(weight), contiguous(dy));
    let (x, w, dy) = (values(&x), values(&w), values(&dy));
    let d = w.len();
    let (dx, [dw]) = rows_backward(x, dy, d, |x, dy, dx, [dw]| backward_rows(x, w, dy, eps, dx, dw));
    [tensor(dx, shape), tensor(dw, [d])]
}

multiversion! {
    fn backward_rows(x: &[f32], w: &[f32], dy: &[f32], eps: f32, dx: &mut [f32], dw: &mut [f32]) {
        let d = w.len();
        for ((x, dy), dx) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
            let r = row_inverse_rms(x, eps);
            let gx_mean = sum_zip3(dy, w, x, |g, w, x| g * w * x) / d as f32;
            for j in 0..d {
                dx[j] = r * (dy[j] * w[j] - x[j] * r * r * gx_mean);
                dw[j] += dy[j] * x[j] * r;
            }
        }
    }
}

/// Memory-bound (see `memory_bound`).
pub(crate) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    eps: f32,
) -> FloatTensor<Autodiff<Flex, C>> {
    let kernel = Kernel {
        forward: |[x, w], eps| forward(x, w, eps),
        backward: |[x, w], dy, eps| backward(x, w, dy, eps),
        setting: eps,
    };
    memory_bound::autodiff::<C, 2, f32>(kernel, [x, weight])
}

/// `x [.., d]`, `weight [d]` -> `[.., d]` through the kernel (see [`super::applies`]).
pub fn rms_norm<const D: usize>(
    x: burn::tensor::Tensor<D>,
    weight: burn::tensor::Tensor<1>,
    eps: f64,
) -> burn::tensor::Tensor<D> {
    use super::CpuKernelOps;
    use burn::backend::Dispatch;
    burn::tensor::Tensor::from_dispatch(Dispatch::cpu_rms_norm(x.into_dispatch(), weight.into_dispatch(), eps as f32))
}

#[cfg(test)]
mod tests {
    use crate::plumbing::testing::{assert_close, random};
    use burn::tensor::Tensor;

    /// burn's composition, as `hearth_core::nn::RmsNorm` writes it.
    fn composed(x: Tensor<3>, w: Tensor<1>, eps: f64) -> Tensor<3> {
        let variance = x.clone().square().mean_dim(2);
        x * (variance + eps).sqrt().recip() * w.unsqueeze()
    }

    #[test]
    fn values_and_gradients_match_the_composition() {
        for (shape, seed) in [([2, 3, 20], 1), ([4, 33, 128], 2), ([1, 1, 7], 3)] {
            let x = random(shape, seed) * 3.0 + 0.5;
            let w = random([shape[2]], seed + 10) + 1.0;
            let up = random(shape, seed + 30);
            let run = |fused: bool| {
                let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
                let y = if fused {
                    super::rms_norm(x.clone(), w.clone(), 1e-6)
                } else {
                    composed(x.clone(), w.clone(), 1e-6)
                };
                let grads = (y.clone() * up.clone()).sum().backward();
                (y, x.grad(&grads).unwrap(), w.grad(&grads).unwrap())
            };
            let ((y, dx, dw), (y0, dx0, dw0)) = (run(true), run(false));
            assert_close(y, y0, 1e-5, "y");
            assert_close(dx, dx0, 1e-4, "dx");
            assert_close(dw, dw0, 1e-5, "dweight");
        }
    }
}
