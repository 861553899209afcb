//! A head on a pretrained encoder (HF's `BertForSequenceClassification`: the pooled [CLS] state)
//! or decoder (`GPT2ForSequenceClassification`, `LlamaForSequenceClassification`: the last real
//! token), the registry's `SequenceClassifier`: classes (cross-entropy), a score (STS-B: one
//! output, mean squared error, HF's `problem_type: regression`) or one score per choice (COPA: a
//! softmax over each example's choices, HF's `BertForMultipleChoice`). The fine-tuned model is
//! saved in HF format (`id2label`/`label2id` in config.json).

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::models::{ModelConfig, Objective, SequenceClassifier};
use crate::nn::cross_entropy_with_ignore;
use crate::objectives::batch::int_tensor;
use crate::readback::{block_on, f32s};
use crate::tokenizer::Tokenizer;

/// What an example is labelled with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Label {
    /// A class index; for a [`Head::Choice`] group, the index of the right choice.
    Class(usize),
    /// A regression target.
    Score(f32),
}

impl Label {
    pub fn class(self) -> usize {
        match self {
            Label::Class(c) => c,
            Label::Score(_) => 0,
        }
    }
    pub fn score(self) -> f32 {
        match self {
            Label::Class(c) => c as f32,
            Label::Score(s) => s,
        }
    }
}

/// What the head predicts, and so its outputs and its loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Head {
    /// `n` classes: `[b, n]` logits, cross-entropy.
    Classes(usize),
    /// One score: `[b, 1]`, mean squared error.
    Regression,
    /// Examples come in groups of `n` consecutive choices, each scored `[1]`; a softmax over the
    /// group, cross-entropy against the group's label.
    Choice(usize),
}

impl Head {
    /// Outputs per example.
    pub fn num_outputs(self) -> usize {
        match self {
            Head::Classes(n) => n,
            Head::Regression | Head::Choice(_) => 1,
        }
    }
}

/// One labelled example: a text, or a pair (MNLI's premise and hypothesis), and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledText {
    pub text: String,
    pub pair: Option<String>,
    pub label: Label,
}

