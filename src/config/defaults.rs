//! Every default of the config, in one place, for the render, `mlplat explain` and the README's
//! config table alike.
//!
//! A default that is a plain value lives in the schema, as the key's `default`
//! (`schemas/platform.schema.json`): the render reads it from there ([`text`], [`number`],
//! [`flag`], [`value`]), editors offer it, and the README's table is checked against it. A
//! default that follows from other keys (a namespace from the platform's name, a chart from the
//! Airflow flavor) has no literal to write down: [`fallback`] computes it here, from the same
//! functions and constants the render uses.

use serde_json::{Value, json};

use super::schema;

/// The shared RDS instance's master user. The other RDS defaults are the schema's; this one
/// has none there, since the per-tool layout's master users are the tools' own.
pub const DEFAULT_SHARED_MASTER: &str = "mlplat";

/// The schema's `default` of the config key at `pointer` (`/tools/mlflow/image`; array items
/// as any index, map entries as any name): the `default` beside a `$ref` first, then the one
/// of what it refers to.
pub fn literal(pointer: &str) -> Option<&'static Value> {
    let root = schema::schema();
    let resolve = |mut s: &'static Value, mut found: Option<&'static Value>| {
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => {
                    s = target;
                    found = found.or_else(|| s.get("default"));
                }
                None => break,
            }
        }
        (s, found)
    };
    let mut s = root;
    let mut found = None;
    for token in pointer.split('/').skip(1) {
        let next = s
            .get("properties")
            .and_then(|p| p.get(token))
            .or_else(|| {
                s.get("items")
                    .filter(|_| token.bytes().all(|b| b.is_ascii_digit()))
            })
            .or_else(|| s.get("additionalProperties").filter(|v| v.is_object()))?;
        (s, found) = resolve(next, next.get("default"));
    }
    found
}

/// The schema's default of `pointer`. The schema is embedded and every key the render reads a
/// default of has one (a test walks them): a missing one is a build defect, not bad input.
pub fn value(pointer: &str) -> &'static Value {
    literal(pointer).unwrap_or_else(|| panic!("the schema gives {pointer} no default"))
}

pub fn text(pointer: &str) -> &'static str {
    value(pointer)
        .as_str()
        .unwrap_or_else(|| panic!("the schema's default of {pointer} is not a string"))
}

pub fn number(pointer: &str) -> u32 {
    value(pointer)
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| panic!("the schema's default of {pointer} is not a small integer"))
}

pub fn port(pointer: &str) -> u16 {
    u16::try_from(number(pointer))
        .unwrap_or_else(|_| panic!("the schema's default of {pointer} is not a port"))
}

pub fn flag(pointer: &str) -> bool {
    value(pointer)
        .as_bool()
        .unwrap_or_else(|| panic!("the schema's default of {pointer} is not a boolean"))
}

/// A tool's namespace when the config names none: `<platform>-<tool>`.
pub fn namespace(platform: &str, tool: &str) -> String {
    format!("{platform}-{tool}")
}

/// A tool's chart when the config names none: `(repository, name, version)`.
pub fn chart(tool: &str, community_airflow: bool) -> (&'static str, &'static str, &'static str) {
    match tool {
        "airflow" if community_airflow => super::charts::COMMUNITY_CHART,
        "airflow" => super::charts::OFFICIAL_CHART,
        _ => super::charts::JUPYTERHUB_CHART,
    }
}

/// What the render uses for a key no file sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// This value; `how` says where it comes from.
    Value { value: Value, how: String },
    /// A value that follows from something the config does not have yet (a user's name).
    Rule(String),
    /// A secret derived from the platform key: never printed.
    Derived,
    /// Nothing: the render leaves it out, and says why.
    Nothing(String),
}

