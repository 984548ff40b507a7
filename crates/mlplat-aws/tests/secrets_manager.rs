//! Storing the platform's Secrets in AWS Secrets Manager (moto): the first run creates each
//! one, a second run leaves every one unchanged, and a rotation changes exactly one. What is
//! stored is read back with the SDK and matches what the ExternalSecrets in `out/` ask for.
//!
//! moto is the one `scripts/test` started (`MLPLAT_TEST_AWS_ENDPOINT`), or one this binary
//! starts on a free loopback port and stops (by its pid) when the test process is gone.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use mlplat_aws::secrets_manager::{Change, store};

fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(e) = std::env::var("MLPLAT_TEST_AWS_ENDPOINT") {
            return e;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = format!(
            "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {} 2>/dev/null; do sleep 1; done; kill $m",
            std::process::id()
        );
        // The watchdog outlives this process on purpose: it stops moto once we are gone.
        #[allow(clippy::zombie_processes)]
        std::process::Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server (pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..150 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return endpoint;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("moto_server did not answer on {endpoint}");
    })
}

async fn client() -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    Client::new(&config)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn count(done: &[(String, Change)], change: Change) -> usize {
    done.iter().filter(|(_, c)| *c == change).count()
}

/// `mlplat ARGS` in `dir` against the moto server (HOME at `home`): its exit code and all it
/// printed.
fn run_mlplat(
    dir: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, String) {
    let out = std::process::Command::new(common::mlplat_bin())
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("HOME", home)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run mlplat");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn provision_stores_once_keeps_then_rotation_changes_exactly_one() {
    let config = common::workspace_root().join("examples/external-secrets.yaml");
    let mut loaded = mlplat::config::load_one(&config).expect("load");
    // Names of this test's own, on a moto other tests share.
    let platform = format!("smtest{}", std::process::id());
    loaded.platform.platform = platform.clone();
    // The namespaces follow from the name, as a load resolves them.
    loaded.namespaces = mlplat::config::namespaces(&loaded.platform);
    let rendered = mlplat::render::render_full(&loaded).expect("render");
    let n = rendered.secrets.len();
    assert!(n >= 8, "{n} secrets");

    runtime().block_on(async {
        let c = client().await;
        let first = store(&c, &platform, &rendered.secrets)
            .await
            .expect("store");
        assert_eq!(count(&first, Change::Created), n, "{first:?}");

        let again = store(&c, &platform, &rendered.secrets)
            .await
            .expect("store");
        assert_eq!(count(&again, Change::Unchanged), n, "{again:?}");

        // What is stored is what the ExternalSecrets read: one JSON property per key.
        for o in &rendered.secrets {
            let id = o.remote_key(&platform);
            let got = c
                .get_secret_value()
                .secret_id(&id)
                .send()
                .await
                .expect("get");
            let json: serde_json::Value =
                serde_json::from_str(got.secret_string().expect("string")).expect("json");
            let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
            assert_eq!(keys, o.data.keys().collect::<Vec<_>>(), "{id}");
            for (k, v) in &o.data {
                assert_eq!(json[k], v.expose(), "{id}[{k}]");
            }
            let versions = c
                .list_secret_version_ids()
                .secret_id(&id)
                .send()
                .await
                .expect("versions");
            assert_eq!(
                versions.versions().len(),
                1,
                "{id}: a second run made a new version"
            );
        }

        loaded
            .lock
            .secrets
            .generations
            .insert("airflow/fernet-key".into(), 2);
        let rotated = mlplat::render::render_full(&loaded).expect("render");
        let third = store(&c, &platform, &rotated.secrets).await.expect("store");
        let updated: Vec<&str> = third
            .iter()
            .filter(|(_, ch)| *ch == Change::Updated)
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(
            updated,
            [format!("{platform}/{platform}-airflow/airflow-keys")]
        );
        assert_eq!(count(&third, Change::Unchanged), n - 1);
    });
}

