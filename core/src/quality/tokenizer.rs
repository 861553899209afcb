//! Port of spaCy's rule-based English tokenizer (`spacy.blank("en")`), as used by datatrove's
//! `SpaCyTokenizer("en")` for `split_into_words` and (with the `sentencizer` pipe) for
//! `split_into_sentences`.
//!
//! The affix patterns, special cases (tokenizer exceptions) and sentencizer punctuation are
//! generated from the installed spaCy by `tools/gen_spacy_en.py` into `tokenizer_data.rs`; the
//! algorithm (`_tokenize_affixes`, `_split_affixes`, `_attach_tokens`,
//! `_apply_special_cases`, `Sentencizer.predict`) is transcribed from spaCy 3.8's
//! `tokenizer.pyx` / `sentencizer.pyx`.

use std::sync::OnceLock;

use crate::quality::pyutil::{FxHashMap as HashMap, FxHashSet as HashSet, is_punct_text, is_space};
use crate::quality::tokenizer_data as data;

/// One token: a slice of the input text, and whether it is a whitespace token
/// (spaCy keeps runs of extra whitespace as tokens; datatrove drops them in `strip_strings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    /// Byte offset of the token in the input.
    pub start: usize,
    pub is_space: bool,
    /// Whether a single ' ' follows the token (spaCy's `token.whitespace_`).
    pub(crate) spacy: bool,
}

/// spaCy's English tokenizer (rules only, no statistical model).
///
/// Construction compiles a few large regexes (a few ms); use [`EnglishTokenizer::shared`] for a
/// process-wide instance. The tokenizer is `Send + Sync` and keeps no cache, so results never
/// depend on what was tokenized before.
pub struct EnglishTokenizer {
    /// all prefix alternatives (one has a lookahead): used only for chunks starting with '+'
    prefix_fancy: fancy_regex::Regex,
    /// prefix alternatives without lookaround (exact for chunks not starting with '+')
    prefix_plain: regex::Regex,
    suffix_plain: regex::Regex,
    /// `(?<=X)Y$` suffixes compiled as `X(Y$)`: X is fixed-width, so the leftmost match of
    /// `XY$` gives the leftmost start of Y
    suffix_lookbehind: Vec<regex::Regex>,
    infix: fancy_regex::Regex,
    /// characters an infix match can start with
    infix_trigger: regex::Regex,
    url: fancy_regex::Regex,
    specials: HashMap<&'static str, &'static [&'static str]>,
    /// first token text -> (key, pattern tokens)
    matcher: HashMap<&'static str, Vec<(&'static str, &'static [&'static str])>>,
    sent_punct: HashSet<&'static str>,
}

fn is_fancy(p: &str) -> bool {
    p.contains("(?=") || p.contains("(?!") || p.contains("(?<=") || p.contains("(?<!")
}

