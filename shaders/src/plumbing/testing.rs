//! What the kernel tests share: random tensors on flex with autodiff, and a comparison.

use burn::tensor::{Device, Tensor, TensorData};

pub fn device() -> Device {
    Device::flex().autodiff()
}

/// Uniform in [-1, 1), the same for the same seed.
pub fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
    let n = shape.iter().product();
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(data, shape), &device())
}

/// `a` and `b` agree within `tol` relative to `b`'s largest magnitude.
pub fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let a: Vec<f32> = a.into_data().try_to_vec().unwrap();
    let b: Vec<f32> = b.into_data().try_to_vec().unwrap();
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst <= tol * scale, "{what}: largest difference {worst:e} against a largest value {scale:e}");
}
