//! What `plan`, `provision` and `destroy` share: loading the config into the desired AWS
//! state, and the runtime.

use anyhow::Context;

use mlplat::backends::aws::Desired;
use mlplat::config::{self, Loaded};

/// The config and what it asks of AWS; `None` (and a note) when it asks nothing.
pub fn load(path: &std::path::Path, verb: &str) -> anyhow::Result<Option<(Loaded, Desired)>> {
    let loaded = config::load_plain(path, verb)?;
    let desired = Desired::from_config(&loaded);
    if desired.is_empty() {
        eprintln!(
            "mlplat: {} uses no AWS backend (postgres.mode: rds, artifacts.mode: s3): nothing to {verb}",
            path.display()
        );
        return Ok(None);
    }
    Ok(Some((loaded, desired)))
}

/// The current-thread runtime of an AWS command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    crate::runtime().context("cannot start the async runtime")
}
