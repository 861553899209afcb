//! GPT-2 (`GPT2LMHeadModel`): learned positions, pre-LN blocks, `gelu_new`, LM head tied to the
//! token embedding. Field names mirror the HF module tree, so `transformer.h.0.attn.c_attn.weight`
//! is both the path of a parameter here and its key in `model.safetensors`.
//! Reference: transformers/models/gpt2/modeling_gpt2.py.

use burn::module::Module;
use burn::nn::{Dropout, Embedding};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::family::{
    CausalLm, Family, FamilyConfig, LanguageModel, MemoryDims, ModelInputs, ModelOutput, Objective, SequenceHead, Stack,
};
use crate::error::{Error, Result};
use crate::nn::attention::{AttentionBias, merge_heads, split_heads};
use crate::nn::{
    Activation, Conv1D, LayerNorm, Linear, dropout, embedding_table, recompute, scaled_dot_product_attention,
};
use crate::tokenizer::{Tokenizer, TokenizerKind};

/// HF `GPT2Config`, as `config.json` spells it. Keys Hearth does not use are kept in `extra` and
/// written back unchanged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Gpt2Config {
    #[serde(default = "d::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "d::n_positions")]
    pub n_positions: usize,
    #[serde(default = "d::n_embd")]
    pub n_embd: usize,
    #[serde(default = "d::n_layer")]
    pub n_layer: usize,
    #[serde(default = "d::n_head")]
    pub n_head: usize,
    /// Feed-forward width; `None` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "d::activation")]
    pub activation_function: Activation,
    #[serde(default = "d::pdrop")]
    pub resid_pdrop: f64,
    #[serde(default = "d::pdrop")]
    pub embd_pdrop: f64,
    #[serde(default = "d::pdrop")]
    pub attn_pdrop: f64,
    #[serde(default = "d::eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "d::init")]
    pub initializer_range: f64,
    #[serde(default = "d::yes")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default = "d::yes")]
    pub tie_word_embeddings: bool,
    /// Absent means 50256 (GPT-2's `<|endoftext|>`), as transformers reads it.
    #[serde(default = "d::endoftext")]
    pub bos_token_id: Option<u32>,
    #[serde(default = "d::endoftext")]
    pub eos_token_id: Option<u32>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

mod d {
    use crate::nn::Activation;
    pub fn vocab_size() -> usize {
        50257
    }
    pub fn n_positions() -> usize {
        1024
    }
    pub fn n_embd() -> usize {
        768
    }
    pub fn n_layer() -> usize {
        12
    }
    pub fn n_head() -> usize {
        12
    }
    pub fn activation() -> Activation {
        Activation::GeluNew
    }
    pub fn pdrop() -> f64 {
        0.1
    }
    pub fn eps() -> f64 {
        1e-5
    }
    pub fn init() -> f64 {
        0.02
    }
    pub fn yes() -> bool {
        true
    }
    pub fn endoftext() -> Option<u32> {
        Some(50256)
    }
}

impl Gpt2Config {
    /// The keys transformers writes for every GPT-2 beyond these fields, with its defaults (added to
    /// `config.json` where the config has none, so it reads as transformers' own).
    pub(crate) fn hf_defaults() -> serde_json::Value {
        serde_json::json!({
            "add_cross_attention": false, "pad_token_id": null, "reorder_and_upcast_attn": false,
            "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true,
            "summary_type": "cls_index", "summary_use_proj": true, "use_cache": true,
        })
    }

    pub fn validate(&self) -> Result<()> {
        if self.n_head == 0 || self.n_embd % self.n_head != 0 {
            return Err(Error::Config(format!(
                "n_embd ({}) is not divisible by n_head ({}); pick a head count that divides the width",
                self.n_embd, self.n_head
            )));
        }
        if self.vocab_size == 0 || self.n_positions == 0 || self.n_layer == 0 {
            return Err(Error::Config("vocab_size, n_positions and n_layer must be positive".into()));
        }
        Ok(())
    }

