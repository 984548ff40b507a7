//! Reading the files a user names (configs, overlays, chart values files, the lock file,
//! `fromFile` references, what is in `out/`, chart archives in the cache): regular files only,
//! never more than a limit, and never a wait. A FIFO, a device or a directory is refused
//! without being read (it is opened non-blocking, then looked at); so is a kernel pseudo-file
//! such as `/proc/self/environ`, whose size says 0 while it has content. A file is read up to
//! the size it had when opened, and refused when that is over the limit.
//!
//! Text must be UTF-8: a UTF-16 file, a NUL byte or an invalid byte is an error with its line
//! and column.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::yaml::Pos;

/// The largest YAML file mlplat reads (a config, an overlay, a chart values file, the lock).
pub const MAX_YAML_BYTES: u64 = 4 * 1024 * 1024;
/// The largest value a `fromFile` reference (or the platform key file) may hold.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// The largest file `render --check` or `diff` reads from `out/`: mlplat writes none this big.
pub const MAX_OUTPUT_BYTES: u64 = 64 * 1024 * 1024;
/// The largest chart archive read from the chart cache (the published ones are well under 1 MiB).
pub const MAX_ARCHIVE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// A FIFO, a socket, a device or a directory.
    NotRegular(&'static str),
    /// A file whose size says 0 while it has content: a pseudo-file of the kernel.
    Pseudo,
    TooLarge {
        size: u64,
        limit: u64,
    },
}

impl ReadError {
    /// The same, as an `io::Error` (for errors that hold one), keeping the kind of a real one.
    pub fn into_io(self) -> io::Error {
        match self {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(kind) => {
                write!(f, "not a regular file ({kind}): mlplat reads regular files only")
            }
            ReadError::Pseudo => f.write_str(
                "not a regular file (a pseudo-file of the kernel, such as /proc/...): mlplat reads regular files only",
            ),
            ReadError::TooLarge { size, limit } => write!(
                f,
                "{} is larger than mlplat reads here ({})",
                size_words(*size),
                size_words(*limit)
            ),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// `4 MiB`, `64 KiB`, `1234 bytes`.
pub fn size_words(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB && n % KIB == 0 {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// What a directory entry is, in words, for a file that is not a regular one.
fn kind_of(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// Opens `path` for reading without ever blocking (a FIFO opens at once, and is then refused).
/// `follow`: whether a symbolic link is followed (configs may be links; files in `out/` not).
fn open(path: &Path, follow: bool) -> Result<File, ReadError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = rustix::fs::OFlags::NONBLOCK;
        if !follow {
            flags |= rustix::fs::OFlags::NOFOLLOW;
        }
        opts.custom_flags(flags.bits() as i32);
    }
    #[cfg(not(unix))]
    {
        let meta = if follow {
            std::fs::metadata(path)?
        } else {
            std::fs::symlink_metadata(path)?
        };
        if !meta.is_file() {
            return Err(ReadError::NotRegular(kind_of(meta.file_type())));
        }
    }
    match opts.open(path) {
        Ok(f) => Ok(f),
        // O_NOFOLLOW on a symbolic link.
        Err(e) if !follow && e.raw_os_error() == Some(ELOOP) => {
            Err(ReadError::NotRegular("a symbolic link"))
        }
        Err(e) => Err(ReadError::Io(e)),
    }
}

#[cfg(unix)]
const ELOOP: i32 = rustix::io::Errno::LOOP.raw_os_error();
#[cfg(not(unix))]
const ELOOP: i32 = -1;

/// A regular file, opened, with what its metadata said when it was opened.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub meta: std::fs::Metadata,
}

/// Opens a regular file (following symbolic links when `follow`), refusing anything else.
pub fn open_regular(path: &Path, follow: bool) -> Result<Opened, ReadError> {
    let file = open(path, follow)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(meta.file_type())));
    }
    Ok(Opened { file, meta })
}

impl Opened {
    /// The bytes, at most `limit` of them.
    pub fn read(self, limit: u64) -> Result<Vec<u8>, ReadError> {
        let size = self.meta.len();
        if size > limit {
            return Err(ReadError::TooLarge { size, limit });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // One byte more than the size said: a file that grows while it is read, or a
        // pseudo-file that says 0, shows itself.
        self.file.take(size + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > size {
            return Err(if size == 0 {
                ReadError::Pseudo
            } else {
                ReadError::TooLarge {
                    size: bytes.len() as u64,
                    limit: size,
                }
            });
        }
        Ok(bytes)
    }
}

/// The bytes of the regular file at `path` (symbolic links followed), at most `limit`.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    open_regular(path, true)?.read(limit)
}

/// Why bytes are not text mlplat reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotText {
    pub pos: Pos,
    pub message: String,
}

