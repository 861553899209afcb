//! T5's objectives. Span corruption: 15% of the tokens, in spans of mean length 3, are each
//! replaced by a sentinel (`<extra_id_0>`, `<extra_id_1>`, …) in the input, and the target lists
//! each sentinel followed by the span it hides. Prefix LM and text-to-text: the encoder reads a
//! prefix (a task such as "summarize: " and/or the start of a document), the decoder writes the rest.
//! Reference: `random_spans_noise_mask` in transformers/examples/flax/language-modeling/run_t5_mlm_flax.py.

use rand::Rng as _;
use rand::seq::SliceRandom;

use super::batch::pad_rows;
use super::{Batch, Rng};
use crate::error::{Error, Result};
use crate::models::t5::shift_right;
use crate::nn::loss::IGNORE_INDEX;

#[derive(Clone, Debug, PartialEq)]
pub struct SpanCorruption {
    /// Fraction of tokens that are noise (0.15).
    pub noise_density: f64,
    /// Mean length of a noise span (3.0).
    pub mean_span_length: f64,
    /// `sentinels[i]` is the id of `<extra_id_i>`.
    pub sentinels: Vec<u32>,
    pub eos: u32,
}

impl SpanCorruption {
    pub fn t5(sentinels: Vec<u32>, eos: u32) -> Self {
        Self { noise_density: 0.15, mean_span_length: 3.0, sentinels, eos }
    }

    /// Which of `length` tokens are noise: alternating non-noise / noise spans, starting with
    /// non-noise and ending with noise, lengths from random partitions.
    pub fn noise_mask(&self, length: usize, rng: &mut Rng) -> Vec<bool> {
        if length < 2 {
            return vec![false; length];
        }
        let num_noise = ((length as f64 * self.noise_density).round() as usize).clamp(1, length - 1);
        let num_nonnoise = length - num_noise;
        let num_spans = ((num_noise.min(num_nonnoise) as f64 / self.mean_span_length).round() as usize).max(1);
        let noise_lengths = random_segmentation(num_noise, num_spans, rng);
        let nonnoise_lengths = random_segmentation(num_nonnoise, num_spans, rng);
        let mut mask = Vec::with_capacity(length);
        for (n, k) in nonnoise_lengths.into_iter().zip(noise_lengths) {
            mask.extend(std::iter::repeat_n(false, n));
            mask.extend(std::iter::repeat_n(true, k));
        }
        mask
    }

    /// Corrupts one sequence: `(encoder input, decoder target)`, each ending with EOS.
    pub fn corrupt(&self, ids: &[u32], rng: &mut Rng) -> Result<(Vec<u32>, Vec<u32>)> {
        let mask = self.noise_mask(ids.len(), rng);
        let spans = mask.iter().enumerate().filter(|&(i, &m)| m && (i == 0 || !mask[i - 1])).count();
        if spans > self.sentinels.len() {
            return Err(Error::Input(format!(
                "{spans} noise spans but only {} sentinel tokens; use shorter sequences or a tokenizer with more <extra_id_N>",
                self.sentinels.len()
            )));
        }
        let (mut input, mut target) = (Vec::new(), Vec::new());
        let mut span = 0;
        for (i, (&t, &noise)) in ids.iter().zip(&mask).enumerate() {
            let starts_span = noise && (i == 0 || !mask[i - 1]);
            if starts_span {
                input.push(self.sentinels[span]);
                target.push(self.sentinels[span]);
                span += 1;
            }
            if noise { target.push(t) } else { input.push(t) }
        }
        input.push(self.eos);
        target.push(self.eos);
        Ok((input, target))
    }

    /// The original sequence back from a corrupted pair: each input sentinel replaced by the
    /// tokens after the same sentinel in the target.
    pub fn reconstruct(&self, input: &[u32], target: &[u32]) -> Vec<u32> {
        let body = |s: &[u32]| s.strip_suffix(&[self.eos]).unwrap_or(s).to_vec();
        let (input, target) = (body(input), body(target));
        let mut out = Vec::new();
        for t in input {
            match self.sentinels.iter().position(|&s| s == t) {
                Some(_) => {
                    let start = target.iter().position(|&x| x == t).expect("sentinel in target") + 1;
                    out.extend(target[start..].iter().take_while(|x| !self.sentinels.contains(x)));
                }
                None => out.push(t),
            }
        }
        out
    }

    /// A batch of corrupted sequences, padded with `pad`; decoder inputs by `shift_right`.
    pub fn batch(&self, sequences: &[Vec<u32>], pad: u32, decoder_start: u32, rng: &mut Rng) -> Result<Batch> {
        let pairs = sequences.iter().map(|s| self.corrupt(s, rng)).collect::<Result<Vec<_>>>()?;
        Ok(encoder_decoder_batch(&pairs, pad, decoder_start))
    }
}

/// A random partition of `items` into `segments` non-empty parts (their lengths, in order).
fn random_segmentation(items: usize, segments: usize, rng: &mut Rng) -> Vec<usize> {
    let segments = segments.min(items).max(1);
    let mut boundary: Vec<bool> = (0..items - 1).map(|i| i < segments - 1).collect();
    boundary.shuffle(rng);
    let mut lengths = vec![1];
    for b in boundary {
        if b { lengths.push(1) } else { *lengths.last_mut().unwrap() += 1 }
    }
    lengths
}

/// Splits a document at a uniformly drawn point (at least one token each side): the encoder
/// reads the prefix, the decoder predicts the rest (T5's prefix-LM objective).
pub fn prefix_lm_split(ids: &[u32], eos: u32, rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
    let cut = if ids.len() < 2 { ids.len() } else { rng.random_range(1..ids.len()) };
    let mut input = ids[..cut].to_vec();
    let mut target = ids[cut..].to_vec();
    input.push(eos);
    target.push(eos);
    (input, target)
}

