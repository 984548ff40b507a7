//! `mlplat explain`: the final value of one config key and where it came from — the file and
//! line that set it (the base config or an environment's overlay), the default the render uses
//! ([`super::defaults`]), or the overlay line that removed it. Reads the files only: no check, no `fromEnv`/`fromFile`.

use serde_json::Value;

use super::defaults::{self, Fallback};
use super::schema;
use super::sources::Layered;
use crate::yaml::{Node, NodeValue};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExplainError {
    #[error(
        "`{0}` is not a key path: write it as in error messages, e.g. tools.airflow.users[0].role"
    )]
    BadPath(String),
    #[error("unknown key `{key}` {place}{help}")]
    Unknown {
        key: String,
        place: String,
        help: String,
    },
}

/// A dotted key path (`tools.airflow.users[0].role`) as JSON pointer tokens.
pub fn parse_path(path: &str) -> Result<Vec<String>, ExplainError> {
    let bad = || ExplainError::BadPath(path.to_owned());
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if name.is_empty() && (out.is_empty() || rest.is_empty()) {
            return Err(bad());
        }
        if !name.is_empty() {
            out.push(name.to_owned());
        }
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']').ok_or_else(bad)?;
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            out.push(index.to_owned());
            rest = match after {
                "" => "",
                a => a.strip_prefix('[').ok_or_else(bad)?,
            };
        }
    }
    Ok(out)
}

/// What `mlplat explain <path>` prints.
pub fn explain(layered: &Layered, path: &str) -> Result<String, ExplainError> {
    let tokens = parse_path(path)?;
    let schema_node = schema_at(&tokens)?;
    let pointer: String = tokens
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect();
    let key = crate::diagnostic::key_path(&pointer);
    let mut out = String::new();
    if let Some(node) = layered.doc.pointer(&pointer) {
        leaves(layered, node, &pointer, &mut out);
        return Ok(out);
    }
    // Not in the merged tree: removed by an overlay, defaulted, or simply not set.
    let mut p = pointer.as_str();
    loop {
        if let Some((file, pos)) = layered.sources.removed(p) {
            out.push_str(&format!(
                "{key} is not set\n  removed by {}:{}:{} (`{}: null`)\n",
                file.path.display(),
                pos.line,
                pos.col,
                p.rsplit('/').next().unwrap_or_default()
            ));
            return Ok(out);
        }
        match p.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => p = parent,
            _ => break,
        }
    }
    let doc = layered.doc.to_json();
    match defaults::fallback(&pointer, &doc) {
        Fallback::Value { value, how } => {
            let how = if how.is_empty() {
                String::new()
            } else {
                format!(": {how}")
            };
            out.push_str(&format!(
                "{key} = {value}\n  default{how} (not set in any file)\n"
            ));
        }
        Fallback::Rule(rule) => {
            out.push_str(&format!("{key} is not set\n  defaults to {rule}\n"));
        }
        Fallback::Derived => out.push_str(&format!(
            "{key} is not set\n  derived from the platform key: a secret, never printed (`mlplat rotate` changes it)\n"
        )),
        Fallback::Nothing(_) if schema_node.is_some_and(|s| takes_defaults(s, &pointer)) => {
            out.push_str(&format!(
                "{key} is not set\n  each of its keys takes its own default (`mlplat explain {key}.<key>`)\n"
            ));
        }
        Fallback::Nothing(why) => {
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            };
            out.push_str(&format!(
                "{key} is not set\n  no file sets it, and the render uses nothing in its place{why}\n"
            ));
        }
    }
    if let Some(why) = defaults::unused(&pointer, &doc) {
        out.push_str(&format!("  note: {why}\n"));
    }
    Ok(out)
}

/// Whether an absent mapping is as good as an empty one: it has keys and requires none (or
/// only a chart's version, which has its own default). A mapping that requires a key (an
/// ingress its host, DAGs their repository) is a feature that is off when absent.
fn takes_defaults(schema: &Value, pointer: &str) -> bool {
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    schema.get("properties").is_some() && (!required || pointer.ends_with("/chart"))
}

