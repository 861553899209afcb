//! A training step reads nothing back from the device: its loss and gradient norm stay there
//! (clipping is computed there too) until the front end asks for a step's numbers, which is one
//! read for every step since the last. Counted by `hearth_core::readback::reads`, on flex and on
//! wgpu under both compilers. And a non-finite loss is still caught at that read, naming the first
//! step it happened at — the same step a run reading every step names.
//!
//! One test function: the read counter is process-wide, so nothing else may run beside it.

use hearth_core::models::presets::preset;
use hearth_core::objectives::Collator;
use hearth_core::readback::reads;
use hearth_core::train::{Precision, TrainConfig, Trainer};
use hearth_core::{Backend, Error};

fn tokens(vocab: u32) -> Vec<u32> {
    hearth_tests::random_tokens(11, vocab, 20_000)
}

fn trainer(backend: Backend, config: TrainConfig) -> Trainer {
    let device = backend.device();
    let mut model_config = preset("gpt-bench-tiny", &Default::default()).unwrap();
    model_config.set_dropout(0.0);
    device.seed(5);
    let model = model_config.init(&device);
    Trainer::new(model, model_config, config, Collator::Causal, &device)
}

fn config() -> TrainConfig {
    TrainConfig {
        batch_size: 4,
        block_size: 32,
        max_steps: 100,
        warmup_steps: 2,
        grad_clip: 0.5,
        ..TrainConfig::default()
    }
}

#[test]
fn steps_read_nothing_until_their_numbers_are_asked_for() {
    let data = tokens(512);
    for backend in [Backend::Flex, Backend::WebGpu, Backend::Vulkan] {
        let mut t = trainer(backend, config());
        let before = reads();
        for _ in 0..5 {
            t.step(&data).unwrap();
        }
        assert_eq!(reads() - before, 0, "{backend}: 5 steps without logging read nothing back");
        let stats = hearth_core::readback::block_on(t.read_stats()).unwrap();
        assert_eq!(reads() - before, 1, "{backend}: one read for the five steps' numbers");
        assert_eq!(stats.iter().map(|s| s.step).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert!(stats.iter().all(|s| s.loss.is_finite() && s.grad_norm > 0.0), "{backend}: {stats:?}");
        // The clipped run's numbers are the ones a run reading every step sees.
        let mut every = trainer(backend, config());
        let each: Vec<(f64, f64)> = (0..5)
            .map(|_| {
                let s = every.step_and_read(&data).unwrap();
                (s.loss, s.grad_norm)
            })
            .collect();
        let batched: Vec<(f64, f64)> = stats.iter().map(|s| (s.loss, s.grad_norm)).collect();
        assert_eq!(each, batched, "{backend}: the same numbers, read late or at once");
    }

    // f16 (WGSL on lavapipe has it): the loss scaler reads once per step, as GradScaler does.
    let mut t = trainer(Backend::WebGpu, TrainConfig { precision: Precision::F16, ..config() });
    assert_eq!(t.precision(), Precision::F16, "lavapipe's WGSL device has f16");
    let before = reads();
    for _ in 0..3 {
        t.step(&data).unwrap();
    }
    assert_eq!(reads() - before, 3, "f16: one read per step for the loss scaler");

    // A run that diverges: the first non-finite step is named at the read, as a run reading
    // every step names it.
    let diverging = || TrainConfig { lr: 1e6, warmup_steps: 0, grad_clip: 0.0, ..config() };
    let mut each = trainer(Backend::Flex, diverging());
    let first_bad = (0..40)
        .find_map(|_| match each.step_and_read(&data) {
            Err(Error::NonFinite { step, .. }) => Some(step),
            Err(e) => panic!("{e}"),
            Ok(_) => None,
        })
        .expect("lr 1e6 diverges within 40 steps");
    let mut late = trainer(Backend::Flex, diverging());
    for _ in 0..first_bad + 3 {
        late.step(&data).unwrap();
    }
    match hearth_core::readback::block_on(late.read_stats()) {
        Err(Error::NonFinite { step, .. }) => assert_eq!(step, first_bad, "the first non-finite step is named"),
        other => panic!("expected a non-finite loss, got {other:?}"),
    }
}
