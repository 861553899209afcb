//! Which burn device the page trains on: WebGPU when the browser gives an adapter, otherwise
//! burn's CPU backend (`flex`) compiled to wasm — and the page is told which, and why.

use std::cell::RefCell;

use burn::tensor::Device;
use serde::Serialize;

/// The device a session runs on, as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct BackendInfo {
    /// "webgpu" or "cpu".
    pub kind: &'static str,
    /// The adapter (WebGPU) or backend (CPU) by name.
    pub name: String,
    /// Why the CPU was chosen, when it was.
    pub note: Option<String>,
    /// WebGPU: the largest buffer one tensor may occupy on the device as opened (the adapter's
    /// `maxStorageBufferBindingSize`, not WebGPU's 128 MiB default).
    pub max_binding: Option<u64>,
}

/// The page's WebGPU device: burn's runtime is set up once per page and later sessions reuse it.
/// The setup (instance, adapter, device, queue) is kept alive with it.
struct WebGpu {
    device: Device,
    name: String,
    _setup: burn::tensor::wgpu::WgpuSetup,
}

thread_local! {
    static WEBGPU: RefCell<Option<WebGpu>> = const { RefCell::new(None) };
}

fn cpu(note: Option<String>) -> (Device, BackendInfo) {
    (Device::flex(), BackendInfo { kind: "cpu", name: "burn flex (CPU, wasm32)".into(), note, max_binding: None })
}

/// The device for `want`: "auto" (WebGPU if there is an adapter, else the CPU), "webgpu" (an error
/// without one) or "cpu".
pub async fn choose(want: &str) -> Result<(Device, BackendInfo), String> {
    match want {
        "cpu" => return Ok(cpu(None)),
        "auto" | "webgpu" => {}
        other => return Err(format!("unknown backend \"{other}\"; choose \"auto\", \"webgpu\" or \"cpu\"")),
    }
    if let Some((device, name)) = WEBGPU.with(|w| w.borrow().as_ref().map(|g| (g.device.clone(), g.name.clone()))) {
        let max_binding = max_binding(&device);
        return Ok((device, BackendInfo { kind: "webgpu", name, note: None, max_binding }));
    }
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            // Browsers hide the adapter's name unless asked for it; say at least what kind it is.
            let name = match info.name.as_str() {
                "" => format!("{:?} adapter", info.device_type),
                named => format!("{named} ({:?})", info.backend),
            };
            WEBGPU
                .with(|w| *w.borrow_mut() = Some(WebGpu { device: device.clone(), name: name.clone(), _setup: setup }));
            let max_binding = max_binding(&device);
            Ok((device, BackendInfo { kind: "webgpu", name, note: None, max_binding }))
        }
        Err(e) if want == "auto" => Ok(cpu(Some(format!(
            "WebGPU is not available here ({e}); training on the CPU. Chrome/Edge 113+ or Safari 26 have WebGPU; \
             on Linux Chromium needs --enable-unsafe-webgpu"
        )))),
        Err(e) => Err(format!("WebGPU is not available here ({e}); choose the CPU backend")),
    }
}

fn max_binding(device: &Device) -> Option<u64> {
    hearth_core::footprint::DeviceLimits::of(device, "", None).max_binding
}
