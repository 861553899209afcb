//! T5 (`T5ForConditionalGeneration`): encoder-decoder with RMS norm, relative position buckets
//! (a learned bias per head, computed in the first block and shared by the stack), no score
//! scaling, a ReLU or gated feed-forward, tied embeddings and the decoder start token. Field names
//! mirror the HF module tree (`encoder.block.0.layer.0.SelfAttention.q`).
//! Reference: transformers/models/t5/modeling_t5.py.
#![allow(non_snake_case)] // `SelfAttention`, `EncDecAttention`, `DenseReluDense` are HF's names.

use burn::module::Module;
use burn::nn::{Dropout, Embedding};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::family::{
    Family, FamilyConfig, LanguageModel, MemoryDims, ModelInputs, ModelOutput, Objective, Seq2SeqLm, Stack,
};
use crate::error::{Error, Result};
use crate::nn::attention::{AttentionBias, merge_heads, split_heads};
use crate::nn::loss::IGNORE_INDEX;
use crate::nn::{Activation, Linear, RmsNorm, dropout, embedding_table, recompute, scaled_dot_product_attention};
use crate::tokenizer::{Tokenizer, TokenizerKind};

/// HF `T5Config`, as `config.json` spells it; unused keys are kept in `extra`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct T5Config {
    #[serde(default = "d::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "d::d_model")]
    pub d_model: usize,
    #[serde(default = "d::d_kv")]
    pub d_kv: usize,
    #[serde(default = "d::d_ff")]
    pub d_ff: usize,
    #[serde(default = "d::layers")]
    pub num_layers: usize,
    /// `None` means as many as `num_layers`.
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    #[serde(default = "d::heads")]
    pub num_heads: usize,
    #[serde(default = "d::buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "d::max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "d::dropout")]
    pub dropout_rate: f64,
    #[serde(default = "d::eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "d::factor")]
    pub initializer_factor: f64,
    /// `relu`, `gated-gelu` (= gated `gelu_new`), `gated-silu`, …
    #[serde(default = "d::ff_proj")]
    pub feed_forward_proj: String,
    #[serde(default = "d::yes")]
    pub tie_word_embeddings: bool,
    /// Scale the decoder output by `d_model^-0.5` before the head. Absent in configs older than
    /// transformers 5, where the scale follows `tie_word_embeddings`.
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "d::eos")]
    pub eos_token_id: u32,
    /// `None` means `pad_token_id`.
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

mod d {
    pub fn vocab_size() -> usize {
        32128
    }
    pub fn d_model() -> usize {
        512
    }
    pub fn d_kv() -> usize {
        64
    }
    pub fn d_ff() -> usize {
        2048
    }
    pub fn layers() -> usize {
        6
    }
    pub fn heads() -> usize {
        8
    }
    pub fn buckets() -> usize {
        32
    }
    pub fn max_distance() -> usize {
        128
    }
    pub fn dropout() -> f64 {
        0.1
    }
    pub fn eps() -> f64 {
        1e-6
    }
    pub fn factor() -> f64 {
        1.0
    }
    pub fn ff_proj() -> String {
        "relu".into()
    }
    pub fn yes() -> bool {
        true
    }
    pub fn eos() -> u32 {
        1
    }
}

impl T5Config {
    /// `(activation, gated)` from `feed_forward_proj`, as `T5Config.__init__` parses it.
    pub fn feed_forward(&self) -> Result<(Activation, bool)> {
        let parts: Vec<&str> = self.feed_forward_proj.split('-').collect();
        let gated = parts[0] == "gated";
        if parts.len() > 2 || (parts.len() == 2 && !gated) {
            return Err(Error::Config(format!(
                "feed_forward_proj \"{}\" is not `ACT` or `gated-ACT` (e.g. \"relu\", \"gated-gelu\")",
                self.feed_forward_proj
            )));
        }
        let name = if self.feed_forward_proj == "gated-gelu" { "gelu_new" } else { parts[parts.len() - 1] };
        let act = serde_json::from_value(serde_json::Value::String(name.into()))
            .map_err(|_| Error::Config(format!("feed_forward_proj: unknown activation \"{name}\"")))?;
        Ok((act, gated))
    }

