//! The platform runs: the workloads mlplat writes itself, started on this machine from what it
//! rendered, judged by the programs themselves.
//!
//! For `examples/local.yaml` (in-cluster PostgreSQL, artifacts on a volume) and
//! `examples/aws.yaml` (one RDS instance per tool, TLS required, artifacts in S3):
//! - PostgreSQL 15 from Debian's packages, prepared as the postgres image's entrypoint or RDS
//!   would leave it, then every reconcile Job's script run as its container runs it; each tool's
//!   role logs in over TCP with SCRAM with the password its own Secret gives the tool (through
//!   TLS where the config asks for it: the server refuses anything else), and cannot connect to
//!   another tool's database;
//! - the MLflow tracking server started from the Deployment's command, arguments and
//!   environment (its init container first): `/health` 200, 401 without credentials, the admin
//!   200, a foreign Host header 403; the identities Job's script; then each consuming tool's
//!   service account, with the credentials its own manifests give it, logs a run with an
//!   artifact;
//! - Airflow 3.2.2's `airflow db migrate` and `airflow db check` with the rendered URI and keys.
//!
//! Then, for the local example: a Secret that disagrees with the server fails the checks, and
//! `mlplat rotate` of the database, superuser, MLflow admin and service-account passwords reaches
//! the running servers through the new Jobs and the restarted pods.
//!
//! Each program runs from a venv of its own (`scripts/test-env <tool>`, which `scripts/test-env`
//! makes with all the others). Servers listen on free
//! 127.0.0.1 ports and are stopped by their process group's id; in-cluster host names are
//! rewritten to 127.0.0.1 in what the programs read, never in /etc/hosts.

#[path = "runtime/http.rs"]
mod http;
#[path = "runtime/kube.rs"]
mod kube;
#[path = "runtime/pgbouncer.rs"]
mod pgbouncer;
#[path = "runtime/postgres.rs"]
mod postgres;
#[path = "runtime/proc.rs"]
mod proc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use http::Get;
use kube::{Cluster, Rewrites};
use postgres::Postgres;
use proc::{Program, Server, free_port, text, unprivileged};

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");
/// The servers share the machine's two cores: one scenario at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// The S3 emulator of the scenario that needs one.
static MOTO: Mutex<Option<String>> = Mutex::new(None);

/// MLflow's usage telemetry stays off in the test (no traffic beyond 127.0.0.1; without a network
/// it would only wait for timeouts). Not a setting of the rendered manifests.
fn no_telemetry(env: &mut BTreeMap<String, String>) {
    env.insert("MLFLOW_DISABLE_TELEMETRY".into(), "true".into());
    env.insert("DO_NOT_TRACK".into(), "true".into());
}

/// Says how long each step took (shown with `--nocapture`): what the runtime test costs.
fn step(what: &str, started: std::time::Instant) {
    eprintln!("runtime: {what}: {:.1} s", started.elapsed().as_secs_f64());
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory the tests were built in (where `scripts/test-env` keeps venvs).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_path_buf()
}

