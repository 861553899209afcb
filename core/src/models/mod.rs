//! The three model families, and one enum over them for code that takes any HF checkpoint.

pub mod bert;
pub mod gpt2;
pub mod presets;
pub mod t5;

use burn::module::Module;
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};
use serde_json::json;

use crate::error::{Error, Result};
use crate::hf::params::{param_grads, param_shapes, param_values};
use crate::hf::weights::{SafetensorsFile, load_weights, save_weights, save_weights_async};
use crate::nn::cross_entropy_with_ignore;

pub use bert::{BertConfig, BertForMaskedLm};
pub use gpt2::{Gpt2Config, Gpt2LmHeadModel};
pub use t5::{T5Config, T5ForConditionalGeneration};

/// A model's `config.json`, by its `model_type`.
#[derive(Clone, Debug)]
pub enum ModelConfig {
    Gpt2(Gpt2Config),
    Bert(BertConfig),
    T5(T5Config),
}

impl ModelConfig {
    /// Parses an HF `config.json` and checks it describes a model Hearth can build.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("not valid JSON ({e})")))?;
        let model_type = value.get("model_type").and_then(|v| v.as_str()).ok_or_else(|| {
            Error::Config(
                "no \"model_type\" key; an HF config.json names its family (\"gpt2\", \"bert\" or \"t5\")".into(),
            )
        })?;
        fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value, family: &str) -> Result<T> {
            serde_json::from_value(value).map_err(|e| Error::Config(format!("invalid {family} config: {e}")))
        }
        let config = match model_type {
            "gpt2" => Self::Gpt2(parse(value, "gpt2")?),
            "bert" => Self::Bert(parse(value, "bert")?),
            "t5" => Self::T5(parse(value, "t5")?),
            other => {
                return Err(Error::Config(format!(
                    "unknown model_type \"{other}\"; Hearth builds \"gpt2\", \"bert\" and \"t5\""
                )));
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// The `config.json` transformers reads as the same model: every key transformers itself writes
    /// for this model (`model.save_pretrained`), explicitly, with values resolved where Hearth
    /// leaves them implicit — never a `null` that transformers would read differently. The weights
    /// Hearth writes are f32 (`dtype`). `tests/tests/hf_config.rs` compares it with the configs
    /// transformers writes for every preset.
    pub fn to_json(&self) -> String {
        let (value, model_type, architecture, (resolved, defaults)) = match self {
            Self::Gpt2(c) => {
                (serde_json::to_value(c), "gpt2", "GPT2LMHeadModel", (json!({}), Gpt2Config::hf_defaults()))
            }
            Self::Bert(c) => {
                (serde_json::to_value(c), "bert", "BertForMaskedLM", (json!({}), BertConfig::hf_defaults()))
            }
            Self::T5(c) => (serde_json::to_value(c), "t5", "T5ForConditionalGeneration", c.hf_keys()),
        };
        let serde_json::Value::Object(mut map) = value.expect("config serialises") else { unreachable!("an object") };
        for (key, v) in resolved.as_object().expect("an object") {
            map.insert(key.clone(), v.clone());
        }
        for (key, v) in defaults.as_object().expect("an object") {
            map.entry(key.clone()).or_insert_with(|| v.clone());
        }
        map.insert("model_type".into(), model_type.into());
        map.insert("architectures".into(), json!([architecture]));
        map.insert("dtype".into(), "float32".into());
        // A key order that does not depend on where a value came from (transformers sorts too).
        let sorted: std::collections::BTreeMap<_, _> = map.into_iter().collect();
        serde_json::to_string_pretty(&sorted).expect("config serialises")
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Gpt2(c) => c.validate(),
            Self::Bert(c) => c.validate(),
            Self::T5(c) => c.validate(),
        }
    }

    /// HF's `model_type`.
    pub fn model_type(&self) -> &'static str {
        match self {
            Self::Gpt2(_) => "gpt2",
            Self::Bert(_) => "bert",
            Self::T5(_) => "t5",
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.vocab_size,
            Self::Bert(c) => c.vocab_size,
            Self::T5(c) => c.vocab_size,
        }
    }

    /// The longest input the position table allows (`None`: relative positions, no limit).
    pub fn max_positions(&self) -> Option<usize> {
        match self {
            Self::Gpt2(c) => Some(c.n_positions),
            Self::Bert(c) => Some(c.max_position_embeddings),
            Self::T5(_) => None,
        }
    }

    /// A randomly initialised model.
    pub fn init(&self, device: &Device) -> Model {
        match self {
            Self::Gpt2(c) => Model::Gpt2(c.init(device)),
            Self::Bert(c) => Model::Bert(c.init(device)),
            Self::T5(c) => Model::T5(c.init(device)),
        }
    }
}