    pub fn validate(&self) -> Result<()> {
        self.feed_forward()?;
        if self.vocab_size == 0 || self.d_model == 0 || self.num_heads == 0 || self.d_kv == 0 || self.num_layers == 0 {
            return Err(Error::Config("vocab_size, d_model, d_kv, num_heads and num_layers must be positive".into()));
        }
        if self.relative_attention_num_buckets < 4 {
            return Err(Error::Config("relative_attention_num_buckets must be at least 4".into()));
        }
        Ok(())
    }

    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    pub fn decoder_start_token(&self) -> u32 {
        self.decoder_start_token_id.unwrap_or(self.pad_token_id)
    }

    /// Whether the decoder output is scaled by `d_model^-0.5` before the LM head.
    pub fn scales_decoder_outputs(&self) -> bool {
        self.scale_decoder_outputs.unwrap_or(self.tie_word_embeddings)
    }

    /// What `config.json` must say beyond the fields, for transformers to read the same model:
    /// `(resolved, defaults)`. `resolved` replaces the fields Hearth leaves `None` (transformers 5
    /// reads a `null` `scale_decoder_outputs` as "do not scale") and the keys transformers derives
    /// from `feed_forward_proj`; `defaults` are the keys transformers writes for every T5, added
    /// where the config has none.
    pub(crate) fn hf_keys(&self) -> (serde_json::Value, serde_json::Value) {
        let (_, gated) = self.feed_forward().expect("validated config");
        let act = if self.feed_forward_proj == "gated-gelu" {
            "gelu_new"
        } else {
            self.feed_forward_proj.rsplit('-').next().unwrap_or("relu")
        };
        let resolved = serde_json::json!({
            "num_decoder_layers": self.decoder_layers(),
            "scale_decoder_outputs": self.scales_decoder_outputs(),
            "decoder_start_token_id": self.decoder_start_token(),
            "dense_act_fn": act,
            "is_gated_act": gated,
        });
        let defaults = serde_json::json!({
            "classifier_dropout": 0.0, "is_decoder": false, "is_encoder_decoder": true, "use_cache": true,
        });
        (resolved, defaults)
    }

