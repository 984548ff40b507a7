//! Every example and golden tree installed as a controller would install it: each HelmRelease
//! and Application, with the values its controller hands Helm, rendered through the published
//! chart archive of its version (`../shared/charts/`, with Helm's own engine), every inflated
//! object checked by `kubernetes-validate --strict`, and the objects asked for what the config
//! wants: an Ingress with the configured host and class, the user-creation Job reading the
//! password from the users Secret, git-sync with the credentials Secret, the hub's database URL
//! and `PGPASSWORD`, `MLFLOW_TRACKING_URI` in the scheduler, the workers and the notebooks.
//! `delivery: rendered` is judged the same way, on the tree it writes.
//!
//! The checks are shown to fail: values moved back to keys the chart refuses, or set so that
//! the chart renders without what the config asked for.

#[path = "common/cases.rs"]
mod cases;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::published::{self, Inflation, Release};

/// Every value mlplat's render says a Secret holds, by namespace and name: the Secrets the
/// external-secrets operator writes from Secrets Manager in external-secrets mode.
fn rendered_secret(
    loaded: &mlplat::config::Loaded,
) -> impl Fn(&str, &str) -> Option<String> + use<> {
    let rendered = mlplat::render::render_full(loaded).expect("render");
    move |ns: &str, name: &str| {
        rendered
            .secrets
            .iter()
            .find(|s| s.namespace == ns && s.name == name)
            .and_then(|s| s.data.get("values.yaml"))
            .map(|v| v.expose().to_owned())
    }
}

/// Whether the tree holds Secret `name` with `key` in `namespace`, itself or as the target of
/// an ExternalSecret.
fn secret_in_tree(objs: &[Value], namespace: &str, name: &str, key: &str) -> bool {
    objs.iter().any(|o| {
        let here = o["metadata"]["namespace"] == namespace;
        match o["kind"].as_str() {
            Some("Secret") => {
                here && o["metadata"]["name"] == name
                    && (o["stringData"].get(key).is_some() || o["data"].get(key).is_some())
            }
            Some("ExternalSecret") => {
                let target = o["spec"]["target"]["name"]
                    .as_str()
                    .or(o["metadata"]["name"].as_str());
                here && target == Some(name)
                    && o["spec"]["data"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|d| d["secretKey"] == key)
            }
            _ => false,
        }
    })
}

/// `http://mlflow.<namespace>.svc:<port>`, from the MLflow Service of the tree.
fn mlflow_uri(tree: &[Value]) -> Option<String> {
    tree.iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "mlflow")
        .map(|s| {
            format!(
                "http://mlflow.{}.svc:{}",
                s["metadata"]["namespace"].as_str().unwrap_or_default(),
                s["spec"]["ports"][0]["port"]
            )
        })
}

