//! The log-likelihood of a continuation given a context, `log P(continuation | context)`, for each
//! capability a model has: the primitive under zero-shot tasks and perplexity
//! (lm-evaluation-harness's `loglikelihood` request).
//! - a causal LM (GPT-2, LLaMA): one forward over `context ++ continuation`, the continuation's
//!   next-token log-probabilities summed;
//! - a masked LM (BERT): the pseudo-log-likelihood (Salazar et al. 2020, "Masked Language Model
//!   Scoring"): each continuation token masked in turn, its log-probability at the mask summed;
//! - an encoder-decoder (T5): the context into the encoder, the continuation scored by the decoder.
//!
//! "Greedy" is lm-eval's `is_greedy`: every continuation token is the argmax at its position.

use burn::tensor::{Device, Int, Tensor, activation::log_softmax};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::models::{CausalLm, LanguageModel, MaskedLm, Model, Seq2SeqLm};
use crate::objectives::batch::int_tensor;
use crate::tokenizer::Tokenizer;

/// Score `continuation` after `context` (token ids, no special tokens).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub context: Vec<u32>,
    pub continuation: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LogLikelihood {
    /// `Σ log p(token)` over the continuation (natural log).
    pub logprob: f64,
    /// Every continuation token was the model's most likely one.
    pub greedy: bool,
}