    /// A randomly initialised model, as HF's `T5PreTrainedModel._init_weights` does it.
    pub fn init(&self, device: &Device) -> T5ForConditionalGeneration {
        let (act, gated) = self.feed_forward().expect("validated config");
        let f = self.initializer_factor;
        let (d, inner) = (self.d_model as f64, (self.num_heads * self.d_kv) as f64);
        let linear = |i: usize, o: usize, std: f64| Linear::new(i, o, false, std, device);
        let attention = |first: bool| T5Attention {
            q: linear(self.d_model, self.num_heads * self.d_kv, f * (d * self.d_kv as f64).powf(-0.5)),
            k: linear(self.d_model, self.num_heads * self.d_kv, f * d.powf(-0.5)),
            v: linear(self.d_model, self.num_heads * self.d_kv, f * d.powf(-0.5)),
            o: linear(self.num_heads * self.d_kv, self.d_model, f * inner.powf(-0.5)),
            relative_attention_bias: first.then(|| {
                embedding_table(self.relative_attention_num_buckets, self.num_heads, f * d.powf(-0.5), device)
            }),
            dropout: dropout(self.dropout_rate),
            n_heads: self.num_heads,
        };
        let norm = || RmsNorm::new(self.d_model, self.layer_norm_epsilon, device);
        let ff = || T5LayerFF {
            DenseReluDense: T5DenseActDense {
                wi: (!gated).then(|| linear(self.d_model, self.d_ff, f * d.powf(-0.5))),
                wi_0: gated.then(|| linear(self.d_model, self.d_ff, f * d.powf(-0.5))),
                wi_1: gated.then(|| linear(self.d_model, self.d_ff, f * d.powf(-0.5))),
                wo: linear(self.d_ff, self.d_model, f * (self.d_ff as f64).powf(-0.5)),
                dropout: dropout(self.dropout_rate),
                act,
            },
            layer_norm: norm(),
            dropout: dropout(self.dropout_rate),
        };
        let self_attention = |i: usize| T5LayerSelfAttention {
            SelfAttention: attention(i == 0),
            layer_norm: norm(),
            dropout: dropout(self.dropout_rate),
        };
        let bucketing = |bidirectional| RelativePositions {
            bidirectional,
            num_buckets: self.relative_attention_num_buckets,
            max_distance: self.relative_attention_max_distance,
        };
        T5ForConditionalGeneration {
            shared: embedding_table(self.vocab_size, self.d_model, f, device),
            encoder: T5EncoderStack {
                block: (0..self.num_layers).map(|i| T5EncoderBlock { layer: (self_attention(i), ff()) }).collect(),
                final_layer_norm: norm(),
                dropout: dropout(self.dropout_rate),
                positions: bucketing(true),
            },
            decoder: T5DecoderStack {
                block: (0..self.decoder_layers())
                    .map(|i| T5DecoderBlock {
                        layer: (
                            self_attention(i),
                            T5LayerCrossAttention {
                                EncDecAttention: attention(false),
                                layer_norm: norm(),
                                dropout: dropout(self.dropout_rate),
                            },
                            ff(),
                        ),
                    })
                    .collect(),
                final_layer_norm: norm(),
                dropout: dropout(self.dropout_rate),
                positions: bucketing(false),
            },
            lm_head: (!self.tie_word_embeddings).then(|| linear(self.d_model, self.vocab_size, f)),
            output_scale: self.scales_decoder_outputs().then(|| d.powf(-0.5)),
            fused_attention: true,
            gradient_checkpointing: false,
            decoder_start_token_id: self.decoder_start_token(),
        }
    }
}

#[derive(Module, Debug)]
pub struct T5ForConditionalGeneration {
    /// The token embedding shared by encoder, decoder and (when tied) the LM head.
    pub shared: Embedding,
    pub encoder: T5EncoderStack,
    pub decoder: T5DecoderStack,
    /// Only when `tie_word_embeddings` is false.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    pub output_scale: Option<f64>,
    /// Run attention through the fused WGSL kernel where it applies (see `nn::attention`): T5's
    /// cross-attention; its self-attention carries the position bias and uses the composition.
    #[module(skip)]
    pub fused_attention: bool,
    /// Recompute each block's activations in backward (see `nn::checkpoint`); training only.
    #[module(skip)]
    pub gradient_checkpointing: bool,
    /// The decoder's first token (`decoder_start_token_id`, T5's pad).
    #[module(skip)]
    pub decoder_start_token_id: u32,
}

#[derive(Module, Debug)]
pub struct T5EncoderStack {
    pub block: Vec<T5EncoderBlock>,
    pub final_layer_norm: RmsNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub positions: RelativePositions,
}

#[derive(Module, Debug)]
pub struct T5DecoderStack {
    pub block: Vec<T5DecoderBlock>,
    pub final_layer_norm: RmsNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub positions: RelativePositions,
}

#[derive(Module, Debug)]
pub struct T5EncoderBlock {
    pub layer: (T5LayerSelfAttention, T5LayerFF),
}

#[derive(Module, Debug)]
pub struct T5DecoderBlock {
    pub layer: (T5LayerSelfAttention, T5LayerCrossAttention, T5LayerFF),
}

