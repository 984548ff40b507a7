//! The `mlplat-aws` binary on its own: it runs the commands that need the network only.

mod common;

use std::process::Command;

#[test]
fn mlplat_aws_refuses_the_commands_of_mlplat() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        common::workspace_root().join("examples/local.yaml"),
        dir.path().join("local.yaml"),
    )
    .expect("copy the example");
    let out = Command::new(env!("CARGO_BIN_EXE_mlplat-aws"))
        .args(["render", "-c", "local.yaml", "-o", "elsewhere"])
        .current_dir(dir.path())
        .output()
        .expect("run mlplat-aws");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`mlplat-aws` runs the commands that need the network only"),
        "{err}"
    );
    assert!(!dir.path().join("elsewhere").exists());
}
