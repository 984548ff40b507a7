//! The lock file beside a config (`platform.yaml` → `platform.lock.yaml`): what mlplat learned
//! or decided outside the config and must remember between runs, so that `render` and
//! `--check` stay offline and deterministic. Committed with the config; holds no secret.
//!
//! Sections are owned by the commands that write them: `secrets` by `rotate`, `aws` by
//! `provision`, `charts` by `charts pull`, `images` by `images pin`.
//!
//! A config with environments has one lock file per environment instead, beside the config:
//! `platform.yaml` → `platform.dev.lock.yaml`, `platform.prod.lock.yaml` ([`path_for_env`]),
//! each in the same form as the lock of a config without environments. An environment's RDS
//! endpoints, secret generations and chart pins are then its own, and a command acting on one
//! environment writes that environment's file only.
//!
//! Chart pins are keyed by what they pin — repository, chart and version — not by the tool
//! that uses them: a pin is a fact about a published archive, the same for every environment
//! that installs that version, so an environment's lock holds the pins it uses in that form.

pub mod aws;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, key_path};
use crate::yaml::{self, Node, NodeValue};

/// The components whose secrets mlplat derives: the first part of every secret's name.
pub const SECRET_COMPONENTS: &[&str] = &["airflow", "jupyterhub", "mlflow", "postgres", "rds"];

const HEADER: &str = "# Written by mlplat (provision, rotate, charts pull, images pin). Commit it beside the config; it holds no secret.\n";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lock {
    #[serde(default, skip_serializing_if = "SecretsLock::is_empty")]
    pub secrets: SecretsLock,
    /// AWS resources found or created by `mlplat provision` (owned by the AWS backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<aws::AwsLock>,
    /// Chart archives pinned by content (owned by `mlplat charts pull`; read by
    /// `delivery: rendered`, and by every render to check chart values), sorted by repository,
    /// chart and version, one pin for each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartPin>,
    /// The digest of each image mlplat's own workloads use, by reference as the config sets it
    /// (owned by `mlplat images pin`; read by every render with `images.pin: digest`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
}

/// One chart archive, pinned: where it came from and the sha256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartPin {
    pub repository: String,
    pub chart: String,
    pub version: String,
    /// `sha256:<64 hex>` of the archive `helm pull` wrote.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretsLock {
    /// The generation of each rotated secret, by name (`airflow/fernet-key: 2`); absent = 1.
    #[serde(default)]
    pub generations: BTreeMap<String, u32>,
}

impl SecretsLock {
    pub fn is_empty(&self) -> bool {
        self.generations.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A problem in the lock file, at its line and key.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    #[error(
        "{}: a lock file of a config without environments, but {} declares environments and each has a lock file of its own ({} and the like): move what each environment keeps (secrets, aws, charts) into its own lock file, then delete {}",
        path.display(), config.display(), example.display(), path.display()
    )]
    BaseWithEnvironments {
        path: PathBuf,
        config: PathBuf,
        example: PathBuf,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `dir/platform.yaml` → `dir/platform.lock.yaml`.
pub fn path_for(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    config.with_file_name(format!("{stem}.lock.yaml"))
}

/// The lock file of environment `env` of `config`: `dir/platform.yaml` →
/// `dir/platform.<env>.lock.yaml`. Environment names are DNS labels, so the name is never
/// that of another config's lock.
pub fn path_for_env(config: &Path, env: &str) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    config.with_file_name(format!("{stem}.{env}.lock.yaml"))
}

/// The lock file of `config`, or of its environment `env`.
pub fn path_of(config: &Path, env: Option<&str>) -> PathBuf {
    match env {
        Some(env) => path_for_env(config, env),
        None => path_for(config),
    }
}

impl Lock {
    /// Reads the lock file of `config`; a missing file is an empty lock. Every problem points
    /// at its line and key: an unknown key, a generation that is not a whole number from 1, a
    /// name that is no secret of mlplat's.
    pub fn load(config: &Path) -> Result<Lock, LockError> {
        Lock::read(&path_for(config))
    }

