//! Apache Airflow, in two chart flavors behind one config block: the official Apache chart
//! (Airflow 3, the default) and the airflow-helm community chart 8.x (Airflow 2, the seed's).
//! Database, DAG sync, users and keys are wired the same way in both; only the value keys differ.

use serde_json::{Map, Value, json};

use super::Links;
use crate::backends::{Backends, DbAccess, DbRequest};
use crate::charts::ChartRelease;
use crate::charts::merge;
use crate::charts::set;
use crate::config::charts::{COMMUNITY_CHART, OFFICIAL_CHART, parse_version};
use crate::config::{AirflowConfig, AirflowFlavor, AirflowUser, DagsConfig, Loaded, Tool};
use crate::render::component::Component;
use crate::render::component::Labels;
use crate::render::error::RenderError;
use crate::secrets::{Deriver, Policy, Secret};

const TOOL: Tool = Tool::Airflow;

/// Where a version of the official chart takes the keys that moved between its releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OfficialKeys {
    /// The default user: `createUserJob.defaultUser` from 1.19 on (its job switched by
    /// `createUserJob.enabled`); `webserver.defaultUser` up to 1.18 (switched by its own
    /// `enabled`), which later versions still read, deprecated.
    user_in_create_user_job: bool,
}

impl OfficialKeys {
    fn of(version: &str) -> Self {
        OfficialKeys {
            user_in_create_user_job: parse_version(version).is_none_or(|v| v >= (1, 19, 0)),
        }
    }
}

const DB_SECRET: &str = "airflow-db-auth";
const GIT_HTTPS_SECRET: &str = "airflow-https-git-secret";
const GIT_SSH_SECRET: &str = "airflow-ssh-git-secret";
const KEYS_SECRET: &str = "airflow-keys";
const USERS_SECRET: &str = "airflow-users";

/// Builds `out/airflow/`.
pub fn build(
    loaded: &Loaded,
    cfg: &AirflowConfig,
    deriver: &Deriver,
    backends: &mut Backends,
    links: &Links,
) -> Result<Component, RenderError> {
    let platform = &loaded.platform.platform;
    let namespace = loaded.namespace_of(TOOL.name());
    let labels = Labels::new(platform, TOOL.name(), "pipelines");
    let mut component = Component::new(TOOL.name(), &namespace, &labels)?;
    let db = backends.database(
        &DbRequest {
            tool: TOOL,
            cfg: &cfg.database,
            extra_databases: &[],
        },
        loaded,
        deriver,
    );

    let keys = Keys::derive(cfg.flavor, deriver);
    let users: Vec<(usize, Secret)> = cfg
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let pw = loaded
                .inputs
                .get(&format!("/tools/airflow/users/{i}/password"))
                .cloned()
                .unwrap_or_else(|| {
                    deriver.derive(&format!("airflow/users/{}", u.username), Policy::Password)
                });
            (i, pw)
        })
        .collect();

    // The Secrets, with the names and keys the seed used, plus what each flavor reads.
    let mut db_data = Map::new();
    db_data.insert("postgresql-password".into(), json!(db.password.expose()));
    if cfg.flavor == AirflowFlavor::Official {
        db_data.insert("connection".into(), json!(db.uri("postgresql").expose()));
    }
    let mut secrets: Vec<(&str, Value)> = vec![(DB_SECRET, Value::Object(db_data))];
    if let Some(dags) = &cfg.dags {
        if let Some(creds) = &dags.credentials {
            let token = loaded.inputs.get("/tools/airflow/dags/credentials/token");
            let token = token.map(Secret::expose).unwrap_or_default();
            secrets.push((
                GIT_HTTPS_SECRET,
                json!({
                    "username": creds.username, "password": token,
                    "GIT_SYNC_USERNAME": creds.username, "GIT_SYNC_PASSWORD": token,
                    "GITSYNC_USERNAME": creds.username, "GITSYNC_PASSWORD": token,
                }),
            ));
        }
        if dags.ssh_key.is_some() {
            let key = loaded
                .inputs
                .get("/tools/airflow/dags/sshKey")
                .map(Secret::expose)
                .unwrap_or_default();
            let key = format!("{}\n", key.trim_end());
            secrets.push((GIT_SSH_SECRET, json!({"gitSshKey": key, "id_rsa": key})));
        }
    }
    secrets.push((KEYS_SECRET, keys_data(&keys)));
    if links.mlflow_uri.is_some() {
        secrets.push(super::mlflow::client_secret(deriver, TOOL.name()));
    }
    if !users.is_empty() {
        let mut data = Map::new();
        for (i, pw) in &users {
            data.insert(password_key(&cfg.users[*i].username), json!(pw.expose()));
        }
        secrets.push((USERS_SECRET, Value::Object(data)));
    }
    component.secrets(&secrets)?;

    let mut chart = match cfg.flavor {
        AirflowFlavor::Official => official(cfg, &db, links),
        AirflowFlavor::Community => community(cfg, &db, &keys, links),
    };
    for file in loaded.values_files.get(TOOL.name()).into_iter().flatten() {
        merge(&mut chart.values, &file.value);
    }
    component.extra_file("values.yaml", crate::yaml::to_yaml_string(&chart.values));
    component.chart = Some(chart);
    Ok(component)
}

