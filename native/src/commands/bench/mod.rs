//! `hearth bench …`: how fast and how big. `attention`: the fused kernel against burn's
//! composition; `train`: the speed of real training steps (tokens/s, TFLOP/s, MFU, peak memory),
//! to set beside `bench/pytorch_reference.py`; `memory`: peak memory per technique; `adapters` and
//! `parity`: the GPU at hand.

mod attention;
mod device;
mod memory;
mod train;

use hearth_core::Error;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Fused attention vs burn's composition: forward + backward time and peak device memory per T.
    Attention(self::attention::AttentionArgs),
    /// Training speed: warm-up, then timed optimizer steps of the real trainer on random tokens;
    /// tokens/s, step time, TFLOP/s, MFU and peak memory.
    Train(self::train::TrainArgs),
    /// Peak memory per rank under each combination of mixed precision, activation checkpointing
    /// and data parallelism (replicated or ZeRO-1 optimizer state); the largest GPT in a budget.
    Memory(self::memory::MemoryArgs),
    /// The GPU adapters wgpu finds (and whether CUDA is built in); `--require NVIDIA` fails fast.
    Adapters(self::device::AdaptersArgs),
    /// A GPT on a GPU backend against flex: logits and loss on the same weights and tokens.
    Parity(self::device::ParityArgs),
}

pub fn run(command: BenchCommand) -> Result<(), Error> {
    match command {
        BenchCommand::Attention(args) => self::attention::run(args),
        BenchCommand::Train(args) => self::train::run(args),
        BenchCommand::Memory(args) => self::memory::run(args),
        BenchCommand::Adapters(args) => self::device::adapters_cmd(args),
        BenchCommand::Parity(args) => self::device::parity_cmd(args),
    }
}
