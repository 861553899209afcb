//! What `hearth prepare --dedup … --filter …` keeps: the rules of `hearth_core::quality` (datatrove's
//! FineWeb pipeline, rule for rule) in FineWeb's order — exact duplicates, language, Gopher
//! repetition, Gopher quality, C4's lines, FineWeb's rules, then MinHash near-duplicates — with a
//! count of what each removed and a few samples for a person to judge.
//!
//! Each document is judged on every thread ([`Pipeline::judge`]: the filters, the exact key, the
//! MinHash band keys), then decided in input order ([`Pipeline::decide`]: the duplicate sets), so
//! the result is the same on any number of threads. The duplicate sets hold at most
//! `--dedup-memory` (a fifteenth for exact, the rest for MinHash's 14 bands), whatever the corpus
//! size: exact while they fit (about 10 bytes a key: one a document for exact, 14 for MinHash),
//! then a Bloom filter of that size whose false-positive rate the summary and meta.json state.

use std::collections::BTreeMap;

use hearth_core::Error;
use hearth_core::quality::filters::{C4Quality, FineWebQuality, GopherQuality, GopherRepetition};
use hearth_core::quality::language::LanguageId;
use hearth_core::quality::minhash::{ExactDedup, MinhashConfig, Minhasher, NearDedup};
use hearth_core::quality::seen::SeenKeys;
use hearth_core::quality::text::exact_key;
use serde::{Deserialize, Serialize};

/// The rules a prepare applies, as given on the command line (and recorded in `meta.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// `exact`, `minhash`.
    pub dedup: Vec<String>,
    /// `gopher-quality`, `gopher-repetition`, `c4`, `fineweb`, `language=en`.
    pub filter: Vec<String>,
    /// Thresholds other than datatrove's: a table per filter (`--filter-config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<toml::Table>,
    /// `--dedup-memory` (GiB), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_memory_gib: Option<f64>,
}

/// The duplicate sets' memory unless `--dedup-memory` says otherwise.
pub const DEDUP_MEMORY_GIB: f64 = 0.5;

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.dedup.is_empty() && self.filter.is_empty() && self.thresholds.is_none()
    }
}

/// Per rule: documents and tokens removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Removed {
    pub documents: u64,
    pub tokens: u64,
}

/// What the rules did so far: committed with the shards, so a resumed prepare reports the whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Documents read (kept or not).
    pub read: u64,
    /// By rule, in the order the rules run; a rule's reason (datatrove's `filter_reason`) in
    /// `reasons`.
    pub removed: BTreeMap<String, Removed>,
    pub reasons: BTreeMap<String, u64>,
    /// The first few documents each rule removed (cut to 2000 characters).
    pub samples: BTreeMap<String, Vec<String>>,
}

const SAMPLES: usize = 5;

/// A document's fate, decided on any thread but for the duplicate sets.
pub struct Judged {
    /// The text to keep (C4 drops lines), or the rule and reason that removed it.
    pub verdict: Result<String, (&'static str, &'static str)>,
    exact: Option<u128>,
    bands: Option<Vec<u64>>,
}

