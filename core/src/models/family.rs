//! What a model family is, as the rest of Hearth asks for it. Each family's file implements these
//! traits for its config and its model; `models/mod.rs` lists the families once (`families!`), and
//! every other module asks a [`ModelConfig`](super::ModelConfig) or a [`Model`](super::Model) for a
//! fact or a capability — never for a family by name. (HF transformers' `Auto*` classes and
//! candle-transformers' one file per model, with burn's `Module` derive doing the rest.)
//!
//! - [`FamilyConfig`]: the facts of `config.json` (HF `model_type`, architecture, defaults written
//!   back, sizes) and the family's training facts (tokenizer, objectives, the memory model's
//!   dimensions).
//! - [`LanguageModel`]: one forward for every family (HF's own loss), and the capabilities a model
//!   has — [`CausalLm`] (generation, perplexity, causal scoring), [`MaskedLm`] (fill-mask,
//!   pseudo-likelihood), [`Seq2SeqLm`] (text-to-text) — as `Option`s, so a consumer asks
//!   "can it?" rather than "which family is it?".

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::tokenizer::{Tokenizer, TokenizerKind};

/// A pretraining objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Next-token prediction over packed blocks (GPT, LLaMA).
    Causal,
    /// Masked LM, 15% / 80-10-10 (BERT).
    Masked,
    /// Span corruption, density 0.15, mean span 3 (T5).
    Span,
    /// T5's input corrupted as for `Span`, but the decoder writes the *whole* original text back
    /// (the "MASS-style" objective of the T5 paper, BART's denoising): every position is a target,
    /// so the decoder learns the language as a causal LM does and fills a span from its left
    /// context, where `Span` teaches that only through each span's first token.
    Denoise,
}

impl Objective {
    pub const ALL: [Objective; 4] = [Objective::Causal, Objective::Masked, Objective::Span, Objective::Denoise];

    /// The name a run file, the CLI and the page use (`objective = "causal"`).
    pub fn name(self) -> &'static str {
        match self {
            Objective::Causal => "causal",
            Objective::Masked => "masked",
            Objective::Span => "span",
            Objective::Denoise => "denoise",
        }
    }
}

/// The sizes a family's training step depends on (the memory model of `crate::footprint`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryDims {
    pub layers: usize,
    /// Decoder layers (T5), each with self- and cross-attention.
    pub decoder_layers: usize,
    /// The widest hidden state (T5: `max(d_model, heads · d_kv)`).
    pub d: usize,
    pub ffn: usize,
    pub heads: usize,
    pub vocab: usize,
    /// Attention can run through a fused kernel (no `T×T` scores): not with T5's relative bias.
    pub fusable: bool,
    /// Attention dropout while training sends attention to the composition.
    pub attn_dropout: f64,
}

/// A family's `config.json` and what training needs to know about the family. Object-safe:
/// `ModelConfig::family()` hands one out.
pub trait FamilyConfig: std::fmt::Debug + Send + Sync {
    /// HF's `model_type` (`"gpt2"`).
    fn model_type(&self) -> &'static str;
    /// The architecture Hearth writes in `architectures` (`"GPT2LMHeadModel"`).
    fn architecture(&self) -> &'static str;
    /// The prefix of the base model's parameters in a head model's checkpoint (`"transformer."`):
    /// a checkpoint of the bare base model (`GPT2Model`) lacks it, and loads all the same.
    fn base_prefix(&self) -> &'static str;
    /// The tokenizer a new run trains for this family.
    fn tokenizer_kind(&self) -> TokenizerKind;
    /// The objectives it trains with; the first is its own (the default).
    fn objectives(&self) -> &'static [Objective];
    /// Refuses a config Hearth cannot build or honour, with the fix.
    fn validate(&self) -> Result<()>;
    /// The keys transformers writes for this family beyond the config's own: `resolved` values
    /// (override the config's) and `defaults` (fill in where the config has none); see
    /// `ModelConfig::to_json`.
    fn hf_keys(&self) -> (Value, Value);
    /// Keys read from older `config.json`s that transformers no longer writes (folded into others).
    fn legacy_keys(&self) -> &'static [&'static str] {
        &[]
    }
    fn vocab_size(&self) -> usize;
    fn set_vocab_size(&mut self, n: usize);
    /// The longest input the model takes (`None`: relative positions, no limit).
    fn max_positions(&self) -> Option<usize>;
    /// Sets every dropout probability (HF keys) to `p`.
    fn set_dropout(&mut self, p: f64);
    /// Takes the special tokens' ids from `tokenizer`, so `config.json` tells transformers what
    /// generation and padding use.
    fn set_special_tokens(&mut self, tokenizer: &Tokenizer);
    fn memory_dims(&self) -> MemoryDims;
    /// The decoder's first token (encoder-decoders).
    fn decoder_start_token(&self) -> Option<u32> {
        None
    }
}

