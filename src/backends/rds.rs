//! PostgreSQL on RDS, at render time: hosts and ports come from the lock file that
//! `mlplat provision` wrote (no AWS call). Each tool's user and databases are created by a
//! Kubernetes Job that runs `psql` as the instance's master user with an idempotent script:
//!
//! - `layout: per-tool` (the seed's): the tool's user is its instance's master user and RDS
//!   creates its database; the Job only adds the extra databases (MLflow's auth database).
//! - `layout: shared`: one instance; the Job creates every tool's role and databases. With
//!   `manageMasterPassword` the master password lives in Secrets Manager only: the Job reads it
//!   from the Secret `rds-master-<instance>` (key `password`), which the cluster must sync from
//!   the ARN in the lock file; mlplat does not write it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{DbAccess, DbRequest, ReconcileJob, password_env, reconcile_job};
use crate::backends::aws::master_password;
use crate::config::aws::{instance_for, rds_config};
use crate::config::{Loaded, RdsLayout};
use crate::render::component::Component;
use crate::render::component::Labels;
use crate::render::component::render_to;
use crate::render::error::RenderError;
use crate::secrets::{Deriver, Policy};

const SECRET: &str = "rds-init-auth";
const CONFIGMAP: &str = "rds-init";

/// One tool's database on an instance.
#[derive(Debug, Clone)]
struct ToolDb {
    instance: String,
    access: DbAccess,
    /// Its databases, which the Job creates when missing (RDS creates the per-tool layout's
    /// first one) and closes to other roles.
    create: Vec<String>,
}

/// The RDS backend of a render.
#[derive(Debug)]
pub struct RdsBackend {
    layout: RdsLayout,
    sslmode: String,
    manage_master_password: bool,
    master_username: String,
    tools: Vec<ToolDb>,
}

impl RdsBackend {
    pub fn resolve(loaded: &Loaded) -> Option<RdsBackend> {
        let rds = rds_config(loaded)?;
        Some(RdsBackend {
            layout: rds.layout,
            sslmode: rds.sslmode.clone().unwrap_or_else(|| {
                crate::config::defaults::text("/backends/postgres/rds/sslmode").into()
            }),
            manage_master_password: rds.manage_master_password,
            master_username: rds
                .master_username
                .clone()
                .unwrap_or_else(|| crate::config::defaults::DEFAULT_SHARED_MASTER.into()),
            tools: Vec::new(),
        })
    }

    /// The database of `tool` on its instance. The host is empty when the lock file lacks
    /// the instance: [`RdsBackend::render`] then stops the render with what to do.
    pub fn database(
        &mut self,
        req: &DbRequest<'_>,
        loaded: &Loaded,
        deriver: &Deriver,
    ) -> Option<DbAccess> {
        let (tool, cfg, extra_databases) = (req.tool.name(), req.cfg, req.extra_databases);
        let pointer = req.pointer();
        let pointer = pointer.as_str();
        let rds = rds_config(loaded)?;
        let instance = instance_for(loaded, rds, tool);
        let (host, port) = loaded
            .lock
            .aws
            .as_ref()
            .and_then(|a| a.rds.get(&instance))
            .map(|i| (i.endpoint.clone(), i.port))
            .unwrap_or_default();
        let user = cfg.user.clone().unwrap_or_else(|| tool.to_owned());
        let database = cfg.name.clone().unwrap_or_else(|| tool.to_owned());
        let (password, mut create) = match self.layout {
            RdsLayout::PerTool => (
                master_password(loaded, rds, deriver, &instance, Some(pointer))?,
                vec![database.clone()],
            ),
            RdsLayout::Shared => (
                loaded
                    .inputs
                    .get(&format!("{pointer}/password"))
                    .cloned()
                    .unwrap_or_else(|| {
                        deriver.derive(&format!("postgres/users/{user}"), Policy::Password)
                    }),
                vec![database.clone()],
            ),
        };
        create.extend(extra_databases.iter().cloned());
        let access = DbAccess {
            host,
            port,
            database,
            user,
            password,
            sslmode: Some(self.sslmode.clone()),
        };
        self.tools.push(ToolDb {
            instance,
            access: access.clone(),
            create,
        });
        Some(access)
    }

