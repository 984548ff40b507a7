//! `helm template` for `delivery: rendered`, run as little and as wide as possible.
//!
//! - Every call a render needs (each chart of each environment) is known before any runs, so
//!   they run at once, on as many threads as the machine has cores: a fresh render takes about
//!   as long as its slowest call.
//! - What Helm prints depends only on the archive, the values, the release, the namespace and
//!   Helm itself, so it is kept in the cache (`inflated/`) under a key made of the archive's
//!   sha256, the values' sha256, the release, the namespace and Helm's version: a render (or
//!   `--check`) whose inputs did not change runs no Helm at all. Helm's version is asked once
//!   per `helm` binary (by path, size and modification time) and remembered in `helm/`.
//!
//! - What mlplat makes of Helm's output (the `chart/<kind>.yaml` files and the CRDs) is kept
//!   beside it, under the identity of the mlplat binary that made it (its path, size and
//!   modification time): a rebuilt mlplat makes it again from Helm's output, without Helm.
//!
//! Helm's output holds the charts' Secrets, so the cache's `inflated/` directory is private
//! (0700) and its files 0600, like `out/`'s Secret files. Each new entry replaces the older
//! ones of the same archive, platform, release and namespace (so that environments installing
//! one chart keep an entry each).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::{ChartError, archive::write_atomically, cache_dir, helm_program, label};
use crate::charts::ChartRelease;

/// One `helm template` a render needs.
#[derive(Debug, Clone)]
pub struct Job {
    /// The platform (environment) the release belongs to: its entries replace only its own.
    pub platform: String,
    pub tool: String,
    pub chart: ChartRelease,
    pub archive: PathBuf,
    /// The archive's sha256 (`sha256:<hex>`), checked against the lock.
    pub digest: String,
    pub namespace: String,
    /// What Helm gets: the secret values, the others merged over them.
    pub values: Value,
    /// Strings to hide from Helm's error messages.
    pub secrets: Vec<String>,
}

/// What Helm printed for a job, and where the cache keeps it.
#[derive(Debug, Clone)]
pub struct Inflated {
    pub text: String,
    /// The cache entry of `text`.
    pub entry: PathBuf,
}

/// What mlplat makes of a chart's inflated manifests: its files under `chart/` and its CRDs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChartFiles {
    /// `(chart/<kind>.yaml, text, holds a secret)`, by kind.
    pub files: Vec<(String, String, bool)>,
    pub crds: Vec<Value>,
}

/// The chart files mlplat made of `inflated` before, if this mlplat binary did.
pub fn cached_files(inflated: &Inflated) -> Option<ChartFiles> {
    let path = files_entry(inflated)?;
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Keeps what mlplat made of `inflated` (best effort: a cache that cannot be written only
/// costs the next render the work).
pub fn keep_files(inflated: &Inflated, files: &ChartFiles) {
    let Some(path) = files_entry(inflated) else {
        return;
    };
    if let Ok(text) = serde_json::to_vec(files) {
        let stem = inflated.entry.with_extension("");
        let stem = stem.file_name().map(|s| s.to_string_lossy().into_owned());
        if let (Some(dir), Some(stem)) = (path.parent(), stem) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("{stem}.")) && name.ends_with(".json") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = write_atomically(&path, &text);
    }
}

fn files_entry(inflated: &Inflated) -> Option<PathBuf> {
    let stamp = super::binary_stamp()?;
    Some(
        inflated
            .entry
            .with_extension(format!("{}.json", &stamp[..16])),
    )
}

/// What Helm printed for each job, in order. The first job that fails (in order) is the error.
pub fn run_all(jobs: &[Job]) -> Result<Vec<Inflated>, ChartError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let cache = cache_dir()?;
    let helm = helm_program();
    let version = helm_version(&helm, &cache)?;
    let dir = cache.join("inflated");
    let keyed: Vec<(PathBuf, String)> = jobs.iter().map(|job| entry(&dir, job, &version)).collect();
    let mut outputs: Vec<Option<Result<String, ChartError>>> = keyed
        .iter()
        .map(|(path, _)| std::fs::read_to_string(path).ok().map(Ok))
        .collect();
    let missing: Vec<usize> = (0..jobs.len()).filter(|i| outputs[*i].is_none()).collect();
    if !missing.is_empty() {
        private_dir(&dir)?;
        let results = Mutex::new(Vec::new());
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .max(2)
            .min(missing.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = missing.get(n) else { break };
                        let job = &jobs[i];
                        let out = super::template(
                            &job.tool,
                            &job.chart,
                            &job.archive,
                            &job.namespace,
                            &job.values,
                            &job.secrets,
                        );
                        let out = out.and_then(|text| {
                            store(&keyed[i], &text)?;
                            Ok(text)
                        });
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, out));
                    }
                });
            }
        });
        for (i, out) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            outputs[i] = Some(out);
        }
    }
    outputs
        .into_iter()
        .zip(jobs)
        .zip(keyed)
        .map(|((o, job), (entry, _))| {
            let text = o.unwrap_or_else(|| {
                Err(ChartError::BadManifest {
                    tool: job.tool.clone(),
                    chart: label(&job.chart),
                    message: "nothing: the call never ran (a bug in mlplat)".to_owned(),
                })
            })?;
            Ok(Inflated { text, entry })
        })
        .collect()
}

