//! Chart archives for `delivery: rendered`, and the `helm` binary that handles them.
//!
//! Fetching and rendering are apart, so that `render` stays offline and deterministic:
//! `mlplat charts pull` runs `helm pull` once per chart into a cache, and pins each archive in
//! the lock file by the sha256 of its bytes; `render` finds the archive in the cache, checks it
//! against the lock (a mismatch is an error naming both digests), and runs `helm template` on
//! it. Helm is `$MLPLAT_HELM`, or `helm` on `PATH`; the cache is `$MLPLAT_CACHE`, else
//! `$XDG_CACHE_HOME/mlplat/charts`, else `~/.cache/mlplat/charts`. Archives in the cache are
//! named by content (`<chart>-<version>-<digest prefix>.tgz`), so several platforms share it.
//!
//! Every render also checks the chart values against the pinned archive's own schema when the
//! archive is at hand ([`check_values`], [`values`]), and `delivery: rendered` keeps what Helm
//! printed ([`inflate`]), so a render whose inputs did not change runs no Helm.

pub mod archive;
pub mod inflate;
mod release;
pub mod values;

pub use release::{ChartRelease, merge, set};

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::config::Loaded;
use crate::diagnostic::Diagnostics;
use crate::lock::{ChartPin, Lock};

/// The environment variable naming the `helm` binary.
pub const HELM_ENV: &str = "MLPLAT_HELM";
/// The environment variable naming the chart cache directory.
pub const CACHE_ENV: &str = "MLPLAT_CACHE";

/// What can go wrong with a chart archive or with Helm: the user's to fix, never a bug.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(
        "{tool}: chart {chart} is not pinned in {}: run `mlplat charts pull -c {}` (it needs the network once) and commit the lock file",
        files.lock.display(), files.config.display()
    )]
    NotPinned {
        tool: String,
        chart: String,
        files: Box<Files>,
    },
    #[error(
        "{tool}: {} pins chart {pinned}, but the config asks for chart {wanted}: run `mlplat charts pull -c {}` to pin it",
        files.lock.display(), files.config.display()
    )]
    PinDiffers {
        tool: String,
        pinned: String,
        wanted: String,
        files: Box<Files>,
    },
    #[error(
        "{tool}: the archive of chart {chart} is not in the cache ({}): run `mlplat charts pull -c {}` to fetch it (it checks the download against the lock)",
        path.display(), config.display()
    )]
    NotCached {
        tool: String,
        chart: String,
        path: PathBuf,
        config: PathBuf,
    },
    #[error(
        "{tool}: the archive of chart {chart} ({}) has {}, but {} pins {}: it changed since it was pinned. Run `mlplat charts pull -c {}` to fetch the pinned archive again (it replaces the changed one)",
        path.display(), digests.actual, files.lock.display(), digests.pinned, files.config.display()
    )]
    DigestMismatch {
        tool: String,
        chart: String,
        path: PathBuf,
        digests: Box<Digests>,
        files: Box<Files>,
    },
    #[error(
        "{tool}: the repository now serves chart {chart} with {}, but {} pins {}: the chart was republished under the same version. Review the new archive ({}), then run `mlplat charts pull --update -c {}` to pin it",
        digests.actual, files.lock.display(), digests.pinned, path.display(), files.config.display()
    )]
    Republished {
        tool: String,
        chart: String,
        path: PathBuf,
        digests: Box<Digests>,
        files: Box<Files>,
    },
    #[error(
        "cannot run `{}`: {source}; install Helm 3 or later, or set {HELM_ENV} to its path",
        program.to_string_lossy()
    )]
    HelmMissing {
        program: OsString,
        source: std::io::Error,
    },
    #[error("{tool}: `helm {command}` failed ({status}):\n{stderr}")]
    HelmFailed {
        tool: String,
        command: String,
        status: std::process::ExitStatus,
        /// Helm's own message, with every secret value of the chart replaced by `[redacted]`.
        stderr: String,
    },
    #[error("{tool}: `helm pull` of chart {chart} wrote {found} archives into {}, expected one", dir.display())]
    PullOutput {
        tool: String,
        chart: String,
        dir: PathBuf,
        found: usize,
    },
    #[error("{tool}: `helm template` of chart {chart} printed {message}")]
    BadManifest {
        tool: String,
        chart: String,
        message: String,
    },
    #[error(
        "charts {first} and {second} both define CustomResourceDefinition {name}, differently: pin chart versions that agree on it"
    )]
    CrdConflict {
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "cannot find a cache directory for chart archives: set {CACHE_ENV} (or XDG_CACHE_HOME, or HOME)"
    )]
    NoCacheDir,
    /// The chart would refuse the values (see [`values`]).
    #[error("{0}")]
    Values(Diagnostics),
    #[error("{}: not a chart archive mlplat can read: {message}", path.display())]
    BadArchive { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The sha256 a lock pins and the one an archive has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub pinned: String,
    pub actual: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ChartError + '_ {
    move |source| ChartError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `airflow 1.18.0 from https://airflow.apache.org`, for messages.
pub fn label(chart: &ChartRelease) -> String {
    format!(
        "{} {} from {}",
        chart.chart, chart.version, chart.repository
    )
}

fn pin_label(pin: &ChartPin) -> String {
    format!("{} {} from {}", pin.chart, pin.version, pin.repository)
}

/// Whether `pin` is the pin of `chart` (same repository, name and version).
pub fn pins(pin: &ChartPin, chart: &ChartRelease) -> bool {
    pin.repository == chart.repository && pin.chart == chart.chart && pin.version == chart.version
}

/// The `helm` to run: `$MLPLAT_HELM`, else `helm` on `PATH`.
pub fn helm_program() -> OsString {
    std::env::var_os(HELM_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "helm".into())
}

/// The chart cache: `$MLPLAT_CACHE`, `$XDG_CACHE_HOME/mlplat/charts` or `~/.cache/mlplat/charts`.
pub fn cache_dir() -> Result<PathBuf, ChartError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(CACHE_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("mlplat").join("charts"));
    }
    var("HOME")
        .map(|home| {
            PathBuf::from(home)
                .join(".cache")
                .join("mlplat")
                .join("charts")
        })
        .ok_or(ChartError::NoCacheDir)
}

