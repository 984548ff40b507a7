//! Validates a config against `schemas/platform.schema.json` and turns every violation into a
//! [`Diagnostic`] that points at the offending key or value, with a hint where one helps.

pub mod validator;

use std::sync::OnceLock;

use serde_json::Value;

use super::sources::Sources;
use crate::diagnostic::{Diagnostic, key_path};
use crate::yaml::{Node, Pos};
use validator::{JsonType, Validator, ViolationKind};

/// The config schema, embedded at build time; `schemas/` is its single source.
pub const SCHEMA_TEXT: &str = include_str!("../../schemas/platform.schema.json");

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // The schema is part of the binary and tested; failing here is a build defect.
        #[allow(clippy::expect_used)]
        let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("embedded schema is JSON");
        Validator::new(schema).unwrap_or_else(|e| panic!("embedded schema: {e}"))
    })
}

/// The config schema, parsed.
pub fn schema() -> &'static Value {
    validator().schema()
}

/// Returns every schema violation of `value` (the JSON form of `doc`), in file order.
pub fn check(sources: &Sources, doc: &Node, value: &Value) -> Vec<Diagnostic> {
    let validator = validator();
    let mut out: Vec<Diagnostic> = Vec::new();
    for err in validator.violations(value) {
        let pointer = err.instance_path.clone();
        let node = doc.pointer(&pointer);
        let node_pos = node.map(|n| n.pos).unwrap_or_default();
        let schema_node = parent_schema(validator.schema(), &err.schema_path);
        match &err.kind {
            ViolationKind::AdditionalProperties { unexpected } => {
                let known = schema_node
                    .and_then(|s| s.get("properties"))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().map(String::as_str).collect::<Vec<_>>())
                    .unwrap_or_default();
                // The keys' positions, found once (a mapping may have thousands of keys).
                let key_pos: std::collections::HashMap<&str, Pos> = match node.map(|n| &n.value) {
                    Some(crate::yaml::NodeValue::Map(entries)) => entries
                        .iter()
                        .map(|(k, _)| (k.name.as_str(), k.pos))
                        .collect(),
                    _ => Default::default(),
                };
                for key in unexpected {
                    let (at, pos) = match key_pos.get(key.as_str()) {
                        Some(pos) => (child(&pointer, key), *pos),
                        None => (pointer.clone(), node_pos),
                    };
                    let mut d = sources
                        .diag(&at, pos, format!("unknown key {}", crate::yaml::quote(key)))
                        .key(key_path(&pointer));
                    d = match crate::diagnostic::closest(key, &known) {
                        Some(best) => d.help(format!("did you mean `{best}`?")),
                        None => d.help(format!("expected one of: {}", known.join(", "))),
                    };
                    out.push(d);
                }
                continue;
            }
            ViolationKind::Required { property } => {
                out.push(
                    sources
                        .diag(
                            &pointer,
                            node_pos,
                            format!("missing required key {}", crate::yaml::quote(property)),
                        )
                        .key(key_path(&pointer)),
                );
                continue;
            }
            _ => {}
        }
        let found = node.map_or("nothing", Node::type_name);
        let expected_text = schema_node
            .and_then(|s| s.get("x-expected"))
            .and_then(Value::as_str);
        let (message, help) = match &err.kind {
            ViolationKind::Type { expected } => {
                let want = type_words(expected);
                let help = match (want.as_str(), found) {
                    ("a string", "integer" | "number" | "boolean") => {
                        Some("quote the value, e.g. \"1.18.0\" or \"10Gi\"".to_owned())
                    }
                    _ => expected_text.map(|e| format!("expected {e}")),
                };
                (format!("expected {want}, found {}", article(found)), help)
            }
            ViolationKind::Enum { options } => {
                let opts: Vec<String> = options.iter().map(show).collect();
                let got = show(&err.instance);
                let names: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
                let help = got
                    .trim_matches('`')
                    .parse::<String>()
                    .ok()
                    .and_then(|g| crate::diagnostic::closest(&g, &names))
                    .map(|b| format!("did you mean `{b}`?"));
                (format!("{got} is not one of: {}", opts.join(", ")), help)
            }
            ViolationKind::Pattern { pattern } => {
                // Capitals Kubernetes would refuse at apply time: say so, with the fix.
                let lower = err
                    .instance
                    .as_str()
                    .map(str::to_lowercase)
                    .filter(|l| Some(l.as_str()) != err.instance.as_str())
                    .filter(|l| validator.matches_pattern(pattern, l));
                (
                    format!(
                        "{} is not {}",
                        show(&err.instance),
                        expected_text.unwrap_or("in the expected form")
                    ),
                    lower
                        .map(|l| {
                            format!(
                                "Kubernetes takes it in lowercase: {}",
                                crate::yaml::quote(&l)
                            )
                        })
                        .or_else(|| long_label(&err.instance)),
                )
            }
            ViolationKind::MinProperties { .. } | ViolationKind::MaxProperties { .. } => (
                format!(
                    "expected {}",
                    expected_text.unwrap_or("a different number of keys")
                ),
                None,
            ),
            ViolationKind::MinLength { .. } => ("must not be empty".to_owned(), None),
            ViolationKind::MaxLength { limit } => {
                (format!("is longer than {limit} characters"), None)
            }
            ViolationKind::Minimum { limit } => (format!("must be at least {limit}"), None),
            ViolationKind::Maximum { limit } => (format!("must be at most {limit}"), None),
            _ => (err.to_string(), None),
        };
        let mut d = sources
            .diag(&pointer, node_pos, message)
            .key(key_path(&pointer));
        if let Some(h) = help {
            d = d.help(h);
        }
        out.push(d);
    }
    out.sort_by_key(|d| sources.rank(d));
    out.dedup();
    out
}

