//! Data parallelism across processes: the collective operations the trainer needs, and how the
//! parameters are split between ranks for ZeRO stage 1.
//!
//! burn 0.22.1's collectives (`burn::tensor::distributed::all_reduce`, the DDP strategy of
//! burn-train) run between devices of one process, and only the CUDA backend (NCCL) implements
//! them; flex and wgpu do not, and there is no multi-process or multi-machine transport (the
//! `burn-collective` crate with one stops at 0.21). So the trainer talks to a [`Collective`], which the
//! front end supplies: the CLI's is a ring all-reduce over TCP between processes on one or many
//! machines (`native/src/distributed/tcp.rs`, started by `hearth launch` or any launcher that sets torchrun's
//! variables). Gradients cross it as host f32 vectors, which works for every backend; the socket
//! transport lives with the CLI, so this crate does no I/O.

pub mod data_parallel;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

use crate::error::Result;

/// What data-parallel training needs from the processes' transport. Every rank calls the same
/// operations in the same order.
pub trait Collective {
    fn rank(&self) -> usize;
    fn world(&self) -> usize;
    /// In-place sum over ranks; every rank ends with the same bits.
    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()>;
    /// Every rank's segment of `data` on every rank: rank r fills `data[bounds[r]..bounds[r + 1]]`.
    fn all_gather(&mut self, data: &mut [f32], bounds: &[usize]) -> Result<()>;
    /// Every rank's bytes on rank 0 (in rank order); `None` on the others.
    fn gather_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>>;
    /// Rank 0's bytes on every rank.
    fn broadcast_bytes(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>>;
    /// Returns once every rank has called it.
    fn barrier(&mut self) -> Result<()>;
}

/// Every parameter's id and number of elements, in module order.
pub fn param_sizes<M: Module>(model: &M) -> Vec<(ParamId, usize)> {
    struct Sizes(Vec<(ParamId, usize)>);
    impl ModuleVisitor for Sizes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push((param.id, param.val().shape().num_elements()));
        }
    }
    let mut sizes = Sizes(Vec::new());
    model.visit(&mut sizes);
    sizes.0
}

/// Which rank owns (keeps optimizer state for and updates) each parameter under ZeRO stage 1:
/// whole tensors, largest first, each to the rank holding the fewest elements so far (ties to the
/// lower rank), the same on every rank.
pub fn partition<M: Module>(model: &M, world: usize) -> Vec<(ParamId, usize)> {
    let sizes = param_sizes(model);
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i].1)); // stable: ties keep module order
    let mut load = vec![0usize; world.max(1)];
    let mut owner = vec![0usize; sizes.len()];
    for i in order {
        let rank = (0..load.len()).min_by_key(|&r| (load[r], r)).expect("world ≥ 1");
        load[rank] += sizes[i].1;
        owner[i] = rank;
    }
    sizes.iter().zip(owner).map(|(&(id, _), rank)| (id, rank)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn the_partition_balances_elements_and_is_the_same_everywhere() {
        let device = Device::flex();
        let config = crate::models::presets::preset("gpt-tiny", &Default::default()).unwrap();
        let crate::Model::Gpt2(model) = config.init(&device) else { unreachable!("a GPT preset") };
        let model = crate::hf::params::with_stable_ids(model);
        let sizes = |world: usize| {
            let mut load = vec![0usize; world];
            let parts = partition(&model, world);
            let count: std::collections::HashMap<ParamId, usize> = param_sizes(&model).into_iter().collect();
            assert_eq!(parts.len(), count.len(), "every parameter has one owner");
            for (id, rank) in &parts {
                load[*rank] += count[id];
            }
            let biggest = count.values().copied().max().unwrap();
            (parts, load, biggest)
        };
        let (a, _, _) = sizes(2);
        assert_eq!(a, sizes(2).0, "deterministic");
        for world in [2, 3, 4] {
            let (_, load, biggest) = sizes(world);
            // Greedy largest-first: ranks differ by at most one tensor.
            let (lo, hi) = (load.iter().min().unwrap(), load.iter().max().unwrap());
            assert!(lo > &0 && hi - lo <= biggest, "{world} ranks: {load:?}");
        }
    }
}