/// The venv of `tool`: `scripts/test-env TOOL` checks it (and makes it when a test runs alone).
fn venv(tool: &str) -> PathBuf {
    let out = Command::new(repo().join("scripts/test-env"))
        .arg(tool)
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("scripts/test-env");
    assert!(
        out.status.success(),
        "scripts/test-env {tool} failed:\n{}",
        text(&out)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A copy of `examples/` with the config rendered into `out/`.
struct Workspace {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

impl Workspace {
    fn new(example: &str) -> Workspace {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_owned();
        // Servers run as unprivileged users: every directory on their way must be traversable.
        chmod(&root, 0o755);
        let examples = root.join("examples");
        std::fs::create_dir(&examples).expect("mkdir");
        // The configs, the files they read and their values files (not the rendered trees).
        for dir in ["", "values"] {
            let (from, to) = (repo().join("examples").join(dir), examples.join(dir));
            std::fs::create_dir_all(&to).expect("mkdir");
            for entry in std::fs::read_dir(from).expect("examples") {
                let path = entry.expect("entry").path();
                if path.is_file() {
                    std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
                }
            }
        }
        let ws = Workspace {
            config: examples.join(format!("{example}.yaml")),
            root,
            _tmp: tmp,
        };
        ws.render();
        ws
    }

    fn out(&self) -> PathBuf {
        self.root.join("out")
    }

    fn mlplat(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(&self.config)
            .env_remove("MLPLAT_SECRET_KEY")
            .output()
            .expect("mlplat");
        assert!(
            out.status.success(),
            "mlplat {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn render(&self) {
        let out = self.out();
        self.mlplat(&["render", "-o", out.to_str().expect("utf-8")]);
    }

    fn cluster(&self) -> Cluster {
        Cluster::load(&self.out())
    }

    fn loaded(&self) -> mlplat::config::Loaded {
        mlplat::config::load_one(&self.config).expect("load")
    }

    /// A fresh directory for one pod's volumes.
    fn pod_dir(&self, name: &str) -> PathBuf {
        let dir = self
            .root
            .join("pods")
            .join(format!("{name}-{}", free_port()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        chmod(&self.root.join("pods"), 0o755);
        dir
    }
}

fn chmod(path: &Path, mode: u32) {
    let mut perms = std::fs::metadata(path).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, mode);
    std::fs::set_permissions(path, perms).expect("chmod");
}

fn namespace_of(cluster: &Cluster, component: &str) -> String {
    cluster
        .all("Namespace", None)
        .iter()
        .find(|n| n["metadata"]["labels"]["app.kubernetes.io/name"] == component)
        .and_then(|n| n["metadata"]["name"].as_str())
        .unwrap_or_else(|| panic!("no namespace for {component}"))
        .to_owned()
}

/// A job of the rendered tree whose name starts with `prefix`, and its pod spec.
fn jobs<'c>(cluster: &'c Cluster, namespace: &str, prefix: &str) -> Vec<&'c Value> {
    cluster
        .all("Job", Some(namespace))
        .into_iter()
        .filter(|j| {
            j["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect()
}

/// One tool's database login, as the tool's own Secrets give it.
#[derive(Debug, Clone)]
struct DbLogin {
    tool: &'static str,
    user: String,
    password: String,
    database: String,
    sslmode: Option<String>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("utf-8")
        .into_owned()
}

/// `scheme://user:password@host:port/db?sslmode=…` → its parts.
fn parse_uri(uri: &str) -> (String, String, String, Option<String>) {
    let rest = uri.split_once("://").expect("a URI").1;
    let (userinfo, rest) = rest.rsplit_once('@').expect("userinfo");
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
    let (db, query) = path.split_once('?').unwrap_or((path, ""));
    let sslmode = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("sslmode="))
        .map(str::to_owned);
    (decode(user), decode(password), db.to_owned(), sslmode)
}

/// Every tool's login, from the Secrets and values it runs with.
fn db_logins(cluster: &Cluster, ws: &Workspace) -> Vec<DbLogin> {
    let mut out = Vec::new();
    let ns: BTreeMap<&str, String> = ["airflow", "mlflow", "jupyterhub"]
        .into_iter()
        .map(|t| (t, namespace_of(cluster, t)))
        .collect();
    let airflow = cluster.secret_key(&ns["airflow"], "airflow-db-auth", "connection");
    let (user, password, database, sslmode) = parse_uri(&airflow);
    out.push(DbLogin {
        tool: "airflow",
        user,
        password,
        database,
        sslmode,
    });
    let mlflow = cluster.secret_key(&ns["mlflow"], "mlflow-db-auth", "backend-store-uri");
    let (user, password, database, sslmode) = parse_uri(&mlflow);
    out.push(DbLogin {
        tool: "mlflow",
        user,
        password,
        database,
        sslmode,
    });
    // The auth database, from the basic-auth config the server reads.
    let ini = cluster.secret_key(&ns["mlflow"], "mlflow-auth", "basic_auth.ini");
    let uri = ini
        .lines()
        .find_map(|l| l.strip_prefix("database_uri = "))
        .expect("database_uri")
        .replace("%%", "%");
    let (user, password, database, sslmode) = parse_uri(&uri);
    out.push(DbLogin {
        tool: "mlflow",
        user,
        password,
        database,
        sslmode,
    });
    // JupyterHub: the URL in its chart values (no password), PGPASSWORD from its Secret.
    let values = values_of(ws, "jupyterhub");
    let url = values["hub"]["db"]["url"].as_str().expect("hub.db.url");
    let (user, _, database, sslmode) = parse_uri(&url.replacen("@", ":@", 1));
    let password = cluster.secret_key(&ns["jupyterhub"], "jupyterhub-db-auth", "hub.db.password");
    out.push(DbLogin {
        tool: "jupyterhub",
        user,
        password,
        database,
        sslmode,
    });
    out
}

/// A tool's chart values as the release gets them (`values.yaml`, the non-secret part).
fn values_of(ws: &Workspace, tool: &str) -> Value {
    let text = std::fs::read_to_string(ws.out().join(tool).join("values.yaml")).expect("values");
    mlplat::yaml::parse_documents(&text)
        .expect("yaml")
        .into_iter()
        .next()
        .map(|d| d.to_json())
        .unwrap_or_default()
}

/// Every role logs in with its Secret's password (and TLS when asked for), and no role reaches
/// another tool's database.
fn check_databases(pg: &Postgres, logins: &[DbLogin]) -> Result<(), String> {
    for l in logins {
        pg.login(&l.user, &l.password, &l.database, l.sslmode.as_deref())
            .map_err(|e| {
                format!(
                    "{} cannot log in as {} to {}: {e}",
                    l.tool, l.user, l.database
                )
            })?;
    }
    for a in logins {
        for b in logins.iter().filter(|b| b.tool != a.tool) {
            match pg.login(&a.user, &a.password, &b.database, a.sslmode.as_deref()) {
                Ok(()) => {
                    return Err(format!(
                        "{}'s role {} connects to {}'s database {}",
                        a.tool, a.user, b.tool, b.database
                    ));
                }
                Err(e) if e.contains("permission denied for database") => {}
                Err(e) => return Err(format!("{} → {}: unexpected: {e}", a.user, b.database)),
            }
        }
    }
    Ok(())
}

/// The servers the test runs for one platform.
struct Platform {
    pg: Postgres,
    rewrites: Rewrites,
    mlflow_port: u16,
    moto: Option<String>,
}

/// The PostgreSQL server as the cluster (in-cluster) or RDS leave it before mlplat's Jobs run.
fn start_database(ws: &Workspace, cluster: &Cluster, rewrites: &mut Rewrites) -> Postgres {
    let loaded = ws.loaded();
    let specs = mlplat::backends::aws::Desired::from_config(&loaded).instances;
    let pg = Postgres::start(&ws.root.join("postgres"), !specs.is_empty());
    if specs.is_empty() {
        // In-cluster: the postgres image's entrypoint makes the superuser with its Secret's password.
        let ns = namespace_of(cluster, "postgres");
        let pw = cluster.secret_key(&ns, "postgres-auth", "postgres-password");
        pg.admin("ALTER ROLE postgres PASSWORD :'pw';", &[("pw", &pw)]);
        rewrites.serve(&format!("postgres.{ns}.svc"), 5432, pg.port);
    }
    let lock = loaded.lock.aws.clone().unwrap_or_default();
    for spec in specs {
        // What `mlplat provision` asks of RDS: the master user (RDS's is not a superuser: it
        // may create roles and databases) and, per tool, the tool's database.
        let mlplat::backends::aws::MasterPassword::Given(pw) = &spec.master_password else {
            panic!("the runtime test emulates RDS with master passwords mlplat knows");
        };
        pg.admin(
            "CREATE ROLE :\"user\" LOGIN CREATEDB CREATEROLE PASSWORD :'pw';",
            &[("user", spec.master_username.as_str()), ("pw", pw.expose())],
        );
        if spec.db_name != "postgres" {
            pg.admin(
                "CREATE DATABASE :\"db\" OWNER :\"user\";",
                &[
                    ("db", spec.db_name.as_str()),
                    ("user", spec.master_username.as_str()),
                ],
            );
        }
        let endpoint = &lock.rds[&spec.identifier];
        rewrites.serve(&endpoint.endpoint, endpoint.port, pg.port);
    }
    pg
}

/// Runs every reconcile Job of the tree (in-cluster and RDS) as its container runs it.
fn run_reconcile_jobs(ws: &Workspace, cluster: &Cluster, pg: &Postgres, rewrites: &Rewrites) {
    let ns = namespace_of(cluster, "postgres");
    let jobs: Vec<&Value> = cluster.all("Job", Some(&ns));
    assert!(!jobs.is_empty(), "no reconcile Job in {ns}");
    for job in jobs {
        let name = job["metadata"]["name"].as_str().unwrap_or_default();
        let pod = &job["spec"]["template"]["spec"];
        let c = kube::container(
            cluster,
            &ns,
            pod,
            "reconcile",
            rewrites,
            &pg.bin().display().to_string(),
            &ws.pod_dir(name),
            unprivileged("postgres"),
        );
        let out = c.program.run(Duration::from_secs(120));
        assert!(out.status.success(), "Job {name} failed:\n{}", text(&out));
        assert!(
            text(&out).contains("roles and databases reconciled"),
            "{}",
            text(&out)
        );
    }
}

/// The MLflow server of the Deployment, its init container run first.
fn start_mlflow(ws: &Workspace, cluster: &Cluster, p: &Platform) -> Server {
    let ns = namespace_of(cluster, "mlflow");
    let deployment = cluster.get("Deployment", &ns, "mlflow");
    let pod = &deployment["spec"]["template"]["spec"];
    let venv = venv("mlflow");
    let image = venv.join("bin").display().to_string();
    let dir = ws.pod_dir("mlflow");
    let user = unprivileged("nobody");
    let mut extra = BTreeMap::new();
    no_telemetry(&mut extra);
    if let Some(moto) = &p.moto {
        // The IRSA role's stand-in: any credentials, the emulator's endpoint.
        extra.insert("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned());
        extra.insert("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned());
        extra.insert("AWS_DEFAULT_REGION".to_owned(), "us-east-1".to_owned());
        extra.insert("MLFLOW_S3_ENDPOINT_URL".to_owned(), moto.clone());
    }
    let mut admin = kube::container(cluster, &ns, pod, "admin", &p.rewrites, &image, &dir, user);
    admin.program.env.extend(extra.clone());
    let out = admin.program.run(Duration::from_secs(300));
    assert!(
        out.status.success(),
        "MLflow's init container failed:\n{}",
        text(&out)
    );
    let mut c = kube::container(cluster, &ns, pod, "mlflow", &p.rewrites, &image, &dir, user);
    c.program.env.extend(extra);
    // Listen where the test can reach it: 127.0.0.1 and a free port, not 0.0.0.0:5000.
    let argv = &mut c.program.argv;
    for i in 1..argv.len() {
        match argv[i - 1].as_str() {
            "--host" => argv[i] = "127.0.0.1".into(),
            "--port" => argv[i] = p.mlflow_port.to_string(),
            _ => {}
        }
    }
    let mut server = c.program.spawn(&ws.root.join("mlflow.log"));
    let port = p.mlflow_port;
    server.wait_until("mlflow server", Duration::from_secs(300), || {
        Get {
            port,
            path: "/health",
            host: Some("localhost"),
            auth: None,
        }
        .status()
            == Some(200)
    });
    server
}

/// What the tracking server answers, per the Deployment's probes and its auth.
fn check_mlflow_server(cluster: &Cluster, port: u16) -> Result<(), String> {
    let ns = namespace_of(cluster, "mlflow");
    let admin = cluster.secret_key(&ns, "mlflow-auth", "admin-username");
    let password = cluster.secret_key(&ns, "mlflow-auth", "admin-password");
    let path = "/api/2.0/mlflow/experiments/search?max_results=1";
    let service = format!("127.0.0.1:{port}"); // the Service's name, rewritten
    let expect = |what: &str, get: Get, want: u16| -> Result<(), String> {
        match get.status() {
            Some(s) if s == want => Ok(()),
            other => Err(format!("{what}: HTTP {other:?}, expected {want}")),
        }
    };
    expect(
        "/health (as the probe asks)",
        Get {
            port,
            path: "/health",
            host: Some("localhost"),
            auth: None,
        },
        200,
    )?;
    expect(
        "no credentials",
        Get {
            port,
            path,
            host: Some(&service),
            auth: None,
        },
        401,
    )?;
    expect(
        "the admin",
        Get {
            port,
            path,
            host: Some(&service),
            auth: Some((&admin, &password)),
        },
        200,
    )?;
    expect(
        "a wrong admin password",
        Get {
            port,
            path,
            host: Some(&service),
            auth: Some((&admin, "not-the-password")),
        },
        401,
    )?;
    expect(
        "a foreign Host header",
        Get {
            port,
            path,
            host: Some("attacker.example.com"),
            auth: Some((&admin, &password)),
        },
        403,
    )?;
    if let Some(ing) = cluster.find("Ingress", &ns, "mlflow") {
        let host = ing["spec"]["rules"][0]["host"].as_str().unwrap_or_default();
        expect(
            "the ingress host",
            Get {
                port,
                path,
                host: Some(host),
                auth: Some((&admin, &password)),
            },
            200,
        )?;
    }
    Ok(())
}

/// Runs the identities Job's container; its output.
fn run_identities_job(ws: &Workspace, cluster: &Cluster, p: &Platform) -> Result<String, String> {
    let ns = namespace_of(cluster, "mlflow");
    let jobs = jobs(cluster, &ns, "mlflow-identities-");
    assert_eq!(jobs.len(), 1, "one identities Job");
    let name = jobs[0]["metadata"]["name"].as_str().unwrap_or_default();
    let pod = &jobs[0]["spec"]["template"]["spec"];
    let image = venv("mlflow").join("bin").display().to_string();
    let mut c = kube::container(
        cluster,
        &ns,
        pod,
        "identities",
        &p.rewrites,
        &image,
        &ws.pod_dir(name),
        unprivileged("nobody"),
    );
    c.program.env.insert("WAIT_SECONDS".into(), "60".into());
    no_telemetry(&mut c.program.env);
    let out = c.program.run(Duration::from_secs(180));
    if out.status.success() {
        Ok(text(&out))
    } else {
        Err(format!("Job {name} failed: {}", text(&out)))
    }
}

/// The MLflow client environment a tool's workloads get, resolved from its own manifests.
fn client_env(ws: &Workspace, cluster: &Cluster, tool: &str) -> BTreeMap<String, String> {
    let ns = namespace_of(cluster, tool);
    let values = values_of(ws, tool);
    let mut env = BTreeMap::new();
    let mut from_secret = |name: &str, secret: &str, key: &str| {
        env.insert(name.to_owned(), cluster.secret_key(&ns, secret, key));
    };
    match tool {
        "airflow" if values["secret"].is_array() => {
            // The official chart: `secret` items reach every Airflow container.
            for s in values["secret"].as_array().into_iter().flatten() {
                from_secret(
                    s["envName"].as_str().unwrap_or_default(),
                    s["secretName"].as_str().unwrap_or_default(),
                    s["secretKey"].as_str().unwrap_or_default(),
                );
            }
            for e in values["env"].as_array().into_iter().flatten() {
                env.insert(
                    e["name"].as_str().unwrap_or_default().to_owned(),
                    e["value"].as_str().unwrap_or_default().to_owned(),
                );
            }
        }
        "airflow" => {
            let container = serde_json::json!({"env": values["airflow"]["extraEnv"]});
            env.extend(cluster.resolve_env(&ns, &container));
        }
        _ => {
            // z2jh: singleuser.extraEnv, a map of name to a value or a valueFrom.
            let list: Vec<Value> = values["singleuser"]["extraEnv"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    if v.is_string() {
                        serde_json::json!({"name": k, "value": v})
                    } else {
                        serde_json::json!({"name": k, "valueFrom": v["valueFrom"]})
                    }
                })
                .collect();
            env.extend(cluster.resolve_env(&ns, &serde_json::json!({"env": list})));
        }
    }
    env
}

/// Logs a run with an artifact as the tool's service account (into an experiment of its own,
/// and one into the Default experiment) and reads the artifact back.
const CLIENT: &str = r#"
import os, sys, tempfile
import mlflow
tool = sys.argv[1]
for var in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
    assert os.environ.get(var), f"{var} is not set"
client = mlflow.MlflowClient()
assert client.get_experiment("0") is not None
for experiment in (f"{tool}-runtime-test", None):
    if experiment:
        mlflow.set_experiment(experiment)
    else:
        mlflow.set_experiment(experiment_id="0")
    with mlflow.start_run() as run:
        mlflow.log_param("tool", tool)
        mlflow.log_metric("answer", 42)
        path = os.path.join(tempfile.mkdtemp(), "hello.txt")
        with open(path, "w") as f:
            f.write(f"logged by {tool}")
        mlflow.log_artifact(path)
    back = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="hello.txt")
    assert open(back).read() == f"logged by {tool}", "the artifact came back different"
    got = client.get_run(run.info.run_id)
    assert got.data.params["tool"] == tool
print(f"{tool}: logged runs with an artifact as {os.environ['MLFLOW_TRACKING_USERNAME']}")
"#;

fn check_client(ws: &Workspace, cluster: &Cluster, p: &Platform, tool: &str) -> Result<(), String> {
    let env = client_env(ws, cluster, tool);
    let mut program = Program {
        argv: vec![
            venv("mlflow").join("bin/python").display().to_string(),
            "-c".into(),
            CLIENT.into(),
            tool.into(),
        ],
        env: env
            .iter()
            .map(|(k, v)| (k.clone(), p.rewrites.apply(v)))
            .collect(),
        cwd: ws.root.clone(),
        user: proc::me(),
    };
    let home = ws.pod_dir(&format!("{tool}-client"));
    program
        .env
        .insert("HOME".into(), home.display().to_string());
    program.env.insert("PATH".into(), "/usr/bin:/bin".into());
    // Fail at once on a 401 rather than after MLflow's retries.
    program
        .env
        .insert("MLFLOW_HTTP_REQUEST_MAX_RETRIES".into(), "0".into());
    no_telemetry(&mut program.env);
    // Artifacts go through the server (`mlflow-artifacts:`): the client needs no S3 access.
    let out = program.run(Duration::from_secs(300));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{tool}'s MLflow client failed: {}", text(&out)))
    }
}

/// `airflow db migrate` and `airflow db check` with the URI and Fernet key the chart reads; then
/// the official chart's user-creation Job's arguments and environment (the password from its
/// Secret), and the admin's login as the UI checks it (FAB's `auth_user_db`).
fn check_airflow(ws: &Workspace, cluster: &Cluster, p: &Platform) {
    let ns = namespace_of(cluster, "airflow");
    let uri = p
        .rewrites
        .apply(&cluster.secret_key(&ns, "airflow-db-auth", "connection"));
    let fernet = cluster.secret_key(&ns, "airflow-keys", "fernet-key");
    let home = ws.pod_dir("airflow");
    let venv = venv("airflow");
    let mut env: BTreeMap<String, String> = [
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", uri),
        ("AIRFLOW__CORE__FERNET_KEY", fernet),
        ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".into()),
        // What the official chart configures, so that `airflow users create` exists.
        (
            "AIRFLOW__CORE__AUTH_MANAGER",
            "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager".into(),
        ),
        ("AIRFLOW_HOME", home.display().to_string()),
        ("HOME", home.display().to_string()),
        (
            "PATH",
            format!("{}:/usr/bin:/bin", venv.join("bin").display()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let run = |argv: Vec<String>, env: &BTreeMap<String, String>| {
        let out = Program {
            argv: argv.clone(),
            env: env.clone(),
            cwd: home.clone(),
            user: proc::me(),
        }
        .run(Duration::from_secs(600));
        let said = text(&out);
        let tail: Vec<&str> = said.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        assert!(
            out.status.success(),
            "{argv:?} failed; the last lines:\n{}",
            tail.join("\n")
        );
        said
    };
    for args in [["db", "migrate"], ["db", "check"]] {
        run(
            vec![
                venv.join("bin/airflow").display().to_string(),
                args[0].into(),
                args[1].into(),
            ],
            &env,
        );
    }
    let values = values_of(ws, "airflow");
    let job = &values["createUserJob"];
    let Some(args) = job["args"].as_array() else {
        return; // no user in the config: no Job
    };
    env.extend(cluster.resolve_env(&ns, &serde_json::json!({"env": job["env"]})));
    let argv: Vec<String> = args
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .collect();
    run(argv.clone(), &env);
    let username = argv
        .windows(2)
        .find(|w| w[0] == "-u")
        .map(|w| w[1].clone())
        .expect("-u USERNAME");
    let password = cluster.secret_key(&ns, "airflow-users", &format!("{username}-password"));
    // The password through the environment: never in an argument (or a failure message).
    let login = r#"
import os, sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
password = os.environ.pop("AIRFLOW_LOGIN_PASSWORD")
with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    user = sm.auth_user_db(sys.argv[1], password, rotate_session_id=False)
    assert user is not None, "the login was refused"
    assert any(r.name == "Admin" for r in user.roles), [r.name for r in user.roles]
    assert sm.auth_user_db(sys.argv[1], password + "x", rotate_session_id=False) is None, "a wrong password logged in"
print("logged in")
"#;
    let mut login_env = env.clone();
    login_env.insert("AIRFLOW_LOGIN_PASSWORD".into(), password);
    let said = run(
        vec![
            venv.join("bin/python").display().to_string(),
            "-c".into(),
            login.into(),
            username,
        ],
        &login_env,
    );
    assert!(said.contains("logged in"), "{said}");
}

fn moto_bucket(moto: &str, bucket: &str) {
    let py = venv("mlflow").join("bin/python");
    let out = Command::new(py)
        .args([
            "-c",
            "import sys, boto3\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             try:\n    s3.create_bucket(Bucket=sys.argv[2])\n\
             except s3.exceptions.BucketAlreadyOwnedByYou:\n    pass\n",
            moto,
            bucket,
        ])
        .env_clear()
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "creating the bucket in moto: {}",
        text(&out)
    );
}

/// The moto server `scripts/test` started, or one of this test's own.
fn moto() -> (String, Option<Server>) {
    if let Ok(e) = std::env::var("MLPLAT_TEST_AWS_ENDPOINT") {
        if !e.is_empty() {
            return (e, None);
        }
    }
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let venv = repo().join(
        String::from_utf8_lossy(
            &Command::new(repo().join("scripts/test-env"))
                .current_dir(repo())
                .env("CARGO_TARGET_DIR", target_dir())
                .output()
                .expect("scripts/test-env")
                .stdout,
        )
        .trim(),
    );
    let mut server = Program {
        argv: vec![
            venv.join("bin/moto_server").display().to_string(),
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ],
        env: BTreeMap::new(),
        cwd: dir.clone(),
        user: proc::me(),
    }
    .spawn(&dir.join("moto.log"));
    server.wait_until("moto", Duration::from_secs(60), || {
        Get {
            port,
            path: "/moto-api/data.json",
            host: None,
            auth: None,
        }
        .status()
            == Some(200)
    });
    (format!("http://127.0.0.1:{port}"), Some(server))
}

/// Everything for one example; returns the running servers for more checks.
fn run_platform(ws: &Workspace) -> (Platform, Server) {
    let cluster = ws.cluster();
    let mut rewrites = Rewrites::default();
    let t = std::time::Instant::now();
    let pg = start_database(ws, &cluster, &mut rewrites);
    step("PostgreSQL started", t);
    let t = std::time::Instant::now();
    run_reconcile_jobs(ws, &cluster, &pg, &rewrites);
    let logins = db_logins(&cluster, ws);
    check_databases(&pg, &logins).unwrap_or_else(|e| panic!("{e}"));
    step("reconcile Jobs, logins, isolation", t);

    let mlflow_ns = namespace_of(&cluster, "mlflow");
    let mlflow_port = free_port();
    rewrites.serve(&format!("mlflow.{mlflow_ns}.svc"), 5000, mlflow_port);
    let uses_s3 = cluster
        .get("Deployment", &mlflow_ns, "mlflow")
        .to_string()
        .contains("s3://");
    let moto = uses_s3.then(|| {
        MOTO.lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .expect("the S3 emulator's endpoint")
    });
    let platform = Platform {
        pg,
        rewrites,
        mlflow_port,
        moto,
    };
    let t = std::time::Instant::now();
    let server = start_mlflow(ws, &cluster, &platform);
    check_mlflow_server(&cluster, mlflow_port).unwrap_or_else(|e| panic!("{e}"));
    step("MLflow's init container and server", t);
    let t = std::time::Instant::now();
    let said = run_identities_job(ws, &cluster, &platform).unwrap_or_else(|e| panic!("{e}"));
    step("identities Job", t);
    for tool in mlflow::consumers() {
        let t = std::time::Instant::now();
        assert!(said.contains(&format!("{tool}: created")), "{said}");
        check_client(ws, &cluster, &platform, tool).unwrap_or_else(|e| panic!("{e}"));
        step(&format!("{tool}'s runs"), t);
    }
    // Idempotent: a second run only sets what is there.
    let t = std::time::Instant::now();
    let again = run_identities_job(ws, &cluster, &platform).unwrap_or_else(|e| panic!("{e}"));
    assert!(again.contains("airflow: password set"), "{again}");
    step("identities Job again", t);
    let t = std::time::Instant::now();
    check_airflow(ws, &cluster, &platform);
    step(
        "airflow db migrate, db check, users create, the admin's login",
        t,
    );
    check_mlflow_memory(&cluster, &server);
    (platform, server)
}

/// The MLflow server, after the identities Job ran twice and each tool logged its runs, fits the
/// memory limit the Deployment gives it (what a cgroup would charge: PSS summed over its
/// processes). Prints the figures the README quotes.
fn check_mlflow_memory(cluster: &Cluster, server: &Server) {
    let ns = namespace_of(cluster, "mlflow");
    let deployment = cluster.get("Deployment", &ns, "mlflow");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let limit = container["resources"]["limits"]["memory"]
        .as_str()
        .expect("MLflow's memory limit");
    let limit_bytes = match limit.strip_suffix("Mi") {
        Some(mi) => mi.parse::<u64>().expect("Mi") << 20,
        None => {
            limit
                .strip_suffix("Gi")
                .expect("Mi or Gi")
                .parse::<u64>()
                .expect("Gi")
                << 30
        }
    };
    let (processes, pss, rss) = server.memory();
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "runtime: MLflow server memory: {processes} processes, PSS {:.0} MiB, RSS summed {:.0} MiB \
         (limit {limit})",
        mib(pss),
        mib(rss)
    );
    assert!(processes > 0, "no process of the MLflow server found");
    assert!(
        pss < limit_bytes,
        "the MLflow server takes {:.0} MiB (PSS), over its limit {limit}",
        mib(pss)
    );
}

mod mlflow {
    pub fn consumers() -> [&'static str; 2] {
        ["airflow", "jupyterhub"]
    }
}

#[test]
fn the_local_platform_runs_and_a_disagreeing_secret_fails() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ws = Workspace::new("local");
    let (platform, server) = run_platform(&ws);
    let cluster = ws.cluster();

    // A Secret that disagrees with the server fails the same checks.
    let airflow_ns = namespace_of(&cluster, "airflow");
    let mut wrong = ws.cluster();
    let uri = cluster.secret_key(&airflow_ns, "airflow-db-auth", "connection");
    let (_, password, _, _) = parse_uri(&uri);
    let encoded = uri.replace(
        &mlplat::encode::uri_encode(&password),
        "not-the-servers-password",
    );
    wrong.set_secret_key(&airflow_ns, "airflow-db-auth", "connection", &encoded);
    let err = check_databases(&platform.pg, &db_logins(&wrong, &ws))
        .expect_err("a database password the server does not have must fail");
    assert!(err.contains("password authentication failed"), "{err}");
    let mut wrong = ws.cluster();
    wrong.set_secret_key(
        &airflow_ns,
        "mlflow-client",
        "MLFLOW_TRACKING_PASSWORD",
        "not-the-password",
    );
    let err = check_client(&ws, &wrong, &platform, "airflow")
        .expect_err("an MLflow password the server does not have must fail");
    assert!(
        err.contains("401") || err.contains("not authenticated"),
        "{err}"
    );
    let mlflow_ns = namespace_of(&cluster, "mlflow");
    let mut wrong = ws.cluster();
    wrong.set_secret_key(
        &mlflow_ns,
        "mlflow-auth",
        "admin-password",
        "not-the-password",
    );
    let err = run_identities_job(&ws, &wrong, &platform).expect_err("a wrong admin must fail");
    assert!(err.contains("cannot log in"), "{err}");

    // Rotations reach the running servers: the new Jobs, and the pods their checksums restart.
    for name in [
        "postgres/users/airflow",
        "postgres/superuser",
        "mlflow/admin-password",
        "mlflow/clients/airflow",
    ] {
        ws.mlplat(&["rotate", name]);
    }
    ws.render();
    let rotated = ws.cluster();
    assert_ne!(
        rotated.secret_key(&airflow_ns, "mlflow-client", "MLFLOW_TRACKING_PASSWORD"),
        cluster.secret_key(&airflow_ns, "mlflow-client", "MLFLOW_TRACKING_PASSWORD")
    );
    let err = check_databases(&platform.pg, &db_logins(&rotated, &ws))
        .expect_err("before the new Job runs, the server has the old password");
    assert!(err.contains("password authentication failed"), "{err}");
    run_reconcile_jobs(&ws, &rotated, &platform.pg, &platform.rewrites);
    check_databases(&platform.pg, &db_logins(&rotated, &ws)).unwrap_or_else(|e| panic!("{e}"));
    let pg_ns = namespace_of(&rotated, "postgres");
    let superuser = rotated.secret_key(&pg_ns, "postgres-auth", "postgres-password");
    platform
        .pg
        .login("postgres", &superuser, "postgres", None)
        .unwrap_or_else(|e| panic!("the rotated superuser password: {e}"));
    drop(server);
    let server = start_mlflow(&ws, &rotated, &platform);
    check_mlflow_server(&rotated, platform.mlflow_port).unwrap_or_else(|e| panic!("{e}"));
    run_identities_job(&ws, &rotated, &platform).unwrap_or_else(|e| panic!("{e}"));
    check_client(&ws, &rotated, &platform, "airflow").unwrap_or_else(|e| panic!("{e}"));
    drop(server);
}

#[test]
fn the_rds_platform_runs_with_tls_and_s3() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (endpoint, _moto) = moto();
    let ws = Workspace::new("aws");
    let loaded = ws.loaded();
    let bucket = loaded
        .lock
        .aws
        .as_ref()
        .and_then(|a| a.s3.as_ref())
        .map(|s| s.name.clone());
    moto_bucket(
        &endpoint,
        bucket.as_deref().expect("the bucket in the lock file"),
    );
    *MOTO.lock().unwrap_or_else(|e| e.into_inner()) = Some(endpoint);
    let (platform, server) = run_platform(&ws);
    assert!(platform.pg.tls);
    drop(server);
}

/// The image the manifests name carries what the runtime test ran: the same MLflow (with the
/// auth extra), psycopg2 and boto3, and its tag is MLflow's version. The VS Code single-user
/// image's client (`mlflow-skinny`) is the same version, the one the test's clients ran.
#[test]
fn the_mlflow_image_installs_what_the_runtime_test_runs() {
    let dockerfile =
        std::fs::read_to_string(repo().join("images/mlflow/Dockerfile")).expect("Dockerfile");
    let requirements =
        std::fs::read_to_string(repo().join("tests/runtime/mlflow.requirements.txt"))
            .expect("requirements");
    let arg = |name: &str| -> String {
        dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ARG {name}=")))
            .unwrap_or_else(|| panic!("no ARG {name} in the Dockerfile"))
            .to_owned()
    };
    for (package, name) in [
        ("mlflow[auth]", "MLFLOW_VERSION"),
        ("psycopg2-binary", "PSYCOPG2_VERSION"),
        ("boto3", "BOTO3_VERSION"),
    ] {
        let pin = format!("{package}=={}", arg(name));
        assert!(
            requirements.lines().any(|l| l == pin),
            "tests/runtime/mlflow.requirements.txt does not pin {pin}"
        );
    }
    assert!(dockerfile.contains("\"mlflow[auth]==${MLFLOW_VERSION}\""));
    let vscode = std::fs::read_to_string(repo().join("images/jupyter-vscode/Dockerfile"))
        .expect("jupyter-vscode Dockerfile");
    let client = vscode
        .lines()
        .find_map(|l| l.strip_prefix("ARG MLFLOW_VERSION="))
        .expect("no ARG MLFLOW_VERSION in images/jupyter-vscode/Dockerfile");
    assert!(vscode.contains("\"mlflow-skinny==${MLFLOW_VERSION}\""));
    assert!(
        requirements
            .lines()
            .any(|l| l == format!("mlflow-skinny=={client}")),
        "images/jupyter-vscode/Dockerfile installs mlflow-skinny {client}, not the version \
         tests/runtime/mlflow.requirements.txt pins"
    );
    let out = Workspace::new("local");
    let cluster = out.cluster();
    let ns = namespace_of(&cluster, "mlflow");
    let image = cluster.get("Deployment", &ns, "mlflow")["spec"]["template"]["spec"]["containers"]
        [0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        image.ends_with(&format!(":{}", arg("MLFLOW_VERSION"))),
        "the default image {image} is not MLflow {}",
        arg("MLFLOW_VERSION")
    );
}

/// The tests' own venv (helm-python-sdk), from `scripts/test-env`.
fn tests_venv() -> PathBuf {
    let out = Command::new(repo().join("scripts/test-env"))
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("scripts/test-env");
    assert!(
        out.status.success(),
        "scripts/test-env failed:\n{}",
        text(&out)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The published chart archives: `shared/charts/` beside the repository (`$MLPLAT_SHARED`
/// names another `shared/`).
fn charts_dir(archive: &str, pull: &str) -> PathBuf {
    let shared = std::env::var_os("MLPLAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    let dir = shared.join("charts");
    assert!(
        dir.join(archive).exists(),
        "{} has no {archive}: `{pull} -d {}`",
        dir.display(),
        dir.display()
    );
    dir
}

/// The objects the published chart of `chart` renders for the tree's release (Helm's engine,
/// `tests/runtime/chart.py`), `set_null` values removed first (the chart's defaults apply).
fn chart_objects(ws: &Workspace, chart: &str, archive: &str, set_null: &[&str]) -> Vec<Value> {
    let pull = "helm pull airflow --repo https://airflow-helm.github.io/charts --version 8.9.0";
    let mut cmd = Command::new(tests_venv().join("bin/python"));
    cmd.arg(repo().join("tests/runtime/chart.py"))
        .arg(ws.out())
        .arg(chart)
        .arg(charts_dir(archive, pull));
    for path in set_null {
        cmd.args(["--set-null", path]);
    }
    let out = cmd.output().expect("chart.py");
    assert!(out.status.success(), "chart.py failed:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("chart.py's JSON")
}

/// Runs one query with a client's URI (host, port, user, password, database and `sslmode`
/// through libpq's variables, never the command line); its output, or what psql said.
fn query(uri: &str, pg: &Postgres, sql: &str) -> Result<String, String> {
    let (user, password, database, sslmode) = parse_uri(uri);
    let rest = uri.split_once("://").expect("a URI").1;
    let hostport = rest.rsplit_once('@').expect("userinfo").1;
    let hostport = hostport.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    let mut env: BTreeMap<String, String> = [
        ("PGHOST", host),
        ("PGPORT", port),
        ("PGUSER", &user),
        ("PGPASSWORD", &password),
        ("PGDATABASE", &database),
        ("PGCONNECT_TIMEOUT", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(mode) = sslmode {
        env.insert("PGSSLMODE".into(), mode);
    }
    let out = Program {
        argv: vec![
            pg.bin().join("psql").display().to_string(),
            "-X".into(),
            "-At".into(),
            "-c".into(),
            sql.into(),
        ],
        env,
        cwd: repo(),
        user: proc::me(),
    }
    .run(Duration::from_secs(120));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(text(&out).trim().to_owned())
    }
}

/// The community chart's PgBouncer (on by default) speaks TLS to the database when the config
/// asks for it (`examples/airflow2-external-db.yaml`: an external server, `sslmode: require`).
/// Airflow's scheduler connects through it as the chart wires it: against a server without
/// TLS the connection fails; against one that offers TLS it holds, encrypted as the server sees
/// it. With the chart's own default (`pgbouncer.serverSSL.mode: prefer`, mlplat's value
/// removed) the same connection to the server without TLS goes through in plaintext, which the
/// check tells apart.
#[test]
fn the_community_charts_pgbouncer_demands_tls_from_the_database() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ws = Workspace::new("airflow2-external-db");
    let ns = namespace_of(&ws.cluster(), "airflow");
    let with_chart = |set_null: &[&str]| {
        let mut cluster = ws.cluster();
        let objects = chart_objects(&ws, "airflow", "airflow-8.9.0.tgz", set_null);
        cluster.objects.extend(objects);
        cluster
    };
    let rendered = with_chart(&[]);
    let chart_default = with_chart(&["pgbouncer.serverSSL.mode"]);
    // The external server, prepared as its administrator would for Airflow.
    let values = values_of(&ws, "airflow");
    let (user, database) = (
        values["externalDatabase"]["user"].as_str().expect("user"),
        values["externalDatabase"]["database"]
            .as_str()
            .expect("database"),
    );
    let password = rendered.secret_key(&ns, "airflow-db-auth", "postgresql-password");
    let prepare = |pg: &Postgres| {
        pg.admin(
            "CREATE ROLE :\"user\" LOGIN PASSWORD :'pw';\nCREATE DATABASE :\"db\" OWNER :\"user\";",
            &[("user", user), ("pw", &password), ("db", database)],
        );
    };
    let ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let through_pgbouncer = |cluster: &Cluster, pg: &Postgres, name: &str| {
        let dir = ws.pod_dir(name);
        let bouncer = pgbouncer::start(cluster, &ns, pg.port, &dir, unprivileged("nobody"));
        let uri = pgbouncer::airflow_uri(cluster, &ns, "scheduler", &bouncer, &dir);
        let got = query(&uri, pg, ssl);
        (got, bouncer.server.log_text())
    };

    let t = std::time::Instant::now();
    let plain = Postgres::start(&ws.root.join("postgres-plain"), false);
    prepare(&plain);
    // PgBouncer holds the client while it retries the server (its log says nothing of a
    // refused TLS request): psql gives up after PGCONNECT_TIMEOUT. The same server, the same
    // files but the chart's default mode then show that TLS is what made the difference.
    let (got, log) = through_pgbouncer(&rendered, &plain, "pgbouncer");
    if let Ok(ssl) = got {
        panic!("PgBouncer reached a server without TLS (ssl: {ssl}):\n{log}");
    }
    let (got, log) = through_pgbouncer(&chart_default, &plain, "pgbouncer-default");
    assert_eq!(
        got.unwrap_or_else(|e| panic!("with the chart's default: {e}\n{log}")),
        "f",
        "with the chart's default (`prefer`) the connection to a server without TLS is plaintext"
    );
    drop(plain);
    step("PgBouncer and a server without TLS", t);

    let t = std::time::Instant::now();
    let tls = Postgres::start(&ws.root.join("postgres-tls"), true);
    prepare(&tls);
    let (got, log) = through_pgbouncer(&rendered, &tls, "pgbouncer-tls");
    assert_eq!(
        got.unwrap_or_else(|e| panic!("through PgBouncer to a server with TLS: {e}\n{log}")),
        "t",
        "PgBouncer's connection to the server is encrypted"
    );
    step("PgBouncer and a server with TLS", t);
}
