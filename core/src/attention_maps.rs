//! What a model attends to: the attention weights of every layer and head for one input, from one
//! forward pass that records them (`nn::attention::recording_attention`), for every family: GPT-2's
//! causal self-attention, BERT's, and T5's encoder, decoder and cross attention. The CLI draws them
//! (`hearth attention`) and the page shows them; both call [`attention_maps`].

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::generate::{Sampling, text2text};
use crate::models::{Model, ModelConfig};
use crate::nn::attention::recording_attention;
use crate::readback;
use crate::tokenizer::Tokenizer;

/// Which attention a map is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// GPT-2's and BERT's (their only stack).
    SelfAttention,
    /// T5's encoder self-attention.
    Encoder,
    /// T5's decoder self-attention (causal).
    Decoder,
    /// T5's decoder over the encoder's output.
    Cross,
}

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

/// Every attention map of `model` on `ids` (T5: the encoder reads `ids`, the decoder
/// `decoder_ids`, which start with the decoder start token), in layer order; T5's are the encoder's
/// layers, then each decoder layer's self and cross attention.
pub async fn attention_maps(
    model: &Model,
    ids: &[u32],
    decoder_ids: Option<&[u32]>,
    device: &Device,
) -> Result<Vec<AttentionMap>> {
    if ids.is_empty() {
        return Err(Error::Input("the text has no tokens; give at least one".into()));
    }
    let (_, recorded) = recording_attention(|| match model {
        Model::Gpt2(m) => drop(m.forward(ids_tensor(ids, device), None)),
        Model::Bert(m) => drop(m.forward(ids_tensor(ids, device), None, None)),
        Model::T5(m) => {
            let decoder = decoder_ids.unwrap_or(&[0]);
            drop(m.forward(ids_tensor(ids, device), None, ids_tensor(decoder, device)))
        }
    });
    let stacks: Vec<(Stack, usize)> = match model {
        Model::Gpt2(m) => (0..m.transformer.h.len()).map(|l| (Stack::SelfAttention, l)).collect(),
        Model::Bert(m) => (0..m.bert.encoder.layer.len()).map(|l| (Stack::SelfAttention, l)).collect(),
        Model::T5(m) => (0..m.encoder.block.len())
            .map(|l| (Stack::Encoder, l))
            .chain((0..m.decoder.block.len()).flat_map(|l| [(Stack::Decoder, l), (Stack::Cross, l)]))
            .collect(),
    };
    assert_eq!(stacks.len(), recorded.len(), "one recorded attention per layer and kind");
    let mut maps = Vec::with_capacity(recorded.len());
    for ((stack, layer), weights) in stacks.into_iter().zip(recorded) {
        let [_, heads, queries, keys] = weights.dims();
        let weights = readback::f32s(weights).await?;
        maps.push(AttentionMap { stack, layer, heads, queries, keys, weights });
    }
    Ok(maps)
}

/// A text as a family reads it, and every attention map over it.
#[derive(Clone, Debug, Serialize)]
pub struct TextAttention {
    /// The input's ids and tokens (BERT: between [CLS] and [SEP]; T5: followed by EOS).
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    /// T5: the decoder's input, the start token then the model's greedy answer (at most 16 tokens).
    pub decoder_ids: Option<Vec<u32>>,
    pub decoder_tokens: Option<Vec<String>>,
    pub maps: Vec<AttentionMap>,
}

/// [`attention_maps`] for `text`, tokenized as each family reads a prompt (the CLI and the page
/// both call this).
pub async fn text_attention(
    model: &Model,
    config: &ModelConfig,
    tokenizer: &Tokenizer,
    text: &str,
    device: &Device,
) -> Result<TextAttention> {
    let encoded = tokenizer.encode(text)?;
    let ids: Vec<u32> = match model {
        Model::Bert(_) => tokenizer.cls_id().into_iter().chain(encoded).chain(tokenizer.eos_id()).collect(),
        Model::Gpt2(_) => encoded,
        Model::T5(_) => encoded.into_iter().chain(tokenizer.eos_id()).collect(),
    };
    if let Some(max) = config.max_positions()
        && ids.len() > max
    {
        return Err(Error::Input(format!(
            "the text is {} tokens, longer than the model's {max}; shorten it",
            ids.len()
        )));
    }
    let decoder_ids = match (model, config) {
        (Model::T5(m), ModelConfig::T5(c)) => {
            let eos = tokenizer.eos_id().unwrap_or(1);
            let mut rng = <crate::objectives::Rng as rand::SeedableRng>::seed_from_u64(0);
            let answer =
                text2text(m, &ids, c.decoder_start_token(), eos, 16, Sampling::GREEDY, &mut rng, device).await?;
            Some(std::iter::once(c.decoder_start_token()).chain(answer).collect::<Vec<u32>>())
        }
        _ => None,
    };
    let maps = attention_maps(model, &ids, decoder_ids.as_deref(), device).await?;
    let label = |ids: &[u32]| -> Vec<String> {
        ids.iter().map(|&i| tokenizer.token(i).unwrap_or_else(|| format!("#{i}"))).collect()
    };
    Ok(TextAttention { tokens: label(&ids), decoder_tokens: decoder_ids.as_deref().map(label), ids, decoder_ids, maps })
}