#[derive(Module, Debug)]
pub struct T5LayerSelfAttention {
    pub SelfAttention: T5Attention,
    pub layer_norm: RmsNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct T5LayerCrossAttention {
    pub EncDecAttention: T5Attention,
    pub layer_norm: RmsNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct T5LayerFF {
    pub DenseReluDense: T5DenseActDense,
    pub layer_norm: RmsNorm,
    pub dropout: Dropout,
}

/// `T5DenseActDense` (`wi`) or, when gated, `T5DenseGatedActDense` (`wi_0`, `wi_1`).
#[derive(Module, Debug)]
pub struct T5DenseActDense {
    pub wi: Option<Linear>,
    pub wi_0: Option<Linear>,
    pub wi_1: Option<Linear>,
    pub wo: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct T5Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// `[num_buckets, n_heads]`, in the first block of each stack only.
    pub relative_attention_bias: Option<Embedding>,
    pub dropout: Dropout,
    pub n_heads: usize,
}

/// How relative positions fall into buckets (`T5Attention._relative_position_bucket`).
#[derive(Clone, Copy, Debug)]
pub struct RelativePositions {
    pub bidirectional: bool,
    pub num_buckets: usize,
    pub max_distance: usize,
}

impl RelativePositions {
    /// The bucket of `relative_position = key_pos - query_pos`: exact for small distances, then
    /// logarithmic up to `max_distance`. Float steps in f32, as torch computes them.
    pub fn bucket(&self, relative_position: i64) -> i64 {
        let mut num_buckets = self.num_buckets as i64;
        let mut bucket = 0;
        let distance = if self.bidirectional {
            num_buckets /= 2;
            if relative_position > 0 {
                bucket += num_buckets;
            }
            relative_position.abs()
        } else {
            -relative_position.min(0)
        };
        let max_exact = num_buckets / 2;
        if distance < max_exact {
            return bucket + distance;
        }
        let log_ratio = (distance as f32 / max_exact as f32).ln();
        let log_range = (self.max_distance as f64 / max_exact as f64).ln() as f32;
        let large = max_exact + (log_ratio / log_range * (num_buckets - max_exact) as f32) as i64;
        bucket + large.min(num_buckets - 1)
    }

    /// The bias `[1, h, tq, tk]` from the table `[num_buckets, h]`.
    pub fn bias(&self, table: Tensor<2>, tq: usize, tk: usize) -> Tensor<4> {
        let buckets: Vec<i64> = (0..tq as i64).flat_map(|i| (0..tk as i64).map(move |j| self.bucket(j - i))).collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(buckets, [tq * tk]), &table.device());
        let [_, h] = table.dims();
        table.select(0, ids).reshape([tq, tk, h]).permute([2, 0, 1]).unsqueeze::<4>()
    }
}

impl T5Attention {
    /// `x_q [b, tq, d]`, `x_kv [b, tk, d]` -> `[b, tq, d]`. No `1/sqrt(d)`: T5 folds it into the init.
    pub fn forward(&self, x_q: Tensor<3>, x_kv: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        let q = split_heads(self.q.forward(x_q), self.n_heads); // [b, h, tq, dkv]
        let k = split_heads(self.k.forward(x_kv.clone()), self.n_heads); // [b, h, tk, dkv]
        let v = split_heads(self.v.forward(x_kv), self.n_heads);
        self.o.forward(merge_heads(scaled_dot_product_attention(q, k, v, bias, None, &self.dropout)))
    }
}

impl T5LayerSelfAttention {
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        let normed = self.layer_norm.forward(x.clone());
        x + self.dropout.forward(self.SelfAttention.forward(normed.clone(), normed, bias))
    }
}

impl T5LayerCrossAttention {
    pub fn forward(&self, x: Tensor<3>, encoder_hidden: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        let normed = self.layer_norm.forward(x.clone());
        x + self.dropout.forward(self.EncDecAttention.forward(normed, encoder_hidden, bias))
    }
}

