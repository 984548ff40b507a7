//! `mlplat explain`: print the final value of a config key, in the base config or in one
//! environment, and the file and line that set it.

use super::Outcome;
use crate::cli::ExplainArgs;
use crate::config::{explain, layers, redaction};

pub fn run(args: &ExplainArgs) -> anyhow::Result<Outcome> {
    let layered = layers::read_layers(&args.config, args.env.as_deref())?;
    learn_secrets(&layered);
    print!("{}", explain::explain(&layered, &args.key)?);
    Ok(Outcome::Clean)
}

/// `explain` shows values as written, references unresolved; a secret may still be written
/// out elsewhere in the config (a token pasted into a URL, a derived password copied from
/// `out/`). So every secret a render would know is learnt first, and redacted wherever it
/// appears: the referenced values and the platform key, read as a render reads them, then,
/// when the config is valid, the derived secrets of a render in memory. Nothing here fails:
/// `explain` works on a config that does not render.
fn learn_secrets(layered: &crate::config::Layered) {
    redaction::learn_references(layered);
    if let Ok(loaded) = crate::config::load_layered(layered.clone()) {
        let _ = crate::render::render(&loaded);
    }
}
