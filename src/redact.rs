//! The one redaction rule for everything mlplat prints. Every text that reaches stdout or
//! stderr goes through [`clean`] (see [`crate::console`]): each known secret in it is replaced
//! by its fingerprint, and control characters (terminal escapes, carriage returns, bidi
//! overrides) are shown escaped (`\u{1b}`), so a config cannot rewrite the terminal.
//!
//! Secrets become known as mlplat meets them: the platform key, each `fromEnv`/`fromFile`
//! value, each derived secret, and each value written inline under a key the schema marks
//! `x-mlplat-secret`. Values shorter than [`MIN_LEN`] bytes are not searched for: they would
//! match the words of ordinary messages (such values are still never quoted: the lines under a
//! secret key are masked, see [`mask`]).
//!
//! Files that hold a secret (the platform key file, every `fromFile` target) are registered by
//! identity (device and inode, so another name or a link to one is the same file): a
//! diagnostic never quotes them, whatever error points into them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::encode::fingerprint;

/// Secrets shorter than this many bytes are not replaced in free text.
pub const MIN_LEN: usize = 6;

/// What a masked part of a quoted line is replaced by.
pub const MASK: &str = "***";

#[derive(Default)]
struct State {
    secrets: BTreeSet<String>,
    matcher: Option<Matcher>,
    /// Files that hold a secret, by identity.
    files: Vec<FileId>,
    /// Lines to mask in quoted snippets: file (as named in diagnostics) → line → first
    /// column (1-based, in characters) hidden.
    masks: HashMap<PathBuf, BTreeMap<usize, usize>>,
    /// Files (as named in diagnostics) no line of which is quoted.
    unquoted: Vec<PathBuf>,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(Default::default);

fn state() -> MutexGuard<'static, State> {
    // A panic while the lock was held leaves the data as good as it was.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers a secret value: from now on it is never printed.
pub fn secret(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let mut s = state();
    if !s.secrets.contains(value) {
        s.secrets.insert(value.to_owned());
        s.matcher = None;
    }
}

/// Registers a secret value and the spellings it takes in URIs (percent-encoded) and in ini
/// files (`%` doubled).
pub fn secret_with_spellings(value: &str) {
    secret(value);
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if value.bytes().all(unreserved) {
        return; // spelled the same everywhere
    }
    let uri = crate::encode::uri_encode(value);
    if uri != value {
        secret(&uri);
        secret(&uri.replace('%', "%%"));
    }
}

/// A file's identity: device and inode where there are such things (with its size and
/// modification time, so that an inode reused by another file later is not taken for it),
/// else its canonical path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64, u64, i64, i64),
    #[cfg_attr(unix, allow(dead_code))]
    Path(PathBuf),
}

fn file_id(path: &Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileId::Inode(
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
        ))
    }
    #[cfg(not(unix))]
    {
        std::fs::canonicalize(path).ok().map(FileId::Path)
    }
}

/// Registers a file that holds a secret (when it exists): it is never quoted.
pub fn secret_file(path: &Path) {
    if let Some(id) = file_id(path) {
        let mut s = state();
        if !s.files.contains(&id) {
            s.files.push(id);
        }
    }
}

/// Whether `path` is a file registered by [`secret_file`].
pub fn is_secret_file(path: &Path) -> bool {
    let Some(id) = file_id(path) else {
        return false;
    };
    state().files.contains(&id)
}

/// No line of `file` (as diagnostics name it) is ever quoted: a file that is not what it was
/// given as (a lone scalar given as a config may be a token).
pub fn never_quote(file: &Path) {
    let mut s = state();
    if !s.unquoted.iter().any(|f| f == file) {
        s.unquoted.push(file.to_path_buf());
    }
}

/// Whether lines of `file` may be quoted.
pub fn may_quote(file: &Path) -> bool {
    !state().unquoted.iter().any(|f| f == file)
}

/// Masks line `line` of `file` from column `from_col` on, wherever a diagnostic quotes it.
pub fn mask(file: &Path, line: usize, from_col: usize) {
    let mut s = state();
    let lines = s.masks.entry(file.to_path_buf()).or_default();
    let col = lines.entry(line).or_insert(from_col);
    *col = (*col).min(from_col.max(1));
}

/// The first masked column of line `line` of `file`, if the line is masked.
pub fn masked(file: &Path, line: usize) -> Option<usize> {
    state().masks.get(file)?.get(&line).copied()
}

/// `text` as it may be printed: every known secret replaced by its fingerprint, control
/// characters escaped.
pub fn clean(text: &str) -> String {
    let mut s = state();
    if s.matcher.is_none() {
        let m = Matcher::new(&s.secrets);
        s.matcher = Some(m);
    }
    let mut out = String::with_capacity(text.len());
    match &s.matcher {
        Some(m) => m.replace(text, &mut out),
        None => escape_into(text, &mut out),
    }
    out
}

