//! Hugging Face parity: Hearth's GPT-2, BERT and T5 reproduce the logits, loss and the gradient of
//! every parameter that `transformers` computed for the same weights and inputs, on the wgpu
//! backend (lavapipe in CI) and on the CPU backend `flex`.
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
    let before = fused_launches();
    let report = check(&config, &model, &io, &backend.device(), TOLERANCE).expect("parity check runs");
    // The fused attention kernel (on by default) runs on wgpu, and only there. Per-thread counter.
    let launched = fused_launches() - before;
    match backend {
        Backend::Wgpu => assert!(launched > 0, "{family} on wgpu ran the fused attention kernel"),
        Backend::Flex => assert_eq!(launched, 0, "{family} on flex used the composition"),
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

#[test]
fn gpt2_matches_hf_on_wgpu() {
    assert_parity("gpt2", Backend::Wgpu, 28);
}

#[test]
fn bert_matches_hf_on_wgpu() {
    assert_parity("bert", Backend::Wgpu, 42);
}

#[test]
fn t5_matches_hf_on_wgpu() {
    assert_parity("t5", Backend::Wgpu, 51);
}
