//! The published chart archives as the judge of chart values: `../shared/charts/` beside the
//! repository (never copied into it), rendered with Helm's own engine through helm-python-sdk
//! (`tests/support/inflate-charts`, many releases in one process).
//!
//! What a controller hands Helm is read off a built tree: a Flux HelmRelease's `valuesFrom`
//! Secrets merged, then its `spec.values` over them; an Argo CD Application's `valuesObject`.
//! Then each inflated release is asked whether it holds what the config asked for (the
//! `assert_*` functions, which return the problem so that tests can show they fail).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{describe, repo_root};

/// Chart versions some config renders for that no archive at hand has: they cannot be
/// inflated here (and there is no network to `helm pull` them). Each is asserted absent from
/// `../shared/charts/`, so that adding its archive makes the tests inflate it (after removing
/// it from this list).
pub const NO_ARCHIVE_AT_HAND: &[(&str, &str)] = &[
    // tests/golden/airflow-chart-1.18: the oldest official chart mlplat builds values for.
    ("airflow", "1.18.0"),
];

/// Where each published archive comes from, for the message that says how to get it.
const SOURCES: &[(&str, &str, &str)] = &[
    ("airflow", "1.22.0", "https://airflow.apache.org"),
    ("airflow", "8.9.0", "https://airflow-helm.github.io/charts"),
    ("jupyterhub", "4.4.0", "https://hub.jupyter.org/helm-chart/"),
];

/// `charts/` of the shared folder: `$MLPLAT_SHARED`, else `../shared/` beside the repository.
/// Panics, saying how to fill it, when it is missing: the tests that need it never pass
/// without it.
pub fn charts_dir() -> PathBuf {
    let shared = std::env::var_os("MLPLAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared"));
    let dir = shared.join("charts");
    if !dir.is_dir() {
        panic!(
            "{} is missing: these tests render the published chart archives from there. Fetch them with {}",
            dir.display(),
            pull_commands(&dir)
        );
    }
    dir
}

