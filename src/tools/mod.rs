//! Stage 4: each tool's fully resolved objects. A tool builds a
//! [`Component`](crate::render::component::Component): its namespace, Secrets, own manifests,
//! and — for Helm-packaged tools — a [`ChartRelease`](crate::charts::ChartRelease) that the
//! delivery stage turns into Flux or Argo CD objects, or inflates with Helm. [`Links`] says how
//! the tools find each other.

pub mod airflow;
pub mod jupyterhub;
pub mod mlflow;

use crate::config::Loaded;
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
        let mlflow_uri = loaded
            .namespace("mlflow")
            .map(|ns| format!("http://{}.{ns}.svc:{}", mlflow::SERVICE, mlflow::PORT));
        let dags = p.airflow().and_then(|a| a.dags.as_ref()).map(|d| {
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
