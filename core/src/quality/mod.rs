//! Data quality: what `hearth prepare` filters and deduplicates
//!
//! Pretraining-data quality filtering and deduplication that reproduces HF **datatrove**
//! (v0.10.1, the FineWeb pipeline) rule for rule:
//!
//! * [`text`]: exact-dedup keys, datatrove's `simplify_text`, and a port of the spaCy English
//!   tokenizer/sentencizer that datatrove uses to count words and sentences.
//! * [`minhash`]: MinHash signatures bit-identical to datatrove's `MinhashDedupSignature`
//!   (xxhash64 shingles, numpy `RandomState(seed)` permutations mod 2^61-1), LSH band keys, and a
//!   streaming keep-first near-duplicate filter.
//! * [`filters`]: `GopherQuality`, `GopherRepetition`, `C4Quality`, `FineWebQuality` with
//!   datatrove's defaults and `filter_reason` strings.
//! * [`language`]: language identification (lingua) restricted to a configured set.
//! * [`seen`]: the keys a deduplication has seen, exact within a memory budget and a Bloom filter
//!   of that budget (with its false-positive rate stated) beyond it.
//!
//! ```
//! use hearth_core::quality::{filters, minhash, text};
//!
//! let doc = "The committee met on Tuesday to discuss the new library building and its budget.\n\
//!            Members agreed that the plans were sound, but they asked for a clearer schedule.";
//! assert_eq!(filters::GopherQuality::default().check(doc), Err("gopher_short_doc"));
//! assert_eq!(text::word_tokenize("I don't know."), vec!["I", "do", "n't", "know", "."]);
//!
//! let mh = minhash::Minhasher::new(&minhash::MinhashConfig::default());
//! let mut dedup = minhash::NearDedup::new(1 << 20); // at most 1 MiB
//! let keys = mh.band_keys(&mh.signature(doc));
//! assert!(!dedup.check_and_insert(&keys)); // first time: keep
//! assert!(dedup.check_and_insert(&keys)); // again: near-duplicate
//! ```
//!
//! Everything is pure computation: no file, network or terminal I/O, so the crate builds for
//! `wasm32-unknown-unknown`.

pub mod filters;
#[cfg(not(target_arch = "wasm32"))]
pub mod language;
pub mod minhash;
mod mt19937;
mod pyutil;
pub mod seen;
pub mod text;
mod tokenizer;
mod tokenizer_data;
