//! Pretraining objectives: each turns token streams into model inputs and labels, host-side, so
//! that the statistics can be tested without a device and the same code runs in the browser.

pub mod batch;
pub mod causal;
pub mod collator;
pub mod masked;
pub mod span;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use batch::Batch;
pub use causal::{BlockPacker, causal_batch};
pub use collator::{Collator, Noise};
pub use masked::{MaskingConfig, mask_tokens};
pub use span::{SpanCorruption, prefix_lm_split, text_to_text};

/// The random source of every objective: ChaCha8, seedable and serialisable, so a checkpoint can
/// hold its state and a resumed run draws the same masks.
pub type Rng = rand_chacha::ChaCha8Rng;

/// The pretraining objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Next-token prediction over packed blocks (GPT).
    Causal,
    /// Masked LM, 15% / 80-10-10 (BERT).
    Masked,
    /// Span corruption, density 0.15, mean span 3 (T5).
    Span,
    /// T5's input corrupted as for `Span`, but the decoder writes the *whole* original text back
    /// (the "MASS-style" objective of the T5 paper, BART's denoising): every position is a target,
    /// so the decoder learns the language as a causal LM does and fills a span from its left
    /// context, where `Span` teaches that only through each span's first token.
    Denoise,
}