impl Default for EnglishTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl EnglishTokenizer {
    /// Build the tokenizer (compiles the affix regexes).
    pub fn new() -> Self {
        let build =
            |p: &str| fancy_regex::RegexBuilder::new(p).backtrack_limit(10_000_000).build().expect("spaCy pattern");
        let plain = |p: &str| {
            regex::RegexBuilder::new(p).size_limit(1 << 26).dfa_size_limit(1 << 26).build().expect("spaCy pattern")
        };
        let prefix_fancy = build(&format!("^(?:{})", data::PREFIX_ALTS.join("|")));
        let plain_prefixes: Vec<&str> = data::PREFIX_ALTS.iter().copied().filter(|p| !is_fancy(p)).collect();
        assert_eq!(plain_prefixes.len() + 1, data::PREFIX_ALTS.len(), "only the '+' prefix has a lookahead");
        let prefix_plain = plain(&format!("^(?:{})", plain_prefixes.join("|")));
        let suffix_plain = plain(&format!("(?:{})", data::SUFFIX_PLAIN.join("|")));
        let suffix_lookbehind = data::SUFFIX_LOOKBEHIND.iter().map(|(x, y)| plain(&format!("(?:{x})({y})"))).collect();
        let infix = build(&data::INFIX_ALTS.join("|"));
        let infix_trigger = plain(data::INFIX_TRIGGER);
        let url = build(&data::URL_ALTS.join("|"));
        let specials = data::SPECIALS.iter().map(|(k, v)| (*k, *v)).collect();
        let mut matcher: HashMap<&'static str, Vec<(&'static str, &'static [&'static str])>> = HashMap::default();
        for (k, pat) in data::MATCHER {
            if *k == " " {
                continue; // identity rewrite of a single-space token
            }
            matcher.entry(pat[0]).or_default().push((*k, *pat));
        }
        let sent_punct = data::SENT_PUNCT.iter().copied().collect();
        EnglishTokenizer {
            prefix_fancy,
            prefix_plain,
            suffix_plain,
            suffix_lookbehind,
            infix,
            infix_trigger,
            url,
            specials,
            matcher,
            sent_punct,
        }
    }

    /// A lazily built process-wide instance.
    pub fn shared() -> &'static EnglishTokenizer {
        static TOK: OnceLock<EnglishTokenizer> = OnceLock::new();
        TOK.get_or_init(EnglishTokenizer::new)
    }

    fn find_prefix(&self, s: &str) -> usize {
        if s.starts_with('+') {
            return match self.prefix_fancy.find(s) {
                Ok(Some(m)) => m.end() - m.start(),
                _ => 0,
            };
        }
        self.prefix_plain.find(s).map(|m| m.end() - m.start()).unwrap_or(0)
    }

    fn find_suffix(&self, s: &str) -> usize {
        let mut start = self.suffix_plain.find(s).map(|m| m.start()).unwrap_or(usize::MAX);
        for re in &self.suffix_lookbehind {
            if let Some(c) = re.captures(s) {
                start = start.min(c.get(1).unwrap().start());
            }
        }
        if start == usize::MAX { 0 } else { s.len() - start }
    }

    /// Whether an infix pattern could match in `s`: every infix alternative needs a non-ASCII
    /// character or one of `. * + - ^ , ~ / : < = >`; for non-ASCII text, one of the characters
    /// an infix alternative can start with (`infix_trigger`). The URL pattern needs a '.'.
    fn may_have_infix(&self, s: &str) -> bool {
        if s.is_ascii() {
            s.bytes()
                .any(|b| matches!(b, b'.' | b'*' | b'+' | b'-' | b'^' | b',' | b'~' | b'/' | b':' | b'<' | b'=' | b'>'))
        } else {
            self.infix_trigger.is_match(s)
        }
    }

    /// Tokenize `text` exactly as `spacy.blank("en")(text)` does (token texts and whitespace tokens).
    pub fn tokenize<'a>(&self, text: &'a str) -> Vec<Token<'a>> {
        let mut toks: Vec<Token<'a>> = Vec::with_capacity(text.len() / 4 + 4);
        if text.is_empty() {
            return toks;
        }
        let mut in_ws = text.chars().next().map(is_space).unwrap_or(false);
        let mut start = 0usize;
        for (i, c) in text.char_indices() {
            if is_space(c) != in_ws {
                if start < i {
                    self.tokenize_span(&text[start..i], start, in_ws, &mut toks);
                }
                if c == ' ' {
                    if let Some(last) = toks.last_mut() {
                        last.spacy = true;
                    }
                    start = i + 1;
                } else {
                    start = i;
                }
                in_ws = !in_ws;
            }
        }
        if start < text.len() {
            self.tokenize_span(&text[start..], start, in_ws, &mut toks);
        }
        self.apply_special_cases(text, &mut toks);
        toks
    }

    /// datatrove `SpaCyTokenizer.word_tokenize`: token texts, whitespace tokens removed.
    pub fn words<'a>(&self, text: &'a str) -> Vec<&'a str> {
        self.tokenize(text).into_iter().filter(|t| !t.is_space).map(|t| t.text).collect()
    }

    /// Number of sentences spaCy's `sentencizer` finds in `text`, i.e.
    /// `len(datatrove.utils.text.split_into_sentences(text))` for English.
    pub fn count_sentences(&self, text: &str) -> usize {
        let toks = self.tokenize(text);
        if toks.is_empty() {
            return 0;
        }
        let mut n = 1;
        let mut seen_period = false;
        for t in &toks {
            let in_punct = self.sent_punct.contains(t.text);
            if seen_period && !in_punct && !is_punct_text(t.text) {
                n += 1;
                seen_period = false;
            } else if in_punct {
                seen_period = true;
            }
        }
        n
    }

    /// datatrove `split_into_sentences(text, "en")`: the text cut at the end of each spaCy
    /// sentence (the first piece starts at 0, the last ends at the end of the text, so
    /// whitespace between sentences stays at the start of the following piece).
    pub fn split_sentences<'a>(&self, text: &'a str) -> Vec<&'a str> {
        let toks = self.tokenize(text);
        if toks.is_empty() {
            return Vec::new();
        }
        // sentence ends (byte offsets) = end of the last token before each new sentence start
        let mut ends = Vec::new();
        let mut seen_period = false;
        for (i, t) in toks.iter().enumerate() {
            let in_punct = self.sent_punct.contains(t.text);
            if seen_period && !in_punct && !is_punct_text(t.text) {
                let p = &toks[i - 1];
                ends.push(p.start + p.text.len());
                seen_period = false;
            } else if in_punct {
                seen_period = true;
            }
        }
        let mut out = Vec::with_capacity(ends.len() + 1);
        let mut a = 0;
        for e in ends {
            out.push(&text[a..e]);
            a = e;
        }
        out.push(&text[a..]);
        out
    }

    fn tokenize_span<'a>(&self, span: &'a str, off: usize, is_ws: bool, out: &mut Vec<Token<'a>>) {
        if is_ws {
            out.push(Token { text: span, start: off, is_space: true, spacy: false });
            return;
        }
        if let Some(parts) = self.specials.get(span) {
            push_parts(span, off, parts, out);
            return;
        }
        // Fast path: pure ASCII letters or pure ASCII digits never match a prefix, suffix,
        // infix (all need punctuation/symbols or a digit-letter mix), so the chunk is one token.
        let b = span.as_bytes();
        if b.iter().all(|c| c.is_ascii_alphabetic()) || b.iter().all(|c| c.is_ascii_digit()) {
            out.push(Token { text: span, start: off, is_space: false, spacy: false });
            return;
        }
        self.split_and_attach(span, off, out);
    }

    fn split_and_attach<'a>(&self, chunk: &'a str, off: usize, out: &mut Vec<Token<'a>>) {
        // _split_affixes
        let mut prefixes: Vec<(usize, usize)> = Vec::new(); // byte ranges in chunk
        let mut suffixes: Vec<(usize, usize)> = Vec::new();
        let (mut lo, mut hi) = (0usize, chunk.len());
        let mut last_size = 0usize;
        while lo < hi && (hi - lo) != last_size {
            let s = &chunk[lo..hi];
            if self.specials.contains_key(s) {
                break;
            }
            last_size = hi - lo;
            let pre_len = self.find_prefix(s);
            if pre_len != 0 {
                let minus_pre = &s[pre_len..];
                if !minus_pre.is_empty() && self.specials.contains_key(minus_pre) {
                    prefixes.push((lo, lo + pre_len));
                    lo += pre_len;
                    break;
                }
            }
            let suf_len = self.find_suffix(&s[pre_len..]);
            if suf_len != 0 {
                let minus_suf = &s[..s.len() - suf_len];
                if !minus_suf.is_empty() && self.specials.contains_key(minus_suf) {
                    suffixes.push((hi - suf_len, hi));
                    hi -= suf_len;
                    break;
                }
            }
            if pre_len != 0 && suf_len != 0 && pre_len + suf_len <= s.len() {
                prefixes.push((lo, lo + pre_len));
                suffixes.push((hi - suf_len, hi));
                lo += pre_len;
                hi -= suf_len;
            } else if pre_len != 0 {
                prefixes.push((lo, lo + pre_len));
                lo += pre_len;
            } else if suf_len != 0 {
                suffixes.push((hi - suf_len, hi));
                hi -= suf_len;
            }
            if lo < hi && self.specials.contains_key(&chunk[lo..hi]) {
                break;
            }
        }
        // _attach_tokens
        let tok = |a: usize, b: usize| Token { text: &chunk[a..b], start: off + a, is_space: false, spacy: false };
        for &(a, b) in &prefixes {
            out.push(tok(a, b));
        }
        if lo < hi {
            let s = &chunk[lo..hi];
            if let Some(parts) = self.specials.get(s) {
                push_parts(s, off + lo, parts, out);
            } else if !self.may_have_infix(s) || (s.contains('.') && matches!(self.url.is_match(s), Ok(true))) {
                out.push(tok(lo, hi));
            } else {
                let mut start = 0usize;
                let mut any = false;
                for m in self.infix.find_iter(s) {
                    let Ok(m) = m else { break };
                    any = true;
                    if m.start() == 0 {
                        continue;
                    }
                    if m.start() != start {
                        out.push(tok(lo + start, lo + m.start()));
                    }
                    if m.start() != m.end() {
                        out.push(tok(lo + m.start(), lo + m.end()));
                    }
                    start = m.end();
                }
                if !any {
                    out.push(tok(lo, hi));
                } else if start < s.len() {
                    out.push(tok(lo + start, hi));
                }
            }
        }
        for &(a, b) in suffixes.iter().rev() {
            out.push(tok(a, b));
        }
    }

    /// `Tokenizer._apply_special_cases`: special cases that contain affixes are matched as token
    /// sequences (PhraseMatcher) and, when the tokens are contiguous, merged/re-split per the rule.
    fn apply_special_cases<'a>(&self, text: &'a str, toks: &mut Vec<Token<'a>>) {
        let mut matches: Vec<(usize, usize, &'static str)> = Vec::new();
        for i in 0..toks.len() {
            if let Some(pats) = self.matcher.get(toks[i].text) {
                for (key, pat) in pats {
                    let n = pat.len();
                    if i + n <= toks.len() && pat.iter().zip(&toks[i..i + n]).all(|(p, t)| *p == t.text) {
                        matches.push((i, i + n, key));
                    }
                }
            }
        }
        if matches.is_empty() {
            return;
        }
        // _filter_special_spans: longest first, then leftmost
        matches.sort_by(|a, b| (b.1 - b.0).cmp(&(a.1 - a.0)).then(a.0.cmp(&b.0)));
        let mut seen = vec![false; toks.len()];
        let mut filtered = Vec::new();
        for &(s, e, key) in &matches {
            if !seen[s] && !seen[e - 1] {
                filtered.push((s, e, key));
            }
            for x in seen.iter_mut().take(e).skip(s) {
                *x = true;
            }
        }
        filtered.sort_by_key(|m| m.0);
        let mut out = Vec::with_capacity(toks.len() + 4);
        let mut i = 0;
        let mut fi = 0;
        while i < toks.len() {
            if fi < filtered.len() && filtered[fi].0 == i {
                let (s, e, key) = filtered[fi];
                fi += 1;
                let a = toks[s].start;
                let b = toks[e - 1].start + toks[e - 1].text.len();
                let span_text = &text[a..b];
                match self.specials.get(span_text) {
                    Some(parts) if span_text == key => {
                        let spacy = toks[e - 1].spacy;
                        push_parts(span_text, a, parts, &mut out);
                        if let Some(l) = out.last_mut() {
                            l.spacy = spacy;
                        }
                    }
                    _ => out.extend_from_slice(&toks[s..e]),
                }
                i = e;
            } else {
                out.push(toks[i]);
                i += 1;
            }
        }
        *toks = out;
    }
}

