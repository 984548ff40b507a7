//! The `mlplat-aws` binary: the AWS commands (`plan`, `provision`, `destroy`), started by
//! `mlplat` with the same arguments. Kept apart so that `mlplat render` does not load the AWS
//! SDK. Exit codes as `mlplat`'s: 0 success, 1 pending changes (plan), 2 error.

fn main() -> std::process::ExitCode {
    mlplat::main_with(mlplat::commands::run_aws)
}