/// The hosts a database may be at: the tree's PostgreSQL Service, an external server, or an
/// RDS endpoint from the lock file.
fn database_hosts(loaded: &mlplat::config::Loaded, tree: &[Value]) -> Vec<String> {
    let mut hosts: Vec<String> = tree
        .iter()
        .filter(|o| o["kind"] == "Service" && o["metadata"]["name"] == "postgres")
        .map(|s| {
            format!(
                "postgres.{}.svc",
                s["metadata"]["namespace"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if let Some(e) = &loaded.platform.backends.postgres.external {
        hosts.push(e.host.clone());
    }
    let lock = serde_json::to_value(&loaded.lock).expect("lock");
    let mut stack = vec![&lock];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("endpoint") {
                    hosts.push(e.clone());
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    hosts
}

/// Asks the inflated objects of one release (`inflated`) for what the config wants. `tree` is
/// the whole platform's tree (the Secrets and Services the release refers to).
fn expectations(
    loaded: &mlplat::config::Loaded,
    chart: &str,
    inflated: &[Value],
    tree: &[Value],
) -> Vec<String> {
    let p = &loaded.platform;
    let mut problems = Vec::new();
    let mut check = |r: Result<(), String>| {
        if let Err(e) = r {
            problems.push(e);
        }
    };
    let uri = mlflow_uri(tree);
    match chart {
        "airflow" => {
            let cfg = p.tools.airflow.as_ref().expect("airflow configured");
            let official = cfg.flavor == mlplat::config::AirflowFlavor::Official;
            if let Some(ing) = &cfg.ingress {
                // Airflow 3 serves its UI from the API server; Airflow 2 from its webserver.
                let backend = if official { "-api-server" } else { "-web" };
                check(published::assert_ingress(
                    inflated,
                    &ing.host,
                    ing.class_name.as_deref(),
                    ing.tls_secret.as_deref(),
                    backend,
                ));
            }
            match (official, cfg.users.first()) {
                (true, Some(user)) => {
                    check(published::assert_user_job_official(
                        inflated,
                        &user.username,
                    ));
                }
                (true, None) => check(published::assert_no_user_job(inflated)),
                (false, Some(_)) => check(published::assert_user_sync_community(inflated)),
                (false, None) => {}
            }
            if let Some(d) = &cfg.dags {
                if d.credentials.is_some() {
                    check(published::assert_git_sync(
                        inflated,
                        "airflow-https-git-secret",
                        true,
                    ));
                }
                if d.ssh_key.is_some() {
                    check(published::assert_git_sync(
                        inflated,
                        "airflow-ssh-git-secret",
                        false,
                    ));
                }
            }
            if let Some(uri) = &uri {
                check(published::assert_tracking_uri_in_airflow(inflated, uri));
            }
        }
        "jupyterhub" => {
            let cfg = p.tools.jupyterhub.as_ref().expect("jupyterhub configured");
            let ns = loaded.namespace_of("jupyterhub");
            if let Some(ing) = &cfg.ingress {
                check(published::assert_ingress(
                    inflated,
                    &ing.host,
                    ing.class_name.as_deref(),
                    ing.tls_secret.as_deref(),
                    "proxy-public",
                ));
            }
            if cfg.database.kind == mlplat::config::HubDbKind::Postgres {
                let hosts = database_hosts(loaded, tree);
                let exists = |name: &str, key: &str| secret_in_tree(tree, &ns, name, key);
                check(published::assert_hub_database(inflated, &hosts, &exists));
            }
            if let Some(uri) = &uri {
                check(published::assert_tracking_uri_in_notebooks(inflated, uri));
            }
        }
        other => problems.push(format!("no expectations for chart {other}")),
    }
    problems
}

/// `kubernetes-validate --strict` on `objs`, in two processes at once (it takes some 50 ms an
/// object).
fn validate_in_two(objs: &[Value]) -> Result<(), String> {
    let (a, b) = objs.split_at(objs.len() / 2);
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| support::kubernetes_validate(a));
        let tb = s.spawn(|| support::kubernetes_validate(b));
        (ta.join().expect("thread"), tb.join().expect("thread"))
    });
    match (ra, rb) {
        (Ok(()), Ok(())) => Ok(()),
        (a, b) => Err([a.err(), b.err()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// One release of one tree, ready to inflate.
struct Case {
    tree: String,
    loaded_at: usize,
    release: Release,
}

#[test]
fn every_example_and_golden_case_inflates_through_the_published_charts() {
    let platforms = cases::platforms();
    let mut trees = Vec::new();
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    let mut not_at_hand = Vec::new();
    let mut jobs = Vec::new();
    for (i, (loaded, dir)) in platforms.iter().enumerate() {
        let tree = support::kustomize_build(dir);
        let secret = rendered_secret(loaded);
        for release in published::releases(&tree, &secret) {
            match published::archive(&release.chart, &release.version) {
                Err(e) => problems.push(format!("{}: {e}", dir.display())),
                Ok(None) => not_at_hand.push(format!(
                    "{}: {} {}",
                    dir.display(),
                    release.chart,
                    release.version
                )),
                Ok(Some(archive)) => {
                    jobs.push(Inflation {
                        archive,
                        release: release.release.clone(),
                        namespace: release.namespace.clone(),
                        values: release.values.clone(),
                    });
                    cases.push(Case {
                        tree: dir.display().to_string(),
                        loaded_at: i,
                        release,
                    });
                }
            }
        }
        trees.push(tree);
    }
    let results = published::inflate(&jobs);
    let mut all = Vec::new();
    let mut charts_seen = std::collections::BTreeSet::new();
    for (case, result) in cases.iter().zip(results) {
        let r = &case.release;
        let what = format!("{}: {} ({} {})", case.tree, r.object, r.chart, r.version);
        match result {
            Err(e) => problems.push(format!("{what}: Helm refused it:\n{e}")),
            Ok(objs) => {
                assert!(objs.len() > 5, "{what}: only {} objects", objs.len());
                let (loaded, _) = &platforms[case.loaded_at];
                for p in expectations(loaded, &r.chart, &objs, &trees[case.loaded_at]) {
                    problems.push(format!("{what}: {p}"));
                }
                charts_seen.insert(format!("{} {}", r.chart, r.version));
                all.extend(objs);
            }
        }
    }
    // The same object from two trees (an example delivered by Flux and by Argo CD) once.
    let mut distinct: Vec<Value> = Vec::new();
    for o in all {
        if !distinct.contains(&o) {
            distinct.push(o);
        }
    }
    if let Err(e) = validate_in_two(&distinct) {
        problems.push(format!(
            "kubernetes-validate --strict on the inflated objects:\n{e}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // Every published archive was used, and only the listed version had none.
    let expected: std::collections::BTreeSet<String> =
        ["airflow 1.22.0", "airflow 8.9.0", "jupyterhub 4.4.0"]
            .map(str::to_owned)
            .into();
    assert_eq!(charts_seen, expected);
    assert!(cases.len() >= 15, "only {} releases inflated", cases.len());
    eprintln!(
        "inflated {} releases; not inflated, no archive at hand: {}",
        cases.len(),
        not_at_hand.join(", ")
    );
    assert_eq!(
        not_at_hand.len(),
        published::NO_ARCHIVE_AT_HAND.len(),
        "{not_at_hand:?}"
    );
}

/// The official chart's values of `examples/local.yaml`, as its HelmRelease passes them.
fn local_release(chart: &str) -> (mlplat::config::Loaded, Vec<Value>, Release) {
    let root = support::repo_root();
    let loaded = mlplat::config::load_one(&root.join("examples/local.yaml")).expect("load");
    let tree = support::kustomize_build(&root.join("out"));
    let secret = rendered_secret(&loaded);
    let release = published::releases(&tree, &secret)
        .into_iter()
        .find(|r| r.chart == chart)
        .expect("release");
    (loaded, tree, release)
}

/// Inflates `values` with the archive of `release`, and asks the result for what the config
/// wants: `Err` holds Helm's refusal, or the expectations that failed.
fn judge(
    loaded: &mlplat::config::Loaded,
    tree: &[Value],
    release: &Release,
    values: Value,
) -> Result<(), String> {
    let archive = published::archive(&release.chart, &release.version)
        .expect("archive")
        .expect("at hand");
    let job = Inflation {
        archive,
        release: release.release.clone(),
        namespace: release.namespace.clone(),
        values,
    };
    let objs = published::inflate(&[job]).remove(0)?;
    let problems = expectations(loaded, &release.chart, &objs, tree);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn the_checks_fail_when_values_go_back_to_keys_the_chart_refuses_or_ignores() {
    let (loaded, tree, airflow) = local_release("airflow");
    judge(&loaded, &tree, &airflow, airflow.values.clone()).expect("the example passes");
    let changed = |f: &dyn Fn(&mut Value)| {
        let mut v = airflow.values.clone();
        f(&mut v);
        judge(&loaded, &tree, &airflow, v).expect_err("the change is caught")
    };
    // The default user under `apiServer`, where no released chart takes it: refused.
    let err = changed(&|v| {
        let user = v["createUserJob"]["defaultUser"].take();
        v["createUserJob"]
            .as_object_mut()
            .expect("map")
            .remove("defaultUser");
        v["apiServer"] = json!({"defaultUser": user});
    });
    assert!(
        err.contains("additional properties 'defaultUser' not allowed"),
        "{err}"
    );
    // Airflow 2's `ingress.web`: the chart renders, with no Ingress for the Airflow 3 UI.
    let err = changed(&|v| {
        let ingress = v["ingress"]["apiServer"].take();
        v["ingress"] = json!({"web": ingress});
    });
    assert!(
        err.contains("no Ingress for host airflow.mlops.example.com"),
        "{err}"
    );
    // The class left out.
    let err = changed(&|v| {
        v["ingress"]["apiServer"]
            .as_object_mut()
            .expect("map")
            .remove("ingressClassName");
    });
    assert!(err.contains("ingressClassName is not nginx"), "{err}");
    // The password back on the command line, from a value.
    let err = changed(&|v| {
        v["createUserJob"]
            .as_object_mut()
            .expect("map")
            .remove("env");
    });
    assert!(err.contains("no AIRFLOW_USER_PASSWORD"), "{err}");
    // git-sync without its credentials Secret.
    let err = changed(&|v| {
        v["dags"]["gitSync"]
            .as_object_mut()
            .expect("map")
            .remove("credentialsSecret");
    });
    assert!(
        err.contains("git-sync has no password from Secret"),
        "{err}"
    );
    // No MLflow for the tasks.
    let err = changed(&|v| v["env"] = json!([]));
    assert!(err.contains("MLFLOW_TRACKING_URI is None"), "{err}");

    let (loaded, tree, hub) = local_release("jupyterhub");
    judge(&loaded, &tree, &hub, hub.values.clone()).expect("the example passes");
    let changed = |f: &dyn Fn(&mut Value)| {
        let mut v = hub.values.clone();
        f(&mut v);
        judge(&loaded, &tree, &hub, v).expect_err("the change is caught")
    };
    // The password in the URL instead of PGPASSWORD.
    let err = changed(&|v| {
        let url = v["hub"]["db"]["url"]
            .as_str()
            .expect("url")
            .replace("jupyterhub@", "jupyterhub:pw@");
        v["hub"]["db"]["url"] = json!(url);
    });
    assert!(err.contains("holds a password"), "{err}");
    // A key z2jh does not know: refused by its schema.
    let err = changed(&|v| v["hub"]["dbb"] = json!({}));
    assert!(err.contains("dbb"), "{err}");
    let err = changed(&|v| {
        v["singleuser"]["extraEnv"]
            .as_object_mut()
            .expect("map")
            .remove("MLFLOW_TRACKING_URI");
    });
    assert!(
        err.contains("single-user pods get MLFLOW_TRACKING_URI None"),
        "{err}"
    );
}

/// `examples/local.yaml` with `delivery: rendered`, in a scratch directory with its own chart
/// cache; Helm is the stand-in on helm-python-sdk, pulling the published archives.
struct Rendered {
    dir: tempfile::TempDir,
}

impl Rendered {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let examples = support::repo_root().join("examples");
        let text = std::fs::read_to_string(examples.join("local.yaml")).expect("read");
        let text = text.replacen(
            "platform: mlops\n",
            "platform: mlops\ndelivery: rendered\n",
            1,
        );
        std::fs::write(dir.path().join("platform.yaml"), text).expect("write");
        for f in ["example.key", "example-git-token"] {
            std::fs::copy(examples.join(f), dir.path().join(f)).expect("copy");
        }
        Rendered { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mlplat"))
            .args(args)
            .current_dir(self.dir.path())
            .env(
                "MLPLAT_HELM",
                support::repo_root().join("tests/support/fake-helm"),
            )
            .env("MLPLAT_FAKE_HELM_ARCHIVES", published::charts_dir())
            .env("MLPLAT_FAKE_HELM_LOG", self.path("helm.log"))
            .env("MLPLAT_CACHE", self.path("cache"))
            .output()
            .expect("run mlplat")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "mlplat {args:?}: {stderr}");
        stderr
    }

    fn helm_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("helm.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn objects_in(tree: &[Value], namespace: &str) -> Vec<Value> {
    tree.iter()
        .filter(|o| o["metadata"]["namespace"] == namespace)
        .cloned()
        .collect()
}

#[test]
fn delivery_rendered_inflates_the_published_charts_and_runs_helm_only_when_inputs_change() {
    let r = Rendered::new();
    r.ok(&["charts", "pull"]);
    let said = r.ok(&["render"]);
    assert!(!said.contains("not checked"), "{said}");
    let tree = support::kustomize_build(&r.path("out"));
    if let Err(e) = support::validate_all(&tree) {
        panic!("{e}");
    }
    let loaded = mlplat::config::load_one(&r.path("platform.yaml")).expect("load");
    for (chart, tool) in [("airflow", "airflow"), ("jupyterhub", "jupyterhub")] {
        let ns = loaded.namespace_of(tool);
        let problems = expectations(&loaded, chart, &objects_in(&tree, &ns), &tree);
        assert!(problems.is_empty(), "{chart}: {problems:?}");
    }
    let templates = |r: &Rendered| {
        r.helm_calls()
            .iter()
            .filter(|c| c.starts_with("template "))
            .count()
    };
    assert_eq!(templates(&r), 2, "{:?}", r.helm_calls());

    // Nothing changed: no Helm at all, for a render or a check.
    let before = r.helm_calls().len();
    r.ok(&["render"]);
    r.ok(&["render", "--check"]);
    assert_eq!(r.helm_calls().len(), before, "{:?}", r.helm_calls());

    // One chart's values changed: Helm runs for that chart alone.
    let config = std::fs::read_to_string(r.path("platform.yaml")).expect("read");
    let config = config.replace("airflow.mlops.example.com", "pipelines.mlops.example.com");
    std::fs::write(r.path("platform.yaml"), config).expect("write");
    r.ok(&["render"]);
    let calls = r.helm_calls();
    assert_eq!(
        calls[before..],
        [calls[before..]
            .iter()
            .find(|c| c.starts_with("template airflow "))
            .cloned()
            .expect("airflow templated again")],
        "{calls:?}"
    );
    let tree = support::kustomize_build(&r.path("out"));
    let loaded = mlplat::config::load_one(&r.path("platform.yaml")).expect("load");
    let ns = loaded.namespace_of("airflow");
    let problems = expectations(&loaded, "airflow", &objects_in(&tree, &ns), &tree);
    assert!(problems.is_empty(), "{problems:?}");
    // What Helm printed is kept private: it holds the charts' Secrets.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = r.path("cache/inflated");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let files: Vec<_> = std::fs::read_dir(&dir).expect("ls").flatten().collect();
        // Helm's output and what mlplat made of it, for each chart: the older airflow entries
        // are replaced.
        let yaml = files
            .iter()
            .filter(|f| f.path().extension().is_some_and(|e| e == "yaml"));
        assert_eq!(yaml.count(), 2, "{files:?}");
        assert_eq!(files.len(), 4, "{files:?}");
        for f in files {
            assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
        }
    }
}
