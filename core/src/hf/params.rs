//! Parameters by their Hugging Face names.
//!
//! Every model here names its fields after the HF module tree (`transformer.h.0.attn.c_attn`), so
//! the path burn's module visitor walks *is* the checkpoint key. Two escapes: a field that would be
//! a Rust keyword carries a trailing underscore (`self_` for BERT's `attention.self`), dropped
//! here; and an enum over models (`Model::Gpt2(…)`, the registry's) adds no name of its own, so a
//! model keeps its keys whether held alone or in the enum.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Gradients, Tensor, TensorData};

use crate::error::Result;
use crate::readback::{self, block_on};

/// Tracks the dotted path of the module being visited (an enum's variant is no part of it).
#[derive(Default)]
struct PathStack(Vec<Option<String>>);

impl PathStack {
    fn enter(&mut self, name: &str, container_type: &str) {
        let named = !container_type.starts_with("Enum:");
        self.0.push(named.then(|| name.strip_suffix('_').unwrap_or(name).to_string()));
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn key(&self) -> String {
        self.0.iter().flatten().cloned().collect::<Vec<_>>().join(".")
    }
}

/// What to read off each float parameter.
enum Read<'a> {
    Shape,
    /// The value, kept on the device (flattened) for an awaited read afterwards.
    Value,
    Grad(&'a Gradients),
}

struct Reader<'a> {
    path: PathStack,
    read: Read<'a>,
    out: Vec<(String, ParamEntry)>,
    /// `Read::Value`: each parameter flattened, in the order of `out`.
    values: Vec<Tensor<1>>,
}

/// One parameter: its shape, and its value or gradient when asked for.
#[derive(Debug, Clone)]
pub struct ParamEntry {
    pub shape: Vec<usize>,
    pub data: Option<TensorData>,
}

impl ModuleVisitor for Reader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Read::Shape = self.read {
            // Without initialising a lazy parameter: a fresh model's shapes cost no memory.
            let shape = param.lazy_shape().to_vec();
            self.out.push((self.path.key(), ParamEntry { shape, data: None }));
            return;
        }
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        let data = match self.read {
            Read::Shape => unreachable!("handled above"),
            Read::Value => {
                self.values.push(tensor.reshape([shape.iter().product::<usize>()]));
                None
            }
            Read::Grad(grads) => tensor.grad(grads).map(|g| g.into_data()),
        };
        self.out.push((self.path.key(), ParamEntry { shape, data }));
    }
}

fn read<'a, M: Module>(model: &M, read: Read<'a>) -> Reader<'a> {
    let mut reader = Reader { path: PathStack::default(), read, out: Vec::new(), values: Vec::new() };
    model.visit(&mut reader);
    reader
}

/// `(hf_name, shape)` of every parameter, in module order.
pub fn param_shapes<M: Module>(model: &M) -> Vec<(String, Vec<usize>)> {
    read(model, Read::Shape).out.into_iter().map(|(k, e)| (k, e.shape)).collect()
}

/// `(hf_name, value)` of every parameter.
pub fn param_values<M: Module>(model: &M) -> Vec<(String, TensorData)> {
    block_on(param_values_async(model)).expect("parameters read back from the device")
}

/// [`param_values`], with the device reads awaited (what a browser page calls).
pub async fn param_values_async<M: Module>(model: &M) -> Result<Vec<(String, TensorData)>> {
    let reader = read(model, Read::Value);
    let mut values = Vec::with_capacity(reader.out.len());
    for ((name, entry), flat) in reader.out.into_iter().zip(reader.values) {
        values.push((name, TensorData::new(readback::f32s(flat).await?, entry.shape)));
    }
    Ok(values)
}

/// `(hf_name, gradient)` of every parameter that took part in the graph behind `grads`.
pub fn param_grads<M: Module>(model: &M, grads: &Gradients) -> Vec<(String, TensorData)> {
    read(model, Read::Grad(grads)).out.into_iter().filter_map(|(k, e)| Some((k, e.data?))).collect()
}

/// Replaces each parameter by what `source` gives for its name (`None` keeps it).
pub fn map_params<M: Module>(model: M, source: &mut dyn FnMut(&str, &[usize]) -> Option<TensorData>) -> M {
    struct Loader<'s> {
        path: PathStack,
        source: &'s mut dyn FnMut(&str, &[usize]) -> Option<TensorData>,
    }
    impl ModuleMapper for Loader<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let shape = param.lazy_shape().to_vec();
            match (self.source)(&self.path.key(), &shape) {
                Some(data) => {
                    let device = param.lazy_device();
                    let id = param.id;
                    param.transform_for_load(Tensor::from_data(data, &device), id)
                }
                None => param,
            }
        }
    }
    model.map(&mut Loader { path: PathStack::default(), source })
}

/// Gives every parameter an id derived from its HF name (FNV-1a), so optimizer state saved by one
/// process finds its parameters in another (burn draws fresh random ids at each init).
pub fn with_stable_ids<M: Module>(model: M) -> M {
    struct Ids {
        path: PathStack,
    }
    impl ModuleMapper for Ids {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = param.consume();
            Param::from_mapped_value(ParamId::from(fnv1a(&self.path.key())), value, mapper)
        }
    }
    model.map(&mut Ids { path: PathStack::default() })
}

/// `ParamId`s of the parameters of rank `rank` (1: biases and norm scales; 2: matrices, embeddings).
pub fn param_ids_of_rank<M: Module>(model: &M, rank: usize) -> Vec<ParamId> {
    struct ByRank {
        rank: usize,
        ids: Vec<ParamId>,
    }
    impl ModuleVisitor for ByRank {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if D == self.rank {
                self.ids.push(param.id);
            }
        }
    }
    let mut v = ByRank { rank, ids: Vec::new() };
    model.visit(&mut v);
    v.ids
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// The model with every parameter on the autodiff decorator of its device, tracked for gradients
/// (moving a module to an autodiff device keeps plain tensors plain).
pub fn trainable<M: Module>(model: M) -> M {
    struct Track;
    impl ModuleMapper for Track {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.autodiff()).set_require_grad(true)
        }
    }
    model.map(&mut Track)
}
