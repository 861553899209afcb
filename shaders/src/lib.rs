//! Hand-written WGSL kernels for Hearth, registered as burn custom ops (see README.md). Empty until
//! the fused attention lands.
