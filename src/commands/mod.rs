//! The commands. Each returns what happened; `main` turns it into an exit code.
//!
//! Two binaries run them. `mlplat` runs every command here; the ones that need the network
//! (`plan`, `provision`, `destroy`, `images pin`) live in the `mlplat-aws` crate, and `mlplat`
//! hands them to the `mlplat-aws` binary installed beside it ([`aws_binary`]): a render then
//! starts a binary without the AWS SDK, its async runtime, its HTTP clients and its TLS stack,
//! and building `mlplat` builds none of them.

pub mod aws_binary;
pub mod charts;
pub mod diff;
pub mod environments;
pub mod explain;
pub mod init;
pub mod render;
pub mod rotate;

use crate::cli::{Cli, Command};
use crate::render::error::RenderError;

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
        Command::Plan(_) | Command::Provision(_) | Command::Destroy(_) | Command::Images(_) => {
            aws_binary::hand_over()
        }
        Command::Rotate(args) => rotate::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Charts(args) => charts::run(&args),
    }
}

/// Says once, on stderr, which charts' values a render could not check against the chart.
pub fn note_unchecked(config: &std::path::Path, report: &crate::render::Report) {
    if let Some(line) = crate::charts::unchecked_note(config, &report.unchecked) {
        eprintln!("{line}");
    }
}

/// A failed render as the user sees it: a chart problem or a backend not provisioned yet is
/// theirs to fix and says how; any other failure is a bug in mlplat.
pub fn render_error(err: RenderError) -> anyhow::Error {
    if !err.is_users() {
        return anyhow::Error::new(err)
            .context("internal error while rendering (please report it)");
    }
    match err {
        // The chart would refuse the values: problems in the user's files, shown like config
        // errors (or mlplat's own bug, which they say).
        RenderError::Chart(crate::charts::ChartError::Values(d)) => {
            crate::config::ConfigError::Invalid(d).into()
        }
        RenderError::Chart(e) => e.into(),
        RenderError::Lock(e) => e.into(),
        RenderError::Image(e) => e.into(),
        other => anyhow::Error::new(other),
    }
}
