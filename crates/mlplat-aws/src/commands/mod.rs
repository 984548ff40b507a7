//! The commands `mlplat` hands to `mlplat-aws`: the ones that need the network.

mod common;
pub mod destroy;
pub mod images;
pub mod plan;
pub mod provision;

use mlplat::cli::{Cli, Command};
use mlplat::commands::Outcome;
use mlplat::commands::aws_binary::NAME;

/// Runs a parsed command line: the `mlplat-aws` binary, which `mlplat` starts for the
/// commands that need the network.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Provision(args) => provision::run(&args),
        Command::Destroy(args) => destroy::run(&args),
        Command::Images(args) => images::run(&args),
        _ => anyhow::bail!(
            "`{NAME}` runs the commands that need the network only (plan, provision, destroy, images pin): run `mlplat` for the others"
        ),
    }
}
