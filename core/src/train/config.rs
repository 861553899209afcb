//! A training run's configuration: what a `run.toml` holds, every key overridable from the
//! command line. Unknown keys are errors (a typo must not silently train something else).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::optim::OptimizerConfig;
use super::schedule::{Decay, Schedule};
use crate::error::{Error, Result};
pub use crate::objectives::Objective;
use crate::objectives::collator::Noise;

/// Every key is documented: `hearth train --keys` (and `--help`) lists them from this struct, with
/// their types and defaults (see [`TrainConfig::keys`]), so the list cannot go stale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// A model size to start from: gpt-tiny, bert-tiny, t5-tiny, gpt2-124m, bert-base, t5-base,
    /// gpt-bench-tiny, gpt-10m.
    pub preset: String,
    /// Overrides of the preset's HF config keys (`[model]` table: `n_layer = 6`, …).
    pub model: serde_json::Map<String, serde_json::Value>,
    /// Start from this HF checkpoint folder instead of random weights.
    pub init_from: Option<String>,
    /// `None`: the family's own (GPT causal, BERT masked, T5 span); a T5 may also take `denoise`
    /// (span corruption's input, the whole text as the target).
    pub objective: Option<Objective>,

    /// Training text (.txt, .jsonl with a "text" field) or a folder made by `hearth prepare`.
    pub data: Option<String>,
    /// Held-out text; without it the last `val_fraction` of `data` is held out.
    pub val_data: Option<String>,
    /// The share of `data`'s documents held out for validation when `val_data` is not given.
    pub val_fraction: f64,
    /// A tokenizer.json; without it one is trained on `data` with `vocab_size` entries.
    pub tokenizer: Option<String>,
    /// The vocabulary size of the tokenizer trained on `data` when `tokenizer` is not given.
    pub tokenizer_vocab_size: usize,
    /// Where checkpoints, metrics and the loss curve go.
    pub out_dir: String,
    /// `auto`, `wgpu` or `flex`. `auto` takes wgpu unless its only adapter is a software renderer.
    pub backend: String,

    /// Sequences per micro-batch, over all data-parallel ranks together (each of W ranks runs
    /// batch_size / W of them), so a run file means the same training on any number of processes.
    pub batch_size: usize,
    /// Tokens per sequence.
    pub block_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// When set, `grad_accum` is chosen to reach at least this many tokens per optimizer step.
    pub tokens_per_step: Option<usize>,
    /// Optimizer steps in the run (the schedule's length).
    pub max_steps: u64,
    /// Peak learning rate, reached after the warmup.
    pub lr: f64,
    /// Learning rate at the end of the decay.
    pub min_lr: f64,
    /// Steps of linear warmup from 0 to `lr`.
    pub warmup_steps: u64,
    /// The decay from `lr` to `min_lr` after the warmup: cosine, linear or constant.
    pub decay: Decay,
    /// Decoupled weight decay on matrices and embeddings (never on biases or norms).
    pub weight_decay: f64,
    /// AdamW's first-moment decay.
    pub beta1: f64,
    /// AdamW's second-moment decay.
    pub beta2: f64,
    /// AdamW's epsilon.
    pub eps: f64,
    /// Clip the global gradient norm to this (0: off).
    pub grad_clip: f64,
    /// Overrides every dropout probability of the model config.
    pub dropout: Option<f64>,
    /// Run attention through the fused WGSL kernel on wgpu (memory linear in the sequence length);
    /// `false`: burn's composition everywhere, for comparison. No effect on other backends.
    pub fused_attention: bool,
    /// Compute dtype: `f32`, or mixed precision with f32 master weights and optimizer state,
    /// `bf16` or `f16` (with a dynamic loss scale). Falls back to f32, saying so, where the
    /// device lacks the dtype.
    pub precision: super::Precision,
    /// f16's initial loss scale, doubled after `loss_scale_growth_interval` steps without an
    /// overflow and halved (skipping the step) on one.
    pub loss_scale: f64,
    /// Clean f16 steps before the loss scale doubles.
    pub loss_scale_growth_interval: u64,
    /// Recompute each transformer block's activations during backward (burn-autodiff's balanced
    /// checkpointing per block): less memory, more compute.
    pub gradient_checkpointing: bool,
    /// The memory one process may use, in GiB: a run whose estimated peak exceeds it is refused
    /// before it starts. Unset: the machine's RAM (or its container's limit) shared by the
    /// processes on it, on flex; on wgpu only the adapter's largest buffer is checked.
    pub max_memory_gib: Option<f64>,
    /// Data parallelism (several processes, see `hearth launch`): 0 replicates the optimizer state
    /// on every rank; 1 shards it (ZeRO stage 1: each rank keeps and updates its share of the
    /// parameters, then they are gathered).
    pub zero_stage: u8,
    /// Seeds the weights, the data order, masking and dropout: the same seed, the same run.
    pub seed: u64,
    /// Evaluate the validation loss every this many steps (0: after the last step only).
    pub eval_every: u64,
    /// Validation batches per evaluation.
    pub eval_batches: usize,
    /// Write a checkpoint every this many steps (0: after the last step only).
    pub checkpoint_every: u64,
    /// Checkpoints kept in `out_dir`; older ones are removed once a new one is complete.
    pub keep_last: usize,
    /// Write a `metrics.jsonl` line every this many steps.
    pub log_every: u64,
    /// Zero-shot tasks scored during training (JSONL files or folders, see `hearth eval zero-shot`;
    /// `bundled`: four tasks from a held-out novel); `[]` for none.
    pub zero_shot: Vec<String>,
    /// Score them every this many steps (0: after the last step only).
    pub zero_shot_every: u64,
    /// Examples per task (0: all).
    pub zero_shot_limit: usize,

    /// Masked LM: the share of tokens chosen as targets (80% become [MASK], 10% random, 10% kept).
    pub mask_rate: f64,
    /// Masked LM: mask every piece of a chosen word together.
    pub whole_word_masking: bool,
    /// Span corruption: the share of tokens replaced by sentinel spans.
    pub noise_density: f64,
    /// Span corruption: the mean length of a corrupted span.
    pub mean_span_length: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            preset: "gpt-tiny".into(),
            model: Default::default(),
            init_from: None,
            objective: None,
            data: None,
            val_data: None,
            val_fraction: 0.05,
            tokenizer: None,
            tokenizer_vocab_size: 1024,
            out_dir: "runs/default".into(),
            backend: "auto".into(),
            batch_size: 16,
            block_size: 128,
            grad_accum: 1,
            tokens_per_step: None,
            max_steps: 600,
            lr: 3e-3,
            min_lr: 3e-4,
            warmup_steps: 40,
            decay: Decay::Cosine,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            grad_clip: 1.0,
            dropout: Some(0.0),
            fused_attention: true,
            precision: super::Precision::F32,
            loss_scale: 65536.0,
            loss_scale_growth_interval: 2000,
            gradient_checkpointing: false,
            max_memory_gib: None,
            zero_stage: 0,
            seed: 1337,
            eval_every: 100,
            eval_batches: 8,
            checkpoint_every: 200,
            keep_last: 2,
            log_every: 10,
            zero_shot: vec!["bundled".into()],
            zero_shot_every: 0,
            zero_shot_limit: 100,
            mask_rate: 0.15,
            whole_word_masking: false,
            noise_density: 0.15,
            mean_span_length: 3.0,
        }
    }
}