impl T5LayerFF {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let ff = &self.DenseReluDense;
        let normed = self.layer_norm.forward(x.clone());
        let h = match (&ff.wi, &ff.wi_0, &ff.wi_1) {
            (Some(wi), _, _) => ff.act.forward(wi.forward(normed)),
            (None, Some(wi_0), Some(wi_1)) => ff.act.forward(wi_0.forward(normed.clone())) * wi_1.forward(normed),
            _ => unreachable!("T5DenseActDense has `wi` or both `wi_0` and `wi_1`"),
        }; // [b, t, d_ff]
        x + self.dropout.forward(ff.wo.forward(ff.dropout.forward(h)))
    }
}

/// The position bias of a stack: from the first block's table, shared by every block.
fn position_bias(table: Option<&Embedding>, positions: RelativePositions, tq: usize, tk: usize) -> Option<Tensor<4>> {
    table.map(|t| positions.bias(t.weight.val(), tq, tk))
}

/// HF keeps a block's sub-layers as `layer.0`, `layer.1`, … (the checkpoint keys); these name them.
impl T5EncoderBlock {
    pub fn self_attention(&self) -> &T5LayerSelfAttention {
        &self.layer.0
    }

    pub fn ff(&self) -> &T5LayerFF {
        &self.layer.1
    }

    /// `[b, ts, d]` -> `[b, ts, d]`: self-attention, then the feed-forward (each pre-norm, residual).
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        self.ff().forward(self.self_attention().forward(x, bias))
    }
}

impl T5DecoderBlock {
    pub fn self_attention(&self) -> &T5LayerSelfAttention {
        &self.layer.0
    }

    pub fn cross_attention(&self) -> &T5LayerCrossAttention {
        &self.layer.1
    }

    pub fn ff(&self) -> &T5LayerFF {
        &self.layer.2
    }

    /// `x [b, tt, d]`, `encoder_hidden [b, ts, d]` -> `[b, tt, d]`: causal self-attention,
    /// cross-attention over the encoder, the feed-forward.
    pub fn forward(
        &self,
        x: Tensor<3>,
        encoder_hidden: Tensor<3>,
        self_bias: &AttentionBias,
        cross_bias: &AttentionBias,
    ) -> Tensor<3> {
        let x = self.self_attention().forward(x, self_bias);
        let x = self.cross_attention().forward(x, encoder_hidden, cross_bias);
        self.ff().forward(x)
    }
}

impl T5ForConditionalGeneration {
    /// `input_ids [b, ts]`, `attention_mask [b, ts]` -> encoder output `[b, ts, d]`.
    pub fn encode(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        let enc = &self.encoder;
        let [_, t] = input_ids.dims();
        let mut bias = AttentionBias::default().with_fused(self.fused_attention);
        let table = enc.block.first().and_then(|b| b.self_attention().SelfAttention.relative_attention_bias.as_ref());
        if let Some(pb) = position_bias(table, enc.positions, t, t) {
            bias = bias.with_additive(pb);
        }
        if let Some(mask) = attention_mask {
            bias = bias.with_key_padding(mask);
        }
        let mut x = enc.dropout.forward(self.shared.forward(input_ids));
        for block in &enc.block {
            x = recompute(self.gradient_checkpointing, block, x, |b, x, r| b.forward(x, &r.inside(bias.clone())));
        }
        enc.dropout.forward(enc.final_layer_norm.forward(x))
    }

