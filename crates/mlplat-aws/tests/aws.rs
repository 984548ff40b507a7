//! `plan`, `provision`, `render` and `destroy` against a real AWS emulator (moto): from nothing
//! to a provisioned platform and back, a second run that changes nothing, a run that fails half
//! way and the next one that completes it, and the inputs AWS rejects (but moto accepts)
//! refused before any call.
//!
//! moto is the one `scripts/test` started (`MLPLAT_TEST_AWS_ENDPOINT`), or one this binary
//! starts on a free loopback port and stops when it ends. Each test uses its own names.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The emulator's endpoint, started once per test binary.
#[allow(clippy::zombie_processes)] // the watchdog outlives this process on purpose
fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(e) = std::env::var("MLPLAT_TEST_AWS_ENDPOINT")
            && !e.is_empty()
        {
            return e;
        }
        let port = free_port();
        // A watchdog shell stops moto (by its pid) once this test process is gone.
        let script = format!(
            "moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {} 2>/dev/null; do sleep 1; done; kill $m",
            std::process::id()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..150 {
            if http_get(&endpoint, "/moto-api/data.json").is_some() {
                return endpoint;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("moto_server did not answer on {endpoint}");
    })
}

/// `mlplat ARGS` in `dir` against the moto server, with test credentials and nothing of the
/// environment's AWS settings.
fn against_moto(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::mlplat_bin());
    cmd.current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A plain HTTP GET; the body when the answer is 200.
fn http_get(endpoint: &str, path: &str) -> Option<String> {
    let host = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

/// An S3 client of the test's config, by path (moto serves buckets by path, not host name).
fn s3_client(cfg: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(cfg)
            .force_path_style(true)
            .build(),
    )
}

/// A VPC with two private subnets in two zones: `(vpc, [subnets])`.
fn network(rt: &tokio::runtime::Runtime) -> (String, Vec<String>) {
    rt.block_on(async {
        let ec2 = aws_sdk_ec2::Client::new(&sdk_config().await);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .expect("create vpc");
        let vpc = vpc
            .vpc()
            .and_then(|v| v.vpc_id())
            .expect("vpc id")
            .to_owned();
        let mut subnets = Vec::new();
        for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
            let s = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(az)
                .send()
                .await
                .expect("create subnet");
            subnets.push(
                s.subnet()
                    .and_then(|s| s.subnet_id())
                    .expect("subnet id")
                    .to_owned(),
            );
        }
        (vpc, subnets)
    })
}

struct Workspace {
    dir: tempfile::TempDir,
    name: String,
}

impl Workspace {
    /// A platform named `name` with Airflow and MLflow on RDS (per tool) and S3.
    fn new(name: &str, rt: &tokio::runtime::Runtime, rds_extra: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = common::workspace_root().join("examples");
        for f in ["example.key", "example-git-token"] {
            std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy");
        }
        let (vpc, subnets) = network(rt);
        let ws = Workspace {
            dir,
            name: name.to_owned(),
        };
        ws.write_config(&vpc, &subnets, rds_extra);
        ws
    }

