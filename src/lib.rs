//! mlplat: compile one `platform.yaml` into the manifests of an ML platform on Kubernetes.
//!
//! # Module map
//!
//! Bottom to top; a module imports only from its own layer and the layers below it
//! (`tests/architecture.rs` checks that, and that the imports have no cycle).
//!
//! | layer | modules |
//! |---|---|
//! | foundations | [`console`] (the only way out to the terminal), [`redact`] (known secrets become fingerprints), [`encode`] (hex, sha256, URI encoding), [`yaml`] (YAML with source positions, written deterministically), [`diagnostic`] (an error at a file, line and key), [`files`] (reading what a user names, within limits), [`templates`] (the minijinja templates), [`secrets`] (the key, and every secret derived from it) |
//! | inputs | [`lock`] (the lock file: what provision, rotate, charts pull and images pin recorded), [`config`] (the config: read, layered per environment, validated, with its defaults) |
//! | choices | [`charts`] (chart archives, pins, values checks), [`images`] (image references, by tag or digest) |
//! | shared types | [`render::component`], [`render::error`], [`render::network`], [`render::secret`] |
//! | stages, as the pipeline runs them | [`backends`] (PostgreSQL in the cluster or on RDS, artifacts on a PVC or in S3) → [`tools`] (Airflow, MLflow, JupyterHub) → [`secret_delivery`] (what `secrets.mode` makes of each component's Secrets) → [`delivery`] (Flux, Argo CD or rendered manifests) → [`output`] (`out/`, written atomically or compared) and [`diff`]; every secret is derived by [`secrets`], the foundation they share |
//! | the pipeline | [`render`] ([`render::pipeline`] runs the stages in order) |
//! | the command line | [`cli`] (arguments), [`commands`] (one file per command) |
//!
//! The commands that need the network (`plan`, `provision`, `destroy`, `images pin`) are in the
//! `mlplat-aws` crate (`crates/mlplat-aws`), which builds on this one; this crate has no AWS
//! SDK, async runtime or HTTP client.
//!
//! Nothing leaves the process unredacted: inside this crate `println!`, `eprintln!`, `print!`
//! and `eprint!` are [`console`]'s, which pass every text through [`redact`] (known secrets
//! become fingerprints, control characters are escaped); clippy forbids the standard ones here.
#![warn(clippy::disallowed_macros, clippy::disallowed_methods)]
// The module map above names the crate-private modules too.
#![allow(rustdoc::private_intra_doc_links)]

#[macro_use]
pub mod console;

pub mod backends;
pub mod charts;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod delivery;
pub(crate) mod diagnostic;
pub(crate) mod diff;
pub mod encode;
pub(crate) mod files;
pub mod images;
pub mod lock;
pub mod output;
pub(crate) mod redact;
pub mod render;
pub(crate) mod secret_delivery;
pub mod secrets;
pub(crate) mod templates;
pub mod tools;
pub mod yaml;

/// The body of both binaries' `main`: parse the command line, run it with `run`, and turn the
/// result into the exit code (0 done, 1 drift or pending changes, 2 error).
pub fn main_with(run: fn(cli::Cli) -> anyhow::Result<commands::Outcome>) -> std::process::ExitCode {
    use clap::Parser;
    install_panic_hook();
    // Known before anything is read: the key in the environment is never printed, whatever
    // file an error quotes.
    if let Some(key) = std::env::var_os(config::KEY_ENV) {
        redact::secret(&key.to_string_lossy());
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version: clap's own output
        Err(e) => {
            // Through the redacting console like any error (the arguments are quoted in it).
            eprint!("{}", e.render());
            return std::process::ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(outcome) => std::process::ExitCode::from(outcome.code()),
        Err(err) => {
            eprintln!("{}", error_report(&err));
            std::process::ExitCode::from(2)
        }
    }
}

/// At most this many problems are printed; the rest are counted.
const MAX_SHOWN: usize = 20;

/// The text printed for an error: diagnostics as they are, anything else as `error: ` and
/// its cause chain.
pub fn error_report(err: &anyhow::Error) -> String {
    let diagnostics = match err.downcast_ref::<config::ConfigError>() {
        Some(config::ConfigError::Invalid(d)) => Some(d.0.as_slice()),
        Some(config::ConfigError::Lock(lock::LockError::Invalid(d))) => {
            Some(std::slice::from_ref(d.as_ref()))
        }
        _ => match err.downcast_ref::<lock::LockError>() {
            Some(lock::LockError::Invalid(d)) => Some(std::slice::from_ref(d.as_ref())),
            _ => None,
        },
    };
    if let Some(list) = diagnostics {
        return report_diagnostics(list);
    }
    // The cause chain, each cause once: many errors already quote their source.
    let mut text = String::from("error: ");
    let mut said = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if said.contains(&part) {
            continue;
        }
        if !said.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        said.push_str(&part);
    }
    text
}

/// Each problem once (a file that holds a secret says so once, whatever was wrong in it), the
/// first [`MAX_SHOWN`] of them.
fn report_diagnostics(list: &[diagnostic::Diagnostic]) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut texts = std::collections::HashSet::new();
    let mut shown: Vec<String> = Vec::new();
    let mut more = 0;
    for d in list.iter().filter(|d| seen.insert(*d)) {
        if shown.len() < MAX_SHOWN {
            let text = format!("error: {d}");
            if texts.insert(text.clone()) {
                shown.push(text);
            }
        } else {
            more += 1;
        }
    }
    if more > 0 {
        shown.push(format!(
            "error: and {more} more problems ({} in all): fix these and run again",
            more + MAX_SHOWN
        ));
    }
    shown.join("\n\n")
}

/// A panic prints where it happened, not its message, which might hold a value, nor a
/// backtrace, and the process exits 2 like any error. The line is written without the
/// redaction state (it holds no value, only mlplat's own words and a source location): a
/// panic inside the redaction itself, with its lock held, still ends the process.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        console::err_unredacted(&format!(
            "error: mlplat crashed{at}; this is a bug, please report it\n"
        ));
        std::process::exit(2);
    }));
}
