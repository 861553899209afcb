//! Heuristic quality filters, reproducing datatrove 0.10.1 (English):
//! [`GopherRepetition`] (`GopherRepetitionFilter`), [`GopherQuality`] (`GopherQualityFilter`),
//! [`C4Quality`] (`C4QualityFilter`) and [`FineWebQuality`] (`FineWebQualityFilter`).
//!
//! Every threshold is a public field whose `Default` is datatrove's default; `None` disables a
//! rule (datatrove's `None`/`0`). A rejected document yields the same `filter_reason` string
//! datatrove records (`dropped_<reason>` in its stats). Lengths are code-point counts and word
//! lists come from the spaCy-compatible tokenizer ([`crate::quality::text::word_tokenize`]), as in datatrove.
//!
//! [`fineweb_pipeline`] chains them as FineWeb does (C4 with `filter_no_terminal_punct = false`).

use std::sync::OnceLock;

use crate::quality::pyutil::{self, FxHashMap as HashMap, FxHashSet as HashSet, char_len};
use crate::quality::text::{self, is_punctuation, is_terminal_punctuation};

/// datatrove's `filter_reason` for a rejected document.
pub type Reason = &'static str;

fn top_reason(n: usize) -> Reason {
    const T: [&str; 11] = [
        "top_0_gram",
        "top_1_gram",
        "top_2_gram",
        "top_3_gram",
        "top_4_gram",
        "top_5_gram",
        "top_6_gram",
        "top_7_gram",
        "top_8_gram",
        "top_9_gram",
        "top_10_gram",
    ];
    T.get(n).copied().unwrap_or("top_n_gram")
}

fn dup_reason(n: usize) -> Reason {
    const T: [&str; 11] = [
        "duplicated_0_n_grams",
        "duplicated_1_n_grams",
        "duplicated_2_n_grams",
        "duplicated_3_n_grams",
        "duplicated_4_n_grams",
        "duplicated_5_n_grams",
        "duplicated_6_n_grams",
        "duplicated_7_n_grams",
        "duplicated_8_n_grams",
        "duplicated_9_n_grams",
        "duplicated_10_n_grams",
    ];
    T.get(n).copied().unwrap_or("duplicated_n_n_grams")
}

/// datatrove `find_duplicates`: (number of repeated elements, code points in repeated elements).
fn find_duplicates<'a>(items: impl IntoIterator<Item = &'a str>) -> (usize, usize) {
    let mut seen: HashSet<&str> = HashSet::default();
    let (mut n, mut chars) = (0, 0);
    for x in items {
        if !seen.insert(x) {
            n += 1;
            chars += char_len(x);
        }
    }
    (n, chars)
}

// ---------------------------------------------------------------------------------------------
// Gopher quality
// ---------------------------------------------------------------------------------------------

/// The stop words Gopher requires (datatrove `STOP_WORDS`).
pub const GOPHER_STOP_WORDS: [&str; 8] = ["the", "be", "to", "of", "and", "that", "have", "with"];

/// datatrove `GopherQualityFilter` (Gopher, Rae et al. 2021, appendix A1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GopherQuality {
    /// Fewer non-symbol words → `gopher_short_doc` (50).
    pub min_doc_words: Option<usize>,
    /// More non-symbol words → `gopher_long_doc` (100 000).
    pub max_doc_words: Option<usize>,
    /// Mean non-symbol word length below → `gopher_below_avg_threshold` (3).
    pub min_avg_word_length: Option<f64>,
    /// Mean non-symbol word length above → `gopher_above_avg_threshold` (10).
    pub max_avg_word_length: Option<f64>,
    /// `#` per word or `...`/`…` per word above → `gopher_too_many_hashes` / `gopher_too_many_ellipsis` (0.1).
    pub max_symbol_word_ratio: Option<f64>,
    /// Share of lines starting with `•` or `-` above → `gopher_too_many_bullets` (0.9).
    pub max_bullet_lines_ratio: Option<f64>,
    /// Share of lines ending with `...` or `…` above → `gopher_too_many_end_ellipsis` (0.3).
    pub max_ellipsis_lines_ratio: Option<f64>,
    /// Share of words with an alphabetic character below → `gopher_below_alpha_threshold` (0.8).
    pub max_non_alpha_words_ratio: Option<f64>,
    /// Fewer distinct stop words present → `gopher_enough_stop_words` (2).
    pub min_stop_words: Option<usize>,
    pub stop_words: Vec<String>,
}

