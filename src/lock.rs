//! The lock file beside a config (`platform.yaml` → `platform.lock.yaml`): what mlplat learned
//! or decided outside the config and must remember between runs, so that `render` and
//! `--check` stay offline and deterministic. Committed with the config; holds no secret.
//!
//! Sections are owned by the commands that write them: `secrets` by `rotate`, `aws` by
//! `provision`, `charts` by `charts pull`.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const HEADER: &str = "# Written by mlplat (provision, rotate, charts pull). Commit it beside the config; it holds no secret.\n";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lock {
    #[serde(default, skip_serializing_if = "SecretsLock::is_empty")]
    pub secrets: SecretsLock,
    /// AWS resources found or created by `mlplat provision` (owned by the AWS backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<crate::aws::lock::AwsLock>,
    /// Chart archives pinned by content (owned by `mlplat charts pull`; read by
    /// `delivery: rendered`, and by every render to check chart values), sorted by repository,
    /// chart and version, one pin for each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartPin>,
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
    #[error("{}:{}:{}: {message}", path.display(), line, col)]
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
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
    /// Reads the lock file of `config`; a missing file is an empty lock.
    pub fn load(config: &Path) -> Result<Lock, LockError> {
        Lock::read(&path_for(config))
    }

    /// Reads the lock file at `path` (see [`path_of`]); a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let path = path.to_path_buf();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
            Err(source) => return Err(LockError::Read { path, source }),
        };
        let invalid = |line, col, message: String| LockError::Invalid {
            path: path.clone(),
            line,
            col,
            message,
        };
        let doc = crate::yaml::parse_document(&text)
            .map_err(|e| invalid(e.pos().line, e.pos().col, e.to_string()))?;
        if doc.to_json().is_null() {
            return Ok(Lock::default());
        }
        serde_json::from_value(doc.to_json())
            .map_err(|e| invalid(doc.pos.line, doc.pos.col, e.to_string()))
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
        let text = format!("{HEADER}{}", crate::yaml::to_yaml_string(&value));
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

    #[test]
    fn a_broken_lock_file_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("p.yaml");
        std::fs::write(dir.path().join("p.lock.yaml"), "secrets:\n  bogus: 1\n").unwrap();
        let err = Lock::load(&config).unwrap_err().to_string();
        assert!(err.contains("p.lock.yaml:1:1"), "{err}");
    }
}
