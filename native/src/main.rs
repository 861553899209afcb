#![recursion_limit = "256"]
//! `hearth`: the command-line program.

//!
//! The floors (ARCHITECTURE.md, held by `tests/tests/architecture.rs`), top down: `commands` (one
//! module per subcommand), `storage` (what is kept on disk, trained models opened), `backend` (the
//! device of a rank), `distributed` (ranks, the TCP ring, MPI), then `faults`, `overrides` and
//! `report`, over hearth-core.

mod backend;
mod commands;
mod distributed;
mod faults;
mod overrides;
mod report;
mod storage;

use std::alloc::GlobalAlloc;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{attention, bench, eval, finetune, infer, launch, parity, prepare, suites, tokenizer, train};

#[derive(Parser)]
#[command(name = "hearth", version, about = "Pretraining of transformer language models on any GPU, through WebGPU")]
struct Cli {
    /// CPU threads for the flex backend's kernels and matrix products (default: every core this
    /// process may use, or $RAYON_NUM_THREADS; `hearth launch` divides the cores among its ranks).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// GPU backends: burn's kernel fusion, `on` or `off` (default: on).
    #[arg(long, global = true, value_parser = ["on", "off"])]
    fusion: Option<String>,
    /// GPU backends: how hard cubecl's autotune searches a shape it meets the first time, `minimal`,
    /// `balanced`, `extensive` or `full` (default: balanced on a hardware adapter, minimal on a
    /// software renderer; results are kept in the user's cache folder, so later runs pay nothing).
    #[arg(long, global = true)]
    autotune: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Recompute a Hugging Face reference (config.json, model.safetensors, io.safetensors) and
    /// compare logits, loss and every parameter gradient.
    Parity(parity::Args),
    /// Pretrain a model: with no arguments, a tiny GPT on the bundled Pride and Prejudice.
    Train(train::Args),
    /// Train a tokenizer (bpe, wordpiece, unigram) and write tokenizer.json.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Tokenize text into memory-mapped shards with a validation split.
    Prepare(prepare::PrepareArgs),
    /// Evaluate a checkpoint: perplexity (and bits per byte) on a text, zero-shot and few-shot tasks,
    /// or the GLUE and SuperGLUE suites.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Fine-tune a pretrained BERT or GPT-2 for sequence classification, or a T5 text-to-text
    /// (GLUE-style TSV/CSV/JSONL).
    Finetune(finetune::Args),
    /// What a model attends to for a text: one layer's and head's weights as a heat map (text, SVG),
    /// every map as JSON.
    Attention(attention::Args),
    /// Continue a prompt with a causal model (greedy, temperature, top-k, top-p).
    Generate(infer::GenerateArgs),
    /// Fill [MASK] with a masked model: top-k tokens and probabilities.
    FillMask(infer::FillMaskArgs),
    /// Run an encoder-decoder (T5) on an input.
    Text2text(infer::Text2TextArgs),
    /// Data-parallel training: start N `hearth` processes on this machine (torchrun's environment:
    /// RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), e.g.
    /// `hearth launch --nproc-per-node 2 -- train --preset gpt2-124m`.
    Launch(LaunchArgs),
    /// Benchmarks (`hearth bench attention`, `hearth bench train`, `hearth bench memory`).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(clap::Args)]
struct LaunchArgs {
    /// Processes on this machine (one per GPU).
    #[arg(long, default_value_t = 1)]
    nproc_per_node: usize,
    /// Machines in the run.
    #[arg(long, default_value_t = 1)]
    nnodes: usize,
    /// This machine's index, 0..nnodes (node 0 hosts rank 0 and the rendezvous).
    #[arg(long, default_value_t = 0)]
    node_rank: usize,
    /// Node 0's address, reachable from every machine.
    #[arg(long, default_value = "127.0.0.1")]
    master_addr: String,
    #[arg(long, default_value_t = 29500)]
    master_port: u16,
    /// The `hearth` command each process runs (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Perplexity with a sliding window and bits per byte (causal); masked-LM accuracy and
    /// pseudo-perplexity (BERT); span-corruption loss (T5).
    Perplexity(eval::PerplexityArgs),
    /// Zero-shot and few-shot tasks: JSONL (multiple choice by log-likelihood, cloze by greedy
    /// completion), MMLU's CSV folders, HellaSwag's and LAMBADA's released JSONL.
    ZeroShot(eval::ZeroShotArgs),
    /// GLUE: fine-tunes the checkpoint on every task in the folder and reports the official metrics.
    Glue(suites::Args),
    /// SuperGLUE: fine-tunes the checkpoint on every task in the folder and reports the official
    /// metrics.
    Superglue(suites::Args),
}

#[derive(Subcommand)]
enum TokenizerCommand {
    /// Train a tokenizer on text files.
    Train(tokenizer::TokenizerTrainArgs),
}

/// The system allocator, which says what to change when the machine runs out of memory: a run that
/// outgrows the RAM (the estimate `hearth train` checks first can miss, e.g. beside other programs)
/// then ends with this line before Rust's own "memory allocation of N bytes failed" and the abort.
struct Allocator;

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

// SAFETY: every call is passed to the system allocator unchanged; only a failure is reported.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        out_of_memory_said(unsafe { std::alloc::System.alloc(layout) }, layout.size())
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        out_of_memory_said(unsafe { std::alloc::System.alloc_zeroed(layout) }, layout.size())
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        out_of_memory_said(unsafe { std::alloc::System.realloc(ptr, layout, new_size) }, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// `ptr`, after one line on stderr when it is null. Allocates nothing (it runs when nothing can be).
fn out_of_memory_said(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() {
        use std::io::Write;
        let (mut n, unit): (usize, &[u8]) = if size >= 1 << 20 { (size >> 20, b" MiB") } else { (size, b" bytes") };
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(b"error: out of memory: an allocation of ");
        let _ = err.write_all(&digits[i..]);
        let _ = err.write_all(unit);
        let _ = err.write_all(
            b" failed. Make the run smaller: gradient_checkpointing = true, precision = \"bf16\", \
              a smaller batch_size (grad_accum keeps the tokens per step) or block_size; `hearth train --keys` lists them\n",
        );
    }
    ptr
}

/// glibc's malloc returns freed blocks above its mmap threshold (and the top of the heap above its
/// trim threshold) to the kernel at once; a training step frees and re-allocates the same tensor
/// buffers every step, so each step paid page faults and zeroing for them again (~10% of a tiny
/// GPT's step on flex, ~9% of the 10M GPT's). Keep them in the process instead: every block comes
/// from the heap (no mmap), and the heap is not trimmed. The resident peak grows a little
/// (freed blocks are reused, not returned: 645 → 730 MiB for the 10M GPT at batch 8 × 128).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// The global options (`--threads`, `--fusion`, `--autotune`) work anywhere on the line. clap takes
/// them after any subcommand but `train`, whose `--key value` settings take every flag that follows
/// them as a run-file key: there they are moved in front of the subcommand. (`launch` keeps its
/// command's options: they belong to the processes it starts.)
fn hoist_global_options(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const GLOBAL: [&str; 3] = ["--threads", "--fusion", "--autotune"];
    let Some(train) = args.iter().position(|a| a == "train") else { return args };
    if args[1..train].iter().any(|a| a == "launch") {
        return args;
    }
    let (mut front, mut rest) = (args[..train].to_vec(), Vec::new());
    let mut tail = args[train..].iter();
    while let Some(arg) = tail.next() {
        let text = arg.to_string_lossy();
        let name = text.split('=').next().unwrap_or_default();
        if GLOBAL.contains(&name) {
            front.push(arg.clone());
            if !text.contains('=') {
                front.extend(tail.next().cloned());
            }
        } else {
            rest.push(arg.clone());
        }
    }
    front.extend(rest);
    front
}

fn main() -> ExitCode {
    keep_freed_memory();
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa prints "XDG_RUNTIME_DIR is invalid" on every Vulkan start without it.
        // SAFETY: nothing else runs yet; no other thread reads the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let cli = Cli::parse_from(hoist_global_options(std::env::args_os().collect()));
    let autotune = match cli.autotune.as_deref().map(str::parse).transpose() {
        Ok(level) => level,
        Err(e) => {
            eprintln!("error: --autotune: {e}");
            return ExitCode::from(2);
        }
    };
    backend::set_options(backend::GpuOptions { fusion: cli.fusion.as_deref().map(|f| f == "on"), autotune });
    // The CPU backend's thread pool, with the main thread as one of its workers: a kernel called
    // from the training loop starts on this thread instead of waking another and waiting for it
    // (at one thread, everything runs here). Built before the first parallel call would build the
    // default pool.
    let mut pool = rayon::ThreadPoolBuilder::new().use_current_thread();
    if let Some(threads) = cli.threads {
        if threads == 0 {
            eprintln!("error: --threads 0: give a positive number of CPU threads");
            return ExitCode::from(2);
        }
        pool = pool.num_threads(threads);
    }
    if let Err(e) = pool.build_global() {
        eprintln!("warning: the CPU thread pool could not be set up ({e}); flex uses rayon's default");
    }
    let result = match cli.command {
        Command::Parity(args) => parity::run(args),
        Command::Train(args) => train::run(args).map(|()| ExitCode::SUCCESS),
        Command::Tokenizer(TokenizerCommand::Train(args)) => {
            tokenizer::run_tokenizer_train(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Prepare(args) => prepare::run(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(EvalCommand::Perplexity(args)) => eval::run_perplexity(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(EvalCommand::ZeroShot(args)) => eval::run_zero_shot(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(EvalCommand::Glue(args)) => suites::run(suites::Suite::Glue, args).map(|()| ExitCode::SUCCESS),
        Command::Eval(EvalCommand::Superglue(args)) => {
            suites::run(suites::Suite::Superglue, args).map(|()| ExitCode::SUCCESS)
        }
        Command::Finetune(args) => finetune::run(args).map(|()| ExitCode::SUCCESS),
        Command::Attention(args) => attention::run(args).map(|()| ExitCode::SUCCESS),
        Command::Generate(args) => infer::run_generate(args).map(|()| ExitCode::SUCCESS),
        Command::FillMask(args) => infer::run_fill_mask(args).map(|()| ExitCode::SUCCESS),
        Command::Text2text(args) => infer::run_text2text(args).map(|()| ExitCode::SUCCESS),
        Command::Launch(a) => {
            let plan = launch::LaunchPlan {
                nproc_per_node: a.nproc_per_node,
                nnodes: a.nnodes,
                node_rank: a.node_rank,
                master_addr: a.master_addr,
                master_port: a.master_port,
                args: a.command,
            };
            std::env::current_exe()
                .map_err(|e| hearth_core::Error::Distributed(format!("cannot find the hearth executable ({e})")))
                .and_then(|exe| launch::launch(&exe, &plan).map_err(hearth_core::Error::Distributed))
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(command) => bench::run(command).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
