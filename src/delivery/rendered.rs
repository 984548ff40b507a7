//! `delivery: rendered`: each chart inflated by `helm template` into plain manifests, so that
//! `kubectl apply -k out/` needs no controller in the cluster.
//!
//! The chart archive comes from the cache, checked against the lock first, and Helm runs for
//! every chart at once, or not at all when nothing changed (see [`crate::charts::inflate`]).
//! Helm's output is re-emitted by mlplat's own YAML writer, one file per
//! kind under `out/<tool>/chart/`, objects sorted by namespace and name, so the bytes depend on
//! the chart and the values only. Namespaced objects without a namespace get the tool's.
//!
//! - Secrets go to `chart/secret.yaml`, written 0600; so does any other file that holds one of
//!   the chart's secret values.
//! - Helm hooks: install and upgrade hooks (`pre-install`, `post-upgrade`, …: database
//!   migrations, for one) are kept as plain resources, applied with everything else; hooks that
//!   only run on `helm test`, delete or rollback are dropped, as kubectl has no such events.
//! - CustomResourceDefinitions are taken out of the tool's directory: the render writes them
//!   once for the whole platform under `out/crds/`, listed first (see [`crate::render`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::charts::inflate::ChartFiles;
use crate::charts::{self, ChartError, ChartRelease};
use crate::render::component::Component;
use crate::render::error::RenderError;
use crate::yaml;

/// The hook events that also happen on `kubectl apply`: hooks on them are kept.
const KEPT_HOOKS: &[&str] = &["pre-install", "post-install", "pre-upgrade", "post-upgrade"];

/// Built-in kinds that live outside namespaces.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Adds the inflated chart to `component`: `chart/<kind>.yaml` files, and its CRDs to
/// `component.crds`. What the manifests become is kept beside them in the cache (see
/// [`crate::charts::inflate`]), so an unchanged render does not re-read them.
pub fn deliver(
    component: &mut Component,
    chart: &ChartRelease,
    inflated: &charts::inflate::Inflated,
) -> Result<(), RenderError> {
    let made = match charts::inflate::cached_files(inflated) {
        Some(made) => made,
        None => {
            let made = chart_files(&component.name, &component.namespace, chart, &inflated.text)?;
            charts::inflate::keep_files(inflated, &made);
            made
        }
    };
    for (name, text, secret) in made.files {
        component.chart_file(&name, text, secret);
    }
    component.crds.extend(made.crds);
    Ok(())
}

/// Helm's output (`text`) as mlplat writes it: one file per kind, objects sorted, namespaces
/// filled in, hooks kubectl cannot run dropped, CRDs apart.
pub fn chart_files(
    tool: &str,
    namespace: &str,
    chart: &ChartRelease,
    text: &str,
) -> Result<ChartFiles, RenderError> {
    let tool = tool.to_owned();
    let secrets = secret_strings(&chart.secret_values);
    let bad = |message: String| ChartError::BadManifest {
        tool: tool.clone(),
        chart: charts::label(chart),
        message,
    };
    let docs = yaml::parse_documents(text).map_err(|e| bad(format!("invalid YAML: {e}")))?;
    let objects: Vec<Value> = docs
        .iter()
        .map(|d| d.to_json())
        .filter(|d| !d.is_null())
        .collect();
    // Kinds this chart defines as cluster-scoped, from its own CRDs.
    let cluster_kinds: Vec<String> = objects
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition" && o["spec"]["scope"] == "Cluster")
        .filter_map(|o| o["spec"]["names"]["kind"].as_str().map(str::to_owned))
        .collect();
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut crds = Vec::new();
    for mut obj in objects {
        let (Some(kind), Some(_)) = (
            obj["kind"].as_str().map(str::to_owned),
            obj["metadata"]["name"].as_str(),
        ) else {
            return Err(bad(format!(
                "an object without kind or metadata.name ({})",
                describe(&obj)
            ))
            .into());
        };
        if !keep_hook(&obj) {
            continue;
        }
        if kind == "CustomResourceDefinition" {
            crds.push(obj);
            continue;
        }
        let namespaced = !CLUSTER_SCOPED.contains(&kind.as_str()) && !cluster_kinds.contains(&kind);
        if namespaced && obj["metadata"]["namespace"].is_null() {
            obj["metadata"]["namespace"] = json!(namespace);
        }
        by_kind.entry(kind.to_lowercase()).or_default().push(obj);
    }
    let mut files = Vec::new();
    for (kind, mut objs) in by_kind {
        objs.sort_by_key(sort_key);
        let text = yaml::to_yaml_documents(&objs);
        let secret = kind == "secret" || secrets.iter().any(|s| text.contains(s.as_str()));
        files.push((format!("chart/{kind}.yaml"), text, secret));
    }
    Ok(ChartFiles { files, crds })
}