/// The schema object that holds the failing keyword (`…/properties/x/pattern` → `…/properties/x`).
fn parent_schema<'a>(schema: &'a Value, keyword_path: &str) -> Option<&'a Value> {
    let parent = keyword_path.rsplit_once('/').map_or("", |(p, _)| p);
    schema.pointer(parent)
}

fn type_words(expected: &[JsonType]) -> String {
    let name = |t: &JsonType| match t {
        JsonType::Object => "a mapping".to_owned(),
        JsonType::Array => "a list".to_owned(),
        JsonType::Integer => "an integer".to_owned(),
        other => format!("a {other}"),
    };
    expected.iter().map(name).collect::<Vec<_>>().join(" or ")
}

fn article(found: &str) -> String {
    match found {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "integer" => "an integer".to_owned(),
        "null" => "nothing (null)".to_owned(),
        "nothing" => "nothing".to_owned(),
        other => format!("a {other}"),
    }
}

/// For a host name with a label (the part between dots) longer than DNS allows.
fn long_label(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    s.split('.')
        .any(|label| label.chars().count() > 63)
        .then(|| "each part between dots may have at most 63 characters".to_owned())
}

/// A value of the config quoted in a message: cut short when it is long.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => crate::yaml::quote(s),
        other => crate::yaml::quote(&other.to_string()),
    }
}

/// Position of the value at `pointer`, or the nearest enclosing node that exists.
pub fn locate(doc: &Node, pointer: &str) -> Pos {
    locate_pointer(doc, pointer).1
}

/// The nearest node at or above `pointer` that exists: its pointer and position.
pub fn locate_pointer(doc: &Node, pointer: &str) -> (String, Pos) {
    let mut p = pointer;
    loop {
        if let Some(n) = doc.pointer(p) {
            return (p.to_owned(), n.pos);
        }
        match p.rsplit_once('/') {
            Some((parent, _)) => p = parent,
            None => return (String::new(), doc.pos),
        }
    }
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schema_uses_only_what_the_validator_implements() {
        let _ = validator();
    }
}
