//! Where the golden cases are, shared by the tests that walk them.
#![allow(dead_code)]

use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The golden cases: `(config, expected tree)`, see `tests/golden.rs`.
pub fn golden_cases() -> Vec<(PathBuf, PathBuf)> {
    let root = repo_root();
    let mut cases = vec![(root.join("examples/local.yaml"), root.join("out"))];
    let mut more = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join("examples")) {
        for e in entries.flatten() {
            let p = e.path();
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            // `<name>.lock.yaml` is the lock file of `<name>.yaml`, not a config.
            if p.extension().is_some_and(|x| x == "yaml")
                && stem != "local"
                && !stem.ends_with(".lock")
            {
                more.push((p.clone(), root.join("examples/rendered").join(stem)));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join("tests/golden")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.join("platform.yaml").is_file() {
                more.push((p.join("platform.yaml"), p.join("expected")));
            }
        }
    }
    more.sort();
    cases.extend(more);
    cases
}