/// Whether a rendered object stays: anything but a hook that never runs on `kubectl apply`.
fn keep_hook(obj: &Value) -> bool {
    match obj["metadata"]["annotations"]["helm.sh/hook"].as_str() {
        None => true,
        Some(events) => events.split(',').any(|e| KEPT_HOOKS.contains(&e.trim())),
    }
}

fn sort_key(obj: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        s(&obj["metadata"]["namespace"]),
        s(&obj["metadata"]["name"]),
        s(&obj["apiVersion"]),
    )
}

/// What a malformed object is, without its values (which may be secrets).
fn describe(obj: &Value) -> String {
    match obj {
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            format!("a mapping with keys {}", keys.join(", "))
        }
        other => format!("a {}", if other.is_array() { "list" } else { "scalar" }),
    }
}

/// Every string among the chart's secret values long enough to be a secret (short ones, such
/// as a user name or `true`, would match anywhere).
pub fn secret_strings(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.len() >= 8 => out.push(s.clone()),
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The platform's CRDs from every chart, one file each under `crds/`, deduplicated by name:
/// `(file name, text)` sorted by name. Two charts that define one CRD differently are an error.
pub fn crd_files(crds: &[(String, Value)]) -> Result<Vec<(String, String)>, ChartError> {
    let mut by_name: BTreeMap<String, (&str, &Value)> = BTreeMap::new();
    for (tool, crd) in crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        match by_name.get(name) {
            Some((first, other)) if *other != crd => {
                return Err(ChartError::CrdConflict {
                    name: name.to_owned(),
                    first: (*first).to_owned(),
                    second: tool.clone(),
                });
            }
            Some(_) => {}
            None => {
                by_name.insert(name.to_owned(), (tool, crd));
            }
        }
    }
    Ok(by_name
        .into_iter()
        .map(|(name, (_, crd))| (format!("{name}.yaml"), yaml::to_yaml_string(crd)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hooks_kubectl_can_run_are_kept() {
        let hook = |h: &str| json!({"metadata": {"annotations": {"helm.sh/hook": h}}});
        assert!(keep_hook(&json!({"metadata": {}})));
        assert!(keep_hook(&hook("pre-install,pre-upgrade")));
        assert!(keep_hook(&hook("post-delete, post-upgrade")));
        assert!(!keep_hook(&hook("test")));
        assert!(!keep_hook(&hook("test-success")));
        assert!(!keep_hook(&hook("pre-delete,pre-rollback")));
    }

    #[test]
    fn one_crd_from_two_charts_is_written_once_unless_they_differ() {
        let crd = |v: &str| json!({"metadata": {"name": "w.example.com"}, "spec": {"v": v}});
        let same = [("a".to_owned(), crd("1")), ("b".to_owned(), crd("1"))];
        assert_eq!(crd_files(&same).map(|f| f.len()).ok(), Some(1));
        let differ = [("a".to_owned(), crd("1")), ("b".to_owned(), crd("2"))];
        assert!(matches!(
            crd_files(&differ),
            Err(ChartError::CrdConflict { .. })
        ));
    }

    #[test]
    fn secret_strings_skip_short_values() {
        let v =
            json!({"a": {"token": "0123456789abcdef", "user": "admin"}, "l": ["longer-than-8"]});
        assert_eq!(
            secret_strings(&v),
            vec!["0123456789abcdef", "longer-than-8"]
        );
    }
}