/// Inputs as HF models take them; `[batch, seq]` each.
#[derive(Clone, Debug)]
pub struct ModelInputs {
    pub input_ids: Tensor<2, Int>,
    /// 1 = token, 0 = padding.
    pub attention_mask: Option<Tensor<2, Int>>,
    /// BERT's segment ids.
    pub token_type_ids: Option<Tensor<2, Int>>,
    /// T5's decoder inputs (from the labels by `t5::shift_right` when absent).
    pub decoder_input_ids: Option<Tensor<2, Int>>,
    /// Targets, `-100` where there is none. GPT-2's are the inputs themselves (shifted inside the
    /// loss); BERT's are the original tokens at masked positions; T5's are the decoder targets.
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

/// Any of the three families.
#[derive(Clone, Debug)]
pub enum Model {
    Gpt2(Gpt2LmHeadModel),
    Bert(BertForMaskedLm),
    T5(T5ForConditionalGeneration),
}

/// Calls `$body` with `$m` bound to the inner model, whatever the family.
macro_rules! each_family {
    ($model:expr, $m:ident => $body:expr) => {
        match $model {
            Model::Gpt2($m) => $body,
            Model::Bert($m) => $body,
            Model::T5($m) => $body,
        }
    };
}

impl Model {
    /// Builds the model `config` describes with the weights in `safetensors` (HF names and layouts).
    pub fn from_hf(config: &ModelConfig, safetensors: &[u8], device: &Device) -> Result<Self> {
        let file = SafetensorsFile::parse(safetensors)?;
        Ok(match config.init(device) {
            Model::Gpt2(m) => Model::Gpt2(load_weights(m, &file, "transformer.")?),
            Model::Bert(m) => Model::Bert(load_weights(m, &file, "bert.")?),
            Model::T5(m) => Model::T5(load_weights(m, &file, "")?),
        })
    }

    /// The bytes of `model.safetensors` in HF names and layouts.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        each_family!(self, m => save_weights(m))
    }

    /// [`Model::to_safetensors`], with the device reads awaited (what a browser page calls).
    pub async fn to_safetensors_async(&self) -> Result<Vec<u8>> {
        each_family!(self, m => save_weights_async(m).await)
    }

    /// `(hf_name, shape)` of every parameter.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        each_family!(self, m => param_shapes(m))
    }

    /// `(hf_name, value)` of every parameter.
    pub fn param_values(&self) -> Vec<(String, TensorData)> {
        each_family!(self, m => param_values(m))
    }

    /// `(hf_name, gradient)` of every parameter the loss behind `grads` depends on.
    pub fn param_grads(&self, grads: &Gradients) -> Vec<(String, TensorData)> {
        each_family!(self, m => param_grads(m, grads))
    }

    pub fn num_params(&self) -> usize {
        each_family!(self, m => m.num_params())
    }

    /// The model on `device` (e.g. `device.autodiff()` to train it).
    pub fn to_device(self, device: &Device) -> Self {
        match self {
            Model::Gpt2(m) => Model::Gpt2(m.to_device(device)),
            Model::Bert(m) => Model::Bert(m.to_device(device)),
            Model::T5(m) => Model::T5(m.to_device(device)),
        }
    }

    /// Turns the fused attention kernel on or off (on by default; it applies on wgpu only, see
    /// `nn::attention::scaled_dot_product_attention`). Not part of the HF config.
    pub fn set_fused_attention(&mut self, fused: bool) {
        match self {
            Model::Gpt2(m) => m.transformer.fused_attention = fused,
            Model::Bert(m) => m.bert.fused_attention = fused,
            Model::T5(m) => m.fused_attention = fused,
        }
    }

    /// Turns activation checkpointing per transformer block on or off (off by default; see
    /// `nn::checkpoint`). It acts only while training (on autodiff tensors).
    pub fn set_gradient_checkpointing(&mut self, on: bool) {
        match self {
            Model::Gpt2(m) => m.transformer.gradient_checkpointing = on,
            Model::Bert(m) => m.bert.gradient_checkpointing = on,
            Model::T5(m) => m.gradient_checkpointing = on,
        }
    }

    /// Whether attention may run through the fused kernel (see [`Model::set_fused_attention`]).
    pub fn fused_attention(&self) -> bool {
        match self {
            Model::Gpt2(m) => m.transformer.fused_attention,
            Model::Bert(m) => m.bert.fused_attention,
            Model::T5(m) => m.fused_attention,
        }
    }

    /// Logits and, with labels, the loss each HF head computes: shifted next-token cross-entropy
    /// for GPT-2, cross-entropy over the labelled positions for BERT and T5.
    pub fn forward(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        each_family!(self, m => m.forward_inputs(inputs))
    }
}