/// [`clean`] of a quoted source line with a caret at column `col` (1-based, in characters):
/// the cleaned line and where the caret goes in it.
pub fn clean_with_caret(line: &str, col: usize) -> (String, usize) {
    let cut = line
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    let before = clean(&line[..cut]).chars().count();
    (clean(line), before + 1)
}

/// Control characters a terminal would act on, and the bidi controls that reorder text.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character [`needs_escape`] finds shown as `\u{..}`.
pub(crate) fn escape_into(text: &str, out: &mut String) {
    if !text.chars().any(needs_escape) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
}

/// Finds every known secret in a text in one pass: candidates by their first four bytes,
/// the longest match first. A fingerprint is computed when a secret is found.
struct Matcher {
    /// Secrets by their first four bytes, longest first.
    by_prefix: HashMap<[u8; 4], Vec<String>>,
    /// Which first two bytes start some secret: 65 536 bits, checked before the map.
    pairs: Vec<u64>,
}

impl Matcher {
    fn new(secrets: &BTreeSet<String>) -> Self {
        let mut by_prefix: HashMap<[u8; 4], Vec<String>> = HashMap::new();
        let mut pairs = vec![0u64; 1024];
        for value in secrets {
            let b = value.as_bytes();
            let key = [b[0], b[1], b[2], b[3]];
            by_prefix.entry(key).or_default().push(value.clone());
            let pair = (b[0] as usize) << 8 | b[1] as usize;
            pairs[pair / 64] |= 1 << (pair % 64);
        }
        for list in by_prefix.values_mut() {
            list.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
        Matcher { by_prefix, pairs }
    }

    fn replace(&self, text: &str, out: &mut String) {
        let b = text.as_bytes();
        let (mut i, mut last) = (0, 0);
        'scan: while i + 4 <= b.len() {
            let pair = (b[i] as usize) << 8 | b[i + 1] as usize;
            if self.pairs[pair / 64] & (1 << (pair % 64)) != 0 {
                if let Some(list) = self.by_prefix.get(&[b[i], b[i + 1], b[i + 2], b[i + 3]]) {
                    for value in list {
                        // A secret starts with a whole character, so `i` is a boundary.
                        if b[i..].starts_with(value.as_bytes()) {
                            escape_into(&text[last..i], out);
                            out.push_str(&fingerprint(value.as_bytes()));
                            i += value.len();
                            last = i;
                            continue 'scan;
                        }
                    }
                }
            }
            i += 1;
        }
        escape_into(&text[last..], out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_become_fingerprints() {
        secret("s3cr3t-redact-test-value");
        secret("s3cr3t-redact-test");
        secret("tiny");
        let fp = fingerprint(b"s3cr3t-redact-test-value");
        assert_eq!(
            clean("a s3cr3t-redact-test-value b"),
            format!("a {fp} b"),
            "the longest match wins"
        );
        assert_eq!(
            clean("s3cr3t-redact-test"),
            fingerprint(b"s3cr3t-redact-test")
        );
        assert_eq!(clean("tiny things"), "tiny things");
        assert_eq!(clean("é s3cr3t-redact-test-value"), format!("é {fp}"));
    }

    #[test]
    fn spellings_in_uris_are_secrets_too() {
        secret_with_spellings("p@ss:w%rd-redact");
        let uri = crate::encode::uri_encode("p@ss:w%rd-redact");
        assert!(!clean(&format!("postgresql://u:{uri}@h/db")).contains(&uri));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            clean("a\x1b[31mred\rb\u{202e}c\n\td"),
            "a\\u{1b}[31mred\\u{d}b\\u{202e}c\n\td"
        );
        assert_eq!(clean("plain"), "plain");
    }

    #[test]
    fn the_caret_follows_the_cleaned_line() {
        secret("caret-secret-value");
        let (line, col) = clean_with_caret("k: caret-secret-value, x: \x1b", 27);
        assert_eq!(
            line,
            format!("k: {}, x: \\u{{1b}}", fingerprint(b"caret-secret-value"))
        );
        assert_eq!(col, 4 + 19 + 5);
    }

    #[test]
    fn files_are_known_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.key");
        std::fs::write(&key, "x").unwrap();
        assert!(!is_secret_file(&key));
        secret_file(&key);
        assert!(is_secret_file(&dir.path().join(".").join("k.key")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&key, dir.path().join("link")).unwrap();
            assert!(is_secret_file(&dir.path().join("link")));
        }
    }

    #[test]
    fn masks_keep_the_smallest_column() {
        let f = Path::new("mask-test.yaml");
        mask(f, 3, 10);
        mask(f, 3, 5);
        assert_eq!(masked(f, 3), Some(5));
        assert_eq!(masked(f, 4), None);
    }
}
