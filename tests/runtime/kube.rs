//! The rendered tree as Kubernetes reads it, and its containers made runnable on this machine:
//! the command and arguments as written, the environment resolved from `value`, `secretKeyRef`,
//! `configMapKeyRef` and `envFrom` the way the kubelet resolves them, volumes from Secrets,
//! ConfigMaps and emptyDirs written into a temporary directory, and two rewrites only: every
//! mount path becomes that directory, and every in-cluster address (`host:port`, or a bare host)
//! becomes a server of the test on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::proc::{Program, User, give};

/// Every object of a rendered tree.
#[derive(Debug)]
pub struct Cluster {
    pub objects: Vec<Value>,
}

impl Cluster {
    /// Reads every manifest under `out` (the files a kustomization lists: not `values.yaml`).
    pub fn load(out: &Path) -> Cluster {
        let mut objects = Vec::new();
        let mut dirs = vec![out.to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if path.is_dir() {
                    dirs.push(path);
                } else if name.ends_with(".yaml")
                    && !matches!(name, "values.yaml" | "kustomization.yaml")
                {
                    let text = std::fs::read_to_string(&path).expect("read");
                    let docs = mlplat::yaml::parse_documents(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    objects.extend(
                        docs.into_iter()
                            .map(|d| d.to_json())
                            .filter(|d| d.is_object()),
                    );
                }
            }
        }
        Cluster { objects }
    }

    pub fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["namespace"] == namespace
                && o["metadata"]["name"] == name
        })
    }

    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> &Value {
        self.find(kind, namespace, name)
            .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} in the rendered tree"))
    }

    /// Every object of `kind`, in `namespace` when given.
    pub fn all(&self, kind: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
            .collect()
    }

    /// A Secret's keys and values, as the API server stores them (`stringData` and `data`).
    pub fn secret(&self, namespace: &str, name: &str) -> BTreeMap<String, String> {
        let s = self.get("Secret", namespace, name);
        let mut out = BTreeMap::new();
        if let Some(data) = s["data"].as_object() {
            for (k, v) in data {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or_default())
                    .expect("base64");
                out.insert(k.clone(), String::from_utf8(raw).expect("utf-8"));
            }
        }
        if let Some(data) = s["stringData"].as_object() {
            for (k, v) in data {
                out.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
            }
        }
        out
    }

    pub fn secret_key(&self, namespace: &str, name: &str, key: &str) -> String {
        self.secret(namespace, name)
            .remove(key)
            .unwrap_or_else(|| panic!("Secret {namespace}/{name} has no key {key}"))
    }

    pub fn configmap(&self, namespace: &str, name: &str) -> BTreeMap<String, String> {
        let c = self.get("ConfigMap", namespace, name);
        c["data"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets a Secret's key (for the tests that make a Secret disagree with a server).
    pub fn set_secret_key(&mut self, namespace: &str, name: &str, key: &str, value: &str) {
        let s = self
            .objects
            .iter_mut()
            .find(|o| {
                o["kind"] == "Secret"
                    && o["metadata"]["namespace"] == namespace
                    && o["metadata"]["name"] == name
            })
            .unwrap_or_else(|| panic!("no Secret {namespace}/{name}"));
        if let Some(data) = s["data"].as_object_mut() {
            data.remove(key);
        }
        s["stringData"][key] = Value::String(value.to_owned());
    }

    /// Resolves one env list (and `envFrom`) the way the kubelet does.
    pub fn resolve_env(&self, namespace: &str, container: &Value) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for from in container["envFrom"].as_array().into_iter().flatten() {
            let data = if let Some(name) = from["configMapRef"]["name"].as_str() {
                self.configmap(namespace, name)
            } else if let Some(name) = from["secretRef"]["name"].as_str() {
                self.secret(namespace, name)
            } else {
                BTreeMap::new()
            };
            for (k, v) in data {
                // The kubelet skips keys that are not valid variable names.
                if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    env.insert(k, v);
                }
            }
        }
        for e in container["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().expect("env name").to_owned();
            let value = if let Some(v) = e["value"].as_str() {
                v.to_owned()
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                self.secret_key(
                    namespace,
                    r["name"].as_str().unwrap_or_default(),
                    r["key"].as_str().unwrap_or_default(),
                )
            } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
                self.configmap(namespace, r["name"].as_str().unwrap_or_default())
                    .remove(r["key"].as_str().unwrap_or_default())
                    .unwrap_or_default()
            } else {
                panic!("env {name}: a source the runtime test does not know: {e}");
            };
            env.insert(name, value);
        }
        env
    }
}

/// The in-cluster addresses the test serves itself: `from` (a `host:port` or a host) → `to`.
#[derive(Debug, Clone, Default)]
pub struct Rewrites {
    pairs: Vec<(String, String)>,
    /// (host, port) → the local port.
    ports: Vec<(String, u16, u16)>,
}

impl Rewrites {
    /// `host:port` becomes `127.0.0.1:local`, and a bare `host` becomes `127.0.0.1`.
    pub fn serve(&mut self, host: &str, port: u16, local: u16) {
        self.ports.push((host.to_owned(), port, local));
        self.pairs
            .push((format!("{host}:{port}"), format!("127.0.0.1:{local}")));
        self.pairs.push((host.to_owned(), "127.0.0.1".to_owned()));
        // Longest first: `host:port` before `host`, a longer host before its suffix.
        self.pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    }

