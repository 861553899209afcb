//! The model families, listed once.
//!
//! [`families!`] below is the registry: each line names a family's variant, its config type (which
//! implements [`Family`]) and, where it has one, its sequence-classification head. From that list
//! come the enums every front end holds — [`ModelConfig`] (a `config.json`), [`Model`] (any
//! family's model, a burn `Module` that trains as one) and [`SequenceClassifier`] — and the
//! dispatch over them. Everything else asks a config or a model for a fact or a capability
//! (`family.rs`). A new family is its model file, one line here, and its kernels if it needs any.

pub mod bert;
pub mod family;
pub mod gpt2;
pub mod llama;
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
pub use family::{
    CausalLm, Family, FamilyConfig, LanguageModel, MaskedLm, MemoryDims, ModelInputs, ModelOutput, Objective,
    Seq2SeqLm, SequenceHead, Stack,
};
pub use gpt2::{Gpt2Config, Gpt2LmHeadModel};
pub use llama::{LlamaConfig, LlamaForCausalLm};
pub use t5::{T5Config, T5ForConditionalGeneration};

/// Generates the enums over the families and their dispatch from one list of
/// `Variant: Config [=> ClassifierHead];` lines. Every `match` on a family lives here, exhaustive:
/// a family added to the list compiles only once each of them handles it.
macro_rules! families {
    ($($variant:ident: $config:ty $(=> $head:ty)?;)*) => {
        /// A model's `config.json`, by its `model_type`.
        #[derive(Clone, Debug)]
        pub enum ModelConfig {
            $($variant($config),)*
        }

        /// Any family's model (a burn `Module`: it trains, saves and moves between devices as one;
        /// its parameters keep their HF names, the variant is not part of them).
        #[derive(Module, Debug)]
        pub enum Model {
            $($variant(<$config as Family>::Model),)*
        }

        /// A pretrained model with a sequence-classification head, for the families that have one.
        #[derive(Module, Debug)]
        pub enum SequenceClassifier {
            $($($variant($head),)?)*
        }

        impl ModelConfig {
            /// HF `model_type`s Hearth builds, in registry order.
            pub const MODEL_TYPES: &'static [&'static str] = &[$(<$config as Family>::MODEL_TYPE,)*];

            /// Every family's presets: `(name, model_type, HF keys as JSON)`.
            pub fn presets() -> Vec<(&'static str, &'static str, &'static str)> {
                let mut all = Vec::new();
                $(all.extend(<$config as Family>::PRESETS.iter().map(|(n, j)| (*n, <$config as Family>::MODEL_TYPE, *j)));)*
                all
            }

            /// The config `value` describes, by its `model_type`.
            fn parse(model_type: &str, value: serde_json::Value) -> Result<Self> {
                $(if model_type == <$config as Family>::MODEL_TYPE {
                    return serde_json::from_value(value)
                        .map(Self::$variant)
                        .map_err(|e| Error::Config(format!("invalid {model_type} config: {e}")));
                })*
                Err(Error::Config(format!(
                    "unknown model_type \"{model_type}\"; Hearth builds {}",
                    Self::MODEL_TYPES.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ")
                )))
            }

            /// The family's facts and settings.
            pub fn family(&self) -> &dyn FamilyConfig {
                match self {
                    $(Self::$variant(c) => c,)*
                }
            }

            pub fn family_mut(&mut self) -> &mut dyn FamilyConfig {
                match self {
                    $(Self::$variant(c) => c,)*
                }
            }

            /// The config's keys as serialised (before the family's resolved keys).
            fn own_json(&self) -> serde_json::Value {
                match self {
                    $(Self::$variant(c) => serde_json::to_value(c).expect("a config serialises"),)*
                }
            }

            /// A randomly initialised model.
            pub fn init(&self, device: &Device) -> Model {
                match self {
                    $(Self::$variant(c) => Model::$variant(c.init(device)),)*
                }
            }

            /// `model` with a `num_labels`-way classification head (new weights, drawn from the
            /// device's generator), where the family has a head.
            pub fn classifier(&self, model: Model, num_labels: usize, device: &Device) -> Result<SequenceClassifier> {
                match (self, model) {
                    $(($crate::models::ModelConfig::$variant(c), Model::$variant(m)) =>
                        families!(@head $variant c m num_labels device $($head)?),)*
                    (c, _) => Err(Error::Config(format!("the model and its config ({}) are of different families", c.model_type()))),
                }
            }
        }

        impl Model {
            /// The model as the traits every consumer asks (capabilities, attention, switches).
            pub fn family(&self) -> &dyn ModelFamily {
                match self {
                    $(Self::$variant(m) => m,)*
                }
            }

            pub fn family_mut(&mut self) -> &mut dyn ModelFamily {
                match self {
                    $(Self::$variant(m) => m,)*
                }
            }

            /// The bytes of `model.safetensors` in HF names and layouts.
            pub fn to_safetensors(&self) -> Result<Vec<u8>> {
                match self {
                    $(Self::$variant(m) => save_weights(m),)*
                }
            }

            /// [`Model::to_safetensors`], with the device reads awaited (what a browser page calls).
            pub async fn to_safetensors_async(&self) -> Result<Vec<u8>> {
                match self {
                    $(Self::$variant(m) => save_weights_async(m).await,)*
                }
            }

            /// Builds the model `config` describes with the weights in `safetensors` (HF names and layouts).
            pub fn from_hf(config: &ModelConfig, safetensors: &[u8], device: &Device) -> Result<Self> {
                let file = SafetensorsFile::parse(safetensors)?;
                let prefix = config.family().base_prefix();
                Ok(match config.init(device) {
                    $(Model::$variant(m) => Model::$variant(load_weights(m, &file, prefix)?),)*
                })
            }
        }

        impl SequenceClassifier {
            fn head(&self) -> &dyn ClassifierHead {
                match self {
                    $($(Self::$variant(m) => { let m: &$head = m; m },)?)*
                }
            }

            /// The bytes of `model.safetensors` (HF names: `bert.…`, `classifier.…`; `transformer.…`, `score.…`).
            pub fn to_safetensors(&self) -> Result<Vec<u8>> {
                match self {
                    $($(Self::$variant(m) => { let m: &$head = m; save_weights(m) },)?)*
                }
            }
        }
    };
    (@head $variant:ident $c:ident $m:ident $n:ident $device:ident $head:ty) => {
        Ok(SequenceClassifier::$variant(<$head as SequenceHead>::from_pretrained($m, $c, $n, $device)))
    };
    (@head $variant:ident $c:ident $m:ident $n:ident $device:ident) => {{
        let _ = ($m, $n, $device);
        Err(Error::Config(format!(
            "sequence classification needs a family with a classification head; {} has none (fine-tune it text-to-text)",
            $c.model_type()
        )))
    }};
}

