//! Every key of the schema, walked: `mlplat explain` of an empty config prints, for each, the
//! value the render really uses. A printed default is proved by rendering an example twice,
//! once without the key and once with the key set to that value: the outputs (and, on AWS, the
//! resources `plan` would create) must be the same bytes. A key explain calls "not set" must be
//! one of the reviewed keys below, where the render uses nothing in its place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mlplat::config::{self, explain, layers};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Keys no file needs and the render fills with nothing: a cluster default applies (a storage
/// class), the chart's own default does (the single-user image), or the feature is off (an
/// ingress, DAGs, users, a mode not chosen).
const NOTHING: &[&str] = &[
    "/backends/artifacts/pvc/storageClass",
    "/backends/artifacts/s3",
    "/backends/artifacts/s3/bucket",
    "/backends/artifacts/s3/kmsKeyId",
    "/backends/artifacts/s3/roleArn",
    "/backends/artifacts/s3/tags",
    "/backends/artifacts/s3/tags/team",
    "/backends/postgres/external",
    "/backends/postgres/external/host",
    "/backends/postgres/external/sslmode",
    "/backends/postgres/inCluster/resources/limits/ephemeral-storage",
    "/backends/postgres/inCluster/resources/requests/ephemeral-storage",
    "/backends/postgres/inCluster/storageClass",
    "/backends/postgres/rds",
    "/backends/postgres/rds/masterPassword/fromEnv",
    "/backends/postgres/rds/masterPassword/fromFile",
    "/backends/postgres/rds/privateSubnets",
    "/backends/postgres/rds/privateSubnetsCidrBlocks",
    "/backends/postgres/rds/securityGroupIds",
    "/backends/postgres/rds/tags",
    "/backends/postgres/rds/tags/team",
    "/backends/postgres/rds/vpcId",
    "/environments",
    "/environments/dev",
    "/environments/dev/file",
    "/secrets/externalSecrets",
    "/secrets/externalSecrets/region",
    "/secrets/externalSecrets/roleArn",
    "/secrets/key/fromEnv",
    "/secrets/key/fromFile",
    "/tools/airflow/dags",
    "/tools/airflow/dags/credentials",
    "/tools/airflow/dags/credentials/token/fromEnv",
    "/tools/airflow/dags/credentials/token/fromFile",
    "/tools/airflow/dags/credentials/username",
    "/tools/airflow/dags/repo",
    "/tools/airflow/dags/sshKey/fromEnv",
    "/tools/airflow/dags/sshKey/fromFile",
    "/tools/airflow/database/password/fromEnv",
    "/tools/airflow/database/password/fromFile",
    "/tools/airflow/ingress",
    "/tools/airflow/ingress/className",
    "/tools/airflow/ingress/host",
    "/tools/airflow/ingress/tlsSecret",
    "/tools/airflow/users",
    "/tools/airflow/users/0",
    "/tools/airflow/users/0/email",
    "/tools/airflow/users/0/password/fromEnv",
    "/tools/airflow/users/0/password/fromFile",
    "/tools/airflow/users/0/role",
    "/tools/airflow/users/0/username",
    "/tools/jupyterhub/auth/adminPasswords",
    "/tools/jupyterhub/auth/adminPasswords/admin/fromEnv",
    "/tools/jupyterhub/auth/adminPasswords/admin/fromFile",
    "/tools/jupyterhub/auth/github",
    "/tools/jupyterhub/auth/github/callbackUrl",
    "/tools/jupyterhub/auth/github/clientId",
    "/tools/jupyterhub/auth/github/clientSecret/fromEnv",
    "/tools/jupyterhub/auth/github/clientSecret/fromFile",
    "/tools/jupyterhub/database/password/fromEnv",
    "/tools/jupyterhub/database/password/fromFile",
    "/tools/jupyterhub/ingress",
    "/tools/jupyterhub/ingress/className",
    "/tools/jupyterhub/ingress/host",
    "/tools/jupyterhub/ingress/tlsSecret",
    "/tools/jupyterhub/singleuser/image",
    "/tools/jupyterhub/singleuser/storageClass",
    "/tools/jupyterhub/vscode/image",
    "/tools/mlflow/auth/adminPassword/fromEnv",
    "/tools/mlflow/auth/adminPassword/fromFile",
    "/tools/mlflow/database/password/fromEnv",
    "/tools/mlflow/database/password/fromFile",
    "/tools/mlflow/ingress",
    "/tools/mlflow/ingress/className",
    "/tools/mlflow/ingress/host",
    "/tools/mlflow/ingress/tlsSecret",
    "/tools/mlflow/resources/limits/ephemeral-storage",
    "/tools/mlflow/resources/requests/ephemeral-storage",
];

/// Keys whose default follows from something an empty config does not have.
const RULES: &[&str] = &[
    "/secrets/key",
    "/backends/postgres/rds/masterUsername",
    "/tools/airflow/users/0/firstName",
];

