//! Stage 6: the rendered platform as a sorted map of path → bytes, built in memory, then
//! written atomically or compared with what is on disk (`--check`).
//!
//! What `out/` promises, under concurrency and faults:
//!
//! - **One writer at a time.** Every run that writes `out/` holds an exclusive `flock` on the
//!   directory that holds it (nothing is left beside `out/`); `--check` and `diff` hold a
//!   shared one while they read. A second render waits, saying so, for at most
//!   [`LOCK_TIMEOUT`], then gives up with an error.
//! - **Old or new, never absent or mixed.** The new tree is written into a sibling
//!   `.out.mlplat-tmp-<pid>` and swapped with `out/` in one step (`renameat2(RENAME_EXCHANGE)`
//!   on Linux, `renamex_np(RENAME_SWAP)` on macOS); the old tree, now at the temporary name, is
//!   then deleted. Where the swap is not supported, `out/` is renamed aside and the new tree
//!   renamed in, and for that instant there is no `out/`.
//! - **Nothing left behind.** What a killed run leaves (`.out.mlplat-tmp-*`, `.out.mlplat-old-*`)
//!   is removed by the next run. Once the new tree is in place, a failure to delete the old one
//!   is a warning, never an error.
//! - **Only mlplat's files are deleted.** A directory is mlplat's when its marker `.mlplat` is
//!   a regular file (not a link) holding an index mlplat wrote (see [`index`]) and every
//!   file in it is listed by that index (or by the index of an environment's subdirectory).
//!   A directory with a file no index lists is refused, never emptied; deleting a tree removes
//!   only the files its indexes list.
//! - Files are created with their mode (0600 for Secret data, else 0644) and directories 0755,
//!   whatever the umask lets through beyond that. Files whose bytes did not change are
//!   hard-linked from the old tree, once the link is checked to be the very file compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod index;

use crate::files;

/// The file that marks a directory as mlplat's own.
pub const MARKER: &str = ".mlplat";
/// The marker of a directory that holds environments, each with its own index.
pub const MARKER_TEXT: &str = "# Written by mlplat. Every file in this directory is generated:\n# edit the platform config and run `mlplat render` instead.\n";
/// How long a render waits for another one writing the same output directory.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// One output file.
#[derive(Clone, PartialEq, Eq)]
pub struct OutFile {
    pub bytes: Vec<u8>,
    /// Holds Secret data: written 0600, and never printed.
    pub secret: bool,
}

impl std::fmt::Debug for OutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutFile")
            .field("len", &self.bytes.len())
            .field("secret", &self.secret)
            .finish()
    }
}

/// The whole output, by path relative to the output directory (`/`-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub files: BTreeMap<String, OutFile>,
}

impl Tree {
    pub fn new() -> Self {
        let mut t = Tree::default();
        t.insert(MARKER, MARKER_TEXT.as_bytes().to_vec(), false);
        t
    }

    pub fn insert(&mut self, path: &str, bytes: Vec<u8>, secret: bool) {
        self.files
            .insert(path.to_owned(), OutFile { bytes, secret });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{} is not empty and was not written by mlplat (no {MARKER} file in it): refusing to replace it",
        dir.display()
    )]
    NotOurs { dir: PathBuf },
    #[error(
        "{} is not mlplat's: {} {why}: refusing to replace {}",
        dir.display(), marker.display(), dir.display()
    )]
    BadMarker {
        dir: PathBuf,
        marker: PathBuf,
        why: &'static str,
    },
    #[error(
        "{} holds files mlplat did not write ({}): move them out of it, mlplat replaces {} whole and deletes only the files its index lists",
        dir.display(), list_some(files, *more), dir.display()
    )]
    Foreign {
        dir: PathBuf,
        files: Vec<String>,
        more: usize,
    },
    #[error("{} exists and is not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("{} cannot be an output directory: it has no name in a parent directory", dir.display())]
    NoParent { dir: PathBuf },
    #[error(
        "another mlplat has been writing {} for {} s (it holds the lock on {}): is it stuck? stop it, or run again later",
        dir.display(), waited.as_secs(), lock.display()
    )]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        waited: Duration,
    },
}

fn list_some(files: &[String], more: usize) -> String {
    if more == 0 {
        files.join(", ")
    } else {
        format!("{} and {more} more", files.join(", "))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_err(path: &Path) -> impl FnOnce(files::ReadError) -> OutputError + '_ {
    move |e| OutputError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    }
}

// ---------------------------------------------------------------------------------------------
// Where an output directory lives, and its lock
// ---------------------------------------------------------------------------------------------

/// The directory holding `dir` and `dir`'s name in it.
fn locate(dir: &Path) -> Result<(PathBuf, String), OutputError> {
    let (parent, name) = match dir.file_name() {
        Some(name) => (
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
            name.to_string_lossy().into_owned(),
        ),
        // `.`, `..`, `/`: the real name, if it has one.
        None => {
            let real = std::fs::canonicalize(dir).map_err(io_err(dir))?;
            match (real.parent(), real.file_name()) {
                (Some(p), Some(n)) => (p.to_path_buf(), n.to_string_lossy().into_owned()),
                _ => {
                    return Err(OutputError::NoParent {
                        dir: dir.to_path_buf(),
                    });
                }
            }
        }
    };
    Ok((parent, name))
}

