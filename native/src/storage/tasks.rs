//! The task files `hearth eval zero-shot` reads, as they are released: Hearth's own JSONL
//! (`{"context", "choices", "gold"}` or `{"context", "target"}`), MMLU's folder (`dev/`, `test/`:
//! one headerless CSV per subject, `question,A,B,C,D,answer`), HellaSwag's JSONL (`ctx_a`, `ctx_b`,
//! `activity_label`, `endings`, `label`) and LAMBADA's (`{"text"}`); each prompted as
//! lm-evaluation-harness prompts it, with `k` few-shot examples.

use std::path::{Path, PathBuf};

use hearth_core::Error;
use hearth_core::eval::{Draw, Example, Shots, Task};
use serde_json::Value;

/// Zero-shot tasks built from *Persuasion*, which the default run never trains on
/// (`data/make_eval_data.py` rebuilds them).
pub const BUNDLED_TASKS: [(&str, &str); 4] = [
    ("persuasion_next_sentence", include_str!("../../../data/tasks/persuasion_next_sentence.jsonl")),
    ("persuasion_sentence_ending", include_str!("../../../data/tasks/persuasion_sentence_ending.jsonl")),
    ("persuasion_word_order", include_str!("../../../data/tasks/persuasion_word_order.jsonl")),
    ("persuasion_last_word", include_str!("../../../data/tasks/persuasion_last_word.jsonl")),
];

/// MMLU's answer letters, as the harness's `doc_to_choice` gives them.
const LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// A task ready to score, and the benchmark it belongs to (MMLU's subjects are averaged).
#[derive(Debug)]
pub struct Prompted {
    pub task: Task,
    pub group: Option<&'static str>,
}

/// Tasks named by `specs` (`bundled`, a file, a folder of .jsonl files, or MMLU's folder), each
/// with `k` few-shot examples: MMLU's are the first `k` of the subject's dev file (the harness's
/// MMLU task), the others are drawn from the task itself, never the example asked, seeded.
pub fn load(specs: &[String], k: usize, seed: u64) -> Result<Vec<Prompted>, Error> {
    let mut out = Vec::new();
    let own = |task: Task| -> Result<Prompted, Error> {
        Ok(Prompted { task: task.with_fewshot("", Shots::Own, k, Draw::Seeded(seed))?, group: None })
    };
    for spec in specs {
        if spec == "bundled" {
            for (name, text) in BUNDLED_TASKS {
                out.push(own(Task::from_jsonl(name, text)?)?);
            }
            continue;
        }
        let path = Path::new(spec);
        if path.join("test").is_dir() && path.join("dev").is_dir() {
            out.extend(mmlu(path, k)?);
            continue;
        }
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut f: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::Input(format!("cannot list it ({e})")).in_file(path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            f.sort();
            f
        } else {
            vec![path.to_path_buf()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Error::Input(format!(
                    "cannot read it ({e}); give a .jsonl task file, a folder of them, MMLU's folder (dev/, test/), or `bundled`"
                ))
                .in_file(file.display())
            })?;
            let name = file.file_stem().map_or("task".into(), |s| s.to_string_lossy().into_owned());
            out.push(own(jsonl_task(&name, &text).map_err(|e| e.in_file(file.display()))?)?);
        }
    }
    Ok(out)
}

/// A JSONL task in any of the three layouts, told apart by the first line's keys.
fn jsonl_task(name: &str, text: &str) -> Result<Task, Error> {
    let first: Option<Value> = text.lines().find(|l| !l.trim().is_empty()).and_then(|l| serde_json::from_str(l).ok());
    let has = |k: &str| first.as_ref().is_some_and(|v| v.get(k).is_some());
    let lines = || text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let parse = |i: usize, l: &str| -> Result<Value, Error> {
        serde_json::from_str(l).map_err(|e| Error::Input(format!("{name}, line {}: not JSON ({e})", i + 1)))
    };
    let examples: Vec<Example> = if has("ctx_a") && has("endings") {
        lines()
            .map(|(i, l)| {
                hellaswag(&parse(i, l)?)
                    .map_err(|e| Error::Input(format!("{name}, line {}: {e} (HellaSwag's layout)", i + 1)))
            })
            .collect::<Result<_, _>>()?
    } else if has("text") && !has("context") {
        lines()
            .map(|(i, l)| {
                lambada(&parse(i, l)?)
                    .map_err(|e| Error::Input(format!("{name}, line {}: {e} (LAMBADA's layout)", i + 1)))
            })
            .collect::<Result<_, _>>()?
    } else {
        return Task::from_jsonl(name, text);
    };
    if examples.is_empty() {
        return Err(Error::Input(format!("{name}: no examples")));
    }
    Ok(Task { name: name.to_string(), examples })
}

