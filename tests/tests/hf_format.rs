//! The Hugging Face format: checkpoints load under their HF names, what Hearth saves is what it
//! loaded (names, shapes, values, config), and bad input is a one-line error naming the problem.

use burn::tensor::Device;
use hearth_core::hf::weights::SafetensorsFile;
use hearth_core::parity::check;
use hearth_core::{Model, ModelConfig};
use hearth_tests::oracle;

fn device() -> Device {
    Device::flex()
}

#[test]
fn saved_checkpoints_hold_the_same_tensors_under_the_same_names() {
    for family in ["gpt2", "bert", "t5", "llama", "llama_bias"] {
        let (config, weights, _) = oracle(family);
        let config = ModelConfig::from_json(&config).unwrap();
        let model = Model::from_hf(&config, &weights, &device()).unwrap();
        let saved = model.to_safetensors().unwrap();
        let (original, saved) = (SafetensorsFile::parse(&weights).unwrap(), SafetensorsFile::parse(&saved).unwrap());
        let mut names = saved.names();
        names.sort();
        let mut expected = original.names();
        expected.sort();
        assert_eq!(names, expected, "{family}: the same parameter names as transformers saves");
        for name in &names {
            let (a, b) = (original.f32(name).unwrap(), saved.f32(name).unwrap());
            assert_eq!(a.shape(), b.shape(), "{family} {name}");
            assert_eq!(
                a.try_to_vec::<f32>().unwrap(),
                b.try_to_vec::<f32>().unwrap(),
                "{family} {name} changed in the round trip"
            );
        }
        // And the config reads back as the same model.
        let again = ModelConfig::from_json(config.to_json().as_bytes()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&again.to_json()).unwrap();
        let orig: serde_json::Value = serde_json::from_str(&config.to_json()).unwrap();
        assert_eq!(json, orig, "{family}: config round trip");
        assert_eq!(json["model_type"], family.trim_end_matches("_bias"));
    }
}

#[test]
fn a_fresh_model_has_the_shapes_of_the_hf_checkpoint() {
    for family in ["gpt2", "bert", "t5", "llama", "llama_bias"] {
        let (config, weights, _) = oracle(family);
        let config = ModelConfig::from_json(&config).unwrap();
        let file = SafetensorsFile::parse(&weights).unwrap();
        let fresh = config.init(&device());
        for (name, shape) in fresh.param_shapes() {
            assert_eq!(file.shape(&name).unwrap(), shape, "{family} {name}");
        }
        assert_eq!(fresh.param_shapes().len(), file.names().len(), "{family}: one parameter per tensor");
    }
}

#[test]
fn base_model_checkpoints_without_the_head_prefix_load() {
    // GPT-2 checkpoints of `GPT2Model` (like the original "gpt2" upload) name tensors `h.0...`, not
    // `transformer.h.0...`.
    let (config, weights, _) = oracle("gpt2");
    let file = SafetensorsFile::parse(&weights).unwrap();
    let renamed: Vec<(String, Vec<f32>, Vec<usize>)> = file
        .names()
        .into_iter()
        .map(|n| {
            let d = file.f32(&n).unwrap();
            (n.trim_start_matches("transformer.").to_string(), d.try_to_vec::<f32>().unwrap(), d.shape().to_vec())
        })
        .collect();
    let bytes = write_f32(&renamed);
    let config = ModelConfig::from_json(&config).unwrap();
    let a = Model::from_hf(&config, &weights, &device()).unwrap().param_values();
    let b = Model::from_hf(&config, &bytes, &device()).unwrap().param_values();
    for ((na, da), (nb, db)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert_eq!(da.try_to_vec::<f32>().unwrap(), db.try_to_vec::<f32>().unwrap());
    }
}

fn write_f32(tensors: &[(String, Vec<f32>, Vec<usize>)]) -> Vec<u8> {
    use safetensors::{Dtype, tensor::TensorView};
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, v, s)| (n.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect(), s.clone()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> =
        bytes.iter().map(|(n, b, s)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

fn one_line(e: impl std::fmt::Display) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "error is one line: {s}");
    s
}

