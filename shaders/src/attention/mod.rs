//! Fused scaled-dot-product attention, forward and backward, as burn custom operations with a
//! real Autodiff backward: its WGSL kernels for the wgpu (Cube) backend (`wgsl.rs`, the backward's
//! bookkeeping in `wgsl_backward.rs`), its CPU kernel for flex (`cpu.rs`), and the plain
//! reference both are tested against (`reference.rs`), side by side.
//!
//! - `prologue.wgsl`: what every kernel starts with (the f16 switch, the sizes, the sentinels).
//! - `forward.wgsl`: O and the per-row log-sum-exp, online softmax over key tiles.
//! - `backward_prep.wgsl`: delta = rowsum(dO ∘ O) (and the aux buffer the next two read).
//! - `backward_dkdv.wgsl`: dK, dV, one workgroup per key tile looping over query tiles.
//! - `backward_dq.wgsl`: dQ, one workgroup per query tile looping over key tiles.
//!
//! Semantics are those of [`reference::attention`]: `softmax(q·kᵀ·scale, masked) · v` with masked
//! scores at `f32::MIN` (HF eager attention), so a fully masked row is uniform over all keys.
//! Masks: a causal flag (query `i` sees key `j <= i + tk - tq`) and a key-padding `[b, tk]` int
//! tensor (non-zero = masked). No additive bias and no dropout: callers fall back to the
//! composition for those (see `hearth_core::nn::attention`).
//!
//! The head dimension is a compile-time constant of each kernel (`{{ head_dim }}`), so every head
//! size gets its own specialised pipeline; any sequence length works (ragged last tiles).

pub mod cpu;
pub mod reference;
mod wgsl;
mod wgsl_backward;

pub use wgsl::*;

/// The sizes and flags of one call, as both kernels read them: `q [b, h, tq, dh]`, `k, v [b, kv,
/// tk, dh]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub b: usize,
    pub h: usize,
    /// Key/value heads (`h` without grouped-query attention); each serves `h / kv` query heads.
    pub kv: usize,
    pub tq: usize,
    pub tk: usize,
    pub dh: usize,
    pub scale: f32,
    pub causal: bool,
}

impl Sizes {
    /// From the shapes of q and k (`[b, h, t, dh]` each).
    pub(crate) fn new(q: &burn::tensor::Shape, k: &burn::tensor::Shape, scale: f32, causal: bool) -> Self {
        assert!(q.num_dims() == 4 && k.num_dims() == 4, "attention takes [b, h, t, dh]");
        Sizes { b: q[0], h: q[1], kv: k[1], tq: q[2], tk: k[2], dh: q[3], scale, causal }
    }

    /// The key/value head query head `hi` reads.
    pub(crate) fn kv_head(&self, hi: usize) -> usize {
        hi / (self.h / self.kv)
    }

    /// Keys query `i` sees before the padding: `0..end` (for `tq == tk` and causal: `0..=i`).
    pub(crate) fn key_end(&self, i: usize) -> usize {
        if self.causal { (i + 1 + self.tk).saturating_sub(self.tq).min(self.tk) } else { self.tk }
    }
}