/// The harness's HellaSwag: `preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())`,
/// the endings preprocessed, each after a space.
fn hellaswag(v: &Value) -> Result<Example, String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).ok_or(format!("no text \"{k}\""));
    let context = preprocess(&format!("{}: {} {}", s("activity_label")?, s("ctx_a")?, capitalize(s("ctx_b")?)));
    let endings = v.get("endings").and_then(Value::as_array).ok_or("no \"endings\"")?;
    let choices: Vec<String> = endings
        .iter()
        .map(|e| e.as_str().map(|e| format!(" {}", preprocess(e))).ok_or("an ending is not text"))
        .collect::<Result<_, _>>()?;
    let gold = match v.get("label") {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|&g| g < choices.len())
    .ok_or("no \"label\" among the endings (the test split has none: use hellaswag_val.jsonl)")?;
    Ok(Example::Choice { context, choices, gold })
}

/// Python's `str.capitalize`: the first character upper case, the rest lower.
fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

/// The harness's HellaSwag `preprocess`: strip, " [title]" → ". ", drop `[…]`, "  " → " ".
fn preprocess(text: &str) -> String {
    let t = text.trim().replace(" [title]", ". ");
    let mut out = String::with_capacity(t.len());
    let mut rest = t.as_str();
    while let Some(open) = rest.find('[') {
        match rest[open..].find(']') {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out.replace("  ", " ")
}

/// LAMBADA: the last word of the text is the target, after a space.
fn lambada(v: &Value) -> Result<Example, String> {
    let text = v.get("text").and_then(Value::as_str).ok_or("no text \"text\"")?;
    let (context, word) = text.rsplit_once(' ').ok_or("a text of one word")?;
    Ok(Example::Cloze { context: context.to_string(), target: format!(" {word}") })
}

/// MMLU's folder: one task per subject of `test/`, prompted with the harness's description and the
/// first `k` examples of the subject's `dev/` file.
fn mmlu(dir: &Path, k: usize) -> Result<Vec<Prompted>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("test"))
        .map_err(|e| Error::Input(format!("cannot list it ({e})")).in_file(dir.join("test").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_test.csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(
            Error::Input("no <subject>_test.csv files (MMLU's layout)".into()).in_file(dir.join("test").display())
        );
    }
    let mut tasks = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        let subject = name.trim_end_matches("_test.csv").to_string();
        let dev_file = dir.join("dev").join(format!("{subject}_dev.csv"));
        let dev = if k > 0 { mmlu_csv(&dev_file)? } else { Vec::new() };
        let task = Task { name: format!("mmlu_{subject}"), examples: mmlu_csv(&file)? };
        let description = format!(
            "The following are multiple choice questions (with answers) about {}.\n\n",
            subject.replace('_', " ")
        );
        let prompted = task
            .with_fewshot(&description, Shots::From(&dev), k, Draw::First)
            .map_err(|e| e.in_file(dev_file.display()))?;
        tasks.push(Prompted { task: prompted, group: Some("mmlu") });
    }
    Ok(tasks)
}

