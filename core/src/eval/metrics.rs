//! Classification metrics as GLUE reports them: accuracy, F1 (of the positive class for two
//! classes, macro-averaged otherwise) and Matthews correlation (its multi-class form, Gorodkin
//! 2004, which is what scikit-learn's `matthews_corrcoef` computes).

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
}
