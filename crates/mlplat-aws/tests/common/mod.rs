//! What the AWS crate's tests share: where the workspace is, and the `mlplat` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[path = "../../../../tests/support/tree.rs"]
pub mod tree;

/// The workspace root (the `mlplat` crate, with `examples/` and `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/mlplat-aws sits two levels below the workspace root")
        .to_path_buf()
}

/// The `mlplat` binary beside the `mlplat-aws` one, as `cargo install` puts them: the tests
/// run the AWS commands as users do, through `mlplat`, which hands them to `mlplat-aws`.
/// Cargo builds it when the tests run for the whole workspace (`scripts/test` does).
pub fn mlplat_bin() -> PathBuf {
    let aws = Path::new(env!("CARGO_BIN_EXE_mlplat-aws"));
    let bin = aws.with_file_name(format!("mlplat{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run the tests for the whole workspace (`cargo test --workspace`, as scripts/test does), which builds mlplat beside mlplat-aws",
        bin.display()
    );
    bin
}
