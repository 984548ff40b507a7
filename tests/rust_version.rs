//! Each crate's `rust-version` is true for what `Cargo.lock` builds: it is the newest
//! `rust-version` that the crate's locked dependencies declare (normal and build dependencies,
//! followed all the way down, and the crate's own dev-dependencies, which its tests build),
//! and never below 1.85, where edition 2024 starts. A dependency update that needs a newer
//! Rust fails here, naming the dependency, instead of failing on a user's older toolchain.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Edition 2024's first Rust.
const EDITION_MINIMUM: (u64, u64, u64) = (1, 85, 0);

fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().expect("a numeric version"));
    let major = parts.next().expect("a major version");
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    (major, minor, patch)
}

fn host() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host")
}

/// `cargo metadata` of the workspace as locked, for this machine's platform (the crates of
/// other platforms need not be downloaded).
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--filter-platform"])
        .arg(host())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn each_crates_rust_version_is_the_newest_its_locked_dependencies_need() {
    let meta = metadata();
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .map(|m| m.as_str().expect("member id"))
        .collect();
    assert_eq!(members.len(), 2, "the workspace is mlplat and mlplat-aws");

    for member in members {
        let name = packages[member]["name"].as_str().expect("name");
        let declared = packages[member]["rust_version"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} declares no rust-version"));
        // Every package the member builds: the walk takes dev-dependencies at the member only.
        let mut seen = BTreeSet::new();
        let mut todo = vec![(member, true)];
        while let Some((id, is_member)) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            for dep in nodes[id]["deps"].as_array().expect("deps") {
                let kinds = dep["dep_kinds"].as_array().expect("dep kinds");
                let follow = kinds.iter().any(|k| match k["kind"].as_str() {
                    None | Some("build") => true,
                    Some("dev") => is_member,
                    Some(_) => false,
                });
                if follow {
                    todo.push((dep["pkg"].as_str().expect("pkg"), false));
                }
            }
        }
        let newest = seen
            .iter()
            .filter(|id| **id != member)
            .filter_map(|id| {
                let p = packages[id];
                let rv = p["rust_version"].as_str()?;
                Some((version(rv), format!("{} {}", p["name"].as_str()?, p["version"].as_str()?)))
            })
            .max();
        let (needed, because) = match newest {
            Some((v, dep)) if v > EDITION_MINIMUM => (v, dep),
            _ => (EDITION_MINIMUM, "edition 2024".to_owned()),
        };
        assert_eq!(
            version(declared),
            needed,
            "{name} declares rust-version {declared}, but what it builds needs {}.{}.{} ({because}): set rust-version to that in its Cargo.toml",
            needed.0,
            needed.1,
            needed.2
        );
    }
}