fn pull_commands(dir: &std::path::Path) -> String {
    SOURCES
        .iter()
        .map(|(chart, version, repo)| {
            format!(
                "`helm pull {chart} --repo {repo} --version {version} --destination {}`",
                dir.display()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The archive of `chart` `version`: `Ok(None)` for a version of [`NO_ARCHIVE_AT_HAND`];
/// `Err` when an archive that should be there is not, or one that is listed as absent is.
pub fn archive(chart: &str, version: &str) -> Result<Option<PathBuf>, String> {
    let dir = charts_dir();
    let path = dir.join(format!("{chart}-{version}.tgz"));
    let listed = NO_ARCHIVE_AT_HAND.contains(&(chart, version));
    match (path.is_file(), listed) {
        (true, false) => Ok(Some(path)),
        (false, true) => Ok(None),
        (true, true) => Err(format!(
            "{} is here now: take ({chart:?}, {version:?}) out of NO_ARCHIVE_AT_HAND so that the tests inflate it",
            path.display()
        )),
        (false, false) => {
            let repo = SOURCES
                .iter()
                .find(|(c, _, _)| *c == chart)
                .map_or("<its repository>", |(_, _, r)| r);
            Err(format!(
                "no archive for chart {chart} {version} in {}: fetch it with `helm pull {chart} --repo {repo} --version {version} --destination {}`, or, if it cannot be had, add it to NO_ARCHIVE_AT_HAND",
                dir.display(),
                dir.display()
            ))
        }
    }
}

/// One release to render.
#[derive(Debug, Clone)]
pub struct Inflation {
    pub archive: PathBuf,
    pub release: String,
    pub namespace: String,
    pub values: Value,
}

/// Renders each release; `Err` holds Helm's message (a schema violation, a template's
/// `fail`, …).
pub fn inflate(jobs: &[Inflation]) -> Vec<Result<Vec<Value>, String>> {
    let input: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({"archive": j.archive, "release": j.release, "namespace": j.namespace,
                   "values": j.values})
        })
        .collect();
    run_helper(&input)
        .into_iter()
        .map(|r| match r {
            Ok(text) => Ok(super::parse_yaml_text(&text, "Helm's output")),
            Err(e) => Err(e),
        })
        .collect()
}

/// Helm's coalescing and schema check alone, for each `(archive, values)`: `Err` holds Helm's
/// message.
pub fn check_schema(jobs: &[(PathBuf, Value)]) -> Vec<Result<(), String>> {
    let input: Vec<Value> = jobs
        .iter()
        .map(|(a, v)| json!({"archive": a, "values": v, "schema_only": true}))
        .collect();
    run_helper(&input)
        .into_iter()
        .map(|r| r.map(|_| ()))
        .collect()
}

/// Runs the helper on `input`, split over two processes (Helm renders the official Airflow
/// chart in a second or two; the tests' machines have two cores), the same jobs once.
fn run_helper(input: &[Value]) -> Vec<Result<String, String>> {
    let mut distinct: Vec<&Value> = Vec::new();
    let index: Vec<usize> = input
        .iter()
        .map(|job| match distinct.iter().position(|d| *d == job) {
            Some(i) => i,
            None => {
                distinct.push(job);
                distinct.len() - 1
            }
        })
        .collect();
    let halves: [Vec<Value>; 2] = [0, 1].map(|h| {
        distinct
            .iter()
            .skip(h)
            .step_by(2)
            .map(|v| (*v).clone())
            .collect()
    });
    let [a, b] = std::thread::scope(|scope| {
        halves
            .each_ref()
            .map(|half| scope.spawn(move || run_helper_process(half)))
            .map(|t| t.join().expect("helper thread"))
    });
    let results: Vec<&Result<String, String>> = (0..distinct.len())
        .map(|i| if i % 2 == 0 { &a[i / 2] } else { &b[i / 2] })
        .collect();
    index.into_iter().map(|i| results[i].clone()).collect()
}

fn run_helper_process(input: &[Value]) -> Vec<Result<String, String>> {
    if input.is_empty() {
        return Vec::new();
    }
    let script = repo_root().join("tests/support/inflate-charts");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let text = serde_json::to_vec(input).expect("jobs are JSON");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&text));
    let out = child.wait_with_output().expect("wait for the helper");
    writer.join().expect("writer").expect("write jobs");
    assert!(
        out.status.success(),
        "{} failed ({}): {}\n(it needs helm-python-sdk: scripts/test installs tests/requirements.txt)",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("helper prints JSON");
    assert_eq!(results.len(), input.len());
    results
        .into_iter()
        .map(|r| match (r["ok"].as_str(), r["error"].as_str()) {
            (Some(ok), _) => Ok(ok.to_owned()),
            (_, Some(e)) => Err(e.to_owned()),
            _ => Err(format!("the helper printed {r}")),
        })
        .collect()
}

/// A chart release as a controller in the cluster would install it.
#[derive(Debug, Clone)]
pub struct Release {
    /// `HelmRelease ns/name` or `Application ns/name`.
    pub object: String,
    pub chart: String,
    pub version: String,
    pub release: String,
    pub namespace: String,
    pub values: Value,
}

/// Every HelmRelease and Application of a built tree, with the values its controller passes
/// to Helm. `secret` finds a Secret the tree does not hold (an ExternalSecret's target) by
/// namespace and name, as its `values.yaml` text.
pub fn releases(objs: &[Value], secret: &dyn Fn(&str, &str) -> Option<String>) -> Vec<Release> {
    let mut out = Vec::new();
    for obj in objs {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        match obj["kind"].as_str() {
            Some("HelmRelease") => {
                let spec = &obj["spec"];
                let mut values = json!({});
                for from in spec["valuesFrom"].as_array().into_iter().flatten() {
                    let name = from["name"].as_str().unwrap_or_default();
                    let key = from["valuesKey"].as_str().unwrap_or("values.yaml");
                    let text = objs
                        .iter()
                        .find(|o| {
                            o["kind"] == "Secret"
                                && o["metadata"]["name"] == name
                                && o["metadata"]["namespace"] == ns
                        })
                        .and_then(|s| s["stringData"][key].as_str().map(str::to_owned))
                        .or_else(|| secret(ns, name))
                        .unwrap_or_else(|| panic!("{}: no Secret {ns}/{name}", describe(obj)));
                    let doc = mlplat::yaml::parse_document(&text)
                        .expect("values are YAML")
                        .to_json();
                    mlplat::charts::merge(&mut values, &doc);
                }
                mlplat::charts::merge(&mut values, &spec["values"]);
                let chart = &spec["chart"]["spec"];
                out.push(Release {
                    object: describe(obj),
                    chart: chart["chart"].as_str().unwrap_or_default().to_owned(),
                    version: chart["version"].as_str().unwrap_or_default().to_owned(),
                    release: spec["releaseName"]
                        .as_str()
                        .or(obj["metadata"]["name"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    namespace: spec["targetNamespace"].as_str().unwrap_or(ns).to_owned(),
                    values,
                });
            }
            Some("Application") if obj["spec"]["source"]["chart"].is_string() => {
                let source = &obj["spec"]["source"];
                out.push(Release {
                    object: describe(obj),
                    chart: source["chart"].as_str().unwrap_or_default().to_owned(),
                    version: source["targetRevision"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    release: source["helm"]["releaseName"]
                        .as_str()
                        .or(source["chart"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    namespace: obj["spec"]["destination"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    values: source["helm"]["valuesObject"].clone(),
                });
            }
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// What the config asked for, asked of the inflated objects. Each returns the problem.
// ---------------------------------------------------------------------------------------------

fn of_kind<'a>(objs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objs.iter().filter(move |o| o["kind"] == kind)
}

/// Every container (init containers too) of every workload and pod template in `objs`, with
/// the workload's name; pod templates held in ConfigMaps (the Kubernetes executor's) count.
pub fn containers(objs: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut push_pod = |owner: String, pod: &Value| {
        for key in ["initContainers", "containers"] {
            for c in pod[key].as_array().into_iter().flatten() {
                out.push((owner.clone(), c.clone()));
            }
        }
    };
    for o in objs {
        let name = o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match o["kind"].as_str() {
            Some("Deployment" | "StatefulSet" | "DaemonSet" | "Job") => {
                push_pod(name, &o["spec"]["template"]["spec"]);
            }
            Some("CronJob") => {
                push_pod(name, &o["spec"]["jobTemplate"]["spec"]["template"]["spec"])
            }
            Some("ConfigMap") => {
                for (key, text) in o["data"].as_object().into_iter().flatten() {
                    let text = text.as_str().unwrap_or_default();
                    if key.contains("pod_template") {
                        if let Ok(doc) = mlplat::yaml::parse_document(text) {
                            push_pod(format!("{name}/{key}"), &doc.to_json()["spec"]);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

/// An Ingress for `host`, of class `class`, with TLS from `tls` when given, whose backend is a
/// Service whose name ends with `backend`.
pub fn assert_ingress(
    objs: &[Value],
    host: &str,
    class: Option<&str>,
    tls: Option<&str>,
    backend: &str,
) -> Result<(), String> {
    let ingress = of_kind(objs, "Ingress")
        .find(|i| {
            i["spec"]["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["host"] == host)
        })
        .ok_or_else(|| format!("no Ingress for host {host}"))?;
    let who = describe(ingress);
    if let Some(class) = class {
        if ingress["spec"]["ingressClassName"] != class {
            return Err(format!("{who}: ingressClassName is not {class}"));
        }
    }
    if let Some(secret) = tls {
        let has = ingress["spec"]["tls"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["secretName"] == secret);
        if !has {
            return Err(format!("{who}: no TLS from Secret {secret}"));
        }
    }
    let services: Vec<&str> = ingress["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["host"] == host)
        .flat_map(|r| r["http"]["paths"].as_array().into_iter().flatten())
        .filter_map(|p| p["backend"]["service"]["name"].as_str())
        .collect();
    if !services.iter().any(|s| s.ends_with(backend)) {
        return Err(format!(
            "{who}: backends {services:?}, none is the *{backend} Service"
        ));
    }
    Ok(())
}

/// Whether a container or its pod reads Secret `secret` (an env var, `envFrom`, or a volume).
fn reads_secret(objs: &[Value], owner_suffix: &str, secret: &str, key: Option<&str>) -> bool {
    let text = |v: &Value| v.to_string();
    objs.iter()
        .filter(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(owner_suffix))
        })
        .any(|o| {
            let pod = &o["spec"]["template"]["spec"];
            let from_env = pod["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["env"].as_array().into_iter().flatten())
                .any(|e| {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    r["name"] == secret && key.is_none_or(|k| r["key"] == k)
                });
            let from_volume = pod["volumes"].as_array().into_iter().flatten().any(|v| {
                let t = text(v);
                t.contains(&format!("\"secretName\":\"{secret}\""))
                    || t.contains(&format!("\"name\":\"{secret}\""))
            });
            from_env || (key.is_none() && from_volume)
        })
}

/// The official chart's create-user Job takes the password of `username` from the users
/// Secret, and passes it to `airflow users create`.
pub fn assert_user_job_official(objs: &[Value], username: &str) -> Result<(), String> {
    let job = of_kind(objs, "Job")
        .find(|j| {
            j["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("create-user"))
        })
        .ok_or("no create-user Job")?;
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let pw = env(c, "AIRFLOW_USER_PASSWORD")
        .ok_or("the create-user Job has no AIRFLOW_USER_PASSWORD")?;
    let r = &pw["valueFrom"]["secretKeyRef"];
    if r["name"] != "airflow-users" || r["key"] != format!("{username}-password") {
        return Err(format!(
            "AIRFLOW_USER_PASSWORD comes from {r}, not airflow-users/{username}-password"
        ));
    }
    let args = c["args"].to_string();
    if !args.contains("users create") || !args.contains("$AIRFLOW_USER_PASSWORD") {
        return Err(format!("the create-user Job runs {args}"));
    }
    if args.contains("\"-p\"") {
        return Err("the create-user Job passes a password on its command line".to_owned());
    }
    Ok(())
}

/// The community chart's user sync reads the users Secret.
pub fn assert_user_sync_community(objs: &[Value]) -> Result<(), String> {
    if reads_secret(objs, "sync-users", "airflow-users", None) {
        Ok(())
    } else {
        Err("no sync-users workload reads Secret airflow-users".to_owned())
    }
}

/// No workload creates a user (the chart's default `admin`/`admin` is off).
pub fn assert_no_user_job(objs: &[Value]) -> Result<(), String> {
    match of_kind(objs, "Job").find(|j| {
        j["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("create-user"))
    }) {
        Some(j) => Err(format!("{} creates a user nobody configured", describe(j))),
        None => Ok(()),
    }
}

/// Every git-sync container takes its credentials from `secret` (HTTPS: its username and
/// password env vars; SSH: a volume of it).
pub fn assert_git_sync(objs: &[Value], secret: &str, https: bool) -> Result<(), String> {
    let syncs: Vec<(String, Value)> = containers(objs)
        .into_iter()
        .filter(|(_, c)| c["name"].as_str().is_some_and(|n| n.contains("git-sync")))
        .collect();
    if syncs.is_empty() {
        return Err("no git-sync container".to_owned());
    }
    for (owner, c) in &syncs {
        if https {
            let ok = c["env"].as_array().into_iter().flatten().any(|e| {
                e["name"].as_str().is_some_and(|n| n.ends_with("PASSWORD"))
                    && e["valueFrom"]["secretKeyRef"]["name"] == secret
            });
            if !ok {
                return Err(format!(
                    "{owner}: git-sync has no password from Secret {secret}"
                ));
            }
        }
    }
    if !https {
        let t = objs.iter().map(Value::to_string).collect::<String>();
        if !t.contains(&format!("\"secretName\":\"{secret}\"")) {
            return Err(format!("no volume of Secret {secret} for git-sync"));
        }
    }
    Ok(())
}

/// `MLFLOW_TRACKING_URI` is `uri` in the scheduler and in the workers: the Celery workers'
/// StatefulSet, or the pod template the Kubernetes executor starts each task from.
pub fn assert_tracking_uri_in_airflow(objs: &[Value], uri: &str) -> Result<(), String> {
    let all = containers(objs);
    let is = |c: &Value, names: &[&str]| c["name"].as_str().is_some_and(|n| names.contains(&n));
    let scheduler: Vec<_> = all
        .iter()
        .filter(|(owner, c)| {
            owner.ends_with("-scheduler") && is(c, &["scheduler", "airflow-scheduler"])
        })
        .collect();
    let workers: Vec<_> = all
        .iter()
        .filter(|(owner, c)| {
            (owner.ends_with("-worker") && is(c, &["worker", "airflow-worker"]))
                || (owner.contains("pod_template") && is(c, &["base"]))
        })
        .collect();
    for (what, found) in [("scheduler", scheduler), ("worker", workers)] {
        if found.is_empty() {
            return Err(format!("no {what} container"));
        }
        for (owner, c) in found {
            match env(c, "MLFLOW_TRACKING_URI").and_then(|e| e["value"].as_str()) {
                Some(v) if v == uri => {}
                other => {
                    return Err(format!(
                        "{owner}: MLFLOW_TRACKING_URI is {other:?}, not {uri}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The hub's configuration (the `values.yaml` of its Secret, which the hub reads), decoded.
pub fn hub_config(objs: &[Value]) -> Result<Value, String> {
    use base64::Engine as _;
    let secret = of_kind(objs, "Secret")
        .find(|s| s["metadata"]["name"] == "hub")
        .ok_or("no hub Secret")?;
    let encoded = secret["data"]["values.yaml"]
        .as_str()
        .ok_or("the hub Secret has no values.yaml")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    Ok(mlplat::yaml::parse_document(&text)
        .map_err(|e| e.to_string())?
        .to_json())
}

/// The hub's database is PostgreSQL at one of `hosts`, with no password in its URL, and the
/// hub gets `PGPASSWORD` from a Secret key `secret_exists` confirms.
pub fn assert_hub_database(
    objs: &[Value],
    hosts: &[String],
    secret_exists: &dyn Fn(&str, &str) -> bool,
) -> Result<(), String> {
    let config = hub_config(objs)?;
    let url = config["hub"]["db"]["url"]
        .as_str()
        .ok_or("the hub has no database URL")?;
    let rest = url
        .strip_prefix("postgresql+psycopg2://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| format!("the hub's database URL is not PostgreSQL: {url}"))?;
    let (user, at) = rest
        .split_once('@')
        .ok_or("no user in the hub's database URL")?;
    if user.contains(':') {
        return Err("the hub's database URL holds a password".to_owned());
    }
    let host = at.split([':', '/']).next().unwrap_or_default();
    if !hosts.iter().any(|h| h == host) {
        return Err(format!(
            "the hub's database is at {host}, not one of {hosts:?}"
        ));
    }
    let hub = of_kind(objs, "Deployment")
        .find(|d| d["metadata"]["name"] == "hub")
        .ok_or("no hub Deployment")?;
    let c = &hub["spec"]["template"]["spec"]["containers"][0];
    let r = &env(c, "PGPASSWORD").ok_or("the hub has no PGPASSWORD")?["valueFrom"]["secretKeyRef"];
    let (name, key) = (
        r["name"].as_str().unwrap_or_default(),
        r["key"].as_str().unwrap_or_default(),
    );
    if !secret_exists(name, key) {
        return Err(format!(
            "PGPASSWORD comes from {name}/{key}, which is not rendered"
        ));
    }
    Ok(())
}

/// `MLFLOW_TRACKING_URI` is `uri` in the single-user pods the hub spawns.
pub fn assert_tracking_uri_in_notebooks(objs: &[Value], uri: &str) -> Result<(), String> {
    let config = hub_config(objs)?;
    match config["singleuser"]["extraEnv"]["MLFLOW_TRACKING_URI"].as_str() {
        Some(v) if v == uri => Ok(()),
        other => Err(format!(
            "single-user pods get MLFLOW_TRACKING_URI {other:?}, not {uri}"
        )),
    }
}