fn push_parts<'a>(span: &'a str, off: usize, parts: &[&str], out: &mut Vec<Token<'a>>) {
    let mut p = 0;
    for part in parts {
        let end = p + part.len();
        out.push(Token { text: &span[p..end], start: off + p, is_space: false, spacy: false });
        p = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<&str> {
        EnglishTokenizer::shared().words(s)
    }

    #[test]
    fn basic_spacy_behaviour() {
        assert_eq!(w("Hello, world!"), vec!["Hello", ",", "world", "!"]);
        assert_eq!(w("I don't know."), vec!["I", "do", "n't", "know", "."]);
        assert_eq!(w("(e.g. this)"), vec!["(", "e.g.", "this", ")"]);
        assert_eq!(w("U.S. state-of-the-art"), vec!["U.S.", "state", "-", "of", "-", "the", "-", "art"]);
        assert_eq!(w("10km $5.00 3+4"), vec!["10", "km", "$", "5.00", "3", "+", "4"]);
        assert_eq!(w("see https://example.com/a?b=c."), vec!["see", "https://example.com/a?b=c", "."]);
        assert_eq!(w("great:)  ok\n\nyes"), vec!["great", ":)", "ok", "yes"]);
        assert_eq!(w("\"Quoted...\" he said"), vec!["\"", "Quoted", "...", "\"", "he", "said"]);
    }

    #[test]
    fn sentences() {
        let t = EnglishTokenizer::shared();
        assert_eq!(t.count_sentences("One. Two! Three?"), 3);
        assert_eq!(t.count_sentences("Mr. Smith went home."), 1);
        assert_eq!(t.count_sentences("Wait... what"), 1);
        assert_eq!(t.count_sentences("End.\""), 1);
    }
}
