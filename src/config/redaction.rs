//! What of a config must never be printed, found as soon as the files are read (before any
//! check, so every later error honours it): the schema marks secret keys with
//! `x-mlplat-secret: true` (a `{fromEnv|fromFile}` reference). Under such a key,
//!
//! - a reference is fine to show, and its `fromFile` target is a secret file (never quoted,
//!   whatever error points into it);
//! - anything else is a secret written inline: its text is registered with [`redact`] and the
//!   lines it spans are masked in every quoted snippet.
//!
//! A line that fails to parse as YAML has no tree: it is masked when a key on it looks like a
//! secret's (`token:`, `password:`, `fernetKey:`...) and is not followed by a reference.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::schema;
use super::sources::Layered;
use crate::yaml::{Node, NodeValue, Pos};
use crate::{files, redact};

/// The schema's annotation for a key whose value is a secret.
pub const SECRET_MARK: &str = "x-mlplat-secret";

/// Registers what the config tree of `layered` must never show; returns the pointers of the
/// values written inline under a secret key.
pub fn scan(layered: &Layered) -> BTreeSet<String> {
    let mut scan = Scan {
        layered,
        inline: BTreeSet::new(),
        positions: None,
    };
    let root_is_scalar = !matches!(layered.doc.value, NodeValue::Map(_) | NodeValue::Seq(_));
    if root_is_scalar && layered.doc.value != NodeValue::Null {
        // A lone scalar is no config: it may well be a token or a key someone pointed at.
        for f in &layered.sources.files {
            redact::never_quote(&f.path);
        }
        register_scalars(&layered.doc);
        return scan.inline;
    }
    let mut path = Vec::new();
    scan.walk(schema::schema(), &layered.doc, &mut path);
    scan.inline
}

struct Scan<'a> {
    layered: &'a Layered,
    inline: BTreeSet<String>,
    /// Every key and value position of each file (by index in the sources), in order: found
    /// once, when the first inline secret needs them.
    positions: Option<BTreeMap<usize, BTreeSet<(usize, usize)>>>,
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The JSON pointer of a path of keys and indexes.
fn pointer_of(path: &[&str]) -> String {
    path.iter().fold(String::new(), |p, token| child(&p, token))
}

/// A schema with its `$ref`s followed.
fn resolve(mut s: &'static Value) -> &'static Value {
    let root = schema::schema();
    for _ in 0..32 {
        match s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| root.pointer(p))
        {
            Some(target) => s = target,
            None => break,
        }
    }
    s
}

fn is_secret(s: &Value) -> bool {
    s.get(SECRET_MARK).and_then(Value::as_bool) == Some(true)
}

/// A `{fromEnv: NAME}` or `{fromFile: path}`: the target, if it is one.
fn reference(node: &Node) -> Option<(&str, &str)> {
    match &node.value {
        NodeValue::Map(entries) if entries.len() == 1 => {
            let (k, v) = &entries[0];
            match (&v.value, k.name.as_str()) {
                (NodeValue::Str(target), kind @ ("fromEnv" | "fromFile")) => Some((kind, target)),
                _ => None,
            }
        }
        _ => None,
    }
}