#[test]
fn bad_configs_are_one_line_errors() {
    let (config, weights, io) = oracle("gpt2");
    let mut json: serde_json::Value = serde_json::from_slice(&config).unwrap();

    let err = one_line(ModelConfig::from_json(b"{ not json").unwrap_err());
    assert!(err.contains("not valid JSON"), "{err}");

    json["model_type"] = "mistral".into();
    let err = one_line(ModelConfig::from_json(json.to_string().as_bytes()).unwrap_err());
    assert!(err.contains("unknown model_type \"mistral\""), "{err}");

    json["model_type"] = "gpt2".into();
    json["n_head"] = 3.into();
    let err = one_line(ModelConfig::from_json(json.to_string().as_bytes()).unwrap_err());
    assert!(err.contains("n_embd (128) is not divisible by n_head (3)"), "{err}");

    json["n_head"] = 4.into();
    json["n_embd"] = 64.into();
    let err = one_line(check(json.to_string().as_bytes(), &weights, &io, &device(), 1e-4).unwrap_err());
    assert!(err.starts_with("model.safetensors: weights: tensor `transformer"), "{err}");
    assert!(err.contains("has shape") && err.contains("config implies"), "{err}");

    let err = one_line(check(&config, &weights[..1000], &io, &device(), 1e-4).unwrap_err());
    assert!(err.contains("model.safetensors") && err.contains("not a valid safetensors file"), "{err}");
}

#[test]
fn token_ids_outside_the_vocabulary_are_named() {
    let (config, weights, _) = oracle("gpt2");
    let mut json: serde_json::Value = serde_json::from_slice(&config).unwrap();
    json["n_positions"] = 64.into();
    let ids: Vec<(String, Vec<u8>, Vec<usize>)> =
        vec![("input_ids".into(), [5i64, 600, 7].iter().flat_map(|x| x.to_le_bytes()).collect(), vec![1, 3])];
    use safetensors::{Dtype, tensor::TensorView};
    let views: Vec<(String, TensorView<'_>)> =
        ids.iter().map(|(n, b, s)| (n.clone(), TensorView::new(Dtype::I64, s.clone(), b).unwrap())).collect();
    let io = safetensors::serialize(views, None).unwrap();
    let err = one_line(check(&config, &weights, &io, &device(), 1e-4).unwrap_err());
    assert!(err.contains("token id 600") && err.contains("vocabulary of 512"), "{err}");
}

#[test]
fn perturbed_weights_fail_parity() {
    let (config, weights, io) = oracle("bert");
    let file = SafetensorsFile::parse(&weights).unwrap();
    let target = "bert.encoder.layer.1.intermediate.dense.weight";
    let tensors: Vec<(String, Vec<f32>, Vec<usize>)> = file
        .names()
        .into_iter()
        .map(|n| {
            let d = file.f32(&n).unwrap();
            let mut v = d.try_to_vec::<f32>().unwrap();
            if n == target {
                v.iter_mut().for_each(|x| *x *= 1.01);
            }
            (n, v, d.shape().to_vec())
        })
        .collect();
    let report = check(&config, &write_f32(&tensors), &io, &device(), 1e-4).unwrap();
    assert!(!report.passed());
    let failed: Vec<&str> = report.rows.iter().filter(|r| !r.passed).map(|r| r.name.as_str()).collect();
    assert!(failed.contains(&"logits"), "{failed:?}");
    assert!(failed.contains(&format!("grad.{target}").as_str()), "{failed:?}");
}

#[test]
fn parity_runs_with_dropout_off_as_transformers_evaluates() {
    // A checkpoint saved for training keeps its dropout probabilities (GPT-2's 0.1 defaults); its
    // references come from `model.eval()`, so parity must match them regardless.
    for (family, keys) in [
        ("gpt2", &["attn_pdrop", "resid_pdrop", "embd_pdrop"][..]),
        ("bert", &["attention_probs_dropout_prob", "hidden_dropout_prob"][..]),
        ("t5", &["dropout_rate"][..]),
    ] {
        let (config, weights, io) = oracle(family);
        let mut json: serde_json::Value = serde_json::from_slice(&config).unwrap();
        for key in keys {
            json[*key] = 0.3.into();
        }
        let report = check(json.to_string().as_bytes(), &weights, &io, &device(), 1e-4).unwrap();
        let failed: Vec<&str> = report.rows.iter().filter(|r| !r.passed).map(|r| r.name.as_str()).collect();
        assert!(report.passed(), "{family}: {failed:?}");
    }
}
