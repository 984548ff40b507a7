//! The `mlplat-aws` binary: the commands that need the network (`plan`, `provision`,
//! `destroy`, `images pin`), started by `mlplat` with the same arguments. Kept apart so that
//! `mlplat render` does not load the AWS SDK, an HTTP client or a TLS stack. Exit codes as
//! `mlplat`'s: 0 success, 1 pending changes (plan), 2 error.

fn main() -> std::process::ExitCode {
    mlplat::main_with(mlplat_aws::commands::run)
}