/// Where the cache keeps the archive `pin` names.
pub fn archive_path(cache: &Path, pin: &ChartPin) -> PathBuf {
    let hex = pin.sha256.strip_prefix("sha256:").unwrap_or(&pin.sha256);
    let short: String = hex.chars().take(16).collect();
    cache.join(format!("{}-{}-{short}.tgz", pin.chart, pin.version))
}

/// The config and the lock file an error about a pin names.
#[derive(Debug, Clone)]
pub struct Files {
    pub config: PathBuf,
    /// The lock file that holds (or lacks) the pin: an environment's own, with environments.
    pub lock: PathBuf,
}

/// Paths the errors of [`verified_archive`] point the user to.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub config: &'a Path,
    /// The lock file of the platform (an environment's own, with environments).
    pub lock: &'a Path,
    pub cache: &'a Path,
}

impl Context<'_> {
    fn files(&self) -> Box<Files> {
        Box::new(Files {
            config: self.config.to_path_buf(),
            lock: self.lock.to_path_buf(),
        })
    }
}

/// The pin of `chart` in `lock`: the one of its repository, name and version.
pub fn pin_of<'a>(lock: &'a Lock, chart: &ChartRelease) -> Option<&'a ChartPin> {
    lock.chart_pin(&chart.repository, &chart.chart, &chart.version)
}

/// The cached archive of `tool`'s chart, once its bytes match its pin in `lock`, and the pin.
pub fn verified_archive<'a>(
    cx: &Context<'_>,
    tool: &str,
    chart: &ChartRelease,
    lock: &'a Lock,
) -> Result<(PathBuf, &'a ChartPin), ChartError> {
    let Some(pin) = pin_of(lock, chart) else {
        // Another version of the same chart pinned: the config changed since `charts pull`.
        if let Some(other) = lock
            .charts
            .iter()
            .find(|p| p.repository == chart.repository && p.chart == chart.chart)
        {
            return Err(ChartError::PinDiffers {
                tool: tool.to_owned(),
                pinned: pin_label(other),
                wanted: label(chart),
                files: cx.files(),
            });
        }
        return Err(ChartError::NotPinned {
            tool: tool.to_owned(),
            chart: label(chart),
            files: cx.files(),
        });
    };
    verify(cx, tool, chart, pin).map(|path| (path, pin))
}

