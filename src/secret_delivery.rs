//! Stage 5b: how Secrets reach the cluster, chosen by `secrets.mode`.
//!
//! Every Secret a render produces is recorded once, as a [`SecretObject`] (namespace, name,
//! keys and values, and where each value came from), by [`crate::tools::Component::secrets`].
//! This stage decides what the component's secret files hold:
//!
//! - `plain`: the Secret manifests themselves (files 0600);
//! - `external-secrets`: one `ExternalSecret` per Secret, reading AWS Secrets Manager at
//!   `<platform>/<namespace>/<secret>` (a JSON object, one property per key, stored there by
//!   `mlplat provision`), and per namespace a `SecretStore` with the ServiceAccount whose IAM
//!   role (IRSA) may read it. The operator makes in the cluster exactly the Secrets `plain`
//!   would write: same names, same keys. No secret value is left in `out/`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::config::{Loaded, SecretMode};
use crate::secrets::{Deriver, Secret, uri_encode};
use crate::tools::{Component, File, RenderError, render_to};

/// The SecretStore every ExternalSecret of a namespace reads from.
pub const STORE: &str = "aws-secrets-manager";
/// The file that holds a component's SecretStore and its ServiceAccount.
const STORE_FILE: &str = "secretstore.yaml";

/// One Secret of the platform, as `plain` mode writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretObject {
    /// The component (`out/<component>/`) it belongs to.
    pub component: String,
    /// The file of that component it is written to (`secrets.yaml`, `helm-values.yaml`).
    pub file: String,
    pub namespace: String,
    pub name: String,
    /// Key → value.
    pub data: BTreeMap<String, Secret>,
    /// Key → what the value is made of: derived secrets by name (`airflow/fernet-key`) and
    /// user inputs by config pointer (`/tools/airflow/dags/credentials/token`).
    pub sources: BTreeMap<String, Vec<String>>,
}

