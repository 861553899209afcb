//! Parity with Hugging Face `transformers`: recompute a reference folder's logits, loss and
//! parameter gradients and compare.
//!
//! A reference is three files: HF's `config.json` and `model.safetensors`, and `io.safetensors`
//! with the inputs (`input_ids`, and any of `attention_mask`, `token_type_ids`, `labels`,
//! `decoder_input_ids`) and the outputs `logits`, `loss` and `grad.<param name>`.
//!
//! Error measure: for each output, the largest absolute difference, and that divided by the
//! largest magnitude in the reference tensor (relative to the tensor's scale rather than
//! elementwise, which explodes where a value is near zero). A tensor whose reference is zero in
//! exact arithmetic (e.g. the gradient of a key bias, which softmax cancels) has only rounding
//! noise as its scale, so below `ABS_FLOOR` an absolute comparison applies.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::hf::weights::SafetensorsFile;
use crate::models::{LanguageModel, Model, ModelConfig, ModelInputs};

/// Reference magnitudes below this are compared absolutely (see the module docs).
pub const ABS_FLOOR: f64 = 1e-4;

/// One compared output.
#[derive(Clone, Debug)]
pub struct ParityRow {
    /// `logits`, `loss` or `grad.<name>`.
    pub name: String,
    pub shape: Vec<usize>,
    pub max_abs: f64,
    /// `max_abs / max(max |reference|, ABS_FLOOR)`.
    pub max_rel: f64,
    pub passed: bool,
}

#[derive(Clone, Debug)]
pub struct ParityReport {
    pub model_type: &'static str,
    pub tolerance: f64,
    pub rows: Vec<ParityRow>,
    /// Parameters with a reference gradient that Hearth computed none for, or the reverse.
    pub unmatched: Vec<String>,
}

impl ParityReport {
    pub fn passed(&self) -> bool {
        self.unmatched.is_empty() && self.rows.iter().all(|r| r.passed)
    }

    pub fn worst(&self) -> Option<&ParityRow> {
        self.rows.iter().max_by(|a, b| a.max_rel.total_cmp(&b.max_rel))
    }
}

/// Compares two tensors of the same shape.
pub fn compare(name: &str, ours: &TensorData, reference: &TensorData, tolerance: f64) -> Result<ParityRow> {
    if ours.shape() != reference.shape() {
        return Err(Error::Input(format!(
            "`{name}`: Hearth computed shape {:?} but the reference has {:?}",
            ours.shape().as_slice(),
            reference.shape().as_slice()
        )));
    }
    let a = ours.try_to_vec::<f32>().map_err(|e| Error::Input(format!("`{name}`: {e:?}")))?;
    let b = reference.try_to_vec::<f32>().map_err(|e| Error::Input(format!("`{name}`: {e:?}")))?;
    let mut max_abs = 0f64;
    let mut scale = 0f64;
    let mut finite = true;
    for (&x, &y) in a.iter().zip(&b) {
        finite &= x.is_finite() == y.is_finite();
        max_abs = max_abs.max((x as f64 - y as f64).abs());
        scale = scale.max((y as f64).abs());
    }
    let max_rel = if finite { max_abs / scale.max(ABS_FLOOR) } else { f64::INFINITY };
    Ok(ParityRow {
        name: name.to_string(),
        shape: ours.shape().to_vec(),
        max_abs,
        max_rel,
        passed: max_rel <= tolerance,
    })
}

/// Loads the model from `config_json` + `model_safetensors`, runs it on the inputs in
/// `io_safetensors` on `device` (with autodiff, dropout off as in transformers' `model.eval()`),
/// and compares every reference output found there.
pub fn check(
    config_json: &[u8],
    model_safetensors: &[u8],
    io_safetensors: &[u8],
    device: &Device,
    tolerance: f64,
) -> Result<ParityReport> {
    check_with(config_json, model_safetensors, io_safetensors, device, tolerance, true)
}