    fn write_config(&self, vpc: &str, subnets: &[String], rds_extra: &str) {
        let name = &self.name;
        let config = format!(
            "platform: {name}
secrets:
  key: {{fromFile: example.key}}
backends:
  postgres:
    mode: rds
    rds:
      vpcId: {vpc}
      privateSubnets: [{}]
      privateSubnetsCidrBlocks: [10.0.1.0/24, 10.0.2.0/24]
      instanceClass: db.t4g.micro
      engineVersion: \"16.4\"
{rds_extra}
  artifacts:
    mode: s3
    s3: {{bucket: {name}-artifacts}}
tools:
  airflow:
    dags:
      repo: https://github.com/example-org/dags.git
      credentials: {{username: bot, token: {{fromFile: example-git-token}}}}
    users:
      - {{username: admin, role: Admin, email: admin@example.com}}
  mlflow:
    replicas: 2
",
            subnets.join(", ")
        );
        std::fs::write(self.path("platform.yaml"), config).expect("write config");
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = against_moto(self.dir.path(), args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run mlplat")
    }

    /// Every master password this config sends to RDS.
    fn master_passwords(&self) -> Vec<String> {
        let loaded = mlplat::config::load_one(&self.path("platform.yaml")).expect("load");
        mlplat::backends::aws::Desired::from_config(&loaded)
            .instances
            .iter()
            .filter_map(|i| match &i.master_password {
                mlplat::backends::aws::MasterPassword::Given(s) => Some(s.expose().to_owned()),
                mlplat::backends::aws::MasterPassword::Managed => None,
            })
            .collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn expect_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// What AWS (moto) has, looked up with the SDK, independently of mlplat.
struct Seen {
    instances: Vec<aws_sdk_rds::types::DbInstance>,
    subnet_group: Option<Vec<String>>,
    security_group: Option<aws_sdk_ec2::types::SecurityGroup>,
    bucket_encryption: Option<String>,
    public_access_blocked: Option<bool>,
    versioning: Option<String>,
}

fn seen(rt: &tokio::runtime::Runtime, name: &str) -> Seen {
    let versioning = http_get(endpoint(), &format!("/{name}-artifacts?versioning")).map(|t| {
        t.split("<Status>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap_or("")
            .to_owned()
    });
    rt.block_on(async {
        let cfg = sdk_config().await;
        let rds = aws_sdk_rds::Client::new(&cfg);
        let mut instances = Vec::new();
        for tool in ["airflow", "mlflow"] {
            if let Ok(out) = rds
                .describe_db_instances()
                .db_instance_identifier(format!("{name}-{tool}"))
                .send()
                .await
            {
                instances.extend(out.db_instances().iter().cloned());
            }
        }
        let subnet_group = rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(format!("{name}-db"))
            .send()
            .await
            .ok()
            .and_then(|o| o.db_subnet_groups().first().cloned())
            .map(|g| {
                g.subnets()
                    .iter()
                    .filter_map(|s| s.subnet_identifier().map(str::to_owned))
                    .collect()
            });
        let ec2 = aws_sdk_ec2::Client::new(&cfg);
        let security_group = ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values(format!("{name}-db"))
                    .build(),
            )
            .send()
            .await
            .ok()
            .and_then(|o| o.security_groups().first().cloned());
        let s3 = s3_client(&cfg);
        let bucket = format!("{name}-artifacts");
        let bucket_encryption = s3
            .get_bucket_encryption()
            .bucket(&bucket)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default())
                    .map(|d| d.sse_algorithm().as_str().to_owned())
            });
        let public_access_blocked = s3
            .get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.public_access_block_configuration().map(|p| {
                    p.block_public_acls() == Some(true)
                        && p.ignore_public_acls() == Some(true)
                        && p.block_public_policy() == Some(true)
                        && p.restrict_public_buckets() == Some(true)
                })
            });
        Seen {
            instances,
            subnet_group,
            security_group,
            bucket_encryption,
            public_access_blocked,
            versioning,
        }
    })
}