impl Scan<'_> {
    fn file(&self, pointer: &str) -> usize {
        self.layered.sources.origin(pointer)
    }

    fn positions(&mut self) -> &BTreeMap<usize, BTreeSet<(usize, usize)>> {
        if self.positions.is_none() {
            let mut all = BTreeMap::new();
            self.collect_positions(&self.layered.doc, "", &mut all);
            self.positions = Some(all);
        }
        self.positions.get_or_insert_with(BTreeMap::new)
    }

    fn collect_positions(
        &self,
        node: &Node,
        pointer: &str,
        all: &mut BTreeMap<usize, BTreeSet<(usize, usize)>>,
    ) {
        let file = self.file(pointer);
        all.entry(file)
            .or_default()
            .insert((node.pos.line, node.pos.col));
        match &node.value {
            NodeValue::Map(entries) => {
                for (k, v) in entries {
                    let at = child(pointer, &k.name);
                    all.entry(self.file(&at))
                        .or_default()
                        .insert((k.pos.line, k.pos.col));
                    self.collect_positions(v, &at, all);
                }
            }
            NodeValue::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.collect_positions(v, &format!("{pointer}/{i}"), all);
                }
            }
            _ => {}
        }
    }

    /// Walks the tree beside its schema; `path` is where `node` is (keys and indexes).
    fn walk(&mut self, s: &'static Value, node: &Node, path: &mut Vec<String>) {
        let s = resolve(s);
        if is_secret(s) {
            let tokens: Vec<&str> = path.iter().map(String::as_str).collect();
            self.secret(node, &pointer_of(&tokens));
            return;
        }
        match &node.value {
            NodeValue::Map(entries) => {
                let props = s.get("properties").and_then(Value::as_object);
                let extra = s.get("additionalProperties").filter(|v| v.is_object());
                for (k, v) in entries {
                    if let Some(cs) = props.and_then(|p| p.get(&k.name)).or(extra) {
                        path.push(k.name.clone());
                        self.walk(cs, v, path);
                        path.pop();
                    }
                }
            }
            NodeValue::Seq(items) => {
                if let Some(cs) = s.get("items").filter(|v| v.is_object()) {
                    for (i, v) in items.iter().enumerate() {
                        path.push(i.to_string());
                        self.walk(cs, v, path);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// The value under a secret key.
    fn secret(&mut self, node: &Node, pointer: &str) {
        let sources = &self.layered.sources;
        match reference(node) {
            Some(("fromFile", target)) => {
                let at = format!("{pointer}/fromFile");
                let dir = sources.file_of(&at).path.parent().unwrap_or(Path::new(""));
                redact::secret_file(&dir.join(target));
            }
            Some(_) => {}
            None => {
                self.inline.insert(pointer.to_owned());
                register_scalars(node);
                let file = self.file(pointer);
                let last = last_pos(node);
                let next = self.positions().get(&file).and_then(|all| {
                    all.range((last.line, last.col + 1)..)
                        .next()
                        .map(|&(line, _)| line)
                });
                let sources = &self.layered.sources;
                let path = sources.files[file].path.clone();
                let lines = sources.files[file].text.lines().count().max(node.pos.line);
                let end = match next {
                    Some(line) if line > last.line => line - 1,
                    Some(_) => last.line,
                    None => lines,
                };
                redact::mask(&path, node.pos.line, node.pos.col);
                for line in node.pos.line + 1..=end {
                    redact::mask(&path, line, 1);
                }
            }
        }
    }
}

/// For a command that shows the config without resolving it (`explain`): reads, as a render
/// would, every `{fromEnv}` / `{fromFile}` reference in the tree and the platform key, so that
/// their values are known secrets wherever else they appear written out (a token pasted into
/// a repository URL). Best effort and silent: what cannot be read is not learned, and is then
/// the error of the command that needs it. Files are read as a render reads them (regular files
/// only, at most [`files::MAX_SECRET_BYTES`]).
pub fn learn_references(layered: &Layered) {
    let mut key_set = false;
    let mut stack = vec![(&layered.doc, String::new())];
    while let Some((node, pointer)) = stack.pop() {
        if let Some((kind, target)) = reference(node) {
            key_set |= pointer == "/secrets/key";
            match kind {
                "fromEnv" => {
                    if let Ok(v) = std::env::var(target) {
                        redact::secret_with_spellings(&v);
                    }
                }
                _ => {
                    let at = format!("{pointer}/fromFile");
                    let dir = layered.sources.file_of(&at).path.parent();
                    learn_file(&dir.unwrap_or(Path::new("")).join(target));
                }
            }
            continue;
        }
        match &node.value {
            NodeValue::Map(entries) => {
                for (k, v) in entries {
                    stack.push((v, child(&pointer, &k.name)));
                }
            }
            NodeValue::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    stack.push((v, format!("{pointer}/{i}")));
                }
            }
            _ => {}
        }
    }
    if !key_set {
        let base = layered.sources.base().path.parent();
        learn_file(&base.unwrap_or(Path::new("")).join(super::KEY_FILE));
    }
}

/// The value a `fromFile` reads from `path`, if it can be read, made a secret.
fn learn_file(path: &Path) {
    redact::secret_file(path);
    let Ok(bytes) = files::read(path, files::MAX_SECRET_BYTES) else {
        return;
    };
    if let Ok(text) = String::from_utf8(bytes) {
        redact::secret_with_spellings(text.trim_end_matches(['\n', '\r']));
    }
}

/// The last position at or below a node.
fn last_pos(node: &Node) -> Pos {
    let mut last = node.pos;
    let mut visit = |p: Pos| {
        if (p.line, p.col) > (last.line, last.col) {
            last = p;
        }
    };
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        visit(n.pos);
        match &n.value {
            NodeValue::Map(entries) => {
                for (k, v) in entries {
                    visit(k.pos);
                    stack.push(v);
                }
            }
            NodeValue::Seq(items) => stack.extend(items),
            _ => {}
        }
    }
    last
}

/// Every scalar at or below `node`, as text, is a secret.
fn register_scalars(node: &Node) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &n.value {
            NodeValue::Str(s) => redact::secret_with_spellings(s),
            NodeValue::Int(i) => redact::secret(&i.to_string()),
            NodeValue::Float(_) => redact::secret(&n.to_json().to_string()),
            NodeValue::Map(entries) => {
                for (k, v) in entries {
                    redact::secret(&k.name);
                    stack.push(v);
                }
            }
            NodeValue::Seq(items) => stack.extend(items),
            NodeValue::Null | NodeValue::Bool(_) => {}
        }
    }
}

