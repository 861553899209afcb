//! `hearth bench attention`: the fused WGSL attention against burn's composition, forward +
//! backward, time and device memory per sequence length.

use std::path::PathBuf;
use std::time::Instant;

use burn::nn::DropoutConfig;
use burn::tensor::{Distribution, Tensor};
use hearth_core::error::io;
use hearth_core::nn::attention::{AttentionBias, composed_attention, fused_attention, fused_launches};
use hearth_core::{Backend, Error};
use hearth_shaders::memory;

#[derive(clap::Args)]
pub struct AttentionArgs {
    /// Sequence lengths (tq = tk), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [128usize, 512, 1024, 2048, 4096])]
    seq: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 8)]
    heads: usize,
    #[arg(long, default_value_t = 64)]
    head_dim: usize,
    /// Timed forward+backward passes per T and path (after one untimed warm-up pass).
    #[arg(long, default_value_t = 2)]
    iters: usize,
    /// Causal masking (the fused kernel skips the masked tiles; the composition cannot).
    #[arg(long)]
    causal: bool,
    /// Skip the composition above this T (its [b, h, T, T] scores grow quadratically).
    #[arg(long)]
    max_composed_seq: Option<usize>,
    /// Time the forward alone (no autodiff).
    #[arg(long)]
    forward_only: bool,
    /// Also write the table as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Internal: measure one path at the first `--seq` in this process and print it as JSON
    /// (each measurement runs in a fresh process, so the allocator's high-water mark is its own).
    #[arg(long, hide = true, value_parser = ["fused", "composed"])]
    one: Option<String>,
}

