//! SuperGLUE's eight tasks from the folder its download makes (`BoolQ/train.jsonl`,
//! `ReCoRD/val.jsonl`, …): JSON lines, trained on `train.jsonl` and scored on `val.jsonl` (the
//! test labels are hidden). Each task becomes [`Unit`]s in the formulation of the SuperGLUE
//! baselines for a classifier and of T5 for text-to-text; see `eval::downstream`:
//!
//! - BoolQ, CB, RTE: a sentence pair (question + passage, premise + hypothesis);
//! - WiC: the pair, the word written before the first sentence (the baseline also reads the word's
//!   own representation);
//! - WSC: the text with the noun phrase marked `*…*` and the pronoun `#…#`, paired with
//!   "pronoun = noun phrase" (the baseline pools the two spans instead);
//! - COPA: one pair per choice (premise, question + choice), a softmax over the two;
//! - MultiRC: one binary pair per answer (paragraph, question + answer); F1a over all answers, EM
//!   per question;
//! - ReCoRD: one binary pair per candidate entity (passage, query with the entity in place); the
//!   most likely candidate answers; F1 and EM against the gold answers.

use std::path::Path;

use hearth_core::Error;
use hearth_core::eval::downstream::{Gold, Kind, Metric, TaskSpec, Unit};
use serde_json::Value;

use super::{Found, LoadedTask};

const FALSE_TRUE: &[&str] = &["False", "True"];

struct SuperGlue {
    folder: &'static str,
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    metrics: &'static [Metric],
    /// One JSON line to its units (`group` numbers MultiRC's questions).
    units: fn(&Value, &mut usize) -> Result<Vec<Unit>, String>,
}

const TASKS: [SuperGlue; 8] = [
    SuperGlue {
        folder: "BoolQ",
        name: "boolq",
        kind: Kind::Classes,
        labels: FALSE_TRUE,
        metrics: &[Metric::Accuracy],
        units: boolq,
    },
    SuperGlue {
        folder: "CB",
        name: "cb",
        kind: Kind::Classes,
        labels: &["entailment", "contradiction", "neutral"],
        metrics: &[Metric::Accuracy, Metric::F1],
        units: cb,
    },
    SuperGlue {
        folder: "COPA",
        name: "copa",
        kind: Kind::Choice(2),
        labels: &["choice1", "choice2"],
        metrics: &[Metric::Accuracy],
        units: copa,
    },
    SuperGlue {
        folder: "MultiRC",
        name: "multirc",
        kind: Kind::Classes,
        labels: FALSE_TRUE,
        metrics: &[Metric::F1a, Metric::ExactMatch],
        units: multirc,
    },
    SuperGlue {
        folder: "ReCoRD",
        name: "record",
        kind: Kind::Candidates,
        labels: &[],
        metrics: &[Metric::AnswerF1, Metric::AnswerExactMatch],
        units: record,
    },
    SuperGlue {
        folder: "RTE",
        name: "rte",
        kind: Kind::Classes,
        labels: &["entailment", "not_entailment"],
        metrics: &[Metric::Accuracy],
        units: rte,
    },
    SuperGlue {
        folder: "WiC",
        name: "wic",
        kind: Kind::Classes,
        labels: FALSE_TRUE,
        metrics: &[Metric::Accuracy],
        units: wic,
    },
    SuperGlue {
        folder: "WSC",
        name: "wsc",
        kind: Kind::Classes,
        labels: FALSE_TRUE,
        metrics: &[Metric::Accuracy],
        units: wsc,
    },
];

/// Every task, read when its folder is under `dir`.
pub fn load(dir: &Path) -> Vec<(&'static str, Found)> {
    TASKS.iter().map(|t| (t.name, Found::read(dir, t.folder, |folder| t.read(folder)))).collect()
}

impl SuperGlue {
    fn read(&self, folder: &Path) -> Result<LoadedTask, Error> {
        let spec = TaskSpec {
            name: self.name,
            kind: self.kind,
            labels: self.labels.iter().map(|l| l.to_string()).collect(),
            metrics: self.metrics.to_vec(),
        };
        let train = self.units_of(&folder.join("train.jsonl"))?;
        let val = self.units_of(&folder.join("val.jsonl"))?;
        Ok(LoadedTask { spec, train, evals: vec![("", val)] })
    }

