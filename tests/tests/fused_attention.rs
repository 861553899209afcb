//! The fused WGSL attention (hearth_shaders::attention) against the composition every other
//! backend uses (`composed_attention`, HF eager semantics), on wgpu (lavapipe in CI): the output and
//! the gradients of q, k and v, over random shapes with odd lengths, T=1, cross-attention (tq ≠ tk),
//! head dims 32/64/128, causal masks, key padding, and rows whose keys are all masked (which must
//! come out uniform, as HF's `finfo.min` fill makes them, and never NaN).
//!
//! Tolerance: 1e-4 relative to the reference tensor's largest magnitude, as in `hf_parity`.

use burn::nn::DropoutConfig;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use hearth_core::Backend;
use hearth_core::nn::attention::{AttentionBias, composed_attention, fused_attention, fused_launches};
use hearth_core::parity::check_with;
use hearth_tests::oracle;

const TOLERANCE: f64 = 1e-4;

fn setup() {
    // Mesa warns on every Vulkan start without a runtime dir.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hearth-xdg");
        std::fs::create_dir_all(&dir).ok();
        // SAFETY: set before any thread of this test starts the Vulkan driver.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
}

struct Case {
    b: usize,
    h: usize,
    tq: usize,
    tk: usize,
    dh: usize,
    causal: bool,
    /// Per batch, the number of leading key positions that are real (the rest padding); `None`: no padding.
    keep: Option<Vec<usize>>,
}

fn max_rel(name: &str, ours: TensorData, reference: TensorData) -> f64 {
    let a = ours.try_to_vec::<f32>().unwrap();
    let b = reference.try_to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len(), "{name}: sizes");
    assert!(a.iter().all(|x| x.is_finite()), "{name}: fused result has NaN/inf");
    assert!(b.iter().all(|x| x.is_finite()), "{name}: reference has NaN/inf");
    let mut max_abs = 0f64;
    let mut scale = 0f64;
    for (&x, &y) in a.iter().zip(&b) {
        max_abs = max_abs.max((x as f64 - y as f64).abs());
        scale = scale.max((y as f64).abs());
    }
    max_abs / scale.max(1e-4)
}

fn run(case: &Case) {
    setup();
    let device = Backend::WebGpu.device().autodiff();
    let Case { b, h, tq, tk, dh, causal, .. } = *case;
    let q0 = Tensor::<4>::random([b, h, tq, dh], Distribution::Normal(0.0, 1.0), &device);
    let k0 = Tensor::<4>::random([b, h, tk, dh], Distribution::Normal(0.0, 1.0), &device);
    let v0 = Tensor::<4>::random([b, h, tk, dh], Distribution::Normal(0.0, 1.0), &device);
    let g = Tensor::<4>::random([b, h, tq, dh], Distribution::Normal(0.0, 1.0), &device);
    let mask = case.keep.as_ref().map(|keep| {
        let data: Vec<i64> = keep.iter().flat_map(|&n| (0..tk).map(move |j| (j < n) as i64)).collect();
        Tensor::<2, Int>::from_data(TensorData::new(data, [b, tk]), &device)
    });
    let scale = 1.0 / (dh as f64).sqrt();

    let mut results = Vec::new();
    for fused in [true, false] {
        let (q, k, v) = (q0.clone().require_grad(), k0.clone().require_grad(), v0.clone().require_grad());
        let before = fused_launches();
        let out = if fused {
            let padding = mask.clone().map(|m| m.equal_elem(0));
            fused_attention(q.clone(), k.clone(), v.clone(), causal, padding, scale)
        } else {
            let mut bias = AttentionBias::default();
            if causal {
                bias = bias.with_causal();
            }
            if let Some(m) = mask.clone() {
                bias = bias.with_key_padding(m);
            }
            let dropout = DropoutConfig::new(0.0).init();
            composed_attention(q.clone(), k.clone(), v.clone(), &bias, Some(scale), &dropout)
        };
        assert_eq!(fused_launches() - before, fused as u64, "fused kernel launched only on the fused path");
        let grads = (out.clone() * g.clone()).sum().backward();
        let grad = |t: &Tensor<4>| t.grad(&grads).expect("gradient").into_data();
        results.push((out.into_data(), grad(&q), grad(&k), grad(&v)));
    }
    let (fused, reference) = (results.remove(0), results.remove(0));
    let label = format!("b{b} h{h} tq{tq} tk{tk} dh{dh} causal={causal} keep={:?}", case.keep);
    for (name, ours, theirs) in [
        ("out", fused.0, reference.0),
        ("dq", fused.1, reference.1),
        ("dk", fused.2, reference.2),
        ("dv", fused.3, reference.3),
    ] {
        let rel = max_rel(&format!("{label} {name}"), ours, theirs);
        eprintln!("{label} {name}: {rel:.2e}");
        assert!(rel <= TOLERANCE, "{label} {name}: relative error {rel:.2e} > {TOLERANCE}");
    }
}

