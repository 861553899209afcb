//! Mixed precision: the forward and backward in f16 or bf16 on a half-precision copy of the
//! weights, the master weights and AdamW's moments in f32, and (for f16) a dynamic loss scale.
//!
//! burn 0.22 has dtypes at run time (`Tensor::cast`) but no autocast, no loss scaler and no master
//! weights, and pure f16 training of the tiny GPT diverges. So the trainer does what
//! `torch.autocast` + `torch.amp.GradScaler` do:
//! 1. each micro-step casts the f32 master parameters to a half-precision copy with the *same*
//!    `ParamId`s ([`half_copy`]); the model runs on it, with the numerically fragile parts (layer
//!    and RMS norms, the attention softmax, the loss) upcast to f32 inside `nn` ([`crate::nn::dtype::upcast`]);
//! 2. the loss is multiplied by the scale before `backward`; the half gradients are cast to f32 and
//!    divided by the scale ([`grads_to_f32`]), then accumulated, clipped and applied in f32;
//! 3. [`LossScaler::update`]: a non-finite gradient halves the scale and skips the step; the scale
//!    doubles after `growth_interval` clean steps (GradScaler's defaults: 2¹⁶, ×2, ×½, 2000).
//!
//! bf16 has f32's exponent range, so it runs without a scale (always 1).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// The dtype of the forward and backward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// f16 compute, f32 master weights, dynamic loss scaling.
    F16,
    /// bf16 compute, f32 master weights (no loss scale needed).
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> Option<FloatDType> {
        match self {
            Precision::F32 => None,
            Precision::F16 => Some(FloatDType::F16),
            Precision::Bf16 => Some(FloatDType::BF16),
        }
    }

    /// What `device` can run: `self`, or f32 with the reason when the adapter lacks the dtype.
    pub fn supported_on(self, device: &Device) -> (Precision, Option<String>) {
        match self.dtype() {
            Some(dtype) if !device.supports_dtype(DType::from(dtype)) => (
                Precision::F32,
                Some(format!(
                    "precision {self:?}: this device has no {} arithmetic; training in f32 (try {} or another backend)",
                    self.name(),
                    if self == Precision::F16 { "bf16" } else { "f16" }
                )),
            ),
            _ => (self, None),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }
}

/// GradScaler's dynamic loss scale, saved in the trainer state so that a resumed run scales as the
/// uninterrupted one did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    /// Clean steps since the scale last changed.
    pub clean_steps: u64,
    pub growth_interval: u64,
    /// Steps skipped for a non-finite gradient, in all.
    pub skipped: u64,
}

impl LossScaler {
    /// Below this the model itself overflows f16, not just its gradients.
    pub const MIN_SCALE: f64 = 1.0 / 1024.0;

    pub fn new(initial: f64, growth_interval: u64) -> Self {
        Self { scale: initial, clean_steps: 0, growth_interval: growth_interval.max(1), skipped: 0 }
    }

    /// The scaler a run in `precision` needs: f16 keeps `current` (a resumed run's) or starts one
    /// from `config`; f32 and bf16 have none.
    pub fn for_run(precision: Precision, config: &super::TrainConfig, current: Option<Self>) -> Option<Self> {
        (precision == Precision::F16)
            .then(|| current.unwrap_or_else(|| Self::new(config.loss_scale, config.loss_scale_growth_interval)))
    }

    /// After a step: `finite` says whether every gradient was. Returns whether to apply the step.
    pub fn update(&mut self, finite: bool) -> bool {
        if finite {
            self.clean_steps += 1;
            if self.clean_steps >= self.growth_interval {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
        } else {
            self.scale *= 0.5;
            self.clean_steps = 0;
            self.skipped += 1;
        }
        finite
    }
}

/// Whether step `step`'s update applies, from its loss and gradient norm: with a loss scaler (f16)
/// a non-finite step is skipped and the scale halved (an error only once the scale has collapsed,
/// as `torch.amp.GradScaler` would spin forever); without one, a non-finite loss or gradient
/// stops the run.
pub fn apply_or_fail(
    scaler: Option<&mut LossScaler>,
    step: u64,
    loss: f64,
    grad_norm: f64,
) -> crate::error::Result<bool> {
    let finite = loss.is_finite() && grad_norm.is_finite();
    match scaler {
        Some(scaler) => {
            let apply = scaler.update(finite);
            if scaler.scale < LossScaler::MIN_SCALE {
                return Err(crate::error::Error::NonFinite {
                    step: step + 1,
                    what: format!("f16 gradient (the loss scale fell to {}; try precision = \"bf16\")", scaler.scale),
                });
            }
            Ok(apply)
        }
        None if !finite => {
            let what = if loss.is_finite() { format!("gradient norm {grad_norm}") } else { format!("loss {loss}") };
            Err(crate::error::Error::NonFinite { step: step + 1, what })
        }
        None => Ok(true),
    }
}

/// A copy of `model` whose parameters are `dtype` leaves that require gradients, under the master
/// parameters' `ParamId`s (so gradients of the copy address the master weights).
pub fn half_copy<M: Module>(model: &M, dtype: FloatDType) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            // Cast outside the graph (`inner`), then make the result a leaf of its own.
            param.map(|t| t.inner().cast(dtype).autodiff()).set_require_grad(true)
        }
    }
    model.clone().map(&mut Cast(dtype))
}

