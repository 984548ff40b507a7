//! mlplat's config validator against the `jsonschema` crate (draft-07), the reference it
//! replaces at run time: for every example config, golden case, environment, CLI error case, and
//! thousands of mutations of them, both must report the same violations: the same instance
//! paths, schema paths, keywords and messages, in the same order. `check()` turns that list into
//! diagnostics, so equal lists mean equal diagnostics.

#[path = "common/cases.rs"]
mod cases;

use std::collections::BTreeSet;

use mlplat::config::layers::read_layers;
use mlplat::config::schema::{SCHEMA_TEXT, validator::Validator};
use serde_json::{Map, Value, json};

/// One violation, as both validators can describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    instance_path: String,
    schema_path: String,
    keyword: String,
    message: String,
}

struct Pair {
    ours: Validator,
    reference: jsonschema::Validator,
}

impl Pair {
    fn new() -> Self {
        let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("schema is JSON");
        let reference = jsonschema::validator_for(&schema).expect("jsonschema compiles the schema");
        let ours = Validator::new(schema).expect("mlplat's validator takes the schema");
        Pair { ours, reference }
    }

    fn ours(&self, instance: &Value) -> Vec<Found> {
        self.ours
            .violations(instance)
            .into_iter()
            .map(|v| Found {
                instance_path: v.instance_path.clone(),
                schema_path: v.schema_path.clone(),
                keyword: v.kind.keyword().to_owned(),
                message: v.to_string(),
            })
            .collect()
    }

    fn reference(&self, instance: &Value) -> Vec<Found> {
        self.reference
            .iter_errors(instance)
            .map(|e| Found {
                instance_path: e.instance_path().as_str().to_owned(),
                schema_path: e.schema_path().as_str().to_owned(),
                keyword: e.kind().keyword().to_owned(),
                message: e.to_string(),
            })
            .collect()
    }
}

/// Tallies of one run over many instances.
#[derive(Default)]
struct Tally {
    instances: usize,
    invalid: usize,
    keywords: BTreeSet<String>,
    mismatches: Vec<String>,
}

impl Tally {
    fn compare(&mut self, pair: &Pair, label: &str, instance: &Value) {
        let reference = pair.reference(instance);
        let ours = pair.ours(instance);
        self.instances += 1;
        if !reference.is_empty() {
            self.invalid += 1;
        }
        self.keywords
            .extend(reference.iter().map(|f| f.keyword.clone()));
        // Equal lists: the same verdict, the same failing instance paths, keywords, schema
        // paths and messages, in the same order.
        if reference != ours {
            self.mismatches.push(format!(
                "{label}\n  instance: {instance}\n  jsonschema: {reference:#?}\n  mlplat: {ours:#?}"
            ));
        }
    }

