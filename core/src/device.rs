//! Choosing the burn device at run time, and how a GPU device runs burn's kernels.
//!
//! The backend names are burn's own (its cargo features): `wgpu` lets the adapter decide the
//! shader compiler, `vulkan` pins wgpu to Vulkan and its SPIR-V compiler (cooperative-matrix
//! matmuls, bf16 where the driver has it), `webgpu` pins the WGSL compiler (the browser's
//! language, and the one Hearth's hand-written attention kernels are written in), `cuda` is burn's
//! CUDA runtime (builds with the `cuda` feature), `flex` burn's pure-Rust CPU backend.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, DeviceKind};

/// The backends a Hearth build holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// burn's wgpu backend on whichever graphics API the platform has, the compiler chosen for the
    /// adapter: SPIR-V on a hardware Vulkan adapter, WGSL elsewhere (software renderers, Metal,
    /// DX12, browsers). [`Backend::resolve`] says which.
    Wgpu,
    /// wgpu on Vulkan with the SPIR-V compiler (native builds).
    Vulkan,
    /// wgpu with the WGSL compiler on any graphics API.
    WebGpu,
    /// burn's CUDA runtime (the `cuda` feature; the driver is loaded at run time).
    #[cfg(feature = "cuda")]
    Cuda,
    /// burn's pure-Rust CPU backend.
    Flex,
}

impl Backend {
    /// Every backend this build holds, as `--backend` names them.
    pub fn all() -> Vec<Backend> {
        let mut all = vec![Backend::Wgpu];
        if cfg!(not(target_family = "wasm")) {
            all.push(Backend::Vulkan);
        }
        all.push(Backend::WebGpu);
        #[cfg(feature = "cuda")]
        all.push(Backend::Cuda);
        all.push(Backend::Flex);
        all
    }

    /// The device of this backend. `Wgpu` is resolved first ([`Backend::resolve`]).
    pub fn device(self) -> Device {
        match self.resolve() {
            #[cfg(not(target_family = "wasm"))]
            Backend::Vulkan => Device::vulkan(DeviceKind::DefaultDevice),
            #[cfg(target_family = "wasm")]
            Backend::Vulkan => Device::wgpu(DeviceKind::DefaultDevice),
            Backend::Wgpu | Backend::WebGpu => {
                force_wgsl();
                Device::wgpu(DeviceKind::DefaultDevice)
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => Device::cuda(0),
            Backend::Flex => Device::flex(),
        }
    }

    /// `Wgpu` as the backend it runs on here: `Vulkan` (SPIR-V) where a hardware Vulkan adapter
    /// exists, `WebGpu` (WGSL) otherwise — a software renderer (lavapipe, SwiftShader, WARP), where
    /// the hand-written WGSL kernels are the faster path, Metal and DX12, and every browser.
    /// The others are themselves.
    pub fn resolve(self) -> Backend {
        match self {
            Backend::Wgpu if hardware_vulkan_adapter().is_some() => Backend::Vulkan,
            Backend::Wgpu => Backend::WebGpu,
            other => other,
        }
    }

    /// Whether this backend's device is a cubecl one (wgpu or CUDA), where fusion and autotune apply.
    pub fn is_gpu(self) -> bool {
        self != Backend::Flex
    }
}

/// Devices `Device::wgpu` makes from now on compile WGSL: Hearth's `webgpu`. (A device pinned to
/// Vulkan, `Device::vulkan`, keeps SPIR-V; see vendor/cubecl-wgpu.)
fn force_wgsl() {
    #[cfg(not(target_family = "wasm"))]
    burn::cubecl::wgpu::set_force_wgsl(true);
}

/// The name of the first hardware adapter wgpu finds on Vulkan (`None` on wasm, and where Vulkan
/// offers none or only a software renderer).
pub fn hardware_vulkan_adapter() -> Option<String> {
    #[cfg(not(target_family = "wasm"))]
    {
        adapters(burn::tensor::wgpu::wgpu::Backends::VULKAN)
            .into_iter()
            .find(|(_, software)| !software)
            .map(|(name, _)| name)
    }
    #[cfg(target_family = "wasm")]
    None
}

/// `(name, is a software renderer)` of every adapter wgpu finds on `backends`.
#[cfg(not(target_family = "wasm"))]
pub fn adapters(backends: burn::tensor::wgpu::wgpu::Backends) -> Vec<(String, bool)> {
    use burn::tensor::wgpu::wgpu;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let found = pollster::block_on(instance.enumerate_adapters(backends));
    found
        .iter()
        .map(|a| {
            let info = a.get_info();
            (info.name, info.device_type == wgpu::DeviceType::Cpu)
        })
        .collect()
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Wgpu => "wgpu",
            Backend::Vulkan => "vulkan",
            Backend::WebGpu => "webgpu",
            #[cfg(feature = "cuda")]
            Backend::Cuda => "cuda",
            Backend::Flex => "flex",
        })
    }
}

impl FromStr for Backend {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Self> {
        let names = || Backend::all().iter().map(|b| format!("\"{b}\"")).collect::<Vec<_>>().join(", ");
        match s {
            "wgpu" => Ok(Backend::Wgpu),
            "vulkan" if cfg!(not(target_family = "wasm")) => Ok(Backend::Vulkan),
            "webgpu" | "wgsl" => Ok(Backend::WebGpu),
            #[cfg(feature = "cuda")]
            "cuda" => Ok(Backend::Cuda),
            #[cfg(not(feature = "cuda"))]
            "cuda" => Err(crate::error::Error::Config(
                "backend \"cuda\": this hearth was built without CUDA; rebuild with `cargo build --release -p hearth --features cuda`".into(),
            )),
            "flex" | "cpu" => Ok(Backend::Flex),
            other => Err(crate::error::Error::Config(format!("unknown backend \"{other}\"; choose {} or \"auto\"", names()))),
        }
    }
}

