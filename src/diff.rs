//! What a fresh render would change in `out/`, per Kubernetes object (`Kind namespace/name`):
//! objects added, removed, or changed, each change shown as a compact unified diff of the
//! object's YAML. Every value a Secret holds, on both sides, is replaced by its fingerprint
//! before anything is compared or shown; so is every string under the `spec` of any other object
//! that lives in a secret file (an Argo CD Application's secret chart values).
//!
//! An added object is shown whole (`+` lines), a removed one too (`-` lines), so that what a
//! render would apply can be reviewed before it is. Files that are not Kubernetes objects
//! (`kustomization.yaml`, `values.yaml`) are compared as text, and a file that holds secrets but
//! cannot be parsed is only named. The marker and index file (`.mlplat`, in every environment
//! too) is never shown nor counted: it changes whenever anything else does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use crate::encode::fingerprint;
use crate::output::Tree;

/// Lines of unchanged context around each change.
const CONTEXT: usize = 2;

/// One file of either side: its bytes and whether it holds secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Side {
    pub bytes: Vec<u8>,
    pub secret: bool,
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Side")
            .field("len", &self.bytes.len())
            .field("secret", &self.secret)
            .finish()
    }
}

/// What changes for one object or file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The added object's (redacted) YAML or the added file's text, each line prefixed `+`.
    Added(Vec<String>),
    /// The removed object's (redacted) YAML or the removed file's text, each line prefixed `-`.
    Removed(Vec<String>),
    /// The unified diff of its (redacted) YAML, one line per entry, prefixed ` `, `-`, `+` or
    /// `@@`.
    Changed(Vec<String>),
}

/// One entry of the report: an object (`Secret mlops-mlflow/mlflow-db`) or a file
/// (`file kustomization.yaml`), where it lives, and what changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub what: String,
    pub path: String,
    pub change: Change,
}

/// Every change, objects first (sorted by kind, namespace, name), then files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub entries: Vec<Entry>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The report as printed: a header per entry (`~`, `+`, `-`), diff lines indented under it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let (mark, lines) = match &e.change {
                Change::Added(lines) => ('+', lines),
                Change::Removed(lines) => ('-', lines),
                Change::Changed(lines) => ('~', lines),
            };
            let _ = writeln!(out, "{mark} {} ({})", e.what, e.path);
            for l in lines {
                let _ = writeln!(out, "    {l}");
            }
        }
        let count = |f: fn(&Change) -> bool| self.entries.iter().filter(|e| f(&e.change)).count();
        let _ = writeln!(
            out,
            "{} changed, {} added, {} removed",
            count(|c| matches!(c, Change::Changed(_))),
            count(|c| matches!(c, Change::Added(_))),
            count(|c| matches!(c, Change::Removed(_))),
        );
        out
    }
}

/// Compares what is on disk (`old`, by relative path) with a fresh render (`new`).
pub fn diff(old: &BTreeMap<String, Side>, new: &Tree) -> Report {
    let old: BTreeMap<String, Side> = old
        .iter()
        .filter(|(p, _)| !is_index(p))
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect();
    let old = &old;
    let new: BTreeMap<String, Side> = new
        .files
        .iter()
        .filter(|(p, _)| !is_index(p))
        .map(|(p, f)| {
            (
                p.clone(),
                Side {
                    bytes: f.bytes.clone(),
                    secret: f.secret,
                },
            )
        })
        .collect();
    let old_objs = objects(old);
    let new_objs = objects(&new);
    let mut report = Report::default();
    // The files an object entry already speaks for.
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut keys: Vec<&Key> = old_objs.keys().chain(new_objs.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (path, change) = match (old_objs.get(key), new_objs.get(key)) {
            (Some((path, a)), None) => (path, Change::Removed(whole('-', &to_yaml(a)))),
            (None, Some((path, b))) => (path, Change::Added(whole('+', &to_yaml(b)))),
            (Some((old_path, a)), Some((path, b))) => {
                if a == b {
                    continue;
                }
                reported.insert(old_path.clone());
                let lines = unified(&to_yaml(a), &to_yaml(b));
                (path, Change::Changed(lines))
            }
            (None, None) => continue,
        };
        reported.insert(path.clone());
        report.entries.push(Entry {
            what: key.describe(),
            path: path.clone(),
            change,
        });
    }
    // Files that hold no object, or whose objects are all unchanged but whose text is not (a
    // comment, the order of objects).
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        if reported.contains(path) {
            continue;
        }
        let change = match (old.get(path), new.get(path)) {
            (Some(a), Some(b)) if a.bytes == b.bytes => continue,
            (Some(a), None) => Change::Removed(file_text('-', a)),
            (None, Some(b)) => Change::Added(file_text('+', b)),
            (Some(a), Some(b)) if holds_secrets(a) || holds_secrets(b) => {
                Change::Changed(vec!["(holds secrets: contents not shown)".to_owned()])
            }
            (Some(a), Some(b)) => Change::Changed(unified(
                &String::from_utf8_lossy(&a.bytes),
                &String::from_utf8_lossy(&b.bytes),
            )),
            (None, None) => continue,
        };
        report.entries.push(Entry {
            what: format!("file {path}"),
            path: path.clone(),
            change,
        });
    }
    report
}

