//! The commands. Each returns what happened; `main` turns it into an exit code.
//!
//! Two binaries run them. `mlplat` runs every command but the AWS ones (`plan`, `provision`,
//! `destroy`), which it hands to `mlplat-aws` installed beside it: a render then starts a
//! binary without the AWS SDK, its async runtime and its TLS stack (a third of the size, and a
//! millisecond and a half less per run, measured).

mod aws_binary;
mod aws_common;
pub mod charts;
pub mod destroy;
pub mod diff;
mod environments;
pub mod explain;
pub mod init;
pub mod plan;
pub mod provision;
pub mod render;
pub mod rotate;

use crate::cli::{Cli, Command};
use crate::tools::RenderError;
pub use aws_common::parse_duration;

/// How a successful command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or already up to date: exit 0.
    Clean,
    /// The output differs from a fresh render: exit 1.
    Drift,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Drift => 1,
        }
    }
}

/// Runs a parsed command line: the `mlplat` binary.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Render(args) => render::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Plan(_) | Command::Provision(_) | Command::Destroy(_) => aws_binary::hand_over(),
        Command::Rotate(args) => rotate::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Charts(args) => charts::run(&args),
    }
}

/// Runs a parsed command line: the `mlplat-aws` binary, which `mlplat` starts for the AWS
/// commands.
pub fn run_aws(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Provision(args) => provision::run(&args),
        Command::Destroy(args) => destroy::run(&args),
        _ => anyhow::bail!(
            "`{}` runs the AWS commands only (plan, provision, destroy): run `mlplat` for the others",
            aws_binary::NAME
        ),
    }
}

/// Says once, on stderr, which charts' values a render could not check against the chart.
pub(crate) fn note_unchecked(config: &std::path::Path, report: &crate::render::Report) {
    if let Some(line) = crate::charts::unchecked_note(config, &report.unchecked) {
        eprintln!("{line}");
    }
}

/// A failed render as the user sees it: a chart problem or a backend not provisioned yet is
/// theirs to fix and says how; any other failure is a bug in mlplat.
pub(crate) fn render_error(err: RenderError) -> anyhow::Error {
    match err {
        // The chart would refuse the values: problems in the user's files, shown like config
        // errors (or mlplat's own bug, which they say).
        RenderError::Chart(crate::charts::ChartError::Values(d)) => {
            crate::config::ConfigError::Invalid(d).into()
        }
        RenderError::Chart(e) => e.into(),
        e @ RenderError::Unprovisioned(_) => anyhow::Error::new(e),
        other => {
            anyhow::Error::new(other).context("internal error while rendering (please report it)")
        }
    }
}
