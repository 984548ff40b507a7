//! Independent checkers for the integration tests: they judge what mlplat writes without using
//! mlplat's own idea of what is valid.
//!
//! - built-in Kubernetes kinds: `kubernetes-validate -k 1.30 --strict` (a Python tool, installed
//!   by `scripts/test` from `tests/requirements.txt`);
//! - custom resources (Flux, Argo CD, external-secrets, sealed-secrets): the `openAPIV3Schema` of
//!   the storage version of the CRDs in `tests/data/crds/`, made strict (unknown fields fail, as
//!   the API server prunes or rejects them), validated with the `jsonschema` crate;
//! - chart values: the published chart archives in `../shared/charts/`, rendered by Helm's own
//!   engine ([`published`]);
//! - kustomize: `kubectl kustomize DIR`.
//!
//! Every error names the object (`Kind namespace/name`), the path inside it and what is wrong.
//! Used as `mod support;` from several `tests/*.rs` files, so some helpers are unused in each.
#![allow(dead_code)]

pub mod published;
pub mod tree;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

/// The Kubernetes version the built-in kinds are checked against.
pub const KUBERNETES_VERSION: &str = "1.30";

/// API groups served by a bare Kubernetes API server. Anything else is a custom resource.
/// (kubernetes-validate itself only looks at the first label of a group, so a CRD group such as
/// `apps.example.com` would be judged as `apps`: the partition must be exact.)
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// The crate's root directory (where `Cargo.toml` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/data/` inside the repository.
pub fn data_dir() -> PathBuf {
    repo_root().join("tests").join("data")
}

