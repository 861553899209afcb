//! Activation checkpointing per transformer block, on burn-autodiff's own strategy.
//!
//! burn 0.22 carries a gradient-checkpointing strategy on every autodiff tensor. Under
//! `Balanced`, operations marked memory-bound (elementwise, norms, softmax, reshapes) keep no
//! output: backward recomputes them from their inputs, while compute-bound ones (matmuls, the
//! fused attention kernel) keep theirs. Tensors in one operation must share a strategy, so a block
//! runs checkpointed by moving its parameters and its inputs to `Balanced` on the way in and its
//! output back on the way out; the embeddings, the final norm and the loss stay as they were.
//! This is `torch.utils.checkpoint` at block granularity with burn's recompute rule inside.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{GradientCheckpointingStrategy, Tensor, kind::Autodiff};

use super::AttentionBias;

/// Something a block reads that can move between checkpointing strategies.
pub trait Strategic {
    fn with_strategy(self, strategy: GradientCheckpointingStrategy) -> Self;
}

impl<const D: usize, K: Autodiff> Strategic for Tensor<D, K> {
    fn with_strategy(self, strategy: GradientCheckpointingStrategy) -> Self {
        if self.is_autodiff() { self.with_gradient_checkpointing_strategy(strategy) } else { self }
    }
}

impl<T: Strategic> Strategic for Option<T> {
    fn with_strategy(self, strategy: GradientCheckpointingStrategy) -> Self {
        self.map(|t| t.with_strategy(strategy))
    }
}

impl Strategic for AttentionBias {
    fn with_strategy(mut self, strategy: GradientCheckpointingStrategy) -> Self {
        self.additive = self.additive.with_strategy(strategy);
        self.mask = self.mask.with_strategy(strategy);
        self.key_padding = self.key_padding.with_strategy(strategy);
        self
    }
}

/// One block's trip through checkpointing: from the strategy outside to `Balanced` and back.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint {
    outer: GradientCheckpointingStrategy,
}

impl Checkpoint {
    /// `None` (run the block plainly) when `on` is false or `x` is not tracked by autodiff
    /// (inference, evaluation).
    pub fn begin<const D: usize>(on: bool, x: &Tensor<D>) -> Option<Self> {
        let outer = x.gradient_checkpointing_strategy()?;
        (on && outer != GradientCheckpointingStrategy::Balanced).then_some(Self { outer })
    }

    /// `block` with its parameters under `Balanced` (the same `ParamId`s and graph leaves).
    pub fn module<M: Module>(&self, block: &M) -> M {
        struct Balanced;
        impl ModuleMapper for Balanced {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                param.map(|t| t.with_strategy(GradientCheckpointingStrategy::Balanced))
            }
        }
        block.clone().map(&mut Balanced)
    }

    /// An input of the block, under `Balanced`.
    pub fn inside<T: Strategic>(&self, t: T) -> T {
        t.with_strategy(GradientCheckpointingStrategy::Balanced)
    }

    /// The block's output, back under the strategy outside it.
    pub fn outside<T: Strategic>(&self, t: T) -> T {
        t.with_strategy(self.outer)
    }
}
