//! Labelled examples for fine-tuning from the files GLUE and HF datasets ship: TSV (SST-2's
//! `sentence<TAB>label`, MNLI's `sentence1`/`sentence2`/`gold_label`), CSV, or JSONL; the text,
//! pair and label columns found by their usual names unless named on the command line.

use std::path::Path;

use hearth_core::Error;

/// One row: the text, the optional second text, the label as written.
pub type Row = (String, Option<String>, String);

/// Column names to use; `None`: the first usual name present.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    pub text: Option<String>,
    pub pair: Option<String>,
    pub label: Option<String>,
}

const TEXT: [&str; 6] = ["sentence", "text", "sentence1", "premise", "question1", "question"];
const PAIR: [&str; 4] = ["sentence2", "hypothesis", "question2", "sentence"];
const LABEL: [&str; 3] = ["label", "gold_label", "labels"];

/// Reads `path` (.tsv, .csv or .jsonl); rows whose label is empty or `-` (MNLI's "no consensus")
/// are skipped.
pub fn read(path: &Path, columns: &Columns) -> Result<Vec<Row>, Error> {
    let err = |what: String| Error::Input(what).in_file(path.display());
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let (header, records): (Vec<String>, Vec<Vec<String>>) = match ext.as_str() {
        "tsv" | "csv" => {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(if ext == "tsv" { b'\t' } else { b',' })
                // GLUE's TSVs hold raw quotes inside sentences: no quoting in TSV.
                .quoting(ext == "csv")
                .flexible(true)
                .from_path(path)
                .map_err(|e| err(format!("cannot read it ({e})")))?;
            let header =
                reader.headers().map_err(|e| err(format!("no header row ({e})")))?.iter().map(String::from).collect();
            let mut rows = Vec::new();
            for (i, r) in reader.records().enumerate() {
                let r = r.map_err(|e| err(format!("line {}: {e}", i + 2)))?;
                rows.push(r.iter().map(String::from).collect());
            }
            (header, rows)
        }
        "jsonl" | "json" => {
            let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it ({e})")))?;
            let objects: Vec<serde_json::Map<String, serde_json::Value>> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l).map_err(|e| err(format!("line {}: not a JSON object ({e})", i + 1)))
                })
                .collect::<Result<_, _>>()?;
            let header: Vec<String> = objects.first().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            let value = |v: Option<&serde_json::Value>| match v {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            let rows = objects.iter().map(|o| header.iter().map(|k| value(o.get(k))).collect()).collect();
            (header, rows)
        }
        _ => return Err(err("unknown format; give a .tsv, .csv or .jsonl file".into())),
    };
    let find =
        |given: &Option<String>, usual: &[&str], what: &str, exclude: Option<usize>| -> Result<Option<usize>, Error> {
            match given {
                Some(name) => header.iter().position(|h| h == name).map(Some).ok_or_else(|| {
                    err(format!("no column named \"{name}\" for the {what}; the header has {}", header.join(", ")))
                }),
                None => {
                    Ok(usual.iter().find_map(|u| header.iter().position(|h| h == u).filter(|&i| Some(i) != exclude)))
                }
            }
        };
    let text = find(&columns.text, &TEXT, "text", None)?
        .ok_or_else(|| err(format!("no text column (looked for {}); name it with --text-column", TEXT.join(", "))))?;
    let pair = match (&columns.pair, header[text].as_str()) {
        (Some(_), _) => find(&columns.pair, &PAIR, "pair", Some(text))?,
        // A second text only where the first is one of a pair's names.
        (None, "sentence1" | "premise" | "question1" | "question") => find(&None, &PAIR, "pair", Some(text))?,
        _ => None,
    };
    let label = find(&columns.label, &LABEL, "label", None)?.ok_or_else(|| {
        err(format!("no label column (looked for {}); name it with --label-column", LABEL.join(", ")))
    })?;
    let mut rows = Vec::new();
    for r in records {
        let get = |i: usize| r.get(i).cloned().unwrap_or_default();
        let l = get(label).trim().to_string();
        if l.is_empty() || l == "-" {
            continue;
        }
        rows.push((get(text), pair.map(get), l));
    }
    if rows.is_empty() {
        return Err(err("no labelled rows".into()));
    }
    Ok(rows)
}

/// The label set of `rows`, in numeric order when every label is an integer, else sorted.
pub fn label_set(rows: &[Row]) -> Vec<String> {
    let mut labels: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    labels.sort();
    labels.dedup();
    if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
        labels.sort_by_key(|l| l.parse::<i64>().unwrap());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_glue_layouts() {
        let dir = std::env::temp_dir().join(format!("hearth-labeled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sst = dir.join("sst.tsv");
        std::fs::write(&sst, "sentence\tlabel\nit 's a \"charming\" film\t1\nawful\t0\n").unwrap();
        let rows = read(&sst, &Columns::default()).unwrap();
        assert_eq!(rows[0], ("it 's a \"charming\" film".into(), None, "1".into()));
        let mnli = dir.join("mnli.tsv");
        std::fs::write(
            &mnli,
            "index\tsentence1\tsentence2\tgold_label\n0\tA man.\tA person.\tentailment\n1\tx\ty\t-\n",
        )
        .unwrap();
        let rows = read(&mnli, &Columns::default()).unwrap();
        assert_eq!(rows, vec![("A man.".into(), Some("A person.".into()), "entailment".into())]);
        let jsonl = dir.join("d.jsonl");
        std::fs::write(&jsonl, "{\"text\": \"good\", \"label\": 2}\n{\"text\": \"bad\", \"label\": 10}\n").unwrap();
        let rows = read(&jsonl, &Columns::default()).unwrap();
        assert_eq!(label_set(&rows), vec!["2".to_string(), "10".to_string()], "numeric order");
        let err = read(&sst, &Columns { label: Some("y".into()), ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("no column named \"y\"") && err.contains("sentence, label"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
