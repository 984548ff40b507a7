//! Stage 2: where each tool keeps its data. The embedded default is an in-cluster PostgreSQL
//! (one role and one database per tool, rendered here) and a PVC for MLflow's artifacts; an
//! external PostgreSQL is given by host and port.

pub mod artifacts;
pub mod aws;
mod rds;

use serde_json::{Value, json};

use crate::config::{DatabaseConfig, Loaded, PostgresMode, Tool};
use crate::encode::uri_encode;
use crate::render::component::Component;
use crate::render::component::Labels;
use crate::render::component::render_to;
use crate::render::error::RenderError;
use crate::secrets::{Deriver, Policy, Secret};

pub const POSTGRES_PORT: u16 = 5432;
const POSTGRES_SERVICE: &str = "postgres";

/// How a tool reaches its database.
#[derive(Debug, Clone)]
pub struct DbAccess {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Secret,
    /// `sslmode` for libpq, when the backend sets one.
    pub sslmode: Option<String>,
}

impl DbAccess {
    /// `scheme://user:password@host:port/database[?sslmode=…]`, user and password percent-encoded.
    pub fn uri(&self, scheme: &str) -> Secret {
        self.uri_for(scheme, &self.database)
    }

    /// The same, for another database owned by the same user.
    pub fn uri_for(&self, scheme: &str, database: &str) -> Secret {
        Secret::new(format!(
            "{scheme}://{}:{}@{}:{}/{database}{}",
            uri_encode(&self.user),
            uri_encode(self.password.expose()),
            self.host,
            self.port,
            self.query()
        ))
    }

    /// `?sslmode=…` or nothing.
    pub fn query(&self) -> String {
        self.sslmode
            .as_ref()
            .map(|m| format!("?sslmode={m}"))
            .unwrap_or_default()
    }
}

/// The resolved backends of a platform.
#[derive(Debug)]
pub struct Backends {
    host: String,
    port: u16,
    sslmode: Option<String>,
    in_cluster_namespace: Option<String>,
    /// Every database user the platform needs, with its databases, for the in-cluster init.
    users: Vec<(DbAccess, Vec<String>)>,
    /// The tools whose database is the in-cluster server: their namespaces may connect to it.
    clients: Vec<String>,
    /// PostgreSQL on RDS (`postgres.mode: rds`), see [`rds`].
    rds: Option<rds::RdsBackend>,
}

/// What a tool asks of the database backend: its `database` block, and the databases besides
/// its own it needs (MLflow's auth database).
#[derive(Debug, Clone, Copy)]
pub struct DbRequest<'a> {
    pub tool: Tool,
    pub cfg: &'a DatabaseConfig,
    pub extra_databases: &'a [String],
}

impl DbRequest<'_> {
    /// Where the config sets the tool's database block.
    pub fn pointer(&self) -> String {
        format!("/tools/{}/database", self.tool)
    }
}

impl Backends {
    pub fn resolve(loaded: &Loaded) -> Self {
        let pg = &loaded.platform.backends.postgres;
        let in_cluster_namespace = loaded.namespace("postgres").map(str::to_owned);
        let (host, port, sslmode) = match (pg.mode, &pg.external) {
            (PostgresMode::External, Some(ext)) => (
                ext.host.clone(),
                ext.port.unwrap_or_else(|| {
                    crate::config::defaults::port("/backends/postgres/external/port")
                }),
                ext.sslmode.clone(),
            ),
            _ => (
                format!(
                    "{POSTGRES_SERVICE}.{}.svc",
                    in_cluster_namespace.as_deref().unwrap_or_default()
                ),
                POSTGRES_PORT,
                None,
            ),
        };
        Backends {
            host,
            port,
            sslmode,
            in_cluster_namespace,
            users: Vec::new(),
            clients: Vec::new(),
            rds: rds::RdsBackend::resolve(loaded),
        }
    }