#[test]
fn from_nothing_to_provisioned_and_back() {
    let rt = runtime();
    let ws = Workspace::new("roundtrip", &rt, "");
    let passwords = ws.master_passwords();
    assert_eq!(passwords.len(), 2);
    let no_secret = |out: &Output| {
        for p in &passwords {
            assert!(
                !text(&out.stdout).contains(p) && !text(&out.stderr).contains(p),
                "a master password was printed"
            );
        }
    };

    // Nothing exists: plan shows what provision would create, and exits 1.
    let plan = ws.run(&["plan", "-c", "platform.yaml"]);
    expect_code(&plan, 1);
    let plan_text = text(&plan.stdout);
    for line in [
        "+ security group roundtrip-db",
        "+ DB subnet group roundtrip-db",
        "+ RDS instance roundtrip-airflow",
        "+ RDS instance roundtrip-mlflow",
        "+ S3 bucket roundtrip-artifacts",
        "Plan: 5 to create, 0 to change, 0 unchanged.",
    ] {
        assert!(plan_text.contains(line), "{line} in:\n{plan_text}");
    }
    assert!(
        seen(&rt, "roundtrip").instances.is_empty(),
        "plan is read-only"
    );
    // render cannot run before provision: it names what to do.
    let render = ws.run(&["render", "-c", "platform.yaml", "-o", "out"]);
    expect_code(&render, 2);
    assert!(
        text(&render.stderr).contains("run `mlplat provision -c platform.yaml` first"),
        "{}",
        text(&render.stderr)
    );
    assert!(!ws.path("out").exists());

    // provision creates everything.
    let first = ws.run(&["provision", "-c", "platform.yaml", "--poll-interval", "1s"]);
    expect_code(&first, 0);
    no_secret(&first);
    let s = seen(&rt, "roundtrip");
    assert_eq!(s.instances.len(), 2);
    for i in &s.instances {
        assert_eq!(i.storage_encrypted(), Some(true));
        assert_eq!(i.publicly_accessible(), Some(false));
        assert_eq!(i.deletion_protection(), Some(true));
        assert_eq!(i.db_instance_class(), Some("db.t4g.micro"));
        assert!(i.backup_retention_period().unwrap_or(0) >= 1);
        let tags: Vec<(&str, &str)> = i
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
            .collect();
        assert!(tags.contains(&("mlplat:platform", "roundtrip")), "{tags:?}");
    }
    assert_eq!(s.subnet_group.as_ref().map(Vec::len), Some(2));
    let sg = s.security_group.expect("security group");
    let rules: Vec<(Option<i32>, Vec<&str>)> = sg
        .ip_permissions()
        .iter()
        .map(|p| {
            (
                p.from_port(),
                p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).collect(),
            )
        })
        .collect();
    assert_eq!(rules, [(Some(5432), vec!["10.0.1.0/24", "10.0.2.0/24"])]);
    assert_eq!(s.bucket_encryption.as_deref(), Some("AES256"));
    assert_eq!(s.public_access_blocked, Some(true));
    assert_eq!(s.versioning.as_deref(), Some("Enabled"));
    let lock = std::fs::read_to_string(ws.path("platform.lock.yaml")).expect("lock written");
    for p in &passwords {
        assert!(!lock.contains(p.as_str()));
    }

    // A second run changes nothing, and plan agrees.
    let second = ws.run(&["provision", "-c", "platform.yaml", "--poll-interval", "1s"]);
    expect_code(&second, 0);
    assert!(
        !text(&second.stderr).contains("creating") && !text(&second.stderr).contains("changing"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("platform.lock.yaml")).expect("lock"),
        lock
    );
    let plan = ws.run(&["plan", "-c", "platform.yaml"]);
    expect_code(&plan, 0);
    assert!(text(&plan.stdout).contains("Plan: 0 to create, 0 to change, 5 unchanged."));

    // render uses the endpoints moto returned, without AWS (no endpoint, no credentials).
    let render = ws.run_with(
        &["render", "-c", "platform.yaml", "-o", "out"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ACCESS_KEY_ID", ""),
        ],
    );
    expect_code(&render, 0);
    no_secret(&render);
    let airflow_host = s.instances.iter().find_map(|i| {
        (i.db_instance_identifier() == Some("roundtrip-airflow")).then(|| {
            i.endpoint()
                .and_then(|e| e.address())
                .unwrap_or("")
                .to_owned()
        })
    });
    let airflow_host = airflow_host.expect("airflow endpoint");
    assert!(!airflow_host.is_empty());
    let secrets = std::fs::read_to_string(ws.path("out/airflow/secrets.yaml")).expect("secrets");
    assert!(secrets.contains(&format!("@{airflow_host}:5432/airflow?sslmode=require")));
    let deployment =
        std::fs::read_to_string(ws.path("out/mlflow/deployment.yaml")).expect("deployment");
    assert!(deployment.contains("s3://roundtrip-artifacts"));
    assert!(!ws.path("out/mlflow/pvc.yaml").exists());

    // destroy: not without --yes, and not through deletion protection.
    let refused = ws.run(&["destroy", "-c", "platform.yaml"]);
    expect_code(&refused, 2);
    let refused = ws.run(&["destroy", "-c", "platform.yaml", "--yes"]);
    expect_code(&refused, 2);
    assert!(text(&refused.stderr).contains("deletion protection is on"));
    assert_eq!(seen(&rt, "roundtrip").instances.len(), 2, "nothing deleted");

    // Turning protection off is a safe in-place change; then destroy removes everything.
    let config = std::fs::read_to_string(ws.path("platform.yaml")).expect("config");
    std::fs::write(
        ws.path("platform.yaml"),
        config.replace(
            "      engineVersion: \"16.4\"\n",
            "      engineVersion: \"16.4\"\n      deletionProtection: false\n      skipFinalSnapshot: true\n",
        ),
    )
    .expect("write");
    let plan = ws.run(&["plan", "-c", "platform.yaml"]);
    expect_code(&plan, 1);
    assert!(text(&plan.stdout).contains("~ deletion_protection: true → false (in place)"));
    expect_code(
        &ws.run(&["provision", "-c", "platform.yaml", "--poll-interval", "1s"]),
        0,
    );
    let gone = ws.run(&[
        "destroy",
        "-c",
        "platform.yaml",
        "--yes",
        "--poll-interval",
        "1s",
    ]);
    expect_code(&gone, 0);
    no_secret(&gone);
    let s = seen(&rt, "roundtrip");
    assert!(s.instances.is_empty());
    assert!(s.subnet_group.is_none());
    assert!(s.security_group.is_none());
    assert!(s.bucket_encryption.is_none() && s.versioning.is_none());
    let lock = std::fs::read_to_string(ws.path("platform.lock.yaml")).unwrap_or_default();
    assert!(!lock.contains("aws:"), "{lock}");
}