    fn units_of(&self, path: &Path) -> Result<Vec<Unit>, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Input(format!("cannot read it ({e})")).in_file(path.display()))?;
        let mut units = Vec::new();
        let mut group = 0;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = |what: String| Error::Input(format!("line {}: {what}", i + 1)).in_file(path.display());
            let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON ({e})")))?;
            let mut u =
                (self.units)(&v, &mut group).map_err(|e| bad(format!("{e} (SuperGLUE's {} layout)", self.folder)))?;
            if self.name != "multirc" {
                for unit in &mut u {
                    unit.group = units.len();
                }
            }
            units.extend(u);
        }
        if units.is_empty() {
            return Err(Error::Input("no examples".into()).in_file(path.display()));
        }
        Ok(units)
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| format!("no text \"{key}\""))
}

/// A boolean label (`true`/`false`) as a class of [`FALSE_TRUE`].
fn truth(v: &Value) -> Result<usize, String> {
    v.get("label").and_then(Value::as_bool).map(usize::from).ok_or_else(|| "no true/false \"label\"".into())
}

fn one(rows: (String, Option<String>), t5_input: String, class: usize) -> Vec<Unit> {
    vec![Unit { rows: vec![rows], t5_input, gold: Gold::Class(class), group: 0, candidates: vec![] }]
}

fn boolq(v: &Value, _: &mut usize) -> Result<Vec<Unit>, String> {
    let (q, p) = (text(v, "question")?, text(v, "passage")?);
    Ok(one((q.into(), Some(p.into())), format!("boolq question: {q} passage: {p}"), truth(v)?))
}

/// Premise, hypothesis and the label among `labels`.
fn nli(v: &Value, name: &str, labels: &[&str]) -> Result<Vec<Unit>, String> {
    let (p, h) = (text(v, "premise")?, text(v, "hypothesis")?);
    let label = text(v, "label")?;
    let class = labels
        .iter()
        .position(|l| *l == label)
        .ok_or_else(|| format!("the label \"{label}\" is not one of {}", labels.join(", ")))?;
    Ok(one((p.into(), Some(h.into())), format!("{name} hypothesis: {h} premise: {p}"), class))
}

fn cb(v: &Value, _: &mut usize) -> Result<Vec<Unit>, String> {
    nli(v, "cb", TASKS[1].labels)
}

fn rte(v: &Value, _: &mut usize) -> Result<Vec<Unit>, String> {
    nli(v, "rte", TASKS[5].labels)
}

fn copa(v: &Value, _: &mut usize) -> Result<Vec<Unit>, String> {
    let (premise, question) = (text(v, "premise")?, text(v, "question")?);
    let (c1, c2) = (text(v, "choice1")?, text(v, "choice2")?);
    let ask = match question {
        "cause" => "What was the cause of this?",
        "effect" => "What happened as a result?",
        q => return Err(format!("the question \"{q}\" is neither cause nor effect")),
    };
    let label = v.get("label").and_then(Value::as_u64).filter(|&l| l < 2).ok_or("no 0/1 \"label\"")? as usize;
    Ok(vec![Unit {
        rows: vec![(premise.into(), Some(format!("{ask} {c1}"))), (premise.into(), Some(format!("{ask} {c2}")))],
        t5_input: format!("copa choice1: {c1} choice2: {c2} premise: {premise} question: {question}"),
        gold: Gold::Class(label),
        group: 0,
        candidates: vec![],
    }])
}

fn wic(v: &Value, _: &mut usize) -> Result<Vec<Unit>, String> {
    let (word, s1, s2) = (text(v, "word")?, text(v, "sentence1")?, text(v, "sentence2")?);
    Ok(one(
        (format!("{word}: {s1}"), Some(s2.into())),
        format!("wic sentence1: {s1} sentence2: {s2} word: {word}"),
        truth(v)?,
    ))
}