/// How burn runs kernels on a GPU device: kernel fusion and autotuning, set once per process
/// before the first device opens (cubecl's settings are global).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuSettings {
    /// burn's kernel fusion (element-wise chains, reductions and matmul epilogues in one kernel).
    pub fusion: bool,
    /// How hard cubecl's autotune searches the first time it meets a shape (its results persist
    /// on disk, so later runs pay nothing).
    pub autotune: Autotune,
}

/// cubecl's autotune levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autotune {
    Minimal,
    Balanced,
    Extensive,
    Full,
}

impl Autotune {
    pub const NAMES: [&'static str; 4] = ["minimal", "balanced", "extensive", "full"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl FromStr for Autotune {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "minimal" => Ok(Autotune::Minimal),
            "balanced" => Ok(Autotune::Balanced),
            "extensive" => Ok(Autotune::Extensive),
            "full" => Ok(Autotune::Full),
            other => Err(crate::error::Error::Config(format!(
                "unknown autotune level \"{other}\"; choose {}",
                Autotune::NAMES.join(", ")
            ))),
        }
    }
}

impl GpuSettings {
    /// What pays on an adapter: on hardware, fusion and balanced autotuning (the first run of a
    /// shape tunes, its results kept in the user's cache folder); on a software renderer the same
    /// fusion (fewer, larger kernels are cheaper there too) with minimal autotuning, which
    /// otherwise costs minutes the first time a shape is met.
    pub fn for_adapter(software: bool) -> Self {
        match software {
            false => GpuSettings { fusion: true, autotune: Autotune::Balanced },
            true => GpuSettings { fusion: true, autotune: Autotune::Minimal },
        }
    }

    /// For the run's header.
    pub fn describe(&self) -> String {
        format!("fusion {}, autotune {}", if self.fusion { "on" } else { "off" }, self.autotune.name())
    }
}

/// Sets `settings` for this process's GPU devices; call it once, before the first one opens.
/// `cubecl.toml` (in the working folder or above) or `CUBECL_AUTOTUNE_LEVEL` take precedence over
/// the autotune level, as cubecl documents; the autotune results go to the user's cache folder
/// (`~/.cache/cubecl` on Linux) so that only the first run of a shape pays. Returns what holds.
#[cfg(not(target_family = "wasm"))]
pub fn apply_gpu_settings(settings: GpuSettings) -> GpuSettings {
    use burn::cubecl::config::autotune::AutotuneLevel;
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    let mut applied = settings;
    // What cubecl itself would load (a cubecl.toml, its CUBECL_* variables), with Hearth's
    // choices where neither said otherwise.
    let file = cubecl_toml_exists();
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    if !file && std::env::var_os("CUBECL_AUTOTUNE_LEVEL").is_none() {
        config.autotune.level = match settings.autotune {
            Autotune::Minimal => AutotuneLevel::Minimal,
            Autotune::Balanced => AutotuneLevel::Balanced,
            Autotune::Extensive => AutotuneLevel::Extensive,
            Autotune::Full => AutotuneLevel::Full,
        };
    }
    if !file {
        config.environment.path = CacheConfig::Global;
    }
    CubeClRuntimeConfig::try_set(config);
    let level = CubeClRuntimeConfig::get().autotune.level.clone();
    applied.autotune = match level {
        AutotuneLevel::Minimal => Autotune::Minimal,
        AutotuneLevel::Balanced => Autotune::Balanced,
        AutotuneLevel::Extensive => Autotune::Extensive,
        AutotuneLevel::Full => Autotune::Full,
    };
    if !settings.fusion {
        // Every built-in fusion optimisation removed: each op runs as its own kernel.
        for name in burn_cubecl::fusion::BUILTIN_NAMES {
            if burn_cubecl::fusion::remove(name).is_err() {
                applied.fusion = true; // the registry was sealed: a device already runs
            }
        }
    }
    applied
}

#[cfg(not(target_family = "wasm"))]
fn cubecl_toml_exists() -> bool {
    let Ok(mut dir) = std::env::current_dir() else { return false };
    loop {
        if ["cubecl.toml", "CubeCL.toml"].iter().any(|f| dir.join(f).is_file()) {
            return true;
        }
        if !dir.pop() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_adapters_fuse_and_tune_and_software_ones_tune_little() {
        let hardware = GpuSettings::for_adapter(false);
        assert_eq!((hardware.fusion, hardware.autotune), (true, Autotune::Balanced));
        let software = GpuSettings::for_adapter(true);
        assert_eq!((software.fusion, software.autotune), (true, Autotune::Minimal));
        assert_eq!(software.describe(), "fusion on, autotune minimal");
    }

    #[test]
    fn backend_names_are_burns() {
        for backend in Backend::all() {
            assert_eq!(backend.to_string().parse::<Backend>().unwrap(), backend);
        }
        assert_eq!("cpu".parse::<Backend>().unwrap(), Backend::Flex);
        let err = "metal2".parse::<Backend>().unwrap_err().to_string();
        assert!(err.contains("\"webgpu\"") && err.contains("\"auto\""), "{err}");
        assert!(Backend::Wgpu.resolve() != Backend::Wgpu, "wgpu resolves to the compiler it runs");
    }
}
