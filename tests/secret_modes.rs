//! Secrets for GitOps, judged from the outside: `external-secrets` mode leaves no value in
//! `out/` and makes the same Secrets `plain` writes; a rotation rolls the pods; a password with
//! every special character survives every URI; and nothing mlplat prints holds a value.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mlplat::encode::uri_encode;
use mlplat::render::{Rendered, render_full};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(config: &Path) -> mlplat::config::Loaded {
    mlplat::config::load_one(config).unwrap_or_else(|e| panic!("{}: {e}", config.display()))
}

fn render(loaded: &mlplat::config::Loaded) -> Rendered {
    render_full(loaded).expect("render")
}

/// Every secret value a render knows, in every form it is written in: as it is, percent-encoded
/// (URIs) and with `%` doubled (ini files). User names and other short values are left out.
fn secret_values(loaded: &mlplat::config::Loaded, r: &Rendered) -> BTreeSet<String> {
    let mut raw: BTreeSet<String> = r.derived.values().map(|s| s.expose().to_owned()).collect();
    raw.extend(loaded.inputs.iter().map(|(_, s)| s.expose().to_owned()));
    raw.insert(loaded.key.expose().to_owned());
    for o in &r.secrets {
        for (k, v) in &o.data {
            if o.sources.contains_key(k) {
                raw.insert(v.expose().to_owned());
            }
        }
    }
    let mut all = BTreeSet::new();
    for v in raw.into_iter().filter(|v| v.len() >= 8) {
        all.insert(uri_encode(&v));
        all.insert(uri_encode(&v).replace('%', "%%"));
        // A multi-line value (an ini file, chart values): each of its long lines too.
        for line in v.lines().filter(|l| l.len() >= 16) {
            all.insert(line.to_owned());
        }
        all.insert(v);
    }
    all
}

fn docs(text: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(text);
    mlplat::yaml::parse_documents(&text)
        .expect("yaml")
        .iter()
        .map(|d| d.to_json())
        .filter(|d| !d.is_null())
        .collect()
}

fn objects(r: &Rendered) -> Vec<Value> {
    r.tree
        .files
        .iter()
        .filter(|(p, _)| p.ends_with(".yaml") && !p.ends_with("values.yaml"))
        .flat_map(|(_, f)| docs(&f.bytes))
        .collect()
}

#[test]
fn external_secrets_mode_leaves_no_secret_value_in_out() {
    let loaded = load(&root().join("examples/external-secrets.yaml"));
    let r = render(&loaded);
    let values = secret_values(&loaded, &r);
    assert!(values.len() >= 20, "found only {} values", values.len());
    // Every kind of value is there: derived, given by the user, and composed (URIs).
    for name in [
        "airflow/fernet-key",
        "postgres/superuser",
        "jupyterhub/cookie-secret",
    ] {
        assert!(r.derived.contains_key(name), "{name} not derived");
    }
    assert!(
        loaded
            .inputs
            .get("/tools/jupyterhub/auth/github/clientSecret")
            .is_some()
    );
    for (path, file) in &r.tree.files {
        assert!(!file.secret, "{path} is marked as holding Secret data");
        let text = String::from_utf8_lossy(&file.bytes);
        for v in &values {
            assert!(
                !text.contains(v.as_str()),
                "{path} holds a secret value ({})",
                mlplat::encode::fingerprint(v.as_bytes())
            );
        }
        for doc in docs(&file.bytes).iter().filter(|_| path.ends_with(".yaml")) {
            assert_ne!(doc["kind"], "Secret", "{path} holds a Secret");
        }
    }
}

