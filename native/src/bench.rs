//! `hearth bench attention`: the fused WGSL attention against burn's composition, forward +
//! backward, time and device memory per sequence length.

use std::path::PathBuf;
use std::time::Instant;

use burn::nn::DropoutConfig;
use burn::tensor::{Distribution, Tensor};
use hearth_core::nn::attention::{AttentionBias, composed_attention, fused_attention, fused_launches};
use hearth_core::{Backend, Error};
use hearth_shaders::memory::{self, MemoryReading};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Fused attention vs burn's composition: forward + backward time and peak device memory per T.
    Attention(AttentionArgs),
}

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
}

pub fn run(command: BenchCommand) -> Result<(), Error> {
    match command {
        BenchCommand::Attention(args) => attention(args),
    }
}

#[derive(serde::Serialize, Clone, Copy)]
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

fn attention(args: AttentionArgs) -> Result<(), Error> {
    let device = if args.forward_only { Backend::Wgpu.device() } else { Backend::Wgpu.device().autodiff() };
    let what = if args.forward_only { "forward" } else { "forward+backward" };
    let (b, h, dh) = (args.batch, args.heads, args.head_dim);
    println!(
        "attention {what} on wgpu, batch {b} x heads {h}, head dim {dh}, f32, causal {}, {} timed pass(es) after 1 warm-up",
        args.causal, args.iters
    );
    let backward = !args.forward_only;
    println!(
        "memory: cubecl allocator of the device; the pools are released before each measurement, \"peak\" is the \
         growth of reserved bytes over the passes (freed pages stay reserved until released, so it is the high-water \
         mark), \"saved\" the live bytes between forward and backward beyond the inputs"
    );
    println!(
        "{:>6} {:>11} {:>11} {:>8} {:>11} {:>11} {:>11} {:>11}",
        "T", "fused ms", "compose ms", "ratio", "fused MiB", "compose MiB", "fused sav", "compose sav"
    );
    let mib = |x: u64| x as f64 / (1024.0 * 1024.0);
    let mut rows = Vec::new();
    for &t in &args.seq {
        let fused = measure(&device, [b, h, t, dh], args.causal, true, backward, args.iters)?;
        let composed = match args.max_composed_seq {
            Some(max) if t > max => None,
            _ => Some(measure(&device, [b, h, t, dh], args.causal, false, backward, args.iters)?),
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
            "memory": "cubecl allocator: peak = growth of reserved bytes over the passes after a release; saved = live bytes between forward and backward beyond the inputs",
            "rows": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json).expect("json"))
            .map_err(|e| Error::Input(format!("cannot write it ({e})")).in_file(path.display()))?;
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
    let pass = |saved: &mut u64, base: MemoryReading| -> Result<(), Error> {
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

    // Warm-up (pipelines compiled, pools grown), then release and measure from a clean pool.
    let mut ignored = 0;
    let launches = fused_launches();
    pass(&mut ignored, MemoryReading::default())?;
    assert_eq!(fused_launches() > launches, fused, "the fused kernel ran exactly when asked");
    memory::release(device);
    let base = memory::reading(device).unwrap_or_default();
    let mut saved = 0;
    let start = Instant::now();
    for _ in 0..iters.max(1) {
        pass(&mut saved, base)?;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / iters.max(1) as f64;
    let after = memory::reading(device).unwrap_or_default();
    memory::release(device);
    Ok(Measure { ms, peak_bytes: after.reserved.saturating_sub(base.reserved), saved_bytes: saved })
}
