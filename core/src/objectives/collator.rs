//! From windows of tokens to a batch for the objective: the model family's own objective (GPT
//! causal, BERT masked, T5 span corruption or denoising), with the tokenizer's special ids and the
//! run's rates.

use super::span::encoder_decoder_batch;
use super::{Batch, MaskingConfig, Objective, Rng, SpanCorruption, causal_batch, mask_tokens};
use crate::error::{Error, Result};
use crate::models::ModelConfig;
use crate::tokenizer::Tokenizer;

/// The objectives' rates (a run's `mask_rate`, `whole_word_masking`, `noise_density`,
/// `mean_span_length`); the defaults are BERT's and T5's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Noise {
    pub mask_rate: f64,
    pub whole_word_masking: bool,
    pub noise_density: f64,
    pub mean_span_length: f64,
}

impl Default for Noise {
    fn default() -> Self {
        Self { mask_rate: 0.15, whole_word_masking: false, noise_density: 0.15, mean_span_length: 3.0 }
    }
}

/// How windows of tokens become a batch for an objective, with the token ids it needs (a data
/// collator, in Hugging Face's words).
#[derive(Clone, Debug)]
pub enum Collator {
    Causal,
    Masked {
        masking: MaskingConfig,
        cls: u32,
        sep: u32,
        word_start: Option<Vec<bool>>,
    },
    /// T5: spans replaced by sentinels in the input; the target is the spans (`whole_target`
    /// false: span corruption) or the whole window (true: denoising).
    Span {
        corruption: SpanCorruption,
        pad: u32,
        decoder_start: u32,
        whole_target: bool,
    },
}

