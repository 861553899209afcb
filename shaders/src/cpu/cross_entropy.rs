//! Cross-entropy over the vocabulary: per row the log-sum-exp and the negative log-likelihood of
//! the label in one pass; the backward writes `g·(softmax − one-hot)` from the logits and the kept
//! log-sum-exp. The `[n, v]` log-probabilities of the composition are never stored.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::{FloatTensor, IntTensor};

use crate::multiversion;
use crate::plumbing::par::*;
use crate::plumbing::simd::{exp, max, sum_map};
use crate::plumbing::{contiguous, ints, rows_per_task, tensor, values};

/// The loss per row (`0` for ignored rows) and the log-sum-exp per row.
pub(crate) fn forward(logits: &FlexTensor, labels: &[i64], ignore_index: i64) -> (FlexTensor, Vec<f32>) {
    let [n, v] = dims(logits);
    let logits = contiguous(logits);
    let x = values(&logits);
    let (mut loss, mut lse) = (vec![0.0; n], vec![0.0; n]);
    let rows = rows_per_task(v);
    loss.par_chunks_mut(rows)
        .zip(lse.par_chunks_mut(rows))
        .zip(x.par_chunks(rows * v).zip(labels.par_chunks(rows)))
        .for_each(|((loss, lse), (x, labels))| forward_rows(x, labels, ignore_index, loss, lse));
    (tensor(loss, [n]), lse)
}

multiversion! {
    fn forward_rows(x: &[f32], labels: &[i64], ignore_index: i64, loss: &mut [f32], lse: &mut [f32]) {
        let v = x.len() / labels.len();
        for (((x, &label), loss), lse) in x.chunks_exact(v).zip(labels).zip(loss.iter_mut()).zip(lse.iter_mut()) {
            let m = max(x);
            *lse = m + sum_map(x, |t| exp(t - m)).ln();
            *loss = if label == ignore_index { 0.0 } else { *lse - x[checked(label, v)] };
        }
    }
}

/// A label as an index into the row, or a panic naming it (as PyTorch's index error does).
#[inline(always)]
fn checked(label: i64, v: usize) -> usize {
    assert!((0..v as i64).contains(&label), "cross-entropy: label {label} is outside the vocabulary of {v}");
    label as usize
}

/// `dlogits[i] = dloss[i]·(softmax(logits[i]) − one-hot(label[i]))`, zero for ignored rows.
pub(crate) fn backward(
    logits: &FlexTensor,
    labels: &[i64],
    lse: &[f32],
    ignore_index: i64,
    dloss: &FlexTensor,
) -> FlexTensor {
    let [n, v] = dims(logits);
    let (logits, dloss) = (contiguous(logits), contiguous(dloss));
    let (x, g) = (values(&logits), values(&dloss));
    let mut dx = vec![0.0; n * v];
    let rows = rows_per_task(v);
    dx.par_chunks_mut(rows * v)
        .zip(x.par_chunks(rows * v))
        .zip(labels.par_chunks(rows).zip(lse.par_chunks(rows)).zip(g.par_chunks(rows)))
        .for_each(|((dx, x), ((labels, lse), g))| backward_rows(x, labels, lse, g, ignore_index, dx));
    tensor(dx, [n, v])
}

multiversion! {
    fn backward_rows(x: &[f32], labels: &[i64], lse: &[f32], g: &[f32], ignore_index: i64, dx: &mut [f32]) {
        let v = x.len() / labels.len();
        let rows = x.chunks_exact(v).zip(dx.chunks_exact_mut(v));
        for ((x, dx), ((&label, &lse), &g)) in rows.zip(labels.iter().zip(lse).zip(g)) {
            if label == ignore_index {
                dx.fill(0.0);
                continue;
            }
            for (d, &t) in dx.iter_mut().zip(x) {
                *d = g * exp(t - lse);
            }
            dx[label as usize] -= g;
        }
    }
}

fn dims(logits: &FlexTensor) -> [usize; 2] {
    let shape = logits.layout().shape();
    assert_eq!(shape.num_dims(), 2, "cross-entropy takes logits [n, vocab]");
    [shape[0], shape[1]]
}

#[derive(Debug)]
struct CrossEntropyBackward;

#[derive(Clone, Debug)]
struct State {
    logits: FlexTensor,
    labels: Vec<i64>,
    lse: Vec<f32>,
    ignore_index: i64,
}

impl Backward<Flex, 1> for CrossEntropyBackward {
    type State = State;

    fn backward(self, ops: Ops<State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dloss = grads.consume::<Flex>(&ops.node);
        if let [Some(node)] = ops.parents {
            let s = ops.state;
            grads.register::<Flex>(node.id, backward(&s.logits, &s.labels, &s.lse, s.ignore_index, &dloss));
        }
    }
}

pub(crate) fn autodiff<C: CheckpointStrategy>(
    logits: FloatTensor<Autodiff<Flex, C>>,
    labels: IntTensor<Autodiff<Flex, C>>,
    ignore_index: i64,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = [logits.node()];
    let (logits, labels) = (logits.into_primitive(), ints(&labels));
    match CrossEntropyBackward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (loss, lse) = forward(&logits, &labels, ignore_index);
            prep.finish(State { logits, labels, lse, ignore_index }, loss)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(&logits, &labels, ignore_index).0),
    }
}

/// `logits [n, v]`, `labels [n]` -> the NLL per row `[n]` (`0` where the label is
/// `ignore_index`) through the kernel (see [`super::applies`]).
pub fn cross_entropy(
    logits: burn::tensor::Tensor<2>,
    labels: burn::tensor::Tensor<1, burn::tensor::Int>,
    ignore_index: i64,
) -> burn::tensor::Tensor<1> {
    use super::CpuKernelOps;
    use burn::backend::Dispatch;
    burn::tensor::Tensor::from_dispatch(Dispatch::cpu_cross_entropy(
        logits.into_dispatch(),
        labels.into_dispatch(),
        ignore_index,
    ))
}

#[cfg(test)]
mod tests {
    use crate::plumbing::testing::{assert_close, device, random};
    use burn::tensor::{Int, Tensor, TensorData, activation::log_softmax};

    /// burn's composition, as `hearth_core::nn::loss` writes it: log-softmax, gather, mask.
    fn composed(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        let is_target = labels.clone().not_equal_elem(-100);
        let safe = labels.mask_fill(is_target.clone().bool_not(), 0);
        let picked = log_softmax(logits, 1).gather(1, safe.unsqueeze_dim::<2>(1)).squeeze_dim::<1>(1);
        picked.neg() * is_target.float()
    }

    #[test]
    fn values_and_gradients_match_the_composition() {
        for (n, v, seed) in [(6, 11, 1), (64, 512, 2), (9, 8192, 3)] {
            let logits = random([n, v], seed) * 8.0;
            let labels: Vec<i64> =
                (0..n as i64).map(|i| if i % 4 == 3 { -100 } else { (i * 7919) % v as i64 }).collect();
            let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device());
            let up = random([n], seed + 1);
            let run = |fused: bool| {
                let x = logits.clone().require_grad();
                let loss = if fused {
                    super::cross_entropy(x.clone(), labels.clone(), -100)
                } else {
                    composed(x.clone(), labels.clone())
                };
                let grads = (loss.clone() * up.clone()).sum().backward();
                (loss, x.grad(&grads).unwrap())
            };
            let ((loss, dx), (loss0, dx0)) = (run(true), run(false));
            assert_close(loss, loss0, 1e-6, "loss");
            assert_close(dx, dx0, 1e-6, "dlogits");
        }
    }
}