/// The facts of a family that name types and constants (the `families!` list reads them).
pub trait Family: FamilyConfig + Clone + Serialize + serde::de::DeserializeOwned + Sized + 'static {
    /// Its language model (`Gpt2LmHeadModel`).
    type Model: LanguageModel;
    /// HF's `model_type`, for parsing `config.json`.
    const MODEL_TYPE: &'static str;
    /// Named sizes: `(name, HF config keys as JSON)`; every one builds (`presets::tests`).
    const PRESETS: &'static [(&'static str, &'static str)];
    /// A randomly initialised model, as HF's `_init_weights` does it.
    fn init(&self, device: &Device) -> Self::Model;
}

/// Inputs as HF models take them; `[batch, seq]` each.
#[derive(Clone, Debug)]
pub struct ModelInputs {
    pub input_ids: Tensor<2, Int>,
    /// 1 = token, 0 = padding.
    pub attention_mask: Option<Tensor<2, Int>>,
    /// BERT's segment ids.
    pub token_type_ids: Option<Tensor<2, Int>>,
    /// An encoder-decoder's decoder inputs (from the labels by `t5::shift_right` when absent).
    pub decoder_input_ids: Option<Tensor<2, Int>>,
    /// Targets, `-100` where there is none. A causal LM's are the inputs themselves (shifted inside
    /// the loss); a masked LM's the original tokens at masked positions; a seq2seq LM's the decoder
    /// targets.
    pub labels: Option<Tensor<2, Int>>,
}

impl ModelInputs {
    pub fn new(input_ids: Tensor<2, Int>) -> Self {
        Self { input_ids, attention_mask: None, token_type_ids: None, decoder_input_ids: None, labels: None }
    }
}

/// Logits `[batch, seq, vocab]` and, when labels were given, the mean cross-entropy `[1]`.
#[derive(Clone, Debug)]
pub struct ModelOutput {
    pub logits: Tensor<3>,
    pub loss: Option<Tensor<1>>,
}

/// Which attention a recorded map is (see `attention_maps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// A decoder's or an encoder's only stack.
    SelfAttention,
    /// An encoder-decoder's encoder self-attention.
    Encoder,
    /// An encoder-decoder's decoder self-attention (causal).
    Decoder,
    /// An encoder-decoder's decoder over the encoder's output.
    Cross,
}

/// What code that trains, evaluates or serves any family needs of a model.
pub trait LanguageModel: Module + Clone + Send + std::fmt::Debug + 'static {
    /// Logits and, with labels, the loss as the family's HF head computes it.
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput>;
    /// Next-token prediction, where the model is a decoder.
    fn causal_lm(&self) -> Option<&dyn CausalLm> {
        None
    }
    /// Masked-token prediction, where the model is an encoder with an MLM head.
    fn masked_lm(&self) -> Option<&dyn MaskedLm> {
        None
    }
    /// Text-to-text, where the model is an encoder-decoder.
    fn seq2seq_lm(&self) -> Option<&dyn Seq2SeqLm> {
        None
    }
    /// The attention calls one forward makes, in order (what `attention_maps` labels).
    fn attention_stacks(&self) -> Vec<(Stack, usize)>;
    /// Whether attention may take a fused kernel where one applies (see `nn::attention`).
    fn fused_attention(&self) -> bool;
    fn set_fused_attention(&mut self, on: bool);
    /// Activation checkpointing per block (training only; see `nn::recompute`).
    fn set_gradient_checkpointing(&mut self, on: bool);
}

/// A decoder that predicts the next token.
pub trait CausalLm {
    /// `input_ids [b, t]`, optional `attention_mask [b, t]` -> logits `[b, t, vocab]`.
    fn causal_logits(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3>;
    /// The longest context it takes.
    fn context_length(&self) -> usize;
}

/// An encoder that predicts masked tokens.
pub trait MaskedLm {
    /// `input_ids [b, t]`, optional `attention_mask [b, t]` -> logits `[b, t, vocab]`.
    fn masked_logits(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3>;
    /// The longest input it takes.
    fn context_length(&self) -> usize;
}

/// An encoder-decoder.
pub trait Seq2SeqLm {
    /// `input_ids [b, t]`, optional mask -> the encoder's states `[b, t, d]`.
    fn encode(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3>;
    /// `decoder_ids [b, s]` over `encoded` (its padding `attention_mask`) -> logits `[b, s, vocab]`.
    fn decode(
        &self,
        decoder_ids: Tensor<2, Int>,
        encoded: Tensor<3>,
        attention_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3>;
    /// The decoder's first token.
    fn decoder_start(&self) -> u32;
}

/// A head for sequence classification on a family's pretrained model (HF's
/// `…ForSequenceClassification`).
pub trait SequenceHead: Module + Clone + Send + std::fmt::Debug + Sized + 'static {
    type Config: Family;
    /// A `num_labels`-way head (new weights) on the pretrained model.
    fn from_pretrained(
        model: <Self::Config as Family>::Model,
        config: &Self::Config,
        num_labels: usize,
        device: &Device,
    ) -> Self;
    /// `input_ids`, `attention_mask [b, t]` (right padding), BERT's `token_type_ids` -> `[b, num_labels]`.
    fn classify(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
    ) -> Tensor<2>;
    /// HF's architecture name (`BertForSequenceClassification`).
    fn architecture(&self) -> &'static str;
}
