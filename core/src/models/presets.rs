//! Named model sizes: tiny ones that train in minutes on a CPU or in a browser, and the classic
//! full sizes (GPT-2 124M, BERT-base, T5-base, a 135M LLaMA) with HF's own hyper-parameters. Each
//! family lists its own (`Family::PRESETS`, in its model file); this module looks them up.

use serde_json::Value;

use super::ModelConfig;
use crate::error::{Error, Result};

/// Every preset's name, in registry order.
pub fn names() -> Vec<&'static str> {
    ModelConfig::presets().into_iter().map(|(name, _, _)| name).collect()
}

/// The HF `config.json` of preset `name`, with `overrides` applied (keys as HF spells them).
pub fn preset(name: &str, overrides: &serde_json::Map<String, Value>) -> Result<ModelConfig> {
    let mut config = preset_json(name)?;
    let map = config.as_object_mut().expect("an object");
    for (k, v) in overrides {
        map.insert(k.clone(), v.clone());
    }
    ModelConfig::from_json(config.to_string().as_bytes())
}

/// The hyper-parameters preset `name` sets, as HF `config.json` keys with its `model_type` (the
/// rest are the family's defaults, HF's and Hearth's alike).
pub fn preset_json(name: &str) -> Result<Value> {
    let Some((_, model_type, keys)) = ModelConfig::presets().into_iter().find(|(n, _, _)| *n == name) else {
        return Err(Error::Config(format!("unknown preset \"{name}\"; choose one of {}", names().join(", "))));
    };
    let mut value: Value = serde_json::from_str(keys).expect("a preset's keys are JSON");
    value["model_type"] = model_type.into();
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_and_124m_has_its_size() {
        for name in names() {
            preset(name, &Default::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
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
        // SmolLM2-135M's shape: 134.5M parameters (tied head).
        let llama = preset("llama-135m", &Default::default()).unwrap();
        let ModelConfig::Llama(c) = llama else { panic!() };
        let (d, f, l, kv) = (576, 1536, 30, 3 * 64);
        let params = 49152 * d + l * (d * d + 2 * d * kv + d * d + 3 * d * f + 2 * d) + d;
        assert_eq!(params, 134_515_008);
        assert_eq!((c.head_dim(), c.kv_heads()), (64, 3));
    }
}
