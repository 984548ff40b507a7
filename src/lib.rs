//! mlplat: compile one `platform.yaml` into the manifests of an ML platform on Kubernetes.
//!
//! The pipeline, one module per stage: [`config`] → [`backends`] → [`secrets`] → [`tools`] →
//! [`delivery`] → [`output`], run end to end by [`render`]. [`yaml`] reads YAML with source
//! positions and writes it deterministically; [`templates`] holds the minijinja templates.
//!
//! Nothing leaves the process unredacted: inside this crate `println!`, `eprintln!`, `print!`
//! and `eprint!` are [`console`]'s, which pass every text through [`redact`] (known secrets
//! become fingerprints, control characters are escaped); clippy forbids the standard ones here.
#![warn(clippy::disallowed_macros, clippy::disallowed_methods)]

#[macro_use]
pub mod console;

pub mod backends;
pub mod charts;
pub mod cli;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod diff;
pub mod files;
pub mod images;
pub mod index;
pub mod lock;
pub mod output;
pub mod redact;
pub mod render;
pub mod secret_delivery;
pub mod secrets;
pub mod templates;
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
fn report_diagnostics(list: &[config::Diagnostic]) -> String {
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