/// `kubectl kustomize DIR`, parsed into its objects. Panics with kubectl's stderr on failure.
pub fn kustomize_build(dir: &Path) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `kubectl kustomize {}`: {e} (is kubectl on PATH? scripts/test installs it)", dir.display())
        });
    if !output.status.success() {
        panic!(
            "`kubectl kustomize {}` failed ({}):\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8(output.stdout).expect("kubectl kustomize printed UTF-8");
    parse_yaml(
        &text,
        &format!("output of `kubectl kustomize {}`", dir.display()),
    )
}

/// All documents of a YAML file (empty documents dropped). Panics naming the file on error.
pub fn load_yaml_file(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_yaml(&text, &path.display().to_string())
}

/// All documents of a YAML text (empty documents dropped). Panics naming `origin` on error.
pub fn parse_yaml_text(text: &str, origin: &str) -> Vec<Value> {
    parse_yaml(text, origin)
}

fn parse_yaml(text: &str, origin: &str) -> Vec<Value> {
    mlplat::yaml::parse_documents(text)
        .unwrap_or_else(|e| panic!("{origin}: not valid YAML: {e}"))
        .iter()
        .map(|node| node.to_json())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `Kind namespace/name` (or `Kind name` without a namespace), for error messages.
pub fn describe(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or("<no kind>");
    let name = obj["metadata"]["name"].as_str().unwrap_or("<no name>");
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// `(group, version)` of an object's `apiVersion` (`v1` → `("", "v1")`).
fn group_version(obj: &Value) -> Option<(&str, &str)> {
    let api_version = obj["apiVersion"].as_str()?;
    Some(api_version.split_once('/').unwrap_or(("", api_version)))
}

/// Checks every object has the fields any checker needs to name it.
fn check_identity(objs: &[Value]) -> Result<(), String> {
    let mut problems = Vec::new();
    for (index, obj) in objs.iter().enumerate() {
        let mut missing = Vec::new();
        if !obj.is_object() {
            problems.push(format!("object #{index} is not a mapping: {obj}"));
            continue;
        }
        for (field, value) in [
            ("apiVersion", &obj["apiVersion"]),
            ("kind", &obj["kind"]),
            ("metadata.name", &obj["metadata"]["name"]),
        ] {
            if value.as_str().is_none_or(str::is_empty) {
                missing.push(field);
            }
        }
        if !missing.is_empty() {
            problems.push(format!(
                "object #{index} ({}): missing or not a string: {}",
                describe(obj),
                missing.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------------
// Built-in kinds: kubernetes-validate
// ---------------------------------------------------------------------------------------------

/// Validates built-in kinds with one `kubernetes-validate -k 1.30 --strict` run over a temporary
/// multi-document file. Err (with one line per failing object) when the tool reports an error, has
/// no schema for an object (a typo'd kind or an apiVersion not served in 1.30), or is missing.
///
/// The tool prints one line per document, in order (`INFO … passed`, `ERROR …`, `WARN …`), and
/// reports only the first error of each object.
pub fn kubernetes_validate(objs: &[Value]) -> Result<(), String> {
    kubernetes_validate_with("kubernetes-validate", objs)
}

/// [`kubernetes_validate`] with another program name (the tests use it to see a missing tool
/// reported).
pub fn kubernetes_validate_with(program: &str, objs: &[Value]) -> Result<(), String> {
    if objs.is_empty() {
        return Ok(());
    }
    check_identity(objs)?;
    let mut file = tempfile::Builder::new()
        .prefix("mlplat-kubernetes-validate-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| format!("cannot create a temp file: {e}"))?;
    let mut text = String::new();
    for obj in objs {
        // JSON is YAML: one document per object.
        text.push_str("---\n");
        text.push_str(&serde_json::to_string(obj).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write {}: {e}", file.path().display()))?;

    let output = match Command::new(program)
        .args(["-k", KUBERNETES_VERSION, "--strict"])
        .arg(file.path())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(format!(
                "{program} is not on PATH: `pip install kubernetes-validate` \
                 (scripts/test installs tests/requirements.txt)"
            ));
        }
        Err(e) => return Err(format!("cannot run {program}: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let all_passed = lines.len() == objs.len() && lines.iter().all(|l| l.starts_with("INFO "));
    if output.status.success() && all_passed {
        return Ok(());
    }

    let mut report = String::new();
    if lines.len() == objs.len() {
        for (obj, line) in objs.iter().zip(&lines) {
            if !line.starts_with("INFO ") {
                let _ = writeln!(report, "{}: {}", describe(obj), explain_kv_line(line));
            }
        }
    }
    if report.is_empty() {
        // Not the one-line-per-object shape: give everything the tool said.
        let _ = writeln!(
            report,
            "kubernetes-validate ({}) on {} objects ({}):\n{stdout}",
            output.status,
            objs.len(),
            objs.iter().map(describe).collect::<Vec<_>>().join(", ")
        );
    }
    if !stderr.trim().is_empty() {
        let _ = writeln!(report, "kubernetes-validate stderr:\n{stderr}");
    }
    Err(report.trim_end().to_string())
}

/// Turns one line of kubernetes-validate's output into `at PATH: MESSAGE` or a plain reason.
fn explain_kv_line(line: &str) -> String {
    // ERROR FILE did not validate for resource kind/name against version 1.30: PATH: MESSAGE
    let against = format!(" against version {KUBERNETES_VERSION}: ");
    if let Some((_, detail)) = line
        .strip_prefix("ERROR ")
        .and_then(|rest| rest.split_once(&against))
    {
        return match detail.split_once(": ") {
            Some((path, message)) if !path.contains(' ') => {
                let path = if path.is_empty() { "(root)" } else { path };
                format!("at {path}: {message}")
            }
            _ => detail.to_string(),
        };
    }
    // WARN FILE Couldn't find schema for kind K with api version V for kubernetes version 1.30
    let no_schema = " Couldn't find schema ";
    if let Some((_, detail)) = line
        .strip_prefix("WARN ")
        .and_then(|rest| rest.split_once(no_schema))
    {
        return format!(
            "no schema {detail}: not a built-in kind, or its apiVersion is not served in Kubernetes {KUBERNETES_VERSION}"
        );
    }
    line.to_string()
}

// ---------------------------------------------------------------------------------------------
// Custom resources: CRD schemas
// ---------------------------------------------------------------------------------------------

/// One step from a schema node to a child node, mirrored on the instance.
#[derive(Debug, Clone)]
enum Step {
    Property(String),
    Items,
    AdditionalProperties,
}

/// A CEL rule (`x-kubernetes-validations`) found in a CRD schema.
#[derive(Debug)]
struct CelRule {
    at: Vec<Step>,
    rule: String,
    message: String,
}

#[derive(Debug)]
struct Crd {
    file: String,
    kind: String,
    group: String,
    served: Vec<String>,
    storage: String,
    validator: Validator,
    cel_rules: Vec<CelRule>,
}

fn crds() -> &'static HashMap<(String, String), Crd> {
    static CRDS: OnceLock<HashMap<(String, String), Crd>> = OnceLock::new();
    CRDS.get_or_init(|| {
        let dir = data_dir().join("crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let mut map = HashMap::new();
        for path in files {
            for doc in load_yaml_file(&path) {
                if doc["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let crd = compile_crd(&doc, &path);
                map.insert((crd.group.clone(), crd.kind.clone()), crd);
            }
        }
        map
    })
}

fn compile_crd(doc: &Value, path: &Path) -> Crd {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spec = &doc["spec"];
    let text = |v: &Value, what: &str| -> String {
        v.as_str()
            .unwrap_or_else(|| panic!("{file}: CRD has no {what}"))
            .to_string()
    };
    let group = text(&spec["group"], "spec.group");
    let kind = text(&spec["names"]["kind"], "spec.names.kind");
    let versions = spec["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no spec.versions"));
    let served = versions
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| text(&v["name"], "version name"))
        .collect();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == true)
        .unwrap_or_else(|| panic!("{file}: no version has storage: true"));
    let storage = text(&storage_version["name"], "version name");
    let mut schema = storage_version["schema"]["openAPIV3Schema"].clone();
    assert!(
        schema.is_object(),
        "{file}: version {storage} has no openAPIV3Schema"
    );

    let mut cel_rules = Vec::new();
    collect_cel_rules(&schema, &mut Vec::new(), &mut cel_rules);
    make_strict(&mut schema, false);
    let top = schema.as_object_mut().expect("schema is an object");
    let properties = top.entry("properties").or_insert_with(|| json!({}));
    properties["apiVersion"] = json!({"type": "string"});
    properties["kind"] = json!({"type": "string"});
    properties["metadata"] = object_meta_schema();
    top.insert("additionalProperties".into(), json!(false));
    let mut required: BTreeSet<String> = top
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    required.extend(["apiVersion", "kind", "metadata"].map(String::from));
    top.insert("required".into(), json!(required));

    let validator = jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .with_format("byte", |s: &str| {
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        })
        .build(&schema)
        .unwrap_or_else(|e| panic!("{file}: the schema of {kind} {storage} does not compile: {e}"));
    Crd {
        file,
        kind,
        group,
        served,
        storage,
        validator,
        cel_rules,
    }
}

/// Makes a structural CRD schema reject unknown fields: wherever a schema lists `properties` and
/// says nothing about other ones (no `additionalProperties`, no
/// `x-kubernetes-preserve-unknown-fields: true`), add `additionalProperties: false`. Also turns
/// OpenAPI's `nullable: true` into JSON Schema's "or null". Subschemas of `anyOf`/`allOf`/
/// `oneOf`/`not` only constrain values, so they are left open (`in_junctor`).
fn make_strict(schema: &mut Value, in_junctor: bool) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !in_junctor
        && !preserves
        && obj.contains_key("properties")
        && !obj.contains_key("additionalProperties")
    {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        allow_null(obj);
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for child in props.values_mut() {
            make_strict(child, in_junctor);
        }
    }
    if let Some(Value::Object(props)) = obj.get_mut("patternProperties") {
        for child in props.values_mut() {
            make_strict(child, in_junctor);
        }
    }
    match obj.get_mut("items") {
        Some(Value::Array(items)) => items.iter_mut().for_each(|c| make_strict(c, in_junctor)),
        Some(items) => make_strict(items, in_junctor),
        None => {}
    }
    if let Some(additional @ Value::Object(_)) = obj.get_mut("additionalProperties") {
        make_strict(additional, in_junctor);
    }
    for junctor in ["anyOf", "allOf", "oneOf"] {
        if let Some(Value::Array(subs)) = obj.get_mut(junctor) {
            subs.iter_mut().for_each(|c| make_strict(c, true));
        }
    }
    if let Some(not) = obj.get_mut("not") {
        make_strict(not, true);
    }
}

fn allow_null(obj: &mut Map<String, Value>) {
    match obj.get_mut("type") {
        Some(Value::String(t)) => {
            let t = t.clone();
            obj.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    if let Some(Value::Array(subs)) = obj.get_mut("anyOf") {
        subs.push(json!({"type": "null"}));
    }
}

/// The API server's own checks of `metadata` (a CRD schema only says `type: object`).
fn object_meta_schema() -> Value {
    let dns_subdomain = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    let dns_label = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    let qualified_name = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
    let label_value = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": dns_subdomain},
            "generateName": {"type": "string"},
            "namespace": {"type": "string", "maxLength": 63, "pattern": dns_label},
            "labels": {
                "type": "object",
                "propertyNames": {"pattern": qualified_name},
                "additionalProperties": {"type": "string", "maxLength": 63, "pattern": label_value}
            },
            "annotations": {
                "type": "object",
                "propertyNames": {"pattern": qualified_name},
                "additionalProperties": {"type": "string"}
            },
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "ownerReferences": {"type": "array", "items": {"type": "object"}},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "generation": {"type": "integer"},
            "creationTimestamp": {"type": ["string", "null"]},
            "deletionTimestamp": {"type": ["string", "null"]},
            "deletionGracePeriodSeconds": {"type": "integer"},
            "selfLink": {"type": "string"},
            "managedFields": {"type": "array"}
        }
    })
}

fn collect_cel_rules(schema: &Value, at: &mut Vec<Step>, out: &mut Vec<CelRule>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(Value::Array(rules)) = obj.get("x-kubernetes-validations") {
        for rule in rules {
            out.push(CelRule {
                at: at.clone(),
                rule: rule["rule"].as_str().unwrap_or_default().to_string(),
                message: rule["message"]
                    .as_str()
                    .unwrap_or("failed a CEL rule")
                    .to_string(),
            });
        }
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (name, child) in props {
            at.push(Step::Property(name.clone()));
            collect_cel_rules(child, at, out);
            at.pop();
        }
    }
    if let Some(items @ Value::Object(_)) = obj.get("items") {
        at.push(Step::Items);
        collect_cel_rules(items, at, out);
        at.pop();
    }
    if let Some(additional @ Value::Object(_)) = obj.get("additionalProperties") {
        at.push(Step::AdditionalProperties);
        collect_cel_rules(additional, at, out);
        at.pop();
    }
}

/// `has(self.field)`: present and not null (the API server prunes nulls).
fn has(obj: &Value, field: &str) -> bool {
    obj.get(field).is_some_and(|v| !v.is_null())
}

/// The CEL rules of these CRDs that are checked, transcribed by hand (no CEL engine here).
/// Rules not listed (mostly external-secrets provider details) go unchecked.
fn eval_known_cel(rule: &str, this: &Value) -> Option<bool> {
    let name = this.get("name").and_then(Value::as_str);
    Some(match rule {
        // HelmRelease .spec
        "(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))" => {
            has(this, "chart") != has(this, "chartRef")
        }
        // HelmRelease .spec.install.strategy / .spec.upgrade.strategy
        "!has(self.retryInterval) || self.name != 'RemediateOnFailure'" => {
            !has(this, "retryInterval") || name != Some("RemediateOnFailure")
        }
        "!has(self.retryInterval) || self.name == 'RetryOnFailure'" => {
            !has(this, "retryInterval") || name == Some("RetryOnFailure")
        }
        // HelmRelease .spec.kubeConfig
        "has(self.configMapRef) || has(self.secretRef)" => {
            has(this, "configMapRef") || has(this, "secretRef")
        }
        "!has(self.configMapRef) || !has(self.secretRef)" => {
            !has(this, "configMapRef") || !has(this, "secretRef")
        }
        // GitRepository .spec
        "!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))" =>
        {
            let provider = this.get("provider").and_then(Value::as_str);
            !has(this, "serviceAccountName") || matches!(provider, Some("azure" | "aws"))
        }
        // SecretStore .spec.provider.crd
        "has(self.auth) || has(self.authRef)" => has(this, "auth") || has(this, "authRef"),
        // SecretStore .spec.provider.secretserver.{token,username,password}
        "has(self.value) != has(self.secretRef)" => has(this, "value") != has(this, "secretRef"),
        _ => return None,
    })
}

/// The instance nodes a schema path reaches, with their JSON pointers.
fn reach<'v>(root: &'v Value, steps: &[Step]) -> Vec<(String, &'v Value)> {
    let mut nodes = vec![(String::new(), root)];
    for step in steps {
        let mut next = Vec::new();
        for (pointer, node) in nodes {
            match step {
                Step::Property(name) => {
                    if let Some(child) = node.get(name).filter(|c| !c.is_null()) {
                        next.push((format!("{pointer}/{}", escape_pointer(name)), child));
                    }
                }
                Step::Items => {
                    for (i, child) in node.as_array().into_iter().flatten().enumerate() {
                        next.push((format!("{pointer}/{i}"), child));
                    }
                }
                Step::AdditionalProperties => {
                    for (key, child) in node.as_object().into_iter().flatten() {
                        next.push((format!("{pointer}/{}", escape_pointer(key)), child));
                    }
                }
            }
        }
        nodes = next;
    }
    nodes
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn is_builtin(obj: &Value) -> bool {
    group_version(obj).is_some_and(|(group, _)| BUILTIN_GROUPS.contains(&group))
}

fn is_custom_resource(obj: &Value) -> bool {
    group_version(obj).is_some_and(|(group, _)| crds().keys().any(|(g, _)| g == group))
}

/// Validates Flux / Argo CD / external-secrets / sealed-secrets objects against the storage
/// version's schema of their CRD in `tests/data/crds/`, made strict. Err lists every problem of
/// every object: no CRD for the group and kind, an apiVersion the CRD does not serve, schema
/// errors (all of them, with JSON pointers), and the CEL rules this module knows.
pub fn validate_custom_resources(objs: &[Value]) -> Result<(), String> {
    check_identity(objs)?;
    let crds = crds();
    let mut problems = Vec::new();
    for obj in objs {
        let who = describe(obj);
        let (group, version) = group_version(obj).expect("checked by check_identity");
        let kind = obj["kind"].as_str().expect("checked by check_identity");
        let Some(crd) = crds.get(&(group.to_string(), kind.to_string())) else {
            let kinds: Vec<&str> = crds
                .values()
                .filter(|c| c.group == group)
                .map(|c| c.kind.as_str())
                .collect();
            problems.push(if kinds.is_empty() {
                format!("{who}: no CRD in tests/data/crds for API group `{group}`")
            } else {
                format!(
                    "{who}: no CRD for kind `{kind}` in group `{group}` (known: {})",
                    kinds.join(", ")
                )
            });
            continue;
        };
        if !crd.served.iter().any(|v| v == version) {
            problems.push(format!(
                "{who}: apiVersion `{group}/{version}` is not served by {} (served: {})",
                crd.file,
                crd.served.join(", ")
            ));
            continue;
        }
        for error in crd.validator.iter_errors(obj) {
            let path = error.instance_path().to_string();
            let path = if path.is_empty() {
                "(root)".to_string()
            } else {
                path
            };
            problems.push(format!(
                "{who}: at {path}: {error} ({} {}, {})",
                crd.kind, crd.storage, crd.file
            ));
        }
        for rule in &crd.cel_rules {
            for (pointer, node) in reach(obj, &rule.at) {
                if eval_known_cel(&rule.rule, node) == Some(false) {
                    let pointer = if pointer.is_empty() {
                        "(root)".to_string()
                    } else {
                        pointer
                    };
                    problems.push(format!(
                        "{who}: at {pointer}: {} (rule `{}`)",
                        rule.message, rule.rule
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Judges every object: built-in kinds with kubernetes-validate, custom resources with their
/// CRD; an object of any other API group is an error naming it.
pub fn validate_all(objs: &[Value]) -> Result<(), String> {
    check_identity(objs)?;
    let mut builtin = Vec::new();
    let mut custom = Vec::new();
    let mut problems = Vec::new();
    for obj in objs {
        if is_builtin(obj) {
            builtin.push(obj.clone());
        } else if is_custom_resource(obj) {
            custom.push(obj.clone());
        } else {
            problems.push(format!(
                "{}: apiVersion `{}` is neither a built-in Kubernetes group nor one of the CRDs in tests/data/crds",
                describe(obj),
                obj["apiVersion"].as_str().unwrap_or_default()
            ));
        }
    }
    if let Err(e) = kubernetes_validate(&builtin) {
        problems.push(e);
    }
    if let Err(e) = validate_custom_resources(&custom) {
        problems.push(e);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