/// The lock on an output directory, held until dropped: an `flock` on the directory that
/// holds it, exclusive for a writer, shared for a reader.
#[derive(Debug)]
pub struct OutLock {
    _dir: Option<File>,
    /// The directory locked (the one holding the output directory).
    pub parent: PathBuf,
}

impl OutLock {
    /// The exclusive lock for writing `dir`; `on_wait` is called once if another mlplat
    /// holds it. The directory holding `dir` is created if need be.
    pub fn exclusive(dir: &Path, on_wait: impl FnOnce(&Path)) -> Result<OutLock, OutputError> {
        let (parent, _) = locate(dir)?;
        create_dirs(&parent)?;
        Self::take(dir, parent, true, on_wait)
    }

    /// The shared lock for reading `dir` (none needed when its parent does not exist).
    pub fn shared(dir: &Path, on_wait: impl FnOnce(&Path)) -> Result<OutLock, OutputError> {
        let (parent, _) = locate(dir)?;
        if !parent.is_dir() {
            return Ok(OutLock { _dir: None, parent });
        }
        Self::take(dir, parent, false, on_wait)
    }

    #[cfg(unix)]
    fn take(
        dir: &Path,
        parent: PathBuf,
        exclusive: bool,
        on_wait: impl FnOnce(&Path),
    ) -> Result<OutLock, OutputError> {
        use rustix::fs::{FlockOperation, flock};
        let file = File::open(&parent).map_err(io_err(&parent))?;
        let (now, wait) = if exclusive {
            (
                FlockOperation::NonBlockingLockExclusive,
                FlockOperation::LockExclusive,
            )
        } else {
            (
                FlockOperation::NonBlockingLockShared,
                FlockOperation::LockShared,
            )
        };
        match flock(&file, now) {
            Ok(()) => {
                return Ok(OutLock {
                    _dir: Some(file),
                    parent,
                });
            }
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {}
            Err(e) => return Err(io_err(&parent)(e.into())),
        }
        on_wait(&parent);
        // A blocking flock has no timeout: it waits in a thread of its own, on the same open
        // directory, and the lock is ours once it returns.
        let waiter = file.try_clone().map_err(io_err(&parent))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(flock(&waiter, wait).map(|()| waiter));
        });
        match rx.recv_timeout(LOCK_TIMEOUT) {
            Ok(Ok(_)) => Ok(OutLock {
                _dir: Some(file),
                parent,
            }),
            Ok(Err(e)) => Err(io_err(&parent)(e.into())),
            Err(_) => Err(OutputError::Locked {
                dir: dir.to_path_buf(),
                lock: parent,
                waited: LOCK_TIMEOUT,
            }),
        }
    }

    #[cfg(not(unix))]
    fn take(
        _dir: &Path,
        parent: PathBuf,
        _exclusive: bool,
        _on_wait: impl FnOnce(&Path),
    ) -> Result<OutLock, OutputError> {
        Ok(OutLock { _dir: None, parent })
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------------------------

/// How `out/` differs from a fresh render.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    pub changed: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    /// Secret files others can read. Not drift: git does not keep modes, so a fresh clone
    /// has them 0644; reported as a warning.
    pub loose_mode: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }

    /// One line per file, `changed: airflow/values.yaml`; secret contents are never shown.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, list) in [
            ("changed", &self.changed),
            ("missing", &self.missing),
            ("extra", &self.extra),
        ] {
            out.extend(list.iter().map(|p| format!("{what}: {p}")));
        }
        out
    }
}

/// What a file on disk was when it was compared: a link to it must be to the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

#[cfg(unix)]
fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
    }
}

#[cfg(not(unix))]
fn stamp(meta: &std::fs::Metadata) -> Stamp {
    Stamp {
        dev: 0,
        ino: 0,
        len: meta.len(),
        mtime: (0, 0),
    }
}

/// Compares `tree` with `dir`. A missing directory is drift (every file missing), not an error.
/// Only regular files are read: anything else at a path of the tree (a FIFO, a link) differs.
pub fn check(tree: &Tree, dir: &Path) -> Result<Drift, OutputError> {
    check_stamped(tree, dir).map(|(drift, _)| drift)
}

