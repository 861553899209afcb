//! `hearth bench memory`: peak memory per rank of a GPT's training step under each combination
//! of the memory techniques (mixed precision, activation checkpointing, data parallelism with the
//! optimizer state replicated or sharded by ZeRO stage 1), and the largest GPT that fits a budget.
//!
//! Every figure is measured, not modelled: each combination is a fresh `hearth bench train`
//! process (under `hearth launch` for the data-parallel ones), whose peak is the process's resident
//! high-water mark on flex and the allocator's reserved bytes on wgpu, the largest over its ranks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hearth_core::Error;
use hearth_core::error::io;
use hearth_core::train::Precision;

#[derive(clap::Args)]
pub struct MemoryArgs {
    /// A GPT-2 preset (gpt2-124m, gpt-10m, gpt-bench-tiny, …); `--model.KEY value` overrides it.
    #[arg(long, default_value = "gpt2-124m")]
    preset: String,
    /// flex (CPU) or wgpu.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Sequences per optimizer step, over all ranks.
    #[arg(long, default_value_t = 2)]
    batch_size: usize,
    #[arg(long, default_value_t = 1024)]
    seq: usize,
    /// Ranks of the data-parallel combinations (processes on this machine).
    #[arg(long, default_value_t = 2)]
    nproc: usize,
    /// What starts the ranks: `hearth` (`hearth launch`, the TCP ring) or `mpiexec` (MPI; a hearth
    /// built with the `mpi` feature).
    #[arg(long, default_value = "hearth")]
    launcher: String,
    /// The half precision of the mixed combinations: f16 or bf16 (default: bf16 where the device
    /// has it, else f16).
    #[arg(long)]
    half: Option<String>,
    #[arg(long, default_value_t = 2)]
    steps: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Only these combinations (comma-separated names as printed, e.g. `f32,f32+ckpt,bf16+ckpt+zero1`).
    #[arg(long)]
    only: Option<String>,
    /// Find the largest GPT (GPT-2 family shapes) whose step fits in this many GiB per rank, plain
    /// f32 and with every technique on.
    #[arg(long)]
    budget_gib: Option<f64>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Any run-config key for every run (`--model.n_layer 6`, `--lr 1e-3`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    overrides: Vec<String>,
}

/// One way to run the step.
#[derive(Clone, Debug)]
struct Combination {
    precision: Precision,
    checkpointing: bool,
    /// 1: one process; more: data parallel.
    ranks: usize,
    zero: bool,
}

impl Combination {
    fn name(&self) -> String {
        let mut name = self.precision.name().to_string();
        if self.checkpointing {
            name += "+ckpt";
        }
        if self.ranks > 1 {
            name += if self.zero { "+zero1" } else { "+ddp" };
        }
        name
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct Measured {
    /// The largest over the ranks.
    peak_bytes: u64,
    step_ms: f64,
    optimizer_bytes: u64,
    loss_last: f64,
    params: u64,
}

/// GPT-2-family shapes `(n_layer, n_embd, n_head)`, smallest first: nanoGPT's small ones, then
/// GPT-2 124M, 350M, 774M, 1.5B.
const LADDER: [(usize, usize, usize); 9] = [
    (4, 256, 4),
    (6, 384, 6),
    (8, 512, 8),
    (12, 768, 12),
    (16, 1024, 16),
    (24, 1024, 16),
    (36, 1280, 20),
    (48, 1600, 25),
    (48, 2048, 32),
];

pub fn run(args: MemoryArgs) -> Result<(), Error> {
    check(&args)?; // ranks, launcher, batch: refused before any run
    let half = half_precision(&args)?; // f16 or bf16: what the adapter runs, or --half
    let combinations = combinations(&args, half)?; // every combination, or those --only names
    let exe = std::env::current_exe().map_err(|e| Error::Input(format!("cannot find the hearth executable ({e})")))?;
    let work = std::env::temp_dir().join(format!("hearth-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io("create", work.display()))?;
    let rows = measure_each(&exe, &work, &args, &combinations); // one process (or launch) per combination
    let fits = match args.budget_gib {
        Some(budget) => largest_fitting(&exe, &work, &args, half, budget), // the ladder of shapes, per setup
        None => Vec::new(),
    };
    std::fs::remove_dir_all(&work).ok();
    if let Some(path) = &args.json {
        write_json(path, &args, &rows, &fits)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Settings that cannot make a run, refused before any.
fn check(args: &MemoryArgs) -> Result<(), Error> {
    if args.nproc < 2 {
        return Err(Error::Config("--nproc must be at least 2 (the data-parallel combinations need ranks)".into()));
    }
    if !["hearth", "mpiexec"].contains(&args.launcher.as_str()) {
        return Err(Error::Config(format!("--launcher {}: choose hearth or mpiexec", args.launcher)));
    }
    if args.batch_size % args.nproc != 0 {
        return Err(Error::Config(format!(
            "--batch-size {} does not split over --nproc {}; make it a multiple",
            args.batch_size, args.nproc
        )));
    }
    Ok(())
}

/// The mixed precision the combinations use: `--half`, or bf16 where the device has it.
fn half_precision(args: &MemoryArgs) -> Result<Precision, Error> {
    Ok(match args.half.as_deref() {
        Some("f16") => Precision::F16,
        Some("bf16") => Precision::Bf16,
        Some(other) => return Err(Error::Config(format!("--half {other}: choose f16 or bf16"))),
        None => {
            let (_, device) = crate::backend::choose(&args.backend)?;
            match Precision::Bf16.supported_on(&device) {
                (Precision::Bf16, _) => Precision::Bf16,
                _ => Precision::F16,
            }
        }
    })
}

/// Precision × activation checkpointing, alone and over `--nproc` ranks with and without ZeRO-1;
/// those `--only` names.
fn combinations(args: &MemoryArgs, half: Precision) -> Result<Vec<Combination>, Error> {
    let mut combinations = Vec::new();
    for ranks in [1, args.nproc] {
        for zero in if ranks == 1 { vec![false] } else { vec![false, true] } {
            for precision in [Precision::F32, half] {
                for checkpointing in [false, true] {
                    combinations.push(Combination { precision, checkpointing, ranks, zero });
                }
            }
        }
    }
    if let Some(only) = &args.only {
        let names: Vec<&str> = only.split(',').map(str::trim).collect();
        combinations.retain(|c| names.contains(&c.name().as_str()));
        if combinations.is_empty() {
            return Err(Error::Config(format!("--only {only}: no such combination (names look like f32+ckpt+zero1)")));
        }
        if args.half.is_some() && combinations.iter().all(|c| c.precision == Precision::F32) {
            return Err(Error::Refused(format!(
                "--half does not apply: it picks the mixed precision, and --only {only} runs f32 alone"
            )));
        }
    }
    Ok(combinations)
}

/// Each combination measured in its own process(es), a table row printed as it lands.
fn measure_each(
    exe: &Path,
    work: &Path,
    args: &MemoryArgs,
    combinations: &[Combination],
) -> Vec<(Combination, Result<Measured, String>)> {
    println!(
        "hearth bench memory: {} on {}, batch {} × seq {} per step ({} per rank with {} ranks), {} warm-up + {} steps per run",
        args.preset,
        args.backend,
        args.batch_size,
        args.seq,
        args.batch_size / args.nproc,
        args.nproc,
        args.warmup,
        args.steps
    );
    println!(
        "{:<20} {:>5} {:>14} {:>8} {:>11} {:>19} {:>10}",
        "combination", "ranks", "peak per rank", "vs f32", "step (ms)", "optimizer per rank", "last loss"
    );
    let mut rows = Vec::new();
    let mut baseline: Option<u64> = None;
    for (i, c) in combinations.iter().enumerate() {
        let measured = measure(exe, work, args, c, &[], i);
        match &measured {
            Ok(m) => {
                let base = *baseline.get_or_insert(m.peak_bytes);
                println!(
                    "{:<20} {:>5} {:>10.1} MiB {:>7.2}× {:>11.0} {:>15.1} MiB {:>10.4}",
                    c.name(),
                    c.ranks,
                    mib(m.peak_bytes),
                    m.peak_bytes as f64 / base as f64,
                    m.step_ms,
                    mib(m.optimizer_bytes),
                    m.loss_last
                );
            }
            Err(e) => println!("{:<20} {:>5} failed: {e}", c.name(), c.ranks),
        }
        rows.push((c.clone(), measured));
    }
    rows
}

/// The largest shape of the ladder whose peak fits `budget` GiB per rank: plain f32 on one
/// process, and every saving on (half precision, checkpointing, ZeRO-1 over the ranks).
fn largest_fitting(exe: &Path, work: &Path, args: &MemoryArgs, half: Precision, budget: f64) -> Vec<Fit> {
    let budget_bytes = (budget * 1024.0 * 1024.0 * 1024.0) as u64;
    let all_on = Combination { precision: half, checkpointing: true, ranks: args.nproc, zero: true };
    let plain = Combination { precision: Precision::F32, checkpointing: false, ranks: 1, zero: false };
    let mut fits = Vec::new();
    for c in [plain, all_on] {
        println!("\nlargest GPT within {budget} GiB per rank, {}:", c.name());
        let mut best: Option<((usize, usize, usize), Measured)> = None;
        for (j, &(l, d, h)) in LADDER.iter().enumerate() {
            let shape = [
                "--model.n_layer".to_string(),
                l.to_string(),
                "--model.n_embd".into(),
                d.to_string(),
                "--model.n_head".into(),
                h.to_string(),
            ];
            match measure(exe, work, args, &c, &shape, 100 + j) {
                Ok(m) if m.peak_bytes <= budget_bytes => {
                    println!(
                        "  {l:>2} layers × d {d:<4} {:>7.1}M parameters: {:>9.1} MiB  fits",
                        m.params as f64 / 1e6,
                        mib(m.peak_bytes)
                    );
                    best = Some(((l, d, h), m));
                }
                Ok(m) => {
                    println!(
                        "  {l:>2} layers × d {d:<4} {:>7.1}M parameters: {:>9.1} MiB  over the budget",
                        m.params as f64 / 1e6,
                        mib(m.peak_bytes)
                    );
                    break;
                }
                Err(e) => {
                    println!("  {l:>2} layers × d {d:<4}: failed ({e}); taken as not fitting");
                    break;
                }
            }
        }
        match &best {
            Some(((l, d, h), m)) => println!(
                "  → {l} layers, d {d}, {h} heads: {:.1}M parameters, {:.1} MiB per rank",
                m.params as f64 / 1e6,
                mib(m.peak_bytes)
            ),
            None => println!("  → none of the shapes fits"),
        }
        fits.push((c, best));
    }
    fits
}

/// A setup and the largest shape that fit it (`(n_layer, n_embd, n_head)` and its run).
type Fit = (Combination, Option<((usize, usize, usize), Measured)>);

/// `--json`: every run, and the largest fitting shapes.
fn write_json(
    path: &Path,
    args: &MemoryArgs,
    rows: &[(Combination, Result<Measured, String>)],
    fits: &[Fit],
) -> Result<(), Error> {
    let row = |c: &Combination, m: &Measured| {
        serde_json::json!({
            "combination": c.name(), "precision": c.precision.name(), "gradient_checkpointing": c.checkpointing,
            "ranks": c.ranks, "zero_stage": c.zero as u8,
            "peak_bytes_per_rank": m.peak_bytes, "step_ms": m.step_ms,
            "optimizer_state_bytes_per_rank": m.optimizer_bytes, "loss_last": m.loss_last, "params": m.params,
        })
    };
    let json = serde_json::json!({
        "preset": args.preset, "backend": args.backend, "batch_size": args.batch_size, "seq": args.seq,
        "nproc": args.nproc, "launcher": args.launcher, "overrides": args.overrides,
        "runs": rows.iter().map(|(c, m)| match m {
            Ok(m) => row(c, m),
            Err(e) => serde_json::json!({"combination": c.name(), "error": e.to_string()}),
        }).collect::<Vec<_>>(),
        "budget_gib": args.budget_gib,
        "largest_fitting": fits.iter().map(|(c, best)| serde_json::json!({
            "combination": c.name(),
            "shape": best.as_ref().map(|((l, d, h), _)| serde_json::json!({"n_layer": l, "n_embd": d, "n_head": h})),
            "run": best.as_ref().map(|(_, m)| row(c, m)),
        })).collect::<Vec<_>>(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&json).expect("json")).map_err(io("write", path.display()))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs one combination in fresh processes and reads back what each rank measured.
fn measure(
    exe: &Path,
    work: &Path,
    args: &MemoryArgs,
    c: &Combination,
    extra: &[String],
    index: usize,
) -> Result<Measured, String> {
    let json = work.join(format!("run{index}.json"));
    let mut bench: Vec<String> = vec!["bench".into(), "train".into()];
    for (k, v) in [
        ("--preset", args.preset.clone()),
        ("--backend", args.backend.clone()),
        ("--batch-size", args.batch_size.to_string()),
        ("--seq", args.seq.to_string()),
        ("--steps", args.steps.to_string()),
        ("--warmup", args.warmup.to_string()),
        ("--json", json.display().to_string()),
        ("--precision", c.precision.name().to_string()),
        ("--gradient_checkpointing", c.checkpointing.to_string()),
        ("--zero_stage", (c.zero as u8).to_string()),
    ] {
        bench.extend([k.to_string(), v]);
    }
    bench.extend(args.overrides.iter().cloned());
    bench.extend(extra.iter().cloned());
    let mut command = Command::new(exe);
    if c.ranks > 1 && args.launcher == "mpiexec" {
        command = Command::new("mpiexec");
        command.args(["-n", &c.ranks.to_string()]).arg(exe);
    } else if c.ranks > 1 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port for the ranks ({e})"))?;
        command.args(["launch", "--nproc-per-node", &c.ranks.to_string(), "--master-port", &port.to_string(), "--"]);
    }
    let output = command
        .args(&bench)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot start {} ({e})", exe.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR"));
        return Err(last.unwrap_or("exited unsuccessfully").trim().to_string());
    }
    let files: Vec<PathBuf> =
        if c.ranks > 1 { (0..c.ranks).map(|r| super::train::rank_json(&json, r)).collect() } else { vec![json] };
    let mut m = Measured::default();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        m.peak_bytes = m.peak_bytes.max(v["peak_memory_bytes"].as_u64().unwrap_or(0));
        m.optimizer_bytes = m.optimizer_bytes.max(v["optimizer_state_bytes"].as_u64().unwrap_or(0));
        m.step_ms = m.step_ms.max(v["step_ms_median"].as_f64().unwrap_or(f64::NAN));
        m.loss_last = v["loss_last"].as_f64().unwrap_or(f64::NAN);
        m.params = v["params"].as_u64().unwrap_or(0);
        std::fs::remove_file(&file).ok();
    }
    Ok(m)
}
