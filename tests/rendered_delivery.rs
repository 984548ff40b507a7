//! `delivery: rendered`, judged from the outside. One example (`examples/local.yaml`) rendered
//! with each delivery target builds with kustomize and validates; the rendered target runs Helm
//! (the stand-in `tests/support/fake-helm`, on helm-python-sdk, with the test chart of
//! `tests/data/charts/mlplat-test` in place of Airflow's and JupyterHub's charts), writes the
//! same bytes twice, keeps the chart's Secrets private, and refuses a chart archive that no
//! longer matches its pin in the lock file, leaving `out/` as it was.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");

/// A copy of `examples/local.yaml` with one delivery target, and a private chart cache.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(delivery: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = support::repo_root().join("examples");
        let text = std::fs::read_to_string(examples.join("local.yaml")).expect("read example");
        let text = text.replacen(
            "platform: mlops\n",
            &format!("platform: mlops\ndelivery: {delivery}\n"),
            1,
        );
        assert!(text.contains("delivery: "), "the example changed shape");
        std::fs::write(dir.path().join("platform.yaml"), text).expect("write config");
        for file in ["example.key", "example-git-token"] {
            std::fs::copy(examples.join(file), dir.path().join(file)).expect("copy input");
        }
        std::fs::create_dir(dir.path().join("tmp")).expect("mkdir tmp");
        Fixture { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs mlplat in the fixture with the stand-in Helm, the fixture's cache and its own
    /// temporary directory.
    fn mlplat(&self, args: &[&str]) -> Output {
        let fake_helm = support::repo_root().join("tests/support/fake-helm");
        let chart = support::data_dir().join("charts/mlplat-test");
        Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env("MLPLAT_HELM", fake_helm)
            .env("MLPLAT_CACHE", self.path("cache"))
            .env("MLPLAT_FAKE_HELM_CHART", chart)
            .env("MLPLAT_FAKE_HELM_LOG", self.path("helm.log"))
            .env("TMPDIR", self.path("tmp"))
            .output()
            .expect("run mlplat")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.mlplat(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "mlplat {args:?} failed ({}):\n{stderr}\n(the stand-in helm needs `pip install -r tests/requirements.txt`)",
            out.status
        );
        stderr
    }

    fn helm_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("helm.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

#[test]
fn one_example_renders_and_validates_with_every_delivery_target() {
    for delivery in ["flux", "argocd", "rendered"] {
        let fx = Fixture::new(delivery);
        if delivery == "rendered" {
            fx.ok(&["charts", "pull"]);
        }
        fx.ok(&["render"]);
        let objs = support::kustomize_build(&fx.path("out"));
        if let Err(e) = support::validate_all(&objs) {
            panic!("delivery: {delivery}:\n{e}");
        }
        let kinds: Vec<&str> = objs.iter().filter_map(|o| o["kind"].as_str()).collect();
        match delivery {
            "flux" => assert!(kinds.contains(&"HelmRelease"), "{kinds:?}"),
            "argocd" => assert!(kinds.contains(&"Application"), "{kinds:?}"),
            _ => {
                assert!(
                    !kinds.contains(&"HelmRelease") && !kinds.contains(&"Application"),
                    "a rendered platform needs no controller: {kinds:?}"
                );
                // The chart's objects, in the tool's namespace even where the chart set none.
                let cm = find(&objs, "ConfigMap", "airflow-settings").expect("chart ConfigMap");
                assert_eq!(cm["metadata"]["namespace"], "mlops-airflow");
                let app = find(&objs, "Deployment", "jupyterhub-app").expect("chart Deployment");
                assert_eq!(app["metadata"]["namespace"], "mlops-jupyterhub");
                // The install hook stays as a plain Job; the test hook is gone.
                assert!(find(&objs, "Job", "airflow-migrate").is_some());
                assert!(find(&objs, "Pod", "airflow-test-connection").is_none());
                // One CRD for both charts, in out/crds/, listed first.
                let crds: Vec<_> = objs
                    .iter()
                    .filter(|o| o["kind"] == "CustomResourceDefinition")
                    .collect();
                assert_eq!(crds.len(), 1);
                let root =
                    std::fs::read_to_string(fx.path("out/kustomization.yaml")).expect("root");
                assert!(root.contains("resources:\n  - crds\n"), "{root}");
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn chart_secrets_stay_in_private_files_and_the_values_file_is_removed() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new("rendered");
    fx.ok(&["charts", "pull"]);
    fx.ok(&["render"]);
    // The secret values mlplat hands JupyterHub's chart (its proxy token, cookie secret, …).
    let loaded = mlplat::config::load_one(&fx.path("platform.yaml")).expect("load");
    let charts = mlplat::render::charts(&loaded).expect("charts");
    let (_, hub) = charts
        .iter()
        .find(|(tool, _)| tool == "jupyterhub")
        .expect("jupyterhub chart");
    let mut secrets = Vec::new();
    let mut stack = vec![&hub.secret_values];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.len() >= 16 => secrets.push(s.clone()),
            Value::Object(m) => stack.extend(m.values()),
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    assert!(secrets.len() >= 2, "{}", secrets.len());
    // They reached Helm: the test chart puts all its values in its Secret.
    let objs = support::load_yaml_file(&fx.path("out/jupyterhub/chart/secret.yaml"));
    let encoded = objs[0]["data"]["values.yaml"].as_str().expect("data");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let decoded = String::from_utf8(decoded).expect("utf8");
    for s in &secrets {
        assert!(
            decoded.contains(s.as_str()),
            "a secret value did not reach the chart"
        );
    }
    // And appear in no file others can read.
    for (rel, bytes) in support::tree::read_tree(&fx.path("out")) {
        let mode = std::fs::metadata(fx.path("out").join(&rel))
            .expect("metadata")
            .permissions()
            .mode();
        let text = String::from_utf8_lossy(&bytes);
        let holds = secrets.iter().any(|s| text.contains(s.as_str()))
            || (rel.ends_with("chart/secret.yaml"));
        if holds {
            assert_eq!(
                mode & 0o077,
                0,
                "out/{rel} holds secret values and is {mode:o}"
            );
        }
    }
    // The values file Helm read was private and is gone.
    let left: Vec<_> = std::fs::read_dir(fx.path("tmp"))
        .expect("tmp")
        .flatten()
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn a_changed_chart_archive_is_refused_and_out_is_untouched() {
    let fx = Fixture::new("rendered");
    fx.ok(&["charts", "pull"]);
    fx.ok(&["render"]);
    let before = support::tree::read_tree(&fx.path("out"));
    let lock = mlplat::lock::Lock::load(&fx.path("platform.yaml")).expect("lock");
    let pin = lock
        .charts
        .iter()
        .find(|p| p.chart == "jupyterhub")
        .expect("jupyterhub pinned");
    let archive = mlplat::charts::archive_path(&fx.path("cache"), pin);
    let mut bytes = std::fs::read(&archive).expect("cached archive");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&archive, &bytes).expect("change archive");
    let changed = mlplat::encode::sha256_digest(&bytes);

    let calls_before = fx.helm_calls().len();
    let out = fx.mlplat(&["render"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "jupyterhub 4.4.0",
        pin.sha256.as_str(),
        changed.as_str(),
        "mlplat charts pull",
    ] {
        assert!(
            stderr.contains(needle),
            "`{needle}` missing from:\n{stderr}"
        );
    }
    assert_eq!(
        support::tree::read_tree(&fx.path("out")),
        before,
        "out/ changed"
    );
    let after = fx.helm_calls();
    assert!(
        !after[calls_before..]
            .iter()
            .any(|c| c.starts_with("template jupyterhub ")),
        "helm ran on the changed archive: {after:?}"
    );

    // `charts pull` fetches the pinned archive again, and the render is the same as before.
    fx.ok(&["charts", "pull"]);
    fx.ok(&["render"]);
    assert_eq!(support::tree::read_tree(&fx.path("out")), before);
}

#[test]
fn a_chart_without_a_pin_says_to_pull_and_render_never_pulls() {
    let fx = Fixture::new("rendered");
    let out = fx.mlplat(&["render"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("airflow 1.22.0") && stderr.contains("is not pinned in platform.lock.yaml"),
        "{stderr}"
    );
    assert!(
        stderr.contains("run `mlplat charts pull -c platform.yaml`"),
        "{stderr}"
    );
    assert!(!fx.path("out").exists());

    let said = fx.ok(&["charts", "pull"]);
    assert!(said.contains("pinned airflow 1.22.0"), "{said}");
    fx.ok(&["render"]);
    let pulls = |fx: &Fixture| {
        fx.helm_calls()
            .iter()
            .filter(|c| c.starts_with("pull "))
            .count()
    };
    assert_eq!(pulls(&fx), 2, "one pull per chart: {:?}", fx.helm_calls());
    // Pulling again with everything cached and pinned does nothing.
    let said = fx.ok(&["charts", "pull"]);
    assert!(said.contains("is pinned and cached"), "{said}");
    assert_eq!(pulls(&fx), 2);
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    let fx = Fixture::new("rendered");
    fx.ok(&["charts", "pull"]);
    fx.ok(&["render", "-o", "out-a"]);
    fx.ok(&["render", "-o", "out-b"]);
    let (a, b) = (
        support::tree::read_tree(&fx.path("out-a")),
        support::tree::read_tree(&fx.path("out-b")),
    );
    assert!(a.len() > 20, "{}", a.len());
    assert_eq!(a, b);
    // And a fresh render (not only the index) agrees with what is on disk.
    std::fs::write(fx.path("out-a/.mlplat"), "# stale index\n").expect("write");
    let out = fx.mlplat(&["render", "-o", "out-a", "--check"]);
    assert_eq!(out.status.code(), Some(1), "only the index differs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("changed: .mlplat") && !stdout.contains("chart/"),
        "{stdout}"
    );
}
