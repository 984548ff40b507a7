//! The JupyterHub mlplat configures, run: `tests/runtime/jupyterhub.py` renders the published
//! z2jh chart with the values an output tree hands Helm, lays out the hub container's files and
//! environment from the chart's objects and mlplat's Secrets, and runs JupyterHub (the versions
//! of z2jh's hub image, from `tests/runtime/jupyterhub.requirements.txt`), the real
//! configurable-http-proxy and PostgreSQL from Debian's packages on 127.0.0.1; then it signs up,
//! logs in and restarts the hub as users and admins would (see the script's header). The DAG
//! clone init container runs against a git server of the test's own (`tests/runtime/clone_dags.py`).
//!
//! Needs what `scripts/test-env` makes: the tests' venv (helm-python-sdk), the hub's venv
//! (`$CARGO_TARGET_DIR/runtime-venv-jupyterhub`) and configurable-http-proxy
//! (`$CARGO_TARGET_DIR/runtime-npm-chp`); and PostgreSQL (`apt-get install postgresql`). A test
//! whose tools are missing fails and says what to run: none is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_path_buf()
}

/// A directory made by `scripts/test-env`, or a panic saying so.
fn made_by_test_env(var: &str, default: &str, probe: &str) -> PathBuf {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join(default));
    assert!(
        dir.join(probe).exists(),
        "{} is missing: run ./scripts/test-env (or ./scripts/test), which makes it",
        dir.join(probe).display()
    );
    dir
}

/// The published chart archives: `shared/charts/` beside the repository (`$MLPLAT_SHARED`
/// names another `shared/`).
fn charts_dir() -> PathBuf {
    let shared = std::env::var_os("MLPLAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo_root().join("../shared"));
    let dir = shared.join("charts");
    assert!(
        dir.join("jupyterhub-4.4.0.tgz").exists(),
        "{} has no jupyterhub-4.4.0.tgz: `helm pull jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version 4.4.0 -d {}`",
        dir.display(),
        dir.display()
    );
    dir
}

/// Renders `config` with the mlplat binary into `dir/out`.
fn render(config: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("out");
    let r = Command::new(env!("CARGO_BIN_EXE_mlplat"))
        .args(["render", "-c"])
        .arg(config)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run mlplat");
    assert!(
        r.status.success(),
        "mlplat render {}: {}",
        config.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    out
}

/// Runs the hub check on a rendered tree.
fn run_hub(out: &Path, dir: &Path, extra: &[&str]) -> Output {
    let test_venv = made_by_test_env("MLPLAT_TEST_VENV", "test-venv", "bin/python");
    let hub_venv = made_by_test_env(
        "MLPLAT_RUNTIME_VENV_JUPYTERHUB",
        "runtime-venv-jupyterhub",
        "bin/jupyterhub",
    );
    let chp = made_by_test_env(
        "MLPLAT_RUNTIME_CHP",
        "runtime-npm-chp",
        "node_modules/.bin/configurable-http-proxy",
    );
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    Command::new(test_venv.join("bin/python"))
        .arg(support::repo_root().join("tests/runtime/jupyterhub.py"))
        .arg("--out")
        .arg(out)
        .arg("--charts")
        .arg(charts_dir())
        .arg("--hub-venv")
        .arg(&hub_venv)
        .arg("--chp")
        .arg(&chp)
        .arg("--work")
        .arg(&work)
        .args(extra)
        .output()
        .expect("run tests/runtime/jupyterhub.py")
}

fn report(r: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    )
}

/// Passes when every check passed; prints the script's lines either way.
fn assert_passes(r: &Output) {
    let text = report(r);
    println!("{text}");
    assert!(r.status.success(), "the hub check failed:\n{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

#[test]
fn the_local_example_hub_runs_and_its_admin_cannot_be_claimed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render(
        &support::repo_root().join("examples/local.yaml"),
        dir.path(),
    );
    let r = run_hub(&out, dir.path(), &[]);
    assert_passes(&r);
    let text = report(&r);
    for check in [
        "ok   the hub reached its database",
        "ok   signing up as the admin is refused",
        "ok   the admin logs in with the Secret's password",
        "ok   a wrong password is refused",
        "ok   after a rotation the new password logs in",
    ] {
        assert!(text.contains(check), "missing `{check}` in:\n{text}");
    }
}

#[test]
fn the_hub_check_fails_when_the_database_and_the_secret_disagree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render(
        &support::repo_root().join("examples/local.yaml"),
        dir.path(),
    );
    let r = run_hub(
        &out,
        dir.path(),
        &["--db-role-password", "not-the-secrets-password"],
    );
    let text = report(&r);
    assert!(!r.status.success(), "the check passed:\n{text}");
    assert!(
        text.contains("FAIL the hub starts and reaches its database"),
        "{text}"
    );
    assert!(text.contains("password authentication failed"), "{text}");
}

/// The bug this guards against: with NativeAuthenticator alone, whoever signs up first as an
/// admin owns the hub. Without mlplat's snippet the check must see exactly that.
#[test]
fn without_mlplats_admin_accounts_the_check_sees_the_admin_claimed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render(
        &support::repo_root().join("examples/local.yaml"),
        dir.path(),
    );
    let r = run_hub(&out, dir.path(), &["--drop-extra-config", "mlplat-admins"]);
    let text = report(&r);
    assert!(!r.status.success(), "the check passed:\n{text}");
    assert!(
        text.contains("FAIL signing up as the admin is refused"),
        "{text}"
    );
}