/// The value the render uses for `pointer` when no file sets it, given the merged config `doc`.
pub fn fallback(pointer: &str, doc: &Value) -> Fallback {
    let at = |p: &str| doc.pointer(p);
    let platform = at("/platform")
        .and_then(Value::as_str)
        .unwrap_or("<platform>");
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    let computed = |value: Value, how: &str| Fallback::Value {
        value,
        how: how.to_owned(),
    };
    match parts.as_slice() {
        ["tools", tool, "namespace"] => {
            return computed(json!(namespace(platform, tool)), "`<platform>-<tool>`");
        }
        ["backends", "postgres", "inCluster", "namespace"] => {
            return computed(
                json!(namespace(platform, "postgres")),
                "`<platform>-postgres`",
            );
        }
        ["tools", tool, "database", "name" | "user"] => {
            return computed(json!(tool), "the tool's name");
        }
        ["tools", tool @ ("airflow" | "jupyterhub"), "chart", part] => {
            let community = *tool == "airflow"
                && at("/tools/airflow/flavor").and_then(Value::as_str) == Some("community");
            let (repository, name, version) = chart(tool, community);
            let how = if *tool == "airflow" {
                "the chart of tools.airflow.flavor"
            } else {
                "the chart mlplat is tested with"
            };
            return match *part {
                "repository" => computed(json!(repository), how),
                "name" => computed(json!(name), how),
                "version" => computed(json!(version), how),
                _ => Fallback::Nothing(String::new()),
            };
        }
        ["tools", "airflow", "users", i, "firstName"] => {
            return match at(&format!("/tools/airflow/users/{i}/username")) {
                Some(name) => computed(name.clone(), "the user's username"),
                None => Fallback::Rule("the user's username".to_owned()),
            };
        }
        ["tools", "jupyterhub", "vscode", "enabled"] => {
            let image = at("/tools/jupyterhub/vscode/image").is_some();
            return computed(json!(image), "on when tools.jupyterhub.vscode.image is set");
        }
        ["backends", "postgres", "rds", "identifier"] => {
            return computed(json!(platform), "the platform's name");
        }
        ["backends", "postgres", "rds", "masterUsername"] => {
            return match at("/backends/postgres/rds/layout").and_then(Value::as_str) {
                Some("shared") => computed(
                    json!(DEFAULT_SHARED_MASTER),
                    "the shared instance's master user",
                ),
                _ => Fallback::Rule(
                    "each tool's database user (layout per-tool: the tool's user is its instance's master user)"
                        .to_owned(),
                ),
            };
        }
        ["secrets", "key"] => {
            return Fallback::Rule(format!(
                "${}, else the file {} beside the config",
                super::KEY_ENV,
                super::KEY_FILE
            ));
        }
        ["tools", _, "database", "password"]
        | ["tools", "mlflow", "auth", "adminPassword"]
        | ["tools", "airflow", "users", _, "password"]
        | ["tools", "jupyterhub", "auth", "adminPasswords", _]
        | ["backends", "postgres", "rds", "masterPassword"] => return Fallback::Derived,
        ["tools", "jupyterhub", "singleuser", "image"] => {
            return Fallback::Nothing(
                "the chart's own single-user image applies: z2jh's, of the chart's version"
                    .to_owned(),
            );
        }
        _ => {}
    }
    if let Some(value) = literal(pointer) {
        return computed(value.clone(), "");
    }
    // Below a key whose default is a whole mapping (resources): part of it, or not in it.
    let mut parent = pointer;
    while let Some((up, _)) = parent.rsplit_once('/') {
        if up.is_empty() {
            break;
        }
        if let Some(whole) = literal(up) {
            let rest = &pointer[up.len()..];
            let key = crate::diagnostic::key_path(up);
            return match whole.pointer(rest) {
                Some(v) => computed(
                    v.clone(),
                    &format!("part of {key}'s default, which applies only as a whole"),
                ),
                None => Fallback::Nothing(format!("not in {key}'s default")),
            };
        }
        parent = up;
    }
    Fallback::Nothing(String::new())
}

