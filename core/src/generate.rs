//! Using a trained model: next-token distributions, sampling (greedy, temperature, top-k, top-p),
//! [MASK] filling, and an encoder-decoder's text-to-text decoding, each on the capability it needs. Host-side sampling over logits read from the
//! device, one position at a time (no KV cache: these are small models and short outputs). The
//! functions are `async` because a browser must await its reads; native code runs them with
//! [`crate::readback::block_on`].

use burn::tensor::{Device, Int, Tensor, TensorData, activation::softmax};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::{CausalLm, MaskedLm, Seq2SeqLm};
use crate::objectives::Rng;
use crate::readback;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 = greedy.
    pub temperature: f64,
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1 = all).
    pub top_p: f64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.8, top_k: 40, top_p: 0.95 }
    }
}

impl Sampling {
    pub const GREEDY: Sampling = Sampling { temperature: 0.0, top_k: 0, top_p: 1.0 };

    /// Settings from a user (the CLI's flags, the page's fields), refused outside their ranges:
    /// `temperature ≥ 0` (0 = greedy), `top_k ≥ 0` (0 = all), `0 < top_p ≤ 1` (1 = all).
    pub fn new(temperature: f64, top_k: i64, top_p: f64) -> Result<Self> {
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(Error::Input(format!(
                "temperature {temperature} is out of range; it must be ≥ 0 (0 = greedy)"
            )));
        }
        if top_k < 0 {
            return Err(Error::Input(format!("top_k {top_k} is out of range; it must be ≥ 0 (0 = no limit)")));
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(Error::Input(format!("top_p {top_p} is out of range; it must lie in (0, 1] (1 = no limit)")));
        }
        Ok(Self { temperature, top_k: top_k as usize, top_p })
    }

    /// A token drawn from `logits` under these settings.
    pub fn pick(&self, logits: &[f32], rng: &mut Rng) -> u32 {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        let probs = self.filtered_probs(logits);
        let r: f64 = rng.random();
        let mut acc = 0.0;
        for &(id, p) in &probs {
            acc += p;
            if r < acc {
                return id;
            }
        }
        probs.last().map_or(0, |&(id, _)| id)
    }

    /// `(id, probability)` after temperature, top-k and top-p, renormalised, most likely first.
    pub fn filtered_probs(&self, logits: &[f32]) -> Vec<(u32, f64)> {
        let t = self.temperature.max(1e-6);
        let mut probs = softmax_host(logits, t);
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        if self.top_k > 0 {
            probs.truncate(self.top_k);
        }
        if self.top_p < 1.0 {
            let mut acc = 0.0;
            let keep = probs.iter().position(|&(_, p)| {
                acc += p;
                acc >= self.top_p
            });
            if let Some(k) = keep {
                probs.truncate(k + 1);
            }
        }
        let total: f64 = probs.iter().map(|p| p.1).sum();
        probs.iter().map(|&(id, p)| (id, p / total)).collect()
    }
}

/// A number of tokens to generate from a user, refused below 1.
pub fn max_new_tokens(n: i64) -> Result<usize> {
    if n < 1 {
        return Err(Error::Input(format!("max_new_tokens {n} is out of range; it must be ≥ 1")));
    }
    Ok(n as usize)
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i as u32)
}

/// `softmax(logits / t)` as `(id, p)`, in id order.
pub fn softmax_host(logits: &[f32], t: f64) -> Vec<(u32, f64)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| ((l as f64 - max) / t).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().enumerate().map(|(i, e)| (i as u32, e / sum)).collect()
}

/// The `k` most likely tokens and their probabilities.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let mut p = softmax_host(logits, 1.0);
    p.sort_by(|a, b| b.1.total_cmp(&a.1));
    p.truncate(k);
    p
}

fn ids_tensor(ids: &[u32], device: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, ids.len()]), device)
}

/// The logits `[vocab]` at row `pos` of `logits [1, t, vocab]` (an awaited device read).
async fn row(logits: Tensor<3>, pos: usize) -> Result<Vec<f32>> {
    let [_, _, v] = logits.dims();
    readback::f32s(logits.slice([0..1, pos..pos + 1, 0..v])).await
}

/// Next-token logits of a causal LM after `ids` (the last `context_length` of them).
pub async fn next_token_logits(model: &dyn CausalLm, ids: &[u32], device: &Device) -> Result<Vec<f32>> {
    if ids.is_empty() {
        return Err(Error::Input("the prompt is empty; give at least one token".into()));
    }
    let context = &ids[ids.len().saturating_sub(model.context_length())..];
    let logits = model.causal_logits(ids_tensor(context, device), None);
    row(logits, context.len() - 1).await
}

