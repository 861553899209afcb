//! Zero-shot tasks in the style of EleutherAI's lm-evaluation-harness, read from JSONL, one
//! example per line:
//!
//! - multiple choice: `{"context": "…", "choices": [" a", " b", …], "gold": 1}` — each choice is
//!   scored by its log-likelihood after the context; `acc` takes the highest sum, `acc_norm` the
//!   highest sum divided by the choice's length in characters (HellaSwag, PIQA, ARC are scored so);
//! - cloze: `{"context": "…", "target": " word"}` — `acc` is the share of examples whose target
//!   is the model's greedy completion, `perplexity` is exp of minus the mean target log-likelihood
//!   (LAMBADA's two numbers).
//!
//! Choices and targets carry their leading space, as in lm-eval: the pair is tokenized as
//! `context + continuation` and split after the context's tokens.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::score::{Request, Scorer};
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

#[derive(Clone, Debug, PartialEq)]
pub enum Example {
    Choice { context: String, choices: Vec<String>, gold: usize },
    Cloze { context: String, target: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    context: String,
    choices: Option<Vec<String>>,
    gold: Option<usize>,
    target: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<serde_json::Value>,
}

/// A named list of examples of one kind.
#[derive(Clone, Debug)]
pub struct Task {
    pub name: String,
    pub examples: Vec<Example>,
}

impl Task {
    pub fn from_jsonl(name: &str, text: &str) -> Result<Self> {
        let mut examples = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = |what: String| Error::Input(format!("{name}, line {}: {what}", i + 1));
            let l: Line = serde_json::from_str(line).map_err(|e| {
                bad(format!(
                    "{e}; expected {{\"context\", \"choices\", \"gold\"}} (multiple choice) or {{\"context\", \"target\"}} (cloze)"
                ))
            })?;
            let example = match (l.choices, l.gold, l.target) {
                (Some(choices), Some(gold), None) => {
                    if choices.len() < 2 || gold >= choices.len() || choices.iter().any(String::is_empty) {
                        return Err(bad(format!(
                            "needs at least two non-empty choices and gold < {} (got gold {gold})",
                            choices.len()
                        )));
                    }
                    Example::Choice { context: l.context, choices, gold }
                }
                (None, None, Some(target)) if !target.is_empty() => Example::Cloze { context: l.context, target },
                _ => return Err(bad("give either \"choices\" with \"gold\", or a non-empty \"target\"".into())),
            };
            if let Some(first) = examples.first()
                && std::mem::discriminant(first) != std::mem::discriminant(&example)
            {
                return Err(bad("mixes multiple-choice and cloze examples; one task holds one kind".into()));
            }
            examples.push(example);
        }
        if examples.is_empty() {
            return Err(Error::Input(format!("{name}: no examples")));
        }
        Ok(Self { name: name.to_string(), examples })
    }

    pub fn kind(&self) -> &'static str {
        match self.examples.first() {
            Some(Example::Cloze { .. }) => "cloze",
            _ => "multiple_choice",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskResult {
    pub task: String,
    pub kind: &'static str,
    pub n: usize,
    /// Multiple choice: `acc`, `acc_stderr`, `acc_norm`, `chance`. Cloze: `acc`, `acc_stderr`,
    /// `perplexity`, `majority_baseline` (the accuracy of always answering the most common target).
    pub metrics: BTreeMap<String, f64>,
}

/// Where a task's few-shot examples come from.
#[derive(Clone, Copy, Debug)]
pub enum Shots<'a> {
    /// Another split (MMLU's dev).
    From(&'a [Example]),
    /// The task's own examples, never the one being asked (LAMBADA, which has one split).
    Own,
}

/// How the few-shot examples are picked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Draw {
    /// The first `k`, in order (the harness's `first_n`, which its MMLU task uses).
    First,
    /// `k` at random without replacement, per example, from a generator seeded once per task.
    Seeded(u64),
}

impl Task {
    /// The task as lm-evaluation-harness prompts it with `k` examples: each context becomes
    /// `description`, then `k` examples each written as its context, its answer (the gold choice
    /// or the target) and a blank line, then the context. With `k = 0` only the description is
    /// added (MMLU's zero-shot prompt).
    pub fn with_fewshot(&self, description: &str, shots: Shots<'_>, k: usize, draw: Draw) -> Result<Task> {
        use rand::SeedableRng;
        use rand::seq::index::sample;
        let available = match shots {
            Shots::From(pool) => pool.len(),
            Shots::Own => self.examples.len().saturating_sub(1),
        };
        if k > available {
            return Err(Error::Input(format!(
                "{}: {k} few-shot examples asked for, but only {available} can be drawn",
                self.name
            )));
        }
        let seed = if let Draw::Seeded(s) = draw { s } else { 0 };
        let mut rng = crate::objectives::Rng::seed_from_u64(seed);
        let examples = self
            .examples
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let picked: Vec<usize> = match draw {
                    Draw::First => (0..k).collect(),
                    Draw::Seeded(_) => sample(&mut rng, available, k).into_vec(),
                };
                let shots: String = picked
                    .into_iter()
                    .map(|j| match shots {
                        Shots::From(pool) => answered(&pool[j]),
                        Shots::Own => answered(&self.examples[if j >= i { j + 1 } else { j }]),
                    })
                    .collect();
                let prompt = |context: &str| format!("{description}{shots}{context}");
                match e {
                    Example::Choice { context, choices, gold } => {
                        Example::Choice { context: prompt(context), choices: choices.clone(), gold: *gold }
                    }
                    Example::Cloze { context, target } => {
                        Example::Cloze { context: prompt(context), target: target.clone() }
                    }
                }
            })
            .collect();
        Ok(Task { name: self.name.clone(), examples })
    }
}

