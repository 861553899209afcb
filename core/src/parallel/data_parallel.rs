//! Data parallelism inside a step, over any [`Collective`]: the gradients averaged over the
//! ranks in one all-reduce of a flat host vector, and, for ZeRO stage 1, each rank keeping the
//! gradients of the parameters it owns and the updated parameters gathered back from their owners.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::{Collective, param_sizes};
use crate::error::Result;
use crate::readback;

/// Averages the gradients (and this rank's `loss`) over the ranks, in one all-reduce of a flat
/// host vector; returns the mean loss.
pub async fn all_reduce_mean<M: Module>(
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
pub async fn sync_params<M: Module>(
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
pub fn keep_grads<M: Module>(model: &M, grads: &mut GradientsParams, keep: impl Fn(ParamId) -> bool) {
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
