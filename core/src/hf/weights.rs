//! `model.safetensors` in and out, by HF parameter name.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{DType, TensorData};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::params::{map_params, param_values_async};
use crate::error::{Error, Result};
use crate::readback::block_on;

/// A parsed safetensors file (borrowing its bytes).
pub struct SafetensorsFile<'a> {
    inner: SafeTensors<'a>,
}

impl<'a> SafetensorsFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        SafeTensors::deserialize(bytes).map(|inner| Self { inner }).map_err(|e| {
            Error::Weights(format!(
                "not a valid safetensors file ({e}); re-export it with `safetensors.torch.save_file`"
            ))
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.inner.names().into_iter().map(str::to_string).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.inner.tensor(name).is_ok()
    }

    /// The tensor as f32 (from f32, f16, bf16 or f64).
    pub fn f32(&self, name: &str) -> Result<TensorData> {
        let view = self.view(name)?;
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            Dtype::F64 => {
                view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect()
            }
            Dtype::F16 => {
                view.data().chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            Dtype::BF16 => {
                view.data().chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
            other => {
                return Err(Error::Weights(format!("tensor `{name}` has dtype {other:?}; expected a float tensor")));
            }
        };
        Ok(TensorData::new(values, view.shape().to_vec()))
    }

    /// The tensor as i64 (from any integer dtype).
    pub fn i64(&self, name: &str) -> Result<TensorData> {
        let view = self.view(name)?;
        let d = view.data();
        let values: Vec<i64> = match view.dtype() {
            Dtype::I64 => d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect(),
            Dtype::I32 => d.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect(),
            Dtype::U32 => d.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as i64).collect(),
            Dtype::I16 => d.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as i64).collect(),
            Dtype::U16 => d.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as i64).collect(),
            Dtype::U8 | Dtype::BOOL => d.iter().map(|&b| b as i64).collect(),
            Dtype::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
            other => {
                return Err(Error::Weights(format!("tensor `{name}` has dtype {other:?}; expected an integer tensor")));
            }
        };
        Ok(TensorData::new(values, view.shape().to_vec()))
    }

    fn view(&self, name: &str) -> Result<TensorView<'a>> {
        self.inner.tensor(name).map_err(|_| Error::Weights(format!("no tensor named `{name}`")))
    }

    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.view(name)?.shape().to_vec())
    }
}

/// Loads every parameter of `model` from `file`. A parameter is looked up under its HF name, and
/// also with `base_prefix` removed or added, since HF checkpoints of a base model
/// (`GPT2Model`, `BertModel`) omit the head's prefix (`transformer.`, `bert.`) and vice versa.
/// Tensors the model has no use for (a pooler, a causal-mask buffer, a tied copy) are ignored, as
/// `from_pretrained` does.
pub fn load_weights<M: Module>(model: M, file: &SafetensorsFile<'_>, base_prefix: &str) -> Result<M> {
    let mut error = None;
    let mut found = 0usize;
    let model = map_params(model, &mut |name, expected| {
        if error.is_some() {
            return None;
        }
        let candidates = [
            name.to_string(),
            name.strip_prefix(base_prefix).map(str::to_string).unwrap_or_default(),
            format!("{base_prefix}{name}"),
        ];
        let Some(key) = candidates.iter().find(|k| !k.is_empty() && file.contains(k)) else {
            error = Some(Error::Weights(format!(
                "tensor `{name}` (shape {expected:?}) is missing; the file does not match the config (wrong model_type, or a different architecture)"
            )));
            return None;
        };
        match file.f32(key) {
            Ok(data) if data.shape().as_slice() == expected => {
                found += 1;
                Some(data)
            }
            Ok(data) => {
                error = Some(Error::Weights(format!(
                    "tensor `{key}` has shape {:?} but the config implies {expected:?}; the config.json does not belong to these weights",
                    data.shape().as_slice()
                )));
                None
            }
            Err(e) => {
                error = Some(e);
                None
            }
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(model),
    }
}

/// The bytes of a `model.safetensors` holding every parameter under its HF name (f32, with the
/// `{"format": "pt"}` metadata `transformers` expects).
pub fn save_weights<M: Module>(model: &M) -> Result<Vec<u8>> {
    block_on(save_weights_async(model))
}

/// [`save_weights`], with the device reads awaited (what a browser page calls).
pub async fn save_weights_async<M: Module>(model: &M) -> Result<Vec<u8>> {
    let tensors: Vec<(String, TensorData)> = param_values_async(model)
        .await?
        .into_iter()
        .map(|(k, d)| (k, if d.dtype() == DType::F32 { d } else { d.convert::<f32>() }))
        .collect();
    let views: BTreeMap<String, TensorView<'_>> = tensors
        .iter()
        .map(|(k, d)| {
            let view = TensorView::new(Dtype::F32, d.shape().to_vec(), d.as_bytes()).expect("f32 tensor view");
            (k.clone(), view)
        })
        .collect();
    let metadata = Some(std::collections::HashMap::from([("format".to_string(), "pt".to_string())]));
    safetensors::serialize(views, metadata).map_err(|e| Error::Weights(format!("cannot serialise: {e}")))
}