    /// Reads the lock file at `path` (see [`path_of`]); a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let path = path.to_path_buf();
        let text = match crate::files::read_yaml(&path) {
            Ok(Ok(t)) => t,
            Ok(Err(d)) => return Err(LockError::Invalid(Box::new(d))),
            Err(e) if e.is_not_found() => return Ok(Lock::default()),
            Err(e) => {
                return Err(LockError::Read {
                    path,
                    source: e.into_io(),
                });
            }
        };
        let doc = yaml::parse_document(&text).map_err(|e| {
            LockError::Invalid(Box::new(
                Diagnostic::new(&path, e.to_string()).at(e.pos(), &text),
            ))
        })?;
        if doc.value == NodeValue::Null {
            return Ok(Lock::default());
        }
        let invalid = |pointer: &str, pos, message: String| {
            LockError::Invalid(Box::new(
                Diagnostic::new(&path, message)
                    .at(pos, &text)
                    .key(key_path(pointer)),
            ))
        };
        let lock: Lock = yaml::from_node(&doc)
            .map_err(|e| invalid(&e.pointer, e.pos.unwrap_or(doc.pos), e.message.clone()))?;
        if let Some(Node {
            value: NodeValue::Map(entries),
            ..
        }) = doc.pointer("/secrets/generations")
        {
            for (key, node) in entries {
                let pointer = format!(
                    "/secrets/generations/{}",
                    key.name.replace('~', "~0").replace('/', "~1")
                );
                if !is_secret_name(&key.name) {
                    return Err(invalid(
                        &pointer,
                        key.pos,
                        format!(
                            "{} is not the name of a secret mlplat derives (they start with {}/)",
                            yaml::quote(&key.name),
                            SECRET_COMPONENTS.join("/, ")
                        ),
                    ));
                }
                if node.value == NodeValue::Int(0) {
                    return Err(invalid(
                        &pointer,
                        node.pos,
                        "generation 0: generations start at 1 (`mlplat rotate` bumps them)"
                            .to_owned(),
                    ));
                }
            }
        }
        if let Some(Node {
            value: NodeValue::Map(entries),
            ..
        }) = doc.pointer("/images")
        {
            for (key, node) in entries {
                let digest = lock
                    .images
                    .get(&key.name)
                    .map(String::as_str)
                    .unwrap_or_default();
                if !crate::encode::is_digest(digest) {
                    let pointer =
                        format!("/images/{}", key.name.replace('~', "~0").replace('/', "~1"));
                    return Err(invalid(
                        &pointer,
                        node.pos,
                        "not an image digest: `mlplat images pin` writes `sha256:` and 64 hex digits"
                            .to_owned(),
                    ));
                }
            }
        }
        Ok(lock)
    }

    /// The position of the generation of `name` in the lock file of `config`, for a message
    /// about it.
    pub fn diagnostic_at(config: &Path, name: &str, message: String) -> Diagnostic {
        let path = path_for(config);
        let text = crate::files::read(&path, crate::files::MAX_YAML_BYTES)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let pos = yaml::parse_document(&text)
            .ok()
            .and_then(|doc| doc.key_pos("/secrets/generations", name));
        let pointer = format!(
            "/secrets/generations/{}",
            name.replace('~', "~0").replace('/', "~1")
        );
        let d = Diagnostic::new(&path, message).key(key_path(&pointer));
        match pos {
            Some(pos) => d.at(pos, &text),
            None => d,
        }
    }

    /// Writes the lock file of `config` atomically (a temporary file renamed over it).
    pub fn save(&self, config: &Path) -> Result<(), LockError> {
        self.write(&path_for(config))
    }

    /// Writes the lock file at `path` atomically (a temporary file renamed over it).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let path = path.to_path_buf();
        let err = |source| LockError::Write {
            path: path.clone(),
            source,
        };
        #[allow(clippy::expect_used)] // a struct of maps and strings always serializes
        let value = serde_json::to_value(self).expect("lock serializes");
        let text = format!("{HEADER}{}", yaml::to_yaml_string(&value));
        let tmp = path.with_extension("yaml.mlplat-tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }

    /// The pin of `chart` `version` from `repository`.
    pub fn chart_pin(&self, repository: &str, chart: &str, version: &str) -> Option<&ChartPin> {
        self.charts
            .iter()
            .find(|p| p.repository == repository && p.chart == chart && p.version == version)
    }

    /// Adds `pin`, or replaces the pin of the same chart version; the list stays sorted.
    pub fn set_chart_pin(&mut self, pin: ChartPin) {
        self.charts.retain(|p| {
            (&p.repository, &p.chart, &p.version) != (&pin.repository, &pin.chart, &pin.version)
        });
        self.charts.push(pin);
        self.charts.sort_by(|a, b| {
            (&a.repository, &a.chart, &a.version).cmp(&(&b.repository, &b.chart, &b.version))
        });
    }

    /// The generation of secret `name`: 1 unless it was rotated.
    pub fn generation(&self, name: &str) -> u32 {
        self.secrets.generations.get(name).copied().unwrap_or(1)
    }
}

