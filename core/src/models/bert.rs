//! BERT with its masked-LM head (`BertForMaskedLM`): absolute positions, token types, post-LN
//! blocks, exact GELU, decoder tied to the word embeddings plus its own bias. Field names mirror
//! the HF module tree (`bert.encoder.layer.0.attention.self.query`; `self_` here, since `self` is a
//! Rust keyword).
//! Reference: transformers/models/bert/modeling_bert.py.
#![allow(non_snake_case)] // `LayerNorm` is the HF name of the field.

use burn::module::{Module, Param};
use burn::nn::{Dropout, Embedding};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::family::{
    Family, FamilyConfig, LanguageModel, MaskedLm, MemoryDims, ModelInputs, ModelOutput, Objective, SequenceHead, Stack,
};
use crate::error::{Error, Result};
use crate::nn::attention::{AttentionBias, merge_heads, split_heads};
use crate::nn::{
    Activation, LayerNorm, Linear, dropout, embedding_table, recompute, scaled_dot_product_attention, zeros,
};
use crate::tokenizer::{Tokenizer, TokenizerKind};

/// HF `BertConfig`, as `config.json` spells it; unused keys are kept in `extra`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default = "d::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "d::hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "d::layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d::heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d::intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "d::act")]
    pub hidden_act: Activation,
    #[serde(default = "d::pdrop")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "d::pdrop")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "d::positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "d::type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "d::init")]
    pub initializer_range: f64,
    #[serde(default = "d::eps")]
    pub layer_norm_eps: f64,
    /// Absent means 0, as transformers reads it.
    #[serde(default = "d::pad")]
    pub pad_token_id: Option<u32>,
    /// Only `absolute` exists (transformers 5 dropped the others and no longer writes the key).
    #[serde(default = "d::position_embedding_type", skip_serializing_if = "d::is_absolute")]
    pub position_embedding_type: String,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

mod d {
    use crate::nn::Activation;
    pub fn vocab_size() -> usize {
        30522
    }
    pub fn hidden_size() -> usize {
        768
    }
    pub fn layers() -> usize {
        12
    }
    pub fn heads() -> usize {
        12
    }
    pub fn intermediate() -> usize {
        3072
    }
    pub fn act() -> Activation {
        Activation::Gelu
    }
    pub fn pdrop() -> f64 {
        0.1
    }
    pub fn positions() -> usize {
        512
    }
    pub fn type_vocab() -> usize {
        2
    }
    pub fn init() -> f64 {
        0.02
    }
    pub fn eps() -> f64 {
        1e-12
    }
    pub fn position_embedding_type() -> String {
        "absolute".into()
    }
    pub fn is_absolute(s: &str) -> bool {
        s == "absolute"
    }
    pub fn pad() -> Option<u32> {
        Some(0)
    }
}

impl BertConfig {
    /// The keys transformers writes for every BERT beyond these fields, with its defaults (added to
    /// `config.json` where the config has none, so it reads as transformers' own). The MLM head's
    /// decoder is always the word embeddings here.
    pub(crate) fn hf_defaults() -> serde_json::Value {
        serde_json::json!({
            "add_cross_attention": false, "bos_token_id": null, "eos_token_id": null, "classifier_dropout": null,
            "is_decoder": false, "use_cache": true, "tie_word_embeddings": true,
        })
    }
}

