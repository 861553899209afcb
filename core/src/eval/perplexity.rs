//! Perplexity and its relatives, per family:
//! - causal: exp(mean NLL) over a token stream with a sliding window (HF's "Perplexity of
//!   fixed-length models": windows of `max_len` tokens every `stride`, each token scored once, with
//!   up to `max_len - stride` tokens of context), and bits per byte, which compares models whose
//!   tokenizers differ;
//! - masked: pseudo-perplexity (every token masked in turn) and the masked-LM loss and accuracy
//!   under the 15% / 80-10-10 rule with a fixed seed;
//! - encoder-decoder: the span-corruption loss and token accuracy, with a fixed seed.

use std::f64::consts::LN_2;

use burn::tensor::{Device, Int, Tensor};
use rand::SeedableRng;
use serde::Serialize;

use super::score::causal_token_logprobs;
use crate::error::{Error, Result};
use crate::models::{CausalLm, LanguageModel, MaskedLm, ModelInputs};
use crate::nn::loss::{IGNORE_INDEX, nll_sum_and_count};
use crate::objectives::{Collator, Rng};

/// A summed negative log-likelihood over `tokens` predictions of a text of `bytes` UTF-8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Nll {
    pub nll: f64,
    pub tokens: usize,
    pub bytes: usize,
}

impl Nll {
    /// Mean NLL per token (nats).
    pub fn loss(&self) -> f64 {
        self.nll / self.tokens.max(1) as f64
    }

    pub fn perplexity(&self) -> f64 {
        self.loss().exp()
    }

    /// `Σ NLL / (ln 2 · bytes)`: bits per byte of text, whatever the tokenizer.
    pub fn bits_per_byte(&self) -> f64 {
        self.nll / (LN_2 * self.bytes.max(1) as f64)
    }
}

/// The windows `[begin, end)` of a sliding-window evaluation of `n` tokens, and from which index
/// of each window its tokens are scored: every token but the first is scored exactly once.
/// Windows overlap by at least one token (a stride of `max_len` is taken as `max_len - 1`), so no
/// window's first token goes unscored for want of context, as it does in HF's recipe.
pub fn sliding_windows(n: usize, max_len: usize, stride: usize) -> Vec<(usize, usize, usize)> {
    let max_len = max_len.max(2);
    let stride = stride.clamp(1, max_len - 1);
    let mut windows = Vec::new();
    let mut prev_end = 0;
    let mut begin = 0;
    while begin < n {
        let end = (begin + max_len).min(n);
        // The prediction of token `j` (window-relative, j ≥ 1) scores it; skip those already scored.
        let first = (prev_end.max(begin + 1)) - begin;
        if first < end - begin {
            windows.push((begin, end, first));
        }
        prev_end = end;
        if end == n {
            break;
        }
        begin += stride;
    }
    windows
}

