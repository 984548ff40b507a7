//! Stage 2: where each tool keeps its data. The embedded default is an in-cluster PostgreSQL
//! (one role and one database per tool, rendered here) and a PVC for MLflow's artifacts; an
//! external PostgreSQL is given by host and port.

pub mod artifacts;
mod rds;

use serde_json::{Value, json};

use crate::config::{DatabaseConfig, Loaded, PostgresMode, namespaces};
use crate::secrets::{Deriver, Policy, Secret, uri_encode};
use crate::tools::{Component, Labels, RenderError, render_to};

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

impl Backends {
    pub fn resolve(loaded: &Loaded) -> Self {
        let pg = &loaded.platform.backends.postgres;
        let in_cluster_namespace = namespaces(&loaded.platform)
            .into_iter()
            .find(|(c, _, _)| *c == "postgres")
            .map(|(_, ns, _)| ns);
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

    /// The database of `tool`: name and user default to the tool's name; the password is the
    /// one the config gives (`pointer` is where) or is derived from the user name.
    pub fn database(
        &mut self,
        tool: &str,
        cfg: &DatabaseConfig,
        pointer: &str,
        loaded: &Loaded,
        deriver: &Deriver,
        extra_databases: &[String],
    ) -> DbAccess {
        if let Some(rds) = &mut self.rds {
            if let Some(access) = rds.database(tool, cfg, pointer, loaded, deriver, extra_databases)
            {
                return access;
            }
        }
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

    /// The in-cluster PostgreSQL, when the platform uses one: StatefulSet, Service, init
    /// script and the Secret holding the superuser's and each tool user's password.
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
        let mut secret = serde_json::Map::new();
        secret.insert(
            "postgres-password".into(),
            json!(
                deriver
                    .derive("postgres/superuser", Policy::Password)
                    .expose()
            ),
        );
        let mut databases = Vec::new();
        for (access, dbs) in &self.users {
            let env = format!(
                "DB_PASSWORD_{}",
                access.user.to_uppercase().replace('-', "_")
            );
            secret.insert(
                format!("{}-password", access.user),
                json!(access.password.expose()),
            );
            databases.push(json!({"user": access.user, "env": env, "databases": dbs}));
        }
        let secret_name = "postgres-auth";
        let secrets_yaml = component.secrets(&[(secret_name, Value::Object(secret))])?;
        let init = render_to("postgres/init.sh", &json!({"databases": databases}))?;
        let configmap = "postgres-init";
        let configmap_yaml = component.object(
            "configmap.yaml",
            "postgres/configmap.yaml",
            &json!({"name": configmap, "data": {"10-mlplat-databases.sh": init}}),
        )?;
        let mut env = vec![
            json!({"name": "POSTGRES_USER", "value": "postgres"}),
            json!({"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/postgres/password"}),
            json!({"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}),
        ];
        for (access, _) in &self.users {
            env.push(json!({
                "name": format!("DB_PASSWORD_{}", access.user.to_uppercase().replace('-', "_")),
                "valueFrom": {"secretKeyRef": {"name": secret_name, "key": format!("{}-password", access.user)}},
            }));
        }
        component.object(
            "service.yaml",
            "postgres/service.yaml",
            &json!({"name": POSTGRES_SERVICE, "port": POSTGRES_PORT}),
        )?;
        component.object(
            "statefulset.yaml",
            "postgres/statefulset.yaml",
            &json!({
                "name": POSTGRES_SERVICE,
                "image": cfg.image.as_deref().unwrap_or(crate::config::defaults::text("/backends/postgres/inCluster/image")),
                "port": POSTGRES_PORT,
                "env": env,
                "configmap": configmap,
                "storage": cfg.storage.as_deref().unwrap_or(crate::config::defaults::text("/backends/postgres/inCluster/storage")),
                "storage_class": cfg.storage_class,
                "resources": cfg.resources.clone().unwrap_or_else(|| crate::config::defaults::value("/backends/postgres/inCluster/resources").clone()),
                "superuser_secret": secret_name,
                "checkov_skips": crate::tools::checkov_skips(&[
                    crate::tools::SKIP_TAG_PIN[0],
                    crate::tools::SKIP_TAG_PIN[1],
                    ("CKV_K8S_35", "the image's init script reads each tool's password from the environment"),
                ]),
                "checksums": {
                    "checksum/secret": deriver.checksum(secrets_yaml.as_bytes()),
                    "checksum/init": crate::secrets::fingerprint(configmap_yaml.as_bytes()),
                },
            }),
        )?;
        if let Some(net) = crate::tools::network::Network::new(loaded) {
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
            crate::tools::network::policies(
                &mut component,
                Some((POSTGRES_SERVICE, POSTGRES_PORT)),
                &from,
            )?;
        }
        Ok(Some(component))
    }
}