impl BertConfig {
    pub fn validate(&self) -> Result<()> {
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(Error::Config(format!(
                "hidden_size ({}) is not divisible by num_attention_heads ({}); pick a head count that divides the width",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if self.extra.get("tie_word_embeddings") == Some(&serde_json::Value::Bool(false)) {
            return Err(Error::Config(
                "tie_word_embeddings = false is not supported: Hearth's BERT predicts masked tokens with its word embeddings (tied, as every released BERT)".into(),
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(Error::Config(format!(
                "position_embedding_type \"{}\" is not supported; Hearth's BERT has absolute positions",
                self.position_embedding_type
            )));
        }
        if self.vocab_size == 0 || self.max_position_embeddings == 0 || self.type_vocab_size == 0 {
            return Err(Error::Config(
                "vocab_size, max_position_embeddings and type_vocab_size must be positive".into(),
            ));
        }
        Ok(())
    }

    /// A randomly initialised model, as HF's `_init_weights` does it.
    pub fn init(&self, device: &Device) -> BertForMaskedLm {
        let (d, std, eps) = (self.hidden_size, self.initializer_range, self.layer_norm_eps);
        let linear = |i, o| Linear::new(i, o, true, std, device);
        let layer = (0..self.num_hidden_layers)
            .map(|_| BertLayer {
                attention: BertAttention {
                    self_: BertSelfAttention {
                        query: linear(d, d),
                        key: linear(d, d),
                        value: linear(d, d),
                        dropout: dropout(self.attention_probs_dropout_prob),
                        num_attention_heads: self.num_attention_heads,
                    },
                    output: BertSelfOutput {
                        dense: linear(d, d),
                        LayerNorm: LayerNorm::new(d, eps, device),
                        dropout: dropout(self.hidden_dropout_prob),
                    },
                },
                intermediate: BertIntermediate { dense: linear(d, self.intermediate_size), act: self.hidden_act },
                output: BertOutput {
                    dense: linear(self.intermediate_size, d),
                    LayerNorm: LayerNorm::new(d, eps, device),
                    dropout: dropout(self.hidden_dropout_prob),
                },
            })
            .collect();
        let mut word_embeddings = embedding_table(self.vocab_size, d, std, device);
        if let Some(pad) = self.pad_token_id.filter(|&p| (p as usize) < self.vocab_size) {
            // HF zeroes the padding row.
            let pad = pad as usize;
            word_embeddings.weight = word_embeddings.weight.map(|w| w.slice_fill([pad..pad + 1, 0..d], 0.0));
        }
        BertForMaskedLm {
            bert: BertModel {
                embeddings: BertEmbeddings {
                    word_embeddings,
                    position_embeddings: embedding_table(self.max_position_embeddings, d, std, device),
                    token_type_embeddings: embedding_table(self.type_vocab_size, d, std, device),
                    LayerNorm: LayerNorm::new(d, eps, device),
                    dropout: dropout(self.hidden_dropout_prob),
                },
                encoder: BertEncoder { layer },
                pooler: None,
                fused_attention: true,
                gradient_checkpointing: false,
            },
            cls: BertOnlyMlmHead {
                predictions: BertLmPredictionHead {
                    transform: BertPredictionHeadTransform {
                        dense: linear(d, d),
                        act: self.hidden_act,
                        LayerNorm: LayerNorm::new(d, eps, device),
                    },
                    bias: zeros([self.vocab_size], device),
                },
            },
        }
    }
}

#[derive(Module, Debug)]
pub struct BertForMaskedLm {
    pub bert: BertModel,
    pub cls: BertOnlyMlmHead,
}

#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
    /// `tanh(dense([CLS]))`: only the sequence-classification model has one (HF's MLM has none).
    pub pooler: Option<BertPooler>,
    /// Run attention through the fused WGSL kernel where it applies (see `nn::attention`).
    #[module(skip)]
    pub fused_attention: bool,
    /// Recompute each block's activations in backward (see `nn::checkpoint`); training only.
    #[module(skip)]
    pub gradient_checkpointing: bool,
}

#[derive(Module, Debug)]
pub struct BertPooler {
    pub dense: Linear,
}

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    pub output: BertOutput,
}

#[derive(Module, Debug)]
pub struct BertAttention {
    pub self_: BertSelfAttention,
    pub output: BertSelfOutput,
}

#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub dropout: Dropout,
    pub num_attention_heads: usize,
}

#[derive(Module, Debug)]
pub struct BertSelfOutput {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct BertIntermediate {
    pub dense: Linear,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct BertOutput {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct BertOnlyMlmHead {
    pub predictions: BertLmPredictionHead,
}

/// `transform` then the decoder: the word-embedding matrix (tied) plus `bias`.
#[derive(Module, Debug)]
pub struct BertLmPredictionHead {
    pub transform: BertPredictionHeadTransform,
    /// `[vocab]`
    pub bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct BertPredictionHeadTransform {
    pub dense: Linear,
    #[module(skip)]
    pub act: Activation,
    pub LayerNorm: LayerNorm,
}

impl BertEmbeddings {
    /// `input_ids, token_type_ids [b, t]` -> `[b, t, d]`
    pub fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, t] = input_ids.dims();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &input_ids.device()).unsqueeze::<2>(); // [1, t]
        let x = self.word_embeddings.forward(input_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + self.position_embeddings.forward(positions);
        self.dropout.forward(self.LayerNorm.forward(x))
    }
}

impl BertSelfAttention {
    /// `[b, t, d]` -> the heads' context `[b, t, d]`.
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        let [q, k, v] =
            [&self.query, &self.key, &self.value].map(|l| split_heads(l.forward(x.clone()), self.num_attention_heads));
        let dh = q.dims()[3];
        merge_heads(scaled_dot_product_attention(q, k, v, bias, Some(1.0 / (dh as f64).sqrt()), &self.dropout))
    }
}

impl BertSelfOutput {
    /// `hidden [b, t, d]`, the residual `x [b, t, d]` -> `LayerNorm(dropout(dense(hidden)) + x)`.
    pub fn forward(&self, hidden: Tensor<3>, x: Tensor<3>) -> Tensor<3> {
        self.LayerNorm.forward(self.dropout.forward(self.dense.forward(hidden)) + x)
    }
}

impl BertAttention {
    /// `[b, t, d]` -> `[b, t, d]`: self-attention, then projection, residual and post-LN.
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        self.output.forward(self.self_.forward(x.clone(), bias), x)
    }
}

impl BertIntermediate {
    /// `[b, t, d]` -> `[b, t, d_ff]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.act.forward(self.dense.forward(x))
    }
}

impl BertOutput {
    /// `hidden [b, t, d_ff]`, the residual `x [b, t, d]` -> `LayerNorm(dropout(dense(hidden)) + x)`.
    pub fn forward(&self, hidden: Tensor<3>, x: Tensor<3>) -> Tensor<3> {
        self.LayerNorm.forward(self.dropout.forward(self.dense.forward(hidden)) + x)
    }
}

impl BertPredictionHeadTransform {
    /// `[b, t, d]` -> `LayerNorm(act(dense(x)))` `[b, t, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.LayerNorm.forward(self.act.forward(self.dense.forward(x)))
    }
}