    /// `decoder_input_ids [b, tt]`, `encoder_hidden [b, ts, d]` -> logits `[b, tt, vocab]`.
    pub fn decode(
        &self,
        decoder_input_ids: Tensor<2, Int>,
        encoder_hidden: Tensor<3>,
        encoder_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let dec = &self.decoder;
        let [_, t] = decoder_input_ids.dims();
        let mut self_bias = AttentionBias::default().with_causal().with_fused(self.fused_attention);
        let table = dec.block.first().and_then(|b| b.self_attention().SelfAttention.relative_attention_bias.as_ref());
        if let Some(pb) = position_bias(table, dec.positions, t, t) {
            self_bias = self_bias.with_additive(pb);
        }
        let mut cross_bias = AttentionBias::default().with_fused(self.fused_attention);
        if let Some(mask) = encoder_mask {
            cross_bias = cross_bias.with_key_padding(mask);
        }
        let mut x = dec.dropout.forward(self.shared.forward(decoder_input_ids));
        for block in &dec.block {
            x = recompute(self.gradient_checkpointing, block, x, |b, x, r| {
                b.forward(
                    x,
                    r.inside(encoder_hidden.clone()),
                    &r.inside(self_bias.clone()),
                    &r.inside(cross_bias.clone()),
                )
            });
        }
        let mut h = dec.dropout.forward(dec.final_layer_norm.forward(x)); // [b, tt, d]
        if let Some(scale) = self.output_scale {
            h = h * scale;
        }
        match &self.lm_head {
            Some(head) => head.forward(h),
            None => crate::nn::project(h, self.shared.weight.val().transpose(), None), // tied: h·sharedᵀ
        }
    }

    /// Encoder then decoder: logits `[b, tt, vocab]`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        decoder_input_ids: Tensor<2, Int>,
    ) -> Tensor<3> {
        let encoder_hidden = self.encode(input_ids, attention_mask.clone());
        self.decode(decoder_input_ids, encoder_hidden, attention_mask)
    }
}

/// Decoder inputs from labels, as `T5PreTrainedModel._shift_right`: the start token, then the
/// labels shifted right by one, with `-100` replaced by the pad token.
pub fn shift_right(labels: &[Vec<i64>], decoder_start: u32, pad: u32) -> Vec<Vec<i64>> {
    labels
        .iter()
        .map(|row| {
            std::iter::once(decoder_start as i64)
                .chain(
                    row.iter()
                        .take(row.len().saturating_sub(1))
                        .map(|&l| if l == IGNORE_INDEX { pad as i64 } else { l }),
                )
                .collect()
        })
        .collect()
}

// The registry's view of the family (see `models/family.rs`).

impl FamilyConfig for T5Config {
    fn model_type(&self) -> &'static str {
        Self::MODEL_TYPE
    }
    fn architecture(&self) -> &'static str {
        "T5ForConditionalGeneration"
    }
    fn base_prefix(&self) -> &'static str {
        ""
    }
    fn tokenizer_kind(&self) -> TokenizerKind {
        TokenizerKind::Unigram
    }
    fn objectives(&self) -> &'static [Objective] {
        &[Objective::Span, Objective::Denoise]
    }
    fn validate(&self) -> Result<()> {
        T5Config::validate(self)
    }
    fn hf_keys(&self) -> (serde_json::Value, serde_json::Value) {
        T5Config::hf_keys(self)
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn set_vocab_size(&mut self, n: usize) {
        self.vocab_size = n;
    }
    fn max_positions(&self) -> Option<usize> {
        None
    }
    fn set_dropout(&mut self, p: f64) {
        self.dropout_rate = p;
    }
    fn set_special_tokens(&mut self, tokenizer: &Tokenizer) {
        self.pad_token_id = tokenizer.pad_id().unwrap_or(self.pad_token_id);
        self.eos_token_id = tokenizer.eos_id().unwrap_or(self.eos_token_id);
        self.decoder_start_token_id = Some(self.pad_token_id);
    }
    fn memory_dims(&self) -> MemoryDims {
        MemoryDims {
            layers: self.num_layers,
            decoder_layers: self.decoder_layers(),
            d: self.d_model.max(self.num_heads * self.d_kv),
            ffn: self.d_ff,
            heads: self.num_heads,
            vocab: self.vocab_size,
            fusable: false,
            attn_dropout: self.dropout_rate,
        }
    }
    fn decoder_start_token(&self) -> Option<u32> {
        Some(T5Config::decoder_start_token(self))
    }
}