    /// The database of a tool: name and user default to the tool's name; the password is the
    /// one the config gives or is derived from the user name.
    pub fn database(
        &mut self,
        req: &DbRequest<'_>,
        loaded: &Loaded,
        deriver: &Deriver,
    ) -> DbAccess {
        let DbRequest {
            tool,
            cfg,
            extra_databases,
        } = *req;
        let pointer = req.pointer();
        if let Some(rds) = &mut self.rds {
            if let Some(access) = rds.database(req, loaded, deriver) {
                return access;
            }
        }
        let tool = tool.name();
        let user = cfg.user.clone().unwrap_or_else(|| tool.to_owned());
        let password = loaded
            .inputs
            .get(&format!("{pointer}/password"))
            .cloned()
            .unwrap_or_else(|| deriver.derive(&format!("postgres/users/{user}"), Policy::Password));
        let access = DbAccess {
            host: self.host.clone(),
            port: self.port,
            database: cfg.name.clone().unwrap_or_else(|| tool.to_owned()),
            user,
            password,
            sslmode: self.sslmode.clone(),
        };
        let mut dbs = vec![access.database.clone()];
        dbs.extend(extra_databases.iter().cloned());
        self.users.push((access.clone(), dbs));
        self.clients.push(tool.to_owned());
        access
    }