/// An example as token ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// BERT's segment ids (0 for the first text, 1 for the pair).
    pub type_ids: Vec<u32>,
    pub label: Label,
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
        // An encoder (masked LM) reads its [CLS]; a decoder (causal LM) its last token.
        Ok(match config.family().objectives()[0] {
            Objective::Masked => Self {
                cls: Some(tokenizer.cls_id().unwrap_or(sep)),
                sep,
                pad: tokenizer.pad_id().unwrap_or(0),
                max_len,
            },
            Objective::Causal => Self { cls: None, sep, pad: sep, max_len },
            Objective::Span | Objective::Denoise => {
                return Err(Error::Config(format!(
                    "sequence classification fine-tunes an encoder or a decoder; for {}, train text-to-text with the label as the target",
                    config.model_type()
                )));
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

/// `[b, t]` ids, attention mask and segment ids (right padding).
pub struct ClassBatch {
    pub input_ids: Tensor<2, Int>,
    pub attention_mask: Tensor<2, Int>,
    pub token_type_ids: Tensor<2, Int>,
}

impl ClassBatch {
    /// The head's class logits on this batch, `[b, num_labels]`.
    pub fn logits(&self, model: &SequenceClassifier) -> Tensor<2> {
        model.classify(self.input_ids.clone(), self.attention_mask.clone(), self.token_type_ids.clone())
    }

    pub fn new(examples: &[&Encoded], pad: u32, device: &Device) -> Self {
        let t = examples.iter().map(|e| e.ids.len()).max().unwrap_or(1);
        let row = |v: &[u32], fill: u32| (0..t).map(|i| v.get(i).copied().unwrap_or(fill) as i64).collect::<Vec<_>>();
        let ids: Vec<Vec<i64>> = examples.iter().map(|e| row(&e.ids, pad)).collect();
        let types: Vec<Vec<i64>> = examples.iter().map(|e| row(&e.type_ids, 0)).collect();
        let mask: Vec<Vec<i64>> = examples.iter().map(|e| (0..t).map(|i| (i < e.ids.len()) as i64).collect()).collect();
        Self {
            input_ids: int_tensor(&ids, device),
            attention_mask: int_tensor(&mask, device),
            token_type_ids: int_tensor(&types, device),
        }
    }
}

/// The loss of `head` on `examples` (for [`Head::Choice`], whole groups of consecutive choices).
pub fn head_loss(
    model: &SequenceClassifier,
    head: Head,
    examples: &[&Encoded],
    pad: u32,
    device: &Device,
) -> Tensor<1> {
    let logits = ClassBatch::new(examples, pad, device).logits(model); // [b, outputs]
    let b = examples.len();
    match head {
        Head::Classes(_) => {
            let labels: Vec<i64> = examples.iter().map(|e| e.label.class() as i64).collect();
            cross_entropy_with_ignore(logits, Tensor::from_data(TensorData::new(labels, [b]), device))
        }
        Head::Regression => {
            let targets: Vec<f32> = examples.iter().map(|e| e.label.score()).collect();
            let diff = logits.reshape([b]) - Tensor::<1>::from_data(TensorData::new(targets, [b]), device);
            (diff.clone() * diff).mean()
        }
        Head::Choice(n) => {
            assert!(b % n == 0, "a choice batch holds whole groups of {n}");
            let labels: Vec<i64> = examples.chunks(n).map(|g| g[0].label.class() as i64).collect();
            let grouped = logits.reshape([b / n, n]); // [groups, n]
            cross_entropy_with_ignore(grouped, Tensor::from_data(TensorData::new(labels, [b / n]), device))
        }
    }
}

/// The head's outputs for each example (dropout off: pass `model.valid()`), `batch_size` at a
/// time: `[outputs]` per example (class logits, the score, or the choice's score).
pub fn scores(
    model: &SequenceClassifier,
    examples: &[&Encoded],
    pad: u32,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let logits = ClassBatch::new(chunk, pad, device).logits(model);
        let [_, k] = logits.dims();
        let flat = block_on(f32s(logits))?;
        out.extend(flat.chunks(k).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// The config.json of a fine-tuned classifier: the base config with HF's classification keys
/// (`labels` empty for a regression or choice head).
pub fn classifier_config_json(
    base: &ModelConfig,
    architecture: &str,
    head: Head,
    labels: &[String],
    pad: u32,
) -> String {
    let mut value: serde_json::Value = serde_json::from_str(&base.to_json()).expect("config is JSON");
    let map = value.as_object_mut().expect("an object");
    // An encoder's choice head is HF's `…ForMultipleChoice` (BERT's, on the pooled [CLS]).
    let architecture = match (head, base.family().objectives()[0]) {
        (Head::Choice(_), Objective::Masked) => architecture.replace("ForSequenceClassification", "ForMultipleChoice"),
        _ => architecture.to_string(),
    };
    map.insert("architectures".into(), serde_json::json!([architecture]));
    if head != Head::Regression && !matches!(head, Head::Choice(_)) {
        let id2label: serde_json::Map<String, serde_json::Value> =
            labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone().into())).collect();
        let label2id: serde_json::Map<String, serde_json::Value> =
            labels.iter().enumerate().map(|(i, l)| (l.clone(), i.into())).collect();
        map.insert("id2label".into(), id2label.into());
        map.insert("label2id".into(), label2id.into());
    }
    map.insert("num_labels".into(), head.num_outputs().into());
    // A choice head scores one choice at a time: not a classification problem for HF's loss.
    match head {
        Head::Regression => _ = map.insert("problem_type".into(), "regression".into()),
        Head::Classes(_) => _ = map.insert("problem_type".into(), "single_label_classification".into()),
        Head::Choice(_) => {}
    }
    if base.family().objectives()[0] == Objective::Causal {
        // A decoder's classifier (GPT2ForSequenceClassification, …) finds each row's last token by
        // its pad id.
        map.insert("pad_token_id".into(), pad.into());
    }
    serde_json::to_string_pretty(&value).expect("config serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small BERT with a head, three examples, and the head's outputs read back.
    fn setup(head: Head) -> (SequenceClassifier, Vec<Encoded>, Vec<Vec<f32>>, Device) {
        let device = Device::flex();
        let config = crate::models::presets::preset("bert-tiny", &Default::default()).unwrap();
        device.seed(3);
        let model =
            burn::module::Module::valid(&config.classifier(config.init(&device), head.num_outputs(), &device).unwrap());
        let ex = |ids: &[u32], label: Label| Encoded { ids: ids.to_vec(), type_ids: vec![0; ids.len()], label };
        let examples = match head {
            Head::Regression => vec![
                ex(&[2, 7, 9, 3], Label::Score(1.5)),
                ex(&[2, 8, 3], Label::Score(4.0)),
                ex(&[2, 5, 6, 7, 3], Label::Score(0.0)),
            ],
            _ => vec![
                ex(&[2, 7, 9, 3], Label::Class(1)),
                ex(&[2, 8, 3], Label::Class(1)),
                ex(&[2, 5, 6, 7, 3], Label::Class(0)),
                ex(&[2, 4, 3], Label::Class(0)),
            ],
        };
        let s = scores(&model, &examples.iter().collect::<Vec<_>>(), 0, 2, &device).unwrap();
        (model, examples, s, device)
    }

    fn loss(model: &SequenceClassifier, head: Head, examples: &[Encoded], device: &Device) -> f64 {
        let refs: Vec<&Encoded> = examples.iter().collect();
        block_on(crate::readback::scalar::<1, f32>(head_loss(model, head, &refs, 0, device))).unwrap() as f64
    }

    #[test]
    fn the_regression_head_is_the_mean_squared_error_of_its_score() {
        let (model, examples, s, device) = setup(Head::Regression);
        assert!(s.iter().all(|row| row.len() == 1));
        let want: f64 =
            s.iter().zip(&examples).map(|(p, e)| (p[0] as f64 - e.label.score() as f64).powi(2)).sum::<f64>() / 3.0;
        assert!((loss(&model, Head::Regression, &examples, &device) - want).abs() < 1e-4 * want.max(1.0), "{want}");
    }

    #[test]
    fn the_choice_head_is_a_softmax_over_each_group_of_choices() {
        let head = Head::Choice(2);
        let (model, examples, s, device) = setup(head);
        // Groups (0, 1) and (2, 3); the label of a group is the right choice's index.
        let ce = |a: f32, b: f32, right: usize| {
            let (a, b) = (a as f64, b as f64);
            let m = a.max(b);
            let lse = m + ((a - m).exp() + (b - m).exp()).ln();
            lse - if right == 0 { a } else { b }
        };
        let want = (ce(s[0][0], s[1][0], 1) + ce(s[2][0], s[3][0], 0)) / 2.0;
        assert!((loss(&model, head, &examples, &device) - want).abs() < 1e-5, "{want}");
        let config = crate::models::presets::preset("bert-tiny", &Default::default()).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&classifier_config_json(&config, "BertForSequenceClassification", head, &[], 0))
                .unwrap();
        assert_eq!(json["architectures"][0], "BertForMultipleChoice");
        assert!(
            json.get("id2label").is_none() && json.get("problem_type").is_none(),
            "transformers refuses one output with a classification problem_type"
        );
        let json: serde_json::Value = serde_json::from_str(&classifier_config_json(
            &config,
            "BertForSequenceClassification",
            Head::Regression,
            &[],
            0,
        ))
        .unwrap();
        assert_eq!((json["num_labels"].as_u64(), json["problem_type"].as_str()), (Some(1), Some("regression")));
    }
}
