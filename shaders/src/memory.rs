//! Device memory as cubecl's allocator sees it (for benchmarks): what is in use and what its pools
//! hold. Only cubecl devices (wgpu here) report; other backends answer `None`.

use burn::cubecl::MemoryScope;
use burn::tensor::Device;

use crate::device::client;

/// One reading of the allocator, every stream of the device together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReading {
    /// Bytes of live allocations.
    pub in_use: u64,
    /// Bytes the pools hold (live or free for reuse): the high-water mark since the last
    /// [`release`], since freed pages stay reserved until then.
    pub reserved: u64,
}

/// The allocator's current reading, `None` for a device that is not a cubecl one.
pub fn reading(device: &Device) -> Option<MemoryReading> {
    let usage = client(device)?.memory_report(MemoryScope::Device).usage();
    Some(MemoryReading { in_use: usage.bytes_in_use, reserved: usage.bytes_reserved })
}

/// What a cubecl device can hold, as the device it opened states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest single allocation: one storage binding (wgpu's `maxStorageBufferBindingSize`,
    /// capped by `maxBufferSize`).
    pub max_binding: u64,
    /// The device memory, where the API states it (not through WGSL-only wgpu).
    pub max_memory: Option<u64>,
    /// Workgroup shared memory (`maxComputeWorkgroupStorageSize`): 16 KiB in WebGPU's defaults,
    /// more on most adapters, so it shows whether the device was opened with the adapter's limits.
    pub max_shared_memory: usize,
}

/// The limits of a cubecl device (wgpu here), `None` for other backends.
pub fn limits(device: &Device) -> Option<Limits> {
    let client = client(device)?;
    let props = client.properties();
    Some(Limits {
        max_binding: props.memory.max_page_size,
        max_memory: props.memory.max_memory(),
        max_shared_memory: props.hardware.max_shared_memory_size,
    })
}

/// Asks the allocator to give back the pages nothing uses (so `reserved` restarts from what is live).
pub fn release(device: &Device) {
    if let Some(c) = client(device) {
        c.memory_cleanup().ok();
    }
}