impl BertLayer {
    /// `[b, t, d]` -> `[b, t, d]`, post-LN.
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        let x = self.attention.forward(x, bias); // [b, t, d]
        self.output.forward(self.intermediate.forward(x.clone()), x)
    }
}

impl BertForMaskedLm {
    /// `input_ids [b, t]`, `attention_mask [b, t]` (1 = token, 0 = padding), `token_type_ids [b, t]`
    /// -> logits `[b, t, vocab]`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let h = self.hidden_states(input_ids, attention_mask, token_type_ids);
        let p = &self.cls.predictions;
        let h = p.transform.forward(h);
        let decoder = self.bert.embeddings.word_embeddings.weight.val().transpose(); // [d, vocab]
        crate::nn::project(h, decoder, Some(p.bias.val()))
    }

    /// The encoder's output `[b, t, d]`.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        self.bert.forward(input_ids, attention_mask, token_type_ids)
    }
}

impl BertModel {
    /// `input_ids [b, t]`, `attention_mask [b, t]`, `token_type_ids [b, t]` -> the encoder's output `[b, t, d]`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let token_type_ids = token_type_ids.unwrap_or_else(|| input_ids.zeros_like());
        let mut x = self.embeddings.forward(input_ids, token_type_ids);
        let mut bias = AttentionBias::default().with_fused(self.fused_attention);
        if let Some(mask) = attention_mask {
            bias = bias.with_key_padding(mask);
        }
        for layer in &self.encoder.layer {
            x = recompute(self.gradient_checkpointing, layer, x, |l, x, r| l.forward(x, &r.inside(bias.clone())));
        }
        x
    }
}

/// HF's `BertForSequenceClassification`: the pooled [CLS] state, dropout, a linear classifier.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
}

impl BertForSequenceClassification {
    /// A classifier over `num_labels` classes on top of a pretrained encoder; the pooler (when the
    /// encoder has none) and the classifier are new, initialised as HF's `_init_weights` does.
    pub fn new(mut bert: BertModel, config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        let (d, std) = (config.hidden_size, config.initializer_range);
        if bert.pooler.is_none() {
            bert.pooler = Some(BertPooler { dense: Linear::new(d, d, true, std, device) });
        }
        let p = config.extra.get("classifier_dropout").and_then(|v| v.as_f64()).unwrap_or(config.hidden_dropout_prob);
        Self { bert, dropout: dropout(p), classifier: Linear::new(d, num_labels, true, std, device) }
    }