/// Airflow's keys, by the Airflow major version the flavor deploys: Airflow 3 (official chart)
/// signs sessions with the API server's secret key and tokens with the JWT secret; Airflow 2
/// (community chart) signs sessions with the webserver's secret key.
enum Keys {
    Airflow3 {
        fernet: Secret,
        api: Secret,
        jwt: Secret,
    },
    Airflow2 {
        fernet: Secret,
        webserver: Secret,
    },
}

impl Keys {
    fn derive(flavor: AirflowFlavor, deriver: &Deriver) -> Self {
        let fernet = fernet_keys(deriver);
        match flavor {
            AirflowFlavor::Official => Keys::Airflow3 {
                fernet,
                api: deriver.derive("airflow/api-secret-key", Policy::Hex64),
                jwt: deriver.derive("airflow/jwt-secret", Policy::Hex64),
            },
            AirflowFlavor::Community => Keys::Airflow2 {
                fernet,
                webserver: deriver.derive("airflow/webserver-secret-key", Policy::Hex64),
            },
        }
    }
}

/// The keys Secret. The official chart reads Airflow 3's keys from it by name (`fernet-key`,
/// `api-secret-key`, `jwt-secret`); the community chart takes its keys as values (see
/// [`community`]), and the Secret keeps them beside the platform's other Secrets.
fn keys_data(keys: &Keys) -> Value {
    match keys {
        Keys::Airflow3 { fernet, api, jwt } => json!({
            "fernet-key": fernet.expose(),
            "api-secret-key": api.expose(),
            "jwt-secret": jwt.expose(),
        }),
        Keys::Airflow2 { fernet, webserver } => json!({
            "fernet-key": fernet.expose(),
            "webserver-secret-key": webserver.expose(),
        }),
    }
}

/// Airflow's Fernet key. After a rotation it is `new,previous`: Airflow encrypts with the first
/// key and still decrypts with the second, so what the database holds stays readable until
/// `airflow rotate-fernet-key` has re-encrypted it.
fn fernet_keys(deriver: &Deriver) -> Secret {
    const NAME: &str = "airflow/fernet-key";
    let current = deriver.derive(NAME, Policy::Fernet);
    match deriver.generation(NAME) {
        1 => current,
        g => Secret::new(format!(
            "{},{}",
            current.expose(),
            deriver
                .derive_generation(NAME, g - 1, Policy::Fernet)
                .expose()
        )),
    }
}

/// MLflow's client credentials (`MLFLOW_TRACKING_USERNAME`/`PASSWORD` from the Secret
/// [`super::mlflow::CLIENT_SECRET`]): as the official chart's `secret` items (`official`), or
/// as Kubernetes env entries.
fn mlflow_client_env(official: bool) -> Value {
    let env = super::mlflow::client_env();
    if !official {
        return Value::Array(env);
    }
    Value::Array(
        env.iter()
            .map(|e| {
                let r = &e["valueFrom"]["secretKeyRef"];
                json!({"envName": e["name"], "secretName": r["name"], "secretKey": r["key"]})
            })
            .collect(),
    )
}