/// One line pair per scalar (or empty list or mapping) at or below `node`.
fn leaves(layered: &Layered, node: &Node, pointer: &str, out: &mut String) {
    match &node.value {
        NodeValue::Map(entries) if !entries.is_empty() => {
            for (k, v) in entries {
                let child = format!("{pointer}/{}", k.name.replace('~', "~0").replace('/', "~1"));
                leaves(layered, v, &child, out);
            }
        }
        NodeValue::Seq(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                leaves(layered, v, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {
            let key = crate::diagnostic::key_path(pointer);
            let inline_secret = layered
                .inline_secrets
                .iter()
                .any(|p| pointer == p || pointer.starts_with(&format!("{p}/")));
            if inline_secret {
                let fp = crate::encode::fingerprint(node.to_json().to_string().as_bytes());
                out.push_str(&format!(
                    "{} = a secret written in the file ({fp}), not shown\n  use {{fromEnv: VARIABLE}} or {{fromFile: path}} instead\n",
                    show_key(&key)
                ));
                return;
            }
            let value = node.to_json();
            let sources = &layered.sources;
            let file = sources.file_of(pointer);
            let at = format!("{}:{}:{}", file.path.display(), node.pos.line, node.pos.col);
            let how = match (&sources.derived_platform, pointer) {
                (Some(env), "/platform") => {
                    let base = value
                        .as_str()
                        .and_then(|v| v.strip_suffix(&format!("-{env}")))
                        .unwrap_or_default();
                    format!("`{base}` set in {at}, and `-{env}`: the environment's name")
                }
                _ => format!("set in {at}"),
            };
            out.push_str(&format!("{} = {value}\n  {how}\n", show_key(&key)));
        }
    }
}

fn show_key(key: &str) -> &str {
    if key.is_empty() {
        "(the whole config)"
    } else {
        key
    }
}

/// The schema of the value at `tokens`, `None` below a free-form value (chart resources); an
/// unknown key is an error that suggests the closest known one.
fn schema_at(tokens: &[String]) -> Result<Option<&'static Value>, ExplainError> {
    let root = schema::schema();
    let resolve = |mut s: &'static Value| {
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => s = target,
                None => break,
            }
        }
        s
    };
    let mut s = resolve(root);
    for (i, token) in tokens.iter().enumerate() {
        let props = s.get("properties").and_then(Value::as_object);
        let next = if let Some(p) = props.and_then(|p| p.get(token)) {
            Some(p)
        } else if let Some(items) = s.get("items").filter(|_| is_index(token)) {
            Some(items)
        } else if let Some(extra) = s.get("additionalProperties").filter(|v| v.is_object()) {
            Some(extra)
        } else if props.is_some() || s.get("items").is_some() {
            let parent = crate::diagnostic::key_path(
                &tokens[..i]
                    .iter()
                    .map(|t| format!("/{t}"))
                    .collect::<String>(),
            );
            let place = if parent.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in `{parent}`")
            };
            let known: Vec<&str> = props
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let help = match crate::diagnostic::closest(token, &known) {
                Some(best) => format!(": did you mean `{best}`?"),
                None if known.is_empty() => ": expected a list index, e.g. [0]".to_owned(),
                None => format!(": expected one of: {}", known.join(", ")),
            };
            return Err(ExplainError::Unknown {
                key: token.clone(),
                place,
                help,
            });
        } else {
            None // free-form: anything goes below here
        };
        match next {
            Some(n) => s = resolve(n),
            None => return Ok(None),
        }
    }
    Ok(Some(s))
}

fn is_index(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_parse_like_error_messages_print_them() {
        assert_eq!(
            parse_path("tools.airflow.users[0].role").unwrap(),
            ["tools", "airflow", "users", "0", "role"]
        );
        assert_eq!(parse_path("a[1][2]").unwrap(), ["a", "1", "2"]);
        for bad in ["", ".a", "a..b", "a[x]", "a[0", "a[0]b", "[0]"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unknown_key_gets_a_suggestion() {
        let e = schema_at(&["tools".into(), "mlflow".into(), "replicaz".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown key `replicaz` in `tools.mlflow`: did you mean `replicas`?"
        );
        let e = schema_at(&["tool".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown key `tool` at the top level: did you mean `tools`?"
        );
        let limits = ["tools", "mlflow", "resources", "limits", "cpu"].map(String::from);
        assert!(schema_at(&limits).unwrap().is_some());
        assert!(
            schema_at(&["environments".into(), "dev".into(), "file".into()])
                .unwrap()
                .is_some()
        );
    }
}
