//! `images.pin: digest` and `mlplat images pin`, against a stand-in registry on 127.0.0.1: it
//! speaks the OCI distribution API as public registries do (a manifest answered only with an
//! anonymous Bearer token from the realm its 401 names, `Docker-Content-Digest` on the answer,
//! 404 for an unknown tag), and a tag can be re-pushed while the test runs.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use sha2::Digest as _;

const TOKEN: &str = "anonymous-pull-token";

/// Manifests by `repository:tag`, and every request line the registry saw.
#[derive(Default)]
struct State {
    manifests: BTreeMap<String, String>,
    requests: Vec<String>,
}

struct Registry {
    addr: String,
    state: Arc<Mutex<State>>,
}

impl Registry {
    fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (s, a) = (state.clone(), addr.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &s, &a);
            }
        });
        Registry { addr, state }
    }

    fn push(&self, repository_tag: &str, manifest: &str) {
        self.state
            .lock()
            .expect("lock")
            .manifests
            .insert(repository_tag.to_owned(), manifest.to_owned());
    }

    fn requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().expect("lock").requests)
    }
}

fn digest(text: &str) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(text.as_bytes()))
}

fn serve(mut stream: TcpStream, state: &Mutex<State>, addr: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut st = state.lock().expect("lock");
    st.requests.push(path.clone());
    let (status, extra, body) = if let Some(query) = path.strip_prefix("/token?") {
        if query.contains("service=stand-in") && query.contains("scope=repository") {
            (
                "200 OK",
                String::new(),
                format!("{{\"token\": \"{TOKEN}\"}}"),
            )
        } else {
            ("400 Bad Request", String::new(), String::new())
        }
    } else if let Some(rest) = path.strip_prefix("/v2/") {
        let (repository, tag) = rest.split_once("/manifests/").unwrap_or((rest, ""));
        let authorized =
            headers.get("authorization").map(String::as_str) == Some(&*format!("Bearer {TOKEN}"));
        if !authorized {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"stand-in\",scope=\"repository:{repository}:pull\"\r\n"
            );
            ("401 Unauthorized", challenge, String::new())
        } else if let Some(m) = st.manifests.get(&format!("{repository}:{tag}")) {
            let extra = format!(
                "Content-Type: application/vnd.oci.image.index.v1+json\r\nDocker-Content-Digest: {}\r\n",
                digest(m)
            );
            ("200 OK", extra, m.clone())
        } else {
            ("404 Not Found", String::new(), String::new())
        }
    } else {
        ("404 Not Found", String::new(), String::new())
    };
    drop(st);
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
}

fn mlplat(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::mlplat_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("MLPLAT_KEY")
        .output()
        .expect("run mlplat")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file of a tree, by relative path, as text.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    common::tree::read_tree(dir)
        .into_iter()
        .map(|(rel, bytes)| (rel, String::from_utf8_lossy(&bytes).into_owned()))
        .collect()
}

