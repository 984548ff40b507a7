//! checkov (`--framework kubernetes`, a policy scanner of Kubernetes objects, from
//! `tests/checkov.requirements.txt`) as the judge of what the platform asks of the cluster:
//!
//! - every example's and golden case's tree, rendered: mlplat's own objects fail no check; a
//!   check an object fails on purpose is skipped in the object itself (`checkov.io/skipN:
//!   ID=reason`), and every skip says why;
//! - every chart release of the examples, inflated through the published archive as its
//!   controller would install it: it fails fewer checks than the same chart with its defaults.
//!
//! Both are shown to fail: a tree with its skips and NetworkPolicies taken out, and the
//! JupyterHub values without what mlplat adds to harden them.

#[path = "common/cases.rs"]
mod cases;
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::published::{self, Inflation};

/// `$MLPLAT_CHECKOV` (scripts/test sets it: checkov has a venv of its own), else `checkov`.
fn checkov_program() -> PathBuf {
    std::env::var_os("MLPLAT_CHECKOV").map_or_else(|| PathBuf::from("checkov"), PathBuf::from)
}

/// A temporary directory checkov reads: not hidden (`tempdir()`'s `.tmp…` is skipped).
fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mlplat-checkov-")
        .tempdir()
        .expect("temp dir")
}

/// One check's result on one object.
#[derive(Debug, Clone)]
struct Finding {
    check: String,
    resource: String,
    /// Relative to the scanned directory.
    file: String,
    /// The reason a skip gives.
    comment: String,
}

/// What checkov said of every object under `dir`.
#[derive(Debug, Default)]
struct Report {
    passed: Vec<Finding>,
    failed: Vec<Finding>,
    skipped: Vec<Finding>,
}

impl Report {
    /// The findings of the files under `prefix/`.
    fn under(&self, prefix: &str) -> Report {
        let keep = |list: &[Finding]| -> Vec<Finding> {
            list.iter()
                .filter(|f| f.file.starts_with(&format!("{prefix}/")))
                .cloned()
                .collect()
        };
        Report {
            passed: keep(&self.passed),
            failed: keep(&self.failed),
            skipped: keep(&self.skipped),
        }
    }
}

/// `checkov -d DIR --framework kubernetes --skip-download -o json`. Never prints the objects
/// (they hold Secrets).
fn checkov(dir: &Path) -> Report {
    let program = checkov_program();
    let out = Command::new(&program)
        .arg("-d")
        .arg(dir)
        .args(["--framework", "kubernetes", "--skip-download", "-o", "json"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (scripts/test installs it from tests/checkov.requirements.txt and sets MLPLAT_CHECKOV)",
                program.display()
            )
        });
    // 0: every check passed; 1: some failed. Anything else is checkov's own failure.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "checkov failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // One report, or a list of them (one per framework); an empty scan is a bare summary.
    let reports = match json {
        Value::Array(list) => list,
        one => vec![one],
    };
    let mut report = Report::default();
    let root = dir.display().to_string();
    for r in &reports {
        for (key, into) in [
            ("passed_checks", &mut report.passed),
            ("failed_checks", &mut report.failed),
            ("skipped_checks", &mut report.skipped),
        ] {
            for c in r["results"][key].as_array().into_iter().flatten() {
                let path = c["file_abs_path"]
                    .as_str()
                    .or(c["file_path"].as_str())
                    .unwrap_or_default();
                let file = path
                    .strip_prefix(&root)
                    .unwrap_or(path)
                    .trim_start_matches('/')
                    .to_owned();
                into.push(Finding {
                    check: c["check_id"].as_str().unwrap_or_default().to_owned(),
                    resource: c["resource"].as_str().unwrap_or_default().to_owned(),
                    file,
                    comment: c["check_result"]["suppress_comment"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
        }
    }
    report
}

/// [`checkov`] on each directory of `root` apart (its graph checks, such as "every pod has a
/// NetworkPolicy", match labels across everything one run reads, namespaces and trees alike),
/// two at a time; the findings' files relative to `root`.
fn checkov_each(root: &Path) -> Report {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let queue = std::sync::Mutex::new(dirs);
    let reports = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some(dir) = queue.lock().expect("queue").pop() else {
                        break;
                    };
                    let name = dir
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned();
                    let r = checkov(&dir);
                    reports.lock().expect("reports").push((name, r));
                }
            });
        }
    });
    let mut all = Report::default();
    for (name, r) in reports.into_inner().expect("reports") {
        let prefix = |list: Vec<Finding>| {
            list.into_iter().map(|mut f| {
                f.file = format!("{name}/{}", f.file);
                f
            })
        };
        all.passed.extend(prefix(r.passed));
        all.failed.extend(prefix(r.failed));
        all.skipped.extend(prefix(r.skipped));
    }
    all
}