/// The marker and index file of an output (`.mlplat`, or `<env>/.mlplat`).
fn is_index(path: &str) -> bool {
    path.rsplit('/').next() == Some(crate::output::MARKER)
}

fn to_yaml(v: &Value) -> String {
    crate::yaml::to_yaml_string(v)
}

/// Every line of `text`, prefixed with `mark`.
fn whole(mark: char, text: &str) -> Vec<String> {
    text.lines().map(|l| format!("{mark}{l}")).collect()
}

/// An added or removed file that holds no object: its text, unless it holds secrets.
fn file_text(mark: char, side: &Side) -> Vec<String> {
    if holds_secrets(side) {
        return vec!["(holds secrets: contents not shown)".to_owned()];
    }
    whole(mark, &String::from_utf8_lossy(&side.bytes))
}

/// A file whose text must not be shown: marked secret, or holding a Secret all the same.
fn holds_secrets(side: &Side) -> bool {
    side.secret || side.bytes.windows(12).any(|w| w == b"kind: Secret")
}

/// An object's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: String,
    namespace: String,
    name: String,
}

impl Key {
    fn describe(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

type Objects = BTreeMap<Key, (String, Value)>;

/// The Kubernetes objects of a side, redacted, with the file each lives in. A file that is not
/// YAML, or does not parse (hand-edited), holds none and is compared as text.
fn objects(files: &BTreeMap<String, Side>) -> Objects {
    let mut objs = Objects::new();
    for (path, side) in files {
        let parsed = (path.ends_with(".yaml") || path.ends_with(".yml"))
            .then(|| std::str::from_utf8(&side.bytes).ok())
            .flatten()
            .and_then(|text| crate::yaml::parse_documents(text).ok());
        for doc in parsed.into_iter().flatten() {
            let mut v = doc.to_json();
            let (Some(kind), Some(name)) = (
                v["kind"].as_str().map(String::from),
                v["metadata"]["name"].as_str().map(String::from),
            ) else {
                continue;
            };
            let namespace = v["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            redact(&mut v, side.secret);
            objs.insert(
                Key {
                    kind,
                    namespace,
                    name,
                },
                (path.clone(), v),
            );
        }
    }
    objs
}

/// Replaces every secret value of `obj` by its fingerprint: a Secret's `data` and `stringData`
/// values; in a secret file, the strings of an Application's chart values, or the strings
/// under any other object's `spec`.
pub fn redact(obj: &mut Value, secret_file: bool) {
    if obj["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(map)) = obj.get_mut(field) {
                for v in map.values_mut() {
                    fingerprint_strings(v);
                }
            }
        }
        return;
    }
    if !secret_file {
        return;
    }
    if obj["kind"] == "Application" {
        if let Some(v) = obj.pointer_mut("/spec/source/helm/valuesObject") {
            fingerprint_strings(v);
        }
        if let Some(Value::Array(sources)) = obj.pointer_mut("/spec/sources") {
            for s in sources {
                if let Some(v) = s.pointer_mut("/helm/valuesObject") {
                    fingerprint_strings(v);
                }
            }
        }
        return;
    }
    if let Some(spec) = obj.get_mut("spec") {
        fingerprint_strings(spec);
    }
}

fn fingerprint_strings(v: &mut Value) {
    match v {
        Value::String(s) => *s = fingerprint(s.as_bytes()),
        Value::Array(items) => items.iter_mut().for_each(fingerprint_strings),
        Value::Object(map) => map.values_mut().for_each(fingerprint_strings),
        _ => {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize),
    Del(usize),
    Ins(usize),
}

/// A unified diff of two texts, line by line (longest common subsequence), with
/// [`CONTEXT`] lines around each change and `@@ -a,n +b,m @@` headers.
pub fn unified(a: &str, b: &str) -> Vec<String> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let ops = lcs_ops(&a, &b);
    // Group the ops into hunks: changes at most 2*CONTEXT same lines apart share one.
    let changes: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(_)))
        .map(|(i, _)| i)
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let start = changes[i].saturating_sub(CONTEXT);
        let mut end = changes[i];
        while i + 1 < changes.len() && changes[i + 1] - end - 1 <= 2 * CONTEXT {
            i += 1;
            end = changes[i];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        // Positions (1-based) of the hunk on each side.
        let (mut a_at, mut b_at) = (1, 1);
        for op in &ops[..start] {
            match op {
                Op::Same(_) => {
                    a_at += 1;
                    b_at += 1;
                }
                Op::Del(_) => a_at += 1,
                Op::Ins(_) => b_at += 1,
            }
        }
        let a_len = hunk.iter().filter(|o| !matches!(o, Op::Ins(_))).count();
        let b_len = hunk.iter().filter(|o| !matches!(o, Op::Del(_))).count();
        out.push(format!("@@ -{a_at},{a_len} +{b_at},{b_len} @@"));
        for op in hunk {
            out.push(match *op {
                Op::Same(x) => format!(" {}", a[x]),
                Op::Del(x) => format!("-{}", a[x]),
                Op::Ins(y) => format!("+{}", b[y]),
            });
        }
        i += 1;
    }
    out
}