impl Family for T5Config {
    type Model = T5ForConditionalGeneration;
    const MODEL_TYPE: &'static str = "t5";
    const PRESETS: &'static [(&'static str, &'static str)] = &[
        (
            "t5-tiny",
            r#"{"vocab_size": 1024, "d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 2, "num_heads": 4,
                "feed_forward_proj": "gated-gelu", "tie_word_embeddings": true, "pad_token_id": 0,
                "eos_token_id": 1, "decoder_start_token_id": 0}"#,
        ),
        (
            "t5-base",
            r#"{"vocab_size": 32128, "d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12,
                "feed_forward_proj": "relu", "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}"#,
        ),
    ];
    fn init(&self, device: &Device) -> T5ForConditionalGeneration {
        T5Config::init(self, device)
    }
}

impl LanguageModel for T5ForConditionalGeneration {
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        let decoder_input_ids = match (inputs.decoder_input_ids, &inputs.labels) {
            (Some(ids), _) => ids,
            (None, Some(_)) => {
                return Err(Error::Input(
                    "T5 needs decoder_input_ids; build them from the labels with t5::shift_right".into(),
                ));
            }
            (None, None) => return Err(Error::Input("T5 needs decoder_input_ids or labels".into())),
        };
        let logits = self.forward(inputs.input_ids, inputs.attention_mask, decoder_input_ids);
        let loss = inputs.labels.map(|l| super::token_loss(logits.clone(), l));
        Ok(ModelOutput { logits, loss })
    }
    fn seq2seq_lm(&self) -> Option<&dyn Seq2SeqLm> {
        Some(self)
    }
    fn attention_stacks(&self) -> Vec<(Stack, usize)> {
        (0..self.encoder.block.len())
            .map(|l| (Stack::Encoder, l))
            .chain((0..self.decoder.block.len()).flat_map(|l| [(Stack::Decoder, l), (Stack::Cross, l)]))
            .collect()
    }
    fn fused_attention(&self) -> bool {
        self.fused_attention
    }
    fn set_fused_attention(&mut self, on: bool) {
        self.fused_attention = on;
    }
    fn set_gradient_checkpointing(&mut self, on: bool) {
        self.gradient_checkpointing = on;
    }
}

impl Seq2SeqLm for T5ForConditionalGeneration {
    fn encode(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        T5ForConditionalGeneration::encode(self, input_ids, attention_mask)
    }
    fn decode(
        &self,
        decoder_ids: Tensor<2, Int>,
        encoded: Tensor<3>,
        attention_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        T5ForConditionalGeneration::decode(self, decoder_ids, encoded, attention_mask)
    }
    fn decoder_start(&self) -> u32 {
        self.decoder_start_token_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_hf() {
        // T5Attention._relative_position_bucket over -20..=20 (32 buckets, max distance 128), f32 steps
        let bi = RelativePositions { bidirectional: true, num_buckets: 32, max_distance: 128 };
        let got: Vec<i64> = (-20..=20).map(|rp| bi.bucket(rp)).collect();
        let want = vec![
            10, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1, 0, 17, 18, 19, 20, 21, 22, 23, 24, 24, 24,
            24, 25, 25, 25, 25, 26, 26, 26, 26, 26,
        ];
        assert_eq!(got, want);
        let causal = RelativePositions { bidirectional: false, num_buckets: 32, max_distance: 128 };
        assert_eq!(causal.bucket(5), 0, "the future is bucket 0 for the decoder");
        assert_eq!(causal.bucket(-15), 15);
        assert_eq!(causal.bucket(-16), 16);
        assert_eq!(causal.bucket(-40), 23);
        assert_eq!(causal.bucket(-100), 30);
        assert_eq!(causal.bucket(-1000), 31);
    }

    #[test]
    fn shift_right_starts_with_the_start_token_and_replaces_ignored() {
        let labels = vec![vec![5, 6, -100, -100]];
        assert_eq!(shift_right(&labels, 0, 0), vec![vec![0, 5, 6, 0]]);
    }
}
