//! The two dtype helpers of mixed precision that the layers use: the f32-only ops (norms, softmax,
//! the loss) upcast their input and return the result in the input's dtype.

use burn::tensor::{DType, FloatDType, Tensor};

/// `x` in f32 with its dtype before, for an op that must run in f32 (norms, softmax, the loss);
/// f32 input passes through untouched (no graph node).
pub fn upcast<const D: usize>(x: Tensor<D>) -> (Tensor<D>, DType) {
    let dtype = x.dtype();
    if dtype == DType::F32 { (x, dtype) } else { (x.cast(FloatDType::F32), dtype) }
}

/// `x` back in `dtype` (from [`upcast`]).
pub fn downcast<const D: usize>(x: Tensor<D>, dtype: DType) -> Tensor<D> {
    if x.dtype() == dtype { x } else { x.cast(FloatDType::from(dtype)) }
}

/// `f` on `x` in f32, the result in `x`'s dtype (for the CPU kernels, which take f32).
pub fn in_f32<const D: usize>(x: Tensor<D>, f: impl FnOnce(Tensor<D>) -> Tensor<D>) -> Tensor<D> {
    let (x, dtype) = upcast(x);
    downcast(f(x), dtype)
}
