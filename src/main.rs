//! The `mlplat` binary: parse arguments, run, map the result to an exit code
//! (0 success, 1 drift, 2 error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    mlplat::install_panic_hook();
    let cli = mlplat::cli::Cli::parse();
    match mlplat::commands::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            eprintln!("{}", mlplat::error_report(&err));
            ExitCode::from(2)
        }
    }
}