    fn assert_agreed(&self) {
        assert!(
            self.mismatches.is_empty(),
            "{} of {} instances judged differently; the first ones:\n{}",
            self.mismatches.len(),
            self.instances,
            self.mismatches
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}

/// Every config the project ships or tests as valid, as JSON the way `validate` builds it:
/// each example and golden case, and each of their environments merged.
fn valid_configs() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (config, _) in cases::golden_cases() {
        let label = config.display().to_string();
        let base = read_layers(&config, None).expect("read config");
        out.push((label.clone(), base.doc.to_json()));
        for env in mlplat::config::environment_names(&config).expect("environments") {
            let merged = read_layers(&config, Some(&env)).expect("read environment");
            out.push((format!("{label} --env {env}"), merged.doc.to_json()));
        }
    }
    out
}

/// The configs of the CLI error cases in `tests/cli.rs`.
fn cli_error_configs() -> Vec<(String, Value)> {
    const KEY: &str = "secrets: {key: {fromFile: example.key}}\n";
    let texts = [
        format!("platform: mlops\n{KEY}tools:\n  airflw: {{}}\n"),
        format!("platform: mlops\n{KEY}tools:\n  mlflow:\n    replicas: two\n"),
        format!(
            "platform: mlops\n{KEY}tools:\n  jupyterhub:\n    chart: {{version: 4.4}}\n    auth: {{adminUsers: [a]}}\n"
        ),
        format!(
            "platform: mlops\n{KEY}tools:\n  airflow:\n    dags:\n      repo: https://example.com/dags.git\n      credentials: {{username: bot, token: {{fromEnv: MLPLAT_TEST_UNSET_TOKEN}}}}\n"
        ),
        format!(
            "platform: mlops\n{KEY}tools:\n  mlflow:\n    auth: {{adminPassword: {{fromEnv: MLPLAT_TEST_EMPTY}}}}\n"
        ),
        format!(
            "platform: mlops\n{KEY}tools:\n  mlflow:\n    auth: {{adminPassword: {{fromFile: nowhere.txt}}}}\n"
        ),
        format!("platform: My_Platform\n{KEY}"),
        format!("platform: mlops\n{KEY}backends:\n  postgres: {{mode: in-clustr}}\n"),
        format!("platform: mlops\n{KEY}tools:\n  jupyterhub:\n    auth: {{type: dummy}}\n"),
        format!(
            "platform: mlops\n{KEY}tools:\n  mlflow:\n    replicas: 0\n    imagee: x\n  jupyterhub:\n    ingress: {{host: 'not a host'}}\n"
        ),
        "platform: mlops\nsecrets: {key: {fromFile: short.key}}\n".to_owned(),
        "platform: 1\n".to_owned(),
    ];
    texts
        .iter()
        .map(|t| {
            let doc = mlplat::yaml::parse_document(t).expect("CLI case parses");
            (t.clone(), doc.to_json())
        })
        .collect()
}

/// Every JSON pointer in `v` with its value, the root first.
fn nodes(v: &Value) -> Vec<(String, &Value)> {
    let mut out = vec![(String::new(), v)];
    let mut i = 0;
    while i < out.len() {
        let (path, node) = (out[i].0.clone(), out[i].1);
        match node {
            Value::Object(m) => out.extend(m.iter().map(|(k, v)| {
                (
                    format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")),
                    v,
                )
            })),
            Value::Array(a) => {
                out.extend(
                    a.iter()
                        .enumerate()
                        .map(|(j, v)| (format!("{path}/{j}"), v)),
                );
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Deterministic variants of one value, each meant to break (or probe the edge of) some
/// keyword: other types, empty and over-long strings, strings off their pattern (spaces,
/// Unicode whitespace, capitals), numbers out of range or with a fraction, values off an enum,
/// dropped and unknown keys, duplicate and missing items.
fn variants(v: &Value) -> Vec<Value> {
    let mut out = vec![
        Value::Null,
        json!(true),
        json!(7),
        json!("text"),
        json!([]),
        json!({}),
    ];
    match v {
        Value::String(s) => {
            for text in [
                String::new(),
                "a".repeat(300),
                "é".repeat(200),
                "é".repeat(254),
                format!("{s} x"),
                format!("{s}\u{a0}x"),
                format!("{s}\u{2003}"),
                format!("\u{feff}{s}"),
                format!("{s}\u{85}x"),
                format!("{s}\u{2028}"),
                s.to_uppercase(),
                format!("-{s}"),
                format!("{s}."),
                "not-in-enum".to_owned(),
            ] {
                out.push(Value::String(text));
            }
            out.extend([json!(42), json!(4.4)]);
        }
        Value::Number(n) => {
            out.extend([
                json!(-1),
                json!(0),
                json!(1.0),
                json!(1.5),
                json!(65536),
                json!(65537),
                json!(1_000_000_000),
                json!(u64::MAX),
                json!(i64::MIN),
                json!("7"),
            ]);
            if let Some(f) = n.as_f64() {
                out.push(json!(f));
                out.push(json!(f + 0.5));
            }
        }
        Value::Bool(_) => out.extend([json!("true"), json!(1)]),
        Value::Array(items) => {
            if let Some(first) = items.first() {
                let mut doubled = items.clone();
                doubled.push(first.clone());
                out.push(Value::Array(doubled));
                out.push(Value::Array(vec![first.clone()]));
                let mut with_number = items.clone();
                with_number.push(json!(1));
                out.push(Value::Array(with_number));
            }
        }
        Value::Object(m) => {
            for key in m.keys() {
                let mut dropped = m.clone();
                dropped.remove(key);
                out.push(Value::Object(dropped));
            }
            for (key, value) in [
                ("zzUnknown", json!(1)),
                ("a/b~c", json!("x")),
                ("fromFile", json!("x")),
                ("fromEnv", json!("X")),
                ("nested", json!({"file": "x.yaml"})),
            ] {
                let mut added = m.clone();
                added.insert(key.to_owned(), value);
                out.push(Value::Object(added));
            }
            let mut crowded = m.clone();
            for k in 0..41 {
                crowded.insert(format!("k{k}"), json!("v"));
            }
            out.push(Value::Object(crowded));
        }
        Value::Null => {}
    }
    out
}

/// `doc` with the value at `pointer` replaced by each variant of it.
fn mutations(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (pointer, node) in nodes(doc) {
        for variant in variants(node) {
            let mut mutated = doc.clone();
            if let Some(slot) = mutated.pointer_mut(&pointer) {
                *slot = variant;
                out.push((pointer.clone(), mutated));
            }
        }
    }
    out
}

#[test]
fn the_schema_is_a_valid_draft_07_schema() {
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("schema is JSON");
    if let Err(e) = jsonschema::draft7::meta::validate(&schema) {
        panic!("{}: {e}", e.instance_path());
    }
}

#[test]
fn both_validators_accept_every_valid_config() {
    let pair = Pair::new();
    let configs = valid_configs();
    assert!(configs.len() >= 10, "{} configs found", configs.len());
    let mut tally = Tally::default();
    for (label, value) in &configs {
        tally.compare(&pair, label, value);
    }
    tally.assert_agreed();
    assert_eq!(tally.invalid, 0, "every shipped config is valid");
    println!("valid configs: {}", tally.instances);
}

#[test]
fn both_validators_reject_the_cli_error_cases_alike() {
    let pair = Pair::new();
    let mut tally = Tally::default();
    for (label, value) in &cli_error_configs() {
        tally.compare(&pair, label, value);
    }
    tally.assert_agreed();
    assert!(
        tally.invalid >= 4,
        "{} CLI cases were invalid",
        tally.invalid
    );
    println!("CLI cases: {}, invalid: {}", tally.instances, tally.invalid);
}

#[test]
fn both_validators_judge_every_mutation_alike() {
    let pair = Pair::new();
    let mut tally = Tally::default();
    for (label, config) in valid_configs() {
        for (pointer, mutated) in mutations(&config) {
            tally.compare(&pair, &format!("{label} at {pointer:?}"), &mutated);
        }
    }
    tally.assert_agreed();
    println!(
        "mutations: {}, invalid: {}, failing keywords: {}",
        tally.instances,
        tally.invalid,
        tally
            .keywords
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Not vacuous: most mutations break the schema, and between them every keyword it uses.
    assert!(
        tally.invalid * 2 > tally.instances,
        "only {} of {} mutations were invalid",
        tally.invalid,
        tally.instances
    );
    let mut used = BTreeSet::new();
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("schema is JSON");
    collect_assertions(&schema, &mut used);
    let missed: Vec<&String> = used.difference(&tally.keywords).collect();
    assert!(missed.is_empty(), "no mutation broke {missed:?}");
}

/// The assertion keywords used anywhere in `schema` (what can fail, as opposed to
/// annotations and `$ref`).
fn collect_assertions(schema: &Value, out: &mut BTreeSet<String>) {
    const ASSERTIONS: &[&str] = &[
        "type",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "required",
        "additionalProperties",
        "propertyNames",
    ];
    let walk = |m: &Map<String, Value>, out: &mut BTreeSet<String>| {
        for (k, v) in m {
            if ASSERTIONS.contains(&k.as_str()) && v != &Value::Bool(true) {
                out.insert(k.clone());
            }
        }
    };
    match schema {
        Value::Object(m) => {
            walk(m, out);
            for v in m.values() {
                collect_assertions(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_assertions(v, out)),
        _ => {}
    }
}