/// A directory with a key and a config pinning by digest MLflow's and PostgreSQL's `images`.
fn workspace(mlflow: &str, postgres: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("mlplat.key"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .expect("key");
    std::fs::write(
        dir.path().join("platform.yaml"),
        format!(
            "platform: pinned\nsecrets: {{key: {{fromFile: mlplat.key}}}}\nimages: {{pin: digest}}\n\
             backends: {{postgres: {{inCluster: {{image: \"{postgres}\"}}}}}}\n\
             tools:\n  mlflow: {{image: \"{mlflow}\"}}\n"
        ),
    )
    .expect("config");
    dir
}

#[test]
fn digests_are_read_from_the_registry_pinned_in_the_lock_and_rendered() {
    let registry = Registry::start();
    let r = &registry.addr;
    let mlflow = format!("{r}/mlplat/mlflow:3.17.2");
    let postgres = format!("{r}/library/postgres:16.10");
    let (mlflow_v1, postgres_v1) = ("{\"mlflow\": 1}", "{\"postgres\": 1}");
    registry.push("mlplat/mlflow:3.17.2", mlflow_v1);
    registry.push("library/postgres:16.10", postgres_v1);

    let dir = workspace(&mlflow, &postgres);
    let d = dir.path();

    // No digest recorded yet: the render stops, names the image and the command, writes nothing.
    let first = mlplat(d, &["render", "-c", "platform.yaml", "-o", "out"]);
    assert_eq!(first.status.code(), Some(2), "{}", stderr(&first));
    assert!(
        stderr(&first).contains(&format!("records no digest of {postgres}"))
            || stderr(&first).contains(&format!("records no digest of {mlflow}")),
        "{}",
        stderr(&first)
    );
    assert!(
        stderr(&first).contains("mlplat images pin -c platform.yaml"),
        "{}",
        stderr(&first)
    );
    assert!(!d.join("out").exists());
    assert!(
        registry.requests().is_empty(),
        "render never asks the registry"
    );

    // `images pin` reads both digests (through the token the registry asks for) and records them.
    let pin = mlplat(d, &["images", "pin", "-c", "platform.yaml"]);
    assert_eq!(pin.status.code(), Some(0), "{}", stderr(&pin));
    let requests = registry.requests();
    assert!(
        requests.iter().any(|p| p.starts_with("/token?")),
        "{requests:?}"
    );
    assert!(
        requests.contains(&"/v2/mlplat/mlflow/manifests/3.17.2".to_owned()),
        "{requests:?}"
    );
    let lock = read(&d.join("platform.lock.yaml"));
    assert!(
        lock.contains(&format!("\"{mlflow}\": {}", digest(mlflow_v1))),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("\"{postgres}\": {}", digest(postgres_v1))),
        "{lock}"
    );

    // The render references every image of mlplat's workloads by tag and digest, and needs no
    // checkov skip for the digest any more.
    let render = mlplat(d, &["render", "-c", "platform.yaml", "-o", "out"]);
    assert_eq!(render.status.code(), Some(0), "{}", stderr(&render));
    let out = tree(&d.join("out"));
    let images: Vec<&str> = out
        .values()
        .flat_map(|t| t.lines())
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .collect();
    assert_eq!(images.len(), 4, "{images:?}"); // MLflow, its identities Job, PostgreSQL, its Job
    for image in &images {
        let want_mlflow = format!("{mlflow}@{}", digest(mlflow_v1));
        let want_pg = format!("{postgres}@{}", digest(postgres_v1));
        assert!(
            image.trim_matches('"') == want_mlflow || image.trim_matches('"') == want_pg,
            "{image}"
        );
    }
    assert!(
        out.values()
            .all(|t| !t.contains("CKV_K8S_43") && !t.contains("CKV_K8S_15"))
    );

    // The tag is re-pushed: without --update nothing changes, and the registry is not asked.
    registry.push("mlplat/mlflow:3.17.2", "{\"mlflow\": 2}");
    let again = mlplat(d, &["images", "pin", "-c", "platform.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(registry.requests().is_empty());
    assert_eq!(read(&d.join("platform.lock.yaml")), lock);
    let check = mlplat(
        d,
        &["render", "-c", "platform.yaml", "-o", "out", "--check"],
    );
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));

    // --update reads it again and says what moved; the render then differs (exit 1 on --check).
    let update = mlplat(d, &["images", "pin", "-c", "platform.yaml", "--update"]);
    assert_eq!(update.status.code(), Some(0), "{}", stderr(&update));
    assert!(
        stderr(&update).contains(&format!(
            "{mlflow}: pinned {} (was {})",
            digest("{\"mlflow\": 2}"),
            digest(mlflow_v1)
        )),
        "{}",
        stderr(&update)
    );
    assert!(
        stderr(&update).contains(&format!("{postgres} is unchanged")),
        "{}",
        stderr(&update)
    );
    let stale = mlplat(
        d,
        &["render", "-c", "platform.yaml", "-o", "out", "--check"],
    );
    assert_eq!(stale.status.code(), Some(1), "{}", stderr(&stale));
}

#[test]
fn an_unknown_tag_is_an_error_naming_the_image_and_the_lock_is_untouched() {
    let registry = Registry::start();
    let r = &registry.addr;
    let dir = workspace(
        &format!("{r}/mlplat/mlflow:9.9.9"),
        &format!("{r}/library/postgres:16.10"),
    );
    let d = dir.path();
    registry.push("library/postgres:16.10", "{}");
    let pin = mlplat(d, &["images", "pin", "-c", "platform.yaml"]);
    assert_eq!(pin.status.code(), Some(2), "{}", stderr(&pin));
    assert!(
        stderr(&pin).contains(&format!(
            "error: {r}/mlplat/mlflow:9.9.9: the registry {r} has no tag 9.9.9 of mlplat/mlflow (HTTP 404)"
        )),
        "{}",
        stderr(&pin)
    );
    assert!(!d.join("platform.lock.yaml").exists());
}

