//! Device memory as cubecl's allocator sees it (for benchmarks): what is in use and what its pools
//! hold. Only cubecl devices (wgpu here) report; other backends answer `None`.

use burn::backend::DispatchDevice;
use burn::cubecl::MemoryScope;
use burn::cubecl::client::Client;
use burn::tensor::Device;

/// One reading of the allocator, every stream of the device together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReading {
    /// Bytes of live allocations.
    pub in_use: u64,
    /// Bytes the pools hold (live or free for reuse): the high-water mark since the last
    /// [`release`], since freed pages stay reserved until then.
    pub reserved: u64,
}

fn client(device: &Device) -> Option<Client> {
    let mut d = device.as_dispatch();
    if let DispatchDevice::Autodiff(inner) = d {
        d = inner;
    }
    match d {
        DispatchDevice::Cube(cube) => Some(cube.client()),
        _ => None,
    }
}

/// The allocator's current reading, `None` for a device that is not a cubecl one.
pub fn reading(device: &Device) -> Option<MemoryReading> {
    let usage = client(device)?.memory_report(MemoryScope::Device).usage();
    Some(MemoryReading { in_use: usage.bytes_in_use, reserved: usage.bytes_reserved })
}

/// Asks the allocator to give back the pages nothing uses (so `reserved` restarts from what is live).
pub fn release(device: &Device) {
    if let Some(c) = client(device) {
        c.memory_cleanup().ok();
    }
}
