//! The metrics GLUE and SuperGLUE report: accuracy, F1 (of the positive class for two classes,
//! macro-averaged otherwise) and Matthews correlation (its multi-class form, Gorodkin 2004, which
//! is what scikit-learn's `matthews_corrcoef` computes); Pearson and Spearman correlation
//! (STS-B); MultiRC's F1 over all answers and exact match per question; ReCoRD's token F1 and exact
//! match after SQuAD's normalisation, the best over the gold answers.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassificationMetrics {
    pub accuracy: f64,
    pub f1: f64,
    pub mcc: f64,
    pub n: usize,
}

impl ClassificationMetrics {
    /// `predictions` and `labels` are class indices below `num_classes`.
    pub fn compute(predictions: &[usize], labels: &[usize], num_classes: usize) -> Self {
        assert_eq!(predictions.len(), labels.len(), "one prediction per label");
        let k = num_classes.max(1);
        let mut confusion = vec![vec![0u64; k]; k]; // [true][predicted]
        for (&p, &l) in predictions.iter().zip(labels) {
            confusion[l][p] += 1;
        }
        let n = labels.len();
        let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let accuracy = correct as f64 / n.max(1) as f64;
        let f1_of = |c: usize| {
            let tp = confusion[c][c] as f64;
            let predicted: f64 = (0..k).map(|i| confusion[i][c] as f64).sum();
            let actual: f64 = confusion[c].iter().map(|&x| x as f64).sum();
            if predicted + actual == 0.0 { 0.0 } else { 2.0 * tp / (predicted + actual) }
        };
        let f1 = if k == 2 { f1_of(1) } else { (0..k).map(f1_of).sum::<f64>() / k as f64 };
        // MCC = (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))
        let s = n as f64;
        let c = correct as f64;
        let p: Vec<f64> = (0..k).map(|j| (0..k).map(|i| confusion[i][j] as f64).sum()).collect();
        let t: Vec<f64> = (0..k).map(|i| confusion[i].iter().map(|&x| x as f64).sum()).collect();
        let pt: f64 = p.iter().zip(&t).map(|(a, b)| a * b).sum();
        let denom =
            ((s * s - p.iter().map(|x| x * x).sum::<f64>()) * (s * s - t.iter().map(|x| x * x).sum::<f64>())).sqrt();
        let mcc = if denom == 0.0 { 0.0 } else { (c * s - pt) / denom };
        Self { accuracy, f1, mcc, n }
    }

    /// The metric named `accuracy`, `f1` or `mcc`.
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "accuracy" | "acc" => Some(self.accuracy),
            "f1" => Some(self.f1),
            "mcc" | "matthews" => Some(self.mcc),
            _ => None,
        }
    }
}

/// The class that occurs most often (the lowest index among ties).
pub fn majority_class(labels: &[usize], num_classes: usize) -> usize {
    let mut counts = vec![0usize; num_classes.max(1)];
    for &l in labels {
        counts[l] += 1;
    }
    (0..counts.len()).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))).unwrap_or(0)
}

/// Pearson's correlation of `x` and `y` (0 when either is constant).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "one prediction per label");
    let n = x.len().max(1) as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let vy: f64 = y.iter().map(|b| (b - my) * (b - my)).sum();
    if vx == 0.0 || vy == 0.0 { 0.0 } else { cov / (vx * vy).sqrt() }
}

/// Spearman's rank correlation: Pearson's of the ranks, ties sharing their mean rank (as
/// `scipy.stats.spearmanr`).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// 1-based ranks, ties given the mean of the ranks they span.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// MultiRC's two numbers: `f1a`, F1 of the "true" answers over every answer of every question, and
/// `em`, the share of questions whose answers are all labelled right. `questions[i]` names the
/// question of answer `i`.
pub fn multirc(predictions: &[usize], labels: &[usize], questions: &[usize]) -> (f64, f64) {
    let f1a = ClassificationMetrics::compute(predictions, labels, 2).f1;
    let mut all_right: std::collections::BTreeMap<usize, bool> = Default::default();
    for ((p, l), q) in predictions.iter().zip(labels).zip(questions) {
        *all_right.entry(*q).or_insert(true) &= p == l;
    }
    let em = all_right.values().filter(|&&r| r).count() as f64 / all_right.len().max(1) as f64;
    (f1a, em)
}

/// SQuAD's answer normalisation (ReCoRD's official script uses it): lower case, no punctuation,
/// no articles (a, an, the), single spaces.
pub fn normalize_answer(text: &str) -> String {
    let lower: String = text.to_lowercase().chars().filter(|c| !c.is_ascii_punctuation()).collect();
    lower.split_whitespace().filter(|w| !matches!(*w, "a" | "an" | "the")).collect::<Vec<_>>().join(" ")
}