/// With environments, each environment's pins go to its own lock file, an image two
/// environments share is read from the registry once, and each renders from its own lock.
#[test]
fn each_environment_pins_in_its_own_lock_file() {
    let registry = Registry::start();
    let r = &registry.addr;
    let mlflow = format!("{r}/mlplat/mlflow:3.17.2");
    let postgres = format!("{r}/library/postgres:16.10");
    let prod_mlflow = format!("{r}/mlplat/mlflow:3.18.0");
    registry.push("mlplat/mlflow:3.17.2", "{\"mlflow\": 1}");
    registry.push("mlplat/mlflow:3.18.0", "{\"mlflow\": 2}");
    registry.push("library/postgres:16.10", "{\"postgres\": 1}");

    let dir = workspace(&mlflow, &postgres);
    let d = dir.path();
    let mut config = read(&d.join("platform.yaml"));
    config.push_str("environments:\n  dev: {file: dev.yaml}\n  prod: {file: prod.yaml}\n");
    std::fs::write(d.join("platform.yaml"), config).expect("config");
    std::fs::write(d.join("dev.yaml"), "{}\n").expect("dev overlay");
    std::fs::write(
        d.join("prod.yaml"),
        format!("tools:\n  mlflow: {{image: \"{prod_mlflow}\"}}\n"),
    )
    .expect("prod overlay");

    let pin = mlplat(d, &["images", "pin", "-c", "platform.yaml"]);
    assert_eq!(pin.status.code(), Some(0), "{}", stderr(&pin));
    assert!(!d.join("platform.lock.yaml").exists());
    let dev = read(&d.join("platform.dev.lock.yaml"));
    let prod = read(&d.join("platform.prod.lock.yaml"));
    assert!(
        dev.contains(&format!("\"{mlflow}\": {}", digest("{\"mlflow\": 1}"))),
        "{dev}"
    );
    assert!(!dev.contains(&prod_mlflow), "{dev}");
    assert!(
        prod.contains(&format!("\"{prod_mlflow}\": {}", digest("{\"mlflow\": 2}"))),
        "{prod}"
    );
    assert!(!prod.contains(&format!("\"{mlflow}\"")), "{prod}");
    for lock in [&dev, &prod] {
        assert!(lock.contains(&format!("\"{postgres}\": {}", digest("{\"postgres\": 1}"))));
    }
    let manifests: Vec<String> = registry
        .requests()
        .into_iter()
        .filter(|p| p.contains("/manifests/"))
        .collect();
    let postgres_reads = manifests
        .iter()
        .filter(|p| p.as_str() == "/v2/library/postgres/manifests/16.10")
        .count();
    // One read: the manifest asked for without a token (401, the challenge), then with it.
    assert_eq!(postgres_reads, 2, "{manifests:?}");

    let render = mlplat(d, &["render", "-c", "platform.yaml", "-o", "out"]);
    assert_eq!(render.status.code(), Some(0), "{}", stderr(&render));
    let prod_tree = tree(&d.join("out/prod"));
    assert!(
        prod_tree
            .values()
            .any(|t| t.contains(&format!("{prod_mlflow}@{}", digest("{\"mlflow\": 2}"))))
    );
    let dev_tree = tree(&d.join("out/dev"));
    assert!(dev_tree.values().all(|t| !t.contains(&prod_mlflow)));
}

/// A registry error in one environment leaves every lock file as it was, the others' too.
#[test]
fn a_failed_read_in_one_environment_writes_no_lock_file() {
    let registry = Registry::start();
    let r = &registry.addr;
    let mlflow = format!("{r}/mlplat/mlflow:3.17.2");
    let postgres = format!("{r}/library/postgres:16.10");
    registry.push("mlplat/mlflow:3.17.2", "{\"mlflow\": 1}");
    registry.push("library/postgres:16.10", "{\"postgres\": 1}");
    let dir = workspace(&mlflow, &postgres);
    let d = dir.path();
    let mut config = read(&d.join("platform.yaml"));
    config.push_str("environments:\n  dev: {file: dev.yaml}\n  prod: {file: prod.yaml}\n");
    std::fs::write(d.join("platform.yaml"), config).expect("config");
    std::fs::write(d.join("dev.yaml"), "{}\n").expect("dev overlay");
    // prod names a tag the registry does not have.
    std::fs::write(
        d.join("prod.yaml"),
        format!("tools:\n  mlflow: {{image: \"{r}/mlplat/mlflow:9.9.9\"}}\n"),
    )
    .expect("prod overlay");

    let pin = mlplat(d, &["images", "pin", "-c", "platform.yaml"]);
    assert_eq!(pin.status.code(), Some(2), "{}", stderr(&pin));
    assert!(stderr(&pin).contains("9.9.9"), "{}", stderr(&pin));
    assert!(!d.join("platform.dev.lock.yaml").exists());
    assert!(!d.join("platform.prod.lock.yaml").exists());
}
