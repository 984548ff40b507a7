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
use sha2::{Digest, Sha256};

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of some bytes, as the index writes it.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
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

/// The index in `dir`'s marker file, if it has one that parses.
pub fn read(dir: &Path) -> Option<Index> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    let mut index = Index {
        version: String::new(),
        inputs: String::new(),
        files: BTreeMap::new(),
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(path_hash) = line.strip_prefix("  ") {
            let (path, hash) = path_hash.rsplit_once(": ")?;
            index.files.insert(path.to_owned(), hash.to_owned());
        } else if let Some(v) = line.strip_prefix("mlplat: ") {
            index.version = v.to_owned();
        } else if let Some(v) = line.strip_prefix("inputs: ") {
            index.inputs = v.to_owned();
        }
    }
    (!index.version.is_empty()).then_some(index)
}

/// The files of `dir` whose bytes no longer match the index: edited by hand (or deleted).
pub fn edited_by_hand(dir: &Path, index: &Index) -> Vec<String> {
    index
        .files
        .iter()
        .filter(|(path, hash)| {
            std::fs::read(dir.join(path.as_str())).map_or(true, |b| sha256(&b) != **hash)
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
}
