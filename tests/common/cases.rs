//! Where the golden cases are, shared by the tests that walk them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The golden cases: `(config, expected tree)`, see `tests/golden.rs`. A config with
/// environments has one subtree per environment in its expected tree.
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

/// The whole output of a config: its one platform, or every environment it declares.
pub fn render(config: &Path) -> Result<mlplat::output::Tree, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", config.display());
    let environments = mlplat::config::environment_names(config).map_err(|e| fail(&e))?;
    if environments.is_empty() {
        let loaded = mlplat::config::load_one(config).map_err(|e| fail(&e))?;
        return mlplat::render::render(&loaded).map_err(|e| fail(&e));
    }
    let envs =
        mlplat::config::load(config, mlplat::config::Selection::All).map_err(|e| fail(&e))?;
    mlplat::render::render_environments(&envs).map_err(|e| fail(&e))
}

/// Every platform the golden cases render, loaded, with the directory its tree is in: one per
/// config, or one per environment (`<expected>/<env>`).
pub fn platforms() -> Vec<(mlplat::config::Loaded, PathBuf)> {
    let mut out = Vec::new();
    for (config, expected) in golden_cases() {
        let environments = mlplat::config::environment_names(&config).expect("environments");
        if environments.is_empty() {
            out.push((mlplat::config::load_one(&config).expect("load"), expected));
            continue;
        }
        for env in environments {
            let loaded =
                mlplat::config::load(&config, mlplat::config::Selection::Environment(&env))
                    .expect("load environment")
                    .remove(0);
            out.push((loaded, expected.join(env)));
        }
    }
    out
}
