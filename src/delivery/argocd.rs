//! `delivery: argocd`: one Argo CD `Application` per chart, with a Helm source pinned to the
//! chart's version and the values inline (`valuesObject`).
//!
//! Argo CD cannot read chart values from a Secret. The charts' secret values (JupyterHub's
//! proxy token, cookie secret and CryptKeeper key; the community Airflow chart's keys) must
//! reach Helm as values, so an Application that carries any is written as a private file
//! (0600, never printed, shown as fingerprints by `mlplat diff`) instead of being split into a
//! Secret as Flux allows.

use serde_json::json;

use crate::charts::ChartRelease;
use crate::charts::merge;
use crate::config::PlatformConfig;
use crate::render::component::Component;
use crate::render::error::RenderError;

/// Adds `application.yaml` to `component`.
pub fn deliver(
    p: &PlatformConfig,
    component: &mut Component,
    chart: &ChartRelease,
) -> Result<(), RenderError> {
    let settings = p.argocd.clone().unwrap_or_default();
    let has_secret_values = chart
        .secret_values
        .as_object()
        .is_some_and(|m| !m.is_empty());
    // As Flux merges them: the secret values first, the others over them.
    let mut values = chart.secret_values.clone();
    merge(&mut values, &chart.values);
    component.object(
        "application.yaml",
        "argocd/application.yaml",
        &json!({
            "name": format!("{}-{}", p.platform, component.name),
            "argocd_namespace": settings.namespace.as_deref().unwrap_or(crate::config::defaults::text("/argocd/namespace")),
            "project": settings.project.as_deref().unwrap_or(crate::config::defaults::text("/argocd/project")),
            "repository": chart.repository,
            "chart": chart.chart,
            "version": chart.version,
            "release": component.name,
            "values": values,
            "secret_values": has_secret_values,
        }),
    )?;
    if has_secret_values {
        if let Some(file) = component.files.last_mut() {
            file.secret = true;
        }
    }
    Ok(())
}
