//! Data parallelism inside a step, over any [`Collective`]: the gradients averaged over the
//! ranks in one all-reduce of a flat host vector, and, for ZeRO stage 1, each rank keeping the
//! gradients of the parameters it owns and the updated parameters gathered back from their owners.
//! [`DataParallel`] is a trainer's place among the ranks; the free functions are its steps.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Collective, param_sizes, partition};
use crate::error::{Error, Result};
use crate::readback;

/// This process's place among data-parallel ranks: the link to the others and, under ZeRO stage 1,
/// which rank owns (keeps optimizer state for and updates) each parameter. Every rank makes the same
/// calls in the same order.
pub struct DataParallel {
    collective: Box<dyn Collective>,
    owner: Option<HashMap<ParamId, usize>>,
}

impl DataParallel {
    /// One of `collective.world()` ranks; with `zero` each parameter gets an owner ([`partition`]).
    pub fn new<M: Module>(collective: Box<dyn Collective>, zero: bool, model: &M) -> Self {
        let owner = zero.then(|| partition(model, collective.world()).into_iter().collect());
        Self { collective, owner }
    }

    pub fn rank(&self) -> usize {
        self.collective.rank()
    }

    pub fn world(&self) -> usize {
        self.collective.world()
    }

    /// Whether this rank keeps optimizer state for, and updates, parameter `id` (always, without ZeRO).
    pub fn owns(&self, id: ParamId) -> bool {
        self.owner.as_ref().is_none_or(|owner| owner[&id] == self.rank())
    }

    /// Rank 0's `value` on every rank (as JSON).
    pub fn broadcast<T: Serialize + DeserializeOwned>(&mut self, value: &T) -> Result<T> {
        let bytes = self.collective.broadcast_bytes(serde_json::to_vec(value).expect("the value serialises"))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Distributed(format!("rank 0 sent something else ({e})")))
    }

    /// The model with rank 0's weights, on every rank.
    pub async fn broadcast_params<M: Module>(&mut self, model: &M) -> Result<M> {
        sync_params(model, &|_| 0, self.collective.as_mut()).await
    }

    /// The gradients and `loss` averaged over the ranks; returns the mean loss.
    pub async fn reduce<M: Module>(&mut self, model: &M, grads: &mut GradientsParams, loss: f64) -> Result<f64> {
        all_reduce_mean(model, grads, loss, self.collective.as_mut()).await
    }

    /// ZeRO stage 1, before the update: drops the gradients of parameters other ranks own.
    pub fn keep_own_grads<M: Module>(&self, model: &M, grads: &mut GradientsParams) {
        if self.owner.is_some() {
            keep_grads(model, grads, |id| self.owns(id));
        }
    }

    /// ZeRO stage 1, after the update: every parameter from its owner, on every rank.
    pub async fn gather_updated<M: Module>(&mut self, model: M) -> Result<M> {
        match &self.owner {
            None => Ok(model),
            Some(owner) => {
                let owner = owner.clone();
                sync_params(&model, &|id| owner[&id], self.collective.as_mut()).await
            }
        }
    }

    /// The optimizer state a checkpoint holds, on rank 0: every rank's shard under ZeRO stage 1,
    /// rank 0's alone otherwise (replicated state); `None` on the other ranks.
    pub fn gather_optimizer(&mut self, own: impl FnOnce() -> Result<Vec<u8>>) -> Result<Option<Vec<Vec<u8>>>> {
        match (&self.owner, self.rank()) {
            (Some(_), _) => self.collective.gather_bytes(&own()?),
            (None, 0) => Ok(Some(vec![own()?])),
            (None, _) => Ok(None),
        }
    }

    /// Element-wise sums over the ranks, in place.
    pub fn sum(&mut self, values: &mut [f32]) -> Result<()> {
        self.collective.all_reduce_sum(values)
    }

    /// Whether any rank says `flag`.
    pub fn any(&mut self, flag: bool) -> Result<bool> {
        let mut v = [flag as u8 as f32];
        self.collective.all_reduce_sum(&mut v)?;
        Ok(v[0] > 0.0)
    }

    /// Returns once every rank has called it.
    pub fn barrier(&mut self) -> Result<()> {
        self.collective.barrier()
    }
}

