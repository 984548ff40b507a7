//! What `plan`, `provision` and `destroy` share: loading the config into the desired AWS
//! state, and the runtime.

use anyhow::Context;

use mlplat::backends::aws::Desired;
use mlplat::config::{self, Loaded};

/// The platforms `--env` selects (every environment without it) and what each asks of AWS.
/// One that asks nothing is left out, with a line that says so.
pub fn load(
    path: &std::path::Path,
    env: Option<&str>,
    verb: &str,
) -> anyhow::Result<Vec<(Loaded, Desired)>> {
    let mut out = Vec::new();
    for loaded in config::load(path, config::Selection::from_env(env))? {
        let desired = Desired::from_config(&loaded);
        if desired.is_empty() {
            say_skipped(&loaded, verb);
            continue;
        }
        out.push((loaded, desired));
    }
    Ok(out)
}

/// The line for a platform without AWS backends.
pub fn say_skipped(loaded: &Loaded, verb: &str) {
    const NONE: &str = "uses no AWS backend (postgres.mode: rds, artifacts.mode: s3)";
    match &loaded.environment {
        Some(env) => eprintln!("mlplat: environment {env} {NONE}: skipped"),
        None => eprintln!(
            "mlplat: {} {NONE}: nothing to {verb}",
            loaded.file.display()
        ),
    }
}

/// The current-thread runtime of an AWS command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    crate::runtime().context("cannot start the async runtime")
}
