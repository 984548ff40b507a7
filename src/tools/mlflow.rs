//! The MLflow tracking server, rendered by mlplat itself (there is no upstream chart):
//! Deployment, Service, ConfigMaps, Secrets, ServiceAccount, artifacts PVC, and an Ingress and
//! PodDisruptionBudget when asked for. Not an open endpoint: basic-auth with an admin from a
//! Secret (set by an init container before the server listens, on every start), `--allowed-hosts`,
//! and a stable Flask secret key. The other tools log to it as service accounts of their own:
//! a Job creates them through MLflow's REST API, and each tool reads its credentials from the
//! Secret [`CLIENT_SECRET`] in its own namespace (see [`client_secret`] and [`client_env`]).

use serde_json::{Value, json};

use crate::backends::artifacts::ArtifactStore;
use crate::backends::{Backends, DbRequest};
use crate::config::{Loaded, MlflowConfig, Tool};
use crate::encode::fingerprint;
use crate::render::component::Component;
use crate::render::component::Labels;
use crate::render::component::render_to;
use crate::render::error::RenderError;
use crate::secrets::{Deriver, Policy, Secret};

const TOOL: Tool = Tool::Mlflow;

pub const SERVICE: &str = "mlflow";
pub const PORT: u16 = 5000;
/// The image `images/mlflow/Dockerfile` builds; override with `tools.mlflow.image`.
const DB_SECRET: &str = "mlflow-db-auth";
const AUTH_SECRET: &str = "mlflow-auth";
/// The passwords of the other tools' service accounts, for the identities Job.
const IDENTITIES_SECRET: &str = "mlflow-identities";
const CONFIGMAP: &str = "mlflow-config";
const SCRIPTS_CONFIGMAP: &str = "mlflow-scripts";
const SCRIPTS_DIR: &str = "/etc/mlflow/scripts";
/// The Secret each consuming tool gets in its own namespace, with the keys MLflow's client
/// reads: `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`.
pub const CLIENT_SECRET: &str = "mlflow-client";
/// The tools that log to MLflow, each as the service account of its name.
pub const CONSUMERS: [Tool; 2] = [Tool::Airflow, Tool::Jupyterhub];
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
    let namespace = loaded.namespace_of(TOOL.name());
    let labels = Labels::new(platform, TOOL.name(), "tracking-server");
    let mut component = Component::new(TOOL.name(), &namespace, &labels)?;
    let db_name = cfg
        .database
        .name
        .clone()
        .unwrap_or_else(|| "mlflow".to_owned());
    let auth_db = format!("{db_name}_auth");
    let db = backends.database(
        &DbRequest {
            tool: TOOL,
            cfg: &cfg.database,
            extra_databases: std::slice::from_ref(&auth_db),
        },
        loaded,
        deriver,
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
    let db_data = json!({
        "postgresql-password": db.password.expose(),
        "backend-store-uri": db.uri("postgresql+psycopg2").expose(),
    });
    let auth_data = json!({
        "admin-username": admin,
        "admin-password": admin_password.expose(),
        "flask-secret-key": flask_key.expose(),
        "basic_auth.ini": auth_ini,
    });
    let consumers = consumers(loaded);
    let mut secrets = vec![
        (DB_SECRET, db_data.clone()),
        (AUTH_SECRET, auth_data.clone()),
    ];
    let mut identities = serde_json::Map::new();
    for tool in &consumers {
        identities.insert(
            format!("{tool}-password"),
            json!(client_password(deriver, tool).expose()),
        );
    }
    if !consumers.is_empty() {
        secrets.push((IDENTITIES_SECRET, Value::Object(identities.clone())));
    }
    component.secrets(&secrets)?;
    // Keyed: out/ may be public (external-secrets mode), the checksum must not help anyone
    // guess a value; it still changes with each one, so a rotation rolls the pods. Only the
    // Secrets the server reads: a new service-account password re-runs the Job, not the server.
    let server_secrets_checksum =
        deriver.checksum(json!([db_data, auth_data]).to_string().as_bytes());

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
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": if cfg.job_execution.unwrap_or_else(|| crate::config::defaults::flag("/tools/mlflow/jobExecution")) { "true" } else { "false" },
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
    let workers = cfg
        .workers
        .unwrap_or_else(|| crate::config::defaults::number("/tools/mlflow/workers"));
    let admin_script = crate::templates::file("mlflow/admin.py");
    let identities_script = crate::templates::file("mlflow/identities.py");
    let scripts_yaml = component.object(
        "configmap-scripts.yaml",
        "mlflow/configmap.yaml",
        &json!({"name": SCRIPTS_CONFIGMAP, "data": {
            "admin.py": admin_script,
            "identities.py": identities_script,
        }}),
    )?;
    let (image, checkov_skips) = crate::render::component::pinned_image(
        loaded,
        image_of(cfg),
        &[(
            "CKV_K8S_35",
            "MLflow reads its backend store URI and Flask key from the environment only",
        )],
    )?;
    component.object(
        "deployment.yaml",
        "mlflow/deployment.yaml",
        &json!({
            "name": SERVICE,
            "image": image,
            "replicas": replicas,
            "port": PORT,
            "args": ["mlflow", "server", "--host", "0.0.0.0", "--port", PORT.to_string(),
                     "--workers", workers.to_string(),
                     "--serve-artifacts", "--artifacts-destination", destination,
                     "--app-name", "basic-auth"],
            "admin_command": ["python", format!("{SCRIPTS_DIR}/admin.py")],
            "scripts_configmap": SCRIPTS_CONFIGMAP,
            "scripts_dir": SCRIPTS_DIR,
            "db_secret": DB_SECRET,
            "auth_secret": AUTH_SECRET,
            "auth_dir": AUTH_DIR,
            "configmap": CONFIGMAP,
            "pvc": if store.is_pvc() { json!(PVC) } else { Value::Null },
            "artifacts_path": ARTIFACTS_PATH,
            // Measured: 2 workers without the job runner, 0.64 GiB (PSS) after logging runs
            // with artifacts; MLflow's defaults (4 workers and the job runner) took 2.2 GiB.
            "resources": cfg.resources.clone().unwrap_or_else(|| crate::config::defaults::value("/tools/mlflow/resources").clone()),
            "checkov_skips": checkov_skips,
            "checksums": {
                "checksum/secret": server_secrets_checksum,
                "checksum/config": fingerprint(format!("{config_yaml}{scripts_yaml}").as_bytes()),
            },
        }),
    )?;
    component.object(
        "service.yaml",
        "mlflow/service.yaml",
        &json!({"name": SERVICE, "port": PORT}),
    )?;
    if !consumers.is_empty() {
        identities_job(
            &mut component,
            loaded,
            deriver,
            cfg,
            &namespace,
            &consumers,
            &identities_script,
            &identities,
            &admin_password,
        )?;
    }
    if let Some(ing) = &cfg.ingress {
        component.object(
            "ingress.yaml",
            "mlflow/ingress.yaml",
            &json!({"name": SERVICE, "host": ing.host, "class_name": ing.class_name,
                    "tls_secret": ing.tls_secret, "port": PORT}),
        )?;
    }
    if let Some(net) = crate::render::network::Network::new(loaded) {
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
        crate::render::network::policies(&mut component, Some((SERVICE, PORT)), &from)?;
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

/// The Job that creates (or updates) each consuming tool's service account through MLflow's
/// REST API as the admin: `users/create`, or `users/update-password` when it exists, then EDIT
/// on the Default experiment. Its name carries a keyed checksum of everything it uses, so a new
/// password or a new consumer makes a new Job (a Job's template cannot change in place).
/// The MLflow image the config names (the default: what `images/mlflow/Dockerfile` builds).
fn image_of(cfg: &MlflowConfig) -> &str {
    cfg.image
        .as_deref()
        .unwrap_or(crate::config::defaults::text("/tools/mlflow/image"))
}

#[allow(clippy::too_many_arguments)]
fn identities_job(
    component: &mut Component,
    loaded: &Loaded,
    deriver: &Deriver,
    cfg: &MlflowConfig,
    namespace: &str,
    consumers: &[&str],
    script: &str,
    passwords: &serde_json::Map<String, Value>,
    admin_password: &Secret,
) -> Result<(), RenderError> {
    let url = format!("http://{SERVICE}.{namespace}.svc:{PORT}");
    let mut env = vec![
        json!({"name": "MLFLOW_URL", "value": url}),
        json!({"name": "ADMIN_USERNAME", "valueFrom": {"secretKeyRef": {"name": AUTH_SECRET, "key": "admin-username"}}}),
        json!({"name": "ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {"name": AUTH_SECRET, "key": "admin-password"}}}),
        json!({"name": "IDENTITIES", "value": consumers.join(" ")}),
    ];
    for tool in consumers {
        env.push(json!({
            "name": format!("PASSWORD_{}", tool.to_uppercase()),
            "valueFrom": {"secretKeyRef": {"name": IDENTITIES_SECRET, "key": format!("{tool}-password")}},
        }));
    }
    env.push(json!({"name": "HOME", "value": "/tmp"}));
    let inputs = json!([script, url, consumers, passwords, admin_password.expose()]);
    let checksum = deriver.checksum(inputs.to_string().as_bytes());
    let tag = checksum
        .trim_start_matches("hmac:")
        .get(..8)
        .unwrap_or_default();
    let mut pod_labels = component.labels.all();
    pod_labels["app.kubernetes.io/name"] = json!("mlflow-identities");
    let (image, checkov_skips) = crate::render::component::pinned_image(
        loaded,
        image_of(cfg),
        &[(
            "CKV_K8S_35",
            "the script reads the admin's and each account's password from the environment",
        )],
    )?;
    component.object(
        "job-identities.yaml",
        "mlflow/job-identities.yaml",
        &json!({
            "name": format!("mlflow-identities-{tag}"),
            "pod_labels": pod_labels,
            "image": image,
            "command": ["python", format!("{SCRIPTS_DIR}/identities.py")],
            "env": env,
            "scripts_configmap": SCRIPTS_CONFIGMAP,
            "scripts_dir": SCRIPTS_DIR,
            "checkov_skips": checkov_skips,
        }),
    )?;
    Ok(())
}

/// The tools of this platform that get an MLflow service account: every enabled consumer, when
/// MLflow is enabled too.
pub fn consumers(loaded: &Loaded) -> Vec<&'static str> {
    let p = &loaded.platform;
    if !p.enabled(Tool::Mlflow) {
        return Vec::new();
    }
    CONSUMERS
        .into_iter()
        .filter(|t| p.enabled(*t))
        .map(Tool::name)
        .collect()
}

/// The service account's password of `tool` (derived as `mlflow/clients/<tool>`, so
/// `mlplat rotate mlflow/clients/<tool>` gives it a new one).
fn client_password(deriver: &Deriver, tool: &str) -> Secret {
    deriver.derive(&format!("mlflow/clients/{tool}"), Policy::Password)
}

/// The Secret [`CLIENT_SECRET`] for `tool`'s namespace: its MLflow username and password.
pub fn client_secret(deriver: &Deriver, tool: &str) -> (&'static str, Value) {
    (
        CLIENT_SECRET,
        json!({
            "MLFLOW_TRACKING_USERNAME": tool,
            "MLFLOW_TRACKING_PASSWORD": client_password(deriver, tool).expose(),
        }),
    )
}

/// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` from [`CLIENT_SECRET`], as
/// Kubernetes env entries (`valueFrom.secretKeyRef`, never a value).
pub fn client_env() -> Vec<Value> {
    ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]
        .iter()
        .map(|key| {
            json!({"name": key, "valueFrom": {"secretKeyRef": {"name": CLIENT_SECRET, "key": key}}})
        })
        .collect()
}

/// MLflow reads its auth config with Python's configparser, which treats `%` as the start of
/// an interpolation: a percent-encoded URI or a password with `%` must double it.
fn ini_escape(s: &Secret) -> Value {
    json!(s.expose().replace('%', "%%"))
}