/// The key of a user's password in the users Secret: `<username>-password`.
fn password_key(username: &str) -> String {
    format!("{username}-password")
}

/// The database's `sslmode` when it demands TLS (`require`, `verify-ca`, `verify-full`).
fn tls_mode(db: &DbAccess) -> Option<&str> {
    db.sslmode
        .as_deref()
        .filter(|m| matches!(*m, "require" | "verify-ca" | "verify-full"))
}

fn executor(cfg: &AirflowConfig) -> &str {
    cfg.executor
        .as_deref()
        .unwrap_or(crate::config::defaults::text("/tools/airflow/executor"))
}

/// Values for the official Apache Airflow chart (Airflow 3): every secret by Secret name, and
/// the keys that moved between its releases where `chart.version` takes them.
fn official(cfg: &AirflowConfig, db: &DbAccess, links: &Links) -> ChartRelease {
    let mut chart = ChartRelease::from_config(cfg.chart.as_ref(), OFFICIAL_CHART);
    let keys = OfficialKeys::of(&chart.version);
    let v = &mut chart.values;
    let executor = executor(cfg);
    set(v, &["executor"], json!(executor));
    set(v, &["postgresql", "enabled"], json!(false));
    if !executor.contains("Celery") {
        set(v, &["redis", "enabled"], json!(false));
    }
    set(v, &["data", "metadataSecretName"], json!(DB_SECRET));
    if let Some(mode) = tls_mode(db) {
        // Only read when PgBouncer is enabled (by a values file): then it, too, speaks TLS.
        set(v, &["pgbouncer", "sslmode"], json!(mode));
    }
    set(v, &["fernetKeySecretName"], json!(KEYS_SECRET));
    set(v, &["apiSecretKeySecretName"], json!(KEYS_SECRET));
    set(v, &["jwtSecretName"], json!(KEYS_SECRET));
    if let Some(d) = &cfg.dags {
        official_git_sync(v, d);
    }
    official_user(v, cfg.users.first(), keys);
    if let Some(uri) = &links.mlflow_uri {
        // Every Airflow container: scheduler, workers (through the pod template), API server.
        set(
            v,
            &["env"],
            json!([{"name": "MLFLOW_TRACKING_URI", "value": uri}]),
        );
        // `env` items are only {name, value}: Secret-backed variables go in `secret`, which the
        // chart adds to every Airflow container, the KubernetesExecutor pod template included.
        set(v, &["secret"], mlflow_client_env(true));
    }
    if let Some(ing) = &cfg.ingress {
        // Airflow 3 serves its UI from the API server; `ingress.web` is Airflow 2's webserver.
        let mut host = json!({"name": ing.host});
        if let Some(tls) = &ing.tls_secret {
            set(
                &mut host,
                &["tls"],
                json!({"enabled": true, "secretName": tls}),
            );
        }
        let mut api = json!({"enabled": true, "hosts": [host]});
        if let Some(class) = &ing.class_name {
            set(&mut api, &["ingressClassName"], json!(class));
        }
        set(v, &["ingress", "apiServer"], api);
    }
    if let Some(net) = &links.network {
        // The chart's policies, on; the API server's admits nobody unless told: Airflow's own
        // pods (task pods call its execution API) and, with an ingress, the controller.
        set(v, &["networkPolicies", "enabled"], json!(true));
        let mut from = vec![json!({"podSelector": {}})];
        if cfg.ingress.is_some() {
            from.push(json!({"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": net.ingress_namespace}}}));
        }
        set(
            v,
            &["apiServer", "networkPolicy", "ingress", "from"],
            json!(from),
        );
    }
    chart
}

