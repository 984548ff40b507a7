//! The command line as a user meets it: exit codes, the exact error text for bad input, and
//! the promise that a failed run leaves `out/` exactly as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");

/// A scratch directory holding the example platform, already rendered into `out/`.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for f in ["local.yaml", "example.key", "example-git-token"] {
            std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy example");
        }
        let ws = Workspace { dir };
        let out = ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ws
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).expect("write");
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .args(args)
            .env_remove("MLPLAT_SECRET_KEY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run mlplat")
    }

    /// Every file under `out/` with its bytes and mode.
    fn snapshot(&self) -> BTreeMap<String, (Vec<u8>, u32)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.path("out")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read_dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(self.dir.path())
                        .expect("prefix")
                        .display()
                        .to_string();
                    out.insert(rel, (std::fs::read(&p).expect("read"), mode(&p)));
                }
            }
        }
        out
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode(_: &Path) -> u32 {
    0
}

/// Writes `config` as `bad.yaml`, renders it into the existing `out/`, and checks the exit
/// code, that stderr is exactly `expected`, and that `out/` did not change.
fn rejects(config: &str, env: &[(&str, &str)], expected: &str) {
    let ws = Workspace::new();
    ws.write("bad.yaml", config);
    let before = ws.snapshot();
    let out = ws.run(&["render", "-c", "bad.yaml", "-o", "out"], env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end(), expected.trim_end(), "stderr differs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert_eq!(ws.snapshot(), before, "out/ must be untouched");
}

const KEY: &str = "secrets: {key: {fromFile: example.key}}\n";

#[test]
fn yaml_syntax_error() {
    rejects(
        &format!("platform: mlops\n{KEY}tools:\n  airflow: {{flavor: official\n"),
        &[],
        include_str!("cli/yaml_syntax_error.txt"),
    );
}

#[test]
fn unknown_key_suggests_the_right_one() {
    rejects(
        &format!("platform: mlops\n{KEY}tools:\n  airflw: {{}}\n"),
        &[],
        include_str!("cli/unknown_key.txt"),
    );
}

#[test]
fn wrong_type() {
    rejects(
        &format!("platform: mlops\n{KEY}tools:\n  mlflow:\n    replicas: two\n"),
        &[],
        include_str!("cli/wrong_type.txt"),
    );
}

#[test]
fn an_official_chart_version_outside_the_supported_range_names_the_range() {
    rejects(
        &format!("platform: mlops\n{KEY}tools:\n  airflow:\n    chart: {{version: \"1.17.0\"}}\n"),
        &[],
        include_str!("cli/unsupported_chart_version.txt"),
    );
}

#[test]
fn unquoted_version_is_a_number() {
    rejects(
        &format!(
            "platform: mlops\n{KEY}tools:\n  jupyterhub:\n    chart: {{version: 4.4}}\n    auth: {{adminUsers: [a]}}\n"
        ),
        &[],
        include_str!("cli/unquoted_version.txt"),
    );
}

#[test]
fn missing_environment_variable() {
    rejects(
        &format!(
            "platform: mlops\n{KEY}tools:\n  airflow:\n    dags:\n      repo: https://example.com/dags.git\n      credentials: {{username: bot, token: {{fromEnv: MLPLAT_TEST_UNSET_TOKEN}}}}\n"
        ),
        &[],
        include_str!("cli/missing_env.txt"),
    );
}

#[test]
fn empty_environment_variable() {
    rejects(
        &format!(
            "platform: mlops\n{KEY}tools:\n  mlflow:\n    auth: {{adminPassword: {{fromEnv: MLPLAT_TEST_EMPTY}}}}\n"
        ),
        &[("MLPLAT_TEST_EMPTY", "")],
        include_str!("cli/empty_env.txt"),
    );
}

#[test]
fn missing_file_reference() {
    rejects(
        &format!(
            "platform: mlops\n{KEY}tools:\n  mlflow:\n    auth: {{adminPassword: {{fromFile: nowhere.txt}}}}\n"
        ),
        &[],
        include_str!("cli/missing_file.txt"),
    );
}

#[test]
fn invalid_dns_name() {
    rejects(
        &format!("platform: My_Platform\n{KEY}"),
        &[],
        include_str!("cli/invalid_dns_name.txt"),
    );
}

#[test]
fn duplicate_key() {
    rejects(
        &format!("platform: mlops\n{KEY}platform: other\n"),
        &[],
        include_str!("cli/duplicate_key.txt"),
    );
}

#[test]
fn enum_typo() {
    rejects(
        &format!("platform: mlops\n{KEY}backends:\n  postgres: {{mode: in-clustr}}\n"),
        &[],
        include_str!("cli/enum_typo.txt"),
    );
}

#[test]
fn dummy_authenticator_needs_local_demo() {
    rejects(
        &format!("platform: mlops\n{KEY}tools:\n  jupyterhub:\n    auth: {{type: dummy}}\n"),
        &[],
        include_str!("cli/dummy_auth.txt"),
    );
}

#[test]
fn hub_admins_need_secret_keys_passwords_bcrypt_takes_and_vscode_an_image() {
    let long = "x".repeat(80);
    rejects(
        &format!(
            "platform: mlops\n{KEY}tools:\n  jupyterhub:\n    auth:\n      adminUsers: [Admin, ops]\n      adminPasswords:\n        ops: {{fromEnv: OPS_PASSWORD}}\n        eve: {{fromEnv: OPS_PASSWORD}}\n    vscode: {{enabled: true}}\n"
        ),
        &[("OPS_PASSWORD", long.as_str())],
        include_str!("cli/hub_admins.txt"),
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    rejects(
        &format!(
            "platform: mlops\n{KEY}tools:\n  mlflow:\n    replicas: 0\n    imagee: x\n  jupyterhub:\n    ingress: {{host: 'not a host'}}\n"
        ),
        &[],
        include_str!("cli/several_problems.txt"),
    );
}

#[test]
fn short_secret_key() {
    let ws = Workspace::new();
    ws.write("short.key", "tooshort\n");
    ws.write(
        "bad.yaml",
        "platform: mlops\nsecrets: {key: {fromFile: short.key}}\n",
    );
    let before = ws.snapshot();
    let out = ws.run(&["render", "-c", "bad.yaml", "-o", "out"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        include_str!("cli/short_key.txt").trim_end()
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("tooshort"),
        "the key is never printed"
    );
    assert_eq!(ws.snapshot(), before);
}

#[test]
fn missing_config_file() {
    let ws = Workspace::new();
    let before = ws.snapshot();
    let out = ws.run(&["render", "-c", "nope.yaml", "-o", "out"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: cannot read config nope.yaml: No such file or directory (os error 2)"
    );
    assert_eq!(ws.snapshot(), before);
}

#[test]
fn refuses_an_out_dir_it_did_not_write() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("mine")).expect("mkdir");
    ws.write("mine/notes.txt", "precious");
    let out = ws.run(&["render", "-c", "local.yaml", "-o", "mine"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: mine is not empty and was not written by mlplat (no .mlplat file in it): refusing to replace it"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("mine/notes.txt")).expect("read"),
        "precious"
    );
    assert_eq!(std::fs::read_dir(ws.path("mine")).expect("ls").count(), 1);
}

#[test]
fn check_exit_codes_follow_the_state_of_out() {
    let ws = Workspace::new();
    let check =
        |ws: &Workspace| ws.run(&["render", "-c", "local.yaml", "-o", "out", "--check"], &[]);
    let clean = check(&ws);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(clean.stdout.is_empty());

    // A hand edit, a stray file and a deleted file are all named.
    let values = ws.path("out/airflow/values.yaml");
    let mut text = std::fs::read_to_string(&values).expect("read");
    text.push_str("# edited by hand\n");
    std::fs::write(&values, text).expect("write");
    ws.write("out/mlflow/stray.yaml", "kind: ConfigMap\n");
    std::fs::remove_file(ws.path("out/jupyterhub/helmrelease.yaml")).expect("rm");
    let before = ws.snapshot();
    let stale = check(&ws);
    assert_eq!(stale.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&stale.stdout),
        "out is stale: a fresh render of local.yaml differs\n  changed: airflow/values.yaml (edited by hand)\n  missing: jupyterhub/helmrelease.yaml\n  extra: mlflow/stray.yaml\nrun `mlplat render -c local.yaml -o out` to update it\n"
    );
    assert_eq!(ws.snapshot(), before, "--check writes nothing");

    // A bad config is an error (2), not drift.
    ws.write("bad.yaml", "platform: 1\n");
    let bad = ws.run(&["render", "-c", "bad.yaml", "-o", "out", "--check"], &[]);
    assert_eq!(bad.status.code(), Some(2));

    // A render deletes only what mlplat wrote: the stray file stops it, and nothing changes.
    let refused = ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim_end(),
        "error: out holds files mlplat did not write (mlflow/stray.yaml): move them out of it, mlplat replaces out whole and deletes only the files its index lists"
    );
    assert_eq!(ws.snapshot(), before);

    // Once it is moved away, rendering again repairs everything.
    std::fs::remove_file(ws.path("out/mlflow/stray.yaml")).expect("rm");
    assert_eq!(
        ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(check(&ws).status.code(), Some(0));
}

#[test]
fn a_disabled_tool_is_left_out_and_the_others_render() {
    let ws = Workspace::new();
    let config = std::fs::read_to_string(ws.path("local.yaml"))
        .expect("read")
        .replace("  mlflow:\n", "  mlflow:\n    enabled: false\n");
    ws.write("nomlflow.yaml", &config);
    let out = ws.run(&["render", "-c", "nomlflow.yaml", "-o", "out2"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ws.path("out2/mlflow").exists());
    for dir in ["postgres", "airflow", "jupyterhub"] {
        assert!(
            ws.path(&format!("out2/{dir}/kustomization.yaml")).is_file(),
            "{dir}"
        );
    }
    let values = std::fs::read_to_string(ws.path("out2/airflow/values.yaml")).expect("read");
    assert!(
        !values.contains("MLFLOW_TRACKING_URI"),
        "no link to a disabled MLflow"
    );
}

#[test]
fn two_renders_are_byte_identical() {
    let ws = Workspace::new();
    let first = ws.snapshot();
    std::fs::remove_dir_all(ws.path("out")).expect("rm");
    assert_eq!(
        ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(ws.snapshot(), first);
}

#[test]
fn init_writes_a_config_that_renders() {
    let ws = Workspace::new();
    let out = ws.run(&["init", "--dir", "fresh", "--name", "demo"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&ws.path("fresh/mlplat.key")), 0o600);
    let key = std::fs::read_to_string(ws.path("fresh/mlplat.key")).expect("key");
    assert_eq!(key.trim().len(), 64);
    assert!(
        std::fs::read_to_string(ws.path("fresh/.gitignore"))
            .expect("gitignore")
            .contains("/mlplat.key")
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(key.trim()),
        "the key is never printed"
    );
    let render = ws.run(
        &["render", "-c", "fresh/platform.yaml", "-o", "fresh/out"],
        &[],
    );
    assert_eq!(
        render.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    // A second init keeps the key and refuses to overwrite the config.
    let again = ws.run(&["init", "--dir", "fresh"], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(ws.path("fresh/mlplat.key")).expect("key"),
        key
    );
}

/// `mlplat plan|provision|destroy|images pin` run `mlplat-aws` from mlplat's own directory
/// (the tests of crates/mlplat-aws exercise that path against moto); without it they say what
/// to install and exit 2.
#[test]
fn the_aws_commands_live_in_the_binary_beside_mlplat() {
    let ws = Workspace::new();
    let lone = ws.path("lone-mlplat");
    std::fs::copy(BIN, &lone).expect("copy mlplat");
    let out = Command::new(&lone)
        .args(["plan", "-c", "local.yaml"])
        .current_dir(ws.path(""))
        .output()
        .expect("run mlplat");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("second binary, `mlplat-aws`")
            && err.contains("cargo install --locked --path crates/mlplat-aws"),
        "{err}"
    );
}

#[test]
fn a_config_with_every_tool_disabled_is_a_clear_warning() {
    let ws = Workspace::new();
    ws.write(
        "none.yaml",
        "platform: mlops\nsecrets: {key: {fromFile: example.key}}\ntools:\n  mlflow: {enabled: false}\n",
    );
    let out = ws.run(&["render", "-c", "none.yaml", "-o", "empty"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: no tool is enabled in none.yaml: tools.airflow, tools.mlflow and tools.jupyterhub are each absent or `enabled: false`, so empty holds no workload"),
        "{stderr}"
    );
    assert!(stderr.contains("(2 files: no tool)"), "{stderr}");
    // The example renders tools: no such warning.
    let out = ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[]);
    assert!(out.stderr.is_empty() || !String::from_utf8_lossy(&out.stderr).contains("no tool"));
}