/// Every failed check, and every skip without a reason, of `report`.
fn unexplained(report: &Report) -> Vec<String> {
    let mut out: Vec<String> = report
        .failed
        .iter()
        .map(|f| format!("{}: {} fails {}", f.file, f.resource, f.check))
        .collect();
    for s in &report.skipped {
        let c = s.comment.trim();
        if c.is_empty() || c == "No comment provided" {
            out.push(format!(
                "{}: {} skips {} without a reason",
                s.file, s.resource, s.check
            ));
        }
    }
    out
}

/// A name for a case's directory: its path under the repository, `/` as `_`.
fn case_name(expected: &Path) -> String {
    expected
        .strip_prefix(support::repo_root())
        .unwrap_or(expected)
        .display()
        .to_string()
        .replace('/', "_")
}

/// `tree` with every `checkov.io/skip*` annotation and every NetworkPolicy removed.
fn without_skips_and_policies(dir: &Path) {
    for entry in walk(dir) {
        let text = std::fs::read_to_string(&entry).expect("read");
        if text.contains("kind: NetworkPolicy") {
            std::fs::remove_file(&entry).expect("remove");
            continue;
        }
        let kept: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("checkov.io/skip"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&entry, kept).expect("write");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out
}

#[test]
fn mlplat_objects_fail_no_check_of_checkov_unexplained() {
    let scratch = scratch_dir();
    let mut names = Vec::new();
    for (config, expected) in cases::golden_cases() {
        let tree = cases::render(&config).unwrap_or_else(|e| panic!("{e}"));
        let name = case_name(&expected);
        mlplat::output::write(&tree, &scratch.path().join(&name)).expect("write tree");
        names.push(name);
    }
    // The checker can fail: the default platform without its skips and its NetworkPolicies.
    let tampered = scratch.path().join("tampered");
    let local = cases::render(&support::repo_root().join("examples/local.yaml")).expect("render");
    mlplat::output::write(&local, &tampered).expect("write tree");
    without_skips_and_policies(&tampered);

    let report = checkov_each(scratch.path());
    let mut problems = Vec::new();
    let mut counts = String::new();
    for name in &names {
        let r = report.under(name);
        assert!(
            !r.passed.is_empty(),
            "{name}: checkov passed nothing: did it read the tree?"
        );
        problems.extend(unexplained(&r));
        let _ = writeln!(
            counts,
            "{name}: {} passed, {} failed, {} skipped",
            r.passed.len(),
            r.failed.len(),
            r.skipped.len()
        );
    }
    eprint!("{counts}");
    assert!(
        problems.is_empty(),
        "checkov on mlplat's objects:\n{}",
        problems.join("\n")
    );

    let t = report.under("tampered");
    for (check, what) in [
        ("CKV2_K8S_6", "a pod without a NetworkPolicy"),
        ("CKV_K8S_43", "an image without a digest"),
        ("CKV_K8S_35", "a Secret in the environment"),
    ] {
        assert!(
            t.failed.iter().any(|f| f.check == check),
            "checkov did not report {what} ({check}) in the tree without skips and policies: {:?}",
            t.failed.iter().map(|f| &f.check).collect::<Vec<_>>()
        );
    }
}

/// Kinds that have no namespace: Helm leaves every other object's to the install.
const CLUSTER_SCOPED: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "ValidatingWebhookConfiguration",
];

/// The objects of a release as Helm installs them: in the release's namespace.
fn installed(objs: Vec<Value>, namespace: &str) -> String {
    let mut text = String::new();
    for mut o in objs {
        let kind = o["kind"].as_str().unwrap_or_default().to_owned();
        if !CLUSTER_SCOPED.contains(&kind.as_str()) && o["metadata"]["namespace"].is_null() {
            o["metadata"]["namespace"] = json!(namespace);
        }
        text.push_str("---\n");
        text.push_str(&serde_json::to_string(&o).expect("JSON"));
        text.push('\n');
    }
    text
}

/// The values mlplat adds to JupyterHub's chart to harden it, taken out again.
fn unhardened_hub(values: &Value) -> Value {
    let mut v = values.clone();
    for path in [
        "/hub/resources",
        "/proxy/chp/resources",
        "/proxy/chp/extraPodSpec",
        "/scheduling/userScheduler/resources",
        "/prePuller/resources",
        "/prePuller/hook/resources",
    ] {
        let (parent, key) = path.rsplit_once('/').expect("path");
        if let Some(Value::Object(m)) = v.pointer_mut(parent) {
            m.remove(key);
        }
    }
    v
}

