//! The index of an output directory, kept in its marker file (`out/.mlplat`): the mlplat
//! version, a digest of the inputs, and the sha256 of every file mlplat wrote. With it,
//! `render --check` names a file edited by hand (its bytes no longer match the hash mlplat
//! recorded) apart from a stale one. `--check` itself always renders and compares: the index
//! cannot see a change in mlplat's own templates or code, and a render takes milliseconds.
//!
//! The inputs digest is an HMAC-SHA256 keyed by the platform secret key over the config, the
//! lock, the chart values files and every value read from the environment or a file: it changes
//! whenever a render could, and reveals nothing about those values.

use std::collections::BTreeMap;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::encode::{hex, sha256_hex as sha256};

use crate::config::Loaded;
use crate::output::{MARKER, Tree};

const HEADER: &str = "# Written by mlplat. Every file in this directory is generated:\n# edit the platform config and run `mlplat render` instead.\n# The index below lets `mlplat render --check` name files edited by hand.\n";

/// What the marker file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub version: String,
    pub inputs: String,
    /// sha256 (64 hex) of every file but the marker, by relative path.
    pub files: BTreeMap<String, String>,
}

/// The digest of everything a render reads (the config's text, not its parsed form, so that
/// the digest does not change with mlplat's own types).
pub fn inputs_digest(loaded: &Loaded) -> String {
    #[allow(clippy::expect_used)] // HMAC takes a key of any length
    let mut mac = Hmac::<Sha256>::new_from_slice(loaded.key.expose().as_bytes()).expect("hmac key");
    let mut feed = |label: &str, bytes: &[u8]| {
        mac.update(label.as_bytes());
        mac.update(&(bytes.len() as u64).to_le_bytes());
        mac.update(bytes);
    };
    feed("config", loaded.source.as_bytes());
    #[allow(clippy::expect_used)] // a lock of maps and strings always serializes
    let lock = serde_json::to_vec(&loaded.lock).expect("lock serializes");
    feed("lock", &lock);
    for (tool, files) in &loaded.values_files {
        for f in files {
            feed(tool, f.value.to_string().as_bytes());
        }
    }
    // Each value as its fingerprint (what `Debug` shows of a Secret), by pointer.
    feed("inputs", format!("{:?}", loaded.inputs).as_bytes());
    format!("hmac-sha256:{}", hex(&mac.finalize().into_bytes()))
}

/// Writes the index of `tree` into its marker file.
pub fn seal(tree: &mut Tree, inputs: &str) {
    let mut text = format!(
        "{HEADER}mlplat: {}\ninputs: {inputs}\nfiles:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (path, file) in tree.files.iter().filter(|(p, _)| *p != MARKER) {
        text.push_str(&format!("  {path}: {}\n", sha256(&file.bytes)));
    }
    tree.insert(MARKER, text.into_bytes(), false);
}

/// The index in `dir`'s marker file, if it is a regular file holding one.
pub fn read(dir: &Path) -> Option<Index> {
    let bytes = crate::files::open_regular(&dir.join(MARKER), false)
        .ok()?
        .read(crate::files::MAX_OUTPUT_BYTES)
        .ok()?;
    parse(&String::from_utf8(bytes).ok()?)
}

/// An index as [`seal`] writes it, and nothing else: its header, the version, the inputs
/// digest, then one `  path: sha256` line per file, each path a plain relative one (no `..`,
/// no `.`, not absolute, no empty part): a marker written by hand, or one that would reach
/// outside its directory, is no index.
pub fn parse(text: &str) -> Option<Index> {
    let body = text.strip_prefix(HEADER)?;
    let mut lines = body.lines();
    let version = lines.next()?.strip_prefix("mlplat: ")?;
    let inputs = lines.next()?.strip_prefix("inputs: ")?;
    let digest = inputs.strip_prefix("hmac-sha256:")?;
    if version.is_empty() || !is_hex(digest) || lines.next()? != "files:" {
        return None;
    }
    let mut files = BTreeMap::new();
    for line in lines {
        let (path, hash) = line.strip_prefix("  ")?.rsplit_once(": ")?;
        if hash.len() != 64 || !is_hex(hash) || !plain_relative(path) {
            return None;
        }
        files.insert(path.to_owned(), hash.to_owned());
    }
    text.ends_with('\n').then_some(Index {
        version: version.to_owned(),
        inputs: inputs.to_owned(),
        files,
    })
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `a/b.yaml`: no empty part, no `.` or `..`, nothing a path could escape with.
fn plain_relative(path: &str) -> bool {
    path.split('/')
        .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains(['\\', '\0']))
        && path != MARKER
}

/// The files of `dir` whose bytes no longer match the index: edited by hand (or deleted).
pub fn edited_by_hand(dir: &Path, index: &Index) -> Vec<String> {
    index
        .files
        .iter()
        .filter(|(path, hash)| {
            crate::files::open_regular(&dir.join(path.as_str()), false)
                .and_then(|f| f.read(crate::files::MAX_OUTPUT_BYTES))
                .map_or(true, |b| sha256(&b) != **hash)
        })
        .map(|(path, _)| path.clone())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_index_names_a_file_edited_by_hand() {
        let mut tree = Tree::new();
        tree.insert("a/x.yaml", b"x: 1\n".to_vec(), false);
        tree.insert("b.yaml", b"y: 1\n".to_vec(), false);
        seal(&mut tree, "hmac-sha256:00");
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        crate::output::write(&tree, &out).unwrap();
        let index = read(&out).unwrap();
        assert_eq!(index.files.len(), 2);
        assert_eq!(index.inputs, "hmac-sha256:00");
        assert!(edited_by_hand(&out, &index).is_empty());
        std::fs::write(out.join("a/x.yaml"), "x: 2\n").unwrap();
        assert_eq!(edited_by_hand(&out, &index), vec!["a/x.yaml"]);
    }

    #[test]
    fn only_an_index_as_mlplat_writes_it_parses() {
        let mut tree = Tree::new();
        tree.insert("a/x.yaml", b"x: 1\n".to_vec(), false);
        seal(&mut tree, "hmac-sha256:00");
        let text = String::from_utf8(tree.files[MARKER].bytes.clone()).unwrap();
        assert_eq!(parse(&text).unwrap().files.len(), 1);
        for bad in [
            String::new(),
            "# Written by mlplat\n".to_owned(),
            text.replace("a/x.yaml", "../x.yaml"),
            text.replace("a/x.yaml", "/etc/x"),
            text.replace("a/x.yaml", "a//x.yaml"),
            text.replace("a/x.yaml", "./x.yaml"),
            text.replace(": ", ":"),
            text.trim_end().to_owned(),
            text.replace("hmac-sha256:00", "whatever"),
            format!("{text}  extra\n"),
        ] {
            assert!(parse(&bad).is_none(), "{bad:?}");
        }
    }
}