/// [`check`], with the stamp of every file found as a fresh render would write it.
fn check_stamped(tree: &Tree, dir: &Path) -> Result<(Drift, BTreeMap<String, Stamp>), OutputError> {
    let mut drift = Drift::default();
    let mut same = BTreeMap::new();
    let on_disk = match list(dir) {
        Ok(entries) => entries,
        Err(OutputError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            BTreeMap::new()
        }
        Err(e) => return Err(e),
    };
    for (path, file) in &tree.files {
        let Some(kind) = on_disk.get(path) else {
            drift.missing.push(path.clone());
            continue;
        };
        if *kind != Kind::File {
            drift.changed.push(path.clone());
            continue;
        }
        let full = dir.join(path);
        let opened = match files::open_regular(&full, false) {
            Ok(o) => o,
            // Replaced by something else since it was listed.
            Err(files::ReadError::NotRegular(_)) => {
                drift.changed.push(path.clone());
                continue;
            }
            Err(e) => return Err(read_err(&full)(e)),
        };
        let meta_stamp = stamp(&opened.meta);
        let private = is_private(&opened.meta);
        let bytes = opened
            .read(files::MAX_OUTPUT_BYTES)
            .map_err(read_err(&full))?;
        let loose = file.secret && !private;
        if loose {
            drift.loose_mode.push(path.clone());
        }
        if bytes != file.bytes {
            drift.changed.push(path.clone());
        } else if !loose {
            same.insert(path.clone(), meta_stamp);
        }
    }
    drift.extra = on_disk
        .into_keys()
        .filter(|p| !tree.files.contains_key(p))
        .collect();
    Ok((drift, same))
}

#[cfg(unix)]
fn is_private(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o077 == 0
}

#[cfg(not(unix))]
fn is_private(_meta: &std::fs::Metadata) -> bool {
    true
}

/// What a path below an output directory is (links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    /// A symbolic link, a FIFO, a socket, a device.
    Other,
}

/// Every entry but directories below `dir`, as `/`-separated relative paths.
fn list(dir: &Path) -> Result<BTreeMap<String, Kind>, OutputError> {
    let mut out = BTreeMap::new();
    walk(dir, &mut |rel, t| {
        if !t.is_dir() {
            let kind = if t.is_file() { Kind::File } else { Kind::Other };
            out.insert(rel.to_owned(), kind);
        }
    })?;
    Ok(out)
}