#[test]
fn external_secrets_make_exactly_the_secrets_plain_writes() {
    let mut loaded = load(&root().join("examples/external-secrets.yaml"));
    let es = objects(&render(&loaded));
    loaded.platform.secrets.mode = mlplat::config::SecretMode::Plain;
    let plain = objects(&render(&loaded));

    let secrets: BTreeSet<(String, String, Vec<String>)> = plain
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .map(|o| {
            let keys = o["stringData"].as_object().expect("stringData");
            (
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                keys.keys().cloned().collect(),
            )
        })
        .collect();
    let mut made = BTreeSet::new();
    for o in es.iter().filter(|o| o["kind"] == "ExternalSecret") {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        let target = o["spec"]["target"]["name"].as_str().unwrap_or_default();
        let store = &o["spec"]["secretStoreRef"];
        assert!(
            es.iter().any(|s| s["kind"] == store["kind"]
                && s["metadata"]["name"] == store["name"]
                && s["metadata"]["namespace"] == ns),
            "{ns}/{target}: its {store} is not rendered in its namespace"
        );
        let mut keys = Vec::new();
        for d in o["spec"]["data"].as_array().expect("data") {
            let key = d["secretKey"].as_str().unwrap_or_default();
            assert_eq!(d["remoteRef"]["key"], format!("gitops/{ns}/{target}"));
            assert_eq!(d["remoteRef"]["property"], key);
            keys.push(key.to_owned());
        }
        keys.sort();
        made.insert((ns.to_owned(), target.to_owned(), keys));
    }
    assert!(secrets.len() >= 8, "{secrets:?}");
    assert_eq!(made, secrets);
    let custom: Vec<Value> = es
        .into_iter()
        .filter(|o| {
            o["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("external-secrets.io/"))
        })
        .collect();
    assert!(custom.iter().any(|o| o["kind"] == "SecretStore"));
    support::validate_custom_resources(&custom).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_rotation_rolls_the_pods_even_with_no_value_in_out() {
    let mut loaded = load(&root().join("examples/external-secrets.yaml"));
    let before = render(&loaded);
    loaded
        .lock
        .secrets
        .generations
        .insert("mlflow/flask-secret-key".into(), 2);
    let after = render(&loaded);
    let changed: Vec<&str> = after
        .tree
        .files
        .iter()
        .filter(|(p, f)| before.tree.files[*p].bytes != f.bytes)
        .map(|(p, _)| p.as_str())
        .collect();
    // The index in the marker file changes with the files it lists.
    assert_eq!(
        changed,
        [".mlplat", "mlflow/deployment.yaml", "mlflow/secrets.yaml"]
    );
    // The same in plain mode: the checksum follows the value.
    loaded.platform.secrets.mode = mlplat::config::SecretMode::Plain;
    let rotated = render(&loaded);
    loaded.lock = Default::default();
    let fresh = render(&loaded);
    let annotation = |r: &Rendered| {
        docs(&r.tree.files["mlflow/deployment.yaml"].bytes)[0]["spec"]["template"]["metadata"]
            ["annotations"]["checksum/secret"]
            .clone()
    };
    let (a, b) = (annotation(&fresh), annotation(&rotated));
    assert!(a.as_str().is_some_and(|s| s.starts_with("hmac:")), "{a}");
    assert_ne!(a, b);
    // PostgreSQL does not read the Flask key: its reconcile Job (named by a checksum of its
    // inputs) stays the same.
    let job = |r: &Rendered| {
        docs(&r.tree.files["postgres/job-reconcile.yaml"].bytes)[0]["metadata"]["name"].clone()
    };
    assert_eq!(job(&fresh), job(&rotated));
}

#[test]
fn jupyterhub_secrets_travel_in_secrets_never_in_values() {
    for example in [
        "local.yaml",
        "airflow2-external-db.yaml",
        "external-secrets.yaml",
    ] {
        let loaded = load(&root().join("examples").join(example));
        let r = render(&loaded);
        let values = docs(&r.tree.files["jupyterhub/values.yaml"].bytes).remove(0);
        let release = objects(&r)
            .into_iter()
            .find(|o| o["kind"] == "HelmRelease" && o["metadata"]["name"] == "jupyterhub")
            .expect("jupyterhub release");
        assert_eq!(release["spec"]["values"], values, "{example}");
        let hub = &values["hub"];
        assert!(hub["db"].get("password").is_none(), "{example}");
        if let Some(url) = hub["db"]["url"].as_str() {
            let userinfo = url.split_once("://").and_then(|(_, r)| r.split_once('@'));
            assert!(
                userinfo.is_some_and(|(user, _)| !user.contains(':')),
                "{example}: hub.db.url holds a password"
            );
        }
        if hub["db"]["type"] == "postgres" {
            assert_eq!(
                hub["extraEnv"]["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"],
                "hub.db.password",
                "{example}"
            );
        }
        if hub["config"]["JupyterHub"]["authenticator_class"] == "github" {
            assert_eq!(
                hub["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"],
                "jupyterhub-oauth",
                "{example}"
            );
            assert!(
                hub["config"]["GitHubOAuthenticator"]
                    .get("client_secret")
                    .is_none()
            );
        }
        let text =
            String::from_utf8_lossy(&r.tree.files["jupyterhub/values.yaml"].bytes).into_owned();
        for v in secret_values(&loaded, &r) {
            assert!(
                !text.contains(&v),
                "{example}: jupyterhub/values.yaml holds a secret"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Through the binary
// ---------------------------------------------------------------------------------------------

/// A scratch directory with the example configs and their input files.
struct Workspace {
    dir: tempfile::TempDir,
    /// Everything mlplat printed, every run.
    printed: Vec<(String, Vec<u8>)>,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = root().join("examples");
        for f in [
            "local.yaml",
            "external-secrets.yaml",
            "example.key",
            "example-git-token",
            "example-oauth-secret",
        ] {
            std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy example");
        }
        Workspace {
            dir,
            printed: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&mut self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .args(args)
            .env_remove("MLPLAT_SECRET_KEY")
            .env("RUST_BACKTRACE", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run mlplat");
        let mut printed = out.stdout.clone();
        printed.extend_from_slice(&out.stderr);
        self.printed.push((args.join(" "), printed));
        out
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The password of a URI, percent-decoded, read by Python's own parsers.
const DECODE: &str = r#"
import configparser, json, sys
from urllib.parse import unquote, urlsplit
d = json.load(sys.stdin)
def password(uri):
    u = urlsplit(uri)
    assert u.hostname and u.port == 5432 and u.path.count("/") == 1, uri
    return unquote(u.password)
ini = configparser.ConfigParser()
ini.read_string(d["ini"])
print(json.dumps({
    "connection": password(d["connection"]),
    "backend": password(d["backend"]),
    "ini": password(ini["mlflow"]["database_uri"]),
    "ini_admin": ini["mlflow"]["admin_password"],
}))
"#;

#[test]
fn a_password_with_every_special_character_reaches_every_uri_intact() {
    let mut ws = Workspace::new();
    let password = "p/a@s:s%w+o?r#d&$(x)\"y' z%41é";
    std::fs::write(
        ws.path("uri.yaml"),
        "platform: uri\nsecrets: {key: {fromFile: example.key}}\ntools:\n  airflow:\n    database: {password: {fromEnv: MLPLAT_TEST_DB_PASSWORD}}\n  mlflow:\n    database: {password: {fromEnv: MLPLAT_TEST_DB_PASSWORD}}\n    auth: {adminPassword: {fromEnv: MLPLAT_TEST_DB_PASSWORD}}\n",
    )
    .expect("write config");
    let out = ws.run(
        &["render", "-c", "uri.yaml", "-o", "out"],
        &[("MLPLAT_TEST_DB_PASSWORD", password)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let secret = |file: &str, name: &str, key: &str| -> String {
        let bytes = std::fs::read(ws.path(file)).expect("read");
        docs(&bytes)
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
            .and_then(|d| d["stringData"][key].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{file}: no {name}[{key}]"))
    };
    let input = serde_json::json!({
        "connection": secret("out/airflow/secrets.yaml", "airflow-db-auth", "connection"),
        "backend": secret("out/mlflow/secrets.yaml", "mlflow-db-auth", "backend-store-uri"),
        "ini": secret("out/mlflow/secrets.yaml", "mlflow-auth", "basic_auth.ini"),
    });
    let mut child = Command::new("python3")
        .args(["-c", DECODE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.to_string().as_bytes())
            .expect("write");
    }
    let result = child.wait_with_output().expect("python3");
    assert!(result.status.success(), "{}", text(&result.stderr));
    let decoded: Value = serde_json::from_slice(&result.stdout).expect("json");
    for key in ["connection", "backend", "ini", "ini_admin"] {
        assert_eq!(decoded[key], password, "{key}");
    }
    // The Postgres init script takes the password from the environment, not from its text.
    let init = std::fs::read_to_string(ws.path("out/postgres/configmap.yaml")).expect("read");
    assert!(!init.contains(password) && !init.contains(&uri_encode(password)));
}

/// Every value mlplat knows for a config (at the generations of its lock file now, and at 1).
fn known_values(config: &Path) -> BTreeSet<String> {
    let mut loaded = load(config);
    let mut all = secret_values(&loaded, &render(&loaded));
    loaded.lock = Default::default();
    all.extend(secret_values(&loaded, &render(&loaded)));
    all
}

#[test]
fn nothing_mlplat_prints_holds_a_secret_value() {
    let mut ws = Workspace::new();
    let ok = |o: &Output, code: i32| {
        assert_eq!(
            o.status.code(),
            Some(code),
            "{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    };
    ok(
        &ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[]),
        0,
    );
    ok(
        &ws.run(
            &["render", "-c", "external-secrets.yaml", "-o", "out-es"],
            &[],
        ),
        0,
    );
    // A Secret file changed by hand: --check names it, and shows no content.
    let secrets = ws.path("out/airflow/secrets.yaml");
    let mut edited = std::fs::read_to_string(&secrets).expect("read");
    edited.push_str("# edited\n");
    std::fs::write(&secrets, edited).expect("write");
    ok(
        &ws.run(&["render", "-c", "local.yaml", "-o", "out", "--check"], &[]),
        1,
    );
    ok(&ws.run(&["rotate", "-c", "local.yaml", "--list"], &[]), 0);
    ok(
        &ws.run(&["rotate", "-c", "local.yaml", "airflow/fernet-key"], &[]),
        0,
    );
    ok(
        &ws.run(
            &["rotate", "-c", "local.yaml", "postgres/users/mlflow"],
            &[],
        ),
        0,
    );
    ok(
        &ws.run(
            &[
                "rotate",
                "-c",
                "external-secrets.yaml",
                "jupyterhub/cookie-secret",
            ],
            &[],
        ),
        0,
    );
    ok(
        &ws.run(&["rotate", "-c", "local.yaml", "airflow/fernet-kee"], &[]),
        2,
    );
    ok(
        &ws.run(&["render", "-c", "local.yaml", "-o", "out", "--check"], &[]),
        1,
    );
    // Errors about values: a key too short, a Secret file the config cannot read.
    std::fs::write(ws.path("short.key"), "hunter2-short\n").expect("write");
    std::fs::write(
        ws.path("short.yaml"),
        "platform: s\nsecrets: {key: {fromFile: short.key}}\ntools: {mlflow: {}}\n",
    )
    .expect("write");
    ok(
        &ws.run(&["render", "-c", "short.yaml", "-o", "out-s"], &[]),
        2,
    );

    let mut values = known_values(&ws.path("local.yaml"));
    values.extend(known_values(&ws.path("external-secrets.yaml")));
    values.insert("hunter2-short".into());
    assert!(values.len() > 40, "{}", values.len());
    for (run, printed) in &ws.printed {
        let printed = text(printed);
        for v in &values {
            assert!(
                !printed.contains(v.as_str()),
                "`mlplat {run}` printed a secret value ({}):\n{printed}",
                mlplat::encode::fingerprint(v.as_bytes())
            );
        }
    }
    // What was printed is still useful: fingerprints and names.
    let rotate = text(&ws.printed[4].1);
    assert!(
        rotate.contains("airflow/fernet-key: generation 1 → 2 (sha256:"),
        "{rotate}"
    );
}

#[test]
fn rotate_bumps_one_generation_and_says_what_restarts() {
    let mut ws = Workspace::new();
    let out = ws.run(&["rotate", "-c", "local.yaml", "airflow/fernet-key"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("  changes Secret mlops-airflow/airflow-keys (fernet-key)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  restarts: Airflow (HelmRelease mlops-airflow/airflow): its pods read Secret airflow-keys at start"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("changes Secret").count(), 1, "{stdout}");
    let lock = std::fs::read_to_string(ws.path("local.lock.yaml")).expect("lock written");
    assert!(lock.contains("airflow/fernet-key: 2"), "{lock}");
    let again = ws.run(&["rotate", "-c", "local.yaml", "airflow/fernet-key"], &[]);
    assert!(text(&again.stdout).contains("generation 2 → 3"));

    // A database password: its Secrets change, MLflow rolls, and a new reconcile Job sets the
    // role's password in PostgreSQL.
    let out = ws.run(
        &["rotate", "-c", "local.yaml", "postgres/users/mlflow"],
        &[],
    );
    let stdout = text(&out.stdout);
    for line in [
        "  changes Secret mlops-mlflow/mlflow-db-auth (backend-store-uri, postgresql-password)\n",
        "  changes Secret mlops-postgres/postgres-auth (mlflow-password)\n",
        "  restarts: MLflow (Deployment mlops-mlflow/mlflow): rolls by itself",
        "  runs: Job mlops-postgres/postgres-reconcile-",
        "  then: the new reconcile Job sets the new password of role `mlflow` in PostgreSQL",
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }

    let list = ws.run(&["rotate", "-c", "local.yaml", "--list"], &[]);
    let list = text(&list.stdout);
    assert!(
        list.contains("airflow/fernet-key  generation 3  mlops-airflow/airflow-keys[fernet-key]"),
        "{list}"
    );

    let lock = std::fs::read_to_string(ws.path("local.lock.yaml")).expect("lock");
    let bad = ws.run(&["rotate", "-c", "local.yaml", "airflow/fernet"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("did you mean `airflow/fernet-key`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("valid names: airflow/api-secret-key, "),
        "{stderr}"
    );
    // A failed rotation leaves the lock file as it was.
    assert_eq!(
        std::fs::read_to_string(ws.path("local.lock.yaml")).expect("lock"),
        lock
    );
}

#[test]
fn plain_mode_warns_once_when_out_is_tracked_by_git_with_a_key_of_its_own() {
    let mut ws = Workspace::new();
    let dir = ws.dir.path().to_path_buf();
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(&dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &dir)
            .output()
    };
    if git(&["init", "-q"]).is_err() {
        return; // no git on this machine: nothing to warn about
    }
    let out = ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[]);
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    // Not tracked: a secret file others can read is worth a warning.
    let loose = dir.join("out/airflow/secrets.yaml");
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let check = ws.run(&["render", "-c", "local.yaml", "-o", "out", "--check"], &[]);
    assert!(
        text(&check.stderr)
            .contains("out/airflow/secrets.yaml holds Secret data and others can read it"),
        "{}",
        text(&check.stderr)
    );
    git(&["add", "out"]).expect("git add");
    // The examples' key is public: secrets derived from it have nothing to leak.
    let out = ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[]);
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    // A checkout has the secret files 0644 (git keeps no modes): no warning for that either.
    for f in ["airflow/secrets.yaml", "mlflow/secrets.yaml"] {
        std::fs::set_permissions(
            dir.join("out").join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .expect("chmod");
    }
    let check = ws.run(&["render", "-c", "local.yaml", "-o", "out", "--check"], &[]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        !text(&check.stderr).contains("warning"),
        "{}",
        text(&check.stderr)
    );
    // A key of one's own: the Secret manifests in git are worth a warning.
    std::fs::write(
        dir.join("example.key"),
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    )
    .expect("write key");
    let out = ws.run(&["render", "-c", "local.yaml", "-o", "out"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("warning: out is tracked by git").count(),
        1,
        "{stderr}"
    );
    let es = ws.run(&["render", "-c", "external-secrets.yaml", "-o", "out"], &[]);
    assert!(
        !text(&es.stderr).contains("warning"),
        "{}",
        text(&es.stderr)
    );
}
