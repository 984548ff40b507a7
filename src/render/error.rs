//! The one error of a render, in two kinds: the user's to fix (a backend not provisioned yet,
//! a chart that refuses the values, the lock, an image with no digest), which the command line
//! shows as it shows a config error, and mlplat's own bugs (a template that does not render,
//! or not to YAML), which it asks to report. [`RenderError::is_users`] tells them apart.

use crate::yaml;

/// What stopped a render.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A bug in a template or in the values handed to it: mlplat's fault, not the user's.
    #[error("template {name}: {source:#}")]
    Template {
        name: String,
        source: minijinja::Error,
    },
    #[error("template {name} does not render to valid YAML: {source}")]
    Yaml {
        name: String,
        source: yaml::YamlError,
    },
    /// A backend the render needs is not there yet (the user's to fix, not a bug).
    #[error("{0}")]
    Unprovisioned(String),
    /// A chart archive or Helm itself (`delivery: rendered`): the user's to fix, not a bug.
    #[error(transparent)]
    Chart(#[from] crate::charts::ChartError),
    /// The lock file names a secret the platform does not derive (the user's to fix).
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// `images.pin: digest` and an image with no digest in the lock (the user's to fix).
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
}

impl RenderError {
    /// Whether the user can fix it (in the config, the lock or AWS); otherwise it is a bug in
    /// mlplat.
    pub fn is_users(&self) -> bool {
        match self {
            RenderError::Template { .. } | RenderError::Yaml { .. } => false,
            RenderError::Unprovisioned(_)
            | RenderError::Chart(_)
            | RenderError::Lock(_)
            | RenderError::Image(_) => true,
        }
    }
}