impl TrainConfig {
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| Error::Config(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }

    /// Micro-batches per optimizer step.
    pub fn accumulation(&self) -> usize {
        match self.tokens_per_step {
            Some(t) => t.div_ceil(self.batch_size * self.block_size).max(1),
            None => self.grad_accum.max(1),
        }
    }

    /// The objectives' rates this run sets.
    pub fn noise(&self) -> Noise {
        Noise {
            mask_rate: self.mask_rate,
            whole_word_masking: self.whole_word_masking,
            noise_density: self.noise_density,
            mean_span_length: self.mean_span_length,
        }
    }

    /// The run's optimizer bundle: schedule, AdamW, clipping.
    pub fn optimizer(&self) -> OptimizerConfig {
        OptimizerConfig {
            schedule: self.schedule(),
            weight_decay: self.weight_decay,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            grad_clip: self.grad_clip,
        }
    }

    pub fn schedule(&self) -> Schedule {
        Schedule {
            lr: self.lr,
            min_lr: self.min_lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.max_steps,
            decay: self.decay,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_string()));
        if self.batch_size == 0 || self.block_size < 4 {
            return bad("batch_size must be ≥ 1 and block_size ≥ 4");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) || self.min_lr < 0.0 || self.min_lr > self.lr {
            return bad("lr must be positive and min_lr between 0 and lr");
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("beta1 and beta2 must lie in [0, 1)");
        }
        if self.dropout.is_some_and(|p| !(0.0..1.0).contains(&p)) {
            return bad("dropout must lie in [0, 1)");
        }
        if !(0.0..0.5).contains(&self.val_fraction) {
            return bad("val_fraction must lie in [0, 0.5)");
        }
        if !(0.0..1.0).contains(&self.mask_rate) || !(0.0..1.0).contains(&self.noise_density) {
            return bad("mask_rate and noise_density must lie in [0, 1)");
        }
        if !(self.loss_scale >= 1.0 && self.loss_scale.is_finite()) {
            return bad("loss_scale must be finite and ≥ 1");
        }
        if !(self.mean_span_length >= 1.0 && self.mean_span_length.is_finite()) {
            return bad("mean_span_length must be at least 1 (a span holds one token or more)");
        }
        if self.zero_stage > 1 {
            return bad(
                "zero_stage must be 0 (replicated optimizer state) or 1 (sharded); stages 2 and 3 do not exist yet",
            );
        }
        Ok(())
    }
}

