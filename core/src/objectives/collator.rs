//! From windows of tokens to a batch for the objective: the model family's own objective (GPT
//! causal, BERT masked, T5 span corruption), with the tokenizer's special ids and the run's rates.

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
    Masked { masking: MaskingConfig, cls: u32, sep: u32, word_start: Option<Vec<bool>> },
    Span { corruption: SpanCorruption, pad: u32, decoder_start: u32 },
}

impl Collator {
    /// The collator for `objective` (`None`: the family's own), with ids from `tokenizer` and the
    /// rates from `noise`.
    pub fn new(objective: Option<Objective>, noise: Noise, model: &ModelConfig, tokenizer: &Tokenizer) -> Result<Self> {
        let family_default = match model {
            ModelConfig::Gpt2(_) => Objective::Causal,
            ModelConfig::Bert(_) => Objective::Masked,
            ModelConfig::T5(_) => Objective::Span,
        };
        let objective = objective.unwrap_or(family_default);
        if objective != family_default {
            return Err(Error::Config(format!(
                "objective {objective:?} does not fit a {} model (GPT-2 trains causal, BERT masked, T5 span)",
                model.model_type()
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
            Objective::Span => {
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
                let decoder_start = match model {
                    ModelConfig::T5(c) => c.decoder_start_token(),
                    _ => 0,
                };
                Self::Span { corruption, pad: tokenizer.pad_id().unwrap_or(0), decoder_start }
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Causal => "causal LM",
            Self::Masked { .. } => "masked LM",
            Self::Span { .. } => "span corruption",
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
            Self::Span { corruption, pad, decoder_start } => {
                let pairs = windows.iter().map(|w| corruption.corrupt(w, rng)).collect::<Result<Vec<_>>>()?;
                encoder_decoder_batch(&pairs, *pad, *decoder_start)
            }
        })
    }
}
