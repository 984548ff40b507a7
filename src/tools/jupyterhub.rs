//! JupyterHub through the zero-to-jupyterhub chart (z2jh 4.x): hub database from the backends,
//! derived proxy token, cookie secret and CryptKeeper key (otherwise every offline render makes
//! new ones), an authenticator that lets in only the listed users, per-user storage, a
//! JupyterLab and a VS Code profile, and the platform's DAG repository cloned into each home.

use serde_json::{Map, Value, json};

use super::{
    ChartRelease, Component, Labels, Links, RenderError, merge, namespace_of, set, shell_quote,
};
use crate::backends::Backends;
use crate::config::{HubAuthKind, HubDbKind, JupyterhubConfig, Loaded};
use crate::secrets::{Deriver, Policy, Secret};

pub const CHART: (&str, &str, &str) =
    ("https://hub.jupyter.org/helm-chart/", "jupyterhub", "4.4.0");
/// code-server with jupyter-server-proxy and jupyter-vscode-proxy, serving `/vscode/`.
pub const VSCODE_IMAGE: &str = "ghcr.io/mlplat/jupyter-vscode:4.4.0";
const DB_SECRET: &str = "jupyterhub-db-auth";
const OAUTH_SECRET: &str = "jupyterhub-oauth";

/// Builds `out/jupyterhub/`.
pub fn build(
    loaded: &Loaded,
    cfg: &JupyterhubConfig,
    deriver: &Deriver,
    backends: &mut Backends,
    links: &Links,
) -> Result<Component, RenderError> {
    let platform = &loaded.platform.platform;
    let namespace = namespace_of(loaded, "jupyterhub");
    let labels = Labels::new(platform, "jupyterhub", "notebooks");
    let mut component = Component::new("jupyterhub", &namespace, &labels)?;
    let mut chart = ChartRelease::from_config(cfg.chart.as_ref(), CHART);
    let v = &mut chart.values;
    let mut secrets: Vec<(&str, Value)> = Vec::new();

    set(v, &["proxy", "service", "type"], json!("ClusterIP"));
    match cfg.database.kind {
        HubDbKind::Postgres => {
            let db_cfg = crate::config::DatabaseConfig {
                name: cfg.database.name.clone(),
                user: cfg.database.user.clone(),
                password: cfg.database.password.clone(),
            };
            let db = backends.database(
                "jupyterhub",
                &db_cfg,
                "/tools/jupyterhub/database",
                loaded,
                deriver,
                &[],
            );
            // No password in the URL: libpq reads PGPASSWORD, which comes from a Secret.
            let url = format!(
                "postgresql+psycopg2://{}@{}:{}/{}{}",
                crate::secrets::uri_encode(&db.user),
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

    let su = &cfg.singleuser;
    if let Some(image) = &su.image {
        let (name, tag) = split_image(image);
        set(
            v,
            &["singleuser", "image"],
            json!({"name": name, "tag": tag}),
        );
    }
    let mut storage =
        json!({"type": "dynamic", "capacity": su.storage.as_deref().unwrap_or("10Gi")});
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
    }
    if let (true, Some((repo, branch))) = (su.clone_dags.unwrap_or(true), &links.dags) {
        set(
            v,
            &[
                "singleuser",
                "lifecycleHooks",
                "postStart",
                "exec",
                "command",
            ],
            json!(["sh", "-c", clone_script(repo, branch)]),
        );
    }
    if cfg.vscode.enabled != Some(false) {
        let image = cfg.vscode.image.as_deref().unwrap_or(VSCODE_IMAGE);
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
        set(v, &["ingress"], ingress);
    }
    for file in loaded.values_files.get("jupyterhub").into_iter().flatten() {
        merge(v, &file.value);
    }

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
    chart.secret_values = sv;

    if !secrets.is_empty() {
        component.secrets(&secrets)?;
    }
    component.extra_file("values.yaml", crate::yaml::to_yaml_string(&chart.values));
    component.chart = Some(chart);
    Ok(component)
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

/// The postStart hook: clone the DAG repository into `~/dags` once. It runs in the background
/// (postStart blocks the container until it returns), never prompts for credentials, clones
/// into a temporary directory first so an interrupted clone is not mistaken for a finished one,
/// and always exits 0.
fn clone_script(repo: &str, branch: &str) -> String {
    format!(
        "test -e \"$HOME/dags\" || (GIT_TERMINAL_PROMPT=0 timeout 300 git clone --quiet --depth 1 --branch {} {} \"$HOME/.dags-clone\" >/dev/null 2>&1 && mv \"$HOME/.dags-clone\" \"$HOME/dags\" || rm -rf \"$HOME/.dags-clone\") >/dev/null 2>&1 &\nexit 0",
        shell_quote(branch),
        shell_quote(repo)
    )
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
    fn the_clone_hook_quotes_the_repository() {
        let s = clone_script("https://x/it's.git", "main");
        assert!(s.contains("'https://x/it'\\''s.git'"));
        assert!(s.ends_with("exit 0"));
    }
}