/// The keys a resumed run may set differently from its checkpoint: how long and how fast it goes
/// on (steps, the schedule, the optimizer's settings), how often it reports, where it runs and in
/// what precision, and where its files are. Every other key defines the model, the data split or the
/// objective and must match
/// (`batch_size`, `grad_accum` and `tokens_per_step` may change together when the tokens per
/// optimizer step stay the same).
pub const MAY_CHANGE_ON_RESUME: &[&str] = &[
    "max_steps",
    "lr",
    "min_lr",
    "warmup_steps",
    "decay",
    "weight_decay",
    "beta1",
    "beta2",
    "eps",
    "grad_clip",
    "dropout",
    "fused_attention",
    "precision",
    "loss_scale",
    "loss_scale_growth_interval",
    "gradient_checkpointing",
    "max_memory_gib",
    "zero_stage",
    "eval_every",
    "eval_batches",
    "checkpoint_every",
    "keep_last",
    "log_every",
    "zero_shot",
    "zero_shot_every",
    "zero_shot_limit",
    "backend",
    "out_dir",
    "init_from",
    // Paths: the files may have moved. The data is read from the path given now (its position
    // continues from the checkpoint); the tokenizer is always the checkpoint's own.
    "data",
    "val_data",
    "tokenizer",
];

impl TrainConfig {
    /// What this run sets differently from `saved`, the config of the checkpoint it resumes:
    /// refused, naming the first such key, when it would change the model, the data or the
    /// objective; otherwise the changes (`max_steps 600 → 1200`), for the run's header. Keys that
    /// say where the run is (`backend`, `out_dir`) are not reported.
    pub fn resume_changes(&self, saved: &TrainConfig) -> Result<Vec<String>> {
        let (now, then) =
            (serde_json::to_value(self).expect("serialises"), serde_json::to_value(saved).expect("serialises"));
        let (now, then) = (now.as_object().expect("a table"), then.as_object().expect("a table"));
        let show = |v: Option<&serde_json::Value>| match v {
            None | Some(serde_json::Value::Null) => "unset".to_string(),
            Some(v) => v.to_string(),
        };
        let batch = ["batch_size", "grad_accum", "tokens_per_step"];
        let same_tokens = self.batch_size * self.accumulation() == saved.batch_size * saved.accumulation();
        let mut changes = Vec::new();
        for (key, value) in now {
            let old = then.get(key);
            if old == Some(value) {
                continue;
            }
            let (old, new) = (show(old), show(Some(value)));
            if MAY_CHANGE_ON_RESUME.contains(&key.as_str()) || (batch.contains(&key.as_str()) && same_tokens) {
                if !matches!(key.as_str(), "backend" | "out_dir") {
                    changes.push(format!("{key} {old} → {new}"));
                }
                continue;
            }
            let why = if batch.contains(&key.as_str()) {
                format!(
                    "the tokens per optimizer step would change ({} → {}); keep batch_size × grad_accum",
                    saved.batch_size * saved.accumulation() * saved.block_size,
                    self.batch_size * self.accumulation() * self.block_size
                )
            } else {
                "a resumed run keeps the model, the data split and the objective it was started with; resume with the run's own settings (`--config OUT_DIR/run.toml --resume`), or start a new run from the checkpoint with `--init-from`".to_string()
            };
            return Err(Error::Refused(format!("--resume: {key} is {new} here but {old} in the checkpoint; {why}")));
        }
        Ok(changes)
    }
}

/// toml's errors span several lines (a source excerpt); keep the message, drop the excerpt.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> =
        message.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains('|') && !l.starts_with('^')).collect();
    format!("run config: {}", lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = TrainConfig::from_toml("lr = 1e-3\nlearning_rat = 2").unwrap_err().to_string();
        assert!(err.contains("unknown field `learning_rat`"), "{err}");
        assert!(!err.contains('\n'));
        let err = TrainConfig::from_toml("beta1 = 1.5").unwrap_err().to_string();
        assert!(err.contains("beta1"), "{err}");
        let c = TrainConfig::from_toml("preset = \"bert-tiny\"\n[model]\nnum_hidden_layers = 3").unwrap();
        assert_eq!(c.preset, "bert-tiny");
        assert_eq!(c.model["num_hidden_layers"], 3);
        let again = TrainConfig::from_toml(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn accumulation_reaches_tokens_per_step() {
        let c = TrainConfig { batch_size: 8, block_size: 64, tokens_per_step: Some(2000), ..Default::default() };
        assert_eq!(c.accumulation(), 4);
    }
}