#[test]
fn every_chart_release_fails_fewer_checks_than_the_charts_defaults() {
    // The examples' releases (the golden cases repeat their charts), each once.
    let mut releases: Vec<published::Release> = Vec::new();
    for (loaded, dir) in cases::platforms() {
        let rel = dir.strip_prefix(support::repo_root()).unwrap_or(&dir);
        if !(rel.starts_with("out") || rel.starts_with("examples")) {
            continue;
        }
        let tree = support::kustomize_build(&dir);
        let rendered = mlplat::render::render_full(&loaded).expect("render");
        let secret = |ns: &str, name: &str| {
            rendered
                .secrets
                .iter()
                .find(|s| s.namespace == ns && s.name == name)
                .and_then(|s| s.data.get("values.yaml"))
                .map(|v| v.expose().to_owned())
        };
        for r in published::releases(&tree, &secret) {
            if !releases
                .iter()
                .any(|o| o.chart == r.chart && o.version == r.version && o.values == r.values)
            {
                releases.push(r);
            }
        }
    }
    // Per chart version: its defaults, then each release of it.
    let mut jobs: Vec<(String, String, Inflation)> = Vec::new();
    let mut defaults: BTreeMap<String, String> = BTreeMap::new();
    for r in &releases {
        let chart = format!("{}-{}", r.chart, r.version);
        let archive = published::archive(&r.chart, &r.version)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no archive for {chart}"));
        let job = |values: Value| Inflation {
            archive: archive.clone(),
            release: r.release.clone(),
            namespace: r.namespace.clone(),
            values,
        };
        if !defaults.contains_key(&chart) {
            let name = format!("defaults-{chart}");
            defaults.insert(chart.clone(), name.clone());
            jobs.push((name, chart.clone(), job(json!({}))));
        }
        let name = format!("release-{}", jobs.len());
        jobs.push((
            format!("{name}-{chart}"),
            chart.clone(),
            job(r.values.clone()),
        ));
        if r.chart == "jupyterhub" && !jobs.iter().any(|(n, _, _)| n.starts_with("unhardened")) {
            jobs.push((
                format!("unhardened-{chart}"),
                chart.clone(),
                job(unhardened_hub(&r.values)),
            ));
        }
    }
    let scratch = scratch_dir();
    let inflations: Vec<Inflation> = jobs.iter().map(|(_, _, j)| j.clone()).collect();
    for ((name, _, job), result) in jobs.iter().zip(published::inflate(&inflations)) {
        let objs = result.unwrap_or_else(|e| panic!("{name}: Helm refused it:\n{e}"));
        let dir = scratch.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("release.yaml"), installed(objs, &job.namespace)).expect("write");
    }
    let report = checkov_each(scratch.path());
    let failed = |name: &str| report.under(name).failed.len();
    let mut problems = Vec::new();
    let mut table = String::new();
    let mut charts_seen = std::collections::BTreeSet::new();
    for (name, chart, _) in &jobs {
        let base = failed(&defaults[chart]);
        let mine = failed(name);
        let _ = writeln!(table, "{name}: {mine} failed (chart defaults: {base})");
        assert!(
            !report.under(name).passed.is_empty(),
            "{name}: checkov passed nothing: did it read the release?"
        );
        if name.starts_with("release-") {
            charts_seen.insert(chart.clone());
            if mine >= base {
                let mut by_check: BTreeMap<String, (usize, usize)> = BTreeMap::new();
                for f in report.under(name).failed {
                    by_check.entry(f.check).or_default().0 += 1;
                }
                for f in report.under(&defaults[chart]).failed {
                    by_check.entry(f.check).or_default().1 += 1;
                }
                problems.push(format!(
                    "{name}: {mine} failed checks, the chart's defaults {base}: {by_check:?} (release, defaults)"
                ));
            }
        }
        if name.starts_with("unhardened-") {
            // Without mlplat's values the hub chart does no better than its defaults: the
            // comparison can fail.
            assert!(
                mine >= base,
                "{name}: {mine} failed checks against {base}: the hardening values are not what makes the difference"
            );
        }
    }
    eprint!("{table}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let expected: std::collections::BTreeSet<String> =
        ["airflow-1.22.0", "airflow-8.9.0", "jupyterhub-4.4.0"]
            .map(str::to_owned)
            .into();
    assert_eq!(charts_seen, expected);
}