/// An example with its answer, as a few-shot prompt shows it (the harness's `doc_to_text +
/// target_delimiter + doc_to_target + fewshot_delimiter`; the delimiter space is the answer's own).
fn answered(e: &Example) -> String {
    match e {
        Example::Choice { context, choices, gold } => format!("{context}{}\n\n", choices[*gold]),
        Example::Cloze { context, target } => format!("{context}{target}\n\n"),
    }
}

/// `(context ids, continuation ids)` as lm-eval's `_encode_pair`: trailing spaces of the context
/// move to the continuation, the whole is tokenized and split after the context's tokens.
pub fn encode_pair(tokenizer: &Tokenizer, context: &str, continuation: &str) -> Result<(Vec<u32>, Vec<u32>)> {
    let trimmed = context.trim_end();
    let moved = &context[trimmed.len()..];
    let continuation = format!("{moved}{continuation}");
    let whole = tokenizer.encode(&format!("{trimmed}{continuation}"))?;
    let mut n_context = if trimmed.is_empty() { 0 } else { tokenizer.encode(trimmed)?.len() };
    n_context = n_context.min(whole.len().saturating_sub(1));
    Ok((whole[..n_context].to_vec(), whole[n_context..].to_vec()))
}

/// Scores every task (the first `limit` examples of each; 0: all).
pub fn run_suite(
    model: &crate::models::Model,
    tokenizer: &Tokenizer,
    tasks: &[Task],
    limit: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<TaskResult>> {
    let scorer = Scorer::new(model, tokenizer)?;
    tasks.iter().map(|t| run_task(&scorer, tokenizer, t, limit, batch_size, device)).collect()
}

/// Scores the first `limit` examples (0: all) of `task`.
pub fn run_task(
    scorer: &Scorer<'_>,
    tokenizer: &Tokenizer,
    task: &Task,
    limit: usize,
    batch_size: usize,
    device: &Device,
) -> Result<TaskResult> {
    let examples = &task.examples[..if limit == 0 { task.examples.len() } else { limit.min(task.examples.len()) }];
    let mut requests = Vec::new();
    for e in examples {
        let (context, continuations): (&str, Vec<&String>) = match e {
            Example::Choice { context, choices, .. } => (context, choices.iter().collect()),
            Example::Cloze { context, target } => (context, vec![target]),
        };
        for c in continuations {
            let (context, continuation) = encode_pair(tokenizer, context, c)?;
            requests.push(Request { context, continuation });
        }
    }
    let scores = scorer.loglikelihoods(&requests, batch_size, device)?;
    let n = examples.len();
    let mut metrics = BTreeMap::new();
    let mut next = scores.iter();
    match task.kind() {
        "multiple_choice" => {
            let (mut acc, mut acc_norm, mut chance) = (0.0, 0.0, 0.0);
            for e in examples {
                let Example::Choice { choices, gold, .. } = e else { unreachable!("one kind per task") };
                let s: Vec<f64> = choices.iter().map(|_| next.next().expect("one score per choice").logprob).collect();
                let normed: Vec<f64> = s.iter().zip(choices).map(|(l, c)| l / c.chars().count() as f64).collect();
                acc += (argmax(&s) == *gold) as u8 as f64;
                acc_norm += (argmax(&normed) == *gold) as u8 as f64;
                chance += 1.0 / choices.len() as f64;
            }
            let acc = acc / n as f64;
            metrics.insert("acc".into(), acc);
            metrics.insert("acc_stderr".into(), stderr(acc, n));
            metrics.insert("acc_norm".into(), acc_norm / n as f64);
            metrics.insert("chance".into(), chance / n as f64);
        }
        _ => {
            let (mut hits, mut logprob) = (0.0, 0.0);
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for e in examples {
                let Example::Cloze { target, .. } = e else { unreachable!("one kind per task") };
                let s = next.next().expect("one score per target");
                hits += s.greedy as u8 as f64;
                logprob += s.logprob;
                *counts.entry(target.trim()).or_default() += 1;
            }
            let acc = hits / n as f64;
            metrics.insert("acc".into(), acc);
            metrics.insert("acc_stderr".into(), stderr(acc, n));
            metrics.insert("perplexity".into(), (-logprob / n as f64).exp());
            metrics.insert("majority_baseline".into(), counts.values().copied().max().unwrap_or(0) as f64 / n as f64);
        }
    }
    Ok(TaskResult { task: task.name.clone(), kind: task.kind(), n, metrics })
}

/// The first index of the largest value (0 for an empty slice).
pub fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Standard error of a mean of `n` Bernoulli outcomes (lm-eval's `mean_stderr`).
fn stderr(p: f64, n: usize) -> f64 {
    if n < 2 { 0.0 } else { (p * (1.0 - p) / (n - 1) as f64).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_rejects_bad_lines() {
        let t = Task::from_jsonl("mc", "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 1}\n\n").unwrap();
        assert_eq!(t.kind(), "multiple_choice");
        let t = Task::from_jsonl("cz", "{\"context\": \"a b\", \"target\": \" c\"}").unwrap();
        assert_eq!(t.kind(), "cloze");
        for bad in [
            "{\"context\": \"a\", \"choices\": [\" b\"], \"gold\": 0}",
            "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 2}",
            "{\"context\": \"a\"}",
            "{\"context\": \"a\", \"target\": \" b\", \"label\": 1}",
            "{\"context\": \"a\", \"target\": \" b\"}\n{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"gold\": 0}",
            "not json",
            "",
        ] {
            let e = Task::from_jsonl("t", bad).unwrap_err().to_string();
            assert!(!e.contains('\n') && e.contains('t'), "{e}");
        }
    }

    #[test]
    fn stderr_and_argmax() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert!((stderr(0.5, 101) - 0.05).abs() < 1e-12);
    }
}
