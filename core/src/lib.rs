//! Hearth's core: models (GPT-2, BERT, T5) with Hugging Face names and layouts, the pretraining
//! objectives, and the parity check against HF's own outputs. No terminal or file-system I/O
//! happens here: functions take bytes and return values, so the CLI and the browser drive the
//! same code.

pub mod attention_maps;
pub mod device;
pub mod error;
pub mod eval;
pub mod finetune;
pub mod footprint;
pub mod generate;
pub mod hf;
pub mod models;
pub mod nn;
pub mod objectives;
pub mod parallel;
pub mod parity;
pub mod quality;
pub mod readback;
pub mod tokenizer;
pub mod train;

pub use device::Backend;
pub use error::{Error, Result};
pub use models::{Model, ModelConfig, ModelInputs, ModelOutput};
