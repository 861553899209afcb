//! `hearth bench train`: the speed of the real training step — the model `hearth train` builds,
//! its `Trainer` (forward, loss, backward, global-norm clipping, AdamW) — on random tokens.
//!
//! FLOPs per token follow nanoGPT / PaLM (appendix B): `6·N + 12·n_layer·seq·d_model`, where `N`
//! is the parameter count without the position table (the tied token embedding counts once, as
//! the LM head's matmul), `6·N` the matmuls forward (2) and backward (4), and `12·L·T·d` the
//! attention scores and the weighted sum (2 matmuls of `T·d` per token per layer, ×2 FLOPs, ×3
//! for forward + backward). MFU = achieved FLOP/s ÷ the peak of the device.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use hearth_core::error::io;
use hearth_core::models::presets::preset;
use hearth_core::models::{Gpt2Config, ModelConfig};
use hearth_core::objectives::{Collator, Rng};
use hearth_core::parallel::Collective;
use hearth_core::readback;
use hearth_core::train::engine::Cadence;
use hearth_core::train::pretraining::Pretraining;
use hearth_core::train::run::RunPlan;
use hearth_core::train::{Engine, Precision, Sink, TrainConfig, Trainer};
use hearth_core::{Backend, Error};
use hearth_shaders::memory;
use rand::{Rng as _, SeedableRng};

use crate::distributed::Ranks;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// A GPT-2 preset: gpt-bench-tiny (vocab 512, d 128, 2 layers, 4 heads), gpt-10m (vocab 8192,
    /// d 320, 6 layers, 5 heads), gpt-tiny, gpt2-124m; `--model.KEY value` overrides its HF keys.
    #[arg(long, default_value = "gpt-bench-tiny")]
    preset: String,
    /// flex (CPU) or wgpu.
    #[arg(long, default_value = "flex")]
    backend: String,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 64)]
    seq: usize,
    /// Timed optimizer steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed optimizer steps first (allocations, shader compilation).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// The device's peak in TFLOP/s for MFU (default: the dense peak for the run's precision of a
    /// few known GPUs, by adapter name; none on flex, where MFU is then "n/a").
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Any run-config key as `--key value` (`--lr 1e-3`, `--grad-clip 0`, `--model.n_layer 6`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    overrides: Vec<String>,
}

/// Dense peaks of some GPUs, TFLOP/s, matched on the adapter's name (the first match wins):
/// `(name, f32 without tensor cores, f16/bf16 tensor cores with f32 accumulation, dense)`. Vendor
/// data sheets (NVIDIA's "without sparsity" figures; SXM parts where a PCIe one differs).
const KNOWN_PEAKS: [(&str, f64, f64); 13] = [
    ("H200", 67.0, 989.4),
    ("H100 PCIe", 51.2, 756.0),
    ("H100", 67.0, 989.4),
    ("A100", 19.5, 312.0),
    ("L40S", 91.6, 362.1),
    ("L4", 30.3, 121.0),
    ("A10", 31.2, 125.0),
    ("T4", 8.1, 65.0),
    ("V100", 15.7, 125.0),
    ("RTX 4090", 82.6, 165.2),
    ("RTX 3090", 35.6, 71.0),
    ("MI300X", 163.4, 1307.4),
    ("Apple M2", 3.6, 3.6),
];

/// The peak of `adapter` for `precision` from [`KNOWN_PEAKS`]: `(TFLOP/s, what it is)`.
fn known_peak(adapter: &str, precision: Precision) -> Option<(f64, String)> {
    let (name, f32_peak, half_peak) = KNOWN_PEAKS.iter().find(|(k, _, _)| adapter.contains(k))?;
    Some(match precision {
        Precision::F32 => (*f32_peak, format!("FP32 dense peak of {name} (data sheet)")),
        half => (*half_peak, format!("{} tensor-core dense peak of {name} (data sheet)", half.name())),
    })
}

/// Removes `--name V` / `--name=V` from the free-form settings (a flag given after them lands there).
fn take(overrides: &mut Vec<String>, name: &str) -> Option<String> {
    let flag = format!("--{name}");
    let i = overrides.iter().position(|a| a == &flag || a.starts_with(&format!("{flag}=")))?;
    let arg = overrides.remove(i);
    match arg.split_once('=') {
        Some((_, v)) => Some(v.to_string()),
        None if i < overrides.len() => Some(overrides.remove(i)),
        None => None,
    }
}

