//! mlplat: compile one `platform.yaml` into the manifests of an ML platform on Kubernetes.
//!
//! The pipeline, one module per stage: [`config`] → [`backends`] → [`secrets`] → [`tools`] →
//! [`delivery`] → [`output`], run end to end by [`render`]. [`yaml`] reads YAML with source
//! positions and writes it deterministically; [`templates`] holds the minijinja templates.

pub mod aws;
pub mod backends;
pub mod charts;
pub mod cli;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod diff;
pub mod index;
pub mod lock;
pub mod output;
pub mod render;
pub mod secret_delivery;
pub mod secrets;
pub mod secrets_manager;
pub mod templates;
pub mod tools;
pub mod yaml;

/// The body of both binaries' `main`: parse the command line, run it with `run`, and turn the
/// result into the exit code (0 done, 1 drift or pending changes, 2 error).
pub fn main_with(run: fn(cli::Cli) -> anyhow::Result<commands::Outcome>) -> std::process::ExitCode {
    use clap::Parser;
    install_panic_hook();
    match run(cli::Cli::parse()) {
        Ok(outcome) => std::process::ExitCode::from(outcome.code()),
        Err(err) => {
            eprintln!("{}", error_report(&err));
            std::process::ExitCode::from(2)
        }
    }
}

/// The text printed for an error: diagnostics as they are, anything else as `error: ` and
/// its cause chain.
pub fn error_report(err: &anyhow::Error) -> String {
    if let Some(config::ConfigError::Invalid(d)) = err.downcast_ref::<config::ConfigError>() {
        return d
            .0
            .iter()
            .map(|d| format!("error: {d}"))
            .collect::<Vec<_>>()
            .join("\n\n");
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

/// A panic prints where it happened, not its message, which might hold a value, and the
/// process exits 2 like any error.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: mlplat crashed{at}; this is a bug, please report it");
        std::process::exit(2);
    }));
}
