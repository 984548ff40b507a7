//! The MLflow tracking server, rendered by mlplat itself (there is no upstream chart):
//! Deployment, Service, ConfigMap, Secrets, ServiceAccount, artifacts PVC, and an Ingress and
//! PodDisruptionBudget when asked for. Not an open endpoint: basic-auth with an admin from a
//! Secret, `--allowed-hosts`, and a stable Flask secret key.

use serde_json::{Value, json};

use super::{Component, Labels, RenderError, namespace_of, render_to};
use crate::backends::Backends;
use crate::backends::artifacts::ArtifactStore;
use crate::config::{Loaded, MlflowConfig};
use crate::secrets::{Deriver, Policy, Secret, fingerprint};

pub const SERVICE: &str = "mlflow";
pub const PORT: u16 = 5000;
/// The image `images/mlflow/Dockerfile` builds; override with `tools.mlflow.image`.
const DB_SECRET: &str = "mlflow-db-auth";
const AUTH_SECRET: &str = "mlflow-auth";
const CONFIGMAP: &str = "mlflow-config";
const PVC: &str = "mlflow-artifacts";
const ARTIFACTS_PATH: &str = "/mlflow/artifacts";
const AUTH_DIR: &str = "/etc/mlflow/auth";

/// Builds `out/mlflow/`.
pub fn build(
    loaded: &Loaded,
    cfg: &MlflowConfig,
    deriver: &Deriver,
    backends: &mut Backends,
) -> Result<Component, RenderError> {
    let platform = &loaded.platform.platform;
    let namespace = namespace_of(loaded, "mlflow");
    let labels = Labels::new(platform, "mlflow", "tracking-server");
    let mut component = Component::new("mlflow", &namespace, &labels)?;
    let db_name = cfg
        .database
        .name
        .clone()
        .unwrap_or_else(|| "mlflow".to_owned());
    let auth_db = format!("{db_name}_auth");
    let db = backends.database(
        "mlflow",
        &cfg.database,
        "/tools/mlflow/database",
        loaded,
        deriver,
        std::slice::from_ref(&auth_db),
    );

    let admin = cfg
        .auth
        .admin_username
        .as_deref()
        .unwrap_or(crate::config::defaults::text(
            "/tools/mlflow/auth/adminUsername",
        ));
    let admin_password = loaded
        .inputs
        .get("/tools/mlflow/auth/adminPassword")
        .cloned()
        .unwrap_or_else(|| deriver.derive("mlflow/admin-password", Policy::Password));
    let flask_key = deriver.derive("mlflow/flask-secret-key", Policy::Hex64);
    let auth_ini = render_to(
        "mlflow/basic_auth.ini",
        &json!({
            "default_permission": cfg.auth.default_permission.as_deref().unwrap_or(crate::config::defaults::text("/tools/mlflow/auth/defaultPermission")),
            "database_uri": ini_escape(&db.uri_for("postgresql+psycopg2", &auth_db)),
            "admin_username": admin,
            "admin_password": ini_escape(&admin_password),
        }),
    )?;
    let secrets_yaml = component.secrets(&[
        (
            DB_SECRET,
            json!({
                "postgresql-password": db.password.expose(),
                "backend-store-uri": db.uri("postgresql+psycopg2").expose(),
            }),
        ),
        (
            AUTH_SECRET,
            json!({
                "admin-username": admin,
                "admin-password": admin_password.expose(),
                "flask-secret-key": flask_key.expose(),
                "basic_auth.ini": auth_ini,
            }),
        ),
    ])?;

    let mut hosts = vec![
        "localhost".to_owned(),
        format!("localhost:{PORT}"),
        format!("{SERVICE}.{namespace}.svc"),
        format!("{SERVICE}.{namespace}.svc:{PORT}"),
        format!("{SERVICE}.{namespace}.svc.cluster.local"),
        format!("{SERVICE}.{namespace}.svc.cluster.local:{PORT}"),
    ];
    if let Some(ing) = &cfg.ingress {
        hosts.push(ing.host.clone());
    }
    let store = ArtifactStore::resolve(loaded);
    let mut config_data = json!({
        "MLFLOW_SERVER_ALLOWED_HOSTS": hosts.join(","),
        "MLFLOW_AUTH_CONFIG_PATH": format!("{AUTH_DIR}/basic_auth.ini"),
    });
    for (k, v) in store.env() {
        config_data[k] = json!(v);
    }
    let config_yaml = component.object(
        "configmap.yaml",
        "mlflow/configmap.yaml",
        &json!({"name": CONFIGMAP, "data": config_data}),
    )?;
    component.object(
        "serviceaccount.yaml",
        "mlflow/serviceaccount.yaml",
        &json!({"name": SERVICE, "annotations": store.service_account_annotations()}),
    )?;
    if store.is_pvc() {
        let pvc = &loaded.platform.backends.artifacts.pvc;
        component.object(
            "pvc.yaml",
            "mlflow/pvc.yaml",
            &json!({"name": PVC, "size": pvc.size.as_deref().unwrap_or(crate::config::defaults::text("/backends/artifacts/pvc/size")), "storage_class": pvc.storage_class}),
        )?;
    }
    let prefix = cfg
        .artifacts
        .prefix
        .as_deref()
        .unwrap_or("")
        .trim_matches('/');
    let destination = store.destination(ARTIFACTS_PATH, prefix);
    let replicas = cfg
        .replicas
        .unwrap_or_else(|| crate::config::defaults::number("/tools/mlflow/replicas"));
    component.object(
        "deployment.yaml",
        "mlflow/deployment.yaml",
        &json!({
            "name": SERVICE,
            "image": cfg.image.as_deref().unwrap_or(crate::config::defaults::text("/tools/mlflow/image")),
            "replicas": replicas,
            "port": PORT,
            "args": ["mlflow", "server", "--host", "0.0.0.0", "--port", PORT.to_string(),
                     "--serve-artifacts", "--artifacts-destination", destination,
                     "--app-name", "basic-auth"],
            "db_secret": DB_SECRET,
            "auth_secret": AUTH_SECRET,
            "auth_dir": AUTH_DIR,
            "configmap": CONFIGMAP,
            "pvc": if store.is_pvc() { json!(PVC) } else { Value::Null },
            "artifacts_path": ARTIFACTS_PATH,
            "resources": cfg.resources.clone().unwrap_or_else(|| crate::config::defaults::value("/tools/mlflow/resources").clone()),
            "checkov_skips": super::checkov_skips(&[
                super::SKIP_TAG_PIN[0],
                super::SKIP_TAG_PIN[1],
                ("CKV_K8S_35", "MLflow reads its backend store URI and Flask key from the environment only"),
            ]),
            "checksums": {
                // Keyed: out/ may be public (external-secrets mode), the checksum must not help
                // anyone guess a value; it still changes with each one, so a rotation rolls.
                "checksum/secret": deriver.checksum(secrets_yaml.as_bytes()),
                "checksum/config": fingerprint(config_yaml.as_bytes()),
            },
        }),
    )?;
    component.object(
        "service.yaml",
        "mlflow/service.yaml",
        &json!({"name": SERVICE, "port": PORT}),
    )?;
    if let Some(ing) = &cfg.ingress {
        component.object(
            "ingress.yaml",
            "mlflow/ingress.yaml",
            &json!({"name": SERVICE, "host": ing.host, "class_name": ing.class_name,
                    "tls_secret": ing.tls_secret, "port": PORT}),
        )?;
    }
    if let Some(net) = super::network::Network::new(loaded) {
        let mut from: Vec<String> = [&net.airflow, &net.jupyterhub]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if cfg.ingress.is_some() {
            from.push(net.ingress_namespace.clone());
        }
        from.extend(
            loaded
                .platform
                .network_policies
                .allow_from
                .mlflow
                .iter()
                .cloned(),
        );
        super::network::policies(&mut component, Some((SERVICE, PORT)), &from)?;
    }
    if replicas > 1 {
        component.object(
            "pdb.yaml",
            "mlflow/pdb.yaml",
            &json!({"name": SERVICE, "annotations": null}),
        )?;
    }
    Ok(component)
}

/// MLflow reads its auth config with Python's configparser, which treats `%` as the start of
/// an interpolation: a percent-encoded URI or a password with `%` must double it.
fn ini_escape(s: &Secret) -> Value {
    json!(s.expose().replace('%', "%%"))
}
