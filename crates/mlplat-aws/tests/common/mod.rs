//! What the AWS crate's tests share: where the workspace is, and the `mlplat` binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Every file below `dir`, by path relative to it (`/`-separated), with its bytes.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("below dir");
                out.insert(
                    rel.to_string_lossy().replace('\\', "/"),
                    std::fs::read(&path).expect("read"),
                );
            }
        }
    }
    out
}
