//! JupyterHub through the zero-to-jupyterhub chart (z2jh 4.x): hub database from the backends,
//! derived proxy token, cookie secret and CryptKeeper key (otherwise every offline render makes
//! new ones), an authenticator that lets in only the listed users and whose admins have
//! passwords from a Secret (no admin account can be claimed by signing up), per-user storage, a
//! JupyterLab profile (and a VS Code one when its image is given), and the platform's DAG
//! repository cloned into each home by an init container that alone sees the git credentials.

use serde_json::{Map, Value, json};

use super::Links;
use crate::backends::{Backends, DbRequest};
use crate::charts::ChartRelease;
use crate::charts::merge;
use crate::charts::set;
use crate::config::{HubAuthKind, HubDbKind, IngressConfig, JupyterhubConfig, Loaded, Tool};
use crate::render::component::Component;
use crate::render::component::Labels;
use crate::render::error::RenderError;
use crate::secrets::{Deriver, Policy, Secret};

const TOOL: Tool = Tool::Jupyterhub;

const DB_SECRET: &str = "jupyterhub-db-auth";
const OAUTH_SECRET: &str = "jupyterhub-oauth";
/// The admins' passwords, one key per admin name; mounted in the hub pod only.
pub const ADMIN_SECRET: &str = "jupyterhub-admin-passwords";
/// The DAG repository's credentials (a copy of Airflow's): read by the clone init container only.
pub const DAGS_GIT_SECRET: &str = "jupyterhub-dags-git";
/// Where the hub finds the admins' passwords: beside z2jh's `jupyterhub_config.py`, whose
/// directory the snippet takes from `__file__`.
const ADMIN_MOUNT: &str = "/usr/local/etc/jupyterhub/mlplat-admin-passwords";
/// The `hub.extraConfig` entry that sets the admin accounts (see the file's header).
const ADMINS_PY: &str = include_str!("../../templates/jupyterhub/admins.py");
/// The clone init container's script (see the file's header).
const CLONE_SH: &str = include_str!("../../templates/jupyterhub/clone-dags.sh");
/// How long the clone may delay a server's start, in seconds (KubeSpawner waits 300 s in all).
const CLONE_TIMEOUT: u32 = 120;