impl SecretObject {
    /// A Secret from its string data (a JSON object of strings).
    pub fn new(component: &str, file: &str, namespace: &str, name: &str, data: &Value) -> Self {
        let data = data
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), Secret::new(v))
            })
            .collect();
        SecretObject {
            component: component.to_owned(),
            file: file.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            data,
            sources: BTreeMap::new(),
        }
    }

    /// `namespace/name`, as people say it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Where it lives in AWS Secrets Manager: `<platform>/<namespace>/<name>`.
    pub fn remote_key(&self, platform: &str) -> String {
        format!("{platform}/{}/{}", self.namespace, self.name)
    }

    /// The value stored in Secrets Manager: a JSON object of the keys, sorted, so the same
    /// Secret always gives the same bytes.
    pub fn remote_value(&self) -> Secret {
        let map: BTreeMap<&str, &str> = self
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        #[allow(clippy::expect_used)] // a map of strings always serializes
        Secret::new(serde_json::to_string(&map).expect("strings serialize"))
    }

    /// Every derived name and input pointer some key is made of.
    pub fn all_sources(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .sources
            .values()
            .flatten()
            .map(String::as_str)
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// Finds what each key of each Secret is made of: a derived secret or a user input whose value
/// appears in the key's value as it is, percent-encoded (URIs) or with `%` doubled (ini files).
pub fn trace_sources(
    objects: &mut [SecretObject],
    derived: &BTreeMap<String, Secret>,
    loaded: &Loaded,
) {
    // Each known value in its three spellings, encoded once (not once per Secret key).
    let known: Vec<(&str, [Secret; 3])> = derived
        .iter()
        .map(|(n, s)| (n.as_str(), s))
        .chain(loaded.inputs.iter())
        .filter(|(_, s)| !s.expose().is_empty())
        .map(|(n, s)| {
            let raw = s.expose();
            let uri = uri_encode(raw);
            let ini = uri.replace('%', "%%");
            (n, [s.clone(), Secret::new(uri), Secret::new(ini)])
        })
        .collect();
    for o in objects {
        for (key, value) in &o.data {
            let v = value.expose();
            let found: Vec<String> = known
                .iter()
                .filter(|(_, spellings)| spellings.iter().any(|s| v.contains(s.expose())))
                .map(|(n, _)| (*n).to_owned())
                .collect();
            if !found.is_empty() {
                o.sources.insert(key.clone(), found);
            }
        }
    }
}

/// Writes the component's secret files the way the config's mode says.
pub fn apply(loaded: &Loaded, deriver: &Deriver, c: &mut Component) -> Result<(), RenderError> {
    let secrets = &loaded.platform.secrets;
    let (SecretMode::ExternalSecrets, Some(cfg)) = (secrets.mode, &secrets.external_secrets) else {
        return Ok(());
    };
    if c.secret_objects.is_empty() {
        return Ok(());
    }
    let platform = &loaded.platform.platform;
    let labels = c.labels.all();
    let objects = &c.secret_objects;
    // Only the files of recorded Secrets; anything else is left as it is (and the config
    // check keeps external-secrets mode from producing such files).
    for file in c
        .files
        .iter_mut()
        .filter(|f| f.secret && objects.iter().any(|o| o.file == f.name))
    {
        let list: Vec<Value> = objects
            .iter()
            .filter(|o| o.file == file.name)
            .map(|o| {
                let remote = o.remote_key(platform);
                let data: Vec<Value> = o
                    .data
                    .keys()
                    .map(|k| json!({"secretKey": k, "remoteRef": {"key": remote, "property": k}}))
                    .collect();
                json!({
                    "name": o.name,
                    "note": null,
                    "remote_key": remote,
                    "checksum": deriver.checksum(o.remote_value().expose().as_bytes()),
                    "data": data,
                })
            })
            .collect();
        let text = checked(
            "external-secrets/externalsecret.yaml",
            &json!({"secrets": list, "namespace": c.namespace, "labels": labels, "store": STORE}),
        )?;
        file.text = text;
        file.secret = false;
    }
    let store = checked(
        "external-secrets/secretstore.yaml",
        &json!({
            "namespace": c.namespace,
            "labels": labels,
            "store": STORE,
            "service_account": cfg.service_account.as_deref().unwrap_or(crate::config::defaults::text("/secrets/externalSecrets/serviceAccount")),
            "role_arn": cfg.role_arn,
            "region": cfg.region,
        }),
    )?;
    // Right after the Namespace: the store comes before what reads from it.
    let at = usize::from(!c.files.is_empty());
    c.files.insert(
        at,
        File {
            name: STORE_FILE.to_owned(),
            text: store,
            secret: false,
            resource: true,
        },
    );
    Ok(())
}

fn checked(template: &str, ctx: &Value) -> Result<String, RenderError> {
    let text = render_to(template, ctx)?;
    crate::tools::check_yaml(template, &text)?;
    Ok(text)
}

/// In `plain` mode, whether `out` is tracked by git: then Secret manifests are in a repository.
/// Asks `git ls-files` quietly; no git, or not a repository, means no.
pub fn tracked_by_git(out: &Path) -> bool {
    let (dir, what) = match (out.parent(), out.file_name()) {
        (Some(p), Some(name)) if !p.as_os_str().is_empty() => (p.to_path_buf(), name.to_owned()),
        _ => (std::path::PathBuf::from("."), out.as_os_str().to_owned()),
    };
    if !dir.is_dir() || !in_a_repository(&dir) {
        return false;
    }
    std::process::Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["ls-files", "--"])
        .arg(&what)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

/// Whether `dir` is inside a git work tree, by looking for `.git` upwards (or `GIT_DIR`): a
/// render outside any repository then spawns no `git` at all.
fn in_a_repository(dir: &Path) -> bool {
    if std::env::var_os("GIT_DIR").is_some() {
        return true;
    }
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    dir.ancestors().any(|d| d.join(".git").exists())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_value_is_sorted_json_and_prints_as_a_fingerprint() {
        let o = SecretObject::new(
            "airflow",
            "secrets.yaml",
            "mlops-airflow",
            "airflow-keys",
            &json!({"b": "2", "a": "hunter2-hunter2"}),
        );
        assert_eq!(
            o.remote_value().expose(),
            r#"{"a":"hunter2-hunter2","b":"2"}"#
        );
        assert_eq!(o.remote_key("mlops"), "mlops/mlops-airflow/airflow-keys");
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn no_git_means_not_tracked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!tracked_by_git(&dir.path().join("out")));
    }
}
