//! `delivery: flux`: a HelmRepository and a HelmRelease per chart, with the values inline and
//! the secret values in a Secret the release reads through `valuesFrom`, so no file but a
//! Secret's holds a secret.

use serde_json::json;

use crate::charts::ChartRelease;
use crate::render::component::Component;
use crate::render::error::RenderError;
use crate::yaml::to_yaml_string;

/// Adds `helmrepository.yaml`, `helmrelease.yaml` and, when the chart has secret values,
/// `helm-values.yaml` (their Secret) to `component`.
pub fn deliver(component: &mut Component, chart: &ChartRelease) -> Result<(), RenderError> {
    let name = component.name.clone();
    let secret_values_name = format!("{name}-helm-values");
    let has_secret_values = chart
        .secret_values
        .as_object()
        .is_some_and(|m| !m.is_empty());
    if has_secret_values {
        component.secrets_file(
            "helm-values.yaml",
            &[(
                secret_values_name.as_str(),
                json!({"values.yaml": to_yaml_string(&chart.secret_values)}),
            )],
        )?;
    }
    component.object(
        "helmrepository.yaml",
        "flux/helmrepository.yaml",
        &json!({"name": name, "url": chart.repository, "oci": chart.repository.starts_with("oci://")}),
    )?;
    component.object(
        "helmrelease.yaml",
        "flux/helmrelease.yaml",
        &json!({
            "name": name,
            "chart": chart.chart,
            "version": chart.version,
            "values": chart.values,
            "secret_values": has_secret_values.then_some(secret_values_name),
        }),
    )?;
    Ok(())
}