impl Default for GopherQuality {
    fn default() -> Self {
        GopherQuality {
            min_doc_words: Some(50),
            max_doc_words: Some(100_000),
            min_avg_word_length: Some(3.0),
            max_avg_word_length: Some(10.0),
            max_symbol_word_ratio: Some(0.1),
            max_bullet_lines_ratio: Some(0.9),
            max_ellipsis_lines_ratio: Some(0.3),
            max_non_alpha_words_ratio: Some(0.8),
            min_stop_words: Some(2),
            stop_words: GOPHER_STOP_WORDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn on<T: Copy + PartialEq + Default>(x: Option<T>) -> Option<T> {
    // Python truthiness: 0 / 0.0 disables a rule like None does
    x.filter(|v| *v != T::default())
}

impl GopherQuality {
    pub fn check(&self, text: &str) -> Result<(), Reason> {
        self.check_words(text, &text::word_tokenize(text))
    }

    /// As [`check`](Self::check) with `words = text::word_tokenize(text)` precomputed.
    pub fn check_words(&self, text: &str, words: &[&str]) -> Result<(), Reason> {
        let n_words = words.len();
        let non_symbol: Vec<&str> = words.iter().copied().filter(|w| w.chars().any(|c| !is_punctuation(c))).collect();
        let n_non_symbol = non_symbol.len();
        if let Some(m) = on(self.min_doc_words)
            && n_non_symbol < m
        {
            return Err("gopher_short_doc");
        }
        if let Some(m) = on(self.max_doc_words)
            && n_non_symbol > m
        {
            return Err("gopher_long_doc");
        }
        // np.mean of an empty list is nan: every comparison is false
        let avg = if non_symbol.is_empty() {
            f64::NAN
        } else {
            non_symbol.iter().map(|w| char_len(w) as f64).sum::<f64>() / n_non_symbol as f64
        };
        if let Some(m) = on(self.min_avg_word_length)
            && avg < m
        {
            return Err("gopher_below_avg_threshold");
        }
        if let Some(m) = on(self.max_avg_word_length)
            && avg > m
        {
            return Err("gopher_above_avg_threshold");
        }
        let nw = n_words as f64;
        if let Some(m) = on(self.max_symbol_word_ratio) {
            if pyutil::count(text, "#") as f64 / nw > m {
                return Err("gopher_too_many_hashes");
            }
            if (pyutil::count(text, "...") + pyutil::count(text, "…")) as f64 / nw > m {
                return Err("gopher_too_many_ellipsis");
            }
        }
        let lines = pyutil::splitlines(text);
        let nl = lines.len() as f64;
        if let Some(m) = on(self.max_bullet_lines_ratio) {
            let b = lines
                .iter()
                .filter(|l| {
                    let l = pyutil::lstrip(l);
                    l.starts_with('•') || l.starts_with('-')
                })
                .count();
            if b as f64 / nl > m {
                return Err("gopher_too_many_bullets");
            }
        }
        if let Some(m) = on(self.max_ellipsis_lines_ratio) {
            let e = lines
                .iter()
                .filter(|l| {
                    let l = pyutil::rstrip(l);
                    l.ends_with("...") || l.ends_with('…')
                })
                .count();
            if e as f64 / nl > m {
                return Err("gopher_too_many_end_ellipsis");
            }
        }
        if let Some(m) = on(self.max_non_alpha_words_ratio) {
            let a = words.iter().filter(|w| w.chars().any(pyutil::is_alpha)).count();
            if (a as f64) / nw < m {
                return Err("gopher_below_alpha_threshold");
            }
        }
        if let Some(m) = on(self.min_stop_words) {
            let present: HashSet<&str> =
                words.iter().copied().filter(|w| self.stop_words.iter().any(|s| s == w)).collect();
            if present.len() < m {
                return Err("gopher_enough_stop_words");
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Gopher repetition
// ---------------------------------------------------------------------------------------------

/// datatrove `GopherRepetitionFilter` (Gopher table A1 repetition thresholds).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GopherRepetition {
    /// Duplicate paragraphs / paragraphs above → `dup_para_frac` (0.3).
    pub dup_para_frac: Option<f64>,
    /// Chars in duplicate paragraphs / chars above → `dup_para_char_frac` (0.2).
    pub dup_para_char_frac: Option<f64>,
    /// Duplicate lines / lines above → `dup_line_frac` (0.3).
    pub dup_line_frac: Option<f64>,
    /// Chars in duplicate lines / chars above → `dup_line_char_frac` (0.2).
    pub dup_line_char_frac: Option<f64>,
    /// (n, max fraction of chars covered by the most frequent word n-gram) → `top_{n}_gram`.
    pub top_n_grams: Vec<(usize, f64)>,
    /// (n, max fraction of chars in repeated word n-grams) → `duplicated_{n}_n_grams`.
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for GopherRepetition {
    fn default() -> Self {
        GopherRepetition {
            dup_para_frac: Some(0.3),
            dup_para_char_frac: Some(0.2),
            dup_line_frac: Some(0.3),
            dup_line_char_frac: Some(0.2),
            top_n_grams: vec![(2, 0.2), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)],
        }
    }
}

fn para_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\n{2,}").unwrap())
}

fn lines_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\n+").unwrap())
}

impl GopherRepetition {
    pub fn check(&self, text: &str) -> Result<(), Reason> {
        if text.is_empty() {
            return Err("empty");
        }
        // paragraphs and lines go first: they need no tokenization
        self.check_lines(text)?;
        self.check_ngrams(text, &text::word_tokenize(text))
    }

    /// As [`check`](Self::check) with `words = text::word_tokenize(text)` precomputed.
    pub fn check_words(&self, text: &str, words: &[&str]) -> Result<(), Reason> {
        if text.is_empty() {
            return Err("empty");
        }
        self.check_lines(text)?;
        self.check_ngrams(text, words)
    }

    fn check_lines(&self, text: &str) -> Result<(), Reason> {
        let text_len = char_len(text) as f64;
        let paragraphs: Vec<&str> = para_re().split(pyutil::strip(text)).collect();
        let (pd, pc) = find_duplicates(paragraphs.iter().copied());
        if let Some(f) = on(self.dup_para_frac)
            && pd as f64 / paragraphs.len() as f64 > f
        {
            return Err("dup_para_frac");
        }
        if let Some(f) = on(self.dup_para_char_frac)
            && pc as f64 / text_len > f
        {
            return Err("dup_para_char_frac");
        }
        let lines: Vec<&str> = lines_re().split(text).collect();
        let (ld, lc) = find_duplicates(lines.iter().copied());
        if let Some(f) = on(self.dup_line_frac)
            && ld as f64 / lines.len() as f64 > f
        {
            return Err("dup_line_frac");
        }
        if let Some(f) = on(self.dup_line_char_frac)
            && lc as f64 / text_len > f
        {
            return Err("dup_line_char_frac");
        }
        Ok(())
    }

    fn check_ngrams(&self, text: &str, words: &[&str]) -> Result<(), Reason> {
        let text_len = char_len(text) as f64;
        let nw = words.len();
        // cumulative code points per word, to get n-gram lengths in O(1)
        let mut cum = Vec::with_capacity(nw + 1);
        cum.push(0usize);
        for w in words {
            cum.push(cum.last().unwrap() + char_len(w));
        }
        if self.top_n_grams.iter().any(|&(n, _)| n > 0 && nw >= n) {
            let wh: Vec<u64> = words.iter().map(|w| fx(w.as_bytes())).collect();
            let mut counts: IdMap<(usize, usize)> = IdMap::with_capacity_and_hasher(nw, Default::default());
            for &(n, frac) in &self.top_n_grams {
                if n == 0 || nw < n {
                    continue;
                }
                let (cnt, first) = top_ngram(words, &wh, n, &mut counts);
                let len = cum[first + n] - cum[first] + (n - 1);
                if (len * cnt) as f64 / text_len > frac {
                    return Err(top_reason(n));
                }
            }
        }
        if !self.dup_n_grams.is_empty() {
            // "".join(words[i:i+n]) is a byte slice of the concatenation of all words
            let mut concat = String::with_capacity(text.len());
            let mut off = Vec::with_capacity(nw + 1);
            off.push(0usize);
            for w in words {
                concat.push_str(w);
                off.push(concat.len());
            }
            let rh = RollingHash::new(concat.as_bytes());
            let mut seen: IdMap<usize> = IdMap::with_capacity_and_hasher(nw, Default::default());
            for &(n, frac) in &self.dup_n_grams {
                let repeated = find_all_duplicate(&concat, &off, &cum, n, &rh, &mut seen);
                if repeated as f64 / text_len > frac {
                    return Err(dup_reason(n));
                }
            }
        }
        Ok(())
    }
}

/// Map keyed by already-mixed 64-bit hashes.
type IdMap<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<crate::quality::seen::IdentityHasher>>;

#[inline]
fn fmix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[inline]
fn fx(b: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = pyutil::FxHasher::default();
    h.write(b);
    h.finish()
}

/// `Counter(" ".join(words[i:i+n])).most_common(1)`: (count, first index) of the most frequent
/// n-gram, the first inserted one on ties. N-grams are keyed by a hash of their word hashes;
/// every hit is verified word by word and a collision falls back to exact slice keys.
fn top_ngram(words: &[&str], wh: &[u64], n: usize, counts: &mut IdMap<(usize, usize)>) -> (usize, usize) {
    counts.clear();
    let nw = words.len();
    let mut best = (0usize, usize::MAX); // (count, first)
    for i in 0..=nw - n {
        let mut k = n as u64;
        for &h in &wh[i..i + n] {
            k = fmix(k ^ h).wrapping_add(0x9e37_79b9_7f4a_7c15);
        }
        let e = counts.entry(k).or_insert((0, i));
        if e.1 != i && words[e.1..e.1 + n] != words[i..i + n] {
            return top_ngram_exact(words, n);
        }
        e.0 += 1;
        let c = *e;
        if c.0 > best.0 || (c.0 == best.0 && c.1 < best.1) {
            best = c;
        }
    }
    best
}

fn top_ngram_exact(words: &[&str], n: usize) -> (usize, usize) {
    let mut counts: HashMap<&[&str], (usize, usize)> = HashMap::default();
    let mut best = (0usize, usize::MAX);
    for i in 0..=words.len() - n {
        let e = counts.entry(&words[i..i + n]).or_insert((0, i));
        e.0 += 1;
        let c = *e;
        if c.0 > best.0 || (c.0 == best.0 && c.1 < best.1) {
            best = c;
        }
    }
    best
}

/// Polynomial rolling hash over bytes (mod 2^64), O(1) hash of any substring.
struct RollingHash {
    pre: Vec<u64>,
    pow: Vec<u64>,
}

const ROLL_BASE: u64 = 0x100_0000_01b3_u64 | 1;

impl RollingHash {
    fn new(b: &[u8]) -> Self {
        let mut pre = Vec::with_capacity(b.len() + 1);
        let mut pow = Vec::with_capacity(b.len() + 1);
        pre.push(0u64);
        pow.push(1u64);
        for &x in b {
            pre.push(pre.last().unwrap().wrapping_mul(ROLL_BASE).wrapping_add(x as u64 + 1));
            pow.push(pow.last().unwrap().wrapping_mul(ROLL_BASE));
        }
        RollingHash { pre, pow }
    }

    #[inline]
    fn hash(&self, a: usize, b: usize) -> u64 {
        let h = self.pre[b].wrapping_sub(self.pre[a].wrapping_mul(self.pow[b - a]));
        fmix(h ^ ((b - a) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

/// datatrove `find_all_duplicate`: code points in n-grams (words concatenated without spaces)
/// seen before, skipping n words after each repeat. Hash hits are verified byte by byte; a
/// collision falls back to exact string keys.
fn find_all_duplicate(
    concat: &str,
    off: &[usize],
    cum: &[usize],
    n: usize,
    rh: &RollingHash,
    seen: &mut IdMap<usize>,
) -> usize {
    let nw = off.len() - 1;
    if n == 0 || nw < n {
        return 0;
    }
    seen.clear();
    let (mut repeated, mut idx) = (0usize, 0usize);
    while idx + n <= nw {
        let (a, b) = (off[idx], off[idx + n]);
        let k = rh.hash(a, b);
        match seen.get(&k) {
            Some(&first) => {
                let (fa, fb) = (off[first], off[first + n]);
                if concat[fa..fb] != concat[a..b] {
                    return find_all_duplicate_exact(concat, off, cum, n);
                }
                repeated += cum[idx + n] - cum[idx];
                idx += n;
            }
            None => {
                seen.insert(k, idx);
                idx += 1;
            }
        }
    }
    repeated
}

fn find_all_duplicate_exact(concat: &str, off: &[usize], cum: &[usize], n: usize) -> usize {
    let nw = off.len() - 1;
    let mut unique: HashSet<&str> = HashSet::default();
    let (mut repeated, mut idx) = (0usize, 0usize);
    while idx + n <= nw {
        let g = &concat[off[idx]..off[idx + n]];
        if unique.contains(g) {
            repeated += cum[idx + n] - cum[idx];
            idx += n;
        } else {
            unique.insert(g);
            idx += 1;
        }
    }
    repeated
}

// ---------------------------------------------------------------------------------------------
// C4
// ---------------------------------------------------------------------------------------------

/// Lines containing any of these (lower-cased) are dropped by C4's policy rule.
pub const POLICY_SUBSTRINGS: [&str; 6] =
    ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"];

/// datatrove `C4QualityFilter` (C4, Raffel et al. 2020, plus the TFDS `c4_utils` extras).
///
/// Unlike the other filters it **rewrites** the document: every line is `strip()`ped, lines
/// failing a line rule are removed (too long word, no terminal punctuation, too few words,
/// "javascript", policy phrases), Wikipedia citations (`[1]`, `[edit]`, `[citation needed]`)
/// are deleted, and the kept lines are re-joined with `\n` and stripped. The whole document is
/// rejected for `lorem_ipsum`, `curly_bracket` (checked only on lines that reached that rule,
/// in line order) or `too_few_sentences` (fewer than `min_num_sentences` sentences in the kept
/// lines, counted with the spaCy sentencizer per line).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct C4Quality {
    /// `true` (C4): units are lines (`splitlines`); `false`: spaCy sentences, re-joined with " ".
    pub split_paragraph: bool,
    pub remove_citations: bool,
    /// Drop lines not ending in `.`, `?`, `!`, `"`, `'` or ending in `...` (FineWeb: `false`).
    pub filter_no_terminal_punct: bool,
    /// Minimum sentences in kept lines (5); `None` disables (datatrove `-1`).
    pub min_num_sentences: Option<usize>,
    /// Lines with fewer whitespace-separated words are dropped (3); `None` = datatrove `-1`.
    pub min_words_per_line: Option<usize>,
    /// Lines with a longer word are dropped (1000); `None` = datatrove `-1`.
    pub max_word_length: Option<usize>,
    pub filter_lorem_ipsum: bool,
    pub filter_javascript: bool,
    pub filter_curly_bracket: bool,
    pub filter_policy: bool,
}

impl Default for C4Quality {
    fn default() -> Self {
        C4Quality {
            split_paragraph: true,
            remove_citations: true,
            filter_no_terminal_punct: true,
            min_num_sentences: Some(5),
            min_words_per_line: Some(3),
            max_word_length: Some(1000),
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
        }
    }
}

fn citation_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\[\d*\]|\[edit\]|\[citation needed\]").unwrap())
}

impl C4Quality {
    /// The settings FineWeb used: `C4QualityFilter(filter_no_terminal_punct=False)`.
    pub fn fineweb() -> Self {
        C4Quality { filter_no_terminal_punct: false, ..Default::default() }
    }

    /// Accept/reject only (see [`filter`](Self::filter) for the rewritten text).
    pub fn check(&self, text: &str) -> Result<(), Reason> {
        self.filter(text).map(|_| ())
    }

    /// Returns the rewritten document (what datatrove stores in `doc.text`) or the reason the
    /// whole document was dropped.
    pub fn filter(&self, text: &str) -> Result<String, Reason> {
        let tok = text::EnglishTokenizer::shared();
        let units: Vec<&str> = if self.split_paragraph { pyutil::splitlines(text) } else { tok.split_sentences(text) };
        let mut num_sentences = 0usize;
        let mut kept: Vec<String> = Vec::new();
        for unit in units {
            let line = pyutil::strip(unit);
            let words: Vec<&str> = pyutil::split_whitespace(line).collect();
            if let Some(m) = self.max_word_length
                && words.iter().any(|w| char_len(w) > m)
            {
                continue;
            }
            let line: std::borrow::Cow<str> =
                if self.remove_citations { citation_re().replace_all(line, "") } else { line.into() };
            if self.filter_no_terminal_punct && (!(line.ends_with(['.', '?', '!', '"', '\''])) || line.ends_with("..."))
            {
                continue;
            }
            if let Some(m) = self.min_words_per_line
                && words.len() < m
            {
                continue;
            }
            let lower = line.to_lowercase();
            if self.filter_lorem_ipsum && lower.contains("lorem ipsum") {
                return Err("lorem_ipsum");
            }
            if self.filter_javascript && lower.contains("javascript") {
                continue;
            }
            if self.filter_curly_bracket && line.contains('{') {
                return Err("curly_bracket");
            }
            if self.filter_policy && POLICY_SUBSTRINGS.iter().any(|p| lower.contains(p)) {
                continue;
            }
            if self.min_num_sentences.is_some() {
                num_sentences += if self.split_paragraph { tok.count_sentences(&line) } else { 1 };
            }
            kept.push(line.into_owned());
        }
        if let Some(m) = self.min_num_sentences
            && num_sentences < m
        {
            return Err("too_few_sentences");
        }
        let joined = kept.join(if self.split_paragraph { "\n" } else { " " });
        Ok(pyutil::strip(&joined).to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// FineWeb
// ---------------------------------------------------------------------------------------------

/// datatrove `FineWebQualityFilter` (the FineWeb custom filters).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineWebQuality {
    /// Share of non-empty lines ending in a stop char below → `line_punct_ratio` (0.12).
    pub line_punct_thr: f64,
    /// Do not reject when that share is exactly 0 (false).
    pub line_punct_exclude_zero: bool,
    /// Line-ending characters (datatrove `TERMINAL_PUNCTUATION`); empty = that default.
    pub stop_chars: Vec<char>,
    /// Share of non-empty lines with at most `short_line_length` chars above → `short_line_ratio` (0.67).
    pub short_line_thr: f64,
    pub short_line_length: usize,
    /// Chars in duplicated lines / non-newline chars above → `char_dup_ratio` (0.01).
    pub char_duplicates_ratio: f64,
    /// Newlines per word above → `list_ratio` (0.3).
    pub new_line_ratio: f64,
}

impl Default for FineWebQuality {
    fn default() -> Self {
        FineWebQuality {
            line_punct_thr: 0.12,
            line_punct_exclude_zero: false,
            stop_chars: Vec::new(),
            short_line_thr: 0.67,
            short_line_length: 30,
            char_duplicates_ratio: 0.01,
            new_line_ratio: 0.3,
        }
    }
}

impl FineWebQuality {
    pub fn check(&self, text: &str) -> Result<(), Reason> {
        self.check_inner(text, None)
    }

    /// As [`check`](Self::check) with `words = text::word_tokenize(text)` precomputed.
    pub fn check_words(&self, text: &str, words: &[&str]) -> Result<(), Reason> {
        self.check_inner(text, Some(words))
    }

    fn check_inner(&self, text: &str, words: Option<&[&str]>) -> Result<(), Reason> {
        let lines: Vec<&str> = text.split('\n').filter(|l| !pyutil::strip(l).is_empty()).collect();
        if lines.is_empty() {
            return Err("empty");
        }
        let n = lines.len() as f64;
        let ends = |l: &str| match l.chars().next_back() {
            Some(c) => {
                if self.stop_chars.is_empty() {
                    is_terminal_punctuation(c)
                } else {
                    self.stop_chars.contains(&c)
                }
            }
            None => false,
        };
        let ratio = lines.iter().filter(|l| ends(l)).count() as f64 / n;
        if ratio < self.line_punct_thr && !(ratio == 0.0 && self.line_punct_exclude_zero) {
            return Err("line_punct_ratio");
        }
        let ratio = lines.iter().filter(|l| char_len(l) <= self.short_line_length).count() as f64 / n;
        if ratio > self.short_line_thr {
            return Err("short_line_ratio");
        }
        let non_nl = char_len(text) - text.bytes().filter(|&b| b == b'\n').count();
        let ratio = find_duplicates(lines.iter().copied()).1 as f64 / non_nl as f64;
        if ratio > self.char_duplicates_ratio {
            return Err("char_dup_ratio");
        }
        let n_words = match words {
            Some(w) => w.len(),
            None => text::word_tokenize(text).len(),
        };
        let new_line = text.bytes().filter(|&b| b == b'\n').count();
        if new_line as f64 / n_words as f64 > self.new_line_ratio {
            return Err("list_ratio");
        }
        Ok(())
    }
}

/// FineWeb's filter chain after text extraction and language id, in FineWeb's order:
/// `GopherRepetitionFilter()`, `GopherQualityFilter()`,
/// `C4QualityFilter(filter_no_terminal_punct=False)`, `FineWebQualityFilter()`.
/// Returns the (C4-rewritten) text or the first rejecting rule.
#[derive(Debug, Clone)]
pub struct FineWebFilters {
    pub gopher_repetition: GopherRepetition,
    pub gopher_quality: GopherQuality,
    /// Default: [`C4Quality::fineweb`].
    pub c4: C4Quality,
    pub fineweb: FineWebQuality,
}

impl Default for FineWebFilters {
    fn default() -> Self {
        FineWebFilters {
            gopher_repetition: GopherRepetition::default(),
            gopher_quality: GopherQuality::default(),
            c4: C4Quality::fineweb(),
            fineweb: FineWebQuality::default(),
        }
    }
}

impl FineWebFilters {
    pub fn filter(&self, text: &str) -> Result<String, Reason> {
        self.gopher_repetition.check_lines_first(text)?;
        let words = text::word_tokenize(text);
        self.gopher_repetition.check_ngrams(text, &words)?;
        self.gopher_quality.check_words(text, &words)?;
        let rewritten = self.c4.filter(text)?;
        self.fineweb.check(&rewritten)?;
        Ok(rewritten)
    }
}

/// [`FineWebFilters::default`]`.filter(text)`.
pub fn fineweb_pipeline(text: &str) -> Result<String, Reason> {
    FineWebFilters::default().filter(text)
}

impl GopherRepetition {
    fn check_lines_first(&self, text: &str) -> Result<(), Reason> {
        if text.is_empty() {
            return Err("empty");
        }
        self.check_lines(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain English prose that passes every filter.
    fn good_doc() -> String {
        let s = [
            "The committee met on Tuesday to discuss the new library building and its budget.",
            "Members agreed that the plans were sound, but they asked for a clearer schedule.",
            "Several residents spoke in favour of the project and praised the reading rooms.",
            "Others worried about parking, noise and the cost of heating such a large space.",
            "The chair promised to publish the full report before the end of the month.",
            "A final vote will be held in the spring, after a round of public consultation.",
        ];
        s.join("\n")
    }

    #[test]
    fn good_doc_passes_everything() {
        let d = good_doc();
        assert_eq!(GopherRepetition::default().check(&d), Ok(()));
        assert_eq!(GopherQuality::default().check(&d), Ok(()));
        assert_eq!(C4Quality::default().check(&d), Ok(()));
        assert_eq!(FineWebQuality::default().check(&d), Ok(()));
        assert_eq!(fineweb_pipeline(&d), Ok(d.clone()));
    }

    #[test]
    fn gopher_quality_rules() {
        let g = GopherQuality::default();
        let good = good_doc();
        assert_eq!(g.check("The cat sat on the mat and that was all."), Err("gopher_short_doc"));
        let long = "the cat and the dog. ".repeat(25_000);
        assert_eq!(g.check(&long), Err("gopher_long_doc"));
        let short_words = "a an to of it is by on at be we us the and that have with ".repeat(5);
        assert_eq!(g.check(&short_words), Err("gopher_below_avg_threshold"));
        let long_words = "internationalization counterrevolutionaries the and ".repeat(20);
        assert_eq!(g.check(&long_words), Err("gopher_above_avg_threshold"));
        let hashes = format!("{} #tag #tag #tag #tag #tag #tag #tag #tag #tag #tag #tag #tag #tag #tag", good);
        assert_eq!(g.check(&hashes), Err("gopher_too_many_hashes"));
        let ell = format!("{} {}", good, "wait... ".repeat(20));
        assert_eq!(g.check(&ell), Err("gopher_too_many_ellipsis"));
        let bullets: String =
            (0..12).map(|i| format!("- item number {i} is about the library and the budget of the town\n")).collect();
        assert_eq!(g.check(&bullets), Err("gopher_too_many_bullets"));
        let end_ell =
            format!("{}\nand then\nso on\nmore\u{2026}\nit went\u{2026}\nwe saw\u{2026}\nthey left\u{2026}", good);
        assert_eq!(g.check(&end_ell), Err("gopher_too_many_end_ellipsis"));
        let numbers = format!("{} {}", good, "12 345 678 90 1234 5678 ".repeat(30));
        assert_eq!(g.check(&numbers), Err("gopher_below_alpha_threshold"));
        let no_stop = "Green apples taste sour while ripe bananas feel soft. ".repeat(10);
        assert_eq!(g.check(&no_stop), Err("gopher_enough_stop_words"));
        assert_eq!(g.check(&good), Ok(()));
        // disabling a rule
        let g2 = GopherQuality { min_stop_words: None, ..Default::default() };
        assert_eq!(g2.check(&no_stop), Ok(()));
    }

    #[test]
    fn gopher_repetition_rules() {
        let r = GopherRepetition::default();
        assert_eq!(r.check(""), Err("empty"));
        let para = "This paragraph repeats itself.";
        let doc = format!("{para}\n\n{para}\n\n{para}\n\nSomething else entirely here.");
        assert_eq!(r.check(&doc), Err("dup_para_frac"));
        let long_para = "A long paragraph that is repeated twice, which makes a lot of the characters duplicated.";
        let doc = format!("{long_para}\n\n{long_para}\n\nOne.\n\nTwo.\n\nThree.\n\nFour.\n\nFive.\n\nSix.");
        assert_eq!(r.check(&doc), Err("dup_para_char_frac"));
        let doc = "one line\nanother\none line\none line\nsomething\nelse";
        assert_eq!(r.check(doc), Err("dup_line_frac"));
        let line = "this is a fairly long line that will be duplicated in the text";
        let doc = format!("{line}\n{line}\na\nb\nc\nd\ne\nf");
        assert_eq!(r.check(&doc), Err("dup_line_char_frac"));
        let doc = format!("{} {}", "New York ".repeat(20), good_doc());
        assert_eq!(r.check(&doc), Err("top_2_gram"));
        let doc = format!("{} {}", "in the city of ".repeat(8), good_doc().replace('\n', " "));
        let got = r.check(&doc);
        assert!(got == Err("top_3_gram") || got == Err("top_4_gram"), "{got:?}");
        let block = "the quick brown fox jumps over the lazy dog near the river bank";
        let doc = format!("{} {block} {block} {block} {block}", good_doc().replace('\n', " "));
        assert_eq!(r.check(&doc), Err("duplicated_5_n_grams"));
        assert_eq!(r.check(&good_doc()), Ok(()));
    }

    #[test]
    fn c4_rules_and_rewrite() {
        let c4 = C4Quality::default();
        let good = good_doc();
        // line removal: no terminal punctuation, too few words, javascript, policy, citations
        let doc = format!(
            "Menu Home About\n{good}\nOk.\nPlease enable JavaScript to continue.\nRead our privacy policy here.\nIt was founded in 1900.[1]"
        );
        let out = c4.filter(&doc).unwrap();
        assert_eq!(out, format!("{good}\nIt was founded in 1900."));
        assert_eq!(c4.filter(&format!("{good}\nLorem ipsum dolor sit amet.")), Err("lorem_ipsum"));
        assert_eq!(c4.filter(&format!("{good}\nfunction f() {{ return 1; }}.")), Err("curly_bracket"));
        assert_eq!(c4.filter("One sentence here. Two sentences here."), Err("too_few_sentences"));
        // a long "word" removes its line
        let doc = format!("{good}\nThis line has {} in it.", "x".repeat(1001));
        assert_eq!(c4.filter(&doc).unwrap(), good);
        // FineWeb variant keeps lines without terminal punctuation
        let doc = format!("A heading without punctuation\n{good}");
        assert_eq!(C4Quality::fineweb().filter(&doc).unwrap(), doc);
        assert_eq!(c4.filter(&doc).unwrap(), good);
        // curly bracket on a dropped line does not reject (the line is removed first)
        assert_eq!(c4.filter(&format!("{good}\nx {{ y")).unwrap(), good);
    }

    #[test]
    fn fineweb_rules() {
        let f = FineWebQuality::default();
        assert_eq!(f.check("\n  \n"), Err("empty"));
        let no_punct: String =
            (0..10).map(|i| format!("this line number {i} has no final punctuation at all\n")).collect();
        assert_eq!(f.check(&no_punct), Err("line_punct_ratio"));
        let short: String = (0..10).map(|i| format!("Short line {i}.\n")).collect();
        assert_eq!(f.check(&short), Err("short_line_ratio"));
        let dup =
            format!("{}\nThe committee met on Tuesday to discuss the new library building and its budget.", good_doc());
        assert_eq!(f.check(&dup), Err("char_dup_ratio"));
        let list = "Alpha beta gamma delta epsilon zeta eta theta.\n\n\n\n\n\n\n\n\n\nAnother sentence with many words in it, to be sure.";
        assert_eq!(f.check(list), Err("list_ratio"));
        assert_eq!(f.check(&good_doc()), Ok(()));
        let f0 = FineWebQuality { line_punct_exclude_zero: true, ..Default::default() };
        assert_ne!(f0.check(&no_punct), Err("line_punct_ratio"));
    }
}
