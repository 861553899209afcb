//! What a trainer carries from step to step and hands out: the state a checkpoint saves beside the
//! weights and the optimizer, the checkpoint's bytes, and each step's numbers.

use serde::{Deserialize, Serialize};

use super::TrainConfig;
use super::data::Cursor;
use super::precision::LossScaler;
use crate::objectives::Rng;

/// What a checkpoint holds beyond the weights and the optimizer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps taken.
    pub step: u64,
    /// Tokens consumed (model positions of every sequence).
    pub tokens: u64,
    pub cursor: Cursor,
    /// The objectives' random source (masks, spans).
    pub rng: Rng,
    pub config: TrainConfig,
    /// f16's dynamic loss scale (absent for f32 and bf16).
    #[serde(default)]
    pub loss_scaler: Option<LossScaler>,
}

/// The bytes of a checkpoint: an HF model folder plus the optimizer and the trainer state.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config_json: String,
    pub model_safetensors: Vec<u8>,
    /// burn's optimizer record (burnpack): one, or one per rank under ZeRO stage 1.
    pub optimizer_shards: Vec<Vec<u8>>,
    pub state_json: String,
}

/// A step's numbers, as read back (see `Trainer::read_stats`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StepStats {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: u64,
    /// f16 only: the gradients overflowed, so the update was skipped and the loss scale halved.
    pub skipped: bool,
    /// The loss scale this step ran with (1 without one).
    pub loss_scale: f64,
}