/// The same, through the command line as a user runs it: `provision` stores, a second
/// `provision` changes nothing, `rotate` + `provision` updates exactly one secret, and
/// nothing mlplat prints holds a secret value.
#[test]
fn the_provision_command_stores_the_secrets_and_rotate_changes_one() {
    let examples = common::workspace_root().join("examples");
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = format!("smcli{}", std::process::id());
    let config = std::fs::read_to_string(examples.join("external-secrets.yaml"))
        .expect("example")
        .replace("platform: gitops", &format!("platform: {platform}"));
    std::fs::write(dir.path().join("platform.yaml"), config).expect("write");
    for f in ["example.key", "example-git-token", "example-oauth-secret"] {
        std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy");
    }
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let run = |args: &[&str]| run_mlplat(dir.path(), &home, args);
    let lines = |text: &str, sign: char| text.lines().filter(|l| l.starts_with(sign)).count();

    let (code, first) = run(&["provision", "-c", "platform.yaml"]);
    assert_eq!(code, Some(0), "{first}");
    let n = lines(&first, '+');
    assert!(n >= 8, "{first}");
    let (code, second) = run(&["provision", "-c", "platform.yaml"]);
    assert_eq!(code, Some(0), "{second}");
    assert_eq!(
        (
            lines(&second, '='),
            lines(&second, '+'),
            lines(&second, '~')
        ),
        (n, 0, 0),
        "{second}"
    );

    let (code, rotated) = run(&["rotate", "-c", "platform.yaml", "airflow/fernet-key"]);
    assert_eq!(code, Some(0), "{rotated}");
    let (code, third) = run(&["provision", "-c", "platform.yaml"]);
    assert_eq!(code, Some(0), "{third}");
    let updated: Vec<&str> = third.lines().filter(|l| l.starts_with('~')).collect();
    assert_eq!(updated.len(), 1, "{third}");
    assert!(updated[0].contains("airflow-keys"), "{third}");

    // Nothing printed holds a value: every stored value is checked against the output.
    let loaded = mlplat::config::load_one(&dir.path().join("platform.yaml")).expect("load");
    let rendered = mlplat::render::render_full(&loaded).expect("render");
    for o in &rendered.secrets {
        // A user name is not a secret (the hub's MLflow account is `jupyterhub`).
        let values = o
            .data
            .iter()
            .filter(|(k, _)| !k.to_ascii_lowercase().contains("username"))
            .map(|(_, v)| v);
        for v in values.filter(|v| v.expose().len() >= 8) {
            for text in [&first, &second, &rotated, &third] {
                assert!(!text.contains(v.expose()), "a secret value was printed");
            }
        }
    }
}

/// With environments, each environment's Secrets are stored under its own platform name
/// (`<platform>-dev/…`, `<platform>-prod/…`), where its ExternalSecrets read them, and a
/// rotation in one environment changes one secret of that environment only.
#[test]
fn each_environment_stores_its_secrets_under_its_own_prefix() {
    let examples = common::workspace_root().join("examples");
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = format!("smenv{}", std::process::id());
    let config = std::fs::read_to_string(examples.join("external-secrets.yaml"))
        .expect("example")
        .replace(
            "platform: gitops",
            &format!(
                "platform: {platform}\nenvironments:\n  dev: {{file: dev.yaml}}\n  prod: {{file: prod.yaml}}"
            ),
        );
    std::fs::write(dir.path().join("platform.yaml"), config).expect("write");
    std::fs::write(
        dir.path().join("dev.yaml"),
        "tools:\n  mlflow: {replicas: 1}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("prod.yaml"),
        "secrets:\n  externalSecrets: {roleArn: \"arn:aws:iam::123456789012:role/prod-external-secrets\"}\n",
    )
    .expect("write");
    for f in ["example.key", "example-git-token", "example-oauth-secret"] {
        std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy");
    }
    let run = |args: &[&str]| run_mlplat(dir.path(), dir.path(), args);

    let (code, first) = run(&["provision", "-c", "platform.yaml", "--yes"]);
    assert_eq!(code, Some(0), "{first}");
    let stored = runtime().block_on(async {
        let c = client().await;
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = c
                .list_secrets()
                .set_next_token(token)
                .send()
                .await
                .expect("list");
            names.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_owned)),
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        names
    });
    let under = |env: &str| {
        stored
            .iter()
            .filter(|n| n.starts_with(&format!("{platform}-{env}/")))
            .count()
    };
    assert!(under("dev") >= 8, "{stored:?}");
    assert_eq!(under("dev"), under("prod"), "{stored:?}");
    assert!(
        !stored
            .iter()
            .any(|n| n.starts_with(&format!("{platform}/")))
    );

    let (code, rendered) = run(&["render", "-c", "platform.yaml", "-o", "out"]);
    assert_eq!(code, Some(0), "{rendered}");
    for env in ["dev", "prod"] {
        let text =
            std::fs::read_to_string(dir.path().join(format!("out/{env}/airflow/secrets.yaml")))
                .expect("ExternalSecrets");
        assert!(
            text.contains(&format!(
                "key: {platform}-{env}/{platform}-{env}-airflow/airflow-keys"
            )),
            "{text}"
        );
    }

    let (code, rotated) = run(&[
        "rotate",
        "-c",
        "platform.yaml",
        "--env",
        "prod",
        "airflow/fernet-key",
    ]);
    assert_eq!(code, Some(0), "{rotated}");
    assert!(
        rotated.contains("then `mlplat provision -c platform.yaml --env prod`"),
        "{rotated}"
    );
    let (code, again) = run(&["provision", "-c", "platform.yaml", "--yes"]);
    assert_eq!(code, Some(0), "{again}");
    let updated: Vec<&str> = again.lines().filter(|l| l.starts_with('~')).collect();
    assert_eq!(updated.len(), 1, "{again}");
    assert!(
        updated[0].starts_with(&format!("~ secret {platform}-prod/"))
            && updated[0].contains("airflow-keys"),
        "{again}"
    );
}
