//! Hand-written WGSL kernels for Hearth, registered as burn custom ops on the wgpu backend, each
//! beside its plain reference (see README.md).

pub mod attention;
pub mod memory;
