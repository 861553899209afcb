//! Downstream fine-tuning: a pretrained model, a task's loss, AdamW with linear warmup and decay,
//! one optimizer step at a time.
//!
//! - [`classify`]: a head on an encoder (HF's `BertForSequenceClassification`, the pooled [CLS]
//!   state) or a decoder (`GPT2ForSequenceClassification`, `LlamaForSequenceClassification`, the
//!   last real token): classes, a regression score (STS-B) or one score per choice (COPA);
//! - [`text2text`]: an encoder-decoder as T5's authors fine-tuned it, the task as a text prefix and
//!   the answer as target text, read back by greedy decoding.

pub mod classify;
pub mod text2text;

pub use classify::{
    ClassBatch, Encoded, Head, InputFormat, Label, LabeledText, classifier_config_json, head_loss, scores,
};
pub use text2text::{Seq2Seq, Text2TextFormat, greedy_decode, seq2seq_loss};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};
use crate::hf::params::{trainable, with_stable_ids};
use crate::readback::block_on;
use crate::train::optim::{OptimizerConfig, sum_of_squares};
use crate::train::schedule::{Decay, Schedule};

/// Optimisation settings of a fine-tuning run: the optimizer bundle pretraining uses, with a
/// linear schedule, and the seed of its dropout.
#[derive(Clone, Debug)]
pub struct FinetuneConfig {
    pub optimizer: OptimizerConfig,
    pub seed: u64,
}

impl FinetuneConfig {
    /// HF's fine-tuning setup: linear warmup over `warmup_steps` then linear decay to 0 at
    /// `total_steps`, AdamW with `weight_decay` (pretraining's betas and epsilon), clipping at
    /// `grad_clip`.
    pub fn linear(lr: f64, warmup_steps: u64, total_steps: u64, weight_decay: f64, grad_clip: f64, seed: u64) -> Self {
        let schedule = Schedule { lr, min_lr: 0.0, warmup_steps, total_steps, decay: Decay::Linear };
        Self { optimizer: OptimizerConfig { schedule, weight_decay, grad_clip, ..Default::default() }, seed }
    }
}

/// The fine-tuning loop's state: the model (on the autodiff device), AdamW, a linear schedule.
pub struct Finetuner<M: Module + Clone + Send + 'static> {
    pub model: M,
    optim: ModuleOptimizer,
    config: FinetuneConfig,
    pub step: u64,
    device: Device,
}

impl<M: Module + Clone + Send + 'static> Finetuner<M> {
    pub fn new(model: M, config: FinetuneConfig, device: &Device) -> Self {
        let device = device.clone().autodiff();
        let model = trainable(with_stable_ids(model.to_device(&device)));
        let optim = config.optimizer.adamw(&model);
        Self { model, optim, config, step: 0, device }
    }

    /// One optimizer step on the loss `loss_of` computes (dropout seeded per step); its value.
    pub fn step(&mut self, loss_of: impl FnOnce(&M, &Device) -> Tensor<1>) -> Result<f64> {
        self.device.seed(self.config.seed.wrapping_add(self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let loss = loss_of(&self.model, &self.device);
        let value = block_on(crate::readback::scalar::<1, f32>(loss.clone()))? as f64;
        if !value.is_finite() {
            return Err(Error::NonFinite { step: self.step + 1, what: format!("loss {value}") });
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &self.model);
        if let Some(sumsq) = sum_of_squares(&self.model, &grads) {
            self.config.optimizer.clip(&self.model, &mut grads, &sumsq);
        }
        let lr = self.config.optimizer.schedule.lr(self.step);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.step += 1;
        Ok(value)
    }

    /// The model for inference (dropout off) and the device it runs on.
    pub fn inference(&self) -> (M, Device) {
        (self.model.valid(), self.device.clone().inner())
    }
}
