//! Chart values checked at render time against the chart itself (`src/charts/values.rs`),
//! judged by Helm: mlplat's coalescing and schema validation must say what Helm says about
//! the same values, for the published charts that ship a schema (official Airflow 1.22.0,
//! JupyterHub 4.4.0) and thousands of mutations of the examples' values. And a bad key in a
//! user's values file is exit 2 at that file's line, with `out/` as it was.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use mlplat::charts::archive::{ChartFacts, extract};
use mlplat::charts::values::{coalesce, release_values};
use mlplat::config::schema::validator::{Validator, Violation, ViolationKind};
use serde_json::{Map, Value, json};
use support::published;

/// A tiny xorshift64 generator: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The values `examples/local.yaml` hands `chart`, and the chart's facts from its archive.
fn example(chart: &str) -> (Value, ChartFacts, PathBuf) {
    let root = support::repo_root();
    let loaded = mlplat::config::load_one(&root.join("examples/local.yaml")).expect("load");
    let release = mlplat::render::charts(&loaded)
        .expect("charts")
        .into_iter()
        .map(|(_, c)| c)
        .find(|c| c.chart == chart)
        .expect("chart");
    let archive = published::archive(&release.chart, &release.version)
        .expect("archive")
        .expect("at hand");
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(&archive).expect("read archive");
    let facts = extract(
        cache.path(),
        &archive,
        &mlplat::encode::sha256_digest(&bytes),
    )
    .expect("extract");
    (release_values(&release), facts, archive)
}

/// Every place in `v` (maps and lists), as JSON pointers.
fn places(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                places(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                places(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Pointers to what the schema names (its `properties`, through `$ref`s), to some depth: the
/// keys a user might set that the example does not.
fn schema_places(schema: &Value, root: &Value, at: String, depth: usize, out: &mut Vec<String>) {
    let s = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => root.pointer(r.trim_start_matches('#')).unwrap_or(schema),
        None => schema,
    };
    if depth == 0 {
        return;
    }
    for (k, sub) in s["properties"].as_object().into_iter().flatten() {
        let p = format!("{at}/{k}");
        out.push(p.clone());
        schema_places(sub, root, p, depth - 1, out);
    }
    if let Some(items) = s.get("items") {
        schema_places(items, root, format!("{at}/0"), depth - 1, out);
    }
}

/// Sets `value` at `pointer`, creating maps on the way (a list index past the end appends).
fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut cur = root;
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        if let Value::Array(a) = cur {
            let n = t.parse::<usize>().unwrap_or(0).min(a.len());
            if n == a.len() {
                a.push(json!({}));
            }
            if last {
                a[n] = value;
                return;
            }
            cur = &mut a[n];
            continue;
        }
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let m = cur.as_object_mut().expect("map");
        if last {
            m.insert(t.clone(), value);
            return;
        }
        cur = m.entry(t.clone()).or_insert_with(|| json!({}));
    }
    *cur = value;
}

fn remove(root: &mut Value, pointer: &str) {
    if let Some((parent, key)) = pointer.rsplit_once('/') {
        let key = key.replace("~1", "/").replace("~0", "~");
        match root.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.remove(&key);
            }
            Some(Value::Array(a)) => {
                if let Ok(i) = key.parse::<usize>() {
                    if i < a.len() {
                        a.remove(i);
                    }
                }
            }
            _ => {}
        }
    }
}

/// One mutation of `values`: a value of another type, an unknown key, a removed key, a list
/// item of another shape, an enum's neighbour, a date.
fn mutate(rng: &mut Rng, values: &Value, places: &[String]) -> Value {
    let mut v = values.clone();
    for _ in 0..=rng.below(2) {
        let at = rng.pick(places).clone();
        let samples = [
            Value::Null,
            json!(true),
            json!(0),
            json!(-3),
            json!(2.5),
            json!(70000),
            json!(""),
            json!("x"),
            json!("CeleryExecutor"),
            json!("Always"),
            json!("2024-02-30T10:00:00Z"),
            json!("2024-02-29T10:00:00Z"),
            json!("10Gi"),
            json!([]),
            json!(["x"]),
            json!([{"name": "A", "value": "b"}]),
            json!([{"name": "A"}]),
            json!({}),
            json!({"name": "x"}),
            json!({"enabled": true}),
        ];
        match rng.below(6) {
            0..=2 => set(&mut v, &at, rng.pick(&samples).clone()),
            3 => set(&mut v, &format!("{at}/zzUnknown"), json!(1)),
            4 => remove(&mut v, &at),
            _ => set(&mut v, &format!("{at}/0"), rng.pick(&samples).clone()),
        }
    }
    v
}

/// The instance paths of what mlplat reports, `anyOf`/`oneOf` by their closest branch.
fn leaf_paths(violations: &[Violation], out: &mut Vec<String>) {
    for v in violations {
        match &v.kind {
            ViolationKind::NoBranch { closest, .. } if !closest.is_empty() => {
                leaf_paths(closest, out);
            }
            _ => out.push(v.instance_path.clone()),
        }
    }
}

/// `at '<pointer>'` of every line of Helm's message.
fn helm_paths(message: &str) -> Vec<String> {
    message
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- at '"))
        .filter_map(|l| l.split_once('\'').map(|(p, _)| p.to_owned()))
        .collect()
}