/// Builds `out/jupyterhub/`.
pub fn build(
    loaded: &Loaded,
    cfg: &JupyterhubConfig,
    deriver: &Deriver,
    backends: &mut Backends,
    links: &Links,
) -> Result<Component, RenderError> {
    let platform = &loaded.platform.platform;
    let namespace = loaded.namespace_of(TOOL.name());
    let labels = Labels::new(platform, TOOL.name(), "notebooks");
    let mut component = Component::new(TOOL.name(), &namespace, &labels)?;
    let mut chart =
        ChartRelease::from_config(cfg.chart.as_ref(), crate::config::charts::JUPYTERHUB_CHART);
    let chart_version = chart.version.clone();
    let v = &mut chart.values;
    let mut secrets: Vec<(&str, Value)> = Vec::new();

    set(v, &["proxy", "service", "type"], json!("ClusterIP"));
    database_values(v, cfg, loaded, deriver, backends, &mut secrets);
    auth_values(v, cfg, loaded, deriver, &mut secrets);
    let dags_git = dags_credentials(loaded);

    let su = &cfg.singleuser;
    if let Some(image) = &su.image {
        let (name, tag) = split_image(image);
        set(
            v,
            &["singleuser", "image"],
            json!({"name": name, "tag": tag}),
        );
    }
    let mut storage = json!({"type": "dynamic", "capacity": su.storage.as_deref().unwrap_or(crate::config::defaults::text("/tools/jupyterhub/singleuser/storage"))});
    // On AWS, an encrypted gp3 class of mlplat's own unless the config names one.
    let ebs_class = (su.storage_class.is_none() && crate::config::aws::on_aws(&loaded.platform))
        .then(|| format!("{platform}-gp3-encrypted"));
    if let Some(class) = &ebs_class {
        component.object(
            "storageclass.yaml",
            "jupyterhub/storageclass.yaml",
            &json!({"name": class}),
        )?;
    }
    if let Some(class) = su.storage_class.as_ref().or(ebs_class.as_ref()) {
        set(&mut storage, &["dynamic", "storageClass"], json!(class));
    }
    set(v, &["singleuser", "storage"], storage);
    if let Some(uri) = &links.mlflow_uri {
        set(
            v,
            &["singleuser", "extraEnv", "MLFLOW_TRACKING_URI"],
            json!(uri),
        );
        // The hub's MLflow service account, from the Secret in this namespace (never a value).
        for env in super::mlflow::client_env() {
            if let Some(name) = env["name"].as_str() {
                set(
                    v,
                    &["singleuser", "extraEnv", name],
                    json!({"valueFrom": env["valueFrom"]}),
                );
            }
        }
        secrets.push(super::mlflow::client_secret(deriver, TOOL.name()));
    }
    harden(v, links);
    // No image with code-server is published: the profile needs one the user built.
    if let (true, Some(image)) = (cfg.vscode.enabled != Some(false), &cfg.vscode.image) {
        set(
            v,
            &["singleuser", "profileList"],
            json!([
                {"display_name": "JupyterLab", "description": "Python notebooks in JupyterLab.", "default": true},
                {"display_name": "VS Code", "description": "VS Code (code-server) in the browser.",
                 "kubespawner_override": {"image": image, "default_url": "/vscode/"}},
            ]),
        );
    }
    if let Some(ing) = &cfg.ingress {
        set(v, &["ingress"], ingress_values(ing));
    }
    for file in loaded.values_files.get(TOOL.name()).into_iter().flatten() {
        merge(v, &file.value);
    }
    // After the user's values: the clone follows the storage and image they end up with.
    if let (true, Some((repo, branch))) = (
        su.clone_dags.unwrap_or_else(|| {
            crate::config::defaults::flag("/tools/jupyterhub/singleuser/cloneDags")
        }),
        &links.dags,
    ) {
        if let Some(init) = clone_init_container(v, &chart_version, repo, branch, dags_git.as_ref())
        {
            let mut list = v
                .pointer("/singleuser/initContainers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            list.push(init);
            set(v, &["singleuser", "initContainers"], Value::Array(list));
            if let Some(data) = dags_git {
                secrets.push((DAGS_GIT_SECRET, data));
            }
        }
    }
    // The hub reads these Secrets at start only: a change must roll it.
    let read_by_hub: Vec<&(&str, Value)> = secrets
        .iter()
        .filter(|(name, _)| [DB_SECRET, OAUTH_SECRET, ADMIN_SECRET].contains(name))
        .collect();
    if !read_by_hub.is_empty() {
        let bytes = serde_json::to_vec(&read_by_hub).unwrap_or_default();
        set(
            v,
            &["hub", "annotations", "checksum/mlplat-secrets"],
            json!(deriver.checksum(&bytes)),
        );
    }

    chart.secret_values = secret_values(deriver);

    if !secrets.is_empty() {
        component.secrets(&secrets)?;
    }
    component.extra_file("values.yaml", crate::yaml::to_yaml_string(&chart.values));
    component.chart = Some(chart);
    Ok(component)
}

/// The hub's database: PostgreSQL on the backend (its password in a Secret the hub reads as
/// `PGPASSWORD`), or SQLite on the hub's volume.
fn database_values(
    v: &mut Value,
    cfg: &JupyterhubConfig,
    loaded: &Loaded,
    deriver: &Deriver,
    backends: &mut Backends,
    secrets: &mut Vec<(&str, Value)>,
) {
    match cfg.database.kind {
        HubDbKind::Postgres => {
            let db_cfg = crate::config::DatabaseConfig {
                name: cfg.database.name.clone(),
                user: cfg.database.user.clone(),
                password: cfg.database.password.clone(),
            };
            let db = backends.database(
                &DbRequest {
                    tool: TOOL,
                    cfg: &db_cfg,
                    extra_databases: &[],
                },
                loaded,
                deriver,
            );
            // No password in the URL: libpq reads PGPASSWORD, which comes from a Secret.
            let url = format!(
                "postgresql+psycopg2://{}@{}:{}/{}{}",
                crate::encode::uri_encode(&db.user),
                db.host,
                db.port,
                db.database,
                db.query()
            );
            set(
                v,
                &["hub", "db"],
                json!({"type": "postgres", "url": url, "upgrade": true}),
            );
            set(
                v,
                &["hub", "extraEnv", "PGPASSWORD"],
                json!({"valueFrom": {"secretKeyRef": {"name": DB_SECRET, "key": "hub.db.password"}}}),
            );
            secrets.push((DB_SECRET, json!({"hub.db.password": db.password.expose()})));
        }
        HubDbKind::SqlitePvc => set(v, &["hub", "db", "type"], json!("sqlite-pvc")),
    }
}

/// The authenticator, its admins and allowed users, GitHub's OAuth app, and the admins'
/// passwords (native and dummy), mounted in the hub only.
fn auth_values(
    v: &mut Value,
    cfg: &JupyterhubConfig,
    loaded: &Loaded,
    deriver: &Deriver,
    secrets: &mut Vec<(&str, Value)>,
) {
    let auth = &cfg.auth;
    let class = match auth.kind {
        HubAuthKind::Native => "native",
        HubAuthKind::Github => "github",
        HubAuthKind::Dummy => "dummy",
    };
    set(
        v,
        &["hub", "config", "JupyterHub", "authenticator_class"],
        json!(class),
    );
    if !auth.admin_users.is_empty() {
        set(
            v,
            &["hub", "config", "Authenticator", "admin_users"],
            json!(auth.admin_users),
        );
    }
    if !auth.allowed_users.is_empty() {
        set(
            v,
            &["hub", "config", "Authenticator", "allowed_users"],
            json!(auth.allowed_users),
        );
    }
    if let (HubAuthKind::Github, Some(gh)) = (auth.kind, &auth.github) {
        let mut github = json!({"client_id": gh.client_id, "oauth_callback_url": gh.callback_url});
        if !gh.allowed_organizations.is_empty() {
            set(
                &mut github,
                &["allowed_organizations"],
                json!(gh.allowed_organizations),
            );
        }
        set(v, &["hub", "config", "GitHubOAuthenticator"], github);
        // OAuthenticator reads the client secret from the environment.
        set(
            v,
            &["hub", "extraEnv", "OAUTH_CLIENT_SECRET"],
            json!({"valueFrom": {"secretKeyRef": {"name": OAUTH_SECRET, "key": "client_secret"}}}),
        );
        let secret = loaded
            .inputs
            .get("/tools/jupyterhub/auth/github/clientSecret");
        secrets.push((
            OAUTH_SECRET,
            json!({"client_secret": secret.map(Secret::expose).unwrap_or_default()}),
        ));
    }

    let admin_passwords = match auth.kind {
        HubAuthKind::Github => Vec::new(),
        HubAuthKind::Native | HubAuthKind::Dummy => admin_passwords(loaded, cfg, deriver),
    };
    if !admin_passwords.is_empty() {
        let data: Map<String, Value> = admin_passwords
            .iter()
            .map(|(name, pw)| (name.clone(), json!(pw.expose())))
            .collect();
        secrets.push((ADMIN_SECRET, Value::Object(data)));
        set(
            v,
            &["hub", "extraVolumes"],
            json!([{"name": "mlplat-admin-passwords", "secret": {"secretName": ADMIN_SECRET}}]),
        );
        set(
            v,
            &["hub", "extraVolumeMounts"],
            json!([{"name": "mlplat-admin-passwords", "mountPath": ADMIN_MOUNT, "readOnly": true}]),
        );
        set(
            v,
            &["hub", "extraConfig", "mlplat-admins"],
            json!(ADMINS_PY),
        );
    }
}

/// The chart's `ingress` block for the tool's host.
fn ingress_values(ing: &IngressConfig) -> Value {
    let mut ingress = json!({"enabled": true, "hosts": [ing.host]});
    if let Some(class) = &ing.class_name {
        set(&mut ingress, &["ingressClassName"], json!(class));
    }
    if let Some(tls) = &ing.tls_secret {
        set(
            &mut ingress,
            &["tls"],
            json!([{"hosts": [ing.host], "secretName": tls}]),
        );
    }
    ingress
}

/// The chart's own secrets, set once and kept (`proxy.secretToken`, `hub.cookieSecret`,
/// CryptKeeper's key): derived, so every render gives the same.
fn secret_values(deriver: &Deriver) -> Value {
    // Set once and kept: without them every render would make new ones and log everyone out.
    let mut secret_values = Map::new();
    set_map(
        &mut secret_values,
        &["proxy", "secretToken"],
        deriver.derive("jupyterhub/proxy-secret-token", Policy::Hex64),
    );
    set_map(
        &mut secret_values,
        &["hub", "cookieSecret"],
        deriver.derive("jupyterhub/cookie-secret", Policy::Hex64),
    );
    let crypt = deriver.derive("jupyterhub/crypt-keeper-key", Policy::Hex64);
    let mut sv = Value::Object(secret_values);
    set(
        &mut sv,
        &["hub", "config", "CryptKeeper", "keys"],
        json!([crypt.expose()]),
    );
    sv
}

fn set_map(map: &mut Map<String, Value>, path: &[&str], secret: Secret) {
    let mut v = Value::Object(std::mem::take(map));
    set(&mut v, path, json!(secret.expose()));
    if let Value::Object(m) = v {
        *map = m;
    }
}

/// `repo:tag` → (`repo`, `tag`); a digest or no tag keeps the whole reference and `latest`.
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') && !name.ends_with('@') && !image.contains('@') => {
            (name, tag)
        }
        _ => (image, "latest"),
    }
}

