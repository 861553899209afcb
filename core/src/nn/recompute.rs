//! Activation checkpointing (recomputation) per transformer block, on burn-autodiff's own strategy.
//!
//! burn 0.22 carries a gradient-checkpointing strategy on every autodiff tensor. Under
//! `Balanced`, operations marked memory-bound (elementwise, norms, softmax, reshapes) keep no
//! output: backward recomputes them from their inputs, while compute-bound ones (matmuls, the
//! fused attention kernel) keep theirs. Tensors in one operation must share a strategy, so a block
//! runs checkpointed by moving its parameters and its inputs to `Balanced` on the way in and its
//! output back on the way out; the embeddings, the final norm and the loss stay as they were.
//! This is `torch.utils.checkpoint` at block granularity with burn's recompute rule inside:
//! [`recompute`] runs one block so.

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

/// How one block runs inside [`recompute`]: [`Recompute::inside`] moves any further input of the
/// block (masks, the encoder's states) to the block's strategy.
#[derive(Clone, Copy, Debug)]
pub struct Recompute {
    /// The strategy outside the block, when it is recomputed.
    outer: Option<GradientCheckpointingStrategy>,
}

impl Recompute {
    /// An input of the block, under `Balanced` when the block is recomputed.
    pub fn inside<T: Strategic>(&self, t: T) -> T {
        match self.outer {
            Some(_) => t.with_strategy(GradientCheckpointingStrategy::Balanced),
            None => t,
        }
    }

    /// `block` with its parameters under `Balanced` (the same `ParamId`s and graph leaves).
    fn module<M: Module>(&self, block: &M) -> M {
        struct Balanced;
        impl ModuleMapper for Balanced {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                param.map(|t| t.with_strategy(GradientCheckpointingStrategy::Balanced))
            }
        }
        block.clone().map(&mut Balanced)
    }
}

/// `f(block, x, r)`, as one activation-checkpointed block when `on` and `x` is tracked by autodiff
/// (training): the block's parameters and inputs under `Balanced`, its output back under the
/// strategy outside; otherwise plainly (inference, evaluation, `on` false).
pub fn recompute<M: Module, const D: usize>(
    on: bool,
    block: &M,
    x: Tensor<D>,
    f: impl FnOnce(&M, Tensor<D>, &Recompute) -> Tensor<D>,
) -> Tensor<D> {
    let outer = x.gradient_checkpointing_strategy().filter(|&s| on && s != GradientCheckpointingStrategy::Balanced);
    let r = Recompute { outer };
    match outer {
        None => f(block, x, &r),
        Some(outer) => f(&r.module(block), r.inside(x), &r).with_strategy(outer),
    }
}