fn case(b: usize, h: usize, tq: usize, tk: usize, dh: usize, causal: bool, keep: Option<Vec<usize>>) -> Case {
    Case { b, h, tq, tk, dh, causal, keep }
}

#[test]
fn single_token() {
    run(&case(1, 2, 1, 1, 64, false, None));
    run(&case(2, 1, 1, 1, 32, true, None));
}

#[test]
fn odd_lengths_causal() {
    run(&case(2, 2, 17, 17, 32, true, None));
    run(&case(1, 2, 65, 65, 64, true, None));
    run(&case(1, 1, 100, 100, 64, true, None));
}

#[test]
fn head_dims_16_32_64_128() {
    // 16: the browser demo's tiny models (d 64, 4 heads).
    run(&case(2, 4, 64, 64, 16, true, None));
    run(&case(1, 2, 33, 33, 16, false, None));
    run(&case(1, 2, 33, 33, 32, false, None));
    run(&case(1, 2, 33, 33, 64, false, None));
    run(&case(1, 1, 70, 70, 128, true, None));
    run(&case(1, 1, 33, 33, 128, false, None));
}

#[test]
fn key_padding_with_a_fully_padded_row() {
    // Batch 1 has no real key at all: every row of it is fully masked and must be uniform.
    run(&case(2, 2, 33, 33, 64, false, Some(vec![20, 0])));
    // Causal and padding together (GPT-2 with an attention mask).
    run(&case(2, 2, 65, 65, 32, true, Some(vec![65, 9])));
}

#[test]
fn cross_attention_shapes() {
    // T5 cross-attention: tq ≠ tk, padding on the encoder side.
    run(&case(2, 2, 17, 100, 64, false, Some(vec![100, 37])));
    run(&case(1, 2, 100, 7, 32, false, None));
    // More queries than keys under the causal mask: the first rows see no key (fully masked).
    run(&case(1, 2, 33, 17, 32, true, None));
}

#[test]
fn fully_masked_rows_are_uniform_not_nan() {
    setup();
    let device = Backend::WebGpu.device();
    let (b, h, t, dh) = (1, 1, 5, 32);
    let q = Tensor::<4>::random([b, h, t, dh], Distribution::Normal(0.0, 1.0), &device);
    let k = Tensor::<4>::random([b, h, t, dh], Distribution::Normal(0.0, 1.0), &device);
    let v = Tensor::<4>::random([b, h, t, dh], Distribution::Normal(0.0, 1.0), &device);
    let padding = Tensor::<2, Int>::zeros([b, t], &device).equal_elem(0); // every key padding
    let out = fused_attention(q, k, v.clone(), false, Some(padding), 0.1);
    let mean = v.mean_dim(2).expand([b, h, t, dh]);
    let rel = max_rel("uniform rows", out.into_data(), mean.into_data());
    assert!(rel <= TOLERANCE, "a fully masked row is the mean of V: {rel:.2e}");
}

