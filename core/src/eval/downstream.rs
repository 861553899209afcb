//! Downstream tasks in one shape, whatever their layout: a task is a list of [`Unit`]s, the things
//! it is scored on, each with what a classifier reads, what T5 reads, and the gold answer; the
//! task's official metrics are computed from one [`Prediction`] per unit.
//!
//! The formulations follow the SuperGLUE baselines (Wang et al. 2019, §6) for a classifier, and
//! T5 (Raffel et al. 2020, appendix D) for text-to-text:
//!
//! | kind | classifier | T5 target |
//! |---|---|---|
//! | [`Kind::Classes`] | one text (pair), a class head | the label's word |
//! | [`Kind::Regression`] | one pair, one output, squared error | the score rounded to 0.2, as text |
//! | [`Kind::Choice`] | one pair per choice, a softmax over the choices (COPA) | `choice1` / `choice2` |
//! | [`Kind::Candidates`] | one binary pair per candidate; the most likely one answers (ReCoRD) | the answer |

use std::cell::OnceCell;

use serde::Serialize;

use super::metrics::{ClassificationMetrics, answer_f1_em, multirc, pearson, spearman};

/// How a task's units are answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Classes,
    Regression,
    Choice(usize),
    Candidates,
}

/// The gold answer of a unit.
#[derive(Clone, Debug, PartialEq)]
pub enum Gold {
    Class(usize),
    Score(f32),
    /// Any of these texts is right (ReCoRD).
    Answers(Vec<String>),
}

/// One scored item of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// What a classifier reads: one text (and pair); for [`Kind::Choice`] and
    /// [`Kind::Candidates`], one per choice or candidate.
    pub rows: Vec<(String, Option<String>)>,
    /// What T5 reads, the task prefix included.
    pub t5_input: String,
    pub gold: Gold,
    /// The question a unit belongs to (MultiRC scores exact match per question).
    pub group: usize,
    /// [`Kind::Candidates`]: the candidate answer of each row.
    pub candidates: Vec<String>,
}

/// A model's answer to a unit.
#[derive(Clone, Debug, PartialEq)]
pub enum Prediction {
    Class(usize),
    Score(f64),
    Text(String),
    /// T5 wrote something that is none of the labels (counted wrong).
    Invalid(String),
}

/// An official metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    F1,
    Matthews,
    Pearson,
    Spearman,
    /// MultiRC: F1 over all answers, and exact match per question.
    F1a,
    ExactMatch,
    /// ReCoRD: token F1 and exact match, the best over the gold answers.
    AnswerF1,
    AnswerExactMatch,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "acc",
            Metric::F1 => "f1",
            Metric::Matthews => "mcc",
            Metric::Pearson => "pearson",
            Metric::Spearman => "spearman",
            Metric::F1a => "f1a",
            Metric::ExactMatch | Metric::AnswerExactMatch => "em",
            Metric::AnswerF1 => "f1",
        }
    }
}

/// The mean regression target of `units` (0 when none has a score).
pub fn mean_score(units: &[Unit]) -> f64 {
    let scores: Vec<f64> =
        units.iter().filter_map(|u| if let Gold::Score(s) = u.gold { Some(s as f64) } else { None }).collect();
    scores.iter().sum::<f64>() / scores.len().max(1) as f64
}

/// What a task is: its kind, its labels (class names, which are also T5's target words), its
/// metrics.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: Vec<String>,
    pub metrics: Vec<Metric>,
}

impl TaskSpec {
    /// T5's target text for `unit`.
    pub fn t5_target(&self, unit: &Unit) -> String {
        match &unit.gold {
            Gold::Class(c) => self.labels[*c].clone(),
            Gold::Score(s) => format!("{:.1}", (s * 5.0).round() / 5.0),
            Gold::Answers(a) => a.first().cloned().unwrap_or_default(),
        }
    }

    /// T5's output read as an answer.
    pub fn read_t5(&self, text: &str) -> Prediction {
        let t = text.trim();
        match self.kind {
            Kind::Classes | Kind::Choice(_) => match self.labels.iter().position(|l| l == t) {
                Some(c) => Prediction::Class(c),
                None => Prediction::Invalid(t.to_string()),
            },
            Kind::Regression => match t.parse::<f64>() {
                Ok(s) if s.is_finite() => Prediction::Score(s),
                _ => Prediction::Invalid(t.to_string()),
            },
            Kind::Candidates => Prediction::Text(t.to_string()),
        }
    }

    /// The answers of a model that ignores its input (the baseline to beat): the class most frequent
    /// in `train`, its mean score, or a unit's first candidate.
    pub fn majority(&self, train: &[Unit], units: &[Unit]) -> Vec<Prediction> {
        let classes: Vec<usize> =
            train.iter().filter_map(|u| if let Gold::Class(c) = u.gold { Some(c) } else { None }).collect();
        let class = super::metrics::majority_class(&classes, self.labels.len().max(2));
        let mean = mean_score(train);
        units
            .iter()
            .map(|u| match self.kind {
                Kind::Classes | Kind::Choice(_) => Prediction::Class(class),
                Kind::Regression => Prediction::Score(mean),
                Kind::Candidates => Prediction::Text(u.candidates.first().cloned().unwrap_or_default()),
            })
            .collect()
    }

