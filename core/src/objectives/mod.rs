//! Pretraining objectives: each turns token streams into model inputs and labels, host-side, so
//! that the statistics can be tested without a device and the same code runs in the browser.

pub mod batch;
pub mod causal;
pub mod collator;
pub mod masked;
pub mod span;

pub use batch::Batch;
pub use causal::{BlockPacker, causal_batch};
pub use collator::{Collator, Noise};
pub use masked::{MaskingConfig, mask_tokens};
pub use span::{SpanCorruption, prefix_lm_split, text_to_text};

/// The random source of every objective: ChaCha8, seedable and serialisable, so a checkpoint can
/// hold its state and a resumed run draws the same masks.
pub type Rng = rand_chacha::ChaCha8Rng;

pub use crate::models::Objective;
