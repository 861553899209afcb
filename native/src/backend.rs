//! Which burn device a run uses.

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};
use hearth_core::fit::DeviceLimits;
use hearth_core::{Backend, Error};

use crate::ranks::Ranks;

/// `auto`: wgpu, unless every adapter wgpu finds is a software renderer (lavapipe/llvmpipe,
/// SwiftShader, WARP), where burn's CPU backend `flex` is an order of magnitude faster.
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
    Ok((backend, backend.device()))
}

/// [`choose`] for a process of a data-parallel run (its local rank from the launcher or MPI): on wgpu, with several ranks on this machine, local rank `i` takes the `i`-th discrete
/// GPU (as `torchrun` users give each rank one `CUDA_VISIBLE_DEVICES`), or the default adapter,
/// shared, when the machine has fewer. GPUs are counted on wgpu's primary APIs (Vulkan, Metal,
/// DX12), the ones burn's wgpu runtime opens.
pub fn choose_for_rank(name: &str, ranks: &Ranks) -> Result<(Backend, Device), Error> {
    let (local_rank, local_world) = (ranks.local_rank, ranks.local_world);
    let (backend, device) = choose(name)?;
    if backend != Backend::Wgpu || local_world <= 1 {
        return Ok((backend, device));
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let discrete = adapters.iter().filter(|a| a.get_info().device_type == wgpu::DeviceType::DiscreteGpu).count();
    if local_rank < discrete {
        return Ok((backend, Device::wgpu(DeviceKind::DiscreteGpu(local_rank))));
    }
    eprintln!(
        "note: local rank {local_rank} of {local_world} but {discrete} discrete GPU(s); this rank shares the default adapter"
    );
    Ok((backend, device))
}

/// The name of the adapter when no hardware one exists (`None` when one does, or none at all —
/// then burn's own wgpu error says why).
fn software_only() -> Option<String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
    let hardware = infos.iter().any(|i| i.device_type != wgpu::DeviceType::Cpu);
    match (hardware, infos.first()) {
        (false, Some(info)) => Some(info.name.clone()),
        _ => None,
    }
}

/// The name of the first hardware adapter wgpu finds (else the first adapter), for the report.
pub fn adapter_name() -> Option<String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
    infos.iter().find(|i| i.device_type != wgpu::DeviceType::Cpu).or(infos.first()).map(|i| i.name.clone())
}

/// What `device` can hold (see `hearth_core::fit`): on wgpu the opened device's largest binding,
/// on flex the machine's RAM (sysinfo: the same call on Linux, macOS and Windows).
pub fn limits(backend: Backend, device: &Device) -> DeviceLimits {
    let name = match backend {
        Backend::Wgpu => format!("wgpu ({})", adapter_name().unwrap_or_else(|| "default adapter".into())),
        Backend::Flex => "flex (CPU)".to_string(),
    };
    let ram = match backend {
        Backend::Flex => {
            let mut system = sysinfo::System::new();
            system.refresh_memory();
            // A container's (cgroup's) limit, where it is below the machine's memory.
            let cgroup = system.cgroup_limits().map_or(u64::MAX, |c| c.total_memory);
            Some(system.total_memory().min(cgroup)).filter(|&m| m > 0)
        }
        Backend::Wgpu => None,
    };
    DeviceLimits::of(device, name, ram)
}