fn differential(chart: &str, mutations: usize, seed: u64) {
    let (values, facts, archive) = example(chart);
    let schema = facts.schema.clone().expect("the chart has a schema");
    let validator = Validator::chart(schema.clone()).expect("mlplat reads the chart's schema");
    let mut targets = Vec::new();
    places(&values, String::new(), &mut targets);
    schema_places(&schema, &schema, String::new(), 3, &mut targets);
    targets.retain(|p| !p.is_empty());
    let mut rng = Rng(seed);
    let mut cases = vec![values.clone()];
    cases.extend((0..mutations).map(|_| mutate(&mut rng, &values, &targets)));
    let ours: Vec<Vec<Violation>> = cases
        .iter()
        .map(|v| validator.violations(&coalesce(v, &facts.defaults)))
        .collect();
    let jobs: Vec<(PathBuf, Value)> = cases.iter().map(|v| (archive.clone(), v.clone())).collect();
    let helm = published::check_schema(&jobs);
    let schema_error = "values don't meet the specifications of the schema";
    let mut disagree = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&helm) {
        let helm_refuses = matches!(theirs, Err(e) if e.contains(schema_error));
        if let Err(e) = theirs {
            assert!(e.contains(schema_error), "Helm failed otherwise: {e}");
        }
        if ours.is_empty() == helm_refuses {
            disagree.push(format!(
                "values {case}\n  mlplat: {ours:?}\n  helm: {theirs:?}"
            ));
            continue;
        }
        if helm_refuses {
            failed += 1;
            // And at the same places: every place mlplat names, Helm names too.
            let mut ours_at = Vec::new();
            leaf_paths(ours, &mut ours_at);
            let theirs_at = helm_paths(theirs.as_ref().err().map_or("", String::as_str));
            for p in &ours_at {
                if !theirs_at
                    .iter()
                    .any(|t| t == p || p.starts_with(&format!("{t}/")))
                {
                    disagree.push(format!(
                        "values {case}\n  mlplat at {p} ({ours:?})\n  helm at {theirs_at:?}"
                    ));
                }
            }
        } else {
            passed += 1;
        }
    }
    assert!(
        disagree.is_empty(),
        "{chart}: mlplat and Helm disagree on {} of {} values:\n{}",
        disagree.len(),
        cases.len(),
        disagree
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The mutations reach both outcomes, plenty of each.
    assert!(
        passed > mutations / 10 && failed > mutations / 3,
        "{chart}: {passed} passed, {failed} failed"
    );
}

#[test]
fn airflow_values_are_judged_as_helm_judges_them() {
    differential("airflow", 250, 0x00a1_f10e);
}

#[test]
fn jupyterhub_values_are_judged_as_helm_judges_them() {
    differential("jupyterhub", 250, 0x0000_4b0b);
}

/// `examples/local.yaml` in a scratch directory, rendered into `out/`, its charts pulled (the
/// published archives, through the stand-in Helm) into a cache of its own.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = support::repo_root().join("examples");
        for f in ["local.yaml", "example.key", "example-git-token"] {
            std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy");
        }
        let ws = Workspace { dir };
        ws.ok(&["charts", "pull", "-c", "local.yaml"]);
        let said = ws.ok(&["render", "-c", "local.yaml", "-o", "out"]);
        assert!(!said.contains("not checked"), "{said}");
        ws
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mlplat"))
            .args(args)
            .current_dir(self.dir.path())
            .env(
                "MLPLAT_HELM",
                support::repo_root().join("tests/support/fake-helm"),
            )
            .env("MLPLAT_FAKE_HELM_ARCHIVES", published::charts_dir())
            .env("MLPLAT_CACHE", self.path("cache"))
            .output()
            .expect("run mlplat")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "mlplat {args:?}: {stderr}");
        stderr
    }

    fn out_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![self.path("out")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("ls").flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    files.push((
                        e.path().display().to_string(),
                        std::fs::read(e.path()).expect("read"),
                    ));
                }
            }
        }
        files.sort();
        files
    }
}

#[test]
fn a_bad_key_in_a_users_values_file_is_exit_2_at_its_line_and_out_is_untouched() {
    let ws = Workspace::new();
    // The accepted values are marked in the cache; a change to them is checked afresh.
    let marks = std::fs::read_dir(ws.path("cache/checked"))
        .expect("ls")
        .count();
    assert_eq!(marks, 2, "one mark per chart");
    let before = ws.out_files();
    std::fs::create_dir(ws.path("values")).expect("mkdir");
    std::fs::write(
        ws.path("values/airflow.yaml"),
        "# Our own Airflow values.\nscheduler:\n  replicas: 2\n  replicaz: 3\n",
    )
    .expect("write");
    let config = std::fs::read_to_string(ws.path("local.yaml")).expect("read");
    let config = config.replacen(
        "    ingress: {host: airflow.mlops.example.com, className: nginx}\n",
        "    ingress: {host: airflow.mlops.example.com, className: nginx}\n    values: [values/airflow.yaml]\n",
        1,
    );
    assert!(
        config.contains("values: [values/airflow.yaml]"),
        "the example changed shape"
    );
    std::fs::write(ws.path("local.yaml"), config).expect("write");
    let out = ws.run(&["render", "-c", "local.yaml", "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        include_str!("cli/chart_values_unknown_key.txt").trim_end()
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(ws.out_files(), before, "out/ must be untouched");

    // Fixed, the same values render, and the chart gets them.
    std::fs::write(
        ws.path("values/airflow.yaml"),
        "# Our own Airflow values.\nscheduler:\n  replicas: 2\n",
    )
    .expect("write");
    ws.ok(&["render", "-c", "local.yaml", "-o", "out"]);
    let values = std::fs::read_to_string(ws.path("out/airflow/values.yaml")).expect("read");
    assert!(values.contains("scheduler:\n  replicas: 2\n"), "{values}");
}
