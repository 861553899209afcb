//! wgpu devices are opened with the adapter's own limits (cubecl requests `adapter.limits()`), not
//! WebGPU's defaults: the opened device states the adapter's largest storage binding and workgroup
//! memory (lavapipe in CI: 128 MiB and 32 KiB, where WebGPU's defaults are 128 MiB and 16 KiB), and
//! `hearth_core::footprint` checks tensors against that binding.

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};
use hearth_core::footprint::{DeviceLimits, check_tensors, param_sizes};
use hearth_core::models::presets::preset;

#[test]
fn the_wgpu_device_is_opened_with_the_adapters_limits() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: set before any thread of this test starts the Vulkan driver.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .expect("a wgpu adapter (CI installs lavapipe: mesa-vulkan-drivers)");
    let want = adapter.limits();
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    let opened = hearth_shaders::memory::limits(&device).expect("wgpu is a cubecl device");
    assert_eq!(
        opened.max_binding,
        (want.max_storage_buffer_binding_size as u64).min(want.max_buffer_size),
        "the largest binding is the adapter's"
    );
    assert_eq!(opened.max_shared_memory, want.max_compute_workgroup_storage_size as usize, "workgroup memory too");
    let webgpu_default = wgpu::Limits::default();
    if want.max_compute_workgroup_storage_size > webgpu_default.max_compute_workgroup_storage_size {
        assert!(opened.max_shared_memory > webgpu_default.max_compute_workgroup_storage_size as usize);
    }

    // A model whose largest tensor exceeds that binding is refused before any work, naming it.
    let limits = DeviceLimits::of(&device, "wgpu (test adapter)", None);
    assert_eq!(limits.max_binding, Some(opened.max_binding));
    let gpt2 = preset("gpt2-124m", &Default::default()).unwrap();
    let wte = 50257u64 * 768 * 4;
    match check_tensors(&param_sizes(&gpt2), &limits, "parity") {
        Ok(()) => assert!(wte <= opened.max_binding, "the 147 MiB embedding fits this adapter's binding"),
        Err(e) => {
            assert!(wte > opened.max_binding);
            assert!(e.to_string().contains("transformer.wte.weight [50257, 768] needs 147.2 MiB"), "{e}");
        }
    }
}