impl Collator {
    /// The collator for `objective` (`None`: the family's own), with ids from `tokenizer` and the
    /// rates from `noise`.
    pub fn new(objective: Option<Objective>, noise: Noise, model: &ModelConfig, tokenizer: &Tokenizer) -> Result<Self> {
        let family = model.family();
        let objectives = family.objectives();
        let objective = objective.unwrap_or(objectives[0]);
        if !objectives.contains(&objective) {
            return Err(Error::Config(format!(
                "objective {} does not fit a {} model; it trains with {}",
                objective.name(),
                family.model_type(),
                objectives.iter().map(|o| o.name()).collect::<Vec<_>>().join(" or ")
            )));
        }
        let need = |id: Option<u32>, what: &str| {
            id.ok_or_else(|| {
                Error::Config(format!("the tokenizer has no {what} token, which the {objective:?} objective needs"))
            })
        };
        Ok(match objective {
            Objective::Causal => Self::Causal,
            Objective::Masked => {
                let mask = need(tokenizer.mask_id(), "[MASK]")?;
                let sep = need(tokenizer.eos_id(), "[SEP]")?;
                let cls = tokenizer.cls_id().unwrap_or(sep);
                let mut masking = MaskingConfig::bert(mask, model.vocab_size() as u32, tokenizer.special_ids());
                masking.rate = noise.mask_rate;
                masking.whole_word = noise.whole_word_masking;
                let word_start = noise.whole_word_masking.then(|| {
                    (0..model.vocab_size() as u32)
                        .map(|id| tokenizer.token(id).is_none_or(|t| !t.starts_with("##")))
                        .collect()
                });
                Self::Masked { masking, cls, sep, word_start }
            }
            Objective::Span | Objective::Denoise => {
                let sentinels = tokenizer.sentinel_ids();
                if sentinels.is_empty() {
                    return Err(Error::Config(
                        "the tokenizer has no <extra_id_N> sentinel tokens, which span corruption needs".into(),
                    ));
                }
                let eos = need(tokenizer.eos_id(), "</s>")?;
                let mut corruption = SpanCorruption::t5(sentinels, eos);
                corruption.noise_density = noise.noise_density;
                corruption.mean_span_length = noise.mean_span_length;
                let decoder_start = family.decoder_start_token().unwrap_or(0);
                let whole_target = objective == Objective::Denoise;
                Self::Span { corruption, pad: tokenizer.pad_id().unwrap_or(0), decoder_start, whole_target }
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Causal => "causal LM",
            Self::Masked { .. } => "masked LM",
            Self::Span { whole_target: false, .. } => "span corruption",
            Self::Span { whole_target: true, .. } => "denoising (spans in, the whole text out)",
        }
    }

    /// Raw tokens per sequence, for sequences of `block_size` model positions.
    pub fn window(&self, block_size: usize) -> usize {
        match self {
            Self::Masked { .. } => block_size - 2, // [CLS] … [SEP]
            _ => block_size,
        }
    }

    pub fn batch(&self, windows: &[Vec<u32>], rng: &mut Rng) -> Result<Batch> {
        Ok(match self {
            Self::Causal => causal_batch(windows),
            Self::Masked { masking, cls, sep, word_start } => {
                let (mut input_ids, mut labels) = (Vec::new(), Vec::new());
                for w in windows {
                    let ids: Vec<u32> = std::iter::once(*cls).chain(w.iter().copied()).chain([*sep]).collect();
                    let starts: Option<Vec<bool>> = word_start
                        .as_ref()
                        .map(|ws| ids.iter().map(|&t| ws.get(t as usize).copied().unwrap_or(true)).collect());
                    let (i, l) = mask_tokens(&ids, starts.as_deref(), masking, rng);
                    input_ids.push(i);
                    labels.push(l);
                }
                Batch { input_ids, attention_mask: None, decoder_input_ids: None, labels: Some(labels) }
            }
            Self::Span { corruption, pad, decoder_start, whole_target } => {
                let pairs = windows
                    .iter()
                    .map(|w| {
                        let (input, spans) = corruption.corrupt(w, rng)?;
                        Ok(if *whole_target {
                            (input, w.iter().copied().chain([corruption.eos]).collect())
                        } else {
                            (input, spans)
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                encoder_decoder_batch(&pairs, *pad, *decoder_start)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::presets::preset;
    use crate::tokenizer::{Tokenizer, TokenizerKind};
    use rand::SeedableRng;

    fn unigram() -> Tokenizer {
        let text = "it is a truth universally acknowledged that a single man in possession of a good fortune \
                    must be in want of a wife";
        let kind = TokenizerKind::Unigram;
        Tokenizer::train(kind, 200, &kind.default_special_tokens(), std::iter::repeat_n(text.to_string(), 20)).unwrap()
    }

    /// Denoising corrupts the input exactly as span corruption does (same draws), and its target
    /// is the whole window: span corruption's target put back into the input gives that window.
    #[test]
    fn denoising_targets_the_whole_window_from_the_same_corrupted_input() {
        let tokenizer = unigram();
        let t5 = preset("t5-tiny", &Default::default()).unwrap();
        let [span, denoise] = [Objective::Span, Objective::Denoise]
            .map(|o| Collator::new(Some(o), Noise::default(), &t5, &tokenizer).unwrap());
        assert_eq!(denoise.name(), "denoising (spans in, the whole text out)");
        let windows: Vec<Vec<u32>> = (0..4).map(|r| (0..40).map(|i| 110 + (7 * i + r) % 80).collect()).collect();
        let [a, b] = [&span, &denoise].map(|c| c.batch(&windows, &mut Rng::seed_from_u64(7)).unwrap());
        assert_eq!(a.input_ids, b.input_ids, "the same corrupted inputs");
        let Collator::Span { corruption, .. } = &span else { unreachable!() };
        let eos = corruption.eos as i64;
        for (r, w) in windows.iter().enumerate() {
            let whole: Vec<i64> = w.iter().map(|&t| t as i64).chain([eos]).collect();
            assert_eq!(b.labels.as_ref().unwrap()[r], whole, "row {r}: the target is the window and EOS");
            let unpad = |v: &[i64]| v.iter().filter(|&&t| t >= 0 && t != 0).map(|&t| t as u32).collect::<Vec<_>>();
            let rebuilt = corruption.reconstruct(&unpad(&a.input_ids[r]), &unpad(&a.labels.as_ref().unwrap()[r]));
            assert_eq!(rebuilt, *w, "row {r}: span corruption's pair rebuilds the same window");
        }
        // the decoder reads the target shifted right, from the decoder start
        assert_eq!(b.decoder_input_ids.unwrap()[0][1..], b.labels.unwrap()[0][..40]);
    }

    #[test]
    fn denoising_is_for_t5_alone() {
        let tokenizer = unigram();
        let gpt = preset("gpt-tiny", &Default::default()).unwrap();
        let err = Collator::new(Some(Objective::Denoise), Noise::default(), &gpt, &tokenizer).unwrap_err().to_string();
        assert!(err.contains("does not fit a gpt2 model; it trains with causal"), "{err}");
    }
}
