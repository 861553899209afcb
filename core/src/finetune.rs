//! Downstream fine-tuning: sequence classification on a pretrained encoder (HF's
//! `BertForSequenceClassification`: the pooled [CLS] state) or decoder
//! (`GPT2ForSequenceClassification`: the last real token), one optimizer step at a time, and the
//! fine-tuned model in HF format (`id2label`/`label2id` in config.json).

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};

use crate::error::{Error, Result};
use crate::hf::params::{trainable, with_stable_ids};
use crate::hf::weights::save_weights;
use crate::models::bert::BertForSequenceClassification;
use crate::models::gpt2::Gpt2ForSequenceClassification;
use crate::models::{Model, ModelConfig};
use crate::nn::cross_entropy_with_ignore;
use crate::objectives::batch::int_tensor;
use crate::readback::block_on;
use crate::tokenizer::Tokenizer;
use crate::train::TrainConfig;
use crate::train::optim::{adamw, clip_grads, global_norm};
use crate::train::schedule::{Decay, Schedule};

/// One labelled example: a text, or a pair (MNLI's premise and hypothesis), and its class index.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledText {
    pub text: String,
    pub pair: Option<String>,
    pub label: usize,
}

/// An example as token ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// BERT's segment ids (0 for the first text, 1 for the pair).
    pub type_ids: Vec<u32>,
    pub label: usize,
}

/// How a family lays out its input: BERT `[CLS] a [SEP] b [SEP]`, GPT-2 `a <eos> b` (read at the
/// last token).
#[derive(Clone, Debug)]
pub struct InputFormat {
    cls: Option<u32>,
    sep: u32,
    pub pad: u32,
    pub max_len: usize,
}

impl InputFormat {
    pub fn new(config: &ModelConfig, tokenizer: &Tokenizer, max_len: usize) -> Result<Self> {
        let sep = tokenizer
            .eos_id()
            .ok_or_else(|| Error::Config("the tokenizer has no end-of-text / [SEP] token to join text pairs".into()))?;
        let max_len = config.max_positions().map_or(max_len, |m| max_len.min(m));
        Ok(match config {
            ModelConfig::Bert(_) => Self {
                cls: Some(tokenizer.cls_id().unwrap_or(sep)),
                sep,
                pad: tokenizer.pad_id().unwrap_or(0),
                max_len,
            },
            ModelConfig::Gpt2(_) => Self { cls: None, sep, pad: sep, max_len },
            ModelConfig::T5(_) => {
                return Err(Error::Config(
                    "sequence classification fine-tunes a BERT (encoder) or GPT-2 (decoder); for T5, train text-to-text with the label as the target".into(),
                ));
            }
        })
    }

    /// Truncates the longer of the two texts first (HF's `longest_first`) to fit `max_len`.
    pub fn encode(&self, tokenizer: &Tokenizer, example: &LabeledText) -> Result<Encoded> {
        let mut a = tokenizer.encode(&example.text)?;
        let mut b = match &example.pair {
            Some(p) => Some(tokenizer.encode(p)?),
            None => None,
        };
        let specials = match (self.cls.is_some(), b.is_some()) {
            (true, true) => 3,
            (true, false) => 2,
            (false, true) => 1,
            (false, false) => 0,
        };
        let room = self.max_len.saturating_sub(specials).max(1);
        while a.len() + b.as_ref().map_or(0, Vec::len) > room {
            match &mut b {
                Some(bb) if bb.len() > a.len() => bb.pop(),
                _ => a.pop(),
            };
        }
        let mut ids: Vec<u32> = self.cls.into_iter().chain(a).collect();
        if self.cls.is_some() {
            ids.push(self.sep);
        }
        let mut type_ids = vec![0; ids.len()];
        if let Some(b) = b {
            if self.cls.is_none() {
                ids.push(self.sep);
                type_ids.push(0);
            }
            let n = b.len() + self.cls.is_some() as usize;
            ids.extend(b);
            if self.cls.is_some() {
                ids.push(self.sep);
            }
            type_ids.extend(std::iter::repeat_n(1, n));
        }
        if ids.is_empty() {
            ids.push(self.sep);
            type_ids.push(0);
        }
        Ok(Encoded { ids, type_ids, label: example.label })
    }
}