/// Sliding-window NLL of a causal model over `tokens` (`bytes`: the text's length, for bits per byte).
pub fn causal_nll(
    model: &dyn CausalLm,
    tokens: &[u32],
    bytes: usize,
    max_len: usize,
    stride: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Nll> {
    if tokens.len() < 2 {
        return Err(Error::Input("the text has fewer than two tokens; there is nothing to predict".into()));
    }
    let windows = sliding_windows(tokens.len(), max_len, stride);
    let mut total = Nll { bytes, ..Default::default() };
    for group in windows.chunks(batch_size.max(1)) {
        let rows: Vec<Vec<u32>> = group.iter().map(|&(b, e, _)| tokens[b..e].to_vec()).collect();
        let scored = causal_token_logprobs(model, &rows, batch_size, device)?;
        for (&(_, _, first), s) in group.iter().zip(scored) {
            // s[j - 1] predicts window token j.
            for &(logp, _) in &s[first - 1..] {
                total.nll -= logp;
                total.tokens += 1;
            }
        }
    }
    Ok(total)
}

/// NLL of each row of a causal model on its own (no window): what HF's loss over a batch of
/// unpadded rows averages.
pub fn causal_rows_nll(model: &dyn CausalLm, rows: &[Vec<u32>], device: &Device) -> Result<Nll> {
    let scored = causal_token_logprobs(model, rows, rows.len().max(1), device)?;
    let mut total = Nll::default();
    for s in scored {
        total.nll -= s.iter().map(|x| x.0).sum::<f64>();
        total.tokens += s.len();
    }
    Ok(total)
}

/// Pseudo-log-likelihood of a masked model over `tokens`, cut into sequences of `max_len - 2`
/// between [CLS] and [SEP]: each token masked in turn (one forward row per token).
#[allow(clippy::too_many_arguments)]
pub fn pseudo_nll(
    model: &dyn MaskedLm,
    tokens: &[u32],
    bytes: usize,
    (cls, sep, mask): (u32, u32, u32),
    max_len: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Nll> {
    use super::score::{Request, Scorer};
    let scorer = Scorer::Masked { model, cls, sep, mask, max_len };
    let requests: Vec<Request> = tokens
        .chunks(max_len.saturating_sub(2).max(1))
        .map(|c| Request { context: Vec::new(), continuation: c.to_vec() })
        .collect();
    let scored = scorer.loglikelihoods(&requests, batch_size, device)?;
    Ok(Nll { nll: -scored.iter().map(|s| s.logprob).sum::<f64>(), tokens: tokens.len(), bytes })
}

/// The training objective's loss and accuracy on held-out tokens, with masks or spans drawn from
/// `seed`: the same number for the same weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ObjectiveEval {
    /// Mean cross-entropy per target.
    pub loss: f64,
    /// Fraction of targets that are the model's argmax.
    pub accuracy: f64,
    pub targets: usize,
}

pub fn objective_eval<M: LanguageModel>(
    model: &M,
    collator: &Collator,
    tokens: &[u32],
    block_size: usize,
    batch_size: usize,
    max_batches: usize,
    seed: u64,
    device: &Device,
) -> Result<ObjectiveEval> {
    let window = collator.window(block_size);
    let windows: Vec<Vec<u32>> = tokens.chunks_exact(window).map(<[u32]>::to_vec).collect();
    if windows.is_empty() {
        return Err(Error::Input(format!(
            "the text has {} tokens, fewer than one sequence of {window}; give more text or a smaller block size",
            tokens.len()
        )));
    }
    let mut rng = Rng::seed_from_u64(seed);
    let shifted = matches!(collator, Collator::Causal);
    let (mut nll, mut correct, mut targets) = (0.0, 0usize, 0usize);
    for group in windows.chunks(batch_size.max(1)).take(max_batches.max(1)) {
        let batch = collator.batch(group, &mut rng)?;
        let s = labelled_nll(model, batch.to_inputs(device), shifted)?;
        nll += s.nll;
        correct += s.correct;
        targets += s.targets;
    }
    Ok(ObjectiveEval { loss: nll / targets.max(1) as f64, accuracy: correct as f64 / targets.max(1) as f64, targets })
}

/// Summed NLL over the labelled targets of one batch, their number, and how many are the argmax.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelledNll {
    pub nll: f64,
    pub targets: usize,
    pub correct: usize,
}

/// The NLL a family's HF head averages into its loss, as a sum (`shifted`: GPT-2's labels are the
/// inputs, position `i` predicting label `i + 1`; otherwise labels align with the logits).
pub fn labelled_nll<M: LanguageModel>(model: &M, inputs: ModelInputs, shifted: bool) -> Result<LabelledNll> {
    let labels = inputs.labels.clone().ok_or_else(|| Error::Input("the batch has no labels".into()))?;
    let logits = model.forward_inputs(ModelInputs { labels: None, ..inputs })?.logits;
    let [b, t, v] = logits.dims();
    let (logits, labels): (Tensor<3>, Tensor<2, Int>) =
        if shifted { (logits.slice([0..b, 0..t - 1, 0..v]), labels.slice([0..b, 1..t])) } else { (logits, labels) };
    let [b, t, v] = logits.dims();
    let is_target = labels.clone().not_equal_elem(IGNORE_INDEX);
    let hits = logits.clone().argmax(2).squeeze_dim::<2>(2).equal(labels.clone()).bool_and(is_target).int().sum();
    let (sum, count) = nll_sum_and_count(logits.reshape([b * t, v]), labels.reshape([b * t]));
    Ok(LabelledNll {
        nll: sum.into_scalar::<f32>() as f64,
        targets: count.into_scalar::<f32>() as usize,
        correct: hits.into_scalar::<i64>() as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_windows_score_every_token_once() {
        for (n, max_len, stride) in [(10, 4, 2), (10, 4, 4), (10, 4, 1), (3, 8, 4), (17, 5, 3), (2, 2, 2)] {
            let mut scored = vec![0; n];
            for (b, e, first) in sliding_windows(n, max_len, stride) {
                assert!(e - b <= max_len);
                for j in first..e - b {
                    scored[b + j] += 1;
                }
            }
            // Token 0 has no context; the others each once.
            assert_eq!(scored[0], 0, "{n} {max_len} {stride}");
            assert!(scored[1..].iter().all(|&c| c == 1), "{n} {max_len} {stride}: {scored:?}");
        }
        // With stride < max_len, a window's scored tokens have max_len - stride tokens of context.
        assert_eq!(sliding_windows(10, 4, 2), vec![(0, 4, 1), (2, 6, 2), (4, 8, 2), (6, 10, 2)]);
    }

    #[test]
    fn bits_per_byte_and_perplexity() {
        let n = Nll { nll: 8.0 * LN_2, tokens: 4, bytes: 16 };
        assert!((n.bits_per_byte() - 0.5).abs() < 1e-12);
        assert!((n.perplexity() - 4.0).abs() < 1e-12); // mean NLL = 2 ln 2
    }
}