/// The switch: with the fused path on, GPT-2's HF parity on wgpu runs through the kernel; with it
/// off, it does not, and both match HF.
#[test]
fn the_switch_selects_the_path_and_both_match_hf() {
    setup();
    let (config, model, io) = oracle("gpt2");
    for fused in [true, false] {
        let before = fused_launches();
        let report = check_with(&config, &model, &io, &Backend::WebGpu.device(), TOLERANCE, fused).expect("runs");
        let launched = fused_launches() - before;
        assert!(report.passed(), "gpt2 with fused={fused}: {:?}", report.worst());
        if fused {
            assert!(launched > 0, "the fused kernel ran");
        } else {
            assert_eq!(launched, 0, "the composition ran");
        }
    }
}

/// Mixed precision keeps the fused kernel: f16 q, k, v take its f16 build (f32 accumulation
/// inside), the output and the gradients come back in f16, and they match burn's composition on
/// the same f16 inputs (whose softmax is upcast) to f16's resolution.
#[test]
fn half_precision_inputs_take_the_fused_kernel() {
    use burn::tensor::{DType, FloatDType};
    use hearth_core::nn::scaled_dot_product_attention;
    setup();
    let device = Backend::WebGpu.device().autodiff();
    let shape = [2, 2, 32, 16];
    let half = |t: Tensor<4>| t.cast(FloatDType::F16).require_grad();
    let [q, k, v] = [0, 1, 2].map(|_| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device));
    let dropout = DropoutConfig::new(0.0).init();
    let mut results = Vec::new();
    for fused in [true, false] {
        let (q, k, v) = (half(q.clone()), half(k.clone()), half(v.clone()));
        let before = fused_launches();
        let bias = AttentionBias::default().with_causal().with_fused(fused);
        let out = scaled_dot_product_attention(q.clone(), k.clone(), v.clone(), &bias, Some(0.25), &dropout);
        assert_eq!(fused_launches() - before, fused as u64);
        assert_eq!(out.dtype(), DType::F16);
        let grads = out.clone().cast(FloatDType::F32).sum().backward();
        let dq = q.grad(&grads).expect("a gradient for q");
        assert_eq!(dq.dtype(), DType::F16);
        let f32s = |t: Tensor<4>| t.cast(FloatDType::F32).into_data().try_to_vec::<f32>().unwrap();
        results.push((f32s(out), f32s(dq)));
    }
    for (what, a, b) in [("output", &results[0].0, &results[1].0), ("dq", &results[0].1, &results[1].1)] {
        let gap = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        let scale = b.iter().map(|y| y.abs()).fold(0.0f32, f32::max);
        assert!(gap <= 4e-3 * scale.max(1.0), "{what}: fused vs composed in f16 differ by {gap} (scale {scale})");
    }
}