/// Continues `prompt` by `max_new` tokens, stopping early at `eos` (the context slides past the
/// model's length).
pub async fn generate(
    model: &dyn CausalLm,
    prompt: &[u32],
    max_new: usize,
    sampling: Sampling,
    eos: Option<u32>,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<u32>> {
    let mut ids = prompt.to_vec();
    for _ in 0..max_new {
        let next = sampling.pick(&next_token_logits(model, &ids, device).await?, rng);
        ids.push(next);
        if Some(next) == eos {
            break;
        }
    }
    Ok(ids[prompt.len()..].to_vec())
}

/// For each `mask_id` position in `ids`, the `k` most likely tokens with their probabilities.
pub async fn fill_mask(
    model: &dyn MaskedLm,
    ids: &[u32],
    mask_id: u32,
    k: usize,
    device: &Device,
) -> Result<Vec<Vec<(u32, f64)>>> {
    let positions: Vec<usize> = ids.iter().enumerate().filter(|&(_, &t)| t == mask_id).map(|(i, _)| i).collect();
    if positions.is_empty() {
        return Err(Error::Input("the text has no [MASK] token to fill".into()));
    }
    let logits = model.masked_logits(ids_tensor(ids, device), None);
    let probs = softmax(logits, 2);
    let mut filled = Vec::with_capacity(positions.len());
    for p in positions {
        let row = row(probs.clone(), p).await?;
        let mut v: Vec<(u32, f64)> = row.iter().enumerate().map(|(i, &x)| (i as u32, x as f64)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(k);
        filled.push(v);
    }
    Ok(filled)
}

/// An encoder-decoder: encodes `input`, then decodes up to `max_new` tokens from the decoder start
/// token.
pub async fn text2text(
    model: &dyn Seq2SeqLm,
    input: &[u32],
    eos: u32,
    max_new: usize,
    sampling: Sampling,
    rng: &mut Rng,
    device: &Device,
) -> Result<Vec<u32>> {
    let encoded = model.encode(ids_tensor(input, device), None);
    let mut out = vec![model.decoder_start()];
    for _ in 0..max_new {
        let logits = model.decode(ids_tensor(&out, device), encoded.clone(), None);
        let next = sampling.pick(&row(logits, out.len() - 1).await?, rng);
        out.push(next);
        if next == eos {
            break;
        }
    }
    Ok(out[1..].to_vec())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn sampling_respects_top_k_top_p_and_temperature() {
        let logits = [2.0f32, 1.0, 0.0, -1.0, 3.0];
        assert_eq!(Sampling::GREEDY.pick(&logits, &mut Rng::seed_from_u64(0)), 4);
        let k2 = Sampling { temperature: 1.0, top_k: 2, top_p: 1.0 };
        let mut rng = Rng::seed_from_u64(1);
        let draws: Vec<u32> = (0..2000).map(|_| k2.pick(&logits, &mut rng)).collect();
        assert!(draws.iter().all(|&t| t == 4 || t == 0));
        let share4 = draws.iter().filter(|&&t| t == 4).count() as f64 / 2000.0;
        let want = 1.0 / (1.0 + (-1.0f64).exp()); // e^3 / (e^3 + e^2)
        assert!((share4 - want).abs() < 0.03, "{share4} vs {want}");
        let p = Sampling { temperature: 1.0, top_k: 0, top_p: 0.5 };
        assert_eq!(p.filtered_probs(&logits), vec![(4, 1.0)], "top token alone holds 0.64 ≥ 0.5");
        let probs = top_k(&logits, 3);
        assert_eq!(probs.iter().map(|p| p.0).collect::<Vec<_>>(), vec![4, 0, 1]);
        assert!(probs.iter().map(|p| p.1).sum::<f64>() <= 1.0);
    }

    #[test]
    fn sampling_settings_out_of_range_are_refused_with_the_range() {
        assert_eq!(Sampling::new(0.8, 40, 0.95).unwrap(), Sampling { temperature: 0.8, top_k: 40, top_p: 0.95 });
        assert_eq!(Sampling::new(0.0, 0, 1.0).unwrap(), Sampling::GREEDY);
        for (t, k, p, names) in [
            (-0.1, 0, 1.0, "temperature -0.1 is out of range; it must be ≥ 0"),
            (f64::NAN, 0, 1.0, "temperature NaN is out of range"),
            (f64::INFINITY, 0, 1.0, "temperature inf is out of range"),
            (1.0, -1, 1.0, "top_k -1 is out of range; it must be ≥ 0"),
            (1.0, 0, 2.0, "top_p 2 is out of range; it must lie in (0, 1]"),
            (1.0, 0, 0.0, "top_p 0 is out of range"),
            (1.0, 0, f64::NAN, "top_p NaN is out of range"),
        ] {
            let err = Sampling::new(t, k, p).unwrap_err().to_string();
            assert!(err.contains(names), "{err}");
        }
        assert_eq!(max_new_tokens(1).unwrap(), 1);
        let err = max_new_tokens(0).unwrap_err().to_string();
        assert!(err.contains("max_new_tokens 0 is out of range; it must be ≥ 1"), "{err}");
    }
}
