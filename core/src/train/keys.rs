//! The run-file keys as a user reads them (`hearth train --keys`): name, type, default and meaning,
//! generated from [`TrainConfig`] itself (its JSON schema for the types and doc comments, its
//! `Default` for the defaults), so the list cannot drift from the code.

use serde_json::{Map, Value};

use super::TrainConfig;

/// One key of a run file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    pub name: String,
    /// `integer`, `number`, `string`, `bool`, `cosine | linear | constant`, `list of string`, …;
    /// `(optional)` when the key may be left unset.
    pub kind: String,
    /// The default as TOML writes it, `(unset)` for an optional key without one.
    pub default: String,
    /// The key's doc comment, on one line.
    pub doc: String,
}

/// Every key of [`TrainConfig`], in alphabetical order.
pub fn keys() -> Vec<KeyDoc> {
    let schema = schemars::schema_for!(TrainConfig);
    let schema = schema.as_value();
    let empty = Map::new();
    let defs = schema.get("$defs").and_then(Value::as_object).unwrap_or(&empty);
    let defaults = serde_json::to_value(TrainConfig::default()).expect("the config serialises");
    let properties = schema["properties"].as_object().expect("TrainConfig's schema lists its properties");
    properties
        .iter()
        .map(|(name, property)| KeyDoc {
            name: name.clone(),
            kind: kind(property, defs),
            default: toml_value(&defaults[name]),
            doc: one_line(property.get("description").and_then(Value::as_str).unwrap_or_default()),
        })
        .collect()
}

/// The keys as a table for a terminal: a line of name, type and default, then the meaning indented.
pub fn keys_table() -> String {
    let keys = keys();
    let (w_name, w_kind) = keys.iter().fold((3, 4), |(n, k), d| (n.max(d.name.len()), k.max(d.kind.len())));
    let mut out = format!("{:<w_name$}  {:<w_kind$}  default\n", "key", "type");
    for k in &keys {
        out += &format!("{:<w_name$}  {:<w_kind$}  {}\n      {}\n", k.name, k.kind, k.default, k.doc);
    }
    out
}

fn kind(schema: &Value, defs: &Map<String, Value>) -> String {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or(target);
        return defs.get(name).map_or_else(|| name.to_string(), |d| kind(d, defs));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().map(toml_value).map(|v| v.trim_matches('"').to_string()).collect::<Vec<_>>().join(" | ");
    }
    for union in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(union).and_then(Value::as_array) {
            let nullable = options.iter().any(|o| o.get("type") == Some(&Value::from("null")));
            let shown: Vec<String> = options
                .iter()
                .filter(|o| o.get("type") != Some(&Value::from("null")))
                .map(|o| match o.get("const") {
                    Some(c) => toml_value(c).trim_matches('"').to_string(),
                    None => kind(o, defs),
                })
                .collect();
            return shown.join(" | ") + if nullable { " (optional)" } else { "" };
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let nullable = types.contains(&"null");
    let shown = match types.iter().find(|t| **t != "null").copied() {
        Some("boolean") => "bool".to_string(),
        Some("array") => format!("list of {}", schema.get("items").map_or("values".into(), |i| kind(i, defs))),
        Some("object") => "table".to_string(),
        Some("integer") if schema.get("minimum").and_then(Value::as_f64) == Some(0.0) => "integer ≥ 0".to_string(),
        Some(t) => t.to_string(),
        None => "value".to_string(),
    };
    shown + if nullable { " (optional)" } else { "" }
}

/// A default as a run file writes it.
fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        Value::Object(m) if m.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn one_line(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_listed_with_its_type_default_and_meaning() {
        let keys = keys();
        let fields = serde_json::to_value(TrainConfig::default()).unwrap();
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names.len(), fields.as_object().unwrap().len(), "one entry per field: {names:?}");
        for k in &keys {
            assert!(!k.doc.is_empty(), "`{}` has no doc comment in TrainConfig: write one", k.name);
            assert!(!k.kind.is_empty() && k.kind != "value", "`{}`: no type ({})", k.name, k.kind);
        }
        let get = |n: &str| keys.iter().find(|k| k.name == n).unwrap_or_else(|| panic!("{n} is listed"));
        assert_eq!(get("warmup_steps").default, "40");
        assert_eq!(get("warmup_steps").kind, "integer ≥ 0");
        assert_eq!(get("lr").kind, "number");
        assert_eq!(get("precision").kind, "f32 | f16 | bf16");
        assert_eq!(get("precision").default, "\"f32\"");
        assert_eq!(get("decay").kind, "cosine | linear | constant");
        assert_eq!(get("objective").kind, "causal | masked | span | denoise (optional)");
        assert_eq!(get("objective").default, "(unset)");
        assert_eq!(get("zero_shot").kind, "list of string");
        assert_eq!(get("zero_shot").default, "[\"bundled\"]");
        assert_eq!(get("gradient_checkpointing").kind, "bool");
        assert!(get("zero_shot").doc.contains("bundled"));
        let table = keys_table();
        assert!(table.lines().count() == 1 + 2 * keys.len(), "{table}");
    }
}
