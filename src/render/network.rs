//! NetworkPolicies for the servers mlplat renders itself, and the namespaces each tool's chart
//! policies open to the others. MLflow accepts connections from Airflow's and JupyterHub's
//! namespaces (and the ingress controller's when it has an ingress); the in-cluster PostgreSQL
//! from the namespaces of the tools that use it; each from its own namespace (its Jobs). Egress
//! is left open. `networkPolicies.enabled: false` renders none of it.

use serde_json::json;

use super::component::Component;
use super::error::RenderError;
use crate::config::Loaded;

/// The namespace of each enabled component, when network policies are on.
#[derive(Debug, Clone)]
pub struct Network {
    pub ingress_namespace: String,
    pub airflow: Option<String>,
    pub mlflow: Option<String>,
    pub jupyterhub: Option<String>,
}

impl Network {
    /// `None` when the config turns network policies off.
    pub fn new(loaded: &Loaded) -> Option<Self> {
        let cfg = &loaded.platform.network_policies;
        if !cfg.enabled() {
            return None;
        }
        let of = |component: &str| loaded.namespace(component).map(str::to_owned);
        Some(Network {
            ingress_namespace: cfg.ingress_namespace().to_owned(),
            airflow: of("airflow"),
            mlflow: of("mlflow"),
            jupyterhub: of("jupyterhub"),
        })
    }
}

/// Adds `networkpolicy.yaml` to `component`: the pods of `server` (its Service's name and port),
/// when there is one, accept connections from `from` and the component's own namespace; every
/// other pod mlplat renders in that namespace accepts none.
pub fn policies(
    component: &mut Component,
    server: Option<(&str, u16)>,
    from: &[String],
) -> Result<(), RenderError> {
    let mut namespaces: Vec<String> = vec![component.namespace.clone()];
    for ns in from {
        if !namespaces.contains(ns) {
            namespaces.push(ns.clone());
        }
    }
    let selector = component.labels.selector();
    let deny_selector = json!({
        "app.kubernetes.io/instance": selector["app.kubernetes.io/instance"],
        "app.kubernetes.io/managed-by": "mlplat",
    });
    component.object(
        "networkpolicy.yaml",
        "networkpolicy.yaml",
        &json!({
            "server": server.map(|(name, _)| name),
            "port": server.map(|(_, port)| port),
            "from_namespaces": namespaces,
            "deny_name": format!("{}-default-deny", component.name),
            "deny_selector": deny_selector,
        }),
    )?;
    Ok(())
}
