//! `hearth bench adapters`: what GPUs this machine offers burn (wgpu's adapters on every graphics
//! API, and CUDA where the build has it), failing fast where a hardware one is required.
//! `hearth bench parity`: one model on a GPU backend against the CPU backend `flex`, same weights
//! and tokens: logits and loss (the check that a GPU's numbers are the model's).

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Int, Tensor, TensorData};
use hearth_core::device::adapters;
use hearth_core::models::ModelInputs;
use hearth_core::models::presets::preset;
use hearth_core::readback::{block_on, f32s};
use hearth_core::{Backend, Error};

#[derive(clap::Args)]
pub struct AdaptersArgs {
    /// Fail (exit 2, one line) unless wgpu finds a hardware adapter on Vulkan whose name contains
    /// this (e.g. `NVIDIA`; `any` for any hardware adapter).
    #[arg(long)]
    require: Option<String>,
    /// Also write the list as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

pub fn adapters_cmd(args: AdaptersArgs) -> Result<(), Error> {
    let mut found = Vec::new();
    for (api, backends) in [
        ("vulkan", wgpu::Backends::VULKAN),
        ("metal", wgpu::Backends::METAL),
        ("dx12", wgpu::Backends::DX12),
        ("gl", wgpu::Backends::GL),
    ] {
        for (name, software) in adapters(backends) {
            println!("{api:<7} {} {name}", if software { "software" } else { "hardware" });
            found.push(serde_json::json!({"api": api, "name": name, "software": software}));
        }
    }
    if found.is_empty() {
        println!("wgpu finds no adapter (no Vulkan loader or driver: `ldconfig -p | grep libvulkan`)");
    }
    let cuda = cfg!(feature = "cuda");
    println!("cuda    {}", if cuda { "built in (the driver is loaded when a device opens)" } else { "not built in" });
    if let Some(path) = &args.json {
        let json = serde_json::json!({"adapters": found, "cuda_built_in": cuda});
        std::fs::write(path, serde_json::to_string_pretty(&json).expect("json"))
            .map_err(hearth_core::error::io("write", path.display()))?;
    }
    if let Some(want) = &args.require {
        let ok = found.iter().any(|a| {
            a["api"] == "vulkan"
                && a["software"] == false
                && (want == "any" || a["name"].as_str().is_some_and(|n| n.contains(want.as_str())))
        });
        if !ok {
            return Err(Error::Device(format!(
                "no hardware Vulkan adapter matching \"{want}\" (wgpu sees: {}); install the Vulkan loader (libvulkan1) and the GPU's Vulkan driver, or set VK_DRIVER_FILES to its ICD json",
                if found.is_empty() {
                    "nothing".to_string()
                } else {
                    found.iter().map(|a| a["name"].as_str().unwrap_or("?").to_string()).collect::<Vec<_>>().join(", ")
                }
            )));
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ParityArgs {
    /// A GPT-2 preset (its weights drawn from --seed).
    #[arg(long, default_value = "gpt2-124m")]
    preset: String,
    /// The GPU backend to check against flex.
    #[arg(long, default_value = "wgpu")]
    backend: String,
    #[arg(long, default_value_t = 2)]
    batch_size: usize,
    #[arg(long, default_value_t = 128)]
    seq: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Largest allowed difference, relative to the flex tensor's largest magnitude.
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f64,
    /// Also write the result as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// `max |a - b| / max |b|`.
fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, &x| m.max(x.abs() as f64)).max(1e-12);
    a.iter().zip(b).fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs())) / scale
}

pub fn parity_cmd(args: ParityArgs) -> Result<(), Error> {
    let config = preset(&args.preset, &Default::default())?;
    let (backend, device) = crate::backend::choose(&args.backend)?;
    if backend == Backend::Flex {
        return Err(Error::Config("--backend: name a GPU backend to compare with flex".into()));
    }
    let flex = Backend::Flex.device();
    flex.seed(args.seed);
    let model = config.init(&flex);
    let weights = model.to_safetensors()?;
    let on_gpu = hearth_core::Model::from_hf(&config, &weights, &device)?;
    let vocab = config.vocab_size() as u64;
    let mut s = args.seed;
    let ids: Vec<i64> = (0..args.batch_size * args.seq)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 33) % vocab) as i64
        })
        .collect();
    let run = |model: &hearth_core::Model, device: &burn::tensor::Device| -> Result<(Vec<f32>, Vec<f32>), Error> {
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [args.batch_size, args.seq]), device);
        let mut inputs = ModelInputs::new(input.clone());
        inputs.labels = Some(input);
        let out = model.forward(inputs)?;
        let loss = out.loss.expect("labels were given");
        Ok((block_on(f32s(out.logits))?, block_on(f32s(loss))?))
    };
    println!(
        "{} ({:.1}M parameters), batch {} × seq {}: {} against flex, f32",
        args.preset,
        model.num_params() as f64 / 1e6,
        args.batch_size,
        args.seq,
        crate::backend::describe(backend, &device, true, hearth_core::train::Precision::F32)
    );
    let (logits_flex, loss_flex) = run(&model, &flex)?;
    let (logits_gpu, loss_gpu) = run(&on_gpu, &device)?;
    let (logits_rel, loss_rel) = (max_rel(&logits_gpu, &logits_flex), max_rel(&loss_gpu, &loss_flex));
    let passed = logits_rel <= args.tolerance && loss_rel <= args.tolerance;
    println!("logits          max relative difference {logits_rel:.2e}");
    println!("loss            {} on {backend}, {} on flex: {loss_rel:.2e}", loss_gpu[0], loss_flex[0]);
    println!("{} (tolerance {:.0e})", if passed { "PASS" } else { "FAIL" }, args.tolerance);
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "preset": args.preset, "backend": backend.to_string(), "batch_size": args.batch_size, "seq": args.seq,
            "logits_max_rel": logits_rel, "loss_gpu": loss_gpu[0], "loss_flex": loss_flex[0], "loss_rel": loss_rel,
            "tolerance": args.tolerance, "passed": passed,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json).expect("json"))
            .map_err(hearth_core::error::io("write", path.display()))?;
    }
    match passed {
        true => Ok(()),
        false => Err(Error::Device(format!(
            "{backend} differs from flex beyond {:.0e} (logits {logits_rel:.2e}, loss {loss_rel:.2e})",
            args.tolerance
        ))),
    }
}