/// A text-to-text example: the task prefix ("summarize: ") then the source for the encoder, the
/// target for the decoder; both end with EOS.
pub fn text_to_text(task_prefix: &[u32], source: &[u32], target: &[u32], eos: u32) -> (Vec<u32>, Vec<u32>) {
    let input = task_prefix.iter().chain(source).copied().chain([eos]).collect();
    let target = target.iter().copied().chain([eos]).collect();
    (input, target)
}

/// Encoder inputs padded with `pad` (and their mask), labels padded with `IGNORE_INDEX`, decoder
/// inputs shifted right from the labels.
pub fn encoder_decoder_batch(pairs: &[(Vec<u32>, Vec<u32>)], pad: u32, decoder_start: u32) -> Batch {
    let to_i64 = |v: &Vec<u32>| v.iter().map(|&t| t as i64).collect::<Vec<_>>();
    let (input_ids, mask) = pad_rows(&pairs.iter().map(|(i, _)| to_i64(i)).collect::<Vec<_>>(), pad as i64);
    let (labels, _) = pad_rows(&pairs.iter().map(|(_, t)| to_i64(t)).collect::<Vec<_>>(), IGNORE_INDEX);
    let decoder_input_ids = shift_right(&labels, decoder_start, pad);
    Batch { input_ids, attention_mask: Some(mask), decoder_input_ids: Some(decoder_input_ids), labels: Some(labels) }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    const EOS: u32 = 1;

    fn sentinels() -> Vec<u32> {
        (0..100).map(|i| 32099 - i).collect()
    }

    #[test]
    fn noise_density_span_length_and_exact_reconstruction() {
        let sc = SpanCorruption::t5(sentinels(), EOS);
        let mut rng = Rng::seed_from_u64(11);
        let (mut tokens, mut noise, mut spans) = (0usize, 0usize, 0usize);
        for _ in 0..1000 {
            let len = rng.random_range(64..=512);
            let ids: Vec<u32> = (0..len).map(|_| rng.random_range(2..32000)).collect();
            let mask = sc.noise_mask(len, &mut rng);
            assert_eq!(mask.len(), len);
            assert!(!mask[0] && mask[len - 1], "spans alternate, starting clean and ending with noise");
            let n = mask.iter().filter(|&&m| m).count();
            assert_eq!(n, (len as f64 * 0.15).round() as usize);
            tokens += len;
            noise += n;
            spans += mask.iter().enumerate().filter(|&(i, &m)| m && (i == 0 || !mask[i - 1])).count();

            let (input, target) = sc.corrupt(&ids, &mut rng).unwrap();
            assert_eq!(*input.last().unwrap(), EOS);
            assert_eq!(*target.last().unwrap(), EOS);
            assert_eq!(sc.reconstruct(&input, &target), ids, "input + target give back the original");
            let used: Vec<u32> = input.iter().copied().filter(|t| sentinels().contains(t)).collect();
            assert_eq!(used, sentinels()[..used.len()].to_vec(), "sentinels in order <extra_id_0>, <extra_id_1>, …");
            let in_target: Vec<u32> = target.iter().copied().filter(|t| sentinels().contains(t)).collect();
            assert_eq!(used, in_target);
            assert_eq!(input.len() + target.len(), len + 2 * used.len() + 2);
        }
        let density = noise as f64 / tokens as f64;
        let mean_span = noise as f64 / spans as f64;
        assert!((density - 0.15).abs() < 0.002, "noise density {density}");
        assert!((mean_span - 3.0).abs() < 0.1, "mean span length {mean_span}");
    }

    #[test]
    fn too_few_sentinels_is_an_error() {
        let sc = SpanCorruption::t5(vec![32099], EOS);
        let ids: Vec<u32> = (2..200).collect();
        let err = sc.corrupt(&ids, &mut Rng::seed_from_u64(0)).unwrap_err().to_string();
        assert!(err.contains("sentinel"), "{err}");
    }

    #[test]
    fn batch_pads_inputs_and_labels_and_shifts_decoder_inputs() {
        let pairs = vec![(vec![5, 6, 7, EOS], vec![9, EOS]), (vec![5, EOS], vec![9, 10, 11, EOS])];
        let b = encoder_decoder_batch(&pairs, 0, 0);
        assert_eq!(b.input_ids, vec![vec![5, 6, 7, 1], vec![5, 1, 0, 0]]);
        assert_eq!(b.attention_mask.unwrap(), vec![vec![1, 1, 1, 1], vec![1, 1, 0, 0]]);
        assert_eq!(b.labels.unwrap(), vec![vec![9, 1, -100, -100], vec![9, 10, 11, 1]]);
        assert_eq!(b.decoder_input_ids.unwrap(), vec![vec![0, 9, 1, 0], vec![0, 9, 10, 11]]);
    }

    #[test]
    fn prefix_and_text_to_text() {
        let mut rng = Rng::seed_from_u64(5);
        let doc: Vec<u32> = (10..30).collect();
        for _ in 0..50 {
            let (input, target) = prefix_lm_split(&doc, EOS, &mut rng);
            assert!(input.len() >= 2 && target.len() >= 2);
            let joined: Vec<u32> =
                input[..input.len() - 1].iter().chain(&target[..target.len() - 1]).copied().collect();
            assert_eq!(joined, doc);
        }
        let (input, target) = text_to_text(&[100, 101], &[5, 6], &[7], EOS);
        assert_eq!(input, vec![100, 101, 5, 6, EOS]);
        assert_eq!(target, vec![7, EOS]);
    }
}