/// The edit script from `a` to `b`: common prefix and suffix first, then a classic LCS table
/// over what is left (objects are small; the table is at most a few thousand lines square).
fn lcs_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let (n, m) = (ma.len(), mb.len());
    // table[i][j]: length of the LCS of ma[i..] and mb[j..].
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if ma[i] == mb[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let mut ops: Vec<Op> = (0..prefix).map(Op::Same).collect();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && ma[i] == mb[j] {
            ops.push(Op::Same(prefix + i));
            i += 1;
            j += 1;
        } else if i < n && (j == m || table[at(i + 1, j)] >= table[at(i, j + 1)]) {
            // Deletions first, as diff(1) shows them.
            ops.push(Op::Del(prefix + i));
            i += 1;
        } else {
            ops.push(Op::Ins(prefix + j));
            j += 1;
        }
    }
    ops.extend((a.len() - suffix..a.len()).map(Op::Same));
    ops
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn side(text: &str, secret: bool) -> Side {
        Side {
            bytes: text.as_bytes().to_vec(),
            secret,
        }
    }

    #[test]
    fn unified_diff_shows_context_and_positions() {
        let a = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let b = "a\nb\nc\nD\ne\nf\ng\nh\ni\nJ\n";
        assert_eq!(
            unified(a, b),
            vec![
                "@@ -2,5 +2,5 @@",
                " b",
                " c",
                "-d",
                "+D",
                " e",
                " f",
                "@@ -8,2 +8,3 @@",
                " h",
                " i",
                "+J",
            ]
        );
        assert!(unified(a, a).is_empty());
    }

    #[test]
    fn secret_values_are_fingerprints_on_both_sides() {
        let old = BTreeMap::from([(
            "x/secrets.yaml".to_owned(),
            side(
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData:\n  password: old-password-value\n",
                true,
            ),
        )]);
        let mut new = Tree::default();
        new.insert(
            "x/secrets.yaml",
            b"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData:\n  password: new-password-value\n".to_vec(),
            true,
        );
        let text = diff(&old, &new).text();
        assert!(text.contains("~ Secret n/s (x/secrets.yaml)"), "{text}");
        assert!(!text.contains("password-value"), "{text}");
        assert!(text.contains(&fingerprint(b"new-password-value")), "{text}");
        assert!(text.contains("1 changed, 0 added, 0 removed"), "{text}");
    }

    #[test]
    fn added_removed_and_plain_files() {
        let old = BTreeMap::from([
            (
                "a.yaml".to_owned(),
                side("kind: ConfigMap\nmetadata: {name: gone}\n", false),
            ),
            (
                "k/kustomization.yaml".to_owned(),
                side("resources: [a]\n", false),
            ),
        ]);
        let mut new = Tree::default();
        new.insert(
            "a.yaml",
            b"kind: ConfigMap\nmetadata: {name: new}\n".to_vec(),
            false,
        );
        new.insert("k/kustomization.yaml", b"resources: [b]\n".to_vec(), false);
        let r = diff(&old, &new);
        let text = r.text();
        assert!(text.contains("- ConfigMap gone (a.yaml)"), "{text}");
        assert!(text.contains("+ ConfigMap new (a.yaml)"), "{text}");
        assert!(text.contains("~ file k/kustomization.yaml"), "{text}");
        assert!(text.contains("+resources: [b]"), "{text}");
        assert!(diff(&BTreeMap::new(), &Tree::default()).is_empty());
    }
}