/// Averages the gradients (and this rank's `loss`) over the ranks, in one all-reduce of a flat
/// host vector; returns the mean loss.
async fn all_reduce_mean<M: Module>(
    model: &M,
    grads: &mut GradientsParams,
    loss: f64,
    collective: &mut dyn Collective,
) -> Result<f64> {
    struct Flatten<'a> {
        grads: &'a GradientsParams,
        parts: Vec<Tensor<1>>,
        shapes: Vec<(ParamId, Vec<usize>)>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.shapes.push((param.id, g.dims().to_vec()));
                self.parts.push(g.reshape([-1]));
            }
        }
    }
    let mut flat = Flatten { grads, parts: Vec::new(), shapes: Vec::new() };
    model.visit(&mut flat);
    let Flatten { parts, shapes, .. } = flat;
    let device = match parts.first() {
        Some(p) => p.device(),
        None => return Ok(loss),
    };
    let mut values = readback::f32s(Tensor::cat(parts, 0)).await?;
    values.push(loss as f32);
    collective.all_reduce_sum(&mut values)?;
    let world = collective.world() as f32;
    values.iter_mut().for_each(|v| *v /= world);
    let mean_loss = values.pop().expect("the loss was pushed") as f64;
    let mut offset = 0;
    for (id, shape) in shapes {
        let n: usize = shape.iter().product();
        register_grad(grads, id, values[offset..offset + n].to_vec(), shape, &device);
        offset += n;
    }
    Ok(mean_loss)
}

/// The model with every parameter set, on every rank, to the value on the rank that owns it
/// (`owner_of`): each rank reads its own parameters back and one all-gather hands everyone the
/// rest, the flat vector laid out by owner (then module order) so that each rank's share is one
/// segment.
async fn sync_params<M: Module>(
    model: &M,
    owner_of: &dyn Fn(ParamId) -> usize,
    collective: &mut dyn Collective,
) -> Result<M> {
    let sizes = param_sizes(model);
    let (rank, world) = (collective.rank(), collective.world());
    let mut bounds = vec![0usize; world + 1];
    let mut offsets = HashMap::new();
    for r in 0..world {
        bounds[r + 1] = bounds[r];
        for &(id, n) in sizes.iter().filter(|(id, _)| owner_of(*id) == r) {
            offsets.insert(id, bounds[r + 1]);
            bounds[r + 1] += n;
        }
    }
    struct Mine<'a> {
        rank: usize,
        owner_of: &'a dyn Fn(ParamId) -> usize,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for Mine<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if (self.owner_of)(param.id) == self.rank {
                self.parts.push(param.val().inner().reshape([-1]));
            }
        }
    }
    let mut mine = Mine { rank, owner_of, parts: Vec::new() };
    model.visit(&mut mine);
    let mut values = vec![0f32; bounds[world]];
    if !mine.parts.is_empty() {
        let own = readback::f32s(Tensor::cat(mine.parts, 0)).await?;
        values[bounds[rank]..bounds[rank + 1]].copy_from_slice(&own);
    }
    collective.all_gather(&mut values, &bounds)?;
    struct Write {
        values: Vec<f32>,
        offsets: HashMap<ParamId, usize>,
    }
    impl ModuleMapper for Write {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let at = self.offsets[&param.id];
            let values = &self.values;
            param
                .map(|t| {
                    let shape = t.dims();
                    let n: usize = shape.iter().product();
                    Tensor::from_data(TensorData::new(values[at..at + n].to_vec(), shape), &t.device())
                })
                .set_require_grad(true)
        }
    }
    Ok(model.clone().map(&mut Write { values, offsets }))
}

/// Drops every gradient whose parameter `keep` refuses (ZeRO stage 1: another rank updates it).
fn keep_grads<M: Module>(model: &M, grads: &mut GradientsParams, keep: impl Fn(ParamId) -> bool) {
    struct Keep<'a, F> {
        grads: &'a mut GradientsParams,
        keep: F,
    }
    impl<F: Fn(ParamId) -> bool> ModuleVisitor for Keep<'_, F> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !(self.keep)(param.id) {
                self.grads.remove::<D>(param.id);
            }
        }
    }
    model.visit(&mut Keep { grads, keep });
}

/// `values` as the gradient of parameter `id`, replacing what was there.
fn register_grad(grads: &mut GradientsParams, id: ParamId, values: Vec<f32>, shape: Vec<usize>, device: &Device) {
    let (rank, data) = (shape.len(), TensorData::new(values, shape));
    match rank {
        1 => grads.register(id, Tensor::<1>::from_data(data, device)),
        2 => grads.register(id, Tensor::<2>::from_data(data, device)),
        3 => grads.register(id, Tensor::<3>::from_data(data, device)),
        4 => grads.register(id, Tensor::<4>::from_data(data, device)),
        d => panic!("a {d}-dimensional parameter"),
    }
}
