//! The shape of the code, checked:
//!
//! - The modules of each crate import each other without a cycle, and the `mlplat` crate's
//!   imports only run down its layers ([`LAYERS`]): the foundations, the inputs, the chart and
//!   image choices, the pipeline's shared types, the stages in order, the pipeline, the command
//!   line. A module's own folder (a parent and its children) counts as one place.
//! - The `mlplat` crate builds no AWS SDK, async runtime, HTTP client or TLS stack, and no file
//!   of it names one: those are `crates/mlplat-aws`'s alone.
//! - Each crate's `rust-version` is true for what `Cargo.lock` builds: the newest
//!   `rust-version` its locked dependencies declare (normal and build dependencies, followed
//!   all the way down, and the crate's own dev-dependencies, which its tests build), and never
//!   below 1.85, where edition 2024 starts. A dependency update that needs a newer Rust fails
//!   here, naming the dependency, instead of failing on a user's older toolchain.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The `mlplat` crate's layers, bottom first: a module may import its own layer's modules
/// (without a cycle) and those of the layers below, never one above. Each entry is a module
/// path; a file belongs to the longest entry its module path starts with. A new module must
/// be placed here.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations",
        &[
            "console",
            "redact",
            "encode",
            "yaml",
            "diagnostic",
            "files",
            "templates",
            "secrets",
        ],
    ),
    ("input: the lock file", &["lock"]),
    ("input: the config", &["config"]),
    ("chart and image choices", &["charts", "images"]),
    (
        "the pipeline's shared types",
        &[
            "render::component",
            "render::error",
            "render::network",
            "render::secret",
        ],
    ),
    ("stage: backends", &["backends"]),
    ("stage: secrets", &["secret_delivery"]),
    ("stage: tools", &["tools"]),
    ("stage: delivery", &["delivery"]),
    ("stage: output", &["output", "diff"]),
    ("the pipeline", &["render"]),
    ("the command line", &["cli"]),
    ("the commands", &["commands"]),
];

/// What `mlplat` must never build or name: the AWS SDK, its runtime, HTTP and TLS.
const NETWORK_CRATES: &[&str] = &[
    "aws-config",
    "aws-sdk-",
    "aws-smithy-",
    "tokio",
    "hyper",
    "ureq",
    "rustls",
    "reqwest",
];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// --- the import graph ---------------------------------------------------------------------

/// One source file: its module path (`config::layers`; empty for the crate root) and its
/// code, without comments and without its `#[cfg(test)]` module.
#[derive(Debug)]
struct SourceFile {
    module: Vec<String>,
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's files (the binary's `main.rs` is no module of it).
fn sources(src: &Path) -> BTreeMap<String, SourceFile> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let mut out = BTreeMap::new();
    for path in paths {
        let rel = path
            .strip_prefix(src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "main.rs" {
            continue;
        }
        let mut module: Vec<String> = rel
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_owned)
            .collect();
        if module.last().is_some_and(|m| m == "mod" || m == "lib") {
            module.pop();
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(rel, SourceFile { module, code });
    }
    out
}

/// The file a module path names: the longest prefix of it that is a file's module.
fn file_of<'a>(files: &'a BTreeMap<String, SourceFile>, path: &[String]) -> Option<&'a str> {
    (1..=path.len()).rev().find_map(|n| {
        files
            .iter()
            .find(|(_, f)| f.module == path[..n])
            .map(|(rel, _)| rel.as_str())
    })
}

/// Every `crate::…` and `super::…` path a file names, `use` groups (`{a, b::c}`) opened, as
/// module paths from the crate root.
fn named_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let word = "[A-Za-z_][A-Za-z0-9_]*";
    let path = regex_lite::Regex::new(&format!(
        r"\b(crate|super)((?:::{word})*)(::\{{([^{{}}]*)\}})?"
    ))
    .expect("regex");
    // `super` in `a/b.rs` and in `a/b/mod.rs` (both module a::b) is `a`.
    let parent: Vec<String> = file.module[..file.module.len().saturating_sub(1)].to_vec();
    let mut out = Vec::new();
    for cap in path.captures_iter(&file.code) {
        let mut base = if &cap[1] == "crate" {
            Vec::new()
        } else {
            parent.clone()
        };
        base.extend(
            cap[2]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        match cap.get(4) {
            Some(group) => {
                for item in group.as_str().split(',') {
                    let item = item.trim();
                    let mut p = base.clone();
                    if !item.is_empty() && item != "self" {
                        p.extend(
                            item.split("::").map(|s| {
                                s.split_whitespace().next().unwrap_or_default().to_owned()
                            }),
                        );
                    }
                    out.push(p);
                }
            }
            None => out.push(base),
        }
    }
    out
}

