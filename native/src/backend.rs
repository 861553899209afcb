//! Which burn device a run uses, and how a GPU device runs burn's kernels.

use std::sync::OnceLock;

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};
use hearth_core::device::{Autotune, GpuSettings, adapters, apply_gpu_settings};
use hearth_core::footprint::DeviceLimits;
use hearth_core::train::Precision;
use hearth_core::{Backend, Error};

use crate::distributed::Ranks;

/// The global `--fusion` and `--autotune` options (`None`: what pays on the adapter).
#[derive(Clone, Copy, Debug, Default)]
pub struct GpuOptions {
    pub fusion: Option<bool>,
    pub autotune: Option<Autotune>,
}

static OPTIONS: OnceLock<GpuOptions> = OnceLock::new();
/// What a GPU device of this process runs with, once the first one was chosen.
static APPLIED: OnceLock<GpuSettings> = OnceLock::new();

/// Records the global options (from `main`, before any device is chosen).
pub fn set_options(options: GpuOptions) {
    let _ = OPTIONS.set(options);
}

fn options() -> GpuOptions {
    OPTIONS.get().copied().unwrap_or_default()
}

/// `auto`: wgpu, unless every adapter wgpu finds is a software renderer (lavapipe/llvmpipe,
/// SwiftShader, WARP), where burn's CPU backend `flex` is an order of magnitude faster. `wgpu` is
/// resolved to `vulkan` (SPIR-V) on a hardware Vulkan adapter and `webgpu` (WGSL) otherwise.
pub fn choose(name: &str) -> Result<(Backend, Device), Error> {
    let backend = match name {
        "auto" => match software_only() {
            Some(adapter) => {
                eprintln!(
                    "note: the only GPU adapter is a software renderer ({adapter}); training on the CPU backend (flex) instead. Pass --backend wgpu to use it anyway."
                );
                Backend::Flex
            }
            None => Backend::Wgpu,
        },
        other => other.parse()?,
    };
    let backend = backend.resolve();
    let options = options();
    if !backend.is_gpu() && (options.fusion.is_some() || options.autotune.is_some()) {
        return Err(Error::Config(format!(
            "--fusion and --autotune apply to GPU backends (wgpu, vulkan, webgpu, cuda), not {backend}; drop them or pick a GPU backend"
        )));
    }
    #[cfg(feature = "cuda")]
    if backend == Backend::Cuda {
        cuda_libraries()?;
    }
    if backend.is_gpu() {
        gpu_settings(backend);
    }
    Ok((backend, backend.device()))
}

/// burn's CUDA runtime loads the driver and NVRTC (which compiles its kernels) when its first
/// device starts, and panics on a thread of its own when either is missing: look first, and say
/// which one is missing and what to do.
#[cfg(feature = "cuda")]
fn cuda_libraries() -> Result<(), Error> {
    // SAFETY: each only tries to open the libraries cudarc loads (by its own list of names).
    let (driver, nvrtc) = unsafe { (cudarc::driver::sys::is_culib_present(), cudarc::nvrtc::sys::is_culib_present()) };
    if !driver {
        return Err(Error::Config(
            "backend cuda: no CUDA driver here (libcuda.so not found); install the NVIDIA driver, or pick --backend wgpu".into(),
        ));
    }
    if !nvrtc {
        return Err(Error::Config(
            "backend cuda: NVRTC (libnvrtc.so), which compiles burn's CUDA kernels, was not found; install the CUDA runtime (or pip's nvidia-cuda-nvrtc) and put its lib folder on LD_LIBRARY_PATH".into(),
        ));
    }
    Ok(())
}

/// The settings GPU devices of this process run with: the options over what pays on the adapter
/// ([`GpuSettings::for_adapter`]), applied once.
fn gpu_settings(backend: Backend) -> GpuSettings {
    *APPLIED.get_or_init(|| {
        // CUDA needs a GPU; on wgpu, a machine whose adapters are all software renderers.
        let software = backend.to_string() != "cuda" && software_only().is_some();
        let mut settings = GpuSettings::for_adapter(software);
        let options = options();
        if let Some(fusion) = options.fusion {
            settings.fusion = fusion;
        }
        if let Some(level) = options.autotune {
            settings.autotune = level;
        }
        apply_gpu_settings(settings)
    })
}