/// Token F1 and exact match of `prediction` against the best of `golds` (ReCoRD's `f1` and `em`
/// for one query).
pub fn answer_f1_em(prediction: &str, golds: &[String]) -> (f64, f64) {
    let p = normalize_answer(prediction);
    let p_tokens: Vec<&str> = p.split_whitespace().collect();
    let mut best = (0.0f64, 0.0f64);
    for gold in golds {
        let g = normalize_answer(gold);
        let g_tokens: Vec<&str> = g.split_whitespace().collect();
        let mut counts: std::collections::HashMap<&str, i64> = Default::default();
        for t in &g_tokens {
            *counts.entry(t).or_default() += 1;
        }
        let mut common = 0;
        for t in &p_tokens {
            if let Some(c) = counts.get_mut(t)
                && *c > 0
            {
                *c -= 1;
                common += 1;
            }
        }
        let f1 = if common == 0 {
            0.0
        } else {
            let (precision, recall) = (common as f64 / p_tokens.len() as f64, common as f64 / g_tokens.len() as f64);
            2.0 * precision * recall / (precision + recall)
        };
        best = (best.0.max(f1), best.1.max((p == g) as u8 as f64));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_metrics_by_hand() {
        // tp = 3, fn = 1, fp = 2, tn = 4: acc 0.7, F1 = 6/9, MCC = (12 - 2)/sqrt(5·4·6·5).
        let labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
        let preds = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0];
        let m = ClassificationMetrics::compute(&preds, &labels, 2);
        assert!((m.accuracy - 0.7).abs() < 1e-12);
        assert!((m.f1 - 6.0 / 9.0).abs() < 1e-12);
        assert!((m.mcc - 10.0 / 600f64.sqrt()).abs() < 1e-12, "{}", m.mcc);
        assert_eq!(m.n, 10);
    }

    #[test]
    fn multiclass_metrics_by_hand() {
        // confusion [true][pred]: [[2,1,0],[0,2,0],[1,0,1]]; s = 7, c = 5
        let labels = [0, 0, 0, 1, 1, 2, 2];
        let preds = [0, 0, 1, 1, 1, 0, 2];
        let m = ClassificationMetrics::compute(&preds, &labels, 3);
        assert!((m.accuracy - 5.0 / 7.0).abs() < 1e-12);
        // F1 per class: 2·2/(3+3) = 2/3, 2·2/(3+2) = 4/5, 2·1/(1+2) = 2/3
        assert!((m.f1 - (2.0 / 3.0 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // p = [3,3,1], t = [3,2,2]: (5·7 − (9+6+2)) / sqrt((49 − 19)(49 − 17)) = 18 / sqrt(960)
        assert!((m.mcc - 18.0 / 960f64.sqrt()).abs() < 1e-12, "{}", m.mcc);
        // A constant predictor has MCC 0 and the majority class's accuracy.
        let m = ClassificationMetrics::compute(&[0; 7], &labels, 3);
        assert_eq!(m.mcc, 0.0);
        assert_eq!(majority_class(&labels, 3), 0);
        assert!((m.accuracy - 3.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn correlations_by_hand() {
        // x = 1..5, y = [2, 4, 5, 4, 5]: mean 4, cov = 6, var x = 10, var y = 6: r = 6 / sqrt(60).
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 4.0, 5.0, 4.0, 5.0];
        assert!((pearson(&x, &y) - 6.0 / 60f64.sqrt()).abs() < 1e-12);
        // ranks of y with ties: [1, 2.5, 4.5, 2.5, 4.5]; mean 3, cov = 4 + 0.5 + 0 − 0.5 + 3 = 7,
        // var = 10 and 9 (scipy.stats.spearmanr gives 0.7379).
        assert_eq!(ranks(&y), vec![1.0, 2.5, 4.5, 2.5, 4.5]);
        assert!((spearman(&x, &y) - 7.0 / 90f64.sqrt()).abs() < 1e-12);
        assert!((spearman(&x, &[10.0, 20.0, 30.0, 40.0, 1e9]) - 1.0).abs() < 1e-12, "monotone is 1");
        assert_eq!(pearson(&x, &[3.0; 5]), 0.0);
    }

    #[test]
    fn multirc_and_record_by_hand() {
        // Question 0: both answers right; question 1: one of three wrong. tp 2, fp 1, fn 0.
        let (f1a, em) = multirc(&[1, 0, 1, 1, 0], &[1, 0, 1, 0, 0], &[0, 0, 1, 1, 1]);
        assert!((f1a - 0.8).abs() < 1e-12 && (em - 0.5).abs() < 1e-12, "{f1a} {em}");
        assert_eq!(normalize_answer("The  Bank of England!"), "bank of england");
        let golds = vec!["Bank of England".to_string(), "England".to_string()];
        assert_eq!(answer_f1_em("the bank of England", &golds), (1.0, 1.0));
        // "England's bank" → "englands bank": common {bank} with "bank of england": p 1/2, r 1/3.
        let (f1, em) = answer_f1_em("England's bank", &golds);
        assert!((f1 - 0.4).abs() < 1e-12 && em == 0.0, "{f1}");
        assert_eq!(answer_f1_em("Paris", &golds), (0.0, 0.0));
    }
}