#[test]
fn a_run_that_fails_half_way_is_completed_by_the_next() {
    let rt = runtime();
    let ws = Workspace::new("halfway", &rt, "      deletionProtection: false\n");
    // S3 fails once the databases were asked for: CreateBucket gets a 503.
    let faulty = faulty_s3_proxy();
    let first = ws.run_with(
        &["provision", "-c", "platform.yaml", "--poll-interval", "1s"],
        &[("AWS_ENDPOINT_URL_S3", &faulty), ("AWS_MAX_ATTEMPTS", "1")],
    );
    expect_code(&first, 2);
    let err = text(&first.stderr);
    assert!(
        err.contains("S3 bucket halfway-artifacts: CreateBucket failed: ServiceUnavailable"),
        "{err}"
    );
    assert!(
        err.contains("creating RDS instance halfway-airflow"),
        "{err}"
    );
    assert_eq!(seen(&rt, "halfway").instances.len(), 2);
    assert!(!ws.path("platform.lock.yaml").exists());

    let second = ws.run(&["provision", "-c", "platform.yaml", "--poll-interval", "1s"]);
    expect_code(&second, 0);
    let log = text(&second.stderr);
    assert!(
        log.contains("creating S3 bucket halfway-artifacts"),
        "{log}"
    );
    assert!(!log.contains("creating RDS instance"), "{log}");
    assert!(!log.contains("creating security group"), "{log}");
    expect_code(&ws.run(&["plan", "-c", "platform.yaml"]), 0);
    let s = seen(&rt, "halfway");
    assert_eq!(s.bucket_encryption.as_deref(), Some("AES256"));
}

/// An S3 endpoint in front of moto that answers every `PUT` with a 503 (an injected fault)
/// and passes everything else on. Returns its URL; it lives as long as the test process.
fn faulty_s3_proxy() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = endpoint().trim_start_matches("http://").to_owned();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match client.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            if head.starts_with("PUT ") {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>injected fault</Message></Error>";
                let _ = write!(
                    client,
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
            // Requests before the fault (HeadBucket) carry no body.
            let Ok(mut up) = TcpStream::connect(&upstream) else {
                continue;
            };
            let head = head.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
            if up.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let mut answer = Vec::new();
            let _ = up.read_to_end(&mut answer);
            let _ = client.write_all(&answer);
        }
    });
    url
}

