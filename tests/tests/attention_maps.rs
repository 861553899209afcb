//! `attention_maps` against transformers: the weights of every layer and head of the oracle GPT-2,
//! BERT and T5 (encoder, decoder and cross attention) equal those `output_attentions=True` gives
//! (`tests/hf/write_attention_references.py`, eager attention), and every row sums to 1.

use burn::tensor::Device;
use hearth_core::Model;
use hearth_core::ModelConfig;
use hearth_core::attention_maps::{Stack, attention_maps};
use hearth_core::hf::weights::SafetensorsFile;
use hearth_core::readback::block_on;
use hearth_tests::{fixture, oracle};

fn check(family: &str, expected_maps: usize) {
    let (config, weights, _) = oracle(family);
    let config = ModelConfig::from_json(&config).unwrap();
    let device = Device::flex();
    let model = Model::from_hf(&config, &weights, &device).unwrap();
    let bytes = std::fs::read(fixture(&format!("oracle/{family}/attentions.safetensors"))).unwrap();
    let reference = SafetensorsFile::parse(&bytes).unwrap();
    let ids = |name: &str| -> Vec<u32> {
        reference.i64(name).unwrap().try_to_vec::<i64>().unwrap().into_iter().map(|t| t as u32).collect()
    };
    let decoder = reference.contains("decoder_input_ids").then(|| ids("decoder_input_ids"));
    let maps = block_on(attention_maps(&model, &ids("input_ids"), decoder.as_deref(), &device)).unwrap();
    assert_eq!(maps.len(), expected_maps, "{family}");
    for map in &maps {
        let name = match map.stack {
            Stack::SelfAttention => "self",
            Stack::Encoder => "encoder",
            Stack::Decoder => "decoder",
            Stack::Cross => "cross",
        };
        let want = reference.f32(&format!("{name}.{}", map.layer)).unwrap();
        assert_eq!(want.shape().as_slice(), [map.heads, map.queries, map.keys], "{family} {name}.{}", map.layer);
        let want = want.try_to_vec::<f32>().unwrap();
        let worst = map.weights.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{family} {name}.{}: off by {worst}", map.layer);
        for row in map.weights.chunks(map.keys) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{family} {name}.{}: a row sums to 1", map.layer);
        }
    }
    // Causal maps never look ahead.
    for map in maps.iter().filter(|m| m.stack == Stack::Decoder || (family == "gpt2")) {
        for q in 0..map.queries {
            assert!(map.head(0)[q * map.keys + q + 1..(q + 1) * map.keys].iter().all(|&w| w == 0.0));
        }
    }
}

#[test]
fn gpt2_attention_maps_match_transformers() {
    check("gpt2", 2);
}

#[test]
fn bert_attention_maps_match_transformers() {
    check("bert", 2);
}

#[test]
fn t5_encoder_decoder_and_cross_attention_match_transformers() {
    check("t5", 6);
}
