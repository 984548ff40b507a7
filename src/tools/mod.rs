//! Stage 4: each tool's fully resolved objects. A tool builds a
//! [`Component`](crate::render::component::Component): its namespace, Secrets, own manifests,
//! and — for Helm-packaged tools — a [`ChartRelease`](crate::charts::ChartRelease) that the
//! delivery stage turns into Flux or Argo CD objects, or inflates with Helm. [`Links`] says how
//! the tools find each other.

pub mod airflow;
pub mod jupyterhub;
pub mod mlflow;

use crate::config::{Loaded, namespaces};
use crate::render::network;

/// How the tools find each other inside the cluster.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// MLflow's in-cluster URL, when MLflow is enabled.
    pub mlflow_uri: Option<String>,
    /// The DAG repository and branch, when Airflow syncs DAGs from git.
    pub dags: Option<(String, String)>,
    /// The namespaces the charts' network policies let in, when they are on.
    pub network: Option<network::Network>,
}

impl Links {
    pub fn new(loaded: &Loaded) -> Self {
        let p = &loaded.platform;
        let mlflow_uri = namespaces(p)
            .into_iter()
            .find(|(c, _, _)| *c == "mlflow")
            .map(|(_, ns, _)| format!("http://{}.{ns}.svc:{}", mlflow::SERVICE, mlflow::PORT));
        let dags = p
            .tools
            .airflow
            .as_ref()
            .filter(|_| p.enabled("airflow"))
            .and_then(|a| a.dags.as_ref())
            .map(|d| {
                (
                    d.repo.clone(),
                    d.branch.clone().unwrap_or_else(|| {
                        crate::config::defaults::text("/tools/airflow/dags/branch").to_owned()
                    }),
                )
            });
        Links {
            mlflow_uri,
            dags,
            network: network::Network::new(loaded),
        }
    }
}

/// The namespace of an enabled component.
pub fn namespace_of(loaded: &Loaded, component: &str) -> String {
    namespaces(&loaded.platform)
        .into_iter()
        .find(|(c, _, _)| *c == component)
        .map(|(_, ns, _)| ns)
        .unwrap_or_default()
}