    /// The task's metrics for `predictions` (one per unit); `fallback_score` stands in for an
    /// unreadable regression answer (the mean training score).
    pub fn score(&self, units: &[Unit], predictions: &[Prediction], fallback_score: f64) -> Vec<(Metric, f64)> {
        assert_eq!(units.len(), predictions.len(), "one prediction per unit");
        let k = self.labels.len().max(2);
        // Each family of metrics is computed once, when a metric of it is asked for.
        let classes = OnceCell::new();
        let classes = || {
            classes.get_or_init(|| -> (Vec<usize>, Vec<usize>) {
                units
                    .iter()
                    .zip(predictions)
                    .map(|(u, p)| {
                        let gold = match u.gold {
                            Gold::Class(c) => c,
                            _ => 0,
                        };
                        let pred = match p {
                            Prediction::Class(c) => *c,
                            _ => (gold + 1) % k, // an unreadable answer is a wrong one
                        };
                        (pred, gold)
                    })
                    .unzip()
            })
        };
        let classification = OnceCell::new();
        let classification =
            || classification.get_or_init(|| ClassificationMetrics::compute(&classes().0, &classes().1, k));
        let multirc_pair = OnceCell::new();
        let multirc_pair = || {
            multirc_pair.get_or_init(|| {
                let questions: Vec<usize> = units.iter().map(|u| u.group).collect();
                multirc(&classes().0, &classes().1, &questions)
            })
        };
        let correlations = OnceCell::new();
        let correlations = || {
            correlations.get_or_init(|| {
                let (p, g): (Vec<f64>, Vec<f64>) = units
                    .iter()
                    .zip(predictions)
                    .map(|(u, p)| {
                        let gold = if let Gold::Score(s) = u.gold { s as f64 } else { 0.0 };
                        let pred = if let Prediction::Score(s) = p { *s } else { fallback_score };
                        (pred, gold)
                    })
                    .unzip();
                (pearson(&p, &g), spearman(&p, &g))
            })
        };
        let answers = OnceCell::new();
        let answers = || {
            *answers.get_or_init(|| {
                let mut sum = (0.0, 0.0);
                for (u, p) in units.iter().zip(predictions) {
                    let (text, golds) = match (p, &u.gold) {
                        (Prediction::Text(t) | Prediction::Invalid(t), Gold::Answers(g)) => (t.as_str(), g.as_slice()),
                        _ => continue,
                    };
                    let (f1, em) = answer_f1_em(text, golds);
                    sum = (sum.0 + f1, sum.1 + em);
                }
                let n = units.len().max(1) as f64;
                (sum.0 / n, sum.1 / n)
            })
        };
        self.metrics
            .iter()
            .map(|&m| {
                let v = match m {
                    Metric::Accuracy => classification().accuracy,
                    Metric::F1 => classification().f1,
                    Metric::Matthews => classification().mcc,
                    Metric::Pearson => correlations().0,
                    Metric::Spearman => correlations().1,
                    Metric::F1a => multirc_pair().0,
                    Metric::ExactMatch => multirc_pair().1,
                    Metric::AnswerF1 => answers().0,
                    Metric::AnswerExactMatch => answers().1,
                };
                (m, v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(gold: Gold) -> Unit {
        Unit { rows: vec![("x".into(), None)], t5_input: "x".into(), gold, group: 0, candidates: vec![] }
    }

    #[test]
    fn t5_answers_are_read_back_and_unreadable_ones_count_wrong() {
        let spec = TaskSpec {
            name: "sst2",
            kind: Kind::Classes,
            labels: vec!["negative".into(), "positive".into()],
            metrics: vec![Metric::Accuracy, Metric::F1],
        };
        assert_eq!(spec.t5_target(&unit(Gold::Class(1))), "positive");
        assert_eq!(spec.read_t5(" positive"), Prediction::Class(1));
        assert_eq!(spec.read_t5("positively"), Prediction::Invalid("positively".into()));
        let units = vec![unit(Gold::Class(1)), unit(Gold::Class(0)), unit(Gold::Class(1))];
        let preds = vec![Prediction::Class(1), Prediction::Invalid("meh".into()), Prediction::Class(0)];
        // predicted [1, 1 (wrong), 0] vs gold [1, 0, 1]: acc 1/3; tp 1, fp 1, fn 1: F1 1/2.
        let s = spec.score(&units, &preds, 0.0);
        assert!((s[0].1 - 1.0 / 3.0).abs() < 1e-12 && (s[1].1 - 0.5).abs() < 1e-12, "{s:?}");

        let stsb = TaskSpec { name: "stsb", kind: Kind::Regression, labels: vec![], metrics: vec![Metric::Pearson] };
        assert_eq!(stsb.t5_target(&unit(Gold::Score(3.75))), "3.8");
        assert_eq!(stsb.t5_target(&unit(Gold::Score(0.0))), "0.0");
        assert_eq!(stsb.read_t5("2.4"), Prediction::Score(2.4));
        let units = vec![unit(Gold::Score(1.0)), unit(Gold::Score(2.0)), unit(Gold::Score(3.0))];
        let s =
            stsb.score(&units, &[Prediction::Score(1.0), Prediction::Invalid("x".into()), Prediction::Score(3.0)], 2.0);
        assert!((s[0].1 - 1.0).abs() < 1e-12, "the fallback 2.0 stands in: {s:?}");
        // The baseline: the mean training score for every unit (Pearson 0), the majority class.
        assert_eq!(stsb.majority(&units, &units[..1]), vec![Prediction::Score(2.0)]);
        let train = vec![unit(Gold::Class(1)), unit(Gold::Class(0)), unit(Gold::Class(1))];
        assert_eq!(spec.majority(&train, &train), vec![Prediction::Class(1); 3]);
    }
}
