//! `hearth parity DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hearth_core::footprint::fused_attention;
use hearth_core::hf::weights::SafetensorsFile;
use hearth_core::parity::{ParityReport, check};
use hearth_core::{Backend, Error, ModelConfig, footprint};

use crate::storage::checkpoint::read;

#[derive(clap::Args)]
pub struct Args {
    /// A folder with HF's config.json and model.safetensors, and io.safetensors holding the inputs,
    /// `logits`, `loss` and `grad.<param>`.
    dir: PathBuf,
    /// Largest allowed error relative to each reference tensor's largest magnitude.
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// `auto`, `wgpu` or `flex`. `auto` takes wgpu unless its only adapter is a software renderer
    /// (as every other command does).
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Print every compared tensor, not only the failures and a summary.
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let config = read(&args.dir, "config.json")?;
    let model = read(&args.dir, "model.safetensors")?;
    let io = read(&args.dir, "io.safetensors")?;
    let (backend, device) = crate::backend::choose(&args.backend)?;
    check_fits(&config, &io, backend, &device).map_err(|e| in_dir(e, &args.dir))?;
    let report = check(&config, &model, &io, &device, args.tol).map_err(|e| in_dir(e, &args.dir))?;
    print(&report, backend, args.verbose);
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Every parameter and the reference batch's activations against the device's largest binding.
fn check_fits(config: &[u8], io: &[u8], backend: Backend, device: &burn::tensor::Device) -> Result<(), Error> {
    let config = ModelConfig::from_json(config).map_err(|e| e.in_file("config.json"))?;
    let io = SafetensorsFile::parse(io).map_err(|e| e.in_file("io.safetensors"))?;
    let (batch, seq) = match io.shape("input_ids") {
        Ok(s) if s.len() == 2 => (s[0], s[1]),
        _ => (1, config.max_positions().unwrap_or(512)),
    };
    footprint::check_model(
        &config,
        (batch, seq),
        fused_attention(device, true),
        false,
        &crate::backend::limits(backend, device),
        "parity",
    )
}

/// Prefixes the file named in an error with the folder it is in.
fn in_dir(e: Error, dir: &Path) -> Error {
    match e {
        Error::InFile { path, source } => Error::InFile { path: dir.join(path).display().to_string(), source },
        other => other.in_file(dir.display()),
    }
}

fn print(report: &ParityReport, backend: Backend, verbose: bool) {
    println!(
        "{} parity on {backend}, tolerance {:.0e} (relative to each reference tensor's max |value|)",
        report.model_type, report.tolerance
    );
    println!("{:<64} {:>12} {:>12}  {}", "output", "max abs err", "max rel err", "");
    for row in &report.rows {
        if verbose || !row.passed || row.name == "logits" || row.name == "loss" {
            let verdict = if row.passed { "ok" } else { "FAIL" };
            println!("{:<64} {:>12.3e} {:>12.3e}  {verdict}", row.name, row.max_abs, row.max_rel);
        }
    }
    let grads = report.rows.iter().filter(|r| r.name.starts_with("grad.")).count();
    if let Some(worst) =
        report.rows.iter().filter(|r| r.name.starts_with("grad.")).max_by(|a, b| a.max_rel.total_cmp(&b.max_rel))
    {
        println!("{grads} gradients compared; worst {} at {:.3e}", worst.name, worst.max_rel);
    }
    for u in &report.unmatched {
        println!("unmatched: {u}");
    }
    let failed = report.rows.iter().filter(|r| !r.passed).count();
    if report.passed() {
        println!("PASS: {} outputs within {:.0e}", report.rows.len(), report.tolerance);
    } else {
        println!(
            "FAIL: {failed} of {} outputs exceed {:.0e}, {} unmatched",
            report.rows.len(),
            report.tolerance,
            report.unmatched.len()
        );
    }
}