/// git-sync (v4): the repository, and the Secret holding its credentials.
fn official_git_sync(v: &mut Value, d: &DagsConfig) {
    let mut git = json!({
        "enabled": true,
        "repo": d.repo,
        "branch": d.branch.as_deref().unwrap_or(crate::config::defaults::text("/tools/airflow/dags/branch")),
        "subPath": d.sub_path.as_deref().unwrap_or(crate::config::defaults::text("/tools/airflow/dags/subPath")),
        "period": format!("{}s", d.sync_wait.unwrap_or_else(|| crate::config::defaults::number("/tools/airflow/dags/syncWait"))),
    });
    if d.credentials.is_some() {
        set(&mut git, &["credentialsSecret"], json!(GIT_HTTPS_SECRET));
    }
    if d.ssh_key.is_some() {
        set(&mut git, &["sshKeySecret"], json!(GIT_SSH_SECRET));
    }
    set(v, &["dags", "persistence", "enabled"], json!(false));
    set(v, &["dags", "gitSync"], git);
}

/// The user the create-user Job makes, or no Job at all: the chart's default user is
/// `admin`/`admin`, an account anyone could claim.
fn official_user(v: &mut Value, user: Option<&AirflowUser>, keys: OfficialKeys) {
    let Some(user) = user else {
        if keys.user_in_create_user_job {
            set(v, &["createUserJob", "enabled"], json!(false));
        } else {
            set(v, &["webserver", "defaultUser", "enabled"], json!(false));
        }
        return;
    };
    let first = user.first_name.as_deref().unwrap_or(&user.username);
    let last = user
        .last_name
        .as_deref()
        .unwrap_or(crate::config::defaults::text(
            "/tools/airflow/users/0/lastName",
        ));
    let default_user = json!({"role": user.role, "username": user.username,
        "email": user.email, "firstName": first, "lastName": last});
    if keys.user_in_create_user_job {
        set(v, &["createUserJob", "enabled"], json!(true));
        set(v, &["createUserJob", "defaultUser"], default_user);
    } else {
        let mut default_user = default_user;
        set(&mut default_user, &["enabled"], json!(true));
        set(v, &["webserver", "defaultUser"], default_user);
    }
    // The chart passes the password on the command line from a value; mlplat passes it from
    // the users Secret through the environment instead, so no value holds it.
    set(
        v,
        &["createUserJob", "env"],
        json!([{"name": "AIRFLOW_USER_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": USERS_SECRET, "key": password_key(&user.username)}}}]),
    );
    set(
        v,
        &["createUserJob", "args"],
        json!([
            "bash",
            "-c",
            "exec airflow users create \"$@\" --password \"$AIRFLOW_USER_PASSWORD\"",
            "--",
            "-r",
            user.role,
            "-u",
            user.username,
            "-e",
            user.email,
            "-f",
            first,
            "-l",
            last
        ]),
    );
}