/// The half-precision kernel (f16 q, k, v, O and gradients, f32 accumulation: what an f16 run
/// takes on a WGSL device with `shader-f16`, lavapipe included) against the f32 kernel on the same
/// values and against the composition in f32. f16 keeps 11 significant bits: 1e-2 relative.
#[test]
fn half_precision_kernel_matches_f32() {
    use burn::tensor::{DType, FloatDType};
    setup();
    let device = Backend::WebGpu.device().autodiff();
    assert!(device.supports_dtype(DType::F16), "lavapipe's WGSL device has f16");
    let (b, h, t, dh) = (2, 3, 37, 32);
    let scale = 1.0 / (dh as f64).sqrt();
    // Values f16 holds exactly, so both runs see the same inputs.
    let rand = |shape: [usize; 4]| {
        Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).cast(FloatDType::F16).cast(FloatDType::F32)
    };
    let (q0, k0, v0, g) = (rand([b, h, t, dh]), rand([b, h, t, dh]), rand([b, h, t, dh]), rand([b, h, t, dh]));
    let pass = |dtype: FloatDType, fused: bool| {
        let cast = |x: &Tensor<4>| x.clone().cast(dtype).require_grad();
        let (q, k, v) = (cast(&q0), cast(&k0), cast(&v0));
        let out = if fused {
            fused_attention(q.clone(), k.clone(), v.clone(), true, None, scale)
        } else {
            let dropout = DropoutConfig::new(0.0).init();
            composed_attention(
                q.clone(),
                k.clone(),
                v.clone(),
                &AttentionBias::default().with_causal(),
                Some(scale),
                &dropout,
            )
        };
        assert_eq!(out.dtype(), DType::from(dtype), "the output keeps the inputs' dtype");
        let grads = (out.clone().cast(FloatDType::F32) * g.clone()).sum().backward();
        let grad = |t: &Tensor<4>| {
            let g = t.grad(&grads).expect("gradient");
            assert_eq!(g.dtype(), DType::from(dtype), "the gradient keeps the dtype");
            g.cast(FloatDType::F32).into_data()
        };
        (out.cast(FloatDType::F32).into_data(), grad(&q), grad(&k), grad(&v))
    };
    let half = pass(FloatDType::F16, true);
    for (what, reference) in
        [("f32 kernel", pass(FloatDType::F32, true)), ("composition", pass(FloatDType::F32, false))]
    {
        for (name, ours, theirs) in [
            ("out", half.0.clone(), reference.0),
            ("dq", half.1.clone(), reference.1),
            ("dk", half.2.clone(), reference.2),
            ("dv", half.3.clone(), reference.3),
        ] {
            let rel = max_rel(&format!("f16 {name} vs {what}"), ours, theirs);
            eprintln!("f16 kernel {name} vs {what}: {rel:.2e}");
            assert!(rel <= 1e-2, "f16 kernel {name} vs {what}: relative error {rel:.2e}");
        }
    }
}

/// Grouped-query attention (LLaMA's): k and v hold fewer heads than q; the kernel reads each
/// shared head in place, the composition reads it repeated (HF's `repeat_kv`). Values and the
/// gradients of q, k and v (each shared head's the sum over its group) agree.
#[test]
fn grouped_query_attention_matches_the_repeated_composition() {
    use hearth_core::nn::attention::repeat_kv;
    setup();
    let device = Backend::WebGpu.device().autodiff();
    for (b, h, kv, t, dh, causal) in [(2, 4, 2, 37, 32, true), (1, 6, 1, 20, 16, false)] {
        let rand = |heads: usize| Tensor::<4>::random([b, heads, t, dh], Distribution::Normal(0.0, 1.0), &device);
        let (q0, k0, v0, g) = (rand(h), rand(kv), rand(kv), rand(h));
        let scale = 1.0 / (dh as f64).sqrt();
        let pass = |fused: bool| {
            let (q, k, v) = (q0.clone().require_grad(), k0.clone().require_grad(), v0.clone().require_grad());
            let before = fused_launches();
            let out = if fused {
                fused_attention(q.clone(), k.clone(), v.clone(), causal, None, scale)
            } else {
                let bias = if causal { AttentionBias::default().with_causal() } else { AttentionBias::default() };
                let dropout = DropoutConfig::new(0.0).init();
                composed_attention(
                    q.clone(),
                    repeat_kv(k.clone(), h),
                    repeat_kv(v.clone(), h),
                    &bias,
                    Some(scale),
                    &dropout,
                )
            };
            assert_eq!(fused_launches() - before, fused as u64);
            let grads = (out.clone() * g.clone()).sum().backward();
            let grad = |t: &Tensor<4>| t.grad(&grads).expect("gradient").into_data();
            (out.into_data(), grad(&q), grad(&k), grad(&v))
        };
        let (fused, reference) = (pass(true), pass(false));
        for (name, ours, theirs) in [
            ("out", fused.0, reference.0),
            ("dq", fused.1, reference.1),
            ("dk", fused.2, reference.2),
            ("dv", fused.3, reference.3),
        ] {
            let rel = max_rel(&format!("h{h} kv{kv} {name}"), ours, theirs);
            assert!(rel <= TOLERANCE, "h{h} kv{kv} {name}: relative error {rel:.2e} > {TOLERANCE}");
        }
    }
}
