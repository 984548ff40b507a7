//! The chart values of a release checked against the chart itself, before anything is written:
//! mlplat's values and the user's `values` files, coalesced with the chart's own `values.yaml`
//! as Helm coalesces them, validated against the chart's `values.schema.json` as Helm validates
//! them (see [`crate::config::schema::validator`], [`Dialect::Chart`](crate::config::schema::validator::Dialect::Chart)).
//!
//! A violation is the user's to fix when a user's values file set the offending value: the
//! diagnostic points at that file's line. Anything else is a bug in mlplat's value builders,
//! and says so.

use serde_json::{Map, Value};

use super::archive::ChartFacts;
use crate::charts::ChartRelease;
use crate::config::ValuesFile;
use crate::config::schema::validator::{JsonType, Validator, Violation, ViolationKind};
use crate::diagnostic::{Diagnostic, key_path};
use crate::yaml::{Node, NodeValue, Pos};

/// Why a chart's values could not be checked: its schema uses what mlplat's validator does not
/// implement. The render goes on unchecked, as without a cached archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked(pub String);

/// The values Helm renders a release with: `user` (what the release passes) coalesced with
/// the chart's `defaults`. Maps merge, the user's value winning; a user's `null` removes the
/// key when the defaults have it (and stays a null otherwise); the defaults' own nulls are
/// dropped (in maps, not in lists), as Helm drops them.
pub fn coalesce(user: &Value, defaults: &Value) -> Value {
    match (user, defaults) {
        (Value::Object(u), Value::Object(d)) => {
            let mut out = Map::new();
            for (k, dv) in d {
                match u.get(k) {
                    Some(Value::Null) => {}
                    Some(uv) => {
                        out.insert(k.clone(), coalesce(uv, dv));
                    }
                    None if dv.is_null() => {}
                    None => {
                        out.insert(k.clone(), without_nulls(dv));
                    }
                }
            }
            for (k, uv) in u {
                if !d.contains_key(k) {
                    out.insert(k.clone(), uv.clone());
                }
            }
            Value::Object(out)
        }
        (u, _) => u.clone(),
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What the release passes to Helm: the secret values first, the others over them (as Flux
/// merges `valuesFrom` and `values`, and as `delivery: rendered` hands them to `helm template`).
pub fn release_values(chart: &ChartRelease) -> Value {
    let mut values = chart.secret_values.clone();
    crate::charts::merge(&mut values, &chart.values);
    values
}

/// Checks `chart`'s values against the chart's `facts`. `Ok(Err(_))`: the schema cannot be
/// checked here. `Err(problems)`: the chart would refuse the values; each problem points at
/// the user's values file that set the value, or says it is mlplat's bug (pointing at
/// `config`).
pub fn check(
    config: &std::path::Path,
    tool: &str,
    chart: &ChartRelease,
    facts: ChartFacts,
    user_files: &[ValuesFile],
) -> Result<Result<(), Unchecked>, Vec<Diagnostic>> {
    let ChartFacts { defaults, schema } = facts;
    let Some(schema) = schema else {
        return Ok(Ok(()));
    };
    let validator = match Validator::chart(schema) {
        Ok(v) => v,
        Err(e) => return Ok(Err(Unchecked(e.to_string()))),
    };
    let user = release_values(chart);
    let values = coalesce(&user, &defaults);
    let violations = validator.violations(&values);
    if violations.is_empty() {
        return Ok(Ok(()));
    }
    let blame = Blame {
        config,
        tool,
        label: format!("chart {} {}", chart.chart, chart.version),
        files: user_files,
        defaults: &defaults,
        schema: validator.schema(),
    };
    let mut out = Vec::new();
    for v in leaves(violations) {
        blame.diagnose(&v, &mut out);
    }
    // In the order of the files and their lines; mlplat's own problems last.
    let rank = |d: &Diagnostic| {
        let file = user_files
            .iter()
            .position(|f| f.path == d.file)
            .unwrap_or(user_files.len());
        (
            file,
            d.pos.map_or((0, 0), |p| (p.line, p.col)),
            d.key.clone(),
        )
    };
    out.sort_by_key(rank);
    out.dedup();
    Err(out)
}

/// The violations to report: an `anyOf`/`oneOf` that no branch satisfies is reported by what
/// its closest branch lacks, which names the key at fault.
fn leaves(violations: Vec<Violation>) -> Vec<Violation> {
    let mut out = Vec::new();
    for v in violations {
        match v.kind {
            ViolationKind::NoBranch { ref closest, .. } if !closest.is_empty() => {
                out.extend(leaves(closest.clone()));
            }
            _ => out.push(v),
        }
    }
    out
}

/// Who set what: the user's files (in merge order); anything else is mlplat's.
struct Blame<'a> {
    config: &'a std::path::Path,
    tool: &'a str,
    label: String,
    files: &'a [ValuesFile],
    defaults: &'a Value,
    schema: &'a Value,
}

impl Blame<'_> {
    fn diagnose(&self, v: &Violation, out: &mut Vec<Diagnostic>) {
        match &v.kind {
            ViolationKind::AdditionalProperties { unexpected } => {
                let known = self.known_keys(&v.schema_path);
                for key in unexpected {
                    let pointer = child(&v.instance_path, key);
                    let message = format!("unknown key `{key}` ({} does not take it)", self.label);
                    let help = crate::diagnostic::closest(key, &known)
                        .map(|best| format!("did you mean `{best}`?"));
                    out.push(self.diagnostic(&pointer, true, message, help));
                }
            }
            ViolationKind::Required { property } => {
                let pointer = child(&v.instance_path, property);
                let message = format!("missing required key `{property}` ({})", self.label);
                // A `null` in the user's file that removed it, or an object the user wrote.
                let removed = self.user_node(&pointer).is_some();
                let at = if removed {
                    pointer
                } else {
                    v.instance_path.clone()
                };
                let created = removed || self.created_by_user(&v.instance_path);
                out.push(self.diagnostic_at(&at, created, false, message, None));
            }
            kind => {
                let message = format!("{} ({})", describe(kind, &v.instance), self.label);
                let help = yaml_11_word(kind, &v.instance);
                out.push(self.diagnostic(&v.instance_path, false, message, help));
            }
        }
    }

    /// A diagnostic about the value at `pointer`: in the user's file when one set it.
    fn diagnostic(
        &self,
        pointer: &str,
        at_key: bool,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let user = self.user_node(pointer).is_some();
        self.diagnostic_at(pointer, user, at_key, message, help)
    }

    fn diagnostic_at(
        &self,
        pointer: &str,
        user: bool,
        at_key: bool,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        if user {
            if let Some((file, pos)) = self.user_pos(pointer, at_key) {
                let d = Diagnostic::new(&file.path, message)
                    .at(pos, &file.text)
                    .key(key_path(pointer));
                return match help {
                    Some(h) => d.help(h),
                    None => d,
                };
            }
        }
        Diagnostic::new(self.config, message)
            .key(format!("{} chart values: {}", self.tool, key_path(pointer)))
            .help("mlplat wrote this value itself: this is a bug in mlplat, please report it")
    }

    /// The last user file whose values decide the value at `pointer`, with the deepest node of
    /// it on the way there: a file that has `pointer`, or that set a list or a scalar above it
    /// (which replaced whatever was below).
    fn user_node(&self, pointer: &str) -> Option<(&ValuesFile, &Node, String)> {
        for file in self.files.iter().rev() {
            let (found, at) = deepest(&file.doc, pointer);
            if at == pointer || !matches!(found.value, NodeValue::Map(_)) {
                return Some((file, found, at));
            }
        }
        None
    }

    fn user_pos(&self, pointer: &str, at_key: bool) -> Option<(&ValuesFile, Pos)> {
        let (file, node, at) = self.user_node(pointer)?;
        if at_key && at == pointer {
            if let Some((parent, key)) = pointer.rsplit_once('/') {
                let key = key.replace("~1", "/").replace("~0", "~");
                if let Some(pos) = file.doc.key_pos(parent, &key) {
                    return Some((file, pos));
                }
            }
        }
        Some((file, node.pos))
    }

    /// Whether the object at `pointer` is one a user's file wrote (the chart's defaults have
    /// none there), so a key it lacks is the user's to add.
    fn created_by_user(&self, pointer: &str) -> bool {
        self.user_node(pointer).is_some() && self.defaults.pointer(pointer).is_none()
    }

    /// The properties the schema object that failed `additionalProperties` names.
    fn known_keys(&self, keyword_path: &str) -> Vec<&str> {
        let parent = keyword_path.rsplit_once('/').map_or("", |(p, _)| p);
        self.schema
            .pointer(parent)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// The deepest node of `doc` on the way to `pointer`, and its pointer.
fn deepest<'a>(doc: &'a Node, pointer: &str) -> (&'a Node, String) {
    let mut p = pointer;
    loop {
        if let Some(n) = doc.pointer(p) {
            return (n, p.to_owned());
        }
        match p.rsplit_once('/') {
            Some((parent, _)) => p = parent,
            None => return (doc, String::new()),
        }
    }
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// A hint for `yes`, `off` and their kin where the chart wants a boolean: YAML 1.1 reads them
/// as booleans, mlplat (YAML 1.2) as strings, and passes them to Helm as strings.
fn yaml_11_word(kind: &ViolationKind, instance: &Value) -> Option<String> {
    const WORDS: &[&str] = &["y", "yes", "n", "no", "on", "off"];
    let ViolationKind::Type { expected } = kind else {
        return None;
    };
    let word = instance.as_str()?;
    (expected.contains(&JsonType::Boolean) && WORDS.contains(&word.to_lowercase().as_str())).then(
        || "write true or false: in YAML 1.2, which mlplat reads, this word is a string".to_owned(),
    )
}

/// What is wrong with a value, without showing the value (it may be a secret).
fn describe(kind: &ViolationKind, instance: &Value) -> String {
    let found = match instance {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    };
    let words = |t: &JsonType| match t {
        JsonType::Object => "a mapping".to_owned(),
        JsonType::Array => "a list".to_owned(),
        JsonType::Integer => "an integer".to_owned(),
        JsonType::Null => "null".to_owned(),
        other => format!("a {other}"),
    };
    let show = |v: &Value| format!("`{v}`");
    match kind {
        ViolationKind::Type { expected } => {
            let want: Vec<String> = expected.iter().map(words).collect();
            format!("expected {}, found {found}", want.join(" or "))
        }
        ViolationKind::Enum { options } => {
            let opts: Vec<String> = options.iter().map(show).collect();
            format!("is not one of: {}", opts.join(", "))
        }
        ViolationKind::Const { value } => format!("must be {}", show(value)),
        ViolationKind::Pattern { pattern } => format!("does not match the pattern `{pattern}`"),
        ViolationKind::Format { format, problem } => format!("is not a {format}: {problem}"),
        ViolationKind::MinLength { limit } => format!("is shorter than {limit} characters"),
        ViolationKind::MaxLength { limit } => format!("is longer than {limit} characters"),
        ViolationKind::Minimum { limit } => format!("must be at least {limit}"),
        ViolationKind::Maximum { limit } => format!("must be at most {limit}"),
        ViolationKind::ExclusiveMinimum { limit } => format!("must be more than {limit}"),
        ViolationKind::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        ViolationKind::MinItems { limit } => format!("needs at least {limit} items"),
        ViolationKind::MaxItems { limit } => format!("takes at most {limit} items"),
        ViolationKind::UniqueItems => "has the same item twice".to_owned(),
        ViolationKind::MinProperties { limit } => format!("needs at least {limit} keys"),
        ViolationKind::MaxProperties { limit } => format!("takes at most {limit} keys"),
        ViolationKind::PropertyNames { .. } => "has a key the chart does not allow".to_owned(),
        ViolationKind::NoBranch {
            keyword, branches, ..
        } => format!("matches none of the {branches} forms `{keyword}` allows"),
        ViolationKind::SeveralBranches { .. } => {
            "matches more than one of the forms `oneOf` allows".to_owned()
        }
        ViolationKind::Not => "is a form the chart forbids".to_owned(),
        ViolationKind::Required { property } => format!("missing required key `{property}`"),
        ViolationKind::AdditionalProperties { unexpected } => {
            format!("unknown keys: {}", unexpected.join(", "))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> ChartFacts {
        ChartFacts {
            defaults: json!({"scheduler": {"replicas": 1}, "env": []}),
            schema: Some(json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "additionalProperties": false,
                "properties": {
                    "scheduler": {"type": "object", "additionalProperties": false,
                                  "properties": {"replicas": {"type": "integer"}}},
                    "env": {"type": "array", "items": {"type": "object", "required": ["name", "value"]}}
                }
            })),
        }
    }

    fn release(values: Value) -> ChartRelease {
        ChartRelease {
            repository: "https://charts.example.com".into(),
            chart: "demo".into(),
            version: "1.0.0".into(),
            values,
            secret_values: json!({}),
        }
    }

    fn user_file(text: &str) -> ValuesFile {
        let doc = crate::yaml::parse_document(text).unwrap();
        ValuesFile {
            path: "values/demo.yaml".into(),
            value: doc.to_json(),
            doc,
            text: text.to_owned(),
        }
    }

    #[test]
    fn a_value_from_the_users_file_points_at_its_line() {
        let file = user_file("scheduler:\n  replicas: two\nenv:\n  - name: A\n");
        let mut values = json!({"scheduler": {}});
        crate::charts::merge(&mut values, &file.value);
        let config = std::path::Path::new("platform.yaml");
        let problems = check(config, "demo", &release(values), facts(), &[file]).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:#?}");
        assert!(text[0].starts_with("values/demo.yaml:2:13: scheduler.replicas: expected an integer, found a string (chart demo 1.0.0)"), "{}", text[0]);
        // A list item the user wrote lacks a key: the user's, at the item.
        assert!(
            text[1].starts_with("values/demo.yaml:4:5: env[0]: missing required key `value`"),
            "{}",
            text[1]
        );
        // The message does not repeat the value (the snippet shows the user's own line).
        assert!(
            !text
                .iter()
                .any(|t| t.lines().next().unwrap().contains("two")),
            "{text:?}"
        );
    }

    #[test]
    fn a_value_mlplat_wrote_is_called_mlplats_bug() {
        let config = std::path::Path::new("platform.yaml");
        let problems = check(
            config,
            "demo",
            &release(json!({"schedulr": {}})),
            facts(),
            &[],
        )
        .unwrap_err();
        let text = problems[0].to_string();
        assert!(
            text.starts_with("platform.yaml: demo chart values: schedulr: unknown key `schedulr`"),
            "{text}"
        );
        assert!(text.contains("this is a bug in mlplat"), "{text}");
        assert!(
            text.contains("did you mean `scheduler`?") || !text.contains("help: did"),
            "{text}"
        );
    }

    #[test]
    fn a_schema_mlplat_cannot_read_leaves_the_values_unchecked() {
        let mut f = facts();
        f.schema = Some(json!({"$schema": "http://json-schema.org/draft-07/schema#",
                               "properties": {"a": {"contains": {}}}}));
        let config = std::path::Path::new("platform.yaml");
        assert!(matches!(
            check(config, "demo", &release(json!({})), f, &[]),
            Ok(Err(_))
        ));
    }

    #[test]
    fn coalescing_follows_helm() {
        let defaults = json!({"a": {"b": 1, "c": null, "d": {"e": null, "f": 2}}, "g": null,
                              "h": [null], "k": {"l": 1}});
        let user = json!({"a": {"b": null, "x": null}, "k": "scalar", "new": null});
        assert_eq!(
            coalesce(&user, &defaults),
            json!({"a": {"d": {"f": 2}, "x": null}, "h": [null], "k": "scalar", "new": null})
        );
    }
}