    /// `input_ids, attention_mask, token_type_ids [b, t]` -> class logits `[b, num_labels]`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<2> {
        let h = self.bert.forward(input_ids, attention_mask, token_type_ids); // [b, t, d]
        let [b, _, d] = h.dims();
        let cls = h.slice([0..b, 0..1, 0..d]).reshape([b, d]); // [b, d]
        let pooled = match &self.bert.pooler {
            Some(p) => p.dense.forward(cls).tanh(),
            None => cls,
        };
        self.classifier.forward(self.dropout.forward(pooled))
    }
}

// The registry's view of the family (see `models/family.rs`).

impl FamilyConfig for BertConfig {
    fn model_type(&self) -> &'static str {
        Self::MODEL_TYPE
    }
    fn architecture(&self) -> &'static str {
        "BertForMaskedLM"
    }
    fn base_prefix(&self) -> &'static str {
        "bert."
    }
    fn tokenizer_kind(&self) -> TokenizerKind {
        TokenizerKind::WordPiece
    }
    fn objectives(&self) -> &'static [Objective] {
        &[Objective::Masked]
    }
    fn validate(&self) -> Result<()> {
        BertConfig::validate(self)
    }
    fn hf_keys(&self) -> (serde_json::Value, serde_json::Value) {
        (serde_json::json!({}), Self::hf_defaults())
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn set_vocab_size(&mut self, n: usize) {
        self.vocab_size = n;
    }
    fn max_positions(&self) -> Option<usize> {
        Some(self.max_position_embeddings)
    }
    fn set_dropout(&mut self, p: f64) {
        (self.hidden_dropout_prob, self.attention_probs_dropout_prob) = (p, p);
    }
    fn set_special_tokens(&mut self, tokenizer: &Tokenizer) {
        self.pad_token_id = tokenizer.pad_id();
    }
    fn memory_dims(&self) -> MemoryDims {
        MemoryDims {
            layers: self.num_hidden_layers,
            decoder_layers: 0,
            d: self.hidden_size,
            ffn: self.intermediate_size,
            heads: self.num_attention_heads,
            vocab: self.vocab_size,
            fusable: true,
            attn_dropout: self.attention_probs_dropout_prob,
        }
    }
}

impl Family for BertConfig {
    type Model = BertForMaskedLm;
    const MODEL_TYPE: &'static str = "bert";
    const PRESETS: &'static [(&'static str, &'static str)] = &[
        (
            "bert-tiny",
            r#"{"vocab_size": 1024, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                "intermediate_size": 512, "max_position_embeddings": 128, "pad_token_id": 0}"#,
        ),
        (
            "bert-base",
            r#"{"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 3072, "max_position_embeddings": 512, "pad_token_id": 0}"#,
        ),
    ];
    fn init(&self, device: &Device) -> BertForMaskedLm {
        BertConfig::init(self, device)
    }
}

impl LanguageModel for BertForMaskedLm {
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        let logits = self.forward(inputs.input_ids, inputs.attention_mask, inputs.token_type_ids);
        let loss = inputs.labels.map(|l| super::token_loss(logits.clone(), l));
        Ok(ModelOutput { logits, loss })
    }
    fn masked_lm(&self) -> Option<&dyn MaskedLm> {
        Some(self)
    }
    fn attention_stacks(&self) -> Vec<(Stack, usize)> {
        (0..self.bert.encoder.layer.len()).map(|l| (Stack::SelfAttention, l)).collect()
    }
    fn fused_attention(&self) -> bool {
        self.bert.fused_attention
    }
    fn set_fused_attention(&mut self, on: bool) {
        self.bert.fused_attention = on;
    }
    fn set_gradient_checkpointing(&mut self, on: bool) {
        self.bert.gradient_checkpointing = on;
    }
}

impl MaskedLm for BertForMaskedLm {
    fn masked_logits(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.forward(input_ids, attention_mask, None)
    }
    fn context_length(&self) -> usize {
        self.bert.embeddings.position_embeddings.weight.lazy_shape()[0]
    }
}

impl SequenceHead for BertForSequenceClassification {
    type Config = BertConfig;
    fn from_pretrained(model: BertForMaskedLm, config: &BertConfig, num_labels: usize, device: &Device) -> Self {
        Self::new(model.bert, config, num_labels, device)
    }
    fn classify(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
    ) -> Tensor<2> {
        self.forward(input_ids, Some(attention_mask), Some(token_type_ids))
    }
    fn architecture(&self) -> &'static str {
        "BertForSequenceClassification"
    }
}
