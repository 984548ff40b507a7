//! Golden tests: every example config, and every case folder under `tests/golden/`, renders to
//! exactly the tree committed beside it, byte for byte.
//!
//! - `examples/local.yaml` → `out/` (the rendering the README shows);
//! - `examples/<name>.yaml` → `examples/rendered/<name>/`;
//! - `tests/golden/<case>/platform.yaml` → `tests/golden/<case>/expected/` (a config with
//!   environments: `expected/<env>/` for each).
//!
//! After a deliberate change, regenerate them with `MLPLAT_BLESS=1 cargo test --test golden`
//! and review the diff like any other change.

#[path = "common/cases.rs"]
mod cases;

use std::path::PathBuf;

use cases::golden_cases;

#[test]
fn every_case_renders_to_its_committed_tree() {
    let bless = std::env::var_os("MLPLAT_BLESS").is_some();
    let mut failures = Vec::new();
    let cases = golden_cases();
    assert!(
        cases.len() >= 4,
        "the golden cases were not found: {cases:?}"
    );
    for (config, expected) in cases {
        let tree = match cases::render(&config) {
            Ok(t) => t,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        if bless {
            mlplat::output::write(&tree, &expected).expect("write golden tree");
            continue;
        }
        let drift = mlplat::output::check(&tree, &expected).expect("compare");
        if !drift.is_empty() {
            failures.push(format!(
                "{} → {}:\n  {}",
                config.display(),
                expected.display(),
                drift.lines().join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden trees differ (regenerate with MLPLAT_BLESS=1 cargo test --test golden, then review):\n{}",
        failures.join("\n")
    );
}

#[test]
fn rendering_twice_in_one_process_gives_the_same_bytes() {
    for (config, _) in golden_cases() {
        let a = cases::render(&config).expect("render");
        let b = cases::render(&config).expect("render");
        assert_eq!(a, b, "{}", config.display());
        for (path, file) in &a.files {
            assert!(
                file.bytes.ends_with(b"\n") && !file.bytes.ends_with(b"\n\n"),
                "{path}: one trailing newline"
            );
        }
    }
}

#[test]
fn a_different_key_changes_every_generated_secret_and_nothing_else() {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/local.yaml");
    let mut loaded = mlplat::config::load_one(&config).expect("load");
    let a = mlplat::render::render(&loaded).expect("render");
    loaded.key =
        mlplat::secrets::Secret::new("another-key-another-key-another-key-0123".to_owned());
    let b = mlplat::render::render(&loaded).expect("render");
    for (path, file) in &a.files {
        let other = &b.files[path];
        let same = file.bytes == other.bytes;
        // Secret files change; so do the workloads that carry a checksum of them (JupyterHub's
        // hub through its chart values), the Jobs whose names carry one, and the index.
        let expect_change = file.secret
            || path.ends_with("deployment.yaml")
            || path == "jupyterhub/helmrelease.yaml"
            || path == "jupyterhub/values.yaml"
            || path
                .rsplit('/')
                .next()
                .is_some_and(|f| f.starts_with("job-"))
            || path == mlplat::output::MARKER;
        assert_eq!(!same, expect_change, "{path}");
    }
}
