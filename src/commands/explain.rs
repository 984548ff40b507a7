//! `mlplat explain`: print the final value of a config key, in the base config or in one
//! environment, and the file and line that set it.

use super::Outcome;
use crate::cli::ExplainArgs;
use crate::config::{explain, layers};

pub fn run(args: &ExplainArgs) -> anyhow::Result<Outcome> {
    let layered = layers::read_layers(&args.config, args.env.as_deref())?;
    print!("{}", explain::explain(&layered, &args.key)?);
    Ok(Outcome::Clean)
}
