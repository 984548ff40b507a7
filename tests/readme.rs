//! The README tells the truth about what it can be checked against: its config table is made
//! from the schema (every key, its default as the render uses it, its description), and it
//! names every Python checker of `tests/requirements.txt`. After a schema change, regenerate
//! the table with `MLPLAT_BLESS=1 cargo test --test readme` and review the diff.

use std::path::PathBuf;

use mlplat::config::defaults::{self, Fallback};
use serde_json::{Value, json};

const START: &str =
    "<!-- config table: generated from schemas/platform.schema.json by tests/readme.rs -->\n";
const END: &str = "<!-- end of config table -->\n";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$ref`s to these are one row each (their keys are in the description).
const ONE_ROW: &[&str] = &["#/$defs/valueSource", "#/$defs/resources"];

fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        s = root.pointer(&r[1..]).expect("a $ref inside the schema");
    }
    s
}

/// One row per key the user writes: `(dotted key, JSON pointer, schema, required)`.
fn rows(root: &Value) -> Vec<(String, String, Value, bool)> {
    fn walk(
        root: &Value,
        s: &Value,
        dotted: &str,
        pointer: &str,
        out: &mut Vec<(String, String, Value, bool)>,
    ) {
        let s = resolve(root, s);
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (k, v) in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let d = if dotted.is_empty() {
                k.clone()
            } else {
                format!("{dotted}.{k}")
            };
            let p = format!("{pointer}/{k}");
            let r = resolve(root, v);
            let one_row = v
                .get("$ref")
                .and_then(Value::as_str)
                .is_some_and(|x| ONE_ROW.contains(&x));
            let items = r.get("items").map(|i| resolve(root, i));
            let req = required.contains(&k.as_str());
            if let Some(items) = items.filter(|i| i.get("properties").is_some()) {
                out.push((d.clone(), p.clone(), v.clone(), req));
                walk(root, items, &format!("{d}[]"), &format!("{p}/0"), out);
            } else if one_row || r.get("properties").is_none() {
                out.push((d, p, v.clone(), req));
            } else {
                walk(root, v, &d, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, "", "", &mut out);
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "`\"\"`".to_owned(),
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

fn table() -> String {
    let schema: Value = serde_json::from_str(mlplat::config::schema::SCHEMA_TEXT).expect("schema");
    let doc = json!({"platform": "<platform>"});
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for (dotted, pointer, node, required) in rows(&schema) {
        let description = node
            .get("description")
            .or_else(|| resolve(&schema, &node).get("description"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{dotted} has no description in the schema"));
        // A required key of an optional mapping may still have a default (a chart's version).
        let default = match defaults::fallback(&pointer, &doc) {
            Fallback::Value { value, how } if how.is_empty() || how.starts_with('`') => {
                shown(&value)
            }
            Fallback::Value { value, how } => format!("{} ({how})", shown(&value)),
            Fallback::Rule(rule) => rule,
            Fallback::Derived => "derived from the platform key".to_owned(),
            Fallback::Nothing(_) if required => "required".to_owned(),
            Fallback::Nothing(_) => "none".to_owned(),
        };
        out.push_str(&format!(
            "| `{dotted}` | {} | {} |\n",
            cell(&default),
            cell(description)
        ));
    }
    out
}

#[test]
fn the_config_table_is_the_schema() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README");
    let start = readme.find(START).expect("the config table's start marker") + START.len();
    let end = readme[start..].find(END).expect("its end marker") + start;
    let want = table();
    if std::env::var_os("MLPLAT_BLESS").is_some() {
        let text = format!("{}{want}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, text).expect("bless README");
        return;
    }
    assert!(
        readme[start..end] == want,
        "README's config table is not the schema's (MLPLAT_BLESS=1 cargo test --test readme, then review)"
    );
}

#[test]
fn the_table_has_every_key_with_a_default() {
    let t = table();
    for row in [
        "| `tools.mlflow.image` | `ghcr.io/mlplat/mlflow:",
        "| `tools.jupyterhub.chart.repository` |",
        "| `backends.postgres.rds.engine` | `postgres` |",
        "| `tools.airflow.namespace` | `<platform>-airflow` |",
        "| `tools.mlflow.database.password` | derived from the platform key |",
        "| `platform` | required |",
    ] {
        assert!(t.contains(row), "{row}\n{t}");
    }
}

#[test]
fn the_readme_names_every_python_checker() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let quick = &readme[readme.find("## Quick start").expect("quick start")..];
    let quick = &quick[..quick[3..].find("\n## ").map_or(quick.len(), |i| i + 3)];
    let reqs = std::fs::read_to_string(root().join("tests/requirements.txt")).expect("reqs");
    for line in reqs.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(|c: char| "[=<>~! ".contains(c))
            .next()
            .expect("a name");
        assert!(quick.contains(name), "the quick start does not name {name}");
    }
}
