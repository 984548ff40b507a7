//! The `mlplat` binary: every command; `plan`, `provision` and `destroy` are handed to
//! `mlplat-aws` beside it. Exit codes: 0 success, 1 drift, 2 error.

fn main() -> std::process::ExitCode {
    mlplat::main_with(mlplat::commands::run)
}