/// A config with one problem AWS would reject and moto would not; AWS is unreachable, so any
/// call would fail differently.
fn refused_before_any_call(rds_extra: &str, bucket: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = common::workspace_root().join("examples");
    std::fs::copy(examples.join("example.key"), dir.path().join("example.key")).expect("copy");
    let config = format!(
        "platform: refuse
secrets:
  key: {{fromFile: example.key}}
backends:
  postgres:
    mode: rds
    rds:
      vpcId: vpc-0123456789abcdef0
      privateSubnets: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]
      privateSubnetsCidrBlocks: [10.0.1.0/24]
{rds_extra}
  artifacts:
    mode: s3
    s3: {{bucket: {bucket}}}
tools:
  mlflow: {{}}
"
    );
    std::fs::write(dir.path().join("platform.yaml"), config).expect("write");
    let mut cmd = Command::new(common::mlplat_bin());
    cmd.current_dir(dir.path())
        .args(["plan", "-c", "platform.yaml"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env_remove("MLPLAT_SECRET_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(!err.contains("127.0.0.1:1"), "no call is made: {err}");
    err
}

#[test]
fn an_invalid_instance_class_is_refused_before_any_call() {
    let err = refused_before_any_call("      instanceClass: t3.micro\n", "ok-bucket", &[]);
    assert!(
        err.contains("platform.yaml:11:22: backends.postgres.rds.instanceClass"),
        "{err}"
    );
    assert!(
        err.contains("an RDS instance class such as db.t4g.micro"),
        "{err}"
    );
}

#[test]
fn a_bucket_name_with_capitals_is_refused_before_any_call() {
    let err = refused_before_any_call("", "Mlops-Artifacts", &[]);
    assert!(err.contains("backends.artifacts.s3.bucket"), "{err}");
    assert!(err.contains("an S3 bucket name"), "{err}");
}

#[test]
fn master_passwords_rds_refuses_are_refused_before_any_call() {
    let shared = "      layout: shared\n      masterPassword: {fromEnv: PGMASTER}\n";
    for (pw, says) in [
        ("short", "8 to 128 characters"),
        ("with/slash-123", "`/`"),
        ("with@at-sign-1", "`@`"),
        ("with\"quote-12", "`\"`"),
        ("with a space-1", "a space"),
    ] {
        let err = refused_before_any_call(shared, "ok-bucket", &[("PGMASTER", pw)]);
        assert!(
            err.contains("backends.postgres.rds.masterPassword"),
            "{err}"
        );
        assert!(err.contains(says), "{pw}: {err}");
        assert!(!err.contains(pw), "the password is not shown: {err}");
    }
}

#[test]
fn drift_is_reported_not_applied_and_a_bucket_with_objects_needs_force_destroy() {
    let rt = runtime();
    let ws = Workspace::new(
        "drift",
        &rt,
        "      deletionProtection: false\n      skipFinalSnapshot: true\n",
    );
    expect_code(
        &ws.run(&["provision", "-c", "platform.yaml", "--poll-interval", "1s"]),
        0,
    );
    rt.block_on(async {
        let cfg = sdk_config().await;
        let s3 = s3_client(&cfg);
        // moto enforces the bucket policy: its plain-HTTP requests fall under the TLS-only
        // statement. Lift it to upload one object (plan shows it as a change to make).
        s3.delete_bucket_policy()
            .bucket("drift-artifacts")
            .send()
            .await
            .expect("delete policy");
        s3.put_object()
            .bucket("drift-artifacts")
            .key("experiments/1/model.pkl")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"weights"))
            .send()
            .await
            .expect("put object");
    });
    let config = std::fs::read_to_string(ws.path("platform.yaml")).expect("config");

    // Another instance class would mean downtime: reported as drift, never applied.
    std::fs::write(
        ws.path("platform.yaml"),
        config.replace("db.t4g.micro", "db.t4g.small"),
    )
    .expect("write");
    let plan = ws.run(&["plan", "-c", "platform.yaml"]);
    expect_code(&plan, 1);
    assert!(
        text(&plan.stdout)
            .contains("! instance_class: db.t4g.micro → db.t4g.small (drift: not applied"),
        "{}",
        text(&plan.stdout)
    );
    let provision = ws.run(&["provision", "-c", "platform.yaml", "--poll-interval", "1s"]);
    expect_code(&provision, 1);
    assert!(
        text(&provision.stdout)
            .contains("! RDS instance drift-airflow: instance_class is db.t4g.micro in AWS"),
        "{}",
        text(&provision.stdout)
    );
    let s = seen(&rt, "drift");
    assert!(
        s.instances
            .iter()
            .all(|i| i.db_instance_class() == Some("db.t4g.micro"))
    );

    // A bucket with objects stays, and so does everything else, until forceDestroy says so.
    std::fs::write(ws.path("platform.yaml"), &config).expect("write");
    let refused = ws.run(&["destroy", "-c", "platform.yaml", "--yes"]);
    expect_code(&refused, 2);
    assert!(
        text(&refused.stderr).contains("S3 bucket drift-artifacts: the bucket holds objects"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(seen(&rt, "drift").instances.len(), 2);
    std::fs::write(
        ws.path("platform.yaml"),
        config.replace(
            "s3: {bucket: drift-artifacts}",
            "s3: {bucket: drift-artifacts, forceDestroy: true}",
        ),
    )
    .expect("write");
    // Under moto's policy check, plain HTTP cannot delete objects: mlplat says so and stops.
    let destroy = [
        "destroy",
        "-c",
        "platform.yaml",
        "--yes",
        "--poll-interval",
        "1s",
    ];
    let denied = ws.run(&destroy);
    expect_code(&denied, 2);
    assert!(
        text(&denied.stderr)
            .contains("S3 bucket drift-artifacts: DeleteObjects failed: AccessDenied"),
        "{}",
        text(&denied.stderr)
    );
    rt.block_on(async {
        let cfg = sdk_config().await;
        let s3 = s3_client(&cfg);
        s3.delete_bucket_policy()
            .bucket("drift-artifacts")
            .send()
            .await
            .expect("delete policy");
    });
    let gone = ws.run(&destroy);
    expect_code(&gone, 0);
    assert!(text(&gone.stderr).contains("deleted S3 bucket drift-artifacts (1 object versions)"));
    let s = seen(&rt, "drift");
    assert!(s.instances.is_empty() && s.bucket_encryption.is_none());
}

/// A config with environments: the base holds what they share, each overlay in `env/` what
/// differs; `aws` lists the environments on RDS and S3 (the others keep the in-cluster
/// defaults). Platform names are `<name>-<env>`.
struct Environments {
    dir: tempfile::TempDir,
}

impl Environments {
    fn new(name: &str, rt: &tokio::runtime::Runtime, envs: &[(&str, bool)]) -> Environments {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = common::workspace_root().join("examples");
        std::fs::copy(examples.join("example.key"), dir.path().join("example.key")).expect("copy");
        std::fs::create_dir(dir.path().join("env")).expect("mkdir");
        let mut declared = String::new();
        for (env, aws) in envs {
            declared.push_str(&format!("  {env}: {{file: env/{env}.yaml}}\n"));
            let overlay = if *aws {
                let (vpc, subnets) = network(rt);
                format!(
                    "backends:
  postgres:
    mode: rds
    rds:
      vpcId: {vpc}
      privateSubnets: [{}]
      privateSubnetsCidrBlocks: [10.0.1.0/24, 10.0.2.0/24]
      deletionProtection: false
      skipFinalSnapshot: true
  artifacts:
    mode: s3
    s3: {{bucket: {name}-{env}-artifacts, forceDestroy: true}}
tools:
  mlflow: {{replicas: 2}}
",
                    subnets.join(", ")
                )
            } else {
                "tools:\n  mlflow: {replicas: 1}\n".to_owned()
            };
            std::fs::write(dir.path().join(format!("env/{env}.yaml")), overlay).expect("write");
        }
        let config = format!(
            "platform: {name}
secrets:
  key: {{fromFile: example.key}}
environments:
{declared}tools:
  airflow:
    users:
      - {{username: admin, role: Admin, email: admin@example.com}}
  mlflow: {{}}
"
        );
        std::fs::write(dir.path().join("platform.yaml"), config).expect("write config");
        Environments { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = against_moto(self.dir.path(), args);
        cmd.output().expect("run mlplat")
    }

    /// `run` with no AWS at hand: no credentials, an endpoint nothing listens on.
    fn run_offline(&self, args: &[&str]) -> Output {
        Command::new(common::mlplat_bin())
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .output()
            .expect("run mlplat")
    }

    /// Every file of the workspace (configs, locks, out/) with its bytes.
    fn files(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        common::tree::read_tree(self.dir.path())
    }
}

/// The files that differ between two snapshots (changed, added or removed).
fn changed(
    a: &std::collections::BTreeMap<String, Vec<u8>>,
    b: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

#[test]
fn two_environments_dev_in_cluster_and_prod_on_aws() {
    let rt = runtime();
    let ws = Environments::new("envs", &rt, &[("dev", false), ("prod", true)]);

    // plan: prod's resources only; dev is skipped with a line that says so.
    let plan = ws.run(&["plan", "-c", "platform.yaml"]);
    expect_code(&plan, 1);
    let (out, err) = (text(&plan.stdout), text(&plan.stderr));
    assert!(
        err.contains("mlplat: environment dev uses no AWS backend (postgres.mode: rds, artifacts.mode: s3): skipped"),
        "{err}"
    );
    for line in [
        "environment prod:\n",
        "+ security group envs-prod-db",
        "+ DB subnet group envs-prod-db",
        "+ RDS instance envs-prod-airflow",
        "+ RDS instance envs-prod-mlflow",
        "+ S3 bucket envs-prod-artifacts",
        "Plan: 5 to create, 0 to change, 0 unchanged.",
        "run `mlplat provision -c platform.yaml --env prod` to apply",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    assert!(!out.contains("envs-dev"), "{out}");
    // render before provision: prod's lock has no endpoint yet, and the message says what to run.
    let early = ws.run_offline(&["render", "-c", "platform.yaml", "-o", "out"]);
    expect_code(&early, 2);
    assert!(
        text(&early.stderr).contains("platform.yaml (environment prod): backends.postgres.mode is rds, but the lock file platform.prod.lock.yaml has no endpoint for RDS instance envs-prod-airflow: run `mlplat provision -c platform.yaml --env prod` first"),
        "{}",
        text(&early.stderr)
    );
    assert!(!ws.path("out").exists());

    // provision of every environment asks once: without a terminal, --yes.
    let refused = ws.run(&["provision", "-c", "platform.yaml"]);
    expect_code(&refused, 2);
    assert!(
        text(&refused.stderr).contains("pass --yes to confirm"),
        "{}",
        text(&refused.stderr)
    );
    assert!(text(&refused.stdout).contains("+ RDS instance envs-prod-airflow"));
    assert!(
        seen(&rt, "envs-prod").instances.is_empty(),
        "nothing created"
    );

    let done = ws.run(&[
        "provision",
        "-c",
        "platform.yaml",
        "--yes",
        "--poll-interval",
        "1s",
    ]);
    expect_code(&done, 0);
    assert!(
        text(&done.stderr).contains("the AWS backends of environment prod are provisioned"),
        "{}",
        text(&done.stderr)
    );
    assert_eq!(seen(&rt, "envs-prod").instances.len(), 2);
    let prod_lock = std::fs::read_to_string(ws.path("platform.prod.lock.yaml")).expect("lock");
    assert!(prod_lock.contains("envs-prod-airflow:"), "{prod_lock}");
    assert!(!ws.path("platform.dev.lock.yaml").exists());
    assert!(!ws.path("platform.lock.yaml").exists());
    expect_code(&ws.run(&["plan", "-c", "platform.yaml"]), 0);
    let plan = ws.run(&["plan", "-c", "platform.yaml", "--env", "prod"]);
    expect_code(&plan, 0);
    assert!(text(&plan.stdout).contains("Plan: 0 to create, 0 to change, 5 unchanged."));
    let plan = ws.run(&["plan", "-c", "platform.yaml", "--env", "dev"]);
    expect_code(&plan, 0);
    assert!(text(&plan.stdout).is_empty());

    // render of both environments: offline, prod's endpoints from prod's lock.
    let render = ws.run_offline(&["render", "-c", "platform.yaml", "-o", "out"]);
    expect_code(&render, 0);
    expect_code(
        &ws.run_offline(&["render", "-c", "platform.yaml", "-o", "out", "--check"]),
        0,
    );
    let endpoint_host = seen(&rt, "envs-prod")
        .instances
        .iter()
        .find(|i| i.db_instance_identifier() == Some("envs-prod-airflow"))
        .and_then(|i| i.endpoint().and_then(|e| e.address()).map(str::to_owned))
        .expect("endpoint");
    let prod_secrets =
        std::fs::read_to_string(ws.path("out/prod/airflow/secrets.yaml")).expect("secrets");
    assert!(prod_secrets.contains(&format!("@{endpoint_host}:5432/airflow")));
    assert!(
        std::fs::read_to_string(ws.path("out/prod/mlflow/deployment.yaml"))
            .expect("deployment")
            .contains("s3://envs-prod-artifacts")
    );
    assert!(ws.path("out/dev/postgres/statefulset.yaml").is_file());
    assert!(!ws.path("out/prod/postgres/statefulset.yaml").exists());

    // rotate in prod: prod's lock only; the next render changes prod's files only.
    let before = ws.files();
    let rotate = ws.run(&[
        "rotate",
        "-c",
        "platform.yaml",
        "--env",
        "prod",
        "airflow/fernet-key",
    ]);
    expect_code(&rotate, 0);
    assert!(text(&rotate.stdout).contains("airflow/fernet-key: generation 1 → 2"));
    let rotated = ws.files();
    assert_eq!(changed(&before, &rotated), ["platform.prod.lock.yaml"]);
    expect_code(&ws.run(&["render", "-c", "platform.yaml", "-o", "out"]), 0);
    let after = ws.files();
    let touched = changed(&rotated, &after);
    assert!(
        touched.contains(&"out/prod/airflow/secrets.yaml".to_owned()),
        "{touched:?}"
    );
    assert!(
        touched.iter().all(|p| p.starts_with("out/prod/")),
        "{touched:?}"
    );

    // destroy prod: nothing of prod left, nothing of dev touched.
    let before = ws.files();
    let gone = ws.run(&[
        "destroy",
        "-c",
        "platform.yaml",
        "--env",
        "prod",
        "--yes",
        "--poll-interval",
        "1s",
    ]);
    expect_code(&gone, 0);
    let s = seen(&rt, "envs-prod");
    assert!(s.instances.is_empty());
    assert!(s.subnet_group.is_none() && s.security_group.is_none());
    assert!(s.bucket_encryption.is_none() && s.versioning.is_none());
    let lock = std::fs::read_to_string(ws.path("platform.prod.lock.yaml")).expect("lock");
    assert!(
        !lock.contains("aws:") && lock.contains("airflow/fernet-key: 2"),
        "{lock}"
    );
    assert_eq!(
        changed(&before, &ws.files()),
        ["platform.prod.lock.yaml"],
        "destroy --env prod changes prod's lock only"
    );
}

#[test]
fn environments_on_aws_never_touch_each_other() {
    let rt = runtime();
    let ws = Environments::new(
        "iso",
        &rt,
        &[
            ("dev", false),
            ("prod", true),
            ("qa", true),
            ("staging", true),
        ],
    );
    let overlay =
        |env: &str| std::fs::read_to_string(ws.path(&format!("env/{env}.yaml"))).expect("read");
    let write = |env: &str, text: &str| {
        std::fs::write(ws.path(&format!("env/{env}.yaml")), text).expect("write")
    };
    let qa = overlay("qa");

    // Two environments naming one bucket: refused before any call.
    write(
        "qa",
        &qa.replace("iso-qa-artifacts", "iso-staging-artifacts"),
    );
    let plan = ws.run(&["plan", "-c", "platform.yaml"]);
    expect_code(&plan, 2);
    assert!(
        text(&plan.stderr).contains(
            "environments `qa` and `staging` both use the AWS S3 bucket iso-staging-artifacts"
        ),
        "{}",
        text(&plan.stderr)
    );

    // A failure in one environment stops before the next and says which were done.
    // (subnets that do not exist: moto refuses the DB subnet group, after qa's security group)
    let subnets = qa
        .lines()
        .find_map(|l| l.trim().strip_prefix("privateSubnets: "))
        .expect("subnets")
        .to_owned();
    write(
        "qa",
        &qa.replace(
            &subnets,
            "[subnet-0000000000000dead, subnet-0000000000000beef]",
        ),
    );
    let failed = ws.run(&[
        "provision",
        "-c",
        "platform.yaml",
        "--yes",
        "--poll-interval",
        "1s",
    ]);
    expect_code(&failed, 2);
    let err = text(&failed.stderr);
    assert!(
        err.contains(
            "mlplat: provision stopped at environment qa (done: prod; not started: staging)"
        ),
        "{err}"
    );
    assert_eq!(seen(&rt, "iso-prod").instances.len(), 2);
    assert!(
        seen(&rt, "iso-staging").instances.is_empty(),
        "staging not started"
    );
    assert!(ws.path("platform.prod.lock.yaml").is_file());
    assert!(!ws.path("platform.staging.lock.yaml").exists());

    // Fixed, the next run carries on.
    write("qa", &qa);
    let done = ws.run(&[
        "provision",
        "-c",
        "platform.yaml",
        "--yes",
        "--poll-interval",
        "1s",
    ]);
    expect_code(&done, 0);
    assert!(!text(&done.stderr).contains("creating RDS instance iso-prod"));
    for env in ["prod", "qa", "staging"] {
        assert_eq!(seen(&rt, &format!("iso-{env}")).instances.len(), 2, "{env}");
    }

    // An environment pointed at another's names (checked alone, with --env): the resources
    // carry the other's platform tag, so plan and provision stop before any change.
    write(
        "qa",
        &qa.replace("    rds:\n", "    rds:\n      identifier: iso-prod\n"),
    );
    for verb in ["plan", "provision"] {
        let out = ws.run(&[verb, "-c", "platform.yaml", "--env", "qa"]);
        expect_code(&out, 2);
        assert!(
            text(&out.stderr).contains(
                "mlplat created it for platform iso-prod (its mlplat:platform tag), not for iso-qa"
            ),
            "{}",
            text(&out.stderr)
        );
    }
    write("qa", &qa);

    // destroy staging: staging's resources go, prod's and qa's stay.
    let gone = ws.run(&[
        "destroy",
        "-c",
        "platform.yaml",
        "--env",
        "staging",
        "--yes",
        "--poll-interval",
        "1s",
    ]);
    expect_code(&gone, 0);
    let s = seen(&rt, "iso-staging");
    assert!(s.instances.is_empty() && s.security_group.is_none() && s.versioning.is_none());
    for env in ["prod", "qa"] {
        let s = seen(&rt, &format!("iso-{env}"));
        assert_eq!(s.instances.len(), 2, "{env}");
        assert!(
            s.security_group.is_some() && s.subnet_group.is_some(),
            "{env}"
        );
        assert_eq!(s.versioning.as_deref(), Some("Enabled"), "{env}");
    }
    expect_code(
        &ws.run(&["plan", "-c", "platform.yaml", "--env", "prod"]),
        0,
    );

    // destroy of every environment: all shown, one confirmation, one after another.
    let refused = ws.run(&["destroy", "-c", "platform.yaml"]);
    expect_code(&refused, 2);
    let shown = text(&refused.stdout);
    assert!(
        shown.contains("in environment prod:") && shown.contains("in environment qa:"),
        "{shown}"
    );
    assert!(text(&refused.stderr).contains("mlplat: environment staging: nothing to destroy"));
    let all = ws.run(&[
        "destroy",
        "-c",
        "platform.yaml",
        "--yes",
        "--poll-interval",
        "1s",
    ]);
    expect_code(&all, 0);
    for env in ["prod", "qa", "staging"] {
        assert!(
            seen(&rt, &format!("iso-{env}")).instances.is_empty(),
            "{env}"
        );
        assert!(
            !ws.path(&format!("platform.{env}.lock.yaml")).exists(),
            "{env}"
        );
    }
}