/// `[b, t]` ids, attention mask and segment ids (right padding), and `[b]` labels.
pub struct ClassBatch {
    pub input_ids: Tensor<2, Int>,
    pub attention_mask: Tensor<2, Int>,
    pub token_type_ids: Tensor<2, Int>,
    pub labels: Tensor<1, Int>,
}

impl ClassBatch {
    pub fn new(examples: &[&Encoded], pad: u32, device: &Device) -> Self {
        let t = examples.iter().map(|e| e.ids.len()).max().unwrap_or(1);
        let row = |v: &[u32], fill: u32| (0..t).map(|i| v.get(i).copied().unwrap_or(fill) as i64).collect::<Vec<_>>();
        let ids: Vec<Vec<i64>> = examples.iter().map(|e| row(&e.ids, pad)).collect();
        let types: Vec<Vec<i64>> = examples.iter().map(|e| row(&e.type_ids, 0)).collect();
        let mask: Vec<Vec<i64>> = examples.iter().map(|e| (0..t).map(|i| (i < e.ids.len()) as i64).collect()).collect();
        let labels: Vec<i64> = examples.iter().map(|e| e.label as i64).collect();
        Self {
            input_ids: int_tensor(&ids, device),
            attention_mask: int_tensor(&mask, device),
            token_type_ids: int_tensor(&types, device),
            labels: Tensor::from_data(burn::tensor::TensorData::new(labels, [examples.len()]), device),
        }
    }
}

/// A model with a classification head.
pub trait Classifier: Module + Clone + Send + 'static {
    /// Class logits `[b, num_labels]`.
    fn logits(&self, batch: &ClassBatch) -> Tensor<2>;
    /// HF's architecture name.
    fn architecture(&self) -> &'static str;
}

impl Classifier for BertForSequenceClassification {
    fn logits(&self, batch: &ClassBatch) -> Tensor<2> {
        self.forward(batch.input_ids.clone(), Some(batch.attention_mask.clone()), Some(batch.token_type_ids.clone()))
    }
    fn architecture(&self) -> &'static str {
        "BertForSequenceClassification"
    }
}

impl Classifier for Gpt2ForSequenceClassification {
    fn logits(&self, batch: &ClassBatch) -> Tensor<2> {
        self.forward(batch.input_ids.clone(), Some(batch.attention_mask.clone()))
    }
    fn architecture(&self) -> &'static str {
        "GPT2ForSequenceClassification"
    }
}

/// A pretrained model with a new head, for either family.
pub enum AnyClassifier {
    Bert(BertForSequenceClassification),
    Gpt2(Gpt2ForSequenceClassification),
}

impl AnyClassifier {
    /// Puts a `num_labels`-way head on a pretrained model (the head is drawn from the device's
    /// generator: seed it first for a reproducible run).
    pub fn from_pretrained(model: Model, config: &ModelConfig, num_labels: usize, device: &Device) -> Result<Self> {
        match (model, config) {
            (Model::Bert(m), ModelConfig::Bert(c)) => {
                Ok(Self::Bert(BertForSequenceClassification::new(m.bert, c, num_labels, device)))
            }
            (Model::Gpt2(m), ModelConfig::Gpt2(c)) => {
                Ok(Self::Gpt2(Gpt2ForSequenceClassification::new(m.transformer, c, num_labels, device)))
            }
            (_, c) => Err(Error::Config(format!(
                "sequence classification fine-tunes a bert or gpt2 model; this one is a {}",
                c.model_type()
            ))),
        }
    }
}