    /// The local port standing for `host:port`.
    pub fn port(&self, host: &str, port: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(h, p, _)| h == host && p.to_string() == port)
            .map(|(_, _, l)| *l)
    }

    pub fn apply(&self, s: &str) -> String {
        // One pass, so that a replacement is never rewritten again.
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        'outer: while !rest.is_empty() {
            for (from, to) in &self.pairs {
                if let Some(tail) = rest.strip_prefix(from.as_str()) {
                    out.push_str(to);
                    rest = tail;
                    continue 'outer;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// One container of a pod template, ready to run on this machine.
#[derive(Debug)]
pub struct Container {
    pub program: Program,
}

/// Makes container `name` of `pod` (a pod template's `spec`) runnable: its volumes under
/// `root` (owned by `user`), `image_path` first on PATH (the image's programs), `rewrites`
/// applied to the arguments, the environment and every file a volume holds.
#[allow(clippy::too_many_arguments)] // a pod, a container, and where it runs: all needed
pub fn container(
    cluster: &Cluster,
    namespace: &str,
    pod: &Value,
    name: &str,
    rewrites: &Rewrites,
    image_path: &str,
    root: &Path,
    user: User,
) -> Container {
    let c = pod["initContainers"]
        .as_array()
        .into_iter()
        .chain(pod["containers"].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in the pod"));
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    // The working directory stands for the read-only root filesystem: nobody may write there.
    let base = root.join("rootfs");
    std::fs::create_dir_all(&base).expect("mkdir");
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for m in c["volumeMounts"].as_array().into_iter().flatten() {
        let volume = m["name"].as_str().expect("volume name");
        let path = m["mountPath"].as_str().expect("mountPath").to_owned();
        let dir = root.join("volumes").join(volume);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let v = volumes
            .iter()
            .find(|v| v["name"] == volume)
            .unwrap_or_else(|| panic!("container {name} mounts {volume}, which the pod lacks"));
        let files = if let Some(secret) = v["secret"]["secretName"].as_str() {
            Some((cluster.secret(namespace, secret), &v["secret"]["items"]))
        } else {
            // emptyDir, persistentVolumeClaim: an empty directory
            v["configMap"]["name"]
                .as_str()
                .map(|cm| (cluster.configmap(namespace, cm), &v["configMap"]["items"]))
        };
        if let Some((data, items)) = files {
            let chosen: Vec<(String, String)> = match items.as_array() {
                Some(items) => items
                    .iter()
                    .map(|i| {
                        let key = i["key"].as_str().unwrap_or_default().to_owned();
                        (key, i["path"].as_str().unwrap_or_default().to_owned())
                    })
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (key, file) in chosen {
                let text = data
                    .get(&key)
                    .unwrap_or_else(|| panic!("volume {volume} has no key {key}"));
                std::fs::write(dir.join(file), rewrites.apply(text)).expect("write");
            }
        }
        mounts.push((path, dir));
    }
    give(root, user);
    let mut perms = std::fs::metadata(&base).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&base, perms).expect("chmod");
    if super::proc::me().uid == 0 {
        // Owned by root, 0555: the unprivileged user cannot write there either.
        std::process::Command::new("chown")
            .arg("0:0")
            .arg(&base)
            .status()
            .expect("chown");
    }
    // Longest mount path first, so /a/b wins over /a.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
    let remount = |s: &str| -> String {
        let s = rewrites.apply(s);
        for (path, dir) in &mounts {
            for prefix in ["file://", ""] {
                let from = format!("{prefix}{path}");
                if s == from || s.starts_with(&format!("{from}/")) {
                    return format!("{prefix}{}{}", dir.display(), &s[from.len()..]);
                }
            }
        }
        s
    };
    let mut argv: Vec<String> = c["command"]
        .as_array()
        .into_iter()
        .chain(c["args"].as_array())
        .flatten()
        .map(|a| a.as_str().expect("argument").to_owned())
        .collect();
    for a in &argv {
        assert!(
            !a.contains("$("),
            "{name}: an argument Kubernetes would expand: {a}"
        );
    }
    argv = argv.iter().map(|a| remount(a)).collect();
    let resolved = cluster.resolve_env(namespace, c);
    // libpq's host and port come in two variables: the port follows its host.
    let pg_port = match (resolved.get("PGHOST"), resolved.get("PGPORT")) {
        (Some(host), Some(port)) => rewrites.port(host, port),
        _ => None,
    };
    let mut env: BTreeMap<String, String> = resolved
        .into_iter()
        .map(|(k, v)| (k, remount(&v)))
        .collect();
    if let Some(port) = pg_port {
        env.insert("PGPORT".into(), port.to_string());
    }
    env.insert("PATH".into(), format!("{image_path}:/usr/bin:/bin"));
    env.insert("LANG".into(), "C.UTF-8".into());
    Container {
        program: Program {
            argv,
            env,
            cwd: base,
            user,
        },
    }
}