/// Gradients of a [`half_copy`] as f32, divided by `scale`, keyed by the master's `ParamId`s.
pub fn grads_to_f32<M: Module>(master: &M, mut grads: GradientsParams, scale: f64) -> GradientsParams {
    struct ToF32<'a> {
        from: &'a mut GradientsParams,
        to: GradientsParams,
        inv_scale: f64,
    }
    impl ModuleVisitor for ToF32<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.from.remove::<D>(param.id) {
                let g = g.cast(FloatDType::F32);
                self.to.register(param.id, if self.inv_scale == 1.0 { g } else { g * self.inv_scale });
            }
        }
    }
    let mut v = ToF32 { from: &mut grads, to: GradientsParams::new(), inv_scale: 1.0 / scale };
    master.visit(&mut v);
    v.to
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_non_finite_step_fails_without_a_scaler_and_is_skipped_with_one() {
        assert!(apply_or_fail(None, 4, 2.0, 0.5).unwrap());
        let err = apply_or_fail(None, 4, f64::NAN, 0.5).unwrap_err();
        assert!(matches!(&err, Error::NonFinite { step: 5, what } if what.starts_with("loss")), "{err}");
        let err = apply_or_fail(None, 4, 2.0, f64::INFINITY).unwrap_err();
        assert!(matches!(&err, Error::NonFinite { what, .. } if what.starts_with("gradient norm")), "{err}");
        let mut scaler = LossScaler::new(4.0, 100);
        assert!(!apply_or_fail(Some(&mut scaler), 4, 2.0, f64::INFINITY).unwrap(), "skipped");
        assert_eq!(scaler.scale, 2.0);
        let mut collapsed = LossScaler::new(LossScaler::MIN_SCALE, 100);
        let err = apply_or_fail(Some(&mut collapsed), 9, f64::NAN, 1.0).unwrap_err();
        assert!(err.to_string().contains("loss scale fell"), "{err}");
    }

    #[test]
    fn the_scale_halves_on_overflow_and_doubles_after_clean_steps() {
        let mut s = LossScaler::new(65536.0, 3);
        assert!(!s.update(false));
        assert_eq!(s.scale, 32768.0);
        assert!(s.update(true) && s.update(true));
        assert_eq!(s.scale, 32768.0);
        assert!(s.update(true));
        assert_eq!((s.scale, s.clean_steps, s.skipped), (65536.0, 0, 1));
        assert!(s.update(true));
        assert!(!s.update(false)); // an overflow resets the count of clean steps
        assert_eq!((s.scale, s.clean_steps, s.skipped), (32768.0, 0, 2));
    }

    #[test]
    fn half_copies_keep_param_ids_and_their_gradients_come_back_in_f32() {
        use crate::nn::Linear;
        let device = Device::flex().autodiff();
        let master = crate::hf::params::trainable(Linear::new(4, 3, true, 0.5, &device));
        let half = half_copy(&master, FloatDType::F16);
        assert_eq!(half.weight.id, master.weight.id);
        assert_eq!(half.weight.val().dtype(), DType::F16);
        let x = Tensor::<2>::ones([2, 4], &device).cast(FloatDType::F16);
        let loss = half.forward(x).cast(FloatDType::F32).sum() * 8.0;
        let grads = grads_to_f32(&master, GradientsParams::from_grads(loss.backward(), &half), 8.0);
        let g = grads.get::<2>(master.weight.id).expect("a gradient for the master weight");
        assert_eq!(g.dtype(), DType::F32);
        // d(sum(x·W + b))/dW = 2 (two rows of ones) for every entry, unscaled.
        let values = g.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|&v| v == 2.0), "{values:?}");
    }
}
