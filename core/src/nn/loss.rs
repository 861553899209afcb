//! Cross-entropy as `torch.nn.CrossEntropyLoss(ignore_index=-100)` computes it: the mean negative
//! log-likelihood over the targets that are not ignored.

use burn::tensor::{Int, Tensor, activation::log_softmax};

/// HF's "not a target" label.
pub const IGNORE_INDEX: i64 = -100;

/// `logits [n, v]`, `labels [n]` (with `IGNORE_INDEX` for positions that are not targets) -> `[1]`.
/// With no target at all the result is NaN, as in PyTorch.
pub fn cross_entropy_with_ignore(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let (sum, count) = nll_sum_and_count(logits, labels);
    sum / count
}

/// The summed NLL over the targets and their number (both `[1]`), for losses accumulated across
/// batches (perplexity over a file, gradient accumulation weighted by tokens). Half-precision
/// logits are upcast: the log-softmax over the vocabulary runs in f32. On flex in f32 the
/// log-softmax and the pick are one kernel pass (`hearth_shaders::cpu::cross_entropy`), which
/// never stores the `[n, v]` log-probabilities.
pub fn nll_sum_and_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> (Tensor<1>, Tensor<1>) {
    let (logits, _) = super::dtype::upcast(logits);
    let is_target = labels.clone().not_equal_elem(IGNORE_INDEX); // [n]
    if hearth_shaders::cpu::applies(&logits.device()) {
        let nll = hearth_shaders::cpu::cross_entropy::cross_entropy(logits, labels, IGNORE_INDEX); // [n]
        return (nll.sum(), is_target.float().sum());
    }
    let safe_labels = labels.mask_fill(is_target.clone().bool_not(), 0); // [n]
    let log_probs = log_softmax(logits, 1); // [n, v]
    let picked = log_probs.gather(1, safe_labels.unsqueeze_dim::<2>(1)).squeeze_dim::<1>(1); // [n]
    let weight = is_target.float(); // [n]
    let sum = (picked * weight.clone()).sum().neg();
    (sum, weight.sum())
}