/// One MMLU CSV (no header; `question,A,B,C,D,answer`) as the harness's `doc_to_text`:
/// `question.strip()`, the lettered choices, `Answer:`; the choices are ` A` … ` D`.
fn mmlu_csv(path: &Path) -> Result<Vec<Example>, Error> {
    let err = |what: String| Error::Input(what).in_file(path.display());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .map_err(|e| err(format!("cannot read it ({e})")))?;
    let mut examples = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let r = record.map_err(|e| err(format!("line {}: {e}", i + 1)))?;
        if r.len() != 6 {
            return Err(err(format!("line {}: {} fields; MMLU's rows are question,A,B,C,D,answer", i + 1, r.len())));
        }
        let answer = r[5].trim();
        let gold = LETTERS
            .iter()
            .position(|l| *l == answer)
            .ok_or_else(|| err(format!("line {}: the answer \"{answer}\" is not A, B, C or D", i + 1)))?;
        let context = format!("{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:", r[0].trim(), &r[1], &r[2], &r[3], &r[4]);
        examples.push(Example::Choice { context, choices: LETTERS.iter().map(|l| format!(" {l}")).collect(), gold });
    }
    if examples.is_empty() {
        return Err(err("no questions".into()));
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_five_shot_mmlu_prompt_is_the_harness_prompt() {
        let dir = std::env::temp_dir().join(format!("hearth-mmlu-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dev")).unwrap();
        std::fs::create_dir_all(dir.join("test")).unwrap();
        let dev: String =
            (1..=6).map(|i| format!("What is {i} + {i}?,{},{},{},{},B\n", i, 2 * i, 3 * i, 4 * i)).collect();
        std::fs::write(dir.join("dev/high_school_math_dev.csv"), dev).unwrap();
        std::fs::write(dir.join("test/high_school_math_test.csv"), "\"Which, of these, is even?\",1,3,4,7,C\n")
            .unwrap();
        let tasks = load(&[dir.to_string_lossy().into_owned()], 5, 0).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].group, Some("mmlu"));
        assert_eq!(tasks[0].task.name, "mmlu_high_school_math");
        let Example::Choice { context, choices, gold } = &tasks[0].task.examples[0] else { panic!("multiple choice") };
        // The harness's mmlu prompt (description, first_n dev shots, "\n\n" between them).
        let expected = "The following are multiple choice questions (with answers) about high school math.\n\n\
What is 1 + 1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n\
What is 2 + 2?\nA. 2\nB. 4\nC. 6\nD. 8\nAnswer: B\n\n\
What is 3 + 3?\nA. 3\nB. 6\nC. 9\nD. 12\nAnswer: B\n\n\
What is 4 + 4?\nA. 4\nB. 8\nC. 12\nD. 16\nAnswer: B\n\n\
What is 5 + 5?\nA. 5\nB. 10\nC. 15\nD. 20\nAnswer: B\n\n\
Which, of these, is even?\nA. 1\nB. 3\nC. 4\nD. 7\nAnswer:";
        assert_eq!(context, expected);
        assert_eq!(choices, &[" A", " B", " C", " D"]);
        assert_eq!(*gold, 2);
        assert!(load(&[dir.to_string_lossy().into_owned()], 7, 0).unwrap_err().to_string().contains("7 few-shot"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn hellaswag_and_lambada_lines_are_read_as_released() {
        let hs = r#"{"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.", "ctx_b": "then", "ctx": "…", "split": "val", "split_type": "indomain", "label": 3, "endings": [", the man adds wax to the windshield and cuts it.", ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes snow as the we girls sled.", ", the man puts on a christmas coat, knitted with netting.", ", the man continues removing the snow on his car."], "source_id": "activitynet~v_-1IBHYS3L-Y"}"#;
        let t = jsonl_task("hellaswag", hs).unwrap();
        let Example::Choice { context, choices, gold } = &t.examples[0] else { panic!("multiple choice") };
        assert_eq!(
            context,
            "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles. Then"
        );
        assert_eq!(choices[3], " , the man continues removing the snow on his car.");
        assert_eq!(*gold, 3);
        assert_eq!(preprocess(" How to [title] tie a tie [step] Cross  it "), "How to. tie a tie Cross it");
        let t = jsonl_task("lambada", "{\"text\": \"he said to his friend bob\"}\n").unwrap();
        assert_eq!(t.examples[0], Example::Cloze { context: "he said to his friend".into(), target: " bob".into() });
        // Drawn from the task itself, a shot is never the example asked.
        let own = Task {
            name: "t".into(),
            examples: (0..3).map(|i| Example::Cloze { context: format!("c{i}"), target: format!(" t{i}") }).collect(),
        };
        let shot = own.with_fewshot("", Shots::Own, 2, Draw::Seeded(1)).unwrap();
        for (i, e) in shot.examples.iter().enumerate() {
            let Example::Cloze { context, .. } = e else { unreachable!() };
            assert_eq!(context.matches("c").count(), 3, "{context}");
            assert!(
                context.ends_with(&format!("c{i}")) && !context[..context.len() - 2].contains(&format!("c{i}")),
                "{context}"
            );
        }
    }
}