/// One measurement in a fresh `hearth` process (see `--one`).
fn child(args: &AttentionArgs, t: usize, path: &str) -> Result<Measure, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::Input(format!("own executable: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "attention", "--one", path, "--seq", &t.to_string()]);
    cmd.args(["--batch", &args.batch.to_string(), "--heads", &args.heads.to_string()]);
    cmd.args(["--head-dim", &args.head_dim.to_string(), "--iters", &args.iters.to_string()]);
    if args.causal {
        cmd.arg("--causal");
    }
    if args.forward_only {
        cmd.arg("--forward-only");
    }
    let out = cmd.output().map_err(|e| Error::Input(format!("cannot start a measurement: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{'));
    match (out.status.success(), line) {
        (true, Some(line)) => serde_json::from_str(line).map_err(|e| Error::Input(format!("measurement output: {e}"))),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = match stderr.find("can't allocate buffer") {
                // The composition's [b, h, T, T] scores past the device's largest buffer.
                Some(at) => stderr[at..]
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .split(" No backtrace")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                None => {
                    stderr.lines().filter(|l| !l.contains("XDG_RUNTIME_DIR")).take(3).collect::<Vec<_>>().join(" / ")
                }
            };
            Err(Error::Input(format!("{path} at T={t}: {}", why.chars().take(300).collect::<String>())))
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Copy)]
struct Measure {
    /// Mean milliseconds of one forward + backward (synchronised).
    ms: f64,
    /// Peak bytes the allocator reserved during the passes beyond what was live before them.
    peak_bytes: u64,
    /// Bytes live between forward and backward beyond the inputs (what autodiff keeps).
    saved_bytes: u64,
}

#[derive(serde::Serialize)]
struct Row {
    seq: usize,
    fused: Measure,
    composed: Option<Measure>,
    /// composed ms / fused ms (> 1: the fused path is faster).
    speedup: Option<f64>,
}

pub fn run(args: AttentionArgs) -> Result<(), Error> {
    if let Some(path) = &args.one {
        let device = if args.forward_only { Backend::WebGpu.device() } else { Backend::WebGpu.device().autodiff() };
        let t = *args.seq.first().ok_or_else(|| Error::Input("--one needs a --seq".into()))?;
        let shape = [args.batch, args.heads, t, args.head_dim];
        let m = measure(&device, shape, args.causal, path == "fused", !args.forward_only, args.iters)?;
        println!("{}", serde_json::to_string(&m).expect("json"));
        return Ok(());
    }
    let what = if args.forward_only { "forward" } else { "forward+backward" };
    let (b, h, dh) = (args.batch, args.heads, args.head_dim);
    println!(
        "attention {what} on wgpu (WGSL, where the fused kernel runs), batch {b} x heads {h}, head dim {dh}, f32, causal {}, {} timed pass(es) after 1 warm-up",
        args.causal, args.iters
    );
    println!(
        "memory: cubecl's allocator, each measurement in a fresh process: \"peak\" is the growth of the pools' reserved \
         bytes over warm-up and timed passes beyond the inputs (freed pages stay reserved for reuse, so it is the \
         high-water mark, rounded to pool pages), \"saved\" the live bytes between forward and backward beyond the inputs"
    );
    println!(
        "{:>6} {:>11} {:>11} {:>8} {:>11} {:>11} {:>11} {:>11}",
        "T", "fused ms", "compose ms", "ratio", "fused MiB", "compose MiB", "fused sav", "compose sav"
    );
    let mib = |x: u64| x as f64 / (1024.0 * 1024.0);
    let mut rows = Vec::new();
    for &t in &args.seq {
        let fused = child(&args, t, "fused")?;
        let composed = match args.max_composed_seq {
            Some(max) if t > max => None,
            _ => match child(&args, t, "composed") {
                Ok(m) => Some(m),
                Err(e) => {
                    println!("{t:>6} composition failed: {e}");
                    None
                }
            },
        };
        let speedup = composed.map(|c| c.ms / fused.ms);
        let opt = |m: Option<Measure>, f: &dyn Fn(Measure) -> String| m.map(f).unwrap_or_else(|| "-".into());
        println!(
            "{t:>6} {:>11.1} {:>11} {:>8} {:>11.1} {:>11} {:>11.1} {:>11}",
            fused.ms,
            opt(composed, &|c| format!("{:.1}", c.ms)),
            speedup.map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into()),
            mib(fused.peak_bytes),
            opt(composed, &|c| format!("{:.1}", mib(c.peak_bytes))),
            mib(fused.saved_bytes),
            opt(composed, &|c| format!("{:.1}", mib(c.saved_bytes))),
        );
        rows.push(Row { seq: t, fused, composed, speedup });
    }
    println!("ratio = composition ms / fused ms (above 1: the fused path is faster)");
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "batch": b, "heads": h, "head_dim": dh, "causal": args.causal, "iters": args.iters,
            "forward_only": args.forward_only,
            "memory": "cubecl allocator, one fresh process per measurement: peak = growth of the pools' reserved bytes over the passes beyond the inputs (high-water mark, pool-page granularity); saved = live bytes between forward and backward beyond the inputs",
            "rows": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json).expect("json"))
            .map_err(io("write", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn measure(
    device: &burn::tensor::Device,
    shape: [usize; 4],
    causal: bool,
    fused: bool,
    backward: bool,
    iters: usize,
) -> Result<Measure, Error> {
    let dh = shape[3];
    let scale = 1.0 / (dh as f64).sqrt();
    let q = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let k = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let v = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let g = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let dropout = DropoutConfig::new(0.0).init();
    let bias = if causal { AttentionBias::default().with_causal() } else { AttentionBias::default() };
    let sync = || device.sync().map_err(|e| Error::Input(format!("device sync: {e:?}")));

    let forward = || {
        let (q, k, v) = match backward {
            true => (q.clone().require_grad(), k.clone().require_grad(), v.clone().require_grad()),
            false => (q.clone(), k.clone(), v.clone()),
        };
        let out = if fused {
            fused_attention(q.clone(), k.clone(), v.clone(), causal, None, scale)
        } else {
            composed_attention(q.clone(), k.clone(), v.clone(), &bias, Some(scale), &dropout)
        };
        (out, [q, k, v])
    };
    let pass = |saved: &mut u64, base: memory::MemoryReading| -> Result<(), Error> {
        let (out, inputs) = forward();
        sync()?;
        if let Some(now) = memory::reading(device) {
            *saved = (*saved).max(now.in_use.saturating_sub(base.in_use));
        }
        if backward {
            let grads = (out * g.clone()).sum().backward();
            for x in &inputs {
                let _ = x.grad(&grads).expect("gradient");
            }
        }
        sync()
    };

    // This process is fresh (see `child`): the pools hold the inputs only, and what they reserve
    // beyond that by the end is the high-water mark of the passes (freed pages are kept for reuse).
    sync()?;
    let base = memory::reading(device).unwrap_or_default();
    // Warm-up (pipelines compiled, pools grown), checked: a launch that fails can leave zeros.
    let launches = fused_launches();
    let total =
        forward().0.abs().sum().try_into_scalar::<f32>().map_err(|e| {
            Error::Input(format!("the device failed the pass: {}", format!("{e:?}").replace('\n', " ")))
        })?;
    if !(total.is_finite() && total > 0.0) {
        return Err(Error::Input(format!("the output is not valid (sum |out| = {total})")));
    }
    assert_eq!(fused_launches() > launches, fused, "the fused kernel ran exactly when asked");
    let mut saved = 0;
    pass(&mut saved, base)?;
    let start = Instant::now();
    for _ in 0..iters.max(1) {
        pass(&mut saved, base)?;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / iters.max(1) as f64;
    let after = memory::reading(device).unwrap_or_default();
    Ok(Measure { ms, peak_bytes: after.reserved.saturating_sub(base.reserved), saved_bytes: saved })
}