/// The cache file of a job, and the prefix its older entries share.
fn entry(dir: &Path, job: &Job, helm_version: &str) -> (PathBuf, String) {
    let values = crate::encode::sha256_hex(job.values.to_string().as_bytes());
    let key = crate::encode::sha256_hex(
        json!([
            "mlplat-inflate/1",
            job.digest,
            values,
            helm_version,
            job.tool,
            job.namespace,
        ])
        .to_string()
        .as_bytes(),
    );
    let archive = job.digest.strip_prefix("sha256:").unwrap_or(&job.digest);
    // `_` is in no platform, namespace or release name: no prefix is the start of another.
    let prefix = format!(
        "{}_{}_{}_{}_",
        &archive[..16.min(archive.len())],
        job.platform,
        job.namespace,
        job.tool
    );
    (dir.join(format!("{prefix}{}.yaml", &key[..32])), prefix)
}

/// Keeps Helm's output, replacing the older entries of the same archive, platform, release and
/// namespace.
fn store((path, prefix): &(PathBuf, String), text: &str) -> Result<(), ChartError> {
    if let Some(dir) = path.parent() {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(prefix.as_str()) && e.path() != *path {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    // tempfile makes the file 0600.
    write_atomically(path, text.as_bytes())
}

/// Creates the private directory of the inflated manifests (0700).
fn private_dir(dir: &Path) -> Result<(), ChartError> {
    let io = |source| ChartError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// `helm version --short`, asked once per binary: remembered in the cache under the binary's
/// path, size and modification time.
pub fn helm_version(helm: &OsString, cache: &Path) -> Result<String, ChartError> {
    let stamp = resolve(helm).as_deref().and_then(super::file_stamp);
    let memo = stamp.map(|s| cache.join("helm").join(format!("{}.version", &s[..32])));
    if let Some(version) = memo.as_ref().and_then(|m| std::fs::read_to_string(m).ok()) {
        return Ok(version);
    }
    let mut cmd = Command::new(helm);
    cmd.args(["version", "--short"]);
    let out = super::run(helm, cmd, "helm", "version --short", &[])?;
    let version = String::from_utf8_lossy(&out).trim().to_owned();
    if let Some(m) = memo {
        write_atomically(&m, version.as_bytes())?;
    }
    Ok(version)
}

/// The file `helm` names: itself when it has a directory part, else the first on `PATH`.
fn resolve(program: &OsString) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return Some(p.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(platform: &str, namespace: &str, values: Value) -> Job {
        Job {
            platform: platform.to_owned(),
            tool: "airflow".to_owned(),
            chart: ChartRelease {
                repository: "https://airflow.apache.org".to_owned(),
                chart: "airflow".to_owned(),
                version: "1.22.0".to_owned(),
                values: json!({}),
                secret_values: json!({}),
            },
            archive: PathBuf::from("airflow-1.22.0.tgz"),
            digest: format!("sha256:{}", "ab".repeat(32)),
            namespace: namespace.to_owned(),
            values,
            secrets: Vec::new(),
        }
    }

    #[test]
    fn entries_are_keyed_by_inputs_and_replaced_per_platform_release_and_namespace() {
        let dir = Path::new("inflated");
        let (a, prefix_a) = entry(dir, &job("mlops", "airflow", json!({"a": 1})), "v3.18.4");
        let (b, prefix_b) = entry(dir, &job("mlops", "airflow", json!({"a": 2})), "v3.18.4");
        let (c, _) = entry(dir, &job("mlops", "airflow", json!({"a": 1})), "v3.19.0");
        // Values and Helm's version are in the key; the older entry shares the prefix.
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(prefix_a, prefix_b);
        // Two environments with the same namespace keep one entry each: neither prefix starts
        // the other's entries.
        let (dev, prefix_dev) = entry(dir, &job("mlops-dev", "airflow", json!({})), "v3.18.4");
        let (prod, prefix_prod) = entry(dir, &job("mlops", "airflow", json!({})), "v3.18.4");
        let name = |p: &Path| {
            p.file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        };
        assert!(!name(&dev).starts_with(&prefix_prod));
        assert!(!name(&prod).starts_with(&prefix_dev));
        assert!(name(&dev).starts_with(&prefix_dev));
    }
}
