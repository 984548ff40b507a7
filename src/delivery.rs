//! Stage 5: how each chart reaches the cluster. `flux`: a HelmRepository and a HelmRelease per
//! chart, with the values inline and the secret values in a Secret the release reads through
//! `valuesFrom`, so no file but a Secret's holds a secret. `argocd`: see [`argocd`].
//! `rendered`: see [`rendered`].

pub mod argocd;
pub mod rendered;

use serde_json::json;

use crate::config::{Delivery, Loaded};
use crate::tools::{Component, RenderError};
use crate::yaml::to_yaml_string;

/// Adds the delivery objects of `component`'s chart, if it has one. `inflated`: what
/// `helm template` printed for it (`delivery: rendered`; see [`crate::charts::inflate`]).
pub fn deliver(
    loaded: &Loaded,
    component: &mut Component,
    inflated: Option<&crate::charts::inflate::Inflated>,
) -> Result<(), RenderError> {
    let p = &loaded.platform;
    let Some(chart) = component.chart.clone() else {
        return Ok(());
    };
    match p.delivery {
        Delivery::Argocd => argocd::deliver(p, component, &chart)?,
        Delivery::Rendered => match inflated {
            Some(inflated) => rendered::deliver(component, &chart, inflated)?,
            None => {
                return Err(RenderError::Chart(crate::charts::ChartError::BadManifest {
                    tool: component.name.clone(),
                    chart: crate::charts::label(&chart),
                    message: "nothing: Helm never ran for it (a bug in mlplat)".to_owned(),
                }));
            }
        },
        Delivery::Flux => {
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
        }
    }
    Ok(())
}