/// Values for the airflow-helm community chart 8.x, as the seed set them.
fn community(cfg: &AirflowConfig, db: &DbAccess, keys: &Keys, links: &Links) -> ChartRelease {
    let mut chart = ChartRelease::from_config(cfg.chart.as_ref(), COMMUNITY_CHART);
    let v = &mut chart.values;
    let executor = executor(cfg);
    set(v, &["airflow", "executor"], json!(executor));
    if executor == "KubernetesExecutor" {
        set(v, &["workers", "enabled"], json!(false));
        set(v, &["flower", "enabled"], json!(false));
        set(v, &["redis", "enabled"], json!(false));
    }
    set(v, &["postgresql", "enabled"], json!(false));
    set(
        v,
        &["externalDatabase"],
        json!({
            "type": "postgres",
            "host": db.host,
            "port": db.port,
            "database": db.database,
            "user": db.user,
            "passwordSecret": DB_SECRET,
            "passwordSecretKey": "postgresql-password",
            "properties": db.query(),
        }),
    );
    if let Some(mode) = tls_mode(db) {
        // The chart's PgBouncer (on by default) connects to the server itself: without this it
        // uses `server_tls_sslmode = prefer`, plaintext when the server offers no TLS.
        set(v, &["pgbouncer", "serverSSL", "mode"], json!(mode));
    }
    if let Some(d) = &cfg.dags {
        let mut git = json!({
            "enabled": true,
            "repo": d.repo,
            "branch": d.branch.as_deref().unwrap_or(crate::config::defaults::text("/tools/airflow/dags/branch")),
            "revision": "HEAD",
            "repoSubPath": d.sub_path.as_deref().unwrap_or(crate::config::defaults::text("/tools/airflow/dags/subPath")),
            "syncWait": d.sync_wait.unwrap_or_else(|| crate::config::defaults::number("/tools/airflow/dags/syncWait")),
        });
        if d.credentials.is_some() {
            set(&mut git, &["httpSecret"], json!(GIT_HTTPS_SECRET));
            set(&mut git, &["httpSecretUsernameKey"], json!("username"));
            set(&mut git, &["httpSecretPasswordKey"], json!("password"));
        }
        if d.ssh_key.is_some() {
            set(&mut git, &["sshSecret"], json!(GIT_SSH_SECRET));
            set(&mut git, &["sshSecretKey"], json!("id_rsa"));
        }
        set(v, &["dags", "persistence", "enabled"], json!(false));
        set(v, &["dags", "gitSync"], git);
    }
    if !cfg.users.is_empty() {
        let mut users = Vec::new();
        let mut templates = Map::new();
        for u in &cfg.users {
            let var = format!("{}_PASSWORD", u.username.to_uppercase().replace('-', "_"));
            users.push(json!({
                "username": u.username, "role": u.role, "email": u.email,
                "firstName": u.first_name.as_deref().unwrap_or(&u.username),
                "lastName": u.last_name.as_deref().unwrap_or(crate::config::defaults::text("/tools/airflow/users/0/lastName")),
                "password": format!("${{{var}}}"),
            }));
            templates.insert(
                var,
                json!({"kind": "secret", "name": USERS_SECRET, "key": password_key(&u.username)}),
            );
        }
        set(v, &["airflow", "users"], Value::Array(users));
        set(v, &["airflow", "usersTemplates"], Value::Object(templates));
        set(v, &["airflow", "usersUpdate"], json!(true));
    }
    if let Some(uri) = &links.mlflow_uri {
        // `airflow.extraEnv` reaches every Airflow container, the KubernetesExecutor pod
        // template included.
        let mut env = vec![json!({"name": "MLFLOW_TRACKING_URI", "value": uri})];
        env.extend(
            mlflow_client_env(false)
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        set(v, &["airflow", "extraEnv"], Value::Array(env));
    }
    if let Some(ing) = &cfg.ingress {
        let mut web = json!({"host": ing.host, "path": ""});
        if let Some(class) = &ing.class_name {
            set(&mut web, &["ingressClassName"], json!(class));
        }
        if let Some(tls) = &ing.tls_secret {
            set(
                &mut web,
                &["tls"],
                json!({"enabled": true, "secretName": tls}),
            );
        }
        set(
            v,
            &["ingress"],
            json!({"enabled": true, "apiVersion": "networking.k8s.io/v1", "web": web}),
        );
    }
    // The chart only takes these keys as values: they travel in the chart's values Secret.
    if let Keys::Airflow2 { fernet, webserver } = keys {
        chart.secret_values = json!({"airflow": {
            "fernetKey": fernet.expose(),
            "webserverSecretKey": webserver.expose(),
        }});
    }
    chart
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_user_moved_to_the_create_user_job_in_1_19() {
        assert!(!OfficialKeys::of("1.18.0").user_in_create_user_job);
        assert!(!OfficialKeys::of("1.18.9").user_in_create_user_job);
        assert!(OfficialKeys::of("1.19.0").user_in_create_user_job);
        assert!(OfficialKeys::of(OFFICIAL_CHART.2).user_in_create_user_job);
    }

    #[test]
    fn a_rotated_fernet_key_keeps_the_previous_one_second() {
        let key = Secret::new("mlplat-test-key-0123456789abcdef0123".to_owned());
        let first = fernet_keys(&Deriver::new(&key, "p"));
        assert!(!first.expose().contains(','));
        let rotated =
            Deriver::new(&key, "p").with_generations([("airflow/fernet-key".to_owned(), 2)].into());
        let both = fernet_keys(&rotated);
        let (new, old) = both.expose().split_once(',').unwrap();
        assert_eq!(old, first.expose());
        assert_ne!(new, old);
        assert_eq!(new.len(), 44);
    }
}