    pub fn d_inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// A randomly initialised model, as HF's `_init_weights` does it (residual projections scaled
    /// by `1/sqrt(2·n_layer)`).
    pub fn init(&self, device: &Device) -> Gpt2LmHeadModel {
        let (d, std) = (self.n_embd, self.initializer_range);
        let proj_std = std / (2.0 * self.n_layer as f64).sqrt();
        let h = (0..self.n_layer)
            .map(|layer_idx| {
                let mut scale = self.scale_attn_weights.then(|| 1.0 / ((d / self.n_head) as f64).sqrt());
                if self.scale_attn_by_inverse_layer_idx {
                    scale = Some(scale.unwrap_or(1.0) / (layer_idx + 1) as f64);
                }
                Gpt2Block {
                    ln_1: LayerNorm::new(d, self.layer_norm_epsilon, device),
                    attn: Gpt2Attention {
                        c_attn: Conv1D::new(d, 3 * d, std, device),
                        c_proj: Conv1D::new(d, d, proj_std, device),
                        attn_dropout: dropout(self.attn_pdrop),
                        resid_dropout: dropout(self.resid_pdrop),
                        n_head: self.n_head,
                        scale,
                    },
                    ln_2: LayerNorm::new(d, self.layer_norm_epsilon, device),
                    mlp: Gpt2Mlp {
                        c_fc: Conv1D::new(d, self.d_inner(), std, device),
                        c_proj: Conv1D::new(self.d_inner(), d, proj_std, device),
                        act: self.activation_function,
                        dropout: dropout(self.resid_pdrop),
                    },
                }
            })
            .collect();
        Gpt2LmHeadModel {
            transformer: Gpt2Model {
                wte: embedding_table(self.vocab_size, d, std, device),
                wpe: embedding_table(self.n_positions, d, std, device),
                drop: dropout(self.embd_pdrop),
                h,
                ln_f: LayerNorm::new(d, self.layer_norm_epsilon, device),
                fused_attention: true,
                gradient_checkpointing: false,
            },
            lm_head: (!self.tie_word_embeddings).then(|| Linear::new(d, self.vocab_size, false, std, device)),
        }
    }
}

#[derive(Module, Debug)]
pub struct Gpt2LmHeadModel {
    pub transformer: Gpt2Model,
    /// Only when `tie_word_embeddings` is false; otherwise the head is `transformer.wte`.
    pub lm_head: Option<Linear>,
}

#[derive(Module, Debug)]
pub struct Gpt2Model {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub drop: Dropout,
    pub h: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
    /// Run attention through the fused WGSL kernel where it applies (see `nn::attention`).
    #[module(skip)]
    pub fused_attention: bool,
    /// Recompute each block's activations in backward (see `nn::checkpoint`); training only.
    #[module(skip)]
    pub gradient_checkpointing: bool,
}

#[derive(Module, Debug)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    pub attn: Gpt2Attention,
    pub ln_2: LayerNorm,
    pub mlp: Gpt2Mlp,
}

#[derive(Module, Debug)]
pub struct Gpt2Attention {
    /// q, k and v in one projection: `[d, 3d]`.
    pub c_attn: Conv1D,
    pub c_proj: Conv1D,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    pub n_head: usize,
    #[module(skip)]
    pub scale: Option<f64>,
}

#[derive(Module, Debug)]
pub struct Gpt2Mlp {
    pub c_fc: Conv1D,
    pub c_proj: Conv1D,
    #[module(skip)]
    pub act: Activation,
    pub dropout: Dropout,
}

impl Gpt2Attention {
    /// `[b, t, d]` -> `[b, t, d]`
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        let qkv = self.c_attn.forward(x).chunk(3, 2); // 3 × [b, t, d]
        let [q, k, v] = [0, 1, 2].map(|i| split_heads(qkv[i].clone(), self.n_head)); // [b, h, t, dh]
        let y = scaled_dot_product_attention(q, k, v, bias, self.scale, &self.attn_dropout);
        self.resid_dropout.forward(self.c_proj.forward(merge_heads(y)))
    }
}

impl Gpt2Mlp {
    /// `[b, t, d]` -> `[b, t, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.act.forward(self.c_fc.forward(x)); // [b, t, d_inner]
        self.dropout.forward(self.c_proj.forward(x))
    }
}

impl Gpt2Block {
    /// `[b, t, d]` -> `[b, t, d]`, pre-LN.
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), bias);
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

impl Gpt2LmHeadModel {
    /// `input_ids [b, t]`, optional `attention_mask [b, t]` (1 = token, 0 = padding) -> logits `[b, t, vocab]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        let h = self.hidden_states(input_ids, attention_mask);
        match &self.lm_head {
            Some(head) => head.forward(h),
            None => crate::nn::project(h, self.transformer.wte.weight.val().transpose(), None), // tied: h·wteᵀ
        }
    }

    /// The final hidden states `[b, t, d]` (after `ln_f`).
    pub fn hidden_states(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.transformer.forward(input_ids, attention_mask)
    }
}

impl Gpt2Model {
    /// `input_ids [b, t]`, optional `attention_mask [b, t]` -> the final hidden states `[b, t, d]` (after `ln_f`).
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        let device = input_ids.device();
        let [_, t] = input_ids.dims();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device).unsqueeze::<2>(); // [1, t]
        let x = self.wte.forward(input_ids) + self.wpe.forward(positions); // [b, t, d]
        let mut x = self.drop.forward(x);
        let mut bias = AttentionBias::default().with_causal().with_fused(self.fused_attention);
        if let Some(mask) = attention_mask {
            bias = bias.with_key_padding(mask);
        }
        for block in &self.h {
            x = recompute(self.gradient_checkpointing, block, x, |b, x, r| b.forward(x, &r.inside(bias.clone())));
        }
        self.ln_f.forward(x)
    }
}

/// HF's `GPT2ForSequenceClassification`: a bias-free linear `score` on the last real token's state.
#[derive(Module, Debug)]
pub struct Gpt2ForSequenceClassification {
    pub transformer: Gpt2Model,
    pub score: Linear,
}

