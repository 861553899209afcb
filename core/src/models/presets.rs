//! Named model sizes: tiny ones that train in minutes on a CPU or in a browser, and the classic
//! full sizes (GPT-2 124M, BERT-base, T5-base) with HF's own hyper-parameters.

use serde_json::{Value, json};

use super::ModelConfig;
use crate::error::{Error, Result};

pub const NAMES: [&str; 8] =
    ["gpt-tiny", "bert-tiny", "t5-tiny", "gpt2-124m", "bert-base", "t5-base", "gpt-bench-tiny", "gpt-10m"];

/// The HF `config.json` of preset `name`, with `overrides` applied (keys as HF spells them).
pub fn preset(name: &str, overrides: &serde_json::Map<String, Value>) -> Result<ModelConfig> {
    let mut config = preset_json(name)?;
    let map = config.as_object_mut().expect("an object");
    for (k, v) in overrides {
        map.insert(k.clone(), v.clone());
    }
    ModelConfig::from_json(config.to_string().as_bytes())
}

/// The hyper-parameters preset `name` sets, as HF `config.json` keys (the rest are the family's
/// defaults, HF's and Hearth's alike).
pub fn preset_json(name: &str) -> Result<Value> {
    Ok(match name {
        "gpt-tiny" => {
            json!({"model_type": "gpt2", "vocab_size": 1024, "n_positions": 128, "n_embd": 128, "n_layer": 4, "n_head": 4})
        }
        // The speed benchmark's sizes (`hearth bench train`, `bench/pytorch_reference.py`): the tiny
        // GPT of issue 8 (0.50M parameters) and a 10.1M one (head dim 64).
        "gpt-bench-tiny" => {
            json!({"model_type": "gpt2", "vocab_size": 512, "n_positions": 256, "n_embd": 128, "n_layer": 2, "n_head": 4})
        }
        "gpt-10m" => {
            json!({"model_type": "gpt2", "vocab_size": 8192, "n_positions": 256, "n_embd": 320, "n_layer": 6, "n_head": 5})
        }
        "gpt2-124m" => {
            json!({"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12})
        }
        "bert-tiny" => json!({"model_type": "bert", "vocab_size": 1024, "hidden_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 512, "max_position_embeddings": 128, "pad_token_id": 0}),
        "bert-base" => json!({"model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512, "pad_token_id": 0}),
        "t5-tiny" => {
            json!({"model_type": "t5", "vocab_size": 1024, "d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 2,
            "num_heads": 4, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": true,
            "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0})
        }
        "t5-base" => {
            json!({"model_type": "t5", "vocab_size": 32128, "d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12,
            "num_heads": 12, "feed_forward_proj": "relu", "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0})
        }
        other => {
            return Err(Error::Config(format!("unknown preset \"{other}\"; choose one of {}", NAMES.join(", "))));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_and_124m_has_its_size() {
        for name in NAMES {
            preset(name, &Default::default()).unwrap();
        }
        let gpt = preset("gpt2-124m", &Default::default()).unwrap();
        let ModelConfig::Gpt2(c) = gpt else { panic!() };
        // 124M: wte 50257·768 + wpe 1024·768 + 12 blocks · (12·768² + 13·768) + ln_f
        let params = 50257 * 768 + 1024 * 768 + 12 * (12 * 768 * 768 + 13 * 768) + 2 * 768;
        assert_eq!(params, 124_439_808);
        assert_eq!(c.n_embd, 768);
        let params = |v: usize, p: usize, d: usize, l: usize| v * d + p * d + l * (12 * d * d + 13 * d) + 2 * d;
        assert_eq!(params(8192, 256, 320, 6), 10_101_760);
        assert_eq!(params(512, 256, 128, 2), 495_104);
        let err = preset("gpt-tiny", &serde_json::from_str(r#"{"n_head": 3}"#).unwrap()).unwrap_err().to_string();
        assert!(err.contains("not divisible"), "{err}");
    }
}