/// [`check`] with the fused attention kernel on or off (see [`Model::set_fused_attention`]).
pub fn check_with(
    config_json: &[u8],
    model_safetensors: &[u8],
    io_safetensors: &[u8],
    device: &Device,
    tolerance: f64,
    fused_attention: bool,
) -> Result<ParityReport> {
    let mut config = ModelConfig::from_json(config_json).map_err(|e| e.in_file("config.json"))?;
    // References are computed as transformers evaluates (`model.eval()`): dropout off, whatever
    // probabilities the config keeps for training.
    config.set_dropout(0.0);
    let device = device.clone().autodiff();
    let mut model = Model::from_hf(&config, model_safetensors, &device).map_err(|e| e.in_file("model.safetensors"))?;
    model.set_fused_attention(fused_attention);
    let io = SafetensorsFile::parse(io_safetensors).map_err(|e| e.in_file("io.safetensors"))?;
    let inputs = read_inputs(&io, &config, &device).map_err(|e| e.in_file("io.safetensors"))?;

    let output = model.forward(inputs)?;
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    if io.contains("logits") {
        rows.push(compare("logits", &output.logits.to_data(), &io.f32("logits")?, tolerance)?);
    }
    let reference_grads: Vec<String> = io.names().into_iter().filter(|n| n.starts_with("grad.")).collect();
    if let Some(loss) = output.loss {
        if io.contains("loss") {
            rows.push(compare("loss", &loss.to_data(), &io.f32("loss")?.convert::<f32>(), tolerance)?);
        }
        if !reference_grads.is_empty() {
            let grads = loss.backward();
            let ours = model.param_grads(&grads);
            for (name, grad) in &ours {
                let key = format!("grad.{name}");
                if io.contains(&key) {
                    rows.push(compare(&key, grad, &io.f32(&key)?, tolerance)?);
                } else {
                    unmatched.push(format!("{key} (no reference)"));
                }
            }
            for key in &reference_grads {
                if !ours.iter().any(|(n, _)| format!("grad.{n}") == *key) {
                    unmatched.push(format!("{key} (no such parameter in Hearth's model)"));
                }
            }
        }
    } else if io.contains("loss") || !reference_grads.is_empty() {
        return Err(Error::Input(
            "io.safetensors has a reference loss or gradients but no `labels` to compute them from".into(),
        ));
    }
    Ok(ParityReport { model_type: config.model_type(), tolerance, rows, unmatched })
}

/// The model inputs stored in `io`, checked against the config.
pub fn read_inputs(io: &SafetensorsFile<'_>, config: &ModelConfig, device: &Device) -> Result<ModelInputs> {
    let int2 = |name: &str| -> Result<Option<(Tensor<2, Int>, Vec<i64>, [usize; 2])>> {
        if !io.contains(name) {
            return Ok(None);
        }
        let data = io.i64(name)?;
        let shape: [usize; 2] =
            data.shape().as_slice().try_into().map_err(|_| {
                Error::Input(format!("`{name}` must be [batch, seq], found {:?}", data.shape().as_slice()))
            })?;
        let values = data.try_to_vec::<i64>().expect("i64 data");
        Ok(Some((Tensor::from_data(data, device), values, shape)))
    };
    let (input_ids, ids, shape) = int2("input_ids")?.ok_or_else(|| Error::Input("no `input_ids` tensor".into()))?;
    check_token_ids("input_ids", &ids, config.vocab_size())?;
    if let Some(max) = config.max_positions()
        && shape[1] > max
    {
        return Err(Error::Input(format!(
            "input_ids has {} positions but the model's position table holds {max}; shorten the sequences or enlarge the table",
            shape[1]
        )));
    }
    let mut inputs = ModelInputs::new(input_ids);
    inputs.attention_mask = int2("attention_mask")?.map(|t| t.0);
    inputs.token_type_ids = int2("token_type_ids")?.map(|t| t.0);
    if let Some((t, ids, _)) = int2("decoder_input_ids")? {
        check_token_ids("decoder_input_ids", &ids, config.vocab_size())?;
        inputs.decoder_input_ids = Some(t);
    }
    if let Some((t, ids, _)) = int2("labels")? {
        let targets: Vec<i64> = ids.into_iter().filter(|&l| l != crate::nn::loss::IGNORE_INDEX).collect();
        check_token_ids("labels", &targets, config.vocab_size())?;
        inputs.labels = Some(t);
    } else if config.family().objectives()[0] == crate::models::Objective::Causal && io.contains("loss") {
        // A causal LM's labels are its inputs when the reference stores none (HF's convention).
        inputs.labels = Some(inputs.input_ids.clone());
    }
    Ok(inputs)
}

fn check_token_ids(name: &str, ids: &[i64], vocab_size: usize) -> Result<()> {
    if let Some(&bad) = ids.iter().find(|&&id| id < 0 || id as usize >= vocab_size) {
        return Err(Error::Input(format!(
            "`{name}` holds token id {bad}, outside the model's vocabulary of {vocab_size}; the tokenizer does not fit the model"
        )));
    }
    Ok(())
}