impl Gpt2ForSequenceClassification {
    /// A classifier over `num_labels` classes on a pretrained decoder; `score` is new.
    pub fn new(transformer: Gpt2Model, config: &Gpt2Config, num_labels: usize, device: &Device) -> Self {
        Self { transformer, score: Linear::new(config.n_embd, num_labels, false, config.initializer_range, device) }
    }

    /// `input_ids, attention_mask [b, t]` (right padding) -> class logits `[b, num_labels]`, read at
    /// each row's last non-padding token (HF: the rightmost token that is not `pad_token_id`).
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<2> {
        let [b, t] = input_ids.dims();
        let last = crate::nn::last_token_index(attention_mask.as_ref(), b, t, &input_ids.device());
        let h = self.transformer.forward(input_ids, attention_mask); // [b, t, d]
        self.score.forward(crate::nn::gather_rows(h, last))
    }
}

// The registry's view of the family (see `models/family.rs`).

impl FamilyConfig for Gpt2Config {
    fn model_type(&self) -> &'static str {
        Self::MODEL_TYPE
    }
    fn architecture(&self) -> &'static str {
        "GPT2LMHeadModel"
    }
    fn base_prefix(&self) -> &'static str {
        "transformer."
    }
    fn tokenizer_kind(&self) -> TokenizerKind {
        TokenizerKind::Bpe
    }
    fn objectives(&self) -> &'static [Objective] {
        &[Objective::Causal]
    }
    fn validate(&self) -> Result<()> {
        Gpt2Config::validate(self)
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
        Some(self.n_positions)
    }
    fn set_dropout(&mut self, p: f64) {
        (self.resid_pdrop, self.embd_pdrop, self.attn_pdrop) = (p, p, p);
    }
    fn set_special_tokens(&mut self, tokenizer: &Tokenizer) {
        (self.bos_token_id, self.eos_token_id) = (tokenizer.eos_id(), tokenizer.eos_id());
    }
    fn memory_dims(&self) -> MemoryDims {
        MemoryDims {
            layers: self.n_layer,
            decoder_layers: 0,
            d: self.n_embd,
            ffn: self.d_inner(),
            heads: self.n_head,
            vocab: self.vocab_size,
            fusable: true,
            attn_dropout: self.attn_pdrop,
        }
    }
}

impl Family for Gpt2Config {
    type Model = Gpt2LmHeadModel;
    const MODEL_TYPE: &'static str = "gpt2";
    const PRESETS: &'static [(&'static str, &'static str)] = &[
        ("gpt-tiny", r#"{"vocab_size": 1024, "n_positions": 128, "n_embd": 128, "n_layer": 4, "n_head": 4}"#),
        ("gpt2-124m", r#"{"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}"#),
        // The speed benchmark's sizes (`hearth bench train`, `bench/pytorch_reference.py`): the
        // tiny GPT of issue 8 (0.50M parameters) and a 10.1M one (head dim 64).
        ("gpt-bench-tiny", r#"{"vocab_size": 512, "n_positions": 256, "n_embd": 128, "n_layer": 2, "n_head": 4}"#),
        ("gpt-10m", r#"{"vocab_size": 8192, "n_positions": 256, "n_embd": 320, "n_layer": 6, "n_head": 5}"#),
    ];
    fn init(&self, device: &Device) -> Gpt2LmHeadModel {
        Gpt2Config::init(self, device)
    }
}

impl LanguageModel for Gpt2LmHeadModel {
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        super::causal_forward(self, inputs)
    }
    fn causal_lm(&self) -> Option<&dyn CausalLm> {
        Some(self)
    }
    fn attention_stacks(&self) -> Vec<(Stack, usize)> {
        (0..self.transformer.h.len()).map(|l| (Stack::SelfAttention, l)).collect()
    }
    fn fused_attention(&self) -> bool {
        self.transformer.fused_attention
    }
    fn set_fused_attention(&mut self, on: bool) {
        self.transformer.fused_attention = on;
    }
    fn set_gradient_checkpointing(&mut self, on: bool) {
        self.transformer.gradient_checkpointing = on;
    }
}

impl CausalLm for Gpt2LmHeadModel {
    fn causal_logits(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.forward(input_ids, attention_mask)
    }
    fn context_length(&self) -> usize {
        self.transformer.wpe.weight.lazy_shape()[0]
    }
}

impl SequenceHead for Gpt2ForSequenceClassification {
    type Config = Gpt2Config;
    fn from_pretrained(model: Gpt2LmHeadModel, config: &Gpt2Config, num_labels: usize, device: &Device) -> Self {
        Self::new(model.transformer, config, num_labels, device)
    }
    fn classify(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2, Int>, _: Tensor<2, Int>) -> Tensor<2> {
        self.forward(input_ids, Some(attention_mask))
    }
    fn architecture(&self) -> &'static str {
        "GPT2ForSequenceClassification"
    }
}