/// A name mlplat may derive a secret under: `<component>/<something>`.
pub fn is_secret_name(name: &str) -> bool {
    name.split_once('/')
        .is_some_and(|(c, rest)| SECRET_COMPONENTS.contains(&c) && !rest.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lock_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("platform.yaml");
        assert_eq!(Lock::load(&config).unwrap(), Lock::default());
        let mut lock = Lock::default();
        lock.secrets
            .generations
            .insert("airflow/fernet-key".into(), 2);
        lock.save(&config).unwrap();
        assert!(dir.path().join("platform.lock.yaml").is_file());
        let back = Lock::load(&config).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.generation("airflow/fernet-key"), 2);
        assert_eq!(back.generation("mlflow/flask-secret-key"), 1);
    }

    #[test]
    fn each_environment_has_a_lock_file_of_its_own() {
        let config = Path::new("deploy/platform.yaml");
        assert_eq!(
            path_of(config, None),
            Path::new("deploy/platform.lock.yaml")
        );
        assert_eq!(
            path_of(config, Some("prod")),
            Path::new("deploy/platform.prod.lock.yaml")
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("platform.yaml");
        let mut lock = Lock::default();
        lock.secrets
            .generations
            .insert("airflow/fernet-key".into(), 3);
        lock.write(&path_for_env(&config, "prod")).unwrap();
        assert_eq!(Lock::read(&path_for_env(&config, "prod")).unwrap(), lock);
        assert_eq!(
            Lock::read(&path_for_env(&config, "dev")).unwrap(),
            Lock::default()
        );
        assert!(!path_for(&config).exists());
    }

    #[test]
    fn chart_pins_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("platform.yaml");
        let mut lock = Lock::default();
        let pin = |version: &str, byte: &str| ChartPin {
            repository: "https://airflow.apache.org".into(),
            chart: "airflow".into(),
            version: version.into(),
            sha256: format!("sha256:{}", byte.repeat(32)),
        };
        // Two environments may pin two versions of one chart; a new pin of a version replaces
        // the old one.
        lock.set_chart_pin(pin("1.22.0", "ab"));
        lock.set_chart_pin(pin("1.18.0", "cd"));
        lock.set_chart_pin(pin("1.22.0", "ef"));
        assert_eq!(lock.charts, vec![pin("1.18.0", "cd"), pin("1.22.0", "ef")]);
        assert_eq!(
            lock.chart_pin("https://airflow.apache.org", "airflow", "1.22.0"),
            Some(&pin("1.22.0", "ef"))
        );
        lock.save(&config).unwrap();
        assert_eq!(Lock::load(&config).unwrap(), lock);
    }

    fn load_err(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("p.yaml");
        std::fs::write(dir.path().join("p.lock.yaml"), text).unwrap();
        let err = Lock::load(&config).unwrap_err().to_string();
        err.replace(&dir.path().display().to_string(), "DIR")
    }

    #[test]
    fn a_broken_lock_file_names_its_line_and_key() {
        let err = load_err("secrets:\n  bogus: 1\n");
        assert!(
            err.starts_with("DIR/p.lock.yaml:2:3: secrets: unknown field `bogus`"),
            "{err}"
        );
        let err = load_err("secrets:\n  generations:\n    airflow/fernet-key: 0\n");
        assert!(
            err.starts_with(
                "DIR/p.lock.yaml:3:25: secrets.generations.airflow/fernet-key: generation 0"
            ),
            "{err}"
        );
        let err = load_err("secrets:\n  generations:\n    airflow/fernet-key: -2\n");
        assert!(err.starts_with("DIR/p.lock.yaml:3:25: "), "{err}");
        let err = load_err("secrets:\n  generations:\n    foo/bar: 2\n");
        assert!(
            err.starts_with(
                "DIR/p.lock.yaml:3:5: secrets.generations.foo/bar: `foo/bar` is not the name"
            ),
            "{err}"
        );
        let err = load_err("charts:\n  - {repository: r, chart: c, version: v}\n");
        assert!(
            err.starts_with("DIR/p.lock.yaml:2:5: charts[0]: missing field `sha256`"),
            "{err}"
        );
    }
}