/// Each admin's password, by admin name: the user's (`auth.adminPasswords`), else derived as
/// `jupyterhub/admin-password/<name>` (rotatable).
fn admin_passwords(
    loaded: &Loaded,
    cfg: &JupyterhubConfig,
    deriver: &Deriver,
) -> Vec<(String, Secret)> {
    let mut names: Vec<&String> = cfg.auth.admin_users.iter().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let given = loaded
                .inputs
                .get(&format!("/tools/jupyterhub/auth/adminPasswords/{name}"));
            let pw = given.cloned().unwrap_or_else(|| {
                deriver.derive(
                    &format!("jupyterhub/admin-password/{name}"),
                    Policy::Password,
                )
            });
            (name.clone(), pw)
        })
        .collect()
}

/// The DAG repository's credentials for the clone, when Airflow's config has them: HTTPS
/// `username`/`password` (the token) or an SSH key (`ssh-privatekey`).
fn dags_credentials(loaded: &Loaded) -> Option<Value> {
    let p = &loaded.platform;
    let dags = p.airflow()?.dags.as_ref()?;
    if let Some(creds) = &dags.credentials {
        let token = loaded
            .inputs
            .get("/tools/airflow/dags/credentials/token")
            .map(Secret::expose)
            .unwrap_or_default();
        return Some(json!({"username": creds.username, "password": token}));
    }
    if dags.ssh_key.is_some() {
        let key = loaded
            .inputs
            .get("/tools/airflow/dags/sshKey")
            .map(Secret::expose)
            .unwrap_or_default();
        return Some(json!({"ssh-privatekey": format!("{}\n", key.trim_end())}));
    }
    None
}

