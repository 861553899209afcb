//! `--key value` (and `--key=value`, `--model.n_layer 6`) on the command line, layered over a
//! TOML run file: every field of the run config is overridable without a flag of its own.

use hearth_core::Error;

/// Merges `overrides` (raw trailing arguments) into `table`.
pub fn apply(table: &mut toml::Table, overrides: &[String]) -> Result<(), Error> {
    let mut args = overrides.iter().peekable();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(Error::Config(format!("unexpected argument \"{arg}\"; settings are given as --key value")));
        };
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match args.peek() {
                Some(v) if !v.starts_with("--") => (flag.to_string(), args.next().unwrap().clone()),
                _ => (flag.to_string(), "true".to_string()),
            },
        };
        let key = key.replace('-', "_");
        let value = parse_value(&value);
        let mut path: Vec<&str> = key.split('.').collect();
        let last = path.pop().unwrap();
        let mut t = &mut *table;
        for part in path {
            t = t
                .entry(part)
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| Error::Config(format!("--{key}: `{part}` is not a table")))?;
        }
        t.insert(last.to_string(), value);
    }
    Ok(())
}

/// A TOML literal when it parses as one (numbers, booleans, arrays), else a string.
fn parse_value(s: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {s}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_config_keys() {
        let mut t: toml::Table = toml::from_str("lr = 1.0\n[model]\nn_head = 2").unwrap();
        let args: Vec<String> =
            ["--lr", "3e-4", "--max-steps=50", "--model.n_layer", "6", "--data", "corpus.txt", "--whole-word-masking"]
                .map(String::from)
                .to_vec();
        apply(&mut t, &args).unwrap();
        assert_eq!(t["lr"].as_float(), Some(3e-4));
        assert_eq!(t["max_steps"].as_integer(), Some(50));
        assert_eq!(t["model"]["n_layer"].as_integer(), Some(6));
        assert_eq!(t["model"]["n_head"].as_integer(), Some(2));
        assert_eq!(t["data"].as_str(), Some("corpus.txt"));
        assert_eq!(t["whole_word_masking"].as_bool(), Some(true));
        assert!(apply(&mut t, &["lr".to_string()]).is_err());
    }
}
