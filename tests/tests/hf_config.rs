//! What transformers reads is what Hearth wrote: for every preset, the `config.json` Hearth writes
//! holds exactly the keys and values that transformers itself writes for the same model
//! (`tests/fixtures/hf_configs/`, written by `tests/hf/write_config_references.py` with
//! transformers 5.24). A key left implicit (absent or `null`) is read by transformers with its own
//! default, which may differ from Hearth's: T5's `scale_decoder_outputs: null` meant "do not
//! scale" there and "scale" here.

use hearth_core::ModelConfig;
use hearth_core::models::presets::{names, preset, preset_json};
use hearth_tests::fixture;
use serde_json::Value;

/// Keys that name the writer rather than the model.
const WRITER_KEYS: [&str; 1] = ["transformers_version"];

fn reference(name: &str) -> Value {
    let path = fixture(&format!("hf_configs/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Numbers compare as numbers (`1e-05` and `0.00001`, `1.0` and `1`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        _ => a == b,
    }
}

/// The differences between Hearth's config and transformers', one line each.
fn differences(hearth: &Value, transformers: &Value) -> Vec<String> {
    let (h, t) = (hearth.as_object().unwrap(), transformers.as_object().unwrap());
    let mut out = Vec::new();
    for (key, want) in t.iter().filter(|(k, _)| !WRITER_KEYS.contains(&k.as_str())) {
        match h.get(key) {
            None => out.push(format!("`{key}` missing (transformers writes {want})")),
            Some(got) if !same(got, want) => out.push(format!("`{key}`: Hearth writes {got}, transformers {want}")),
            Some(_) => {}
        }
    }
    for key in h.keys().filter(|k| !t.contains_key(*k) && !WRITER_KEYS.contains(&k.as_str())) {
        out.push(format!("`{key}` = {} is not written by transformers", h[key]));
    }
    out
}

#[test]
fn every_preset_config_is_written_as_transformers_writes_it() {
    for name in names() {
        let reference = reference(name);
        assert_eq!(
            reference["hyper_parameters"],
            preset_json(name).unwrap(),
            "{name}: the preset changed since its reference was written; re-run tests/hf/write_config_references.py"
        );
        let written: Value = serde_json::from_str(&preset(name, &Default::default()).unwrap().to_json()).unwrap();
        let diff = differences(&written, &reference["config_json"]);
        assert!(diff.is_empty(), "{name}: {}", diff.join("; "));
        // And Hearth reads its own config back as the same one.
        let again: Value =
            serde_json::from_str(&ModelConfig::from_json(written.to_string().as_bytes()).unwrap().to_json()).unwrap();
        assert_eq!(again, written, "{name}: round trip");
    }
}

#[test]
fn implicit_t5_keys_are_written_resolved() {
    // A T5 config that leaves the decoder depth and the output scaling implicit: transformers 5
    // reads a missing or null `scale_decoder_outputs` differently from Hearth, so the written
    // config says what Hearth computes.
    for (tied, scaled) in [(true, true), (false, false)] {
        let json = serde_json::json!({"model_type": "t5", "vocab_size": 64, "d_model": 16, "d_kv": 4, "d_ff": 32,
            "num_layers": 3, "num_heads": 4, "tie_word_embeddings": tied, "scale_decoder_outputs": null,
            "num_decoder_layers": null});
        let written: Value =
            serde_json::from_str(&ModelConfig::from_json(json.to_string().as_bytes()).unwrap().to_json()).unwrap();
        assert_eq!(written["scale_decoder_outputs"], scaled, "tie_word_embeddings {tied}");
        assert_eq!(written["num_decoder_layers"], 3);
        assert_eq!(written["decoder_start_token_id"], 0, "the pad token, as T5 starts decoding");
        assert!(written.as_object().unwrap().values().all(|v| !v.is_null()), "no null left: {written}");
    }
    // An explicit choice stays as it was (the oracle T5 is tied and unscaled).
    let json = serde_json::json!({"model_type": "t5", "tie_word_embeddings": true, "scale_decoder_outputs": false});
    let written: Value =
        serde_json::from_str(&ModelConfig::from_json(json.to_string().as_bytes()).unwrap().to_json()).unwrap();
    assert_eq!(written["scale_decoder_outputs"], false);
}