/// A model ready to score requests: the capability it scores with, its special tokens and its
/// longest input.
pub enum Scorer<'a> {
    Causal { model: &'a dyn CausalLm, bos: u32, max_len: usize },
    Masked { model: &'a dyn MaskedLm, cls: u32, sep: u32, mask: u32, max_len: usize },
    Seq2Seq { model: &'a dyn Seq2SeqLm, eos: u32, pad: u32 },
}

impl<'a> Scorer<'a> {
    pub fn new(model: &'a Model, tokenizer: &Tokenizer) -> Result<Self> {
        let need = |id: Option<u32>, what: &str| {
            id.ok_or_else(|| Error::Config(format!("the tokenizer has no {what} token, which scoring needs")))
        };
        if let Some(model) = model.causal_lm() {
            return Ok(Scorer::Causal {
                model,
                bos: need(tokenizer.eos_id(), "end-of-text")?,
                max_len: model.context_length(),
            });
        }
        if let Some(model) = model.masked_lm() {
            return Ok(Self::masked(model, tokenizer)?);
        }
        if let Some(model) = model.seq2seq_lm() {
            return Ok(Scorer::Seq2Seq {
                model,
                eos: need(tokenizer.eos_id(), "</s>")?,
                pad: tokenizer.pad_id().unwrap_or(model.decoder_start()),
            });
        }
        Err(Error::Config("this model has no language-model head to score text with".into()))
    }

    /// A masked LM's pseudo-log-likelihood scorer, with its special tokens from `tokenizer`.
    pub fn masked(model: &'a dyn MaskedLm, tokenizer: &Tokenizer) -> Result<Self> {
        let need = |id: Option<u32>, what: &str| {
            id.ok_or_else(|| Error::Config(format!("the tokenizer has no {what} token, which scoring needs")))
        };
        let sep = need(tokenizer.eos_id(), "[SEP]")?;
        Ok(Scorer::Masked {
            model,
            cls: tokenizer.cls_id().unwrap_or(sep),
            sep,
            mask: need(tokenizer.mask_id(), "[MASK]")?,
            max_len: model.context_length(),
        })
    }

    /// One result per request, in order, computed `batch_size` rows at a time.
    pub fn loglikelihoods(
        &self,
        requests: &[Request],
        batch_size: usize,
        device: &Device,
    ) -> Result<Vec<LogLikelihood>> {
        if let Some(i) = requests.iter().position(|r| r.continuation.is_empty()) {
            return Err(Error::Input(format!("request {i} has an empty continuation; there is nothing to score")));
        }
        match self {
            Scorer::Causal { model, bos, max_len } => {
                let rows: Vec<Vec<u32>> = requests
                    .iter()
                    .map(|r| {
                        let context = if r.context.is_empty() { &[*bos][..] } else { &r.context[..] };
                        let mut row: Vec<u32> = context.iter().chain(&r.continuation).copied().collect();
                        if row.len() > max_len + 1 {
                            row.drain(..row.len() - (max_len + 1)); // keep the end: the continuation matters
                        }
                        row
                    })
                    .collect();
                let scored = causal_token_logprobs(*model, &rows, batch_size, device)?;
                Ok(requests.iter().zip(scored).map(|(r, s)| sum_last(&s, r.continuation.len().min(s.len()))).collect())
            }
            Scorer::Masked { model, cls, sep, mask, max_len } => {
                // One row per continuation token, that token masked.
                let mut rows = Vec::new();
                for (i, r) in requests.iter().enumerate() {
                    let room = max_len.saturating_sub(2);
                    let cont = &r.continuation[r.continuation.len().saturating_sub(room)..];
                    let ctx = &r.context[r.context.len().saturating_sub(room - cont.len())..];
                    let base: Vec<u32> = std::iter::once(*cls)
                        .chain(ctx.iter().copied())
                        .chain(cont.iter().copied())
                        .chain([*sep])
                        .collect();
                    for (j, &target) in cont.iter().enumerate() {
                        let at = 1 + ctx.len() + j;
                        let mut row = base.clone();
                        row[at] = *mask;
                        rows.push((i, row, at, target));
                    }
                }
                let mut out = vec![LogLikelihood { logprob: 0.0, greedy: true }; requests.len()];
                for chunk in rows.chunks(batch_size.max(1)) {
                    let inputs: Vec<Vec<u32>> = chunk.iter().map(|c| c.1.clone()).collect();
                    let (ids, attention) = padded(&inputs, 0, device);
                    let logits = model.masked_logits(ids, Some(attention)); // [b, t, v]
                    let targets: Vec<Vec<u32>> = chunk
                        .iter()
                        .map(|c| (0..c.1.len()).map(|p| if p == c.2 { c.3 } else { 0 }).collect())
                        .collect();
                    let (logp, argmax) = picked_logprobs(logits, &targets, device)?;
                    for (k, c) in chunk.iter().enumerate() {
                        out[c.0].logprob += logp[k][c.2] as f64;
                        out[c.0].greedy &= argmax[k][c.2] == c.3;
                    }
                }
                Ok(out)
            }
            Scorer::Seq2Seq { model, eos, pad } => {
                let start = &model.decoder_start();
                let mut out = Vec::with_capacity(requests.len());
                for chunk in requests.chunks(batch_size.max(1)) {
                    let encoder: Vec<Vec<u32>> =
                        chunk.iter().map(|r| r.context.iter().copied().chain([*eos]).collect()).collect();
                    let decoder: Vec<Vec<u32>> = chunk
                        .iter()
                        .map(|r| {
                            std::iter::once(*start)
                                .chain(r.continuation[..r.continuation.len() - 1].iter().copied())
                                .collect()
                        })
                        .collect();
                    let (enc_ids, enc_mask) = padded(&encoder, *pad, device);
                    let (dec_ids, _) = padded(&decoder, *pad, device);
                    let encoded = model.encode(enc_ids, Some(enc_mask.clone()));
                    let logits = model.decode(dec_ids, encoded, Some(enc_mask)); // [b, t_dec, v]
                    let targets: Vec<Vec<u32>> = chunk.iter().map(|r| r.continuation.clone()).collect();
                    let (logp, argmax) = picked_logprobs(logits, &targets, device)?;
                    for (k, r) in chunk.iter().enumerate() {
                        let n = r.continuation.len();
                        out.push(LogLikelihood {
                            logprob: logp[k][..n].iter().map(|&x| x as f64).sum(),
                            greedy: argmax[k][..n] == r.continuation[..],
                        });
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Per row, `(log p(row[i+1] | row[..=i]), row[i+1] is the argmax)` for every `i < len - 1`.
/// Rows are right-padded into batches (padding after a causal row changes nothing before it).
pub fn causal_token_logprobs(
    model: &dyn CausalLm,
    rows: &[Vec<u32>],
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<(f64, bool)>>> {
    // Longest first, so that each batch pads little; results go back in the callers' order.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rows[i].len()));
    let mut out = vec![Vec::new(); rows.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let inputs: Vec<Vec<u32>> =
            chunk.iter().map(|&i| rows[i][..rows[i].len().saturating_sub(1)].to_vec()).collect();
        if inputs.iter().all(Vec::is_empty) {
            continue;
        }
        let targets: Vec<Vec<u32>> = chunk.iter().map(|&i| rows[i].get(1..).unwrap_or_default().to_vec()).collect();
        let (ids, _) = padded(&inputs, 0, device);
        let logits = model.causal_logits(ids, None); // [b, t, v]
        let (logp, argmax) = picked_logprobs(logits, &targets, device)?;
        for (k, &i) in chunk.iter().enumerate() {
            out[i] = targets[k].iter().enumerate().map(|(p, &t)| (logp[k][p] as f64, argmax[k][p] == t)).collect();
        }
    }
    Ok(out)
}

/// The last `n` scores summed, and whether all of them were greedy.
fn sum_last(scores: &[(f64, bool)], n: usize) -> LogLikelihood {
    let tail = &scores[scores.len() - n..];
    LogLikelihood { logprob: tail.iter().map(|s| s.0).sum(), greedy: tail.iter().all(|s| s.1) }
}

/// Rows right-padded with `pad` into `[b, t]` ids and the matching attention mask.
fn padded(rows: &[Vec<u32>], pad: u32, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let ids: Vec<Vec<i64>> =
        rows.iter().map(|r| (0..t).map(|i| r.get(i).copied().unwrap_or(pad) as i64).collect()).collect();
    let mask: Vec<Vec<i64>> = rows.iter().map(|r| (0..t).map(|i| (i < r.len()) as i64).collect()).collect();
    (int_tensor(&ids, device), int_tensor(&mask, device))
}

/// `log_softmax(logits)` at `targets` (rows shorter than `t` padded with 0) and the argmax, per
/// position, read back as `[b][t]`.
fn picked_logprobs(logits: Tensor<3>, targets: &[Vec<u32>], device: &Device) -> Result<(Vec<Vec<f32>>, Vec<Vec<u32>>)> {
    let [b, t, _] = logits.dims();
    let padded_targets: Vec<Vec<i64>> =
        targets.iter().map(|r| (0..t).map(|i| r.get(i).copied().unwrap_or(0) as i64).collect()).collect();
    let targets = int_tensor(&padded_targets, device).unsqueeze_dim::<3>(2); // [b, t, 1]
    let argmax = logits.clone().argmax(2); // [b, t, 1]
    let logp = log_softmax(logits, 2).gather(2, targets); // [b, t, 1]
    let logp: Vec<f32> = logp
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Input(format!("reading scores from the device: {e:?}")))?;
    let argmax: Vec<i64> = argmax
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| Error::Input(format!("reading predictions from the device: {e:?}")))?;
    Ok((
        (0..b).map(|i| logp[i * t..(i + 1) * t].to_vec()).collect(),
        (0..b).map(|i| argmax[i * t..(i + 1) * t].iter().map(|&x| x as u32).collect()).collect(),
    ))
}