/// Secrets derived from the platform key when no file gives them.
const DERIVED: &[&str] = &[
    "/backends/postgres/rds/masterPassword",
    "/tools/airflow/database/password",
    "/tools/airflow/users/0/password",
    "/tools/mlflow/database/password",
    "/tools/mlflow/auth/adminPassword",
    "/tools/jupyterhub/database/password",
    "/tools/jupyterhub/auth/adminPasswords/admin",
];

/// A key of the schema: its JSON pointer (array items as `0`, map entries as a sample name),
/// and whether it holds other keys.
fn schema_keys(schema: &Value) -> Vec<(String, bool)> {
    fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            s = root.pointer(&r[1..]).expect("a $ref inside the schema");
        }
        s
    }
    fn walk(root: &Value, s: &Value, at: &str, out: &mut Vec<(String, bool)>) {
        let s = resolve(root, s);
        let sample = if at.ends_with("/environments") {
            "dev"
        } else if at.ends_with("/adminPasswords") {
            "admin"
        } else {
            "team"
        };
        let mut children: Vec<(String, &Value)> = Vec::new();
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            children.extend(props.iter().map(|(k, v)| (format!("{at}/{k}"), v)));
        }
        if let Some(items) = s.get("items").filter(|i| {
            let i = resolve(root, i);
            i.get("properties").is_some()
        }) {
            children.push((format!("{at}/0"), items));
        }
        if let Some(extra) = s.get("additionalProperties").filter(|v| v.is_object()) {
            children.push((format!("{at}/{sample}"), extra));
        }
        for (pointer, child) in children {
            let c = resolve(root, child);
            let holder = c.get("properties").is_some()
                || c.get("items")
                    .is_some_and(|i| resolve(root, i).get("properties").is_some());
            out.push((pointer.clone(), holder));
            walk(root, child, &pointer, out);
        }
    }
    let mut out = Vec::new();
    walk(schema, schema, "", &mut out);
    out
}

/// `/tools/airflow/users/0/role` as explain takes it: `tools.airflow.users[0].role`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for t in pointer.split('/').skip(1) {
        if t.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{t}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(t);
        }
    }
    out
}

/// The example whose config exercises `pointer`: its file in `examples/`.
fn context(pointer: &str) -> &'static str {
    let by_prefix = [
        ("/backends/postgres/rds", "aws.yaml"),
        ("/backends/artifacts/s3", "aws.yaml"),
        ("/backends/postgres/external", "airflow2-external-db.yaml"),
        ("/tools/jupyterhub/auth/github", "airflow2-external-db.yaml"),
        ("/argocd", "argocd.yaml"),
        ("/secrets/externalSecrets", "external-secrets.yaml"),
    ];
    by_prefix
        .iter()
        .find(|(p, _)| pointer.starts_with(p))
        .map_or("local.yaml", |(_, file)| file)
}

fn set(doc: &mut Value, pointer: &str, value: Option<&Value>) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let parent_pointer = parent;
    if doc.pointer(parent).is_none() {
        if value.is_none() {
            return;
        }
        set(doc, parent, Some(&json!({})));
    }
    let parent = doc.pointer_mut(parent).expect("parent");
    match (parent, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(key.to_owned(), v.clone());
        }
        (Value::Object(map), None) => {
            map.remove(key);
            // `chart: {}` is not an absent chart: take the emptied mapping away too.
            if map.is_empty() && !parent_pointer.is_empty() {
                set(doc, parent_pointer, None);
            }
        }
        (Value::Array(items), Some(v)) => {
            let i: usize = key.parse().expect("index");
            items[i] = v.clone();
        }
        (other, _) => panic!("cannot set {pointer} under {other}"),
    }
}

/// The rendered bytes of a config (the index file aside: it digests the config's text), and
/// on AWS the resources `plan` would want; or why it does not load.
fn outcome(file: &Path, doc: &Value) -> Result<String, String> {
    let text = serde_json::to_string_pretty(doc).expect("json");
    let mut loaded = config::load_str(file, &text).map_err(|e| format!("{e:?}"))?;
    loaded.lock = mlplat::lock::Lock::load(file).map_err(|e| e.to_string())?;
    let tree = mlplat::render::render(&loaded).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for (path, f) in &tree.files {
        if path == ".mlplat" {
            continue;
        }
        out.push_str(&format!(
            "== {path} {}\n{}\n",
            f.secret,
            String::from_utf8_lossy(&f.bytes)
        ));
    }
    if file.ends_with("aws.yaml") {
        out.push_str(&format!(
            "{:?}",
            mlplat::backends::aws::Desired::from_config(&loaded)
        ));
    }
    Ok(out)
}

