//! What a cubecl device compiles its kernels to, read from the device itself: the hand-written
//! kernels are WGSL templates, which only a runtime compiling WGSL can load.

use burn::backend::DispatchDevice;
use burn::cubecl::client::Client;
use burn::tensor::Device;

/// The language a cubecl device's kernels are compiled to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShaderLanguage {
    /// wgpu's WGSL compiler (browsers' WebGPU, Metal, DX12; Vulkan when WGSL is chosen).
    Wgsl,
    /// wgpu's SPIR-V compiler (Vulkan: cooperative-matrix matmuls, bf16 where the driver has it).
    SpirV,
    /// Another cubecl runtime (`cuda`, …), by its runtime name.
    Other(&'static str),
}

/// The cubecl client of `device` (autodiff or not), `None` for other backends.
pub(crate) fn client(device: &Device) -> Option<Client> {
    let mut d = device.as_dispatch();
    if let DispatchDevice::Autodiff(inner) = d {
        d = inner;
    }
    match d {
        DispatchDevice::Cube(cube) => Some(cube.client()),
        _ => None,
    }
}

/// The runtime name cubecl gives `device` (`wgpu<wgsl>`, `wgpu<spirv>`, `cuda`; opens the device),
/// `None` for a device that is not a cubecl one (flex).
pub fn runtime_name(device: &Device) -> Option<&'static str> {
    client(device).map(|c| c.name())
}

/// What `device` compiles kernels to (`None` for a device that is not a cubecl one).
pub fn shader_language(device: &Device) -> Option<ShaderLanguage> {
    runtime_name(device).map(|name| match name {
        "wgpu<wgsl>" => ShaderLanguage::Wgsl,
        "wgpu<spirv>" => ShaderLanguage::SpirV,
        other => ShaderLanguage::Other(other),
    })
}