/// The cached archive `pin` names, once its bytes match the pin.
fn verify(
    cx: &Context<'_>,
    tool: &str,
    chart: &ChartRelease,
    pin: &ChartPin,
) -> Result<PathBuf, ChartError> {
    let path = archive_path(cx.cache, pin);
    // A regular file only: anything else in the cache (a FIFO) is an error, never a wait.
    let bytes = match crate::files::read(&path, crate::files::MAX_ARCHIVE_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(ChartError::NotCached {
                tool: tool.to_owned(),
                chart: label(chart),
                path,
                config: cx.config.to_path_buf(),
            });
        }
        Err(e) => return Err(io(&path)(e.into_io())),
    };
    let actual = crate::encode::sha256_digest(&bytes);
    if actual != pin.sha256 {
        return Err(ChartError::DigestMismatch {
            tool: tool.to_owned(),
            chart: label(chart),
            path,
            digests: Box::new(Digests {
                pinned: pin.sha256.clone(),
                actual,
            }),
            files: cx.files(),
        });
    }
    Ok(path)
}

/// The identity of a program file without reading it: the sha256 of its path, size and
/// modification time.
pub fn file_stamp(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(crate::encode::sha256_hex(
        format!("{}\n{}\n{}", path.display(), meta.len(), mtime.as_nanos()).as_bytes(),
    ))
}

/// The stamp of the running mlplat binary ([`file_stamp`]): what the cache keys the results of
/// mlplat's own work by (a rebuilt mlplat does the work again). `None` when it cannot be had,
/// which keeps nothing.
pub fn binary_stamp() -> Option<&'static str> {
    static STAMP: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    STAMP
        .get_or_init(|| std::env::current_exe().ok().as_deref().and_then(file_stamp))
        .as_deref()
}

/// What a render learned of a chart's archive.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The verified archive and its sha256, when the render asked for it (`delivery: rendered`).
    pub archive: Option<(PathBuf, String)>,
    /// Why the values were not checked against the chart, when they were not.
    pub unchecked: Option<String>,
}

/// Checks `tool`'s chart values against the pinned archive's schema, before anything is
/// written. `needs_archive` (`delivery: rendered`): the archive must be pinned and cached, and
/// is returned; otherwise a missing pin or archive only leaves the values unchecked.
pub fn check_values(
    loaded: &Loaded,
    tool: &str,
    chart: &ChartRelease,
    needs_archive: bool,
) -> Result<Checked, ChartError> {
    let unchecked = |why: &str| Checked {
        archive: None,
        unchecked: Some(format!("{} {}: {why}", chart.chart, chart.version)),
    };
    let cache = match cache_dir() {
        Ok(c) => c,
        Err(_) if !needs_archive => return Ok(unchecked("no chart cache directory")),
        Err(e) => return Err(e),
    };
    let lock_path = loaded.lock_path();
    let cx = Context {
        config: &loaded.file,
        lock: &lock_path,
        cache: &cache,
    };
    // Values this mlplat binary found the chart accepts are not checked again.
    let passed = |digest: &str| {
        let stamp = binary_stamp()?;
        let key = crate::encode::sha256_hex(
            serde_json::json!([
                "mlplat-values-check/1",
                stamp,
                digest,
                values::release_values(chart)
            ])
            .to_string()
            .as_bytes(),
        );
        Some(cache.join("checked").join(&key[..32]))
    };
    let (facts, archive, passed) = if needs_archive {
        let (path, pin) = verified_archive(&cx, tool, chart, &loaded.lock)?;
        let passed = passed(&pin.sha256);
        let archive = Some((path.clone(), pin.sha256.clone()));
        if passed.as_ref().is_some_and(|m| m.exists()) {
            return Ok(Checked {
                archive,
                unchecked: None,
            });
        }
        let facts = match archive::cached(&cache, &pin.sha256) {
            Some(f) => f,
            None => archive::extract(&cache, &path, &pin.sha256)?,
        };
        (facts, archive, passed)
    } else {
        let Some(pin) = pin_of(&loaded.lock, chart) else {
            return Ok(unchecked("not pinned"));
        };
        let passed = passed(&pin.sha256);
        if passed.as_ref().is_some_and(|m| m.exists()) {
            return Ok(Checked {
                archive: None,
                unchecked: None,
            });
        }
        let facts = match archive::cached(&cache, &pin.sha256) {
            Some(f) => f,
            None => match verify(&cx, tool, chart, pin) {
                Ok(path) => archive::extract(&cache, &path, &pin.sha256)?,
                Err(_) => return Ok(unchecked("not in the chart cache")),
            },
        };
        (facts, None, passed)
    };
    let user_files = loaded
        .values_files
        .get(tool)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match values::check(&loaded.file, tool, chart, facts, user_files) {
        Ok(Ok(())) => {
            if let Some(marker) = &passed {
                let _ = archive::write_atomically(marker, b"");
            }
            Ok(Checked {
                archive,
                unchecked: None,
            })
        }
        Ok(Err(values::Unchecked(why))) => Ok(Checked {
            archive,
            unchecked: Some(format!(
                "{} {}: its schema cannot be read here ({why})",
                chart.chart, chart.version
            )),
        }),
        Err(problems) => Err(ChartError::Values(Diagnostics(problems))),
    }
}

