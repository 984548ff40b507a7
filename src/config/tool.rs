//! The tools mlplat installs, as a type: [`Tool`]. What the config says of each is reached
//! through [`PlatformConfig::airflow`](super::PlatformConfig::airflow) and its siblings, which
//! answer only for an enabled tool, and each part of the platform's namespace is resolved once,
//! when the config is loaded ([`Namespace`]).

use std::fmt;

use super::{HubDbKind, PlatformConfig, PostgresMode, defaults};

/// One of the three tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tool {
    Airflow,
    Mlflow,
    Jupyterhub,
}

impl Tool {
    /// Every tool, in the order the render builds them.
    pub const ALL: [Tool; 3] = [Tool::Airflow, Tool::Mlflow, Tool::Jupyterhub];

    /// The tool of a name as the config spells it.
    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The tool's name as the config, `out/` and the namespaces spell it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Airflow => "airflow",
            Tool::Mlflow => "mlflow",
            Tool::Jupyterhub => "jupyterhub",
        }
    }
}

impl Tool {
    /// The tool's name as people write it.
    pub fn title(self) -> &'static str {
        match self {
            Tool::Airflow => "Airflow",
            Tool::Mlflow => "MLflow",
            Tool::Jupyterhub => "JupyterHub",
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The namespace of one part of the platform (the in-cluster PostgreSQL or an enabled tool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// `postgres`, or the tool's name.
    pub component: &'static str,
    pub name: String,
    /// The config key that sets it.
    pub pointer: &'static str,
}

/// The namespace of each enabled component: resolved once per load ([`super::Loaded::namespaces`]).
pub fn namespaces(p: &PlatformConfig) -> Vec<Namespace> {
    let ns =
        |explicit: Option<&String>, component: &'static str, pointer: &'static str| Namespace {
            component,
            name: explicit
                .cloned()
                .unwrap_or_else(|| defaults::namespace(&p.platform, component)),
            pointer,
        };
    let mut out = Vec::new();
    if matches!(
        p.backends.postgres.mode,
        PostgresMode::InCluster | PostgresMode::Rds
    ) && uses_postgres(p)
    {
        out.push(ns(
            p.backends.postgres.in_cluster.namespace.as_ref(),
            "postgres",
            "/backends/postgres/inCluster/namespace",
        ));
    }
    if let Some(a) = p.airflow() {
        out.push(ns(
            a.namespace.as_ref(),
            "airflow",
            "/tools/airflow/namespace",
        ));
    }
    if let Some(m) = p.mlflow() {
        out.push(ns(
            m.namespace.as_ref(),
            "mlflow",
            "/tools/mlflow/namespace",
        ));
    }
    if let Some(j) = p.jupyterhub() {
        out.push(ns(
            j.namespace.as_ref(),
            "jupyterhub",
            "/tools/jupyterhub/namespace",
        ));
    }
    out
}

/// Whether any enabled tool keeps its data in Postgres.
pub fn uses_postgres(p: &PlatformConfig) -> bool {
    p.enabled(Tool::Airflow)
        || p.enabled(Tool::Mlflow)
        || p.tools
            .jupyterhub
            .as_ref()
            .is_some_and(|j| p.enabled(Tool::Jupyterhub) && j.database.kind == HubDbKind::Postgres)
}