/// The bytes as UTF-8 text; UTF-16, a NUL byte or an invalid byte is an error at its position
/// (a UTF-8 byte order mark is dropped).
pub fn decode(bytes: Vec<u8>) -> Result<String, NotText> {
    let utf16 = match bytes.as_slice() {
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => true,
        // UTF-16 without a byte order mark: YAML starts with an ASCII character.
        [a, 0, ..] | [0, a, ..] if a.is_ascii() => true,
        _ => false,
    };
    if utf16 {
        return Err(NotText {
            pos: Pos { line: 1, col: 1 },
            message: "the file is UTF-16: mlplat reads UTF-8; save it as UTF-8".to_owned(),
        });
    }
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    let (valid, bad) = match std::str::from_utf8(&bytes) {
        Ok(text) => match text.find('\0') {
            None => return Ok(text.to_owned()),
            Some(at) => (at, "a NUL byte: this is not a text file".to_owned()),
        },
        Err(e) => (
            e.valid_up_to(),
            format!(
                "byte 0x{:02X} is not UTF-8: mlplat reads UTF-8 text",
                bytes[e.valid_up_to()]
            ),
        ),
    };
    Err(NotText {
        pos: pos_of(&bytes[..valid]),
        message: bad,
    })
}

/// The position just after `before` (valid UTF-8): 1-based line and column in characters.
fn pos_of(before: &[u8]) -> Pos {
    let text = String::from_utf8_lossy(before);
    let line = text.matches('\n').count() + 1;
    let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Pos { line, col }
}

/// Reads a YAML file a user named: a regular file of at most [`MAX_YAML_BYTES`], in
/// UTF-8. `Ok(Err(d))`: the file was read but is no text (a diagnostic at the position).
pub fn read_yaml(path: &Path) -> Result<Result<String, Diagnostic>, ReadError> {
    let bytes = match read(path, MAX_YAML_BYTES) {
        Ok(b) => b,
        Err(ReadError::TooLarge { size, limit }) => {
            return Ok(Err(Diagnostic::new(
                path,
                format!(
                    "the file is {}: mlplat reads YAML files of up to {}",
                    size_words(size),
                    size_words(limit)
                ),
            )
            .at_line(Pos { line: 1, col: 1 }, None)));
        }
        Err(e) => return Err(e),
    };
    Ok(decode(bytes).map_err(|e| Diagnostic::new(path, e.message).at_line(e.pos, None)))
}

/// Whether `out` is tracked by git (in `plain` mode, Secret manifests would then be in a
/// repository).
/// Asks `git ls-files` quietly; no git, or not a repository, means no.
pub fn tracked_by_git(out: &Path) -> bool {
    let (dir, what) = match (out.parent(), out.file_name()) {
        (Some(p), Some(name)) if !p.as_os_str().is_empty() => (p.to_path_buf(), name.to_owned()),
        _ => (std::path::PathBuf::from("."), out.as_os_str().to_owned()),
    };
    if !dir.is_dir() || !in_a_repository(&dir) {
        return false;
    }
    std::process::Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["ls-files", "--"])
        .arg(&what)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

/// Whether `dir` is inside a git work tree, by looking for `.git` upwards (or `GIT_DIR`): a
/// render outside any repository then spawns no `git` at all.
fn in_a_repository(dir: &Path) -> bool {
    if std::env::var_os("GIT_DIR").is_some() {
        return true;
    }
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    dir.ancestors().any(|d| d.join(".git").exists())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "abc").unwrap();
        assert_eq!(read(&p, 3).unwrap(), b"abc");
        assert!(matches!(
            read(&p, 2),
            Err(ReadError::TooLarge { size: 3, limit: 2 })
        ));
        assert!(matches!(read(dir.path(), 9), Err(ReadError::NotRegular(_))));
        assert!(
            read(&dir.path().join("nope"), 9)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pseudo_files_fifos_and_links_are_refused() {
        assert!(matches!(
            read(Path::new("/proc/self/environ"), 1 << 20),
            Err(ReadError::Pseudo)
        ));
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            read(&fifo, 9),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        std::fs::write(dir.path().join("t"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("t"), dir.path().join("l")).unwrap();
        assert_eq!(read(&dir.path().join("l"), 9).unwrap(), b"x");
        assert!(matches!(
            open_regular(&dir.path().join("l"), false),
            Err(ReadError::NotRegular("a symbolic link"))
        ));
    }

    #[test]
    fn text_is_utf8_with_positions_for_what_is_not() {
        assert_eq!(decode(b"a: 1\n".to_vec()).unwrap(), "a: 1\n");
        assert_eq!(decode(b"\xEF\xBB\xBFa: 1\n".to_vec()).unwrap(), "a: 1\n");
        let e = decode(b"a: 1\nb: \xFF\n".to_vec()).unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 4 });
        assert!(e.message.contains("0xFF"), "{}", e.message);
        let e = decode(b"a: \xC3\xA9\0".to_vec()).unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 5 });
        for utf16 in [&b"\xFF\xFEa\0"[..], b"\xFE\xFF\0a", b"a\0:\0", b"\0a\0:"] {
            let e = decode(utf16.to_vec()).unwrap_err();
            assert!(e.message.contains("UTF-16"), "{utf16:?}");
        }
    }

    #[test]
    fn sizes_read_as_words() {
        assert_eq!(size_words(4 << 20), "4 MiB");
        assert_eq!(size_words(64 << 10), "64 KiB");
        assert_eq!(size_words(20_971_521), "20.0 MiB");
        assert_eq!(size_words(12), "12 bytes");
    }

    #[test]
    fn no_git_means_not_tracked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!tracked_by_git(&dir.path().join("out")));
    }
}
