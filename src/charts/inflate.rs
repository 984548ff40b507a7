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
//! Helm's output holds the charts' Secrets, so the cache's `inflated/` directory is private
//! (0700) and its files 0600, like `out/`'s Secret files. Each new entry replaces the older
//! ones of the same archive, release and namespace.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::{ChartError, archive::write_atomically, cache_dir, helm_program, label};
use crate::tools::ChartRelease;

/// One `helm template` a render needs.
#[derive(Debug, Clone)]
pub struct Job {
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

/// What Helm printed for each job, in order. The first job that fails (in order) is the error.
pub fn run_all(jobs: &[Job]) -> Result<Vec<String>, ChartError> {
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
        .map(|(o, job)| {
            o.unwrap_or_else(|| {
                Err(ChartError::BadManifest {
                    tool: job.tool.clone(),
                    chart: label(&job.chart),
                    message: "nothing: the call never ran (a bug in mlplat)".to_owned(),
                })
            })
        })
        .collect()
}

/// The cache file of a job, and the prefix its older entries share.
fn entry(dir: &Path, job: &Job, helm_version: &str) -> (PathBuf, String) {
    let values = crate::index::sha256(job.values.to_string().as_bytes());
    let key = crate::index::sha256(
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
    let prefix = format!(
        "{}-{}-{}-",
        &archive[..16.min(archive.len())],
        job.namespace,
        job.tool
    );
    (dir.join(format!("{prefix}{}.yaml", &key[..32])), prefix)
}

/// Keeps Helm's output, replacing the older entries of the same archive, release and namespace.
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
    let binary = resolve(helm);
    let stamp = binary.as_ref().and_then(|p| {
        let meta = std::fs::metadata(p).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(crate::index::sha256(
            format!("{}\n{}\n{}", p.display(), meta.len(), mtime.as_nanos()).as_bytes(),
        ))
    });
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