/// The init container that clones the DAG repository into the home volume (see
/// `templates/jupyterhub/clone-dags.sh`), for the storage and image the values end up with;
/// none when user pods have no home volume.
fn clone_init_container(
    values: &Value,
    chart_version: &str,
    repo: &str,
    branch: &str,
    credentials: Option<&Value>,
) -> Option<Value> {
    let storage = values.pointer("/singleuser/storage");
    let text = |ptr: &str| storage.and_then(|s| s.pointer(ptr)).and_then(Value::as_str);
    // The volume KubeSpawner mounts at the home (z2jh's names; templates it expands itself).
    let volume = match text("/type") {
        Some("dynamic") => text("/dynamic/volumeNameTemplate").unwrap_or("volume-{user_server}"),
        Some("static") => "home",
        _ => return None,
    };
    let home = text("/homeMountPath").unwrap_or("/home/jovyan");
    let image = match (
        values
            .pointer("/singleuser/image/name")
            .and_then(Value::as_str),
        values
            .pointer("/singleuser/image/tag")
            .and_then(Value::as_str),
    ) {
        (Some(name), Some(tag)) => format!("{name}:{tag}"),
        (Some(name), None) => name.to_owned(),
        // z2jh's default single-user image, published with every chart version.
        _ => format!("quay.io/jupyterhub/k8s-singleuser-sample:{chart_version}"),
    };
    let uid = values
        .pointer("/singleuser/uid")
        .and_then(Value::as_u64)
        .unwrap_or(1000);
    let mut env = vec![
        json!({"name": "MLPLAT_DAGS_REPO", "value": kube_format_escape(repo)}),
        json!({"name": "MLPLAT_DAGS_BRANCH", "value": kube_format_escape(branch)}),
        json!({"name": "MLPLAT_HOME", "value": kube_format_escape(home)}),
        json!({"name": "MLPLAT_CLONE_TIMEOUT", "value": CLONE_TIMEOUT.to_string()}),
    ];
    let from_secret = |name: &str, key: &str| {
        // optional: a missing Secret must not keep the server from starting.
        json!({"name": name, "valueFrom": {"secretKeyRef": {"name": DAGS_GIT_SECRET, "key": key, "optional": true}}})
    };
    if let Some(c) = credentials {
        if c.get("password").is_some() {
            env.push(from_secret("GIT_USERNAME", "username"));
            env.push(from_secret("GIT_PASSWORD", "password"));
        }
        if c.get("ssh-privatekey").is_some() {
            env.push(from_secret("GIT_SSH_KEY", "ssh-privatekey"));
        }
    }
    Some(json!({
        "name": "clone-dags",
        "image": image,
        "command": ["sh", "-c", CLONE_SH],
        "env": env,
        "volumeMounts": [{"name": volume, "mountPath": kube_format_escape(home)}],
        "securityContext": {
            "runAsUser": uid,
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    }))
}

/// KubeSpawner expands `{username}`-style fields in every string of an init container with
/// Python's `str.format`: a literal brace is doubled.
fn kube_format_escape(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

/// Beyond the chart's defaults: requests and limits for the chart's own pods, no API token in
/// the proxy (it never calls the API) and a pod security context for it; and the single-user
/// pods' network policy opened to MLflow, which the chart's default (no private IPs) blocks.
fn harden(v: &mut Value, links: &Links) {
    let sized = |cpu: &str, memory: &str, cpu_limit: &str, memory_limit: &str| {
        json!({"requests": {"cpu": cpu, "memory": memory},
               "limits": {"cpu": cpu_limit, "memory": memory_limit}})
    };
    set(v, &["hub", "resources"], sized("100m", "256Mi", "1", "1Gi"));
    set(
        v,
        &["proxy", "chp", "resources"],
        sized("50m", "64Mi", "500m", "256Mi"),
    );
    set(
        v,
        &["proxy", "chp", "extraPodSpec"],
        json!({
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        }),
    );
    set(
        v,
        &["scheduling", "userScheduler", "resources"],
        sized("50m", "128Mi", "500m", "256Mi"),
    );
    set(
        v,
        &["prePuller", "resources"],
        sized("10m", "8Mi", "100m", "32Mi"),
    );
    set(
        v,
        &["prePuller", "hook", "resources"],
        sized("10m", "32Mi", "100m", "64Mi"),
    );
    if let (Some(net), Some(uri)) = (&links.network, &links.mlflow_uri) {
        if let Some(ns) = &net.mlflow {
            let port = uri.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            set(
                v,
                &["singleuser", "networkPolicy", "egress"],
                json!([{
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}],
                    "ports": [{"port": port, "protocol": "TCP"}],
                }]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_into_name_and_tag() {
        assert_eq!(
            split_image("quay.io/jupyter/scipy-notebook:2024-10-07"),
            ("quay.io/jupyter/scipy-notebook", "2024-10-07")
        );
        assert_eq!(
            split_image("localhost:5000/img"),
            ("localhost:5000/img", "latest")
        );
        assert_eq!(split_image("img"), ("img", "latest"));
    }

    #[test]
    fn the_clone_init_container_follows_storage_image_and_credentials() {
        let values = json!({"singleuser": {"storage": {"type": "dynamic"}}});
        let ssh = json!({"ssh-privatekey": "key\n"});
        let init = clone_init_container(&values, "4.4.0", "git@h:o/{r}.git", "main", Some(&ssh))
            .expect("an init container");
        assert_eq!(
            init["image"],
            "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"
        );
        assert_eq!(init["volumeMounts"][0]["name"], "volume-{user_server}");
        let env = init["env"].as_array().expect("env");
        assert!(
            env.iter()
                .any(|e| e["name"] == "MLPLAT_DAGS_REPO" && e["value"] == "git@h:o/{{r}}.git")
        );
        assert!(env.iter().any(|e| e["name"] == "GIT_SSH_KEY"
            && e["valueFrom"]["secretKeyRef"]["name"] == DAGS_GIT_SECRET
            && e["valueFrom"]["secretKeyRef"]["optional"] == true));
        assert!(!env.iter().any(|e| e["name"] == "GIT_PASSWORD"));
        // A public repository: no Secret at all.
        let public = clone_init_container(&values, "4.4.0", "https://h/r.git", "main", None)
            .expect("an init container");
        assert!(!public.to_string().contains(DAGS_GIT_SECRET));
        // No home volume, no clone.
        let none = json!({"singleuser": {"storage": {"type": "none"}}});
        assert!(clone_init_container(&none, "4.4.0", "https://h/r.git", "main", None).is_none());
    }

    #[test]
    fn the_clone_script_survives_kubespawner_and_kubernetes_expansion() {
        // KubeSpawner formats it with str.format; Kubernetes expands `$(VAR)` in commands.
        assert!(!CLONE_SH.contains(['{', '}']));
        assert!(!CLONE_SH.contains("$("));
        assert!(CLONE_SH.trim_end().ends_with("exit 0"));
        assert_eq!(kube_format_escape("a{b}"), "a{{b}}");
    }
}