/// The import graph between files; an import between a module and its own ancestors or
/// descendants (a folder and its `mod.rs`) is no edge.
fn imports(files: &BTreeMap<String, SourceFile>) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (rel, file) in files {
        let edges = graph.entry(rel.as_str()).or_default();
        for p in named_paths(file) {
            let Some(target) = file_of(files, &p) else {
                continue;
            };
            let other = &files[target].module;
            let related = other.starts_with(&file.module) || file.module.starts_with(other);
            if !related {
                edges.insert(target);
            }
        }
    }
    graph
}

/// A cycle of the graph, if it has one, as the files along it.
fn find_cycle<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node);
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Open);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut marks, &mut Vec::new()))
}

fn layer_of(module: &[String]) -> Option<usize> {
    let joined = module.join("::");
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, (_, entries))| entries.iter().map(move |e| (i, *e)))
        .filter(|(_, e)| joined == *e || joined.starts_with(&format!("{e}::")))
        .max_by_key(|(_, e)| e.len())
        .map(|(i, _)| i)
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    for src in [
        workspace_root().join("src"),
        workspace_root().join("crates/mlplat-aws/src"),
    ] {
        let files = sources(&src);
        assert!(files.len() > 10, "{} has its modules", src.display());
        let graph = imports(&files);
        assert!(
            graph.values().map(BTreeSet::len).sum::<usize>() > 20,
            "the graph of {} has its imports",
            src.display()
        );
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "{}: the imports run in a circle: {}",
                src.display(),
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn imports_run_down_the_layers_only() {
    let files = sources(&workspace_root().join("src"));
    let graph = imports(&files);
    let mut wrong = Vec::new();
    for (from, targets) in &graph {
        let module = &files[*from].module;
        if module.is_empty() {
            continue; // lib.rs: the crate root, above everything
        }
        let Some(mine) = layer_of(module) else {
            wrong.push(format!(
                "{from}: module `{}` is in no layer of tests/architecture.rs: place it",
                module.join("::")
            ));
            continue;
        };
        for to in targets {
            let theirs = layer_of(&files[*to].module).unwrap_or(usize::MAX);
            if theirs > mine {
                wrong.push(format!(
                    "{from} ({}) imports {to} ({}), a layer above it",
                    LAYERS[mine].0,
                    LAYERS.get(theirs).map_or("no layer", |l| l.0)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The layers are real: a stage importing the pipeline would be found.
#[test]
fn an_import_back_up_the_stages_is_found() {
    let mut files = sources(&workspace_root().join("src"));
    let backends = files.get_mut("backends.rs").expect("src/backends.rs");
    backends
        .code
        .push_str("\nuse crate::render::pipeline::render_full;\n");
    let graph = imports(&files);
    assert!(graph["backends.rs"].contains("render/pipeline.rs"));
    let layer = |rel: &str| layer_of(&files[rel].module).expect("placed");
    assert!(layer("render/pipeline.rs") > layer("backends.rs"));
    // And a cycle is one: the pipeline already imports the backends.
    assert!(find_cycle(&graph).is_some());
}

#[test]
fn no_file_of_mlplat_names_the_network_crates() {
    let files = sources(&workspace_root().join("src"));
    for (rel, file) in &files {
        for name in [
            "aws_sdk_",
            "aws_config",
            "aws_smithy",
            "tokio",
            "ureq",
            "hyper",
        ] {
            assert!(
                !file.code.contains(&format!("{name}::")),
                "src/{rel} names {name}: code that talks to AWS or the network belongs in crates/mlplat-aws"
            );
        }
    }
}

// --- the dependency graph -----------------------------------------------------------------

/// Edition 2024's first Rust.
const EDITION_MINIMUM: (u64, u64, u64) = (1, 85, 0);

fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text
        .split('.')
        .map(|p| p.parse::<u64>().expect("a numeric version"));
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
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
        ])
        .arg(host())
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The workspace as `cargo metadata` resolves it.
struct Workspace<'a> {
    packages: BTreeMap<&'a str, &'a Value>,
    nodes: BTreeMap<&'a str, &'a Value>,
    members: Vec<&'a str>,
}

impl<'a> Workspace<'a> {
    fn new(meta: &'a Value) -> Self {
        let list = |v: &'a Value, what: &str| -> &'a Vec<Value> {
            v.as_array()
                .unwrap_or_else(|| panic!("cargo metadata has {what}"))
        };
        let by_id = |v: &'a Value| (v["id"].as_str().expect("id"), v);
        Workspace {
            packages: list(&meta["packages"], "packages")
                .iter()
                .map(by_id)
                .collect(),
            nodes: list(&meta["resolve"]["nodes"], "resolve nodes")
                .iter()
                .map(by_id)
                .collect(),
            members: list(&meta["workspace_members"], "workspace members")
                .iter()
                .map(|m| m.as_str().expect("member id"))
                .collect(),
        }
    }

    fn member(&self, name: &str) -> &'a str {
        self.members
            .iter()
            .copied()
            .find(|id| self.packages[id]["name"] == name)
            .unwrap_or_else(|| panic!("{name} is a workspace member"))
    }

    /// Every package `member` builds, itself included; `dev`: its tests' too (dev-dependencies
    /// are followed at the member only).
    fn builds(&self, member: &'a str, dev: bool) -> BTreeSet<&'a str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![(member, true)];
        while let Some((id, is_member)) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            for dep in self.nodes[id]["deps"].as_array().expect("deps") {
                let kinds = dep["dep_kinds"].as_array().expect("dep kinds");
                let follow = kinds.iter().any(|k| match k["kind"].as_str() {
                    None | Some("build") => true,
                    Some("dev") => dev && is_member,
                    Some(_) => false,
                });
                if follow {
                    todo.push((dep["pkg"].as_str().expect("pkg"), false));
                }
            }
        }
        seen
    }

    fn name(&self, id: &str) -> &'a str {
        self.packages[id]["name"].as_str().expect("name")
    }
}

#[test]
fn mlplat_builds_no_aws_sdk_runtime_or_http_client() {
    let meta = metadata();
    let ws = Workspace::new(&meta);
    let mlplat = ws.member("mlplat");
    let built: Vec<&str> = ws
        .builds(mlplat, false)
        .into_iter()
        .map(|id| ws.name(id))
        .collect();
    let network: Vec<&&str> = built
        .iter()
        .filter(|n| NETWORK_CRATES.iter().any(|c| n.starts_with(c)))
        .collect();
    assert!(
        network.is_empty(),
        "mlplat builds {network:?}: they belong to crates/mlplat-aws"
    );
    assert!(
        built.contains(&"minijinja"),
        "the walk reaches the dependencies"
    );
    // The AWS crate does build them: the check above looks in the right place.
    let aws: Vec<&str> = ws
        .builds(ws.member("mlplat-aws"), false)
        .into_iter()
        .map(|id| ws.name(id))
        .collect();
    assert!(aws.contains(&"aws-sdk-rds") && aws.contains(&"tokio"));
}

#[test]
fn each_crates_rust_version_is_the_newest_its_locked_dependencies_need() {
    let meta = metadata();
    let ws = Workspace::new(&meta);
    assert_eq!(
        ws.members.len(),
        2,
        "the workspace is mlplat and mlplat-aws"
    );
    for &member in &ws.members {
        let name = ws.name(member);
        let declared = ws.packages[member]["rust_version"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} declares no rust-version"));
        let newest = ws
            .builds(member, true)
            .into_iter()
            .filter(|id| *id != member)
            .filter_map(|id| {
                let p = ws.packages[id];
                let rv = p["rust_version"].as_str()?;
                Some((
                    version(rv),
                    format!("{} {}", p["name"].as_str()?, p["version"].as_str()?),
                ))
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