pub struct Pipeline {
    exact: Option<ExactDedup>,
    language: Option<(LanguageId, &'static str)>,
    gopher_repetition: Option<GopherRepetition>,
    gopher_quality: Option<GopherQuality>,
    c4: Option<C4Quality>,
    fineweb: Option<FineWebQuality>,
    minhash: Option<(Minhasher, NearDedup)>,
    pub report: Report,
}

/// datatrove's language filter keeps a document whose top language is wanted with a score of at
/// least 0.65.
const LANGUAGE_THRESHOLD: f64 = 0.65;

impl Pipeline {
    /// The rules named by `--dedup` and `--filter`, or one line naming what is unknown.
    pub fn new(rules: &Rules) -> Result<Self, Error> {
        let mut p = Pipeline {
            exact: None,
            language: None,
            gopher_repetition: None,
            gopher_quality: None,
            c4: None,
            fineweb: None,
            minhash: None,
            report: Report::default(),
        };
        // The budget split by keys a document: one for exact, a band's each for MinHash.
        let budget = rules.dedup_memory_gib.unwrap_or(DEDUP_MEMORY_GIB) * (1u64 << 30) as f64;
        let minhash = MinhashConfig::default();
        let keys = |name: &str| match name {
            "exact" => 1,
            "minhash" => minhash.num_buckets,
            _ => 0,
        };
        let all_keys: usize = rules.dedup.iter().map(|n| keys(n)).sum();
        let share = |name: &str| (budget * keys(name) as f64 / all_keys.max(1) as f64) as usize;
        for name in &rules.dedup {
            match name.as_str() {
                "exact" => p.exact = Some(ExactDedup::new(share(name))),
                "minhash" => p.minhash = Some((Minhasher::new(&minhash), NearDedup::new(share(name)))),
                other => {
                    return Err(Error::Config(format!("--dedup {other}: unknown; choose from exact, minhash")));
                }
            }
        }
        let known = ["gopher-quality", "gopher-repetition", "c4", "fineweb"];
        for table in rules.thresholds.iter().flat_map(|t| t.keys()) {
            if !known.contains(&table.as_str()) || !rules.filter.contains(table) {
                return Err(Error::Config(format!(
                    "--filter-config: [{table}] sets no filter this prepare runs; its tables are those of --filter ({})",
                    rules.filter.join(", ")
                )));
            }
        }
        // A filter's thresholds: datatrove's, with the keys of its table in --filter-config.
        fn thresholds<T: serde::de::DeserializeOwned + Default>(rules: &Rules, name: &str) -> Result<T, Error> {
            match rules.thresholds.as_ref().and_then(|t| t.get(name)) {
                None => Ok(T::default()),
                Some(table) => table.clone().try_into().map_err(|e: toml::de::Error| {
                    Error::Config(format!("--filter-config [{name}]: {}", e.message().trim()))
                }),
            }
        }
        for name in &rules.filter {
            match name.split_once('=') {
                Some(("language", code)) => {
                    let id = LanguageId::all_supported();
                    let Some(&code) = id.languages().iter().find(|c| c.eq_ignore_ascii_case(code)) else {
                        return Err(Error::Config(format!(
                            "--filter language={code}: not a language Hearth identifies; choose from {}",
                            id.languages().join(", ")
                        )));
                    };
                    p.language = Some((id, code));
                }
                _ => match name.as_str() {
                    "gopher-repetition" => p.gopher_repetition = Some(thresholds(rules, name)?),
                    "gopher-quality" => p.gopher_quality = Some(thresholds(rules, name)?),
                    "c4" => p.c4 = Some(thresholds::<C4Quality>(rules, name)?),
                    "fineweb" => p.fineweb = Some(thresholds::<FineWebQuality>(rules, name)?),
                    other => {
                        return Err(Error::Config(format!(
                            "--filter {other}: unknown; choose from gopher-quality, gopher-repetition, c4, fineweb, language=CODE"
                        )));
                    }
                },
            }
        }
        Ok(p)
    }

