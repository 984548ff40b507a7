//! `mlplat plan|provision|destroy|images pin` run `mlplat-aws` (the crate `crates/mlplat-aws`),
//! the binary beside `mlplat` that links the AWS SDK and an HTTP client, with the same
//! arguments. On Unix it replaces the `mlplat` process (`exec`), so
//! signals such as Ctrl-C during a wait and the exit code are `mlplat-aws`'s own.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use super::Outcome;

/// The name of the AWS binary, without the platform's executable suffix.
pub const NAME: &str = "mlplat-aws";

/// Where `mlplat-aws` must be: in the directory of the running `mlplat` (symlinks resolved),
/// as `cargo install` and the release archives put it. Not looked up on PATH: a different
/// version there would create AWS resources from a config this `mlplat` renders differently.
fn location() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where the mlplat binary is")?;
    Ok(exe.with_file_name(format!("{NAME}{}", std::env::consts::EXE_SUFFIX)))
}

/// Runs `mlplat-aws` with this process's arguments; returns only if it could not be started
/// (or, off Unix, with its outcome).
pub fn hand_over() -> anyhow::Result<Outcome> {
    let path = location()?;
    if !path.is_file() {
        anyhow::bail!(
            "the commands that need the network (plan, provision, destroy, images pin) are in a second binary, `{NAME}`, which \
             is not installed beside mlplat at {}: install it (`cargo install --locked --path crates/mlplat-aws` \
             puts it beside `cargo install --locked --path .`'s mlplat) or build both (`cargo build --release --workspace`)",
            path.display()
        );
    }
    let mut cmd = Command::new(&path);
    cmd.args(std::env::args_os().skip(1));
    run(cmd, &path)
}

#[cfg(unix)]
fn run(mut cmd: Command, path: &std::path::Path) -> anyhow::Result<Outcome> {
    use std::os::unix::process::CommandExt;
    let err = cmd.arg0("mlplat").exec();
    Err(err).with_context(|| format!("cannot run {}", path.display()))
}

#[cfg(not(unix))]
fn run(mut cmd: Command, path: &std::path::Path) -> anyhow::Result<Outcome> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", path.display()))?;
    // `mlplat-aws` has said what went wrong; pass its exit code on as it is.
    std::process::exit(status.code().unwrap_or(2));
}
