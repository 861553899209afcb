//! The optimizer: AdamW (burn's, decoupled weight decay) with decay on rank-2 parameters only
//! (matrices and embeddings; never biases or norm scales, as nanoGPT and the HF Trainer do), and
//! clipping by the *global* gradient norm (burn clips per tensor).

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use super::TrainConfig;
use crate::error::Result;
use crate::hf::params::param_ids_of_rank;
use crate::readback;

pub fn adamw<M: Module>(config: &TrainConfig, model: &M) -> ModuleOptimizer {
    let base = AdamWConfig::new()
        .with_beta_1(config.beta1 as f32)
        .with_beta_2(config.beta2 as f32)
        .with_epsilon(config.eps as f32);
    let no_decay = ParamGroup::from_ids(param_ids_of_rank(model, 1));
    base.clone().with_weight_decay(config.weight_decay as f32).init().with_group(
        no_decay,
        base.with_weight_decay(0.0).build(),
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

/// Multiplies every gradient by `factor`.
pub fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: f64) {
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