    /// The rules in the order they run, as the report names them.
    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            ("exact", self.exact.is_some()),
            ("language", self.language.is_some()),
            ("gopher-repetition", self.gopher_repetition.is_some()),
            ("gopher-quality", self.gopher_quality.is_some()),
            ("c4", self.c4.is_some()),
            ("fineweb", self.fineweb.is_some()),
            ("minhash", self.minhash.is_some()),
        ];
        on.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
    }

    /// Everything about `doc` that needs no other document (any thread).
    pub fn judge(&self, doc: &str) -> Judged {
        let exact = self.exact.as_ref().map(|_| exact_key(doc));
        let verdict = self.filter(doc);
        let bands = match (&self.minhash, &verdict) {
            (Some((hasher, _)), Ok(text)) => Some(hasher.band_keys(&hasher.signature(text))),
            _ => None,
        };
        Judged { verdict, exact, bands }
    }

    fn filter(&self, doc: &str) -> Result<String, (&'static str, &'static str)> {
        if let Some((id, code)) = &self.language {
            match id.detect(doc) {
                Some((found, score)) if found == *code && score >= LANGUAGE_THRESHOLD => {}
                _ => return Err(("language", "language")),
            }
        }
        if let Some(f) = &self.gopher_repetition {
            f.check(doc).map_err(|r| ("gopher-repetition", r))?;
        }
        if let Some(f) = &self.gopher_quality {
            f.check(doc).map_err(|r| ("gopher-quality", r))?;
        }
        let text = match &self.c4 {
            Some(f) => f.filter(doc).map_err(|r| ("c4", r))?,
            None => doc.to_string(),
        };
        if let Some(f) = &self.fineweb {
            f.check(&text).map_err(|r| ("fineweb", r))?;
        }
        Ok(text)
    }

    /// `judged`'s final fate, in input order: `true` to keep it (its text is `judged.verdict`),
    /// `false` when a rule removed it (counted in the report with `tokens`, its token count).
    pub fn decide(&mut self, doc: &str, judged: Judged, tokens: u64) -> bool {
        self.report.read += 1;
        let exact_dup = match (judged.exact, &mut self.exact) {
            (Some(key), Some(seen)) => seen.check_and_insert(key),
            _ => false,
        };
        let (rule, reason) = match judged.verdict {
            _ if exact_dup => ("exact", "exact_duplicate"),
            Err(rule) => rule,
            Ok(_) => {
                let near = match (judged.bands, &mut self.minhash) {
                    (Some(bands), Some((_, seen))) => seen.check_and_insert(&bands),
                    _ => false,
                };
                if !near {
                    return true;
                }
                ("minhash", "near_duplicate")
            }
        };
        let r = self.report.removed.entry(rule.to_string()).or_default();
        r.documents += 1;
        r.tokens += tokens;
        *self.report.reasons.entry(reason.to_string()).or_default() += 1;
        let samples = self.report.samples.entry(rule.to_string()).or_default();
        if samples.len() < SAMPLES {
            samples.push(doc.chars().take(2000).collect());
        }
        false
    }

    /// The duplicate sets of a resumed prepare are rebuilt by deciding the documents before its
    /// position again (same order, same result); the report comes from the state file instead.
    pub fn replay(&mut self, doc: &str, judged: Judged) {
        let report = std::mem::take(&mut self.report);
        self.decide(doc, judged, 0);
        self.report = report;
    }

    /// The duplicate sets (for meta.json): per set, the keys it holds, its memory, whether it
    /// became a Bloom filter, and the chance that a unique document was taken for a duplicate
    /// (read off a filter's bits: one pass over it).
    pub fn dedup_sets(&self) -> serde_json::Value {
        let set = |keys: &SeenKeys, per_document: f64| {
            serde_json::json!({
                "keys": keys.keys(),
                "memory_bytes": keys.memory_bytes(),
                "bloom_filter": keys.is_filter(),
                "false_positive_rate": per_document,
            })
        };
        let mut sets = serde_json::Map::new();
        if let Some(exact) = &self.exact {
            sets.insert("exact".into(), set(exact.keys(), exact.keys().false_positive_rate()));
        }
        if let Some((hasher, near)) = &self.minhash {
            let bands = hasher.config().num_buckets;
            sets.insert("minhash".into(), set(near.keys(), near.false_positive_rate(bands)));
        }
        sets.into()
    }

    /// A line for the summary once a duplicate set (of [`Pipeline::dedup_sets`]) outgrew
    /// exactness: its memory and the chance that a unique document was removed.
    pub fn dedup_memory_line(sets: &serde_json::Value) -> Option<String> {
        let filters: Vec<String> = sets
            .as_object()?
            .iter()
            .filter(|(_, s)| s["bloom_filter"].as_bool() == Some(true))
            .map(|(name, s)| {
                format!(
                    "{name} a {:.0} MiB Bloom filter (a unique document taken for a duplicate with probability {:.1e})",
                    s["memory_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 20) as f64,
                    s["false_positive_rate"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        (!filters.is_empty()).then(|| format!("--dedup-memory reached: {}", filters.join("; ")))
    }

    /// One line for the progress bar and the summary: `removed 12 exact, 40 gopher-quality`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> =
            self.report.removed.iter().map(|(rule, r)| format!("{} {rule}", r.documents)).collect();
        match parts.is_empty() {
            true => "removed none".into(),
            false => format!("removed {}", parts.join(", ")),
        }
    }
}
