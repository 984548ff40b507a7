//! One Secret of the platform as the components record it ([`SecretObject`]), whatever
//! `secrets.mode` later makes of it, and the SecretStore name the external-secrets objects read.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::secrets::Secret;

/// The SecretStore every ExternalSecret of a namespace reads from.
pub const STORE: &str = "aws-secrets-manager";
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
}