families! {
    Gpt2: Gpt2Config => gpt2::Gpt2ForSequenceClassification;
    Bert: BertConfig => bert::BertForSequenceClassification;
    T5: T5Config;
    Llama: LlamaConfig => llama::LlamaForSequenceClassification;
}

/// What every family's model answers, object-safe (the model side of the registry).
pub trait ModelFamily {
    fn forward(&self, inputs: ModelInputs) -> Result<ModelOutput>;
    fn causal_lm(&self) -> Option<&dyn CausalLm>;
    fn masked_lm(&self) -> Option<&dyn MaskedLm>;
    fn seq2seq_lm(&self) -> Option<&dyn Seq2SeqLm>;
    fn attention_stacks(&self) -> Vec<(Stack, usize)>;
    fn fused_attention(&self) -> bool;
    fn set_fused_attention(&mut self, on: bool);
    fn set_gradient_checkpointing(&mut self, on: bool);
    fn param_shapes(&self) -> Vec<(String, Vec<usize>)>;
    fn param_values(&self) -> Vec<(String, TensorData)>;
    fn param_grads(&self, grads: &Gradients) -> Vec<(String, TensorData)>;
    fn num_params(&self) -> usize;
}

impl<M: LanguageModel> ModelFamily for M {
    fn forward(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        self.forward_inputs(inputs)
    }
    fn causal_lm(&self) -> Option<&dyn CausalLm> {
        LanguageModel::causal_lm(self)
    }
    fn masked_lm(&self) -> Option<&dyn MaskedLm> {
        LanguageModel::masked_lm(self)
    }
    fn seq2seq_lm(&self) -> Option<&dyn Seq2SeqLm> {
        LanguageModel::seq2seq_lm(self)
    }
    fn attention_stacks(&self) -> Vec<(Stack, usize)> {
        LanguageModel::attention_stacks(self)
    }
    fn fused_attention(&self) -> bool {
        LanguageModel::fused_attention(self)
    }
    fn set_fused_attention(&mut self, on: bool) {
        LanguageModel::set_fused_attention(self, on)
    }
    fn set_gradient_checkpointing(&mut self, on: bool) {
        LanguageModel::set_gradient_checkpointing(self, on)
    }
    fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        param_shapes(self)
    }
    fn param_values(&self) -> Vec<(String, TensorData)> {
        param_values(self)
    }
    fn param_grads(&self, grads: &Gradients) -> Vec<(String, TensorData)> {
        param_grads(self, grads)
    }
    fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}

/// The enum trains as any family's model: each call goes to the family inside.
impl LanguageModel for Model {
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        self.family().forward(inputs)
    }
    fn causal_lm(&self) -> Option<&dyn CausalLm> {
        self.family().causal_lm()
    }
    fn masked_lm(&self) -> Option<&dyn MaskedLm> {
        self.family().masked_lm()
    }
    fn seq2seq_lm(&self) -> Option<&dyn Seq2SeqLm> {
        self.family().seq2seq_lm()
    }
    fn attention_stacks(&self) -> Vec<(Stack, usize)> {
        self.family().attention_stacks()
    }
    fn fused_attention(&self) -> bool {
        self.family().fused_attention()
    }
    fn set_fused_attention(&mut self, on: bool) {
        self.family_mut().set_fused_attention(on)
    }
    fn set_gradient_checkpointing(&mut self, on: bool) {
        self.family_mut().set_gradient_checkpointing(on)
    }
}