fn wsc(v: &Value, _: &mut usize) -> Result<Vec<Unit>, String> {
    let t = text(v, "text")?;
    let target = v.get("target").ok_or("no \"target\"")?;
    let span = |k: &str| -> Result<(usize, &str), String> {
        let i =
            target.get(format!("span{k}_index")).and_then(Value::as_u64).ok_or(format!("no target.span{k}_index"))?;
        Ok((i as usize, text(target, &format!("span{k}_text"))?))
    };
    let ((i1, noun), (i2, pronoun)) = (span("1")?, span("2")?);
    let mut words: Vec<String> = t.split(' ').map(String::from).collect();
    for (i, span, mark) in [(i1, noun, "*"), (i2, pronoun, "#")] {
        let n = span.split(' ').count();
        if i + n > words.len() {
            return Err(format!("the span \"{span}\" at word {i} runs past the text's {} words", words.len()));
        }
        words[i] = format!("{mark}{}", words[i]);
        words[i + n - 1] = format!("{}{mark}", words[i + n - 1]);
    }
    let marked = words.join(" ");
    Ok(one(
        (marked.clone(), Some(format!("{pronoun} = {noun}"))),
        format!("wsc span1: {noun} span2: {pronoun} text: {marked}"),
        truth(v)?,
    ))
}

fn multirc(v: &Value, group: &mut usize) -> Result<Vec<Unit>, String> {
    let passage = v.get("passage").ok_or("no \"passage\"")?;
    let paragraph = text(passage, "text")?.replace("<br>", " ").replace("<b>", "").replace("</b>", "");
    let mut units = Vec::new();
    for q in passage.get("questions").and_then(Value::as_array).ok_or("no passage.questions")? {
        let question = text(q, "question")?;
        for a in q.get("answers").and_then(Value::as_array).ok_or("no answers")? {
            let answer = text(a, "text")?;
            let label =
                a.get("label").and_then(Value::as_u64).filter(|&l| l < 2).ok_or("an answer without a 0/1 \"label\"")?;
            units.push(Unit {
                rows: vec![(paragraph.clone(), Some(format!("{question} {answer}")))],
                t5_input: format!("multirc question: {question} answer: {answer} paragraph: {paragraph}"),
                gold: Gold::Class(label as usize),
                group: *group,
                candidates: vec![],
            });
        }
        *group += 1;
    }
    Ok(units)
}