/// Calls `f` with every entry below `dir` (relative path, type), parents before children;
/// directories are entered, links never followed.
fn walk(dir: &Path, f: &mut dyn FnMut(&str, std::fs::FileType)) -> Result<(), OutputError> {
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&path).map_err(io_err(&path))? {
            let entry = entry.map_err(io_err(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type().map_err(io_err(&entry.path()))?;
            f(&rel, kind);
            if kind.is_dir() {
                stack.push((entry.path(), rel));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Which files are mlplat's
// ---------------------------------------------------------------------------------------------

/// A marker, as read: the plain one of a directory of environments, or an index.
enum Marker {
    Root,
    Index(BTreeSet<String>),
}

/// The marker of `dir`, if it has a valid one: `Ok(None)` when there is none, an error
/// saying why when it is not one mlplat wrote.
fn read_marker(dir: &Path) -> Result<Option<Marker>, &'static str> {
    let path = dir.join(MARKER);
    let bytes = match files::open_regular(&path, false) {
        Ok(o) => o
            .read(files::MAX_OUTPUT_BYTES)
            .map_err(|_| "cannot be read")?,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(files::ReadError::NotRegular("a symbolic link")) => {
            return Err("is a symbolic link, not a file mlplat wrote");
        }
        Err(files::ReadError::NotRegular(_)) => return Err("is not a regular file"),
        Err(_) => return Err("cannot be read"),
    };
    let text = String::from_utf8(bytes).map_err(|_| "is not an index mlplat wrote")?;
    if text == MARKER_TEXT {
        return Ok(Some(Marker::Root));
    }
    match index::parse(&text) {
        Some(i) => Ok(Some(Marker::Index(i.files.into_keys().collect()))),
        None => Err("is not an index mlplat wrote"),
    }
}

/// Every valid marker below `dir`, by the relative path of its directory (`""`: `dir`).
fn markers(dir: &Path, entries: &BTreeMap<String, std::fs::FileType>) -> BTreeMap<String, Marker> {
    let mut out = BTreeMap::new();
    let dirs = std::iter::once(String::new()).chain(
        entries
            .iter()
            .filter(|(_, t)| t.is_dir())
            .map(|(p, _)| p.clone()),
    );
    for d in dirs {
        let has = if d.is_empty() {
            entries.contains_key(MARKER)
        } else {
            entries.contains_key(&format!("{d}/{MARKER}"))
        };
        if has {
            if let Ok(Some(m)) = read_marker(&dir.join(&d)) {
                out.insert(d, m);
            }
        }
    }
    out
}

/// Whether the file at `rel` is listed by one of `markers` (or is one of them).
fn listed(rel: &str, markers: &BTreeMap<String, Marker>) -> bool {
    markers.iter().any(|(d, m)| {
        let inner = if d.is_empty() {
            Some(rel)
        } else {
            rel.strip_prefix(d.as_str())
                .and_then(|r| r.strip_prefix('/'))
        };
        match inner {
            Some(MARKER) => true,
            Some(inner) => matches!(m, Marker::Index(files) if files.contains(inner)),
            None => false,
        }
    })
}

fn entries(dir: &Path) -> Result<BTreeMap<String, std::fs::FileType>, OutputError> {
    let mut out = BTreeMap::new();
    walk(dir, &mut |rel, t| {
        out.insert(rel.to_owned(), t);
    })?;
    Ok(out)
}

/// Refuses `dir` unless it is mlplat's: empty, or with a valid marker of mlplat's and every
/// file in it listed by an index.
fn check_ours(dir: &Path) -> Result<(), OutputError> {
    let all = entries(dir)?;
    if all.values().all(|t| t.is_dir()) {
        return Ok(()); // empty, or only empty directories
    }
    match read_marker(dir) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(OutputError::NotOurs {
                dir: dir.to_path_buf(),
            });
        }
        Err(why) => {
            return Err(OutputError::BadMarker {
                dir: dir.to_path_buf(),
                marker: dir.join(MARKER),
                why,
            });
        }
    }
    let markers = markers(dir, &all);
    let foreign: Vec<&String> = all
        .iter()
        .filter(|(rel, t)| !t.is_dir() && !listed(rel, &markers))
        .map(|(rel, _)| rel)
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 5;
    Err(OutputError::Foreign {
        dir: dir.to_path_buf(),
        files: foreign.iter().take(SHOWN).map(|s| (*s).clone()).collect(),
        more: foreign.len().saturating_sub(SHOWN),
    })
}

/// Deletes the tree at `dir` as far as mlplat may: the files its markers' indexes list, the
/// markers themselves (last), then the directories left empty. A tree holding nothing but
/// markers (a run killed as it began: markers are written first) goes whole. Returns whether
/// `dir` is gone.
fn delete_tree(dir: &Path) -> Result<bool, OutputError> {
    let all = entries(dir)?;
    let markers = markers(dir, &all);
    let only_markers = all
        .iter()
        .all(|(rel, t)| t.is_dir() || rel == MARKER || rel.ends_with(&format!("/{MARKER}")));
    let is_marker = |rel: &str| rel == MARKER || rel.ends_with(&format!("/{MARKER}"));
    let doomed: Vec<&String> = all
        .iter()
        .filter(|(rel, t)| !t.is_dir() && (only_markers || listed(rel, &markers)))
        .map(|(rel, _)| rel)
        .collect();
    // Listed files first, then the markers, deepest first, the top one last: a run killed
    // half-way leaves a tree the next run can still delete.
    let (marks, plain): (Vec<&String>, Vec<&String>) =
        doomed.into_iter().partition(|rel| is_marker(rel));
    let mut marks = marks;
    marks.sort_by_key(|rel| std::cmp::Reverse(rel.matches('/').count()));
    for rel in plain.into_iter().chain(marks) {
        let path = dir.join(rel);
        fault("delete").map_err(io_err(&path))?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    let mut dirs: Vec<&String> = all
        .iter()
        .filter(|(_, t)| t.is_dir())
        .map(|(rel, _)| rel)
        .collect();
    dirs.sort_by_key(|rel| std::cmp::Reverse(rel.matches('/').count()));
    for rel in dirs {
        let _ = std::fs::remove_dir(dir.join(rel)); // not empty: something is left in it
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(_) => Ok(false),
    }
}

/// Whether `entry` is a leftover of a run into `name` (`.out.mlplat-tmp-123`); with `name`
/// `None`, of a run into any directory.
fn is_leftover(entry: &str, name: Option<&str>) -> bool {
    let Some(rest) = entry.strip_prefix('.') else {
        return false;
    };
    let Some((target, pid)) = rest
        .rsplit_once(".mlplat-tmp-")
        .or_else(|| rest.rsplit_once(".mlplat-old-"))
    else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !target.is_empty()
        && name.is_none_or(|n| n == target)
}

/// Removes what killed runs into `name` (any name, when `None`) left in `parent`; a leftover
/// that cannot be removed whole is a warning.
fn clean_leftovers(parent: &Path, name: Option<&str>) -> Result<Vec<String>, OutputError> {
    let mut warnings = Vec::new();
    let read = match std::fs::read_dir(parent) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(warnings),
        Err(e) => return Err(io_err(parent)(e)),
    };
    for entry in read {
        let entry = entry.map_err(io_err(parent))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !is_leftover(&file_name, name) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        match delete_tree(&path) {
            Ok(true) => {}
            Ok(false) => warnings.push(format!(
                "left {} in place: it holds files no index of mlplat's lists",
                path.display()
            )),
            Err(e) => warnings.push(format!("could not remove {}: {e}", path.display())),
        }
    }
    Ok(warnings)
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// What a write did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// False when the directory was already current (nothing was written).
    pub changed: bool,
    /// What went wrong after the new tree was in place (cleaning up), for the user to know.
    pub warnings: Vec<String>,
}

/// [`write_locked`] under a lock of its own, warnings dropped: for callers that own the
/// directory outright (tests, benchmarks). True when something was written.
pub fn write(tree: &Tree, dir: &Path) -> Result<bool, OutputError> {
    let lock = OutLock::exclusive(dir, |_| {})?;
    write_locked(tree, dir, &lock).map(|w| w.changed)
}

/// Writes `tree` as the whole content of `dir`, atomically: a reader sees the old directory or
/// the new one. Nothing is written when the directory is already current. `_lock` is the
/// exclusive lock of the output directory `dir` is (or is in, for an environment).
pub fn write_locked(tree: &Tree, dir: &Path, _lock: &OutLock) -> Result<Written, OutputError> {
    let (parent, name) = locate(dir)?;
    let mut warnings = clean_leftovers(&parent, Some(&name))?;
    let mut same = BTreeMap::new();
    let existed = match std::fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(OutputError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        Ok(_) => {
            // Leftovers of runs into one environment (`out/.dev.mlplat-tmp-1`).
            warnings.extend(clean_leftovers(dir, None)?);
            check_ours(dir)?;
            let (drift, stamps) = check_stamped(tree, dir)?;
            if drift.is_empty() && drift.loose_mode.is_empty() {
                return Ok(Written {
                    changed: false,
                    warnings,
                });
            }
            same = stamps;
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(dir)(e)),
    };
    create_dirs(&parent)?;
    let tmp = parent.join(format!(".{name}.mlplat-tmp-{}", std::process::id()));
    if let Err(e) = write_all(tree, &tmp, dir, &same) {
        let _ = delete_tree(&tmp);
        return Err(e);
    }
    if let Err(e) = fault("swap") {
        let _ = delete_tree(&tmp);
        return Err(io_err(dir)(e));
    }
    if existed {
        match exchange(&tmp, dir) {
            Ok(true) => {}
            Ok(false) => {
                // No atomic swap here: rename aside, rename in.
                let old = parent.join(format!(".{name}.mlplat-old-{}", std::process::id()));
                if let Err(e) = std::fs::rename(dir, &old) {
                    let _ = delete_tree(&tmp);
                    return Err(io_err(dir)(e));
                }
                if let Err(e) = fault("swap").and_then(|()| std::fs::rename(&tmp, dir)) {
                    let _ = std::fs::rename(&old, dir);
                    let _ = delete_tree(&tmp);
                    return Err(io_err(dir)(e));
                }
                std::fs::rename(&old, &tmp).ok();
            }
            Err(e) => {
                let _ = delete_tree(&tmp);
                return Err(io_err(dir)(e));
            }
        }
        // The old tree is at the temporary name now. The new one is in place: whatever
        // happens from here is a warning.
        match delete_tree(&tmp) {
            Ok(true) => {}
            Ok(false) => warnings.push(format!(
                "left the previous {} at {}: it held files no index of mlplat's lists",
                dir.display(),
                tmp.display()
            )),
            Err(e) => warnings.push(format!(
                "could not remove the previous {} (at {}): {e}; the next render retries",
                dir.display(),
                tmp.display()
            )),
        }
    } else if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = delete_tree(&tmp);
        return Err(io_err(dir)(e));
    }
    Ok(Written {
        changed: true,
        warnings,
    })
}