/// Words that make a key a secret's, in any file: `token:`, `password:`, `fernetKey:`.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "credential",
    "credentials",
];

/// Whether one of the words of a key (`fernetKey` → fernet, key; `ssh_key` → ssh, key) names a
/// secret: `monkey` and `keyboard` do not.
fn names_a_secret(key: &str) -> bool {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        let boundary = !c.is_ascii_alphabetic() || (c.is_ascii_uppercase() && prev_lower);
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c.is_ascii_alphabetic() {
            word.push(c.to_ascii_lowercase());
        }
        prev_lower = c.is_ascii_lowercase();
    }
    words.push(word);
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// Masks line `line` of `text` (the file at `path`) when a key on it names a secret and what
/// follows is not a reference: the line of a YAML error, which has no tree to go by. Linear in
/// the line's length.
pub fn mask_line_by_keys(path: &Path, text: &str, line: usize) {
    let Some(l) = line.checked_sub(1).and_then(|i| text.lines().nth(i)) else {
        return;
    };
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    for (colon, _) in l.match_indices(':') {
        let after = &l[colon + 1..];
        if !(after.is_empty() || after.starts_with([' ', '\t'])) {
            continue; // `http://`, `a:b`: no key
        }
        let before = l[..colon].trim_end_matches(['"', '\'']);
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_key_char(*c))
            .last()
            .map_or(before.len(), |(i, _)| i);
        if !names_a_secret(&before[start..]) {
            continue;
        }
        let rest = after.trim_start();
        // Nothing yet (a block follows), or a collection: a reference, or keys that are
        // looked at in their turn.
        if rest.is_empty() || rest.starts_with(['{', '[']) {
            continue;
        }
        let col = l[..l.len() - rest.len()].chars().count() + 1;
        redact::mask(path, line, col);
        return;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::sources::Sources;

    fn scanned(path: &str, text: &str) -> BTreeSet<String> {
        let layered = Layered {
            doc: crate::yaml::parse_document(text).unwrap(),
            sources: Sources::single(Path::new(path), text),
            environment: None,
            inline_secrets: BTreeSet::new(),
        };
        scan(&layered)
    }

    #[test]
    fn inline_secrets_are_registered_and_their_lines_masked() {
        let f = "redaction-test-1.yaml";
        let text = "platform: p\ntools:\n  mlflow:\n    auth:\n      adminPassword: |\n        inline-secret-one\n        two\n      adminUsername: admin\n  airflow:\n    dags:\n      repo: x\n      credentials: {username: u, token: inline-token-value}\n";
        let inline = scanned(f, text);
        assert_eq!(
            inline.into_iter().collect::<Vec<_>>(),
            [
                "/tools/airflow/dags/credentials/token",
                "/tools/mlflow/auth/adminPassword"
            ]
        );
        let p = PathBuf::from(f);
        for line in [6, 7] {
            assert!(
                redact::masked(&p, line).is_some_and(|c| c <= 9),
                "line {line}"
            );
        }
        assert_eq!(redact::masked(&p, 8), None);
        assert_eq!(redact::masked(&p, 12), Some(41));
        assert!(!redact::clean("x inline-token-value").contains("inline-token-value"));
    }

    #[test]
    fn references_are_not_secrets_but_their_files_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "t").unwrap();
        let config = dir.path().join("p.yaml");
        let text = "platform: p\nsecrets: {key: {fromEnv: K}}\ntools:\n  mlflow:\n    auth: {adminPassword: {fromFile: tok}}\n";
        let inline = scanned(config.to_str().unwrap(), text);
        assert!(inline.is_empty());
        assert_eq!(redact::masked(&config, 5), None);
        assert!(redact::is_secret_file(&dir.path().join("tok")));
    }

    #[test]
    fn secret_words_are_words_of_the_key() {
        for yes in [
            "token",
            "fernetKey",
            "ssh_key",
            "clientSecret",
            "DB_PASSWORD",
            "api-key",
            "key1",
        ] {
            assert!(names_a_secret(yes), "{yes}");
        }
        for no in ["monkey", "keyboard", "tokens2x", "username", "image"] {
            assert!(!names_a_secret(no), "{no}");
        }
    }

    #[test]
    fn a_broken_line_is_masked_by_its_keys() {
        let p = Path::new("redaction-test-3.yaml");
        let text = "a: 1\ntoken: \"unclosed\npassword: {fromEnv: X}\nfernetKey: abc\n  x: {username: u, clientSecret: zz\n";
        for line in 1..=5 {
            mask_line_by_keys(p, text, line);
        }
        assert_eq!(redact::masked(p, 1), None);
        assert_eq!(redact::masked(p, 2), Some(8));
        assert_eq!(redact::masked(p, 3), None);
        assert_eq!(redact::masked(p, 4), Some(12));
        assert_eq!(redact::masked(p, 5), Some(34));
    }
}