#[test]
fn a_demo_hubs_admin_needs_the_secrets_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = support::repo_root().join("examples/example.key");
    let password = dir.path().join("admin-password");
    std::fs::write(&password, "a password the user chose\n").expect("password file");
    let config = dir.path().join("platform.yaml");
    std::fs::write(
        &config,
        format!(
            "platform: demo\nsecrets: {{key: {{fromFile: {}}}}}\ntools:\n  jupyterhub:\n    database: {{type: sqlite-pvc}}\n    auth:\n      type: dummy\n      localDemo: true\n      adminUsers: [admin]\n      adminPasswords:\n        admin: {{fromFile: admin-password}}\n",
            key.display()
        ),
    )
    .expect("config");
    let out = render(&config, dir.path());
    // The Secret holds the user's password, not a derived one.
    let secrets = std::fs::read_to_string(out.join("jupyterhub/secrets.yaml")).expect("secrets");
    assert!(secrets.contains("a password the user chose"), "{secrets}");
    let r = run_hub(&out, dir.path(), &[]);
    assert_passes(&r);
    assert!(report(&r).contains("ok   the admin logs in with the Secret's password"));
}

#[test]
fn the_dag_clone_uses_the_credentials_and_leaves_none_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render(
        &support::repo_root().join("examples/local.yaml"),
        dir.path(),
    );
    let test_venv = made_by_test_env("MLPLAT_TEST_VENV", "test-venv", "bin/python");
    let work = dir.path().join("clone");
    std::fs::create_dir_all(&work).expect("work dir");
    let r = Command::new(test_venv.join("bin/python"))
        .arg(support::repo_root().join("tests/runtime/clone_dags.py"))
        .arg("--out")
        .arg(&out)
        .arg("--work")
        .arg(&work)
        .output()
        .expect("run tests/runtime/clone_dags.py");
    assert_passes(&r);
    let text = report(&r);
    for check in [
        "ok   the DAGs are cloned into ~/dags",
        "ok   the clone needed the credentials",
        "ok   no file in the home holds the token",
        "ok   the home's git config was not read",
        "ok   wrong credentials: exit 0",
        "ok   a public repository is cloned without credentials",
    ] {
        assert!(text.contains(check), "missing `{check}` in:\n{text}");
    }
}

#[test]
fn the_external_database_examples_hub_uses_tls_and_github() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = render(
        &support::repo_root().join("examples/airflow2-external-db.yaml"),
        dir.path(),
    );
    let r = run_hub(&out, dir.path(), &[]);
    assert_passes(&r);
    let text = report(&r);
    for check in [
        "ok   the hub's connection to its database is encrypted",
        "ok   there is no sign-up with GitHub OAuth",
        "ok   login goes to GitHub with the configured client id",
    ] {
        assert!(text.contains(check), "missing `{check}` in:\n{text}");
    }
}