/// Swaps two directories atomically: `Ok(false)` where the system cannot.
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(e)
            if e == rustix::io::Errno::INVAL
                || e == rustix::io::Errno::NOSYS
                || e == rustix::io::Errno::NOTSUP =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// Makes `dir` a directory that one environment's output can be written into (`dir/<env>/`):
/// created with its marker when missing or empty, refused when it holds files mlplat did not
/// write. `_lock`: the exclusive lock of `dir`.
pub fn ensure_root(dir: &Path, _lock: &OutLock) -> Result<(), OutputError> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(OutputError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        Ok(_) => {
            clean_leftovers(dir, None)?;
            match read_marker(dir) {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {
                    let empty = std::fs::read_dir(dir)
                        .map_err(io_err(dir))?
                        .next()
                        .is_none();
                    if !empty {
                        return Err(OutputError::NotOurs {
                            dir: dir.to_path_buf(),
                        });
                    }
                }
                Err(why) => {
                    return Err(OutputError::BadMarker {
                        dir: dir.to_path_buf(),
                        marker: dir.join(MARKER),
                        why,
                    });
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_dirs(dir)?,
        Err(e) => return Err(io_err(dir)(e)),
    }
    write_file(&dir.join(MARKER), MARKER_TEXT.as_bytes(), false)
}

/// Writes `tree` into the new directory `root`, markers first (so that a run killed at any
/// point leaves a tree whose indexes list every file in it). A file found unchanged in `old`
/// (`same`: its stamp when it was compared) is hard-linked from there instead, once the link
/// is checked to be that very file: an update of a large `out/` then creates inodes only for
/// what changed. That matters on ext4, which scans past recently freed inodes when it
/// allocates (`recently_deleted`): rewriting all 3 000 files of 100 environments took
/// 0.5–1.2 s of kernel time after the previous render freed as many.
fn write_all(
    tree: &Tree,
    root: &Path,
    old: &Path,
    same: &BTreeMap<String, Stamp>,
) -> Result<(), OutputError> {
    create_dir(root)?;
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    let is_marker = |rel: &str| rel == MARKER || rel.ends_with(&format!("/{MARKER}"));
    let order = tree
        .files
        .iter()
        .filter(|(rel, _)| is_marker(rel))
        .chain(tree.files.iter().filter(|(rel, _)| !is_marker(rel)));
    for (rel, file) in order {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            if parent != root && !made.contains(parent) {
                create_dirs(parent)?;
                made.insert(parent.to_path_buf());
            }
        }
        fault("file").map_err(io_err(&path))?;
        if let Some(stamp) = same.get(rel.as_str()) {
            if link_same_file(&old.join(rel), &path, stamp) {
                continue;
            }
        }
        write_file(&path, &file.bytes, file.secret)?;
    }
    Ok(())
}

/// Hard-links `from` to `to` if `from` is still the file stamped when it was compared;
/// false when that cannot be done (the caller writes the file instead).
fn link_same_file(from: &Path, to: &Path, was: &Stamp) -> bool {
    if std::fs::hard_link(from, to).is_err() {
        return false;
    }
    let linked = std::fs::symlink_metadata(to);
    if linked
        .as_ref()
        .is_ok_and(|m| m.is_file() && stamp(m) == *was)
    {
        return true;
    }
    let _ = std::fs::remove_file(to);
    false
}

fn create_dir(path: &Path) -> Result<(), OutputError> {
    dir_builder(false).create(path).map_err(io_err(path))
}

/// Creates `path` and its missing parents, 0755.
fn create_dirs(path: &Path) -> Result<(), OutputError> {
    dir_builder(true).create(path).map_err(io_err(path))
}

fn dir_builder(recursive: bool) -> std::fs::DirBuilder {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(recursive);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o755);
    }
    b
}

