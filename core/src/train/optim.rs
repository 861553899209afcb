//! The optimizer bundle pretraining and fine-tuning share ([`OptimizerConfig`]): the learning-rate
//! schedule, AdamW (burn's, decoupled weight decay) with decay on rank-2 parameters only (matrices
//! and embeddings; never biases or norm scales, as nanoGPT and the HF Trainer do), and clipping by
//! the *global* gradient norm (burn clips per tensor).

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use super::TrainConfig;
use super::schedule::Schedule;
use crate::hf::params::param_ids_of_rank;

/// Everything that decides how gradients move the weights, built from one config: a pretraining
/// run's ([`TrainConfig::optimizer`]) or a fine-tuning run's.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// The learning rate at each step: warmup, then decay.
    pub schedule: Schedule,
    /// AdamW's decoupled weight decay, on rank-2 parameters only.
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    pub grad_clip: f64,
}

impl Default for OptimizerConfig {
    /// A pretraining run's defaults (`TrainConfig::default()`).
    fn default() -> Self {
        TrainConfig::default().optimizer()
    }
}

impl OptimizerConfig {
    /// AdamW over `model` with its two decay groups.
    pub fn adamw<M: Module>(&self, model: &M) -> ModuleOptimizer {
        adamw(self, model)
    }

    /// Clips `grads` to [`OptimizerConfig::grad_clip`] by their global norm (`sum_of_squares`:
    /// its square, on the device).
    pub fn clip<M: Module>(&self, model: &M, grads: &mut GradientsParams, sum_of_squares: &Tensor<1>) {
        clip_grads(model, grads, sum_of_squares, self.grad_clip)
    }
}

fn adamw<M: Module>(config: &OptimizerConfig, model: &M) -> ModuleOptimizer {
    let base = base(config);
    let no_decay = ParamGroup::from_ids(param_ids_of_rank(model, 1));
    base.clone().with_weight_decay(config.weight_decay as f32).init().with_group(
        no_decay,
        base.with_weight_decay(0.0).build(),
        None,
    )
}

fn base(config: &OptimizerConfig) -> AdamWConfig {
    AdamWConfig::new().with_beta_1(config.beta1 as f32).with_beta_2(config.beta2 as f32).with_epsilon(config.eps as f32)
}

/// `optim` without the state of the parameters `drop` picks (ZeRO stage 1: another rank's share).
/// burn drops a parameter's state when a group is added over it; the groups re-added here carry
/// the same settings, so the parameters stay optimised as before if they get gradients again.
pub fn without_state_for<M: Module>(
    optim: ModuleOptimizer,
    config: &OptimizerConfig,
    model: &M,
    drop: impl Fn(ParamId) -> bool,
) -> ModuleOptimizer {
    let pick =
        |rank: usize| ParamGroup::from_ids(param_ids_of_rank(model, rank).into_iter().filter(|&id| drop(id)).collect());
    optim.with_group(pick(2), base(config).with_weight_decay(config.weight_decay as f32).build(), None).with_group(
        pick(1),
        base(config).with_weight_decay(0.0).build(),
        None,
    )
}

/// `Σ‖g‖²` over every parameter's gradient, on the device (`[1]`, f32; `None` without
/// gradients): the global norm's square, read back only when a step's numbers are (see
/// `Trainer::read_stats`).
pub fn sum_of_squares<M: Module>(model: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    let mut v = SumSquares { grads, total: None };
    model.visit(&mut v);
    v.total
}

/// Clipping by the global norm, on the device: every gradient scaled by
/// `min(1, max_norm / (norm + 1e-6))`, where `norm = sqrt(sum_of_squares)` (see [`sum_of_squares`];
/// `max_norm` 0 turns clipping off). Below the threshold the factor is exactly 1, which leaves
/// every gradient's bits as they were; nothing is read back to decide.
fn clip_grads<M: Module>(model: &M, grads: &mut GradientsParams, sum_of_squares: &Tensor<1>, max_norm: f64) {
    if max_norm <= 0.0 {
        return;
    }
    let factor = (sum_of_squares.clone().sqrt() + 1e-6).recip().mul_scalar(max_norm).clamp_max(1.0);
    scale_grads(model, grads, &factor);
}

/// Multiplies every gradient by `factor` (`[1]`, on the device).
fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: &Tensor<1>) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: &'a Tensor<1>,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                let factor = self.factor.clone().reshape([1; D]);
                self.grads.register(param.id, g * factor);
            }
        }
    }
    model.visit(&mut Scale { grads, factor });
}
