//! LayerNorm over the last dimension, `(x − mean)/√(var + eps)·weight + bias` with the biased
//! variance (`torch.nn.LayerNorm`), forward and backward in one pass over the rows each.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;

use super::memory_bound::{self, Kernel};
use crate::multiversion;
use crate::plumbing::par::*;
use crate::plumbing::simd::{sum_map, sum_zip, sum_zip3};
use crate::plumbing::{contiguous, rows_backward, rows_per_task, tensor, values};

/// A row's mean and `1/√(var + eps)` (biased variance), two passes over the row.
#[inline(always)]
fn row_statistics(x: &[f32], eps: f32) -> (f32, f32) {
    let d = x.len() as f32;
    let m = sum_map(x, |v| v) / d;
    let var = sum_map(x, |v| (v - m) * (v - m)) / d;
    (m, 1.0 / (var + eps).sqrt())
}

pub(crate) fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor, eps: f32) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let (x, w, b) = (contiguous(x), contiguous(weight), contiguous(bias));
    let (x, w, b) = (values(&x), values(&w), values(&b));
    let d = w.len();
    let mut y = vec![0.0; x.len()];
    let rows = rows_per_task(d);
    y.par_chunks_mut(rows * d).zip(x.par_chunks(rows * d)).for_each(|(y, x)| forward_rows(x, w, b, eps, y));
    tensor(y, shape)
}

multiversion! {
    fn forward_rows(x: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32]) {
        let d = w.len();
        for (x, y) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let (m, r) = row_statistics(x, eps);
            for j in 0..d {
                y[j] = (x[j] - m) * r * w[j] + b[j];
            }
        }
    }
}

/// `dx`, `dweight`, `dbias` from the upstream gradient `dy` (the row statistics taken again from
/// `x`: one pass over a row the backward reads anyway, and nothing kept between the two).
pub(crate) fn backward(x: &FlexTensor, weight: &FlexTensor, dy: &FlexTensor, eps: f32) -> [FlexTensor; 3] {
    let shape = x.layout().shape().clone();
    let (x, w, dy) = (contiguous(x), contiguous(weight), contiguous(dy));
    let (x, w, dy) = (values(&x), values(&w), values(&dy));
    let d = w.len();
    let (dx, [dw, db]) = rows_backward(x, dy, d, |x, dy, dx, [dw, db]| backward_rows(x, w, dy, eps, dx, dw, db));
    [tensor(dx, shape), tensor(dw, [d]), tensor(db, [d])]
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn backward_rows(x: &[f32], w: &[f32], dy: &[f32], eps: f32, dx: &mut [f32], dw: &mut [f32], db: &mut [f32]) {
        let d = w.len();
        for ((x, dy), dx) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
            let (m, r) = row_statistics(x, eps);
            // g = dy·w; dx = r·(g − mean(g) − x̂·mean(g·x̂)), x̂ = (x − m)·r
            let g_mean = sum_zip(dy, w, |a, b| a * b) / d as f32;
            let gx_mean = r * sum_zip3(dy, w, x, |g, w, x| g * w * (x - m)) / d as f32;
            for j in 0..d {
                let xhat = (x[j] - m) * r;
                dx[j] = r * (dy[j] * w[j] - g_mean - xhat * gx_mean);
                dw[j] += dy[j] * xhat;
                db[j] += dy[j];
            }
        }
    }
}

/// Memory-bound, as burn's own composition of it (see `memory_bound`).
pub(crate) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: FloatTensor<Autodiff<Flex, C>>,
    eps: f32,
) -> FloatTensor<Autodiff<Flex, C>> {
    let kernel = Kernel {
        forward: |[x, w, b], eps| forward(x, w, b, eps),
        backward: |[x, w, _], dy, eps| backward(x, w, dy, eps),
        setting: eps,
    };
    memory_bound::autodiff::<C, 3, f32>(kernel, [x, weight, bias])
}

/// `x [.., d]`, `weight, bias [d]` -> `[.., d]` through the kernel (see [`super::applies`]).
pub fn layer_norm<const D: usize>(
    x: burn::tensor::Tensor<D>,
    weight: burn::tensor::Tensor<1>,
    bias: burn::tensor::Tensor<1>,
    eps: f64,
) -> burn::tensor::Tensor<D> {
    use super::CpuKernelOps;
    use burn::backend::Dispatch;
    burn::tensor::Tensor::from_dispatch(Dispatch::cpu_layer_norm(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        eps as f32,
    ))
}

#[cfg(test)]
mod tests {
    use crate::plumbing::testing::{assert_close, random};
    use burn::tensor::Tensor;

    /// burn's composition, as `hearth_core::nn::LayerNorm` writes it.
    fn composed(x: Tensor<3>, w: Tensor<1>, b: Tensor<1>, eps: f64) -> Tensor<3> {
        let (var, mean) = x.clone().var_mean_bias(2);
        (x - mean) / (var + eps).sqrt() * w.unsqueeze() + b.unsqueeze()
    }

    #[test]
    fn values_and_gradients_match_the_composition() {
        for (shape, seed) in [([2, 3, 20], 1), ([4, 33, 128], 2), ([1, 1, 7], 3)] {
            let x = random(shape, seed) * 3.0 + 0.5;
            let w = random([shape[2]], seed + 10) + 1.0;
            let b = random([shape[2]], seed + 20);
            let up = random(shape, seed + 30);
            let run = |fused: bool| {
                let (x, w, b) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
                let y = if fused {
                    super::layer_norm(x.clone(), w.clone(), b.clone(), 1e-5)
                } else {
                    composed(x.clone(), w.clone(), b.clone(), 1e-5)
                };
                let grads = (y.clone() * up.clone()).sum().backward();
                (y, x.grad(&grads).unwrap(), w.grad(&grads).unwrap(), b.grad(&grads).unwrap())
            };
            let (y, dx, dw, db) = run(true);
            let (y0, dx0, dw0, db0) = run(false);
            assert_close(y, y0, 1e-5, "y");
            assert_close(dx, dx0, 1e-4, "dx");
            assert_close(dw, dw0, 1e-5, "dweight");
            assert_close(db, db0, 1e-5, "dbias");
        }
    }
}
