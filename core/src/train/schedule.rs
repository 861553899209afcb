//! Learning rate: linear warmup from 0, then cosine, linear or constant down to `min_lr` at
//! `total_steps` (nanoGPT's `get_lr`).

use serde::{Deserialize, Serialize};

/// The learning rate's decay after the warmup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    Cosine,
    Linear,
    Constant,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub decay: Decay,
}

impl Schedule {
    /// The learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / (self.warmup_steps + 1) as f64;
        }
        if step >= self.total_steps {
            return if self.decay == Decay::Constant { self.lr } else { self.min_lr };
        }
        let span = (self.total_steps - self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span; // 0 → 1
        let coeff = match self.decay {
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            Decay::Linear => 1.0 - progress,
            Decay::Constant => return self.lr,
        };
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay_to_min() {
        let s = Schedule { lr: 1e-3, min_lr: 1e-4, warmup_steps: 9, total_steps: 109, decay: Decay::Cosine };
        assert!((s.lr(0) - 1e-4).abs() < 1e-12);
        assert!((s.lr(8) - 9e-4).abs() < 1e-12);
        assert!((s.lr(9) - 1e-3).abs() < 1e-12, "peak right after warmup");
        assert!((s.lr(59) - 5.5e-4).abs() < 1e-9, "half way down the cosine");
        assert!((s.lr(109) - 1e-4).abs() < 1e-12);
        let l = Schedule { decay: Decay::Linear, ..s };
        assert!((l.lr(34) - (1e-3 - 0.25 * 9e-4)).abs() < 1e-12);
        let c = Schedule { decay: Decay::Constant, ..s };
        assert_eq!(c.lr(50), 1e-3);
        assert!((1..200).all(|i| s.lr(i) <= 1e-3 + 1e-15));
    }
}
