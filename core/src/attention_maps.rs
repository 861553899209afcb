//! What a model attends to: the attention weights of every layer and head for one input, from one
//! forward pass that records them (`nn::attention::recording_attention`), for every family: a
//! decoder's causal self-attention (GPT-2, LLaMA), an encoder's (BERT), and an encoder-decoder's
//! encoder, decoder and cross attention (T5). The CLI draws them (`hearth attention`) and the page
//! shows them; both call [`attention_maps`].

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::generate::{Sampling, text2text};
pub use crate::models::Stack;
use crate::models::{LanguageModel, Model, ModelConfig, ModelInputs};
use crate::nn::attention::recording_attention;
use crate::readback;
use crate::tokenizer::Tokenizer;

/// The weights of one attention layer for one input, `[heads, queries, keys]` row-major; each row
/// (one query over the keys) sums to 1.
#[derive(Clone, Debug, Serialize)]
pub struct AttentionMap {
    pub stack: Stack,
    pub layer: usize,
    pub heads: usize,
    pub queries: usize,
    pub keys: usize,
    pub weights: Vec<f32>,
}

impl AttentionMap {
    /// Head `h`'s `[queries, keys]` weights.
    pub fn head(&self, h: usize) -> &[f32] {
        let n = self.queries * self.keys;
        &self.weights[h * n..(h + 1) * n]
    }
}

fn ids_tensor(ids: &[u32], device: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, ids.len()]), device)
}

/// Every attention map of `model` on `ids` (an encoder-decoder's encoder reads `ids`, its decoder
/// `decoder_ids`, which start with the decoder start token), in the order the model's
/// `attention_stacks` names them: layer by layer; an encoder-decoder's encoder layers, then each
/// decoder layer's self and cross attention.
pub async fn attention_maps(
    model: &Model,
    ids: &[u32],
    decoder_ids: Option<&[u32]>,
    device: &Device,
) -> Result<Vec<AttentionMap>> {
    if ids.is_empty() {
        return Err(Error::Input("the text has no tokens; give at least one".into()));
    }
    let mut inputs = ModelInputs::new(ids_tensor(ids, device));
    if let Some(m) = model.seq2seq_lm() {
        let start = [m.decoder_start()];
        inputs.decoder_input_ids = Some(ids_tensor(decoder_ids.unwrap_or(&start), device));
    }
    let (forward, recorded) = recording_attention(|| model.forward_inputs(inputs).map(drop));
    forward?;
    let stacks = model.attention_stacks();
    assert_eq!(stacks.len(), recorded.len(), "one recorded attention per layer and kind");
    let mut maps = Vec::with_capacity(recorded.len());
    for ((stack, layer), weights) in stacks.into_iter().zip(recorded) {
        let [_, heads, queries, keys] = weights.dims();
        let weights = readback::f32s(weights).await?;
        maps.push(AttentionMap { stack, layer, heads, queries, keys, weights });
    }
    Ok(maps)
}

/// A text as the model reads it, and every attention map over it.
#[derive(Clone, Debug, Serialize)]
pub struct TextAttention {
    /// The input's ids and tokens (a masked LM's between [CLS] and [SEP]; an encoder-decoder's
    /// followed by EOS).
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    /// An encoder-decoder's decoder input: the start token then its greedy answer (at most 16 tokens).
    pub decoder_ids: Option<Vec<u32>>,
    pub decoder_tokens: Option<Vec<String>>,
    pub maps: Vec<AttentionMap>,
}

/// [`attention_maps`] for `text`, tokenized as the model reads a prompt (the CLI and the page both
/// call this).
pub async fn text_attention(
    model: &Model,
    config: &ModelConfig,
    tokenizer: &Tokenizer,
    text: &str,
    device: &Device,
) -> Result<TextAttention> {
    let ids = prompt_ids(model, tokenizer, text)?;
    if let Some(max) = config.max_positions()
        && ids.len() > max
    {
        return Err(Error::Input(format!(
            "the text is {} tokens, longer than the model's {max}; shorten it",
            ids.len()
        )));
    }
    let decoder_ids = match model.seq2seq_lm() {
        Some(m) => {
            let eos = tokenizer.eos_id().unwrap_or(1);
            let mut rng = <crate::objectives::Rng as rand::SeedableRng>::seed_from_u64(0);
            let answer = text2text(m, &ids, eos, 16, Sampling::GREEDY, &mut rng, device).await?;
            Some(std::iter::once(m.decoder_start()).chain(answer).collect::<Vec<u32>>())
        }
        None => None,
    };
    let maps = attention_maps(model, &ids, decoder_ids.as_deref(), device).await?;
    let label = |ids: &[u32]| -> Vec<String> {
        ids.iter().map(|&i| tokenizer.token(i).unwrap_or_else(|| format!("#{i}"))).collect()
    };
    Ok(TextAttention { tokens: label(&ids), decoder_tokens: decoder_ids.as_deref().map(label), ids, decoder_ids, maps })
}

/// `text` as the model reads a prompt: a masked LM's between [CLS] and [SEP], an encoder-decoder's
/// followed by EOS, a causal LM's as is.
pub fn prompt_ids(model: &Model, tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let encoded = tokenizer.encode(text)?;
    Ok(if model.masked_lm().is_some() {
        tokenizer.cls_id().into_iter().chain(encoded).chain(tokenizer.eos_id()).collect()
    } else if model.seq2seq_lm().is_some() {
        encoded.into_iter().chain(tokenizer.eos_id()).collect()
    } else {
        encoded
    })
}
