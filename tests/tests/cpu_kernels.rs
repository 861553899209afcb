//! The CPU kernels (`hearth_shaders::cpu`: LayerNorm, RMS norm, GELU, cross-entropy, attention) in real
//! training on flex: the same steps of the same run with the kernels and with burn's composition
//! (the path before them, and every other backend's) give the same loss at every step and the same
//! weights at the end (1e-5 per step for the loss, 5e-4 for the weights, see below). Each kernel's own test (values and gradients against the
//! composition) is beside it in `shaders/src/cpu/`.

use burn::module::Module;
use burn::tensor::Tensor;
use hearth_core::models::presets::preset;
use hearth_core::objectives::Collator;
use hearth_core::objectives::masked::MaskingConfig;
use hearth_core::objectives::span::SpanCorruption;
use hearth_core::train::{TrainConfig, Trainer};
use hearth_core::{Backend, Model};

const STEPS: usize = 6;

fn config() -> TrainConfig {
    TrainConfig { batch_size: 4, block_size: 48, max_steps: STEPS as u64, warmup_steps: 2, ..TrainConfig::default() }
}

fn tokens(vocab: u32) -> Vec<u32> {
    hearth_tests::random_tokens(7, vocab, 20_000)
}

fn model_config(name: &str) -> hearth_core::ModelConfig {
    let mut config = preset(name, &Default::default()).unwrap();
    config.set_dropout(0.0);
    config
}

/// Every parameter of a model, flattened in module order.
fn weights<M: Module>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// The losses of `STEPS` steps from `model` and the final weights, with the CPU kernels on or off.
fn run(name: &str, model: Model, kernels: bool) -> (Vec<f64>, Vec<f32>) {
    hearth_shaders::cpu::set_enabled(kernels);
    let device = Backend::Flex.device();
    let model_config = model_config(name);
    let cfg = config();
    let (losses, weights) = match model {
        Model::Gpt2(_) | Model::Llama(_) => {
            let data = tokens(512);
            let mut t = Trainer::new(model, model_config, cfg, Collator::Causal, &device);
            let losses = (0..STEPS).map(|_| t.step_and_read(&data).unwrap().loss).collect();
            (losses, weights(&t.model))
        }
        Model::Bert(_) => {
            let data = tokens(1000);
            let masking = MaskingConfig::bert(1000, 1024, vec![1001, 1002, 1003]);
            let objective = Collator::Masked { masking, cls: 1001, sep: 1002, word_start: None };
            let mut t = Trainer::new(model, model_config, cfg, objective, &device);
            let losses = (0..STEPS).map(|_| t.step_and_read(&data).unwrap().loss).collect();
            (losses, weights(&t.model))
        }
        Model::T5(_) => {
            let data: Vec<u32> = tokens(990).into_iter().map(|t| t + 2).collect(); // not pad (0) or eos (1)
            let corruption = SpanCorruption::t5((1000..1024).rev().collect(), 1);
            let objective = Collator::Span { corruption, pad: 0, decoder_start: 0, whole_target: false };
            let mut t = Trainer::new(model, model_config, cfg, objective, &device);
            let losses = (0..STEPS).map(|_| t.step_and_read(&data).unwrap().loss).collect();
            (losses, weights(&t.model))
        }
    };
    hearth_shaders::cpu::set_enabled(true);
    (losses, weights)
}

fn assert_same_run(name: &str) {
    // One initial model for both runs (the device's generator is shared by the tests' threads).
    // No dropout: its masks come from that generator too, and attention dropout takes the composition.
    let model = model_config(name).init(&Backend::Flex.device());
    let (losses, w) = run(name, model.clone(), true);
    let (losses0, w0) = run(name, model, false);
    for (step, (a, b)) in losses.iter().zip(&losses0).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{name} step {}: loss {a} with the kernels, {b} without",
            step + 1
        );
    }
    assert!(losses.iter().all(|l| l.is_finite()), "{name}: {losses:?}");
    assert_ne!(losses[0], losses[STEPS - 1], "{name}: the run did not train");
    let worst = w.iter().zip(&w0).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    // AdamW divides each gradient by its running RMS, so a float-order difference in a near-zero
    // gradient moves a weight by up to lr (3e-3) per step: 5e-4 is 3% of what 6 steps can move one
    // (seen: up to 8e-5 for T5), while a wrong gradient moves many weights by ~lr each step.
    assert!(worst <= 5e-4, "{name}: weights differ by {worst:e} after {STEPS} steps");
    let loss_diff = losses.iter().zip(&losses0).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    println!("{name}: largest loss difference {loss_diff:e} over {STEPS} steps, weights {worst:e}");
}

#[test]
fn gpt2_trains_the_same_with_and_without_the_cpu_kernels() {
    assert_same_run("gpt-bench-tiny");
}

/// T5: RMS norm and gated GELU through the kernels; its attention keeps the composition (the
/// relative position bias is additive), its loss takes the kernel.
#[test]
fn t5_trains_the_same_with_and_without_the_cpu_kernels() {
    assert_same_run("t5-tiny");
}

/// LLaMA: RMS norm, SwiGLU and grouped-query attention through the kernels.
#[test]
fn llama_trains_the_same_with_and_without_the_cpu_kernels() {
    assert_same_run("llama-tiny");
}

#[test]
fn bert_trains_the_same_with_and_without_the_cpu_kernels() {
    assert_same_run("bert-tiny");
}
