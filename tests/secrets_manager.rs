//! Storing the platform's Secrets in AWS Secrets Manager (moto): the first run creates each
//! one, a second run leaves every one unchanged, and a rotation changes exactly one. What is
//! stored is read back with the SDK and matches what the ExternalSecrets in `out/` ask for.
//!
//! moto is the one `scripts/test` started (`MLPLAT_TEST_AWS_ENDPOINT`), or one this binary
//! starts on a free loopback port and stops (by its pid) when the test process is gone.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use mlplat::secrets_manager::{Change, store};

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

#[test]
fn provision_stores_once_keeps_then_rotation_changes_exactly_one() {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/external-secrets.yaml");
    let mut loaded = mlplat::config::load(&config).expect("load");
    // Names of this test's own, on a moto other tests share.
    let platform = format!("smtest{}", std::process::id());
    loaded.platform.platform = platform.clone();
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