    /// The in-cluster PostgreSQL, when the platform uses one: StatefulSet, Service, the Secret
    /// holding the superuser's and each tool user's password, and the reconcile Job that makes
    /// the server follow the config (see [`reconcile_job`]).
    pub fn render_postgres(
        &self,
        loaded: &Loaded,
        deriver: &Deriver,
    ) -> Result<Option<Component>, RenderError> {
        let Some(namespace) = &self.in_cluster_namespace else {
            return Ok(None);
        };
        if let Some(rds) = &self.rds {
            return rds.render(loaded, deriver, namespace);
        }
        if self.users.is_empty() {
            return Ok(None);
        }
        let cfg = &loaded.platform.backends.postgres.in_cluster;
        let labels = Labels::new(&loaded.platform.platform, "postgres", "database");
        let mut component = Component::new("postgres", namespace, &labels)?;
        let secret_name = "postgres-auth";
        let mut secret = serde_json::Map::new();
        secret.insert(
            "postgres-password".into(),
            json!(deriver.derive(SUPERUSER, Policy::Password).expose()),
        );
        // After a rotation the server still has the previous password until the Job sets the
        // new one, logged in with the previous.
        let generation = deriver.generation(SUPERUSER);
        if generation > 1 {
            secret.insert(
                "postgres-password-previous".into(),
                json!(
                    deriver
                        .derive_generation(SUPERUSER, generation - 1, Policy::Password)
                        .expose()
                ),
            );
        }
        let mut env = vec![
            json!({"name": "PGHOST", "value": format!("{POSTGRES_SERVICE}.{namespace}.svc")}),
            json!({"name": "PGPORT", "value": POSTGRES_PORT.to_string()}),
            json!({"name": "PGUSER", "value": "postgres"}),
            json!({"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "postgres-password"}}}),
        ];
        if generation > 1 {
            env.push(json!({"name": "PGPASSWORD_PREVIOUS", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "postgres-password-previous"}}}));
        }
        env.extend([
            json!({"name": "PGDATABASE", "value": "postgres"}),
            json!({"name": "PGCONNECT_TIMEOUT", "value": "10"}),
            json!({"name": "HOME", "value": "/tmp"}),
        ]);
        let mut databases = Vec::new();
        for (access, dbs) in &self.users {
            let var = password_env(&access.user);
            let key = format!("{}-password", access.user);
            secret.insert(key.clone(), json!(access.password.expose()));
            env.push(json!({"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}));
            databases.push(json!({"user": access.user, "env": var, "databases": dbs}));
        }
        let secrets_yaml = component.secrets(&[(secret_name, Value::Object(secret))])?;
        let script = render_to("postgres/reconcile.sh", &json!({"databases": databases}))?;
        let configmap = "postgres-reconcile";
        component.object(
            "configmap.yaml",
            "postgres/configmap.yaml",
            &json!({"name": configmap, "data": {"reconcile.sh": script}}),
        )?;
        component.object(
            "service.yaml",
            "postgres/service.yaml",
            &json!({"name": POSTGRES_SERVICE, "port": POSTGRES_PORT}),
        )?;
        let superuser_env = vec![
            json!({"name": "POSTGRES_USER", "value": "postgres"}),
            json!({"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/postgres/password"}),
            json!({"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}),
        ];
        let (image, checkov_skips) = crate::render::component::pinned_image(
            loaded,
            cfg.image
                .as_deref()
                .unwrap_or(crate::config::defaults::text(
                    "/backends/postgres/inCluster/image",
                )),
            &[],
        )?;
        component.object(
            "statefulset.yaml",
            "postgres/statefulset.yaml",
            &json!({
                "name": POSTGRES_SERVICE,
                "image": image,
                "port": POSTGRES_PORT,
                "env": superuser_env,
                "storage": cfg.storage.as_deref().unwrap_or(crate::config::defaults::text("/backends/postgres/inCluster/storage")),
                "storage_class": cfg.storage_class,
                "resources": cfg.resources.clone().unwrap_or_else(|| crate::config::defaults::value("/backends/postgres/inCluster/resources").clone()),
                "superuser_secret": secret_name,
                "checkov_skips": checkov_skips,
            }),
        )?;
        reconcile_job(
            &mut component,
            deriver,
            &ReconcileJob {
                loaded,
                file: "job-reconcile.yaml",
                name_prefix: "postgres-reconcile",
                pod_name: "postgres-reconcile",
                instance: None,
                image: cfg
                    .image
                    .as_deref()
                    .unwrap_or(crate::config::defaults::text(
                        "/backends/postgres/inCluster/image",
                    )),
                env,
                configmap,
                script_key: "reconcile.sh",
                script: &script,
                secrets_yaml: &secrets_yaml,
            },
        )?;
        if let Some(net) = crate::render::network::Network::new(loaded) {
            let mut from: Vec<String> = self
                .clients
                .iter()
                .filter_map(|tool| match tool.as_str() {
                    "airflow" => net.airflow.clone(),
                    "mlflow" => net.mlflow.clone(),
                    "jupyterhub" => net.jupyterhub.clone(),
                    _ => None,
                })
                .collect();
            from.extend(
                loaded
                    .platform
                    .network_policies
                    .allow_from
                    .postgres
                    .iter()
                    .cloned(),
            );
            crate::render::network::policies(
                &mut component,
                Some((POSTGRES_SERVICE, POSTGRES_PORT)),
                &from,
            )?;
        }
        Ok(Some(component))
    }
}

/// The superuser's derived password (in-cluster PostgreSQL).
const SUPERUSER: &str = "postgres/superuser";

/// The variable a reconcile Job reads a tool user's password from.
pub(crate) fn password_env(user: &str) -> String {
    format!("DB_PASSWORD_{}", user.to_uppercase().replace('-', "_"))
}

/// What a reconcile Job runs, and where.
pub(crate) struct ReconcileJob<'a> {
    pub loaded: &'a Loaded,
    pub file: &'a str,
    pub name_prefix: &'a str,
    /// `app.kubernetes.io/name` of its pods (not the server's: no Service may select them).
    pub pod_name: &'a str,
    /// The RDS instance, for its annotation.
    pub instance: Option<&'a str>,
    pub image: &'a str,
    pub env: Vec<Value>,
    pub configmap: &'a str,
    pub script_key: &'a str,
    pub script: &'a str,
    pub secrets_yaml: &'a str,
}

/// A Job that runs the reconcile script as the server's administrator. A Job's template cannot
/// change: a new script or password makes a Job with a new name (a keyed hash, so the name tells
/// nothing about the passwords), which `kubectl apply` or Flux then runs.
pub(crate) fn reconcile_job(
    component: &mut Component,
    deriver: &Deriver,
    job: &ReconcileJob<'_>,
) -> Result<(), RenderError> {
    let checksum = deriver.checksum(format!("{}\0{}", job.script, job.secrets_yaml).as_bytes());
    let tag = checksum
        .trim_start_matches("hmac:")
        .get(..8)
        .unwrap_or_default();
    let mut pod_labels = component.labels.all();
    pod_labels["app.kubernetes.io/name"] = json!(job.pod_name);
    let (image, checkov_skips) = crate::render::component::pinned_image(
        job.loaded,
        job.image,
        &[(
            "CKV_K8S_35",
            "psql reads the administrator's password from PGPASSWORD and the script each tool's password from the environment",
        )],
    )?;
    component.object(
        job.file,
        "postgres/job.yaml",
        &json!({
            "name": format!("{}-{tag}", job.name_prefix),
            "pod_labels": pod_labels,
            "instance": job.instance,
            "image": image,
            "env": job.env,
            "configmap": job.configmap,
            "script": job.script_key,
            "checkov_skips": checkov_skips,
        }),
    )?;
    Ok(())
}