impl Model {
    /// `(hf_name, shape)` of every parameter.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.family().param_shapes()
    }

    /// `(hf_name, value)` of every parameter.
    pub fn param_values(&self) -> Vec<(String, TensorData)> {
        self.family().param_values()
    }

    /// `(hf_name, gradient)` of every parameter the loss behind `grads` depends on.
    pub fn param_grads(&self, grads: &Gradients) -> Vec<(String, TensorData)> {
        self.family().param_grads(grads)
    }

    pub fn num_params(&self) -> usize {
        self.family().num_params()
    }

    /// Logits and, with labels, the loss each HF head computes.
    pub fn forward(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        self.family().forward(inputs)
    }
}

/// The object-safe side of [`SequenceHead`], for the enum's dispatch.
trait ClassifierHead {
    fn classify(&self, ids: Tensor<2, Int>, mask: Tensor<2, Int>, types: Tensor<2, Int>) -> Tensor<2>;
    fn architecture(&self) -> &'static str;
}

impl<H: SequenceHead> ClassifierHead for H {
    fn classify(&self, ids: Tensor<2, Int>, mask: Tensor<2, Int>, types: Tensor<2, Int>) -> Tensor<2> {
        SequenceHead::classify(self, ids, mask, types)
    }
    fn architecture(&self) -> &'static str {
        SequenceHead::architecture(self)
    }
}

impl SequenceClassifier {
    /// `input_ids`, `attention_mask`, `token_type_ids [b, t]` -> `[b, num_labels]`.
    pub fn classify(&self, ids: Tensor<2, Int>, mask: Tensor<2, Int>, types: Tensor<2, Int>) -> Tensor<2> {
        self.head().classify(ids, mask, types)
    }

    /// HF's architecture name.
    pub fn architecture(&self) -> &'static str {
        self.head().architecture()
    }
}

impl ModelConfig {
    /// Parses an HF `config.json` and checks it describes a model Hearth can build.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("not valid JSON ({e})")))?;
        let model_type = value.get("model_type").and_then(|v| v.as_str()).ok_or_else(|| {
            Error::Config(format!(
                "no \"model_type\" key; an HF config.json names its family ({})",
                Self::MODEL_TYPES.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let config = Self::parse(&model_type.to_string(), value)?;
        config.validate()?;
        Ok(config)
    }

    /// The `config.json` transformers reads as the same model: every key transformers itself writes
    /// for the model (`model.save_pretrained`), explicitly, with values resolved where Hearth
    /// leaves them implicit — never a `null` that transformers would read differently. The weights
    /// Hearth writes are f32 (`dtype`). `tests/tests/hf_config.rs` compares it with the configs
    /// transformers writes for every preset.
    pub fn to_json(&self) -> String {
        let family = self.family();
        let (resolved, defaults) = family.hf_keys();
        let serde_json::Value::Object(mut map) = self.own_json() else { unreachable!("a config is an object") };
        for key in family.legacy_keys() {
            map.remove(*key);
        }
        for (key, v) in resolved.as_object().expect("an object") {
            map.insert(key.clone(), v.clone());
        }
        for (key, v) in defaults.as_object().expect("an object") {
            map.entry(key.clone()).or_insert_with(|| v.clone());
        }
        map.insert("model_type".into(), family.model_type().into());
        map.insert("architectures".into(), json!([family.architecture()]));
        map.insert("dtype".into(), "float32".into());
        // A key order that does not depend on where a value came from (transformers sorts too).
        let sorted: std::collections::BTreeMap<_, _> = map.into_iter().collect();
        serde_json::to_string_pretty(&sorted).expect("config serialises")
    }

    pub fn validate(&self) -> Result<()> {
        self.family().validate()
    }

    /// HF's `model_type`.
    pub fn model_type(&self) -> &'static str {
        self.family().model_type()
    }

    pub fn vocab_size(&self) -> usize {
        self.family().vocab_size()
    }

    /// The longest input the model takes (`None`: relative positions, no limit).
    pub fn max_positions(&self) -> Option<usize> {
        self.family().max_positions()
    }

    /// Sets every dropout probability of the config (HF keys) to `p`.
    pub fn set_dropout(&mut self, p: f64) {
        self.family_mut().set_dropout(p)
    }

    /// Takes the ids of the special tokens from `tokenizer` (see [`FamilyConfig::set_special_tokens`]).
    pub fn set_special_tokens(&mut self, tokenizer: &crate::tokenizer::Tokenizer) {
        self.family_mut().set_special_tokens(tokenizer)
    }

    /// Sets the vocabulary size (to a tokenizer's).
    pub fn set_vocab_size(&mut self, n: usize) {
        self.family_mut().set_vocab_size(n)
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

/// The forward of a decoder trained causally: logits and the shifted loss (GPT-2, LLaMA).
pub(crate) fn causal_forward(model: &dyn CausalLm, inputs: ModelInputs) -> Result<ModelOutput> {
    let logits = model.causal_logits(inputs.input_ids, inputs.attention_mask);
    let loss = inputs.labels.map(|l| causal_lm_loss(logits.clone(), l));
    Ok(ModelOutput { logits, loss })
}
