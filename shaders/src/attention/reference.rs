//! The plain reference the fused kernels are tested against (llm.c style: the obvious composition
//! beside the kernel). Same semantics as `hearth_core::nn::attention::scaled_dot_product_attention`
//! without bias or dropout: masked scores are set to `f32::MIN`, so a fully masked row is uniform.

use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int, Tensor};

/// `q [b, h, tq, dh]`, `k, v [b, h, tk, dh]`, `key_padding [b, tk]` (non-zero = masked) -> `[b, h, tq, dh]`.
/// Causal: query `i` sees key `j <= i + tk - tq`.
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    key_padding: Option<Tensor<2, Int>>,
    scale: f32,
    causal: bool,
) -> Tensor<4> {
    let [b, _, tq, _] = q.dims();
    let tk = k.dims()[2];
    let device = q.device();
    let mut scores = q.matmul(k.swap_dims(2, 3)) * scale; // [b, h, tq, tk]
    let mut mask: Option<Tensor<4, Bool>> = None;
    if causal {
        let offset = tk as i64 - tq as i64;
        // burn names masks after what they keep: `tril_mask` is true above the (offset) diagonal.
        mask = Some(Tensor::<2, Bool>::tril_mask([tq, tk], offset, &device).unsqueeze::<4>());
    }
    if let Some(pad) = key_padding {
        let m = pad.not_equal_elem(0).reshape([b, 1, 1, tk]);
        mask = Some(match mask {
            None => m,
            Some(c) => c.expand([b, 1, tq, tk]).bool_or(m.expand([b, 1, tq, tk])),
        });
    }
    if let Some(mask) = mask {
        let shape = scores.dims();
        scores = scores.mask_fill(mask.expand(shape), f32::MIN);
    }
    softmax(scores, 3).matmul(v)
}

#[cfg(test)]
mod tests {
    use burn::backend::Dispatch;
    use burn::tensor::{Device, DeviceKind, Distribution, Int, Tensor, TensorData};

    use super::attention;
    use crate::attention::FusedAttentionOps;

    /// The kernel beside its reference, on wgpu, with autodiff: values and the three gradients.
    /// (The wider sweep of shapes is `tests/tests/fused_attention.rs`.)
    #[test]
    fn fused_kernel_matches_the_reference() {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // SAFETY: set before this test starts the Vulkan driver; Mesa only warns without it.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
        }
        // The kernels are WGSL: a device not pinned to Vulkan compiles WGSL once asked to (the
        // `webgpu` backend's choice; `Device::wgpu` would take SPIR-V on a Vulkan adapter).
        burn::cubecl::wgpu::set_force_wgsl(true);
        let device = Device::wgpu(DeviceKind::DefaultDevice).autodiff();
        let (b, h, t, dh) = (2, 2, 37, 64);
        let rand = |shape| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let (q, k, v, g) = (rand([b, h, t, dh]), rand([b, h, t, dh]), rand([b, h, t, dh]), rand([b, h, t, dh]));
        let keep: Vec<i64> = (0..b * t).map(|x| (x % t < if x < t { t } else { 20 }) as i64).collect();
        let padding = Tensor::<2, Int>::from_data(TensorData::new(keep, [b, t]), &device).equal_elem(0).int();
        let scale = 0.125;
        let run = |fused: bool| {
            let (q, k, v) = (q.clone().require_grad(), k.clone().require_grad(), v.clone().require_grad());
            let out = if fused {
                Tensor::from_dispatch(Dispatch::fused_attention(
                    q.clone().into_dispatch(),
                    k.clone().into_dispatch(),
                    v.clone().into_dispatch(),
                    padding.clone().into_dispatch(),
                    scale,
                    true,
                    true,
                ))
            } else {
                attention(q.clone(), k.clone(), v.clone(), Some(padding.clone()), scale, true)
            };
            let grads = (out.clone() * g.clone()).sum().backward();
            [out, q.grad(&grads).unwrap(), k.grad(&grads).unwrap(), v.grad(&grads).unwrap()].map(|x| x.into_data())
        };
        let (ours, reference) = (run(true), run(false));
        for (name, (a, r)) in ["out", "dq", "dk", "dv"].iter().zip(ours.iter().zip(&reference)) {
            let (a, r) = (a.try_to_vec::<f32>().unwrap(), r.try_to_vec::<f32>().unwrap());
            let scale = r.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-4);
            let err = a.iter().zip(&r).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
            assert!(err < 1e-4, "{name}: relative error {err:.2e}");
        }
    }
}
