//! Text normalisation and word tokenisation.
//!
//! * [`exact_key`] / [`normalize_for_exact`]: key for exact-duplicate removal.
//! * [`simplify_text`]: datatrove's `simplify_text` with its default `TextNormConfig`, the
//!   normalisation MinHash shingles are built from.
//! * [`word_tokenize`] / [`count_sentences`]: datatrove's English `split_into_words` /
//!   `split_into_sentences` (spaCy rule-based tokenizer + sentencizer), see [`EnglishTokenizer`].

use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::quality::pyutil;
pub use crate::quality::tokenizer::{EnglishTokenizer, Token};
use crate::quality::tokenizer_data::DT_PUNCTUATION;

/// Normalise text for exact deduplication: Unicode NFC, every run of whitespace (Python
/// `str.isspace` characters, including newlines) collapsed to one ASCII space, leading and
/// trailing whitespace removed. Case and punctuation are kept (two documents that differ only in
/// case are *not* exact duplicates).
pub fn normalize_for_exact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.nfc() {
        if pyutil::is_space(c) {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// 128-bit key (XXH3-128 of the UTF-8 of [`normalize_for_exact`]) for exact deduplication.
/// Collisions are negligible (~2^-64 at 2^32 documents).
pub fn exact_key(text: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(normalize_for_exact(text).as_bytes())
}

fn numbers_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    // datatrove NUMBERS_PATTERN: r"\p{Nd}+([.,،٫⎖⎗⎘]{1}\p{Nd}+)?"
    RE.get_or_init(|| regex::Regex::new(r"\p{Nd}+(?:[.,،٫⎖⎗⎘]\p{Nd}+)?").unwrap())
}

fn mn_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^\p{Mn}$").unwrap())
}

#[inline]
fn is_dt_punct(c: char) -> bool {
    // PUNCTUATION contains ASCII controls 0..8, 11..12, 13..31, 127..159 plus a fixed list.
    if (c as u32) < 0x80 {
        static ASCII: OnceLock<[bool; 128]> = OnceLock::new();
        let t = ASCII.get_or_init(|| {
            let mut t = [false; 128];
            for ch in DT_PUNCTUATION.chars().filter(|c| c.is_ascii()) {
                t[ch as usize] = true;
            }
            t
        });
        t[c as usize]
    } else {
        DT_PUNCTUATION.contains(c)
    }
}

/// Whether `c` is in datatrove's `PUNCTUATION_SET` (`PUNCTUATION` ∪ `TERMINAL_PUNCTUATION`).
pub fn is_punctuation(c: char) -> bool {
    is_dt_punct(c) || crate::quality::tokenizer_data::DT_TERMINAL_PUNCTUATION.binary_search(&c).is_ok()
}

/// Whether `c` is in datatrove's `TERMINAL_PUNCTUATION`.
pub fn is_terminal_punctuation(c: char) -> bool {
    crate::quality::tokenizer_data::DT_TERMINAL_PUNCTUATION.binary_search(&c).is_ok()
}

#[inline]
fn is_mn(c: char) -> bool {
    if (c as u32) < 0x300 {
        return false;
    }
    if !is_combining_mark(c) {
        return false; // Mn ⊂ combining marks (Mn ∪ Mc ∪ Me)
    }
    let mut buf = [0u8; 4];
    mn_re().is_match(c.encode_utf8(&mut buf))
}

/// datatrove `simplify_text(text)` with the default `TextNormConfig` (the one MinHash uses):
/// lowercase; every number (`\p{Nd}+` with an optional decimal part) → `0`; each character of
/// `PUNCTUATION` → space; whitespace runs → one space (after `strip`); NFD with all `Mn`
/// (non-spacing marks, i.e. diacritics) removed; `strip`.
pub fn simplify_text(text: &str) -> String {
    let lower = text.to_lowercase();
    let numbered = numbers_re().replace_all(&lower, "0");
    let mut collapsed = String::with_capacity(numbered.len());
    let mut pending = false;
    // translate punctuation to spaces, then strip and collapse whitespace runs
    for c in numbered.chars() {
        let c = if is_dt_punct(c) { ' ' } else { c };
        if pyutil::is_space(c) {
            pending = !collapsed.is_empty();
        } else {
            if pending {
                collapsed.push(' ');
                pending = false;
            }
            collapsed.push(c);
        }
    }
    if collapsed.is_ascii() {
        return collapsed;
    }
    let out: String = collapsed.nfd().filter(|&c| !is_mn(c)).collect();
    pyutil::strip(&out).to_string()
}

/// datatrove `split_into_words(text, "en")`: spaCy English tokens with whitespace tokens removed.
pub fn word_tokenize(text: &str) -> Vec<&str> {
    EnglishTokenizer::shared().words(text)
}

/// datatrove `len(split_into_sentences(text, "en"))` (spaCy sentencizer).
pub fn count_sentences(text: &str) -> usize {
    EnglishTokenizer::shared().count_sentences(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_normalisation() {
        assert_eq!(normalize_for_exact("  Cafe\u{301}\n\n is  open\t"), "Café is open");
        assert_eq!(exact_key("a  b\n"), exact_key("a b"));
        assert_ne!(exact_key("a b"), exact_key("A b"));
    }

    #[test]
    fn simplify_like_datatrove() {
        assert_eq!(
            simplify_text("Hello, World! It's 3.14 — Café\n\n  naïve 1,000,000"),
            "hello world it s 0 cafe naive 0 0"
        );
        assert_eq!(simplify_text("  ...  "), "");
        assert_eq!(simplify_text("Ünïcödé"), "unicode");
    }
}