/// What code that trains or evaluates any family needs of a model.
pub trait LanguageModel: Module + Clone + Send + 'static {
    /// Logits and, with labels, the loss as the family's HF head computes it.
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput>;
    /// The model in the enum over families.
    fn into_model(self) -> Model;
}

impl LanguageModel for Gpt2LmHeadModel {
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        let logits = self.forward(inputs.input_ids, inputs.attention_mask);
        let loss = inputs.labels.map(|l| causal_lm_loss(logits.clone(), l));
        Ok(ModelOutput { logits, loss })
    }
    fn into_model(self) -> Model {
        Model::Gpt2(self)
    }
}

impl LanguageModel for BertForMaskedLm {
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        let logits = self.forward(inputs.input_ids, inputs.attention_mask, inputs.token_type_ids);
        let loss = inputs.labels.map(|l| token_loss(logits.clone(), l));
        Ok(ModelOutput { logits, loss })
    }
    fn into_model(self) -> Model {
        Model::Bert(self)
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
        let loss = inputs.labels.map(|l| token_loss(logits.clone(), l));
        Ok(ModelOutput { logits, loss })
    }
    fn into_model(self) -> Model {
        Model::T5(self)
    }
}

/// Cross-entropy of `logits [b, t, v]` against `labels [b, t]` at every labelled position.
pub fn token_loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let [b, t, v] = logits.dims();
    cross_entropy_with_ignore(logits.reshape([b * t, v]), labels.reshape([b * t]))
}

/// Next-token cross-entropy: position `i` predicts label `i + 1` (HF's shift inside the loss).
///
/// The labels shift, not the logits: the last position's label becomes `IGNORE_INDEX`, so the
/// logits keep their layout (slicing them copied `[b, t-1, v]` forward and padded the gradient
/// with zeros backward). The mean runs over the same targets.
pub fn causal_lm_loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let [b, t] = labels.dims();
    let last = Tensor::<2, Int>::full([b, 1], crate::nn::loss::IGNORE_INDEX, &labels.device());
    let shifted = Tensor::cat(vec![labels.slice([0..b, 1..t]), last], 1);
    token_loss(logits, shifted)
}

impl ModelConfig {
    /// Sets every dropout probability of the config (HF keys) to `p`.
    pub fn set_dropout(&mut self, p: f64) {
        match self {
            Self::Gpt2(c) => (c.resid_pdrop, c.embd_pdrop, c.attn_pdrop) = (p, p, p),
            Self::Bert(c) => (c.hidden_dropout_prob, c.attention_probs_dropout_prob) = (p, p),
            Self::T5(c) => c.dropout_rate = p,
        }
    }

    /// Takes the ids of the special tokens (end of text, padding) from `tokenizer`, so that the
    /// saved `config.json` tells `transformers` what `generate` and padding should use.
    pub fn set_special_tokens(&mut self, tokenizer: &crate::tokenizer::Tokenizer) {
        match self {
            Self::Gpt2(c) => (c.bos_token_id, c.eos_token_id) = (tokenizer.eos_id(), tokenizer.eos_id()),
            Self::Bert(c) => c.pad_token_id = tokenizer.pad_id(),
            Self::T5(c) => {
                c.pad_token_id = tokenizer.pad_id().unwrap_or(c.pad_token_id);
                c.eos_token_id = tokenizer.eos_id().unwrap_or(c.eos_token_id);
                c.decoder_start_token_id = Some(c.pad_token_id);
            }
        }
    }

    /// Sets the vocabulary size (to a tokenizer's).
    pub fn set_vocab_size(&mut self, n: usize) {
        match self {
            Self::Gpt2(c) => c.vocab_size = n,
            Self::Bert(c) => c.vocab_size = n,
            Self::T5(c) => c.vocab_size = n,
        }
    }
}