fn record(v: &Value, _: &mut usize) -> Result<Vec<Unit>, String> {
    let passage = v.get("passage").ok_or("no \"passage\"")?;
    let raw = text(passage, "text")?;
    let chars: Vec<char> = raw.chars().collect();
    let span = |e: &Value| -> Result<String, String> {
        let (s, t) = (e.get("start").and_then(Value::as_u64), e.get("end").and_then(Value::as_u64));
        match (s, t) {
            (Some(s), Some(t)) if s <= t && (t as usize) < chars.len() => {
                Ok(chars[s as usize..=t as usize].iter().collect())
            }
            _ => Err("an entity whose start/end is outside the passage".into()),
        }
    };
    let mut candidates: Vec<String> = Vec::new();
    for e in passage.get("entities").and_then(Value::as_array).ok_or("no passage.entities")? {
        let c = span(e)?;
        if !candidates.contains(&c) {
            candidates.push(c);
        }
    }
    let passage_text = raw.replace("@highlight\n", "- ");
    let mut units = Vec::new();
    for qa in v.get("qas").and_then(Value::as_array).ok_or("no \"qas\"")? {
        let query = text(qa, "query")?;
        let answers: Vec<String> = qa
            .get("answers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| text(x, "text").ok().map(String::from)).collect())
            .unwrap_or_default();
        if answers.is_empty() {
            return Err("a query without answers".into());
        }
        units.push(Unit {
            rows: candidates.iter().map(|c| (passage_text.clone(), Some(query.replace("@placeholder", c)))).collect(),
            t5_input: format!("record query: {query} entities: {} passage: {passage_text}", candidates.join(", ")),
            gold: Gold::Answers(answers),
            group: 0,
            candidates: candidates.clone(),
        });
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(task: usize, line: &str) -> Vec<Unit> {
        (TASKS[task].units)(&serde_json::from_str(line).unwrap(), &mut 0).unwrap()
    }

    #[test]
    fn every_task_reads_its_official_layout() {
        let loaded = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/benchmarks/superglue"));
        assert_eq!(loaded.len(), 8);
        for (name, task) in &loaded {
            let task = task.task();
            assert!(!task.train.is_empty() && !task.evals[0].1.is_empty(), "{name}");
            assert!(task.train[0].t5_input.starts_with(&format!("{name} ")), "{name}");
        }
        let multirc = loaded.iter().find(|t| t.0 == "multirc").unwrap().1.task();
        // Four answers per question, numbered across the file.
        assert_eq!(
            multirc.evals[0].1.iter().map(|u| u.group).collect::<Vec<_>>(),
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
        );
        let record = loaded.iter().find(|t| t.0 == "record").unwrap().1.task();
        for u in &record.train {
            let Gold::Answers(golds) = &u.gold else { panic!("answers") };
            assert!(u.candidates.contains(&golds[0]) && u.rows.len() == u.candidates.len(), "{u:?}");
        }
    }

    #[test]
    fn real_lines_become_the_baselines_units() {
        // The first lines of the released val.jsonl files.
        let cb = units(
            1,
            r#"{"premise": "Valence the void-brain, Valence the virtuous valet. Why couldn't the figger choose his own portion of titanic anatomy to shaft? Did he think he was helping?", "hypothesis": "Valence was helping", "label": "contradiction", "idx": 0}"#,
        );
        assert_eq!(cb[0].gold, Gold::Class(1));
        assert_eq!(cb[0].rows[0].1.as_deref(), Some("Valence was helping"));
        let copa = units(
            2,
            r#"{"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.", "choice2": "Water flowed from the spout.", "question": "effect", "idx": 0, "label": 1}"#,
        );
        assert_eq!(
            copa[0].rows[1],
            (
                "The man turned on the faucet.".into(),
                Some("What happened as a result? Water flowed from the spout.".into())
            )
        );
        assert_eq!(copa[0].gold, Gold::Class(1));
        assert_eq!(TASKS[2].kind, Kind::Choice(2));
        let boolq = units(
            0,
            r#"{"question": "does ethanol take more energy make that produces", "passage": "Ethanol fuel -- All biomass goes through at least some of these steps.", "idx": 0, "label": false}"#,
        );
        assert_eq!(boolq[0].gold, Gold::Class(0));
        assert_eq!(
            boolq[0].t5_input,
            "boolq question: does ethanol take more energy make that produces passage: Ethanol fuel -- All biomass goes through at least some of these steps."
        );
        let wsc = units(
            7,
            r#"{"text": "Mark told Pete many lies about himself, which Pete included in his book. He should have been more truthful.", "target": {"span2_index": 13, "span1_index": 0, "span1_text": "Mark", "span2_text": "He"}, "idx": 0, "label": true}"#,
        );
        assert_eq!(
            wsc[0].rows[0].0,
            "*Mark* told Pete many lies about himself, which Pete included in his book. #He# should have been more truthful."
        );
        assert_eq!(wsc[0].rows[0].1.as_deref(), Some("He = Mark"));
        let wic = units(
            6,
            r#"{"word": "place", "sentence1": "Do you want to come over to my place later?", "sentence2": "A political system with no place for the less prominent groups.", "idx": 0, "label": false, "start1": 31, "start2": 27, "end1": 36, "end2": 32, "version": 1.1}"#,
        );
        assert_eq!(wic[0].rows[0].0, "place: Do you want to come over to my place later?");
        let record = units(
            4,
            r#"{"source": "Daily mail", "passage": {"text": "A Canadian was arrested.\n@highlight\nThe Canadian man", "entities": [{"start": 2, "end": 9}]}, "qas": [{"query": "@placeholder police said", "answers": [{"start": 2, "end": 9, "text": "Canadian"}], "idx": 0}], "idx": 0}"#,
        );
        assert_eq!(record[0].candidates, ["Canadian"]);
        assert_eq!(
            record[0].rows[0],
            ("A Canadian was arrested.\n- The Canadian man".into(), Some("Canadian police said".into()))
        );
        let bad = (TASKS[2].units)(
            &serde_json::from_str(r#"{"premise": "a", "choice1": "b", "choice2": "c", "question": "why", "label": 0}"#)
                .unwrap(),
            &mut 0,
        );
        assert!(bad.unwrap_err().contains("\"why\" is neither cause nor effect"));
    }
}