/// One line for a run's header: the backend, the adapter, the shader compiler, fusion and
/// autotune, and which attention runs (`fused`: the run's `fused_attention`; `precision`: the
/// run's compute dtype).
pub fn describe(backend: Backend, device: &Device, fused: bool, precision: Precision) -> String {
    let half = precision.dtype().map(burn::tensor::DType::from);
    let attention = hearth_core::nn::attention::attention_path(device, fused, half);
    if !backend.is_gpu() {
        return format!("device: flex (CPU) · attention: {attention}");
    }
    let compiler = match hearth_shaders::device::runtime_name(device) {
        Some("wgpu<wgsl>") => "WGSL",
        Some("wgpu<spirv>") => "SPIR-V",
        Some(other) => other,
        None => "?",
    };
    let settings = APPLIED.get().copied().unwrap_or_else(|| GpuSettings::for_adapter(false));
    format!(
        "device: {backend} on {} ({compiler}) · {} · attention: {attention}",
        adapter_name().unwrap_or_else(|| "the default adapter".into()),
        settings.describe()
    )
}

/// [`choose`] for a process of a data-parallel run (its local rank from the launcher or MPI): on wgpu, with several ranks on this machine, local rank `i` takes the `i`-th discrete
/// GPU (as `torchrun` users give each rank one `CUDA_VISIBLE_DEVICES`), or the default adapter,
/// shared, when the machine has fewer. GPUs are counted on wgpu's primary APIs (Vulkan, Metal,
/// DX12), the ones burn's wgpu runtime opens.
pub fn choose_for_rank(name: &str, ranks: &Ranks) -> Result<(Backend, Device), Error> {
    let (local_rank, local_world) = (ranks.local_rank, ranks.local_world);
    let (backend, device) = choose(name)?;
    if !matches!(backend, Backend::Vulkan | Backend::WebGpu) || local_world <= 1 {
        return Ok((backend, device));
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let discrete = adapters.iter().filter(|a| a.get_info().device_type == wgpu::DeviceType::DiscreteGpu).count();
    if local_rank < discrete {
        let kind = DeviceKind::DiscreteGpu(local_rank);
        let device = match backend {
            Backend::Vulkan => Device::vulkan(kind),
            _ => Device::wgpu(kind),
        };
        return Ok((backend, device));
    }
    eprintln!(
        "note: local rank {local_rank} of {local_world} but {discrete} discrete GPU(s); this rank shares the default adapter"
    );
    Ok((backend, device))
}

/// The name of the adapter when no hardware one exists (`None` when one does, or none at all —
/// then burn's own wgpu error says why).
fn software_only() -> Option<String> {
    let found = adapters(wgpu::Backends::all());
    let hardware = found.iter().any(|(_, software)| !software);
    match (hardware, found.first()) {
        (false, Some((name, _))) => Some(name.clone()),
        _ => None,
    }
}

/// The name of the first hardware adapter wgpu finds (else the first adapter), for the report.
pub fn adapter_name() -> Option<String> {
    let found = adapters(wgpu::Backends::all());
    found.iter().find(|(_, software)| !software).or(found.first()).map(|(name, _)| name.clone())
}

/// What `device` can hold (see `hearth_core::footprint`): on a GPU the opened device's largest binding,
/// on flex the machine's RAM (sysinfo: the same call on Linux, macOS and Windows).
pub fn limits(backend: Backend, device: &Device) -> DeviceLimits {
    let name = match backend {
        Backend::Flex => "flex (CPU)".to_string(),
        gpu => format!("{gpu} ({})", adapter_name().unwrap_or_else(|| "default adapter".into())),
    };
    let ram = match backend {
        Backend::Flex => {
            let mut system = sysinfo::System::new();
            system.refresh_memory();
            // A container's (cgroup's) limit, where it is below the machine's memory.
            let cgroup = system.cgroup_limits().map_or(u64::MAX, |c| c.total_memory);
            Some(system.total_memory().min(cgroup)).filter(|&m| m > 0)
        }
        _ => None,
    };
    DeviceLimits::of(device, name, ram)
}