#[cfg(unix)]
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), OutputError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // The mode is set at creation: a Secret file is never readable by others, not even briefly.
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))
}

#[cfg(not(unix))]
fn write_file(path: &Path, bytes: &[u8], _secret: bool) -> Result<(), OutputError> {
    std::fs::write(path, bytes).map_err(io_err(path))
}

/// A fault hook for the kill tests, compiled into debug builds only. Every step of writing an
/// output directory counts (a file written or linked, the swap, a file deleted): with
/// `MLPLAT_TEST_FAULT_AT=N` the process aborts at the N-th (as a kill would stop it: nothing is
/// cleaned up); with `MLPLAT_TEST_FAIL_AT=N` the N-th step fails with an I/O error; with
/// `MLPLAT_TEST_PANIC_AT=N` it panics there, with a message naming the file being written
/// and the value of `MLPLAT_TEST_PANIC_SECRET`, which the panic hook must not print.
#[cfg(debug_assertions)]
fn fault(step: &str) -> io::Result<()> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static STEPS: AtomicUsize = AtomicUsize::new(0);
    type At = (Option<usize>, Option<usize>, Option<usize>);
    static AT: OnceLock<At> = OnceLock::new();
    let (abort_at, fail_at, panic_at) = AT.get_or_init(|| {
        let n = |var| std::env::var(var).ok().and_then(|v| v.parse().ok());
        (
            n("MLPLAT_TEST_FAULT_AT"),
            n("MLPLAT_TEST_FAIL_AT"),
            n("MLPLAT_TEST_PANIC_AT"),
        )
    });
    if abort_at.is_none() && fail_at.is_none() && panic_at.is_none() {
        return Ok(());
    }
    let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if *abort_at == Some(n) {
        std::process::abort();
    }
    if *panic_at == Some(n) {
        let secret = std::env::var("MLPLAT_TEST_PANIC_SECRET").unwrap_or_default();
        panic!("injected panic at step {n} ({step}), holding {secret}");
    }
    if *fail_at == Some(n) {
        return Err(io::Error::other("injected failure (MLPLAT_TEST_FAIL_AT)"));
    }
    Ok(())
}