/// The one line a render prints when some chart values were not checked against their chart.
pub fn unchecked_note(config: &Path, unchecked: &[String]) -> Option<String> {
    if unchecked.is_empty() {
        return None;
    }
    let mut seen = unchecked.to_vec();
    seen.sort();
    seen.dedup();
    Some(format!(
        "mlplat: chart values were not checked against the charts ({}): `mlplat charts pull -c {}` pins and fetches them, once",
        seen.join("; "),
        config.display()
    ))
}

/// Runs `helm pull` for `chart` into the cache and returns the pin of what it wrote.
pub fn pull(
    helm: &OsString,
    cache: &Path,
    tool: &str,
    chart: &ChartRelease,
) -> Result<ChartPin, ChartError> {
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    // A fresh directory beside the cache's archives: helm writes one file, renamed into place.
    let tmp = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(cache)
        .map_err(io(cache))?;
    let mut cmd = Command::new(helm);
    cmd.arg("pull");
    if chart.repository.starts_with("oci://") {
        cmd.arg(format!(
            "{}/{}",
            chart.repository.trim_end_matches('/'),
            chart.chart
        ));
    } else {
        cmd.arg(&chart.chart).arg("--repo").arg(&chart.repository);
    }
    cmd.arg("--version")
        .arg(&chart.version)
        .arg("--destination")
        .arg(tmp.path());
    run(helm, cmd, tool, &format!("pull {}", label(chart)), &[])?;
    let archives: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .map_err(io(tmp.path()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    let [archive] = archives.as_slice() else {
        return Err(ChartError::PullOutput {
            tool: tool.to_owned(),
            chart: label(chart),
            dir: cache.to_path_buf(),
            found: archives.len(),
        });
    };
    let bytes = std::fs::read(archive).map_err(io(archive))?;
    let pin = ChartPin {
        repository: chart.repository.clone(),
        chart: chart.chart.clone(),
        version: chart.version.clone(),
        sha256: crate::encode::sha256_digest(&bytes),
    };
    let dest = archive_path(cache, &pin);
    std::fs::rename(archive, &dest).map_err(io(&dest))?;
    Ok(pin)
}

/// Runs `helm template` on a verified archive with `values` (written to a private temporary
/// file, removed afterwards) and returns the manifests Helm printed. `secrets` are the strings
/// to hide from Helm's error messages.
pub fn template(
    tool: &str,
    chart: &ChartRelease,
    archive: &Path,
    namespace: &str,
    values: &Value,
    secrets: &[String],
) -> Result<String, ChartError> {
    let helm = helm_program();
    // tempfile creates it 0600 and deletes it on drop, error or not.
    let mut file = tempfile::Builder::new()
        .prefix("mlplat-values-")
        .suffix(".json")
        .tempfile()
        .map_err(io(&std::env::temp_dir()))?;
    let text = values.to_string();
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(io(file.path()))?;
    let mut cmd = Command::new(&helm);
    cmd.arg("template")
        .arg(tool)
        .arg(archive)
        .arg("--namespace")
        .arg(namespace)
        .arg("--values")
        .arg(file.path())
        .arg("--include-crds");
    let out = run(
        &helm,
        cmd,
        tool,
        &format!("template {}", label(chart)),
        secrets,
    )?;
    String::from_utf8(out).map_err(|_| ChartError::BadManifest {
        tool: tool.to_owned(),
        chart: label(chart),
        message: "output that is not UTF-8".to_owned(),
    })
}

fn run(
    helm: &OsString,
    mut cmd: Command,
    tool: &str,
    what: &str,
    secrets: &[String],
) -> Result<Vec<u8>, ChartError> {
    let out = cmd.output().map_err(|source| ChartError::HelmMissing {
        program: helm.clone(),
        source,
    })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
        for s in secrets {
            stderr = stderr.replace(s.as_str(), "[redacted]");
        }
        return Err(ChartError::HelmFailed {
            tool: tool.to_owned(),
            command: what.to_owned(),
            status: out.status,
            stderr,
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chart() -> ChartRelease {
        ChartRelease {
            repository: "https://charts.example.com".into(),
            chart: "demo".into(),
            version: "1.2.3".into(),
            values: json!({}),
            secret_values: json!({}),
        }
    }

    #[test]
    fn a_cached_archive_is_checked_against_its_pin() {
        let dir = tempfile::tempdir().unwrap();
        let cx = Context {
            config: Path::new("p.yaml"),
            lock: Path::new("p.lock.yaml"),
            cache: dir.path(),
        };
        let lock_of = |pin: &ChartPin| {
            let mut lock = Lock::default();
            lock.set_chart_pin(pin.clone());
            lock
        };
        let err = verified_archive(&cx, "demo", &chart(), &Lock::default()).unwrap_err();
        assert!(matches!(err, ChartError::NotPinned { .. }), "{err}");
        let pin = ChartPin {
            repository: "https://charts.example.com".into(),
            chart: "demo".into(),
            version: "1.2.3".into(),
            sha256: crate::encode::sha256_digest(b"archive"),
        };
        let lock = lock_of(&pin);
        let err = verified_archive(&cx, "demo", &chart(), &lock).unwrap_err();
        assert!(matches!(err, ChartError::NotCached { .. }), "{err}");
        std::fs::write(archive_path(dir.path(), &pin), b"archive").unwrap();
        verified_archive(&cx, "demo", &chart(), &lock).unwrap();
        std::fs::write(archive_path(dir.path(), &pin), b"archivE").unwrap();
        let err = verified_archive(&cx, "demo", &chart(), &lock)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&pin.sha256) && err.contains(&crate::encode::sha256_digest(b"archivE")),
            "{err}"
        );
        let older = ChartPin {
            version: "1.2.2".into(),
            ..pin
        };
        let err = verified_archive(&cx, "demo", &chart(), &lock_of(&older)).unwrap_err();
        assert!(matches!(err, ChartError::PinDiffers { .. }), "{err}");
    }

    /// A FIFO where the archive should be is refused at once, not waited on (on a thread with
    /// a deadline, so a wait fails the test instead of hanging it).
    #[cfg(unix)]
    #[test]
    fn a_fifo_in_the_cache_is_refused_not_read() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let dir = tempfile::tempdir().unwrap();
            let cx = Context {
                config: Path::new("p.yaml"),
                lock: Path::new("p.lock.yaml"),
                cache: dir.path(),
            };
            let pin = ChartPin {
                repository: "https://charts.example.com".into(),
                chart: "demo".into(),
                version: "1.2.3".into(),
                sha256: crate::encode::sha256_digest(b"archive"),
            };
            let status = Command::new("mkfifo")
                .arg(archive_path(dir.path(), &pin))
                .status()
                .unwrap();
            assert!(status.success());
            let mut lock = Lock::default();
            lock.set_chart_pin(pin);
            let err = verified_archive(&cx, "demo", &chart(), &lock)
                .unwrap_err()
                .to_string();
            tx.send(err).unwrap();
        });
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("refused (the FIFO was waited on, or the thread failed)");
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");
    }
}