/// Why a key of `doc` does not matter to the render, if it does not: its tool is not rendered,
/// or the mode that uses it is not the chosen one.
pub fn unused(pointer: &str, doc: &Value) -> Option<String> {
    let at = |p: &str| doc.pointer(p).and_then(Value::as_str);
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    if let ["tools", tool, ..] = parts.as_slice() {
        let name = super::Tool::from_name(tool)?.title();
        let block = doc.pointer(&format!("/tools/{tool}"));
        return match block {
            None | Some(Value::Null) => Some(format!(
                "the config has no tools.{tool} block, so {name} is not rendered (a tool is rendered when its block is present, unless `enabled: false`)"
            )),
            Some(b) if b.get("enabled") == Some(&json!(false)) => Some(format!(
                "tools.{tool}.enabled is false, so {name} is not rendered"
            )),
            Some(_) => None,
        };
    }
    let (key, want, actual) = match parts.as_slice() {
        ["backends", "postgres", mode @ ("rds" | "external"), ..] => (
            "backends.postgres.mode",
            *mode,
            at("/backends/postgres/mode").unwrap_or(text("/backends/postgres/mode")),
        ),
        ["backends", "artifacts", mode @ ("s3" | "pvc"), ..] => (
            "backends.artifacts.mode",
            *mode,
            at("/backends/artifacts/mode").unwrap_or(text("/backends/artifacts/mode")),
        ),
        ["secrets", "externalSecrets", ..] => (
            "secrets.mode",
            "external-secrets",
            at("/secrets/mode").unwrap_or(text("/secrets/mode")),
        ),
        ["argocd", ..] => (
            "delivery",
            "argocd",
            at("/delivery").unwrap_or(text("/delivery")),
        ),
        _ => return None,
    };
    (want != actual).then(|| format!("{key} is {actual}, not {want}: this key is not used"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn literal_defaults_are_found_beside_a_ref_and_behind_one() {
        assert_eq!(literal("/delivery"), Some(&json!("flux")));
        // `"namespace": {"$ref": …, "default": "argocd"}`
        assert_eq!(literal("/argocd/namespace"), Some(&json!("argocd")));
        // `"values": {"$ref": "#/$defs/valuesFiles"}`, whose definition has the default
        assert_eq!(literal("/tools/airflow/values"), Some(&json!([])));
        assert_eq!(
            literal("/tools/airflow/users/3/lastName"),
            Some(&json!("user"))
        );
        assert_eq!(literal("/tools/mlflow/ingress"), None);
        assert_eq!(literal("/no/such/key"), None);
    }

    #[test]
    fn computed_defaults_follow_the_config() {
        let doc = json!({"platform": "mlops", "tools": {"airflow": {"flavor": "community",
            "users": [{"username": "ada"}]}}});
        let v = |p| match fallback(p, &doc) {
            Fallback::Value { value, .. } => value,
            other => panic!("{other:?}"),
        };
        assert_eq!(v("/tools/airflow/namespace"), json!("mlops-airflow"));
        assert_eq!(
            v("/tools/airflow/chart/version"),
            json!(crate::config::charts::COMMUNITY_CHART.2)
        );
        assert_eq!(v("/tools/airflow/users/0/firstName"), json!("ada"));
        assert_eq!(v("/tools/mlflow/resources/limits/memory"), json!("1536Mi"));
        assert_eq!(v("/tools/mlflow/resources/limits/cpu"), json!("2"));
        assert!(matches!(
            fallback("/tools/mlflow/resources/limits/ephemeral-storage", &doc),
            Fallback::Nothing(_)
        ));
        assert_eq!(
            fallback("/tools/mlflow/database/password", &doc),
            Fallback::Derived
        );
        assert!(
            unused("/tools/mlflow/image", &doc)
                .unwrap()
                .contains("no tools.mlflow block")
        );
        assert_eq!(unused("/tools/airflow/executor", &doc), None);
        assert!(
            unused("/argocd/project", &doc)
                .unwrap()
                .contains("delivery is flux")
        );
    }
}
