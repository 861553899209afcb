//! GLUE's nine tasks from the folder its download script makes (`CoLA/train.tsv`,
//! `MNLI/dev_matched.tsv`, …): tab-separated, unquoted, CoLA without a header. The test files
//! carry no labels, so a task is trained on `train.tsv` and scored on `dev.tsv`, as papers report.

use std::path::Path;

use hearth_core::Error;
use hearth_core::eval::downstream::{Gold, Kind, Metric, TaskSpec, Unit};

use super::{Found, LoadedTask, tsv};

/// A column by header name, or by position in a file without a header (CoLA).
#[derive(Clone, Copy)]
enum Col {
    Name(&'static str),
    At(usize),
}

struct Glue {
    folder: &'static str,
    name: &'static str,
    header: bool,
    /// The text and pair columns, with the names T5's prefixes give them.
    text: (Col, &'static str),
    pair: Option<(Col, &'static str)>,
    label: Col,
    /// The label values as the files write them, in class order (empty: a score), and the words
    /// T5 answers with.
    values: &'static [&'static str],
    words: &'static [&'static str],
    metrics: &'static [Metric],
    /// Evaluation files and the names their metrics get (MNLI: matched and mismatched).
    evals: &'static [(&'static str, &'static str)],
}

const DEV: &[(&str, &str)] = &[("dev.tsv", "")];
const BINARY: &[&str] = &["0", "1"];
const NLI: &[&str] = &["entailment", "not_entailment"];

const TASKS: [Glue; 9] = [
    Glue {
        folder: "CoLA",
        name: "cola",
        header: false,
        text: (Col::At(3), "sentence"),
        pair: None,
        label: Col::At(1),
        values: BINARY,
        words: &["unacceptable", "acceptable"],
        metrics: &[Metric::Matthews],
        evals: DEV,
    },
    Glue {
        folder: "SST-2",
        name: "sst2",
        header: true,
        text: (Col::Name("sentence"), "sentence"),
        pair: None,
        label: Col::Name("label"),
        values: BINARY,
        words: &["negative", "positive"],
        metrics: &[Metric::Accuracy],
        evals: DEV,
    },
    Glue {
        folder: "MRPC",
        name: "mrpc",
        header: true,
        text: (Col::Name("#1 String"), "sentence1"),
        pair: Some((Col::Name("#2 String"), "sentence2")),
        label: Col::Name("Quality"),
        values: BINARY,
        words: &["not_equivalent", "equivalent"],
        metrics: &[Metric::F1, Metric::Accuracy],
        evals: DEV,
    },
    Glue {
        folder: "STS-B",
        name: "stsb",
        header: true,
        text: (Col::Name("sentence1"), "sentence1"),
        pair: Some((Col::Name("sentence2"), "sentence2")),
        label: Col::Name("score"),
        values: &[],
        words: &[],
        metrics: &[Metric::Pearson, Metric::Spearman],
        evals: DEV,
    },
    Glue {
        folder: "QQP",
        name: "qqp",
        header: true,
        text: (Col::Name("question1"), "question1"),
        pair: Some((Col::Name("question2"), "question2")),
        label: Col::Name("is_duplicate"),
        values: BINARY,
        words: &["not_duplicate", "duplicate"],
        metrics: &[Metric::F1, Metric::Accuracy],
        evals: DEV,
    },
    Glue {
        folder: "MNLI",
        name: "mnli",
        header: true,
        text: (Col::Name("sentence1"), "premise"),
        pair: Some((Col::Name("sentence2"), "hypothesis")),
        label: Col::Name("gold_label"),
        values: &["entailment", "neutral", "contradiction"],
        words: &["entailment", "neutral", "contradiction"],
        metrics: &[Metric::Accuracy],
        evals: &[("dev_matched.tsv", "m_"), ("dev_mismatched.tsv", "mm_")],
    },
    Glue {
        folder: "QNLI",
        name: "qnli",
        header: true,
        text: (Col::Name("question"), "question"),
        pair: Some((Col::Name("sentence"), "sentence")),
        label: Col::Name("label"),
        values: NLI,
        words: NLI,
        metrics: &[Metric::Accuracy],
        evals: DEV,
    },
    Glue {
        folder: "RTE",
        name: "rte",
        header: true,
        text: (Col::Name("sentence1"), "sentence1"),
        pair: Some((Col::Name("sentence2"), "sentence2")),
        label: Col::Name("label"),
        values: NLI,
        words: NLI,
        metrics: &[Metric::Accuracy],
        evals: DEV,
    },
    Glue {
        folder: "WNLI",
        name: "wnli",
        header: true,
        text: (Col::Name("sentence1"), "sentence1"),
        pair: Some((Col::Name("sentence2"), "sentence2")),
        label: Col::Name("label"),
        values: BINARY,
        words: &["not_entailment", "entailment"],
        metrics: &[Metric::Accuracy],
        evals: DEV,
    },
];

/// Every task, read when its folder is under `dir`.
pub fn load(dir: &Path) -> Vec<(&'static str, Found)> {
    TASKS.iter().map(|t| (t.name, Found::read(dir, t.folder, |folder| t.read(folder)))).collect()
}

impl Glue {
    fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: self.name,
            kind: if self.values.is_empty() { Kind::Regression } else { Kind::Classes },
            labels: self.words.iter().map(|w| w.to_string()).collect(),
            metrics: self.metrics.to_vec(),
        }
    }

    fn read(&self, folder: &Path) -> Result<LoadedTask, Error> {
        let train = self.units(&folder.join("train.tsv"))?;
        let mut evals = Vec::new();
        for (file, prefix) in self.evals {
            evals.push((*prefix, self.units(&folder.join(file))?));
        }
        Ok(LoadedTask { spec: self.spec(), train, evals })
    }

    fn units(&self, path: &Path) -> Result<Vec<Unit>, Error> {
        let table = tsv::read(path, self.header)?;
        let column = |c: Col| -> Result<usize, Error> {
            match c {
                Col::At(i) => Ok(i),
                Col::Name(n) => table.column(n).ok_or_else(|| {
                    Error::Input(format!(
                        "no column \"{n}\" (GLUE's {} layout); the header has {}",
                        self.folder,
                        table.header.join(", ")
                    ))
                    .in_file(path.display())
                }),
            }
        };
        let text = column(self.text.0)?;
        let pair = self.pair.map(|p| column(p.0)).transpose()?;
        let label = column(self.label)?;
        let mut units = Vec::new();
        for (line, row) in &table.rows {
            let bad = |what: String| Error::Input(format!("line {line}: {what}")).in_file(path.display());
            let need = text.max(pair.unwrap_or(0)).max(label);
            if row.len() <= need {
                return Err(bad(format!(
                    "{} fields where GLUE's {} layout has at least {}",
                    row.len(),
                    self.folder,
                    need + 1
                )));
            }
            let value = row[label].trim();
            let gold =
                if self.values.is_empty() {
                    Gold::Score(value.parse().map_err(|_| bad(format!("the score \"{value}\" is not a number")))?)
                } else {
                    Gold::Class(self.values.iter().position(|v| *v == value).ok_or_else(|| {
                        bad(format!("the label \"{value}\" is not one of {}", self.values.join(", ")))
                    })?)
                };
            let a = row[text].clone();
            let b = pair.map(|p| row[p].clone());
            let t5_input = match (&b, self.pair) {
                (Some(b), Some((_, key))) => format!("{} {}: {a} {key}: {b}", self.name, self.text.1),
                _ => format!("{} {}: {a}", self.name, self.text.1),
            };
            units.push(Unit { rows: vec![(a, b)], t5_input, gold, group: units.len(), candidates: vec![] });
        }
        if units.is_empty() {
            return Err(Error::Input("no examples".into()).in_file(path.display()));
        }
        Ok(units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/benchmarks/glue")
    }

    #[test]
    fn every_task_reads_its_official_layout() {
        let loaded = load(&fixtures());
        assert_eq!(loaded.len(), 9);
        for (name, task) in &loaded {
            let task = task.task();
            assert_eq!(task.train.len(), 16, "{name}");
            for (_, units) in &task.evals {
                assert_eq!(units.len(), 8, "{name}");
            }
            let u = &task.train[0];
            assert!(u.t5_input.starts_with(&format!("{name} ")), "{name}: {}", u.t5_input);
            match task.spec.kind {
                Kind::Regression => assert!(matches!(u.gold, Gold::Score(s) if (0.0..=5.0).contains(&s))),
                _ => assert!(matches!(u.gold, Gold::Class(c) if c < task.spec.labels.len())),
            }
        }
        let mnli = loaded.iter().find(|t| t.0 == "mnli").unwrap().1.task();
        assert_eq!(mnli.evals.iter().map(|e| e.0).collect::<Vec<_>>(), ["m_", "mm_"]);
    }

    #[test]
    fn real_rows_become_the_right_units() {
        let dir = std::env::temp_dir().join(format!("hearth-glue-{}", std::process::id()));
        let write = |task: &str, file: &str, text: &str| {
            std::fs::create_dir_all(dir.join(task)).unwrap();
            std::fs::write(dir.join(task).join(file), text).unwrap();
        };
        // The first rows of CoLA's and RTE's released files.
        write(
            "CoLA",
            "train.tsv",
            "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\ngj04\t0\t*\tThey drank the pub.\n",
        );
        write("CoLA", "dev.tsv", "gj04\t0\t*\tThey drank the pub.\n");
        let rte = "index\tsentence1\tsentence2\tlabel\n0\tDana Reeve, the widow of the actor Christopher Reeve, has died of cancer at age 44, according to the Christopher Reeve Foundation.\tChristopher Reeve had an accident.\tnot_entailment\n";
        write("RTE", "train.tsv", rte);
        write("RTE", "dev.tsv", rte);
        let loaded = load(&dir);
        let cola = loaded[0].1.task();
        assert_eq!(
            cola.train[0].rows,
            vec![("Our friends won't buy this analysis, let alone the next one we propose.".to_string(), None)]
        );
        assert_eq!(cola.train[1].gold, Gold::Class(0));
        assert_eq!(cola.spec.t5_target(&cola.train[1]), "unacceptable");
        assert_eq!(cola.spec.metrics, vec![Metric::Matthews]);
        let rte = loaded.iter().find(|t| t.0 == "rte").unwrap().1.task();
        assert_eq!(rte.train[0].gold, Gold::Class(1));
        assert_eq!(rte.train[0].rows[0].1.as_deref(), Some("Christopher Reeve had an accident."));
        assert!(
            rte.train[0].t5_input.starts_with("rte sentence1: Dana Reeve,")
                && rte.train[0].t5_input.ends_with("sentence2: Christopher Reeve had an accident.")
        );
        assert_eq!(
            loaded.iter().filter(|t| matches!(t.1, Found::Absent(_))).count(),
            7,
            "the absent tasks are skipped"
        );
        assert!(matches!(loaded[1].1, Found::Absent("SST-2")));
        // A label outside the layout's values: one line naming the file, the line, the values.
        write("RTE", "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tyes\n");
        let loaded = load(&dir);
        let Found::Unreadable(e) = &loaded.iter().find(|t| t.0 == "rte").unwrap().1 else { panic!("unreadable") };
        let e = e.to_string();
        assert!(
            e.contains("dev.tsv")
                && e.contains("line 2")
                && e.contains("\"yes\" is not one of entailment, not_entailment"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
