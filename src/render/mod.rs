//! The pipeline, end to end, and the types its stages share.
//!
//! [`pipeline`] runs the stages in order over a loaded config: config → backends → secrets →
//! tools → delivery → output ([`render`], [`render_full`], [`render_environments`]). The
//! stages build the shared types of [`component`] (a [`Component`](component::Component) per
//! directory of `out/`, its files and labels), record Secrets as [`secret`] objects, draw
//! network policies with [`network`], and fail with the one [`error::RenderError`].
//!
//! The shared types come before every stage; the pipeline after all of them. A stage imports
//! `render::component` (or `error`, `network`, `secret`), never `render::pipeline`.

pub mod component;
pub mod error;
pub mod network;
pub mod pipeline;
pub mod secret;

pub use error::RenderError;
pub use pipeline::{
    Rendered, Report, charts, check_lock_names, own_images, render, render_environments,
    render_environments_report, render_full, render_report,
};