    /// The init Jobs, their script and Secret, in the `postgres` component's namespace.
    pub fn render(
        &self,
        loaded: &Loaded,
        deriver: &Deriver,
        namespace: &str,
    ) -> Result<Option<Component>, RenderError> {
        let missing: Vec<&str> = self
            .tools
            .iter()
            .filter(|t| t.access.host.is_empty())
            .map(|t| t.instance.as_str())
            .collect();
        if let Some(first) = missing.first() {
            return Err(RenderError::Unprovisioned(format!(
                "{}: backends.postgres.mode is rds, but the lock file {} has no endpoint for RDS instance {first}: run `mlplat provision -c {}{}` first (it needs AWS credentials; render and --check then work offline from the lock file)",
                loaded.label(),
                loaded.lock_path().display(),
                loaded.file.display(),
                loaded
                    .environment
                    .as_ref()
                    .map(|e| format!(" --env {e}"))
                    .unwrap_or_default(),
            )));
        }
        // Instances in a stable order, each with the tools that need something created.
        let mut by_instance: BTreeMap<&str, Vec<&ToolDb>> = BTreeMap::new();
        for t in self.tools.iter().filter(|t| !t.create.is_empty()) {
            by_instance.entry(&t.instance).or_default().push(t);
        }
        if by_instance.is_empty() {
            return Ok(None);
        }
        let labels = Labels::new(&loaded.platform.platform, "postgres", "database-init");
        let mut component = Component::new("postgres", namespace, &labels)?;
        let rds = rds_config(loaded);
        let mut secret = serde_json::Map::new();
        let mut scripts = serde_json::Map::new();
        let mut jobs = Vec::new();
        for (instance, tools) in &by_instance {
            let first = &tools[0].access;
            let (master_user, master_key, master_secret) = match self.layout {
                RdsLayout::PerTool => (
                    first.user.clone(),
                    format!("{instance}-master"),
                    SECRET.to_owned(),
                ),
                RdsLayout::Shared => (
                    self.master_username.clone(),
                    if self.manage_master_password {
                        "password".to_owned()
                    } else {
                        format!("{instance}-master")
                    },
                    if self.manage_master_password {
                        format!("rds-master-{instance}")
                    } else {
                        SECRET.to_owned()
                    },
                ),
            };
            if master_secret == SECRET {
                let pw = match self.layout {
                    RdsLayout::PerTool => first.password.clone(),
                    RdsLayout::Shared => match rds
                        .and_then(|r| master_password(loaded, r, deriver, instance, None))
                    {
                        Some(p) => p,
                        None => continue,
                    },
                };
                secret.insert(master_key.clone(), json!(pw.expose()));
            }
            let mut env = vec![
                json!({"name": "PGHOST", "value": first.host}),
                json!({"name": "PGPORT", "value": first.port.to_string()}),
                json!({"name": "PGUSER", "value": master_user}),
                json!({"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": master_secret, "key": master_key}}}),
                json!({"name": "PGDATABASE", "value": "postgres"}),
                json!({"name": "PGSSLMODE", "value": self.sslmode}),
                json!({"name": "PGCONNECT_TIMEOUT", "value": "10"}),
                json!({"name": "HOME", "value": "/tmp"}),
            ];
            let mut databases = Vec::new();
            for t in tools {
                let var = password_env(&t.access.user);
                let key = format!("{}-password", t.access.user);
                secret.insert(key.clone(), json!(t.access.password.expose()));
                env.push(json!({"name": var, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}));
                databases.push(json!({"user": t.access.user, "env": var, "databases": t.create}));
            }
            let script = render_to("postgres/reconcile.sh", &json!({"databases": databases}))?;
            let script_key = format!("{instance}.sh");
            scripts.insert(script_key.clone(), json!(script));
            jobs.push((instance.to_string(), env, script_key, script));
        }
        let secrets_yaml = component.secrets(&[(SECRET, Value::Object(secret))])?;
        component.object(
            "configmap.yaml",
            "postgres/configmap.yaml",
            &json!({"name": CONFIGMAP, "data": scripts}),
        )?;
        for (instance, env, script_key, script) in jobs {
            reconcile_job(
                &mut component,
                deriver,
                &ReconcileJob {
                    loaded,
                    file: &format!("job-{instance}.yaml"),
                    name_prefix: &format!("rds-init-{instance}"),
                    pod_name: "rds-init",
                    instance: Some(&instance),
                    image: crate::config::defaults::text("/backends/postgres/inCluster/image"),
                    env,
                    configmap: CONFIGMAP,
                    script_key: &script_key,
                    script: &script,
                    secrets_yaml: &secrets_yaml,
                },
            )?;
        }
        let instances: Vec<&str> = by_instance.keys().copied().collect();
        self.reference_managed_master_passwords(loaded, deriver, &mut component, &instances)?;
        if crate::render::network::Network::new(loaded).is_some() {
            crate::render::network::policies(&mut component, None, &[])?;
        }
        Ok(Some(component))
    }

    /// With `manageMasterPassword`, RDS keeps the master password in Secrets Manager and the
    /// init Job reads Secret `rds-master-<instance>`. In `external-secrets` mode mlplat makes
    /// that Secret from RDS's own secret (its ARN is in the lock), so no value passes through
    /// mlplat; in `plain` mode the cluster must provide it.
    fn reference_managed_master_passwords(
        &self,
        loaded: &Loaded,
        deriver: &Deriver,
        component: &mut Component,
        instances: &[&str],
    ) -> Result<(), RenderError> {
        let external = loaded.platform.secrets.mode == crate::config::SecretMode::ExternalSecrets;
        if !(external && self.layout == RdsLayout::Shared && self.manage_master_password) {
            return Ok(());
        }
        let Some(aws) = loaded.lock.aws.as_ref() else {
            return Ok(());
        };
        let mut list = Vec::new();
        for instance in instances {
            let Some(arn) = aws
                .rds
                .get(*instance)
                .and_then(|r| r.master_user_secret_arn.clone())
            else {
                continue;
            };
            list.push(json!({
                "name": format!("rds-master-{instance}"),
                "remote_key": arn,
                "note": format!("RDS keeps the master password of {instance} in Secrets Manager; mlplat never sees it."),
                "checksum": deriver.checksum(arn.as_bytes()),
                "data": [{"secretKey": "password", "remoteRef": {"key": arn, "property": "password"}}],
            }));
        }
        if !list.is_empty() {
            component.object(
                "rds-master-secrets.yaml",
                "external-secrets/externalsecret.yaml",
                &json!({"secrets": list, "store": crate::render::secret::STORE}),
            )?;
        }
        Ok(())
    }
}
