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
