//! Environments from the command line: `render` into `out/<env>/`, `--check` and `--env` per
//! environment, diagnostics that point into the overlay that set a bad value, `explain`, and
//! `charts pull` for every environment with the values then checked against the charts.
//! The config is the golden case `tests/golden/environments`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");

/// A scratch copy of the golden case `environments`, with the example key beside it.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let case = root.join("tests/golden/environments");
        let config = std::fs::read_to_string(case.join("platform.yaml"))
            .expect("read")
            .replace("../../../examples/example.key", "example.key");
        std::fs::write(dir.path().join("platform.yaml"), config).expect("write");
        std::fs::create_dir(dir.path().join("env")).expect("mkdir");
        for f in ["dev.yaml", "prod.yaml"] {
            std::fs::copy(case.join("env").join(f), dir.path().join("env").join(f)).expect("copy");
        }
        std::fs::copy(
            root.join("examples/example.key"),
            dir.path().join("example.key"),
        )
        .expect("copy key");
        Workspace { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).expect("write");
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(rel)).expect("read");
        assert!(text.contains(from), "{rel} has no {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .current_dir(self.dir.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .env_remove("MLPLAT_SECRET_KEY")
            .output()
            .expect("run mlplat")
    }

    /// Every file under `out/`, with its bytes.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.path("out")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let bytes = std::fs::read(&p).expect("read");
                    out.push((p, bytes));
                }
            }
        }
        out.sort();
        out
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn exits(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(o));
}