/// The config.json of a fine-tuned classifier: the base config with HF's classification keys.
pub fn classifier_config_json(base: &ModelConfig, architecture: &str, labels: &[String], pad: u32) -> String {
    let mut value: serde_json::Value = serde_json::from_str(&base.to_json()).expect("config is JSON");
    let map = value.as_object_mut().expect("an object");
    map.insert("architectures".into(), serde_json::json!([architecture]));
    let id2label: serde_json::Map<String, serde_json::Value> =
        labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone().into())).collect();
    let label2id: serde_json::Map<String, serde_json::Value> =
        labels.iter().enumerate().map(|(i, l)| (l.clone(), i.into())).collect();
    map.insert("id2label".into(), id2label.into());
    map.insert("label2id".into(), label2id.into());
    map.insert("problem_type".into(), "single_label_classification".into());
    if matches!(base, ModelConfig::Gpt2(_)) {
        // GPT2ForSequenceClassification finds each row's last token by its pad id.
        map.insert("pad_token_id".into(), pad.into());
    }
    serde_json::to_string_pretty(&value).expect("config serialises")
}

/// Optimisation settings of a fine-tuning run.
#[derive(Clone, Debug)]
pub struct FinetuneConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub grad_clip: f64,
    pub seed: u64,
}

/// The fine-tuning loop's state: the model (on the autodiff device), AdamW, a linear schedule.
pub struct Finetuner<C: Classifier> {
    pub model: C,
    optim: ModuleOptimizer,
    schedule: Schedule,
    config: FinetuneConfig,
    pub step: u64,
    device: Device,
}

impl<C: Classifier> Finetuner<C> {
    pub fn new(model: C, config: FinetuneConfig, device: &Device) -> Self {
        let device = device.clone().autodiff();
        let model = trainable(with_stable_ids(model.to_device(&device)));
        let train = TrainConfig { weight_decay: config.weight_decay, ..Default::default() };
        let optim = adamw(&train, &model);
        let schedule = Schedule {
            lr: config.lr,
            min_lr: 0.0,
            warmup_steps: config.warmup_steps,
            total_steps: config.total_steps,
            decay: Decay::Linear,
        };
        Self { model, optim, schedule, config, step: 0, device }
    }

    /// One optimizer step on `examples`; the mean cross-entropy.
    pub fn step(&mut self, examples: &[&Encoded], pad: u32) -> Result<f64> {
        self.device.seed(self.config.seed.wrapping_add(self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let batch = ClassBatch::new(examples, pad, &self.device);
        let logits = self.model.logits(&batch);
        let loss = cross_entropy_with_ignore(logits, batch.labels);
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(Error::NonFinite { step: self.step + 1, what: format!("loss {value}") });
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let norm = block_on(global_norm(&self.model, &grads))?;
        clip_grads(&self.model, &mut grads, norm, self.config.grad_clip);
        let lr = self.schedule.lr(self.step);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.step += 1;
        Ok(value)
    }

    /// The predicted class of each example (dropout off), `batch_size` at a time.
    pub fn predict(&self, examples: &[Encoded], pad: u32, batch_size: usize) -> Result<Vec<usize>> {
        predict(&self.model.valid(), examples, pad, batch_size, &self.device.clone().inner())
    }
}

/// The predicted class of each example.
pub fn predict<C: Classifier>(
    model: &C,
    examples: &[Encoded],
    pad: u32,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let refs: Vec<&Encoded> = chunk.iter().collect();
        let batch = ClassBatch::new(&refs, pad, device);
        let pred = model.logits(&batch).argmax(1).into_data().convert::<i64>();
        let pred = pred.try_to_vec::<i64>().map_err(|e| Error::Input(format!("reading predictions: {e:?}")))?;
        out.extend(pred.into_iter().map(|p| p as usize));
    }
    Ok(out)
}

/// The bytes of `model.safetensors` (HF names: `bert.…`, `classifier.…` / `transformer.…`, `score.…`).
pub fn to_safetensors<C: Classifier>(model: &C) -> Result<Vec<u8>> {
    save_weights(model)
}