#[cfg(not(debug_assertions))]
fn fault(_step: &str) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A tree as a render makes it: sealed with its index.
    fn sealed(files: &[(&str, &str, bool)]) -> Tree {
        let mut t = Tree::new();
        for (path, text, secret) in files {
            t.insert(path, text.as_bytes().to_vec(), *secret);
        }
        index::seal(&mut t, "hmac-sha256:00");
        t
    }

    fn tree() -> Tree {
        sealed(&[
            ("a/x.yaml", "x: 1\n", false),
            ("a/secrets.yaml", "s: 1\n", true),
        ])
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_then_check_is_clean_and_prunes_stale_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        assert!(write(&tree(), &out).unwrap());
        assert!(check(&tree(), &out).unwrap().is_empty());
        assert!(
            !write(&tree(), &out).unwrap(),
            "a current directory is not rewritten"
        );
        let smaller = sealed(&[("a/x.yaml", "x: 2\n", false)]);
        let drift = check(&smaller, &out).unwrap();
        assert_eq!(drift.changed, vec![".mlplat", "a/x.yaml"]);
        assert_eq!(drift.extra, vec!["a/secrets.yaml"]);
        write(&smaller, &out).unwrap();
        assert!(!out.join("a/secrets.yaml").exists());
        assert_eq!(names(tmp.path()), ["out"], "no temporary directory is left");
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_0600_directories_0755_and_a_loose_mode_is_drift() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&tree(), &out).unwrap();
        let mode = |p: &str| std::fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("a/secrets.yaml"), 0o600);
        assert_eq!(mode("a/x.yaml"), 0o644);
        assert_eq!(mode("a"), 0o755 & mode("a"), "never more than 0755");
        std::fs::set_permissions(
            out.join("a/secrets.yaml"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let drift = check(&tree(), &out).unwrap();
        assert_eq!(drift.loose_mode, vec!["a/secrets.yaml"]);
        assert!(drift.is_empty(), "a loose mode is a warning, not drift");
        write(&tree(), &out).unwrap();
        assert_eq!(mode("a/secrets.yaml"), 0o600, "a render repairs the mode");
    }

    /// An update keeps the inodes of files whose bytes did not change (hard links into the new
    /// directory), writes the changed ones anew, and never keeps a symlink put in by hand.
    #[cfg(unix)]
    #[test]
    fn an_update_links_unchanged_files_and_writes_the_rest() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let files = [
            ("a/x.yaml", "x: 1\n", false),
            ("a/secrets.yaml", "s: 1\n", true),
            ("b/y.yaml", "y: 1\n", false),
        ];
        write(&sealed(&files), &out).unwrap();
        let inode = |p: &str| std::fs::symlink_metadata(out.join(p)).unwrap().ino();
        let before = (inode("a/x.yaml"), inode("a/secrets.yaml"));
        // b/y.yaml becomes a symlink to a file with the same bytes: not a file mlplat wrote.
        std::fs::write(tmp.path().join("elsewhere"), b"y: 1\n").unwrap();
        std::fs::remove_file(out.join("b/y.yaml")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), out.join("b/y.yaml")).unwrap();
        assert_eq!(check(&sealed(&files), &out).unwrap().changed, ["b/y.yaml"]);

        let changed = sealed(&[
            ("a/x.yaml", "x: 2\n", false),
            ("a/secrets.yaml", "s: 1\n", true),
            ("b/y.yaml", "y: 1\n", false),
        ]);
        assert!(write(&changed, &out).unwrap());
        assert_eq!(inode("a/secrets.yaml"), before.1, "unchanged: linked");
        assert_ne!(inode("a/x.yaml"), before.0, "changed: written anew");
        assert_eq!(std::fs::read(out.join("a/x.yaml")).unwrap(), b"x: 2\n");
        let y = std::fs::symlink_metadata(out.join("b/y.yaml")).unwrap();
        assert!(
            y.file_type().is_file(),
            "the symlink is replaced by the file"
        );
        assert_eq!(y.nlink(), 1);
        assert!(check(&changed, &out).unwrap().is_empty());
        assert_eq!(
            std::fs::read(tmp.path().join("elsewhere")).unwrap(),
            b"y: 1\n",
            "the link's target is not touched"
        );
        assert_eq!(names(tmp.path()), ["elsewhere", "out"]);
    }

    /// A FIFO in `out/` is never opened for reading, so nothing waits for a writer: at a path
    /// of the tree it is drift and a render replaces it; as the marker it makes the directory
    /// not mlplat's. Run on a thread with a deadline, so a wait fails the test instead of
    /// hanging it.
    #[cfg(unix)]
    #[test]
    fn a_fifo_in_out_is_drift_or_refused_never_a_wait() {
        fn mkfifo(p: &Path) {
            let status = std::process::Command::new("mkfifo")
                .arg(p)
                .status()
                .unwrap();
            assert!(status.success(), "mkfifo {}", p.display());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out");
            write(&tree(), &out).unwrap();
            std::fs::remove_file(out.join("a/x.yaml")).unwrap();
            mkfifo(&out.join("a/x.yaml"));
            let drift = check(&tree(), &out).unwrap();
            assert_eq!(drift.changed, ["a/x.yaml"]);
            assert!(write(&tree(), &out).unwrap(), "the FIFO is replaced");
            assert!(
                std::fs::symlink_metadata(out.join("a/x.yaml"))
                    .unwrap()
                    .is_file()
            );
            assert!(check(&tree(), &out).unwrap().is_empty());

            let mine = tmp.path().join("mine");
            std::fs::create_dir(&mine).unwrap();
            std::fs::write(mine.join("precious.txt"), "keep").unwrap();
            mkfifo(&mine.join(MARKER));
            let err = write(&tree(), &mine).unwrap_err();
            assert!(matches!(err, OutputError::BadMarker { .. }), "{err}");
            assert_eq!(std::fs::read(mine.join("precious.txt")).unwrap(), b"keep");
            tx.send(()).unwrap();
        });
        // Generous: the work is milliseconds; only a wait on the FIFO takes this long.
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the checks finished (a FIFO was waited on, or the thread failed)");
    }

    #[test]
    fn refuses_a_directory_it_did_not_write() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("precious.txt"), "keep").unwrap();
        let err = write(&tree(), tmp.path()).unwrap_err();
        assert!(matches!(err, OutputError::NotOurs { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("precious.txt")).unwrap(),
            "keep"
        );
    }

    /// A marker written by hand, or a link to a real one, makes no directory mlplat's; a
    /// real marker makes mlplat's only the files its index lists.
    #[test]
    fn a_marker_by_hand_or_a_linked_one_is_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        write(&tree(), &real).unwrap();
        let mine = tmp.path().join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("precious.txt"), "keep").unwrap();
        type Make<'a> = Box<dyn Fn() + 'a>;
        let cases: Vec<(&str, Make)> = vec![
            (
                "empty",
                Box::new(|| std::fs::write(mine.join(MARKER), "").unwrap()),
            ),
            (
                "text",
                Box::new(|| std::fs::write(mine.join(MARKER), "# Written by mlplat.\n").unwrap()),
            ),
            (
                "plain marker",
                Box::new(|| std::fs::write(mine.join(MARKER), MARKER_TEXT).unwrap()),
            ),
            (
                "copied index",
                Box::new(|| {
                    std::fs::copy(real.join(MARKER), mine.join(MARKER))
                        .map(|_| ())
                        .unwrap()
                }),
            ),
            #[cfg(unix)]
            (
                "symlink",
                Box::new(|| {
                    std::os::unix::fs::symlink(real.join(MARKER), mine.join(MARKER)).unwrap()
                }),
            ),
        ];
        for (what, make) in cases {
            let _ = std::fs::remove_file(mine.join(MARKER));
            make();
            let err = write(&tree(), &mine).unwrap_err();
            assert!(
                matches!(
                    err,
                    OutputError::BadMarker { .. } | OutputError::Foreign { .. }
                ),
                "{what}: {err}"
            );
            assert_eq!(
                std::fs::read_to_string(mine.join("precious.txt")).unwrap(),
                "keep",
                "{what}"
            );
        }
    }

    #[test]
    fn a_file_no_index_lists_is_refused_not_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&tree(), &out).unwrap();
        std::fs::write(out.join("a/notes.txt"), "mine").unwrap();
        let err = write(&sealed(&[("a/x.yaml", "x: 2\n", false)]), &out).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} holds files mlplat did not write (a/notes.txt): move them out of it, mlplat replaces {} whole and deletes only the files its index lists",
                out.display(),
                out.display()
            )
        );
        assert_eq!(std::fs::read(out.join("a/x.yaml")).unwrap(), b"x: 1\n");
        assert_eq!(std::fs::read(out.join("a/notes.txt")).unwrap(), b"mine");
    }

    #[test]
    fn leftovers_of_killed_runs_are_removed_and_only_those() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        // A run killed while writing: its index first, some of its files.
        let killed = tmp.path().join(".out.mlplat-tmp-4242");
        write(&tree(), &killed).unwrap();
        std::fs::remove_file(killed.join("a/secrets.yaml")).unwrap();
        // One killed as it began: an empty marker.
        let begun = tmp.path().join(".out.mlplat-old-7");
        std::fs::create_dir_all(begun.join("a")).unwrap();
        std::fs::write(begun.join(MARKER), "").unwrap();
        // One with a file no index lists: left, with a warning.
        let odd = tmp.path().join(".out.mlplat-tmp-9");
        write(&tree(), &odd).unwrap();
        std::fs::write(odd.join("a/notes.txt"), "mine").unwrap();
        // Another directory's: not this run's business.
        let other = tmp.path().join(".other.mlplat-tmp-5");
        write(&tree(), &other).unwrap();

        let lock = OutLock::exclusive(&out, |_| {}).unwrap();
        let written = write_locked(&tree(), &out, &lock).unwrap();
        assert!(written.changed);
        assert_eq!(written.warnings.len(), 1, "{:?}", written.warnings);
        assert!(written.warnings[0].contains(".out.mlplat-tmp-9"));
        assert_eq!(
            names(tmp.path()),
            [".other.mlplat-tmp-5", ".out.mlplat-tmp-9", "out"]
        );
        assert_eq!(names(&odd), ["a"]);
        assert_eq!(names(&odd.join("a")), ["notes.txt"]);
    }

    #[test]
    fn an_empty_directory_may_be_written() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        assert!(write(&tree(), &out).unwrap());
        assert!(out.join(MARKER).is_file());
    }

    #[test]
    fn environments_are_mlplat_s_through_their_own_indexes() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut envs = Tree::new();
        for env in ["dev", "prod"] {
            for (path, file) in tree().files {
                envs.files.insert(format!("{env}/{path}"), file);
            }
        }
        write(&envs, &out).unwrap();
        let mut fewer = Tree::new();
        for (path, file) in tree().files {
            fewer.files.insert(format!("dev/{path}"), file);
        }
        assert!(write(&fewer, &out).unwrap());
        assert_eq!(
            names(&out),
            [".mlplat", "dev"],
            "prod, listed by its index, is gone"
        );
        std::fs::write(out.join("stray.yaml"), "x").unwrap();
        assert!(matches!(
            write(&Tree::new(), &out),
            Err(OutputError::Foreign { .. })
        ));
    }

    #[test]
    fn leftover_names_are_recognised() {
        assert!(is_leftover(".out.mlplat-tmp-12", Some("out")));
        assert!(is_leftover(".out.mlplat-old-3", Some("out")));
        assert!(is_leftover(".dev.mlplat-tmp-3", None));
        assert!(!is_leftover(".out.mlplat-tmp-12", Some("other")));
        assert!(!is_leftover(".out.mlplat-tmp-", Some("out")));
        assert!(!is_leftover(".out.mlplat-tmp-1x", Some("out")));
        assert!(!is_leftover("out.mlplat-tmp-1", Some("out")));
    }
}
