//! The optimizer: AdamW (burn's, decoupled weight decay) with decay on rank-2 parameters only
//! (matrices and embeddings; never biases or norm scales, as nanoGPT and the HF Trainer do), and
//! clipping by the *global* gradient norm (burn clips per tensor).

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use super::TrainConfig;
use crate::error::Result;
use crate::hf::params::param_ids_of_rank;
use crate::readback;

pub fn adamw<M: Module>(config: &TrainConfig, model: &M) -> ModuleOptimizer {
    let base = base(config);
    let no_decay = ParamGroup::from_ids(param_ids_of_rank(model, 1));
    base.clone().with_weight_decay(config.weight_decay as f32).init().with_group(
        no_decay,
        base.with_weight_decay(0.0).build(),
        None,
    )
}

fn base(config: &TrainConfig) -> AdamWConfig {
    AdamWConfig::new().with_beta_1(config.beta1 as f32).with_beta_2(config.beta2 as f32).with_epsilon(config.eps as f32)
}

/// `optim` without the state of the parameters `drop` picks (ZeRO stage 1: another rank's share).
/// burn drops a parameter's state when a group is added over it; the groups re-added here carry
/// the same settings, so the parameters stay optimised as before if they get gradients again.
pub fn without_state_for<M: Module>(
    optim: ModuleOptimizer,
    config: &TrainConfig,
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

/// `sqrt(Σ‖g‖²)` over every parameter's gradient (one read from the device, awaited).
pub async fn global_norm<M: Module>(model: &M, grads: &GradientsParams) -> Result<f64> {
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
    match v.total {
        Some(t) => Ok((readback::scalar::<1, f32>(t).await? as f64).sqrt()),
        None => Ok(0.0),
    }
}

/// Clipping by the global norm: every gradient scaled by `max_norm / norm` when `norm` (from
/// [`global_norm`]) exceeds `max_norm` (0 turns clipping off).
pub fn clip_grads<M: Module>(model: &M, grads: &mut GradientsParams, norm: f64, max_norm: f64) {
    if max_norm > 0.0 && norm > max_norm {
        scale_grads(model, grads, max_norm / (norm + 1e-6));
    }
}

/// Multiplies every gradient by `factor`.
fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: f64) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g * self.factor);
            }
        }
    }
    model.visit(&mut Scale { grads, factor });
}
