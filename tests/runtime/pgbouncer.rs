//! The community Airflow chart's PgBouncer, run on this machine from what the published chart
//! renders for a tree: Debian's `pgbouncer` with the chart's `pgbouncer.ini`, `gen_auth_file.sh`
//! and `gen_self_signed_cert.sh` (its Secret) and the container's own start script and
//! environment. The only changes are where it runs: the image's home directory
//! (`/home/pgbouncer`, where the Secret is mounted and the scripts write) becomes a temporary
//! directory, the server's `host=… port=…` the test's PostgreSQL, `listen_addr`/`listen_port`
//! 127.0.0.1 and a free port, the Unix socket that directory; and bash runs the scripts (the
//! image's `/bin/sh` expands `${var/a/b}`, Debian's dash does not). `dumb-init`, which only
//! rewrites signals, is left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::kube::{Cluster, Rewrites};
use super::proc::{Program, Server, User, free_port, give, me, text};

/// Debian's pgbouncer binary, or a panic saying how to install it.
fn binary() -> PathBuf {
    let path = PathBuf::from("/usr/sbin/pgbouncer");
    assert!(
        path.exists(),
        "{} is missing: the runtime test runs the Airflow chart's PgBouncer; install Debian's \
         package (`apt-get install -y pgbouncer`, as .ci/run does) and run again",
        path.display()
    );
    path
}

/// A running PgBouncer; stopped (by its process group's id) when dropped.
pub struct PgBouncer {
    pub port: u16,
    pub server: Server,
}

/// The chart's PgBouncer of `namespace`, reaching PostgreSQL on 127.0.0.1:`pg_port`.
pub fn start(
    cluster: &Cluster,
    namespace: &str,
    pg_port: u16,
    dir: &Path,
    user: User,
) -> PgBouncer {
    binary();
    let deployment = cluster
        .all("Deployment", Some(namespace))
        .into_iter()
        .find(|d| {
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-pgbouncer"))
        })
        .expect("the chart renders a PgBouncer Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "pgbouncer")
        .expect("a pgbouncer container");
    let home = dir.join("home");
    let config_dir = home.join("config");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let secret = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "pgbouncer-config")
        .and_then(|v| v["secret"]["secretName"].as_str())
        .expect("the pgbouncer-config volume's Secret");
    let files = cluster.secret(namespace, secret);
    let port = free_port();
    let image_home = "/home/pgbouncer";
    let local_home = home.display().to_string();
    for (name, text) in &files {
        let mut text = text.replace(image_home, &local_home);
        if name == "pgbouncer.ini" {
            text = server_and_listener(&text, pg_port, port, &local_home);
        } else {
            text = text.replacen("#!/bin/sh", "#!/bin/bash", 1);
        }
        let path = config_dir.join(name);
        std::fs::write(&path, text).expect("write");
        let mode = if name.ends_with(".sh") { 0o755 } else { 0o644 };
        let mut perms = std::fs::metadata(&path).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, mode);
        std::fs::set_permissions(&path, perms).expect("chmod");
    }
    // The container's start script (its args: `/bin/sh -c SCRIPT`).
    let args: Vec<&str> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args.get(..2), Some(&["/bin/sh", "-c"][..]), "{args:?}");
    let script = args[2].replace(image_home, &local_home);
    let mut env: BTreeMap<String, String> = cluster.resolve_env(namespace, container);
    env.insert("PATH".into(), "/usr/sbin:/usr/bin:/bin".into());
    env.insert("HOME".into(), local_home.clone());
    give(dir, user);
    let mut server = Program {
        argv: vec!["/bin/bash".into(), "-c".into(), script],
        env,
        cwd: home.clone(),
        user,
    }
    .spawn(&dir.join("pgbouncer.log"));
    server.wait_until("pgbouncer", Duration::from_secs(120), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    PgBouncer { port, server }
}

/// `pgbouncer.ini` pointed at the test's servers: the `[databases]` entry's `host=… port=…`,
/// the listener, the Unix socket.
fn server_and_listener(ini: &str, pg_port: u16, port: u16, home: &str) -> String {
    let mut out = String::new();
    for line in ini.lines() {
        let line = if line.starts_with("* = host=") {
            format!("* = host=127.0.0.1 port={pg_port}")
        } else if line.starts_with("listen_addr =") {
            "listen_addr = 127.0.0.1".to_owned()
        } else if line.starts_with("listen_port =") {
            format!("listen_port = {port}\nunix_socket_dir = {home}")
        } else {
            line.to_owned()
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(
        out.contains(&format!("port={pg_port}")) && out.contains(&format!("listen_port = {port}")),
        "pgbouncer.ini has no `* = host=` entry or no listen_port:\n{ini}"
    );
    out
}

/// The database URI an Airflow container of `namespace` connects with: its
/// `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD`, run with the container's environment as Airflow
/// runs it, the PgBouncer Service's address rewritten to `bouncer`.
pub fn airflow_uri(
    cluster: &Cluster,
    namespace: &str,
    component: &str,
    bouncer: &PgBouncer,
    dir: &Path,
) -> String {
    let deployment = cluster
        .all("Deployment", Some(namespace))
        .into_iter()
        .find(|d| {
            d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!("-{component}")))
        })
        .unwrap_or_else(|| panic!("no {component} Deployment in {namespace}"));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut env = cluster.resolve_env(namespace, container);
    let cmd = env
        .get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD")
        .cloned()
        .expect("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD in the container's environment");
    env.insert("PATH".into(), "/usr/bin:/bin".into());
    let out = Program {
        argv: vec!["/bin/sh".into(), "-c".into(), cmd],
        env: env.clone(),
        cwd: dir.to_owned(),
        user: me(),
    }
    .run(Duration::from_secs(120));
    assert!(
        out.status.success(),
        "the connection command failed:\n{}",
        text(&out)
    );
    let uri = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut rewrites = Rewrites::default();
    let host = env.get("DATABASE_HOST").cloned().unwrap_or_default();
    let port: u16 = env
        .get("DATABASE_PORT")
        .and_then(|p| p.parse().ok())
        .expect("DATABASE_PORT");
    rewrites.serve(&host, port, bouncer.port);
    rewrites.apply(&uri)
}
