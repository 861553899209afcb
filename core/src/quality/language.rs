//! Language identification with [lingua](https://docs.rs/lingua), restricted to a configured set.
//!
//! datatrove's `LanguageFilter` uses a fastText model downloaded from the hub; this crate uses
//! lingua's embedded n-gram models instead (no downloads, builds for wasm32). Only the languages
//! compiled in (see [`SUPPORTED`]; Cargo features of the `lingua` dependency) can be configured.

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

/// Languages compiled into this build: (ISO 639-1 code, lingua language).
pub const SUPPORTED: &[(&str, Language)] = &[
    ("de", Language::German),
    ("en", Language::English),
    ("es", Language::Spanish),
    ("fr", Language::French),
    ("id", Language::Indonesian),
    ("it", Language::Italian),
    ("ja", Language::Japanese),
    ("pt", Language::Portuguese),
    ("zh", Language::Chinese),
];

/// A language detector over a fixed set of languages.
pub struct LanguageId {
    detector: LanguageDetector,
    langs: Vec<(&'static str, Language)>,
    /// Only the first `max_chars` code points are examined (`None` = all). Detection cost grows
    /// linearly with length; a few thousand characters are plenty for document-level language id.
    pub max_chars: Option<usize>,
}

/// Error for a language code that is not in [`SUPPORTED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedLanguage(pub String);

impl std::fmt::Display for UnsupportedLanguage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "language {:?} is not compiled into hearth_core::quality (see language::SUPPORTED)", self.0)
    }
}

impl std::error::Error for UnsupportedLanguage {}

impl LanguageId {
    /// Detector over the given ISO 639-1 codes (at least two, e.g. `["en", "de", "fr"]`).
    /// Models load lazily on first use.
    pub fn new(codes: &[&str]) -> Result<Self, UnsupportedLanguage> {
        let mut langs = Vec::new();
        for c in codes {
            let found = SUPPORTED.iter().find(|(code, _)| code.eq_ignore_ascii_case(c));
            match found {
                Some(&(code, lang)) => {
                    if !langs.iter().any(|(x, _)| *x == code) {
                        langs.push((code, lang))
                    }
                }
                None => return Err(UnsupportedLanguage(c.to_string())),
            }
        }
        if langs.len() < 2 {
            return Err(UnsupportedLanguage(format!("need at least two languages, got {codes:?}")));
        }
        let list: Vec<Language> = langs.iter().map(|(_, l)| *l).collect();
        let detector = LanguageDetectorBuilder::from_languages(&list).build();
        Ok(LanguageId { detector, langs, max_chars: Some(4000) })
    }

    /// Detector over every language in [`SUPPORTED`].
    pub fn all_supported() -> Self {
        let codes: Vec<&str> = SUPPORTED.iter().map(|(c, _)| *c).collect();
        Self::new(&codes).expect("supported")
    }

    /// The configured ISO 639-1 codes.
    pub fn languages(&self) -> Vec<&'static str> {
        self.langs.iter().map(|(c, _)| *c).collect()
    }

    /// Most likely language and lingua's confidence for it (0..1, relative to the configured
    /// set); `None` when the text gives no evidence (e.g. no letters).
    pub fn detect(&self, text: &str) -> Option<(&'static str, f64)> {
        let text = match self.max_chars {
            Some(m) => match text.char_indices().nth(m) {
                Some((i, _)) => &text[..i],
                None => text,
            },
            None => text,
        };
        let values = self.detector.compute_language_confidence_values(text);
        let (lang, conf) = values.into_iter().next()?;
        if conf <= 0.0 {
            return None;
        }
        let code = self.langs.iter().find(|(_, l)| *l == lang).map(|(c, _)| *c)?;
        Some((code, conf))
    }

    /// Confidence that `text` is in `code` (0 when `code` is not configured).
    pub fn confidence(&self, text: &str, code: &str) -> f64 {
        match self.langs.iter().find(|(c, _)| *c == code) {
            Some((_, l)) => self.detector.compute_language_confidence(text, *l),
            None => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_configured_languages() {
        let id = LanguageId::new(&["en", "de", "fr", "es"]).unwrap();
        assert_eq!(id.detect("The weather is lovely today and we are going to the beach.").unwrap().0, "en");
        assert_eq!(id.detect("Das Wetter ist heute schön und wir gehen an den Strand.").unwrap().0, "de");
        assert_eq!(id.detect("Il fait beau aujourd'hui et nous allons à la plage.").unwrap().0, "fr");
        assert_eq!(id.detect("Hoy hace buen tiempo y vamos a la playa con mis amigos.").unwrap().0, "es");
        assert!(id.detect("1234 5678 !!!").is_none());
        assert!(LanguageId::new(&["en", "xx"]).is_err());
    }
}