fn parse<T: std::str::FromStr>(name: &str, value: Option<String>, into: &mut T) -> Result<(), Error> {
    if let Some(v) = value {
        *into = v.parse().map_err(|_| Error::Config(format!("--{name}: not a valid value: {v}")))?;
    }
    Ok(())
}

/// Where rank `rank` of a data-parallel bench writes the report asked for at `path`.
pub fn rank_json(path: &std::path::Path, rank: usize) -> PathBuf {
    PathBuf::from(format!("{}.rank{rank}", path.display()))
}

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`): on a busy machine the time a
/// single-threaded backend really spent, beside the wall clock.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// FLOPs per trained token: `6·N + 12·n_layer·seq·d_model` (see the module's documentation).
pub fn flops_per_token(n_params_no_positions: usize, n_layer: usize, seq: usize, d_model: usize) -> f64 {
    6.0 * n_params_no_positions as f64 + 12.0 * (n_layer * seq * d_model) as f64
}

pub fn run(mut args: TrainArgs) -> Result<(), Error> {
    let config = bench_config(&mut args)?; // the run config `hearth train` would use for this shape
    let (ranks, collective) = crate::distributed::join()?; // one of several data-parallel ranks, or alone
    let (trainer, gpt, backend, device) = build(config, &ranks, collective)?; // the model hearth train builds
    let say = |line: String| {
        if ranks.rank == 0 {
            println!("{line}")
        }
    };
    for notice in &trainer.notices {
        say(format!("note: {notice}"));
    }
    let params = burn::module::Module::num_params(&trainer.model);
    let flops_tok =
        flops_per_token(params - gpt.n_positions * gpt.n_embd, gpt.n_layer, trainer.config().block_size, gpt.n_embd);
    let config = trainer.config().clone();
    let accum = config.accumulation();
    say(format!(
        "hearth bench train: {} (GPT-2, vocab {}, d {}, {} layers, {} heads; {:.2}M parameters) on {backend}, batch {} × seq {}{}, {} warm-up + {} timed steps, random tokens",
        config.preset,
        gpt.vocab_size,
        gpt.n_embd,
        gpt.n_layer,
        gpt.n_head,
        params as f64 / 1e6,
        config.batch_size,
        config.block_size,
        if accum > 1 { format!(" × accumulation {accum}") } else { String::new() },
        args.warmup,
        args.steps
    ));
    say(crate::backend::describe(backend, &device, config.fused_attention, trainer.precision()));
    let (trainer, timing) = time_steps(trainer, &device, args.warmup, args.steps)?; // warm-up, then timed steps
    let report = Report::new(&args, &config, &gpt, params, flops_tok, backend, &device, &timing, trainer.precision());
    report.print(&say);
    if let Some(path) = &args.json {
        report.write(path, &trainer, &ranks, &config)?;
        say(format!("wrote {}", rank_path(path, &ranks).display()));
    }
    Ok(())
}

/// The bench's flags (also given among the `--key value` settings) over the run config of
/// `hearth train`, with the bench's shape first. No dropout: the reference runs without it too.
fn bench_config(args: &mut TrainArgs) -> Result<TrainConfig, Error> {
    let mut rest = std::mem::take(&mut args.overrides);
    if let Some(v) = take(&mut rest, "preset") {
        args.preset = v;
    }
    if let Some(v) = take(&mut rest, "backend") {
        args.backend = v;
    }
    parse("batch-size", take(&mut rest, "batch-size"), &mut args.batch_size)?;
    parse("seq", take(&mut rest, "seq"), &mut args.seq)?;
    parse("steps", take(&mut rest, "steps"), &mut args.steps)?;
    parse("warmup", take(&mut rest, "warmup"), &mut args.warmup)?;
    if let Some(v) = take(&mut rest, "peak-tflops") {
        args.peak_tflops = Some(v.parse().map_err(|_| Error::Config(format!("--peak-tflops: not a number: {v}")))?);
    }
    if let Some(v) = take(&mut rest, "json") {
        args.json = Some(v.into());
    }
    if args.steps == 0 {
        return Err(Error::Config("--steps must be at least 1".into()));
    }
    let mut settings: Vec<String> = [
        ("preset", args.preset.clone()),
        ("backend", args.backend.clone()),
        ("batch_size", args.batch_size.to_string()),
        ("block_size", args.seq.to_string()),
        ("max_steps", (args.warmup + args.steps).to_string()),
        ("dropout", "0.0".into()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [format!("--{k}"), v])
    .collect();
    settings.extend(rest);
    crate::commands::train::load_config(None, &settings)
}

/// The GPT-2 of the config, checked and built as `hearth train` builds it (core's `RunPlan`),
/// in a trainer joined to the other ranks.
fn build(
    mut config: TrainConfig,
    ranks: &Ranks,
    collective: Option<Box<dyn Collective>>,
) -> Result<(Trainer, Gpt2Config, Backend, Device), Error> {
    let model_config = preset(&config.preset, &config.model)?;
    let ModelConfig::Gpt2(gpt) = &model_config else {
        return Err(Error::Config(format!(
            "bench train measures GPT-2 models; {} is a {}",
            config.preset,
            model_config.model_type()
        )));
    };
    let gpt = gpt.clone();
    if config.batch_size % ranks.world != 0 {
        return Err(Error::Config(format!(
            "--batch-size {} does not split over {} ranks",
            config.batch_size, ranks.world
        )));
    }
    let (backend, device) = crate::backend::choose_for_rank(&config.backend, ranks)?;
    config.backend = backend.to_string();
    // Every tensor must fit one binding (the memory itself is what this benchmark measures).
    // The run checked and built as `hearth train` builds one (core's RunPlan), on random tokens.
    let plan = RunPlan::synthetic(config, model_config, Collator::Causal)?;
    let fused = hearth_core::footprint::fused_attention(&device, plan.config.fused_attention);
    let local = ((plan.config.batch_size / ranks.world).max(1), plan.config.block_size);
    let limits = crate::backend::limits(backend, &device);
    hearth_core::footprint::check_model(&plan.model_config, local, fused, true, &limits, "training")?;
    let mut trainer = plan.trainer(&device, None)?;
    if let Some(c) = collective {
        trainer = hearth_core::readback::block_on(trainer.with_parallel(c))?;
    }
    Ok((trainer, gpt, backend, device))
}

/// What the steps took.
struct Timing {
    /// Wall time of each timed step (device synchronised), s.
    times: Vec<f64>,
    /// The main thread's CPU time over the timed steps, ns.
    cpu_ns: u64,
    /// The loss of every step, warm-up included (read back once, after the last).
    losses: Vec<f64>,
    /// Over the timed steps: kernels launched (cubecl devices), reads from the device to the host,
    /// and bytes Hearth uploaded (the batches).
    launches: u64,
    reads: u64,
    uploaded: u64,
}

/// Counts the kernels cubecl launches, on every thread and device, while it is installed.
#[derive(Default)]
struct LaunchCounter(std::sync::atomic::AtomicU64);

impl burn::cubecl::logging::LaunchObserver for LaunchCounter {
    fn launched(&self, _kernel: &'static str) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The bench's sink: a clock around each step (the device synced before it stops), and from the
/// first timed step on, the kernel launches, host reads and uploads counted.
struct StepTimer<'d> {
    device: &'d Device,
    warmup: usize,
    /// Steps begun.
    begun: usize,
    start: Instant,
    step_start: (Instant, Option<u64>),
    counter: std::sync::Arc<LaunchCounter>,
    observation: Option<burn::cubecl::logging::LaunchObservation>,
    reads0: u64,
    uploaded0: u64,
    timing: Timing,
}

impl Sink for StepTimer<'_> {
    fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn before_step(&mut self) {
        if self.begun == self.warmup {
            // The timed steps' counters start here.
            self.observation = Some(burn::cubecl::logging::LaunchObservation::new(self.counter.clone()));
            (self.reads0, self.uploaded0) = (readback::reads(), readback::uploaded_bytes());
        }
        self.begun += 1;
        self.step_start = (Instant::now(), thread_cpu_ns());
    }

    fn progress(&mut self, _step: u64, _record: Option<&serde_json::Value>) -> Result<(), Error> {
        self.device.sync().map_err(|e| Error::Device(format!("device sync: {e:?}")))?;
        let dt = self.step_start.0.elapsed().as_secs_f64();
        if self.begun > self.warmup {
            self.timing.times.push(dt);
            self.timing.cpu_ns += thread_cpu_ns().zip(self.step_start.1).map_or(0, |(b, a)| b - a);
        }
        Ok(())
    }

    fn say(&mut self, _line: String) {}

    fn keep(&mut self, _record: &serde_json::Value) -> Result<(), Error> {
        Ok(())
    }
}

/// `warmup` untimed steps, then `steps` timed ones, on random tokens uniform over the vocabulary
/// (the step's cost does not depend on the text), driven by core's engine with no job due: nothing
/// is read back until the losses, once, after the last step.
fn time_steps(mut trainer: Trainer, device: &Device, warmup: usize, steps: usize) -> Result<(Trainer, Timing), Error> {
    let config = trainer.config();
    let (seq, tokens_per_step) = (config.block_size, config.batch_size * config.block_size * config.accumulation());
    let vocab = trainer.model_config.vocab_size() as u32;
    let mut rng = Rng::seed_from_u64(config.seed);
    let data: Vec<u32> = (0..tokens_per_step * (warmup + steps) + seq).map(|_| rng.random_range(0..vocab)).collect();
    let mut timer = StepTimer {
        device,
        warmup,
        begun: 0,
        start: Instant::now(),
        step_start: (Instant::now(), None),
        counter: Default::default(),
        observation: None,
        reads0: 0,
        uploaded0: 0,
        timing: Timing {
            times: Vec::with_capacity(steps),
            cpu_ns: 0,
            losses: Vec::with_capacity(warmup + steps),
            launches: 0,
            reads: 0,
            uploaded: 0,
        },
    };
    let until = trainer.state().step + (warmup + steps) as u64;
    let cadence = Cadence { last: until, log_every: None, checkpoint_every: 0 };
    readback::block_on(Engine::new(cadence, None).run(
        &mut Pretraining::new(&mut trainer, &data),
        until,
        &mut [],
        &mut timer,
    ))?;
    drop(timer.observation.take());
    let mut timing = timer.timing;
    timing.launches = timer.counter.0.load(std::sync::atomic::Ordering::Relaxed);
    timing.reads = readback::reads() - timer.reads0;
    timing.uploaded = readback::uploaded_bytes() - timer.uploaded0;
    timing.losses = readback::block_on(trainer.read_stats())?.iter().map(|s| s.loss).collect();
    Ok((trainer, timing))
}

/// The numbers a bench reports: speed, FLOPs, MFU against the device's peak, memory.
struct Report {
    json: serde_json::Value,
    lines: Vec<String>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn new(
        args: &TrainArgs,
        config: &TrainConfig,
        gpt: &Gpt2Config,
        params: usize,
        flops_tok: f64,
        backend: Backend,
        device: &Device,
        timing: &Timing,
        precision: Precision,
    ) -> Self {
        let (batch, seq, accum) = (config.batch_size, config.block_size, config.accumulation());
        let tokens_per_step = batch * seq * accum;
        let params_flops = params - gpt.n_positions * gpt.n_embd;
        let timed_s: f64 = timing.times.iter().sum();
        let tokens_per_s = (tokens_per_step * args.steps) as f64 / timed_s;
        let step_ms_median = median(&timing.times) * 1e3;
        let step_ms_mean = timed_s / timing.times.len() as f64 * 1e3;
        let achieved_tflops = flops_tok * tokens_per_s / 1e12;
        let (peak_memory, memory_source) = match backend {
            Backend::Flex => (crate::report::peak_rss(), "process RSS high-water mark (VmHWM)"),
            _ => (
                memory::reading(device).map(|m| m.reserved),
                "cubecl allocator: bytes the device pools reserved (high-water mark)",
            ),
        };
        let adapter = match backend {
            Backend::Flex => None,
            _ => crate::backend::adapter_name(),
        };
        let (peak_tflops, peak_source) = match (args.peak_tflops, &adapter) {
            (Some(p), _) => (Some(p), "--peak-tflops".to_string()),
            (None, Some(name)) => match known_peak(name, precision) {
                Some((p, what)) => (Some(p), what),
                None => (None, format!("unknown for adapter \"{name}\"; pass --peak-tflops")),
            },
            (None, None) => (None, "unknown for the CPU; pass --peak-tflops".to_string()),
        };
        let per_step = |n: u64| n as f64 / args.steps as f64;
        let (launches, reads, uploaded) =
            (per_step(timing.launches), per_step(timing.reads), per_step(timing.uploaded));
        let mfu = peak_tflops.map(|p| achieved_tflops / p);
        let cpu_ms_per_step = timing.cpu_ns as f64 / 1e6 / args.steps as f64;
        let (first, last) = (timing.losses[0], timing.losses[timing.losses.len() - 1]);
        let lines = vec![
            format!("tokens/s        {tokens_per_s:.0}"),
            format!(
                "step time       median {step_ms_median:.2} ms, mean {step_ms_mean:.2} ms (main thread on CPU {cpu_ms_per_step:.2} ms)"
            ),
            format!(
                "achieved        {achieved_tflops:.4} TFLOP/s ({flops_tok:.0} FLOPs/token = 6·{params_flops} + 12·{}·{seq}·{})",
                gpt.n_layer, gpt.n_embd
            ),
            match (mfu, peak_tflops) {
                (Some(m), Some(p)) => format!("MFU             {:.2}% of {p} TFLOP/s ({peak_source})", m * 100.0),
                _ => format!("MFU             n/a (peak {peak_source})"),
            },
            match peak_memory {
                Some(b) => format!("peak memory     {:.1} MiB ({memory_source})", b as f64 / (1024.0 * 1024.0)),
                None => "peak memory     n/a".to_string(),
            },
            format!(
                "per step        {launches:.0} kernel launches, {reads:.2} host reads, {:.1} KiB uploaded",
                uploaded / 1024.0
            ),
            format!("loss            {first:.4} → {last:.4}"),
        ];
        let json = serde_json::json!({
            "tool": "hearth",
            "backend": backend.to_string(),
            "adapter": adapter,
            "preset": config.preset,
            "vocab_size": gpt.vocab_size, "n_embd": gpt.n_embd, "n_layer": gpt.n_layer, "n_head": gpt.n_head,
            "n_positions": gpt.n_positions,
            "batch_size": batch, "seq": seq, "grad_accum": accum,
            "warmup": args.warmup, "steps": args.steps,
            "params": params, "params_flops": params_flops,
            "flops_per_token": flops_tok,
            "flops_formula": "6*params_flops + 12*n_layer*seq*n_embd (params_flops: parameters without the position table)",
            "tokens_per_step": tokens_per_step,
            "timed_s": timed_s,
            "tokens_per_s": tokens_per_s,
            "step_ms_median": step_ms_median, "step_ms_mean": step_ms_mean,
            "main_thread_cpu_ms_per_step": cpu_ms_per_step,
            "step_ms": timing.times.iter().map(|t| t * 1e3).collect::<Vec<_>>(),
            "achieved_tflops": achieved_tflops,
            "peak_tflops": peak_tflops, "peak_source": peak_source, "mfu": mfu,
            "peak_memory_bytes": peak_memory, "memory_source": memory_source,
            "loss_first": first, "loss_last": last,
            "precision": precision.name(),
            "device": crate::backend::describe(backend, device, config.fused_attention, precision),
            "kernel_launches_per_step": launches, "host_reads_per_step": reads, "bytes_uploaded_per_step": uploaded,
            "lr": config.lr, "beta1": config.beta1, "beta2": config.beta2, "eps": config.eps,
            "weight_decay": config.weight_decay, "grad_clip": config.grad_clip,
        });
        Self { json, lines }
    }

    fn print(&self, say: &dyn Fn(String)) {
        for line in &self.lines {
            say(line.clone());
        }
    }

    /// The JSON, with the run's precision, ranks and optimizer state; rank r of several writes
    /// `<path>.rank<r>`.
    fn write(
        mut self,
        path: &std::path::Path,
        trainer: &Trainer,
        ranks: &Ranks,
        config: &TrainConfig,
    ) -> Result<(), Error> {
        self.json["gradient_checkpointing"] = config.gradient_checkpointing.into();
        self.json["rank"] = ranks.rank.into();
        self.json["world"] = ranks.world.into();
        self.json["zero_stage"] = config.zero_stage.into();
        self.json["optimizer_state_bytes"] = trainer.optimizer_state_bytes().into();
        let path = rank_path(path, ranks);
        std::fs::write(&path, serde_json::to_string_pretty(&self.json).expect("json"))
            .map_err(io("write", path.display()))
    }
}

/// Where this rank writes its JSON.
fn rank_path(path: &std::path::Path, ranks: &Ranks) -> PathBuf {
    if ranks.world > 1 { rank_json(path, ranks.rank) } else { path.to_path_buf() }
}
