//! Stage 5: how each chart reaches the cluster, one file per target: [`flux`] (a HelmRelease),
//! [`argocd`] (an Application) or [`rendered`] (the chart inflated by Helm into plain
//! manifests).

pub mod argocd;
pub mod flux;
pub mod rendered;

use crate::config::{Delivery, Loaded};
use crate::render::component::Component;
use crate::render::error::RenderError;

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
        Delivery::Flux => flux::deliver(component, &chart)?,
    }
    Ok(())
}