#[test]
fn render_writes_each_environment_into_its_own_directory() {
    let ws = Workspace::new();
    let out = ws.run(&["render", "-c", "platform.yaml", "-o", "out"]);
    exits(&out, 0);
    // Without pinned archives the chart values go unchecked, said once for both environments.
    assert_eq!(
        stderr(&out),
        "mlplat: wrote out (70 files: dev, prod)\n\
         mlplat: chart values were not checked against the charts (airflow 1.22.0: not pinned; jupyterhub 4.4.0: not pinned): `mlplat charts pull -c platform.yaml` pins and fetches them, once\n"
    );
    let mut top: Vec<String> = std::fs::read_dir(ws.path("out"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [".mlplat", "dev", "prod"],
        "no top-level kustomization"
    );
    let ns = |env: &str| {
        std::fs::read_to_string(ws.path(&format!("out/{env}/mlflow/namespace.yaml")))
            .expect("namespace")
    };
    assert!(ns("dev").contains("name: mlops-dev-mlflow"), "derived name");
    assert!(
        ns("prod").contains("name: mlops-mlflow"),
        "the overlay's name"
    );
    let secrets = |env: &str| {
        std::fs::read(ws.path(&format!("out/{env}/mlflow/secrets.yaml"))).expect("secrets")
    };
    assert_ne!(
        secrets("dev"),
        secrets("prod"),
        "each environment its own secrets"
    );
}

#[test]
fn check_works_per_environment_and_for_all() {
    let ws = Workspace::new();
    exits(&ws.run(&["render", "-c", "platform.yaml", "-o", "out"]), 0);
    let check = |env: Option<&str>| {
        let mut args = vec!["render", "-c", "platform.yaml", "-o", "out", "--check"];
        args.extend(env.map(|e| ["--env", e]).into_iter().flatten());
        ws.run(&args)
    };
    exits(&check(None), 0);
    exits(&check(Some("dev")), 0);

    // Edit dev by hand: dev and the whole are stale, prod is not.
    ws.edit(
        "out/dev/airflow/values.yaml",
        "executor:",
        "# edited\nexecutor:",
    );
    let before = ws.snapshot();
    let all = check(None);
    exits(&all, 1);
    assert_eq!(
        stdout(&all),
        "out is stale: a fresh render of platform.yaml differs\n  changed: dev/airflow/values.yaml (edited by hand)\nrun `mlplat render -c platform.yaml -o out` to update it\n"
    );
    let dev = check(Some("dev"));
    exits(&dev, 1);
    assert_eq!(
        stdout(&dev),
        "out/dev is stale: a fresh render of platform.yaml (environment dev) differs\n  changed: airflow/values.yaml (edited by hand)\nrun `mlplat render -c platform.yaml -o out --env dev` to update it\n"
    );
    exits(&check(Some("prod")), 0);
    assert_eq!(ws.snapshot(), before, "--check writes nothing");

    // A change to an overlay makes its environment stale, and only it.
    ws.edit("env/prod.yaml", "storage: 50Gi", "storage: 60Gi");
    exits(&check(Some("dev")), 1);
    let prod = check(Some("prod"));
    exits(&prod, 1);
    assert!(
        stdout(&prod).contains("  changed: postgres/statefulset.yaml\n"),
        "{}",
        stdout(&prod)
    );

    // Rendering one environment repairs it alone.
    exits(
        &ws.run(&["render", "-c", "platform.yaml", "-o", "out", "--env", "dev"]),
        0,
    );
    exits(&check(Some("dev")), 0);
    exits(&check(Some("prod")), 1);
    exits(&ws.run(&["render", "-c", "platform.yaml", "-o", "out"]), 0);
    exits(&check(None), 0);
}

#[test]
fn one_environment_renders_into_a_fresh_directory() {
    let ws = Workspace::new();
    let out = ws.run(&[
        "render",
        "-c",
        "platform.yaml",
        "-o",
        "out",
        "--env",
        "prod",
    ]);
    exits(&out, 0);
    assert!(
        ws.path("out/.mlplat").is_file(),
        "out/ is marked as mlplat's"
    );
    assert!(ws.path("out/prod/kustomization.yaml").is_file());
    assert!(!ws.path("out/dev").exists());
    // The whole render then replaces it.
    exits(&ws.run(&["render", "-c", "platform.yaml", "-o", "out"]), 0);
    assert!(ws.path("out/dev/kustomization.yaml").is_file());
}

#[test]
fn an_unknown_environment_is_an_error() {
    let ws = Workspace::new();
    let out = ws.run(&["render", "-c", "platform.yaml", "--env", "prd"]);
    exits(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: platform.yaml:5:1: no environment `prd` in this config\n  |\n5 | environments:\n  | ^\n  = help: did you mean `prod`?\n"
    );
    assert!(!ws.path("out").exists());
}

#[test]
fn a_bad_value_in_an_overlay_is_reported_in_the_overlay() {
    let ws = Workspace::new();
    exits(&ws.run(&["render", "-c", "platform.yaml", "-o", "out"]), 0);
    let before = ws.snapshot();
    ws.edit(
        "env/dev.yaml",
        "dags: {branch: develop}",
        "dags: {branch: develop}\n    executor: Celery",
    );
    ws.edit(
        "env/prod.yaml",
        "  mlflow:\n",
        "  mlflow:\n    replicas: 2\n",
    );
    let out = ws.run(&["render", "-c", "platform.yaml", "-o", "out"]);
    exits(&out, 2);
    assert_eq!(
        stderr(&out).trim_end(),
        include_str!("cli/overlay_problems.txt").trim_end()
    );
    assert!(stdout(&out).is_empty());
    assert_eq!(ws.snapshot(), before, "out/ must be untouched");
}

#[test]
fn environments_may_not_share_a_platform_name() {
    let ws = Workspace::new();
    ws.edit("env/dev.yaml", "backends:", "platform: mlops\nbackends:");
    let out = ws.run(&["render", "-c", "platform.yaml", "-o", "out"]);
    exits(&out, 2);
    // Where the second of them sets the name, with its line.
    assert_eq!(stderr(&out), include_str!("cli/shared_platform.txt"));
}

#[test]
fn overlay_paths_are_relative_to_the_overlay() {
    let ws = Workspace::new();
    ws.write("env/dev-token", "a-dev-token-for-the-dags-repository\n");
    ws.edit(
        "env/dev.yaml",
        "dags: {branch: develop}",
        "dags:\n      branch: develop\n      credentials: {username: bot, token: {fromFile: dev-token}}",
    );
    exits(
        &ws.run(&["render", "-c", "platform.yaml", "-o", "out", "--env", "dev"]),
        0,
    );
}

#[test]
fn explain_names_the_file_and_line_that_set_a_value() {
    let ws = Workspace::new();
    let explain = |args: &[&str]| {
        let mut all = vec!["explain", "-c", "platform.yaml"];
        all.extend_from_slice(args);
        let out = ws.run(&all);
        exits(&out, 0);
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(
        explain(&["--env", "prod", "backends.postgres.inCluster.storage"]),
        "backends.postgres.inCluster.storage = \"50Gi\"\n  set in env/prod.yaml:7:16\n"
    );
    assert_eq!(
        explain(&["backends.postgres.inCluster.storage"]),
        "backends.postgres.inCluster.storage = \"5Gi\"\n  set in platform.yaml:10:26\n",
        "without --env: the base config"
    );
    assert_eq!(
        explain(&["--env", "dev", "tools.jupyterhub.auth.allowedUsers"]),
        "tools.jupyterhub.auth.allowedUsers[0] = \"alice\"\n  set in platform.yaml:27:22\ntools.jupyterhub.auth.allowedUsers[1] = \"dave\"\n  set in env/dev.yaml:14:23\n"
    );
    assert_eq!(
        explain(&["--env", "prod", "tools.mlflow.ingress"]),
        "tools.mlflow.ingress.host = \"mlflow.example.com\"\n  set in platform.yaml:23:21\ntools.mlflow.ingress.className = \"nginx\"\n  set in platform.yaml:23:52\ntools.mlflow.ingress.tlsSecret = \"mlflow-tls\"\n  set in env/prod.yaml:17:26\n"
    );
    assert_eq!(
        explain(&["--env", "dev", "platform"]),
        "platform = \"mlops-dev\"\n  `mlops` set in platform.yaml:3:11, and `-dev`: the environment's name\n"
    );
    assert_eq!(
        explain(&["--env", "dev", "tools.mlflow.ingress.host"]),
        "tools.mlflow.ingress.host is not set\n  removed by env/dev.yaml:11:5 (`ingress: null`)\n"
    );
    assert_eq!(
        explain(&["--env", "dev", "tools.jupyterhub.vscode.enabled"]),
        "tools.jupyterhub.vscode.enabled = false\n  set in env/dev.yaml:16:23\n"
    );
    assert_eq!(
        explain(&["--env", "prod", "tools.jupyterhub.auth.type"]),
        "tools.jupyterhub.auth.type = \"native\"\n  default (not set in any file)\n"
    );
    assert_eq!(
        explain(&["tools.mlflow.replicas"]),
        "tools.mlflow.replicas = 1\n  default (not set in any file)\n"
    );
}

#[test]
fn explain_rejects_an_unknown_key() {
    let ws = Workspace::new();
    let out = ws.run(&["explain", "-c", "platform.yaml", "tools.mlflow.replicaz"]);
    exits(&out, 2);
    assert!(stdout(&out).is_empty());
    assert_eq!(
        stderr(&out),
        "error: unknown key `replicaz` in `tools.mlflow`: did you mean `replicas`?\n"
    );
    let out = ws.run(&["explain", "-c", "platform.yaml", "tools..mlflow"]);
    exits(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: `tools..mlflow` is not a key path: write it as in error messages, e.g. tools.airflow.users[0].role\n"
    );
}

#[test]
fn rotate_acts_on_one_environment_or_on_every_one_after_one_confirmation() {
    let ws = Workspace::new();
    exits(&ws.run(&["render"]), 0);
    let rendered = ws.snapshot();

    let list = ws.run(&["rotate", "--list"]);
    exits(&list, 0);
    let listed = stdout(&list);
    assert!(
        listed.starts_with("environment dev:\n") && listed.contains("\nenvironment prod:\n"),
        "{listed}"
    );
    assert_eq!(
        listed.matches("airflow/fernet-key  generation 1").count(),
        2
    );

    // --env prod: prod's own lock file, and after a render prod's files only.
    let out = ws.run(&["rotate", "--env", "prod", "airflow/fernet-key"]);
    exits(&out, 0);
    assert!(stdout(&out).starts_with("environment prod:\nairflow/fernet-key: generation 1 → 2"));
    assert!(
        stderr(&out)
            .contains("mlplat: wrote platform.prod.lock.yaml (airflow/fernet-key at generation 2)"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.path("platform.dev.lock.yaml").exists());
    assert!(!ws.path("platform.lock.yaml").exists());
    exits(&ws.run(&["render"]), 0);
    let changed: Vec<PathBuf> = ws
        .snapshot()
        .into_iter()
        .filter(|f| !rendered.contains(f))
        .map(|(p, _)| p)
        .collect();
    assert!(!changed.is_empty());
    assert!(
        changed.iter().all(|p| p.starts_with(ws.path("out/prod"))),
        "{changed:?}"
    );
    let list = stdout(&ws.run(&["rotate", "--list", "--env", "prod"]));
    assert!(list.contains("airflow/fernet-key  generation 2"), "{list}");

    // Every environment: all shown, one confirmation; without a terminal, --yes.
    let refused = ws.run(&["rotate", "mlflow/flask-secret-key"]);
    exits(&refused, 2);
    assert!(
        stdout(&refused).contains("environment dev:\nmlflow/flask-secret-key: generation 1 → 2")
    );
    assert!(
        stderr(&refused).contains("pass --yes to confirm"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !ws.path("platform.dev.lock.yaml").exists(),
        "nothing written"
    );
    let out = ws.run(&["rotate", "mlflow/flask-secret-key", "--yes"]);
    exits(&out, 0);
    for env in ["dev", "prod"] {
        let lock =
            std::fs::read_to_string(ws.path(&format!("platform.{env}.lock.yaml"))).expect("lock");
        assert!(lock.contains("mlflow/flask-secret-key: 2"), "{env}: {lock}");
    }

    // A name no environment derives is the usual error.
    let out = ws.run(&["rotate", "mlflow/flask-secret-kee", "--yes"]);
    exits(&out, 2);
    assert!(
        stderr(&out).contains("did you mean `mlflow/flask-secret-key`?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_lock_file_of_the_base_config_beside_environments_is_refused() {
    let ws = Workspace::new();
    ws.write(
        "platform.lock.yaml",
        "secrets:\n  generations:\n    airflow/fernet-key: 2\n",
    );
    for args in [
        vec!["render"],
        vec!["render", "--env", "dev"],
        vec!["rotate", "--list"],
    ] {
        let out = ws.run(&args);
        exits(&out, 2);
        assert_eq!(
            stderr(&out),
            format!(
                "error: platform.lock.yaml: a lock file of a config without environments, but platform.yaml declares environments and each has a lock file of its own (platform.{}.lock.yaml and the like): move what each environment keeps (secrets, aws, charts) into its own lock file, then delete platform.lock.yaml\n",
                "dev"
            ),
            "{args:?}"
        );
    }
    assert!(!ws.path("out").exists());
}

/// `charts pull` with environments: every environment's charts (the published archives,
/// through the stand-in Helm on Helm's engine) pinned in its own lock file; then every
/// environment's chart values are checked against them, and a bad key in one environment's
/// values file (named relative to the overlay that lists it) is exit 2 at its line, with `out/`
/// as it was.
#[test]
fn charts_pull_pins_every_environments_charts_and_their_values_are_checked() {
    let ws = Workspace::new();
    let helm = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(ws.path(""))
            .args(args)
            .env_remove("MLPLAT_SECRET_KEY")
            .env(
                "MLPLAT_HELM",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake-helm"),
            )
            .env(
                "MLPLAT_FAKE_HELM_ARCHIVES",
                support::published::charts_dir(),
            )
            .env("MLPLAT_CACHE", ws.path("cache"))
            .output()
            .expect("run mlplat")
    };
    let out = helm(&["charts", "pull", "-c", "platform.yaml"]);
    exits(&out, 0);
    let said = stderr(&out);
    // Both environments install the same two chart versions, each pinned in each
    // environment's own lock file.
    assert_eq!(said.matches(": pinned ").count(), 4, "{said}");
    for env in ["dev", "prod"] {
        for chart in [
            "airflow: pinned airflow 1.22.0",
            "jupyterhub: pinned jupyterhub 4.4.0",
        ] {
            assert!(said.contains(&format!("{env}/{chart}")), "{said}");
        }
        let lock =
            std::fs::read_to_string(ws.path(&format!("platform.{env}.lock.yaml"))).expect("lock");
        assert_eq!(lock.matches("\n  - chart: ").count(), 2, "{lock}");
        assert!(
            lock.contains("sha256:1f7d1dfe3d58e2c5"),
            "the published airflow 1.22.0: {lock}"
        );
    }
    assert!(!ws.path("platform.lock.yaml").exists());
    let again = helm(&["charts", "pull", "-c", "platform.yaml"]);
    exits(&again, 0);
    assert!(
        !stderr(&again).contains("pinned airflow"),
        "{}",
        stderr(&again)
    );

    let out = helm(&["render", "-c", "platform.yaml", "-o", "out"]);
    exits(&out, 0);
    assert_eq!(stderr(&out), "mlplat: wrote out (70 files: dev, prod)\n");

    let before = ws.snapshot();
    std::fs::create_dir(ws.path("values")).expect("mkdir");
    ws.write(
        "values/prod-airflow.yaml",
        "workers:\n  replicas: 3\n  replicaz: 4\n",
    );
    ws.edit(
        "env/prod.yaml",
        "    ingress: {tlsSecret: airflow-tls}\n",
        "    ingress: {tlsSecret: airflow-tls}\n    values: [../values/prod-airflow.yaml]\n",
    );
    let out = helm(&["render", "-c", "platform.yaml", "-o", "out"]);
    exits(&out, 2);
    let said = stderr(&out);
    assert!(
        said.starts_with(
            "error: env/../values/prod-airflow.yaml:3:3: workers.replicaz: unknown key `replicaz`"
        ),
        "{said}"
    );
    assert_eq!(ws.snapshot(), before, "out/ must be untouched");
}
