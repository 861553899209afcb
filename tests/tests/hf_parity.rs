//! Hugging Face parity: Hearth's GPT-2, BERT and T5 reproduce the logits, loss and the gradient of
//! every parameter that `transformers` computed for the same weights and inputs, on the wgpu
//! backend under both of its shader compilers — WGSL (`webgpu`: the fused attention kernel) and
//! SPIR-V (`vulkan`: what a hardware Vulkan adapter runs; lavapipe in CI) — and on the CPU
//! backend `flex`.
//!
//! Tolerance: 1e-4 relative to each reference tensor's largest magnitude (see
//! `hearth_core::parity`). Both sides compute in f32 but sum in different orders (matmul tiling,
//! softmax and layer-norm reductions), which leaves differences of a few 1e-6 relative; 1e-4 gives
//! an order of magnitude of headroom and still fails on any real mistake (a wrong activation, a
//! missing scale or mask moves these outputs by 1e-2 or more).

use hearth_core::Backend;
use hearth_core::nn::attention::fused_launches;
use hearth_core::parity::{ParityReport, check};
use hearth_tests::oracle;

const TOLERANCE: f64 = 1e-4;

fn parity(family: &str, backend: Backend) -> ParityReport {
    let (config, model, io) = oracle(family);
    if backend == Backend::Vulkan {
        // What a hardware Vulkan adapter runs: the SPIR-V compiler.
        let language = hearth_shaders::device::shader_language(&backend.device());
        assert_eq!(language, Some(hearth_shaders::device::ShaderLanguage::SpirV), "vulkan compiles SPIR-V");
    }
    let before = fused_launches();
    let report = check(&config, &model, &io, &backend.device(), TOLERANCE).expect("parity check runs");
    // The fused WGSL attention kernel (on by default) runs where wgpu compiles WGSL, and only
    // there: SPIR-V cannot load it (burn's composition runs), flex has its own CPU kernel.
    let launched = fused_launches() - before;
    match backend {
        Backend::WebGpu => assert!(launched > 0, "{family} on webgpu ran the fused attention kernel"),
        _ => assert_eq!(launched, 0, "{family} on {backend} did not run the WGSL kernel"),
    }
    let worst = report.worst().expect("outputs compared");
    eprintln!("{family} on {backend}: {} outputs, worst {} at {:.2e}", report.rows.len(), worst.name, worst.max_rel);
    report
}

fn assert_parity(family: &str, backend: Backend, expected_grads: usize) {
    let report = parity(family, backend);
    let failures: Vec<String> = report
        .rows
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: rel {:.2e} abs {:.2e}", r.name, r.max_rel, r.max_abs))
        .collect();
    assert!(failures.is_empty(), "{family} on {backend} exceeds {TOLERANCE}: {failures:#?}");
    assert!(report.unmatched.is_empty(), "unmatched gradients: {:?}", report.unmatched);
    let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"logits") && names.contains(&"loss"), "logits and loss compared: {names:?}");
    let grads = names.iter().filter(|n| n.starts_with("grad.")).count();
    assert_eq!(grads, expected_grads, "every parameter's gradient compared");
}

#[test]
fn gpt2_matches_hf_on_flex() {
    assert_parity("gpt2", Backend::Flex, 28);
}

#[test]
fn bert_matches_hf_on_flex() {
    assert_parity("bert", Backend::Flex, 42);
}

#[test]
fn t5_matches_hf_on_flex() {
    assert_parity("t5", Backend::Flex, 51);
}

/// LLaMA with grouped-query attention (4 query heads over 2 key/value heads), head_dim 24 ≠
/// hidden / heads, an untied head.
#[test]
fn llama_matches_hf_on_flex() {
    assert_parity("llama", Backend::Flex, 21);
}

/// LLaMA with biases on q, k, v, o (`attention_bias`, what Qwen2 sets), one key/value head (MQA),
/// a tied head.
#[test]
fn llama_with_biases_matches_hf_on_flex() {
    assert_parity("llama_bias", Backend::Flex, 28);
}

#[test]
fn llama_matches_hf_on_wgpu_wgsl() {
    assert_parity("llama", Backend::WebGpu, 21);
}

#[test]
fn llama_with_biases_matches_hf_on_wgpu_spirv() {
    assert_parity("llama_bias", Backend::Vulkan, 28);
}

#[test]
fn gpt2_matches_hf_on_wgpu_wgsl() {
    assert_parity("gpt2", Backend::WebGpu, 28);
}

#[test]
fn bert_matches_hf_on_wgpu_wgsl() {
    assert_parity("bert", Backend::WebGpu, 42);
}

#[test]
fn t5_matches_hf_on_wgpu_wgsl() {
    assert_parity("t5", Backend::WebGpu, 51);
}

#[test]
fn gpt2_matches_hf_on_wgpu_spirv() {
    assert_parity("gpt2", Backend::Vulkan, 28);
}

#[test]
fn bert_matches_hf_on_wgpu_spirv() {
    assert_parity("bert", Backend::Vulkan, 42);
}

#[test]
fn t5_matches_hf_on_wgpu_spirv() {
    assert_parity("t5", Backend::Vulkan, 51);
}