#[test]
fn explain_of_an_empty_config_prints_the_default_the_render_uses() {
    let schema: Value = serde_json::from_str(config::schema::SCHEMA_TEXT).expect("schema");
    let keys = schema_keys(&schema);
    assert!(keys.len() > 150, "{}", keys.len());

    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("platform.yaml");
    std::fs::write(&empty, "platform: mlops\n").expect("write");
    let layered = layers::read_layers(&empty, None).expect("read");

    // What explain says of each key.
    let mut defaults: BTreeMap<String, Value> = BTreeMap::new();
    let mut problems = Vec::new();
    let (mut nothing, mut rules, mut derived) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (pointer, holder) in &keys {
        let key = dotted(pointer);
        let text = explain::explain(&layered, &key).expect("explain");
        let first = text.lines().next().unwrap_or_default();
        let second = text.lines().nth(1).unwrap_or_default();
        if second.starts_with("  set in") {
            continue; // `platform`, the one key the empty config has
        }
        if let Some(value) = first.strip_prefix(&format!("{key} = ")) {
            assert!(second.starts_with("  default"), "{text}");
            let value: Value = serde_json::from_str(value).expect("a JSON value");
            if !second.contains("applies only as a whole") {
                defaults.insert(pointer.clone(), value);
            }
        } else if first == format!("{key} is not set") {
            if second.starts_with("  defaults to ") {
                rules.insert(pointer.as_str());
            } else if second.starts_with("  derived from the platform key") {
                derived.insert(pointer.as_str());
            } else if second.starts_with("  no file sets it, and the render uses nothing") {
                nothing.insert(pointer.as_str());
            } else if second.starts_with("  each of its keys takes its own default") {
                assert!(holder, "{text}");
            } else {
                problems.push(format!("{key}: unexpected explanation:\n{text}"));
            }
        } else {
            problems.push(format!("{key}: unexpected explanation:\n{text}"));
        }
        // A key below a tool says so when the tool is not rendered.
        if pointer.starts_with("/tools/") && !text.contains("is not rendered") {
            problems.push(format!(
                "{key}: no note that the tool is not rendered:\n{text}"
            ));
        }
    }
    let reviewed = |list: &[&'static str]| list.iter().copied().collect::<BTreeSet<&str>>();
    assert_eq!(nothing, reviewed(NOTHING), "keys explained as `not set`");
    assert_eq!(rules, reviewed(RULES), "keys explained by a rule");
    assert_eq!(
        derived,
        reviewed(DERIVED),
        "keys explained as derived secrets"
    );

    // Each printed default is what the render uses: rendering the key's example without it and
    // with it set to that value gives the same output.
    let examples = root().join("examples");
    let mut contexts: BTreeMap<&str, Value> = BTreeMap::new();
    for (pointer, value) in &defaults {
        let name = context(pointer);
        let base = contexts.entry(name).or_insert_with(|| {
            let text = std::fs::read_to_string(examples.join(name)).expect("example");
            let mut doc = mlplat::yaml::parse_documents(&text).expect("yaml")[0].to_json();
            doc["platform"] = json!("mlops");
            doc
        });
        let file = examples.join(name);
        let mut without = base.clone();
        set(&mut without, pointer, None);
        let mut with = without.clone();
        set(&mut with, pointer, Some(value));
        // A key that cannot stand alone (a chart's repository without its version) is set
        // together with its siblings' defaults.
        if outcome(&file, &with).is_err() {
            let parent = &pointer[..pointer.rfind('/').expect("parent")];
            for (other, v) in &defaults {
                if other.rsplit_once('/').map(|(p, _)| p) == Some(parent) {
                    set(&mut with, other, Some(v));
                }
            }
        }
        match (outcome(&file, &without), outcome(&file, &with)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => problems.push(format!(
                "{}: explain prints the default {value}, but {name} renders differently with it",
                dotted(pointer)
            )),
            (a, b) => problems.push(format!(
                "{}: {name} does not load without or with the default {value}: {:?} / {:?}",
                dotted(pointer),
                a.err(),
                b.err()
            )),
        }
    }
    assert!(defaults.len() > 40, "{}", defaults.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The proof can fail: a default explain would print wrongly is caught by the same comparison.
#[test]
fn a_wrong_default_renders_differently() {
    let file = root().join("examples/local.yaml");
    let text = std::fs::read_to_string(&file).expect("example");
    let doc = mlplat::yaml::parse_documents(&text).expect("yaml")[0].to_json();
    let a = outcome(&file, &doc).expect("renders");
    let mut wrong = doc.clone();
    set(
        &mut wrong,
        "/tools/airflow/executor",
        Some(&json!("CeleryExecutor")),
    );
    assert_ne!(a, outcome(&file, &wrong).expect("renders"));
    let mut same = doc;
    set(
        &mut same,
        "/tools/airflow/executor",
        Some(&json!("KubernetesExecutor")),
    );
    assert_eq!(a, outcome(&file, &same).expect("renders"));
}
