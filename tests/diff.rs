//! `mlplat diff` as a user meets it: per object, exit 0 when nothing would change and 1 when
//! something would, and never a secret value on the screen.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for f in ["local.yaml", "example.key", "example-git-token"] {
        std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy example");
    }
    dir
}

fn mlplat(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("MLPLAT_SECRET_KEY")
        .output()
        .expect("run mlplat")
}

/// Every value of every Secret under `out/` at least 8 characters long (short ones are user
/// names), one-line values and each line of multi-line ones.
fn secret_values(out: &Path) -> Vec<String> {
    let mut values = Vec::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("read");
            for doc in mlplat::yaml::parse_documents(&text).unwrap_or_default() {
                let doc = doc.to_json();
                if doc["kind"] != "Secret" {
                    continue;
                }
                for v in doc["stringData"].as_object().into_iter().flatten() {
                    // A user name is not a secret (`MLFLOW_TRACKING_USERNAME: jupyterhub` names
                    // the account that the hub's values also name).
                    if v.0.to_ascii_lowercase().contains("username") {
                        continue;
                    }
                    for line in v.1.as_str().unwrap_or_default().lines() {
                        let line = line.trim();
                        let value = line.rsplit(": ").next().unwrap_or(line);
                        if value.len() >= 8 {
                            values.push(value.to_owned());
                        }
                    }
                }
            }
        }
    }
    values
}

#[test]
fn diff_names_the_changed_secret_and_configmap_and_shows_no_secret_value() {
    let ws = workspace();
    let dir = ws.path();
    let render = mlplat(dir, &["render", "-c", "local.yaml", "-o", "out"]);
    assert_eq!(render.status.code(), Some(0), "{render:?}");

    let current = mlplat(dir, &["diff", "-c", "local.yaml", "-o", "out"]);
    assert_eq!(current.status.code(), Some(0), "{current:?}");
    assert!(current.stdout.is_empty());

    // One Secret value (the DAG repository token) and one ConfigMap value (MLflow's allowed
    // hosts follow its ingress host).
    let old_token = std::fs::read_to_string(dir.join("example-git-token")).expect("token");
    let new_token = "ghp_NEWTOKENVALUE0123456789abcdef";
    std::fs::write(dir.join("example-git-token"), new_token).expect("write token");
    let config = std::fs::read_to_string(dir.join("local.yaml")).expect("config");
    std::fs::write(
        dir.join("local.yaml"),
        config.replace("mlflow.mlops.example.com", "tracking.mlops.example.com"),
    )
    .expect("write config");

    let out = mlplat(dir, &["diff", "-c", "local.yaml", "-o", "out"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("~ Secret mlops-airflow/airflow-https-git-secret (airflow/secrets.yaml)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("~ ConfigMap mlops-mlflow/mlflow-config (mlflow/configmap.yaml)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+  MLFLOW_SERVER_ALLOWED_HOSTS: "),
        "{stdout}"
    );
    assert!(
        stdout.contains(&mlplat::encode::fingerprint(new_token.as_bytes())),
        "the new token is shown as its fingerprint:\n{stdout}"
    );
    // Nothing a Secret holds, before or after, is printed.
    let mut values = secret_values(&dir.join("out"));
    values.push(old_token.trim().to_owned());
    values.push(new_token.to_owned());
    let rendered = mlplat(dir, &["render", "-c", "local.yaml", "-o", "fresh"]);
    assert_eq!(rendered.status.code(), Some(0), "{rendered:?}");
    values.extend(secret_values(&dir.join("fresh")));
    assert!(values.len() > 10, "{}", values.len());
    for v in &values {
        assert!(
            !stdout.contains(v.as_str()),
            "a secret value is printed:\n{stdout}"
        );
        assert!(
            !stderr.contains(v.as_str()),
            "a secret value is printed:\n{stderr}"
        );
    }
    // The diff changed nothing on disk.
    let again = mlplat(dir, &["diff", "-c", "local.yaml", "-o", "out"]);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn diff_of_a_missing_directory_adds_everything_and_bad_input_is_exit_2() {
    let ws = workspace();
    let dir = ws.path();
    let out = mlplat(dir, &["diff", "-c", "local.yaml", "-o", "nowhere"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("+ HelmRelease mlops-airflow/airflow (airflow/helmrelease.yaml)\n    +apiVersion: helm.toolkit.fluxcd.io/v2\n"),
        "{stdout}"
    );
    assert!(stdout.contains("+ file kustomization.yaml"), "{stdout}");
    assert!(!dir.join("nowhere").exists(), "diff writes nothing");

    std::fs::write(dir.join("bad.yaml"), "platform: mlops\ndelivery: helm\n").expect("write");
    let bad = mlplat(dir, &["diff", "-c", "bad.yaml", "-o", "out"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("bad.yaml:2:11"),
        "{bad:?}"
    );
}

#[test]
fn a_comment_edited_by_hand_is_a_file_change() {
    let ws = workspace();
    let dir = ws.path();
    assert_eq!(
        mlplat(dir, &["render", "-c", "local.yaml", "-o", "out"])
            .status
            .code(),
        Some(0)
    );
    let path = dir.join("out/mlflow/service.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, format!("# edited by hand\n{text}")).expect("write");
    let out = mlplat(dir, &["diff", "-c", "local.yaml", "-o", "out"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("~ file mlflow/service.yaml"), "{stdout}");
    assert!(stdout.contains("-# edited by hand"), "{stdout}");
}

/// The diff of adding the DAG repository's credentials, pinned in `tests/snapshots/diff_added_secret.txt`
/// (regenerate with `MLPLAT_BLESS=1 cargo test --test diff`, then review): the added Secret is
/// shown whole, its token as a fingerprint, and the index file is neither shown nor counted.
#[test]
fn an_added_object_is_shown_whole_with_its_secret_fingerprinted() {
    let ws = workspace();
    let dir = ws.path();
    let config = std::fs::read_to_string(dir.join("local.yaml")).expect("config");
    let credentials = "      credentials:\n        username: dags-bot\n        token: {fromFile: example-git-token}\n";
    assert!(config.contains(credentials));
    std::fs::write(dir.join("before.yaml"), config.replace(credentials, "")).expect("write");
    let render = mlplat(dir, &["render", "-c", "before.yaml", "-o", "out"]);
    assert_eq!(render.status.code(), Some(0), "{render:?}");

    let out = mlplat(dir, &["diff", "-c", "local.yaml", "-o", "out"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let token = std::fs::read_to_string(dir.join("example-git-token")).expect("token");
    let token = token.trim();
    assert!(!stdout.contains(token), "the token is printed:\n{stdout}");
    assert!(
        stdout.contains(&format!(
            "+  GIT_SYNC_PASSWORD: {}",
            mlplat::encode::fingerprint(token.as_bytes())
        )),
        "{stdout}"
    );
    assert!(!stdout.contains(".mlplat"), "{stdout}");

    let snapshot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/diff_added_secret.txt");
    if std::env::var_os("MLPLAT_BLESS").is_some() {
        std::fs::create_dir_all(snapshot.parent().expect("parent")).expect("mkdir");
        std::fs::write(&snapshot, stdout.as_bytes()).expect("bless");
    }
    let want = std::fs::read_to_string(&snapshot).unwrap_or_default();
    assert!(
        want == stdout,
        "diff output changed (review, then MLPLAT_BLESS=1 cargo test --test diff):\n{stdout}"
    );
}
