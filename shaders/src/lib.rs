//! Hand-written kernels for Hearth, registered as burn custom ops with their own backward, each
//! beside its plain reference (see README.md): WGSL on the wgpu backend (`attention`), vectorised
//! and threaded Rust on the flex CPU backend (`cpu`).

pub mod attention;
pub mod cpu;
pub mod device;
pub mod memory;
pub mod plumbing;
