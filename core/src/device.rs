//! Choosing the burn device at run time.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, DeviceKind};

/// The backends a Hearth build holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// burn's wgpu backend: Vulkan, Metal, DX12 or WebGPU, whichever the platform has.
    Wgpu,
    /// burn's pure-Rust CPU backend.
    Flex,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Wgpu, Backend::Flex];

    pub fn device(self) -> Device {
        match self {
            Backend::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
            Backend::Flex => Device::flex(),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Wgpu => "wgpu",
            Backend::Flex => "flex",
        })
    }
}

impl FromStr for Backend {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "wgpu" => Ok(Backend::Wgpu),
            "flex" | "cpu" => Ok(Backend::Flex),
            other => {
                Err(crate::error::Error::Config(format!("unknown backend \"{other}\"; choose \"wgpu\" or \"flex\"")))
            }
        }
    }
}
