//! Environments: the base config and one environment's overlay file, merged into one positioned
//! tree that remembers which file set every value, so that a diagnostic points into the file to
//! fix and `mlplat explain` can say where a value came from.
//!
//! The merge rule, as the README states it: maps merge key by key, deeply; anything else, lists
//! included, is replaced by the overlay's value; `key+: [...]` appends to the list the base sets;
//! `key: null` removes the key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::sources::{Layered, SourceFile, Sources};
use super::{ConfigError, Diagnostics};
use crate::diagnostic::{Diagnostic, key_path};
use crate::files;
use crate::redact;
use crate::yaml::{self, Key, Node, NodeValue, Pos};

/// Reads a config file into a positioned tree; a YAML error is a diagnostic (whose line is
/// masked if a key on it names a secret).
pub fn parse(path: &Path, text: &str) -> Result<Node, ConfigError> {
    yaml::parse_document(text).map_err(|e| {
        super::redaction::mask_line_by_keys(path, text, e.pos().line);
        let d = Diagnostic::new(path, e.to_string()).at(e.pos(), text);
        invalid(vec![match &e {
            yaml::YamlError::DuplicateKey { .. } => d.help("remove one of the two"),
            _ => d,
        }])
    })
}

/// A file named like a key (`*.key`): never read as YAML.
pub fn is_key_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "key")
}

/// A file that holds a secret (the key file, a `fromFile` target, any `*.key`) is never read
/// as YAML: the diagnostic about it says so and shows nothing of it.
fn refuse_secret_file(path: &Path) -> Result<(), ConfigError> {
    if redact::is_secret_file(path) || is_key_file(path) {
        return Err(invalid(vec![Diagnostic::new(path, "holds a secret")]));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    if is_key_file(path) {
        redact::secret_file(path);
    }
    // The key file a config without `secrets.key` falls back on: never quoted, even when it
    // is given as the config itself (`-c mlplat.key`).
    redact::secret_file(&path.parent().unwrap_or(Path::new("")).join(super::KEY_FILE));
    refuse_secret_file(path)?;
    match files::read_yaml(path) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(d)) => Err(invalid(vec![d])),
        Err(e) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source: e.into_io(),
        }),
    }
}

fn invalid(d: Vec<Diagnostic>) -> ConfigError {
    ConfigError::Invalid(Diagnostics(d))
}

/// The environments the config at `path` declares, in name order (none for a plain config).
/// Reads the base file only; a malformed `environments` block is reported here.
pub fn environment_names(path: &Path) -> Result<Vec<String>, ConfigError> {
    let text = read(path)?;
    let doc = parse(path, &text)?;
    let (names, problems) = declared(path, &text, &doc);
    if problems.is_empty() {
        Ok(names.into_keys().collect())
    } else {
        Err(invalid(problems))
    }
}

/// Whether the base config just read (`layered`, no environment merged) declares
/// environments; a malformed `environments` block is reported as by [`environment_names`].
pub fn declares_environments(path: &Path, layered: &Layered) -> Result<bool, ConfigError> {
    let (names, problems) = declared(path, &layered.sources.base().text, &layered.doc);
    if problems.is_empty() {
        Ok(!names.is_empty())
    } else {
        Err(invalid(problems))
    }
}

/// `environments` of a base tree: name → overlay file (as written), with any problem found.
fn declared(
    path: &Path,
    text: &str,
    doc: &Node,
) -> (BTreeMap<String, (String, Pos)>, Vec<Diagnostic>) {
    let mut names = BTreeMap::new();
    let mut problems = Vec::new();
    let Some(Node {
        value: NodeValue::Map(entries),
        ..
    }) = doc.pointer("/environments")
    else {
        return (names, problems); // absent, or the wrong type: the schema check says so
    };
    for (key, node) in entries {
        if !valid_name(&key.name) {
            problems.push(
                Diagnostic::new(path, format!("`{}` is not a valid environment name", key.name))
                    .at(key.pos, text)
                    .key("environments")
                    .help("use lowercase letters, digits and '-', starting with a letter, at most 16 characters (dev, staging, prod)"),
            );
            continue;
        }
        if let Some(Node {
            value: NodeValue::Str(file),
            pos,
        }) = node.pointer("/file")
        {
            names.insert(key.name.clone(), (file.clone(), *pos));
        } else {
            names.insert(key.name.clone(), (String::new(), node.pos));
        }
    }
    (names, problems)
}

/// An environment name: a short DNS label, since it becomes part of the platform name.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 16
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Reads the config at `path`, merged with the overlay of `environment` when one is named.
/// What it holds that must never be shown is registered at once (see [`super::redaction`]).
pub fn read_layers(path: &Path, environment: Option<&str>) -> Result<Layered, ConfigError> {
    let (mut layered, problems) = read_unscanned(path, environment)?;
    layered.inline_secrets = super::redaction::scan(&layered);
    if problems.is_empty() {
        Ok(layered)
    } else {
        Err(invalid(problems))
    }
}

/// The layers, merged, and the problems of the merge.
fn read_unscanned(
    path: &Path,
    environment: Option<&str>,
) -> Result<(Layered, Vec<Diagnostic>), ConfigError> {
    let text = read(path)?;
    let mut doc = parse(path, &text)?;
    let mut sources = Sources::single(path, &text);
    let Some(env) = environment else {
        let layered = Layered {
            doc,
            sources,
            environment: None,
            inline_secrets: BTreeSet::new(),
        };
        return Ok((layered, Vec::new()));
    };
    let (names, problems) = declared(path, &text, &doc);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let Some((file, file_pos)) = names.get(env) else {
        let at = doc.key_pos("", "environments").unwrap_or(doc.pos);
        let known: Vec<&str> = names.keys().map(String::as_str).collect();
        let d = Diagnostic::new(
            path,
            format!("no environment {} in this config", yaml::quote(env)),
        )
        .at(at, &text);
        let d = if known.is_empty() {
            d.help("declare it: environments: {dev: {file: env/dev.yaml}}")
        } else {
            match crate::diagnostic::closest(env, &known) {
                Some(best) => d.help(format!("did you mean `{best}`?")),
                None => d.help(format!("declared: {}", known.join(", "))),
            }
        };
        return Err(invalid(vec![d]));
    };
    if file.is_empty() {
        // No usable `file`: the schema check of the merged tree names the problem.
        let layered = Layered {
            doc,
            sources,
            environment: Some(env.to_owned()),
            inline_secrets: BTreeSet::new(),
        };
        return Ok((layered, Vec::new()));
    }
    let overlay_path = path.parent().unwrap_or(Path::new("")).join(file);
    redact::secret_file(
        &overlay_path
            .parent()
            .unwrap_or(Path::new(""))
            .join(super::KEY_FILE),
    );
    refuse_secret_file(&overlay_path)?;
    let overlay_text = match files::read_yaml(&overlay_path) {
        Ok(Ok(t)) => t,
        Ok(Err(d)) => return Err(invalid(vec![d])),
        Err(e) => {
            return Err(invalid(vec![
                Diagnostic::new(
                    path,
                    format!("cannot read `{}`: {e}", overlay_path.display()),
                )
                .at(*file_pos, &text)
                .key(format!("environments.{env}.file"))
                .help("paths are relative to the config file"),
            ]));
        }
    };
    let overlay = parse(&overlay_path, &overlay_text)?;
    sources
        .files
        .push(SourceFile::new(&overlay_path, &overlay_text));
    let mut problems = Vec::new();
    let mut m = Merge {
        sources: &mut sources,
        file: 1,
        problems: &mut problems,
    };
    match overlay.value {
        NodeValue::Null => {}
        NodeValue::Map(entries) => {
            if let Some((k, _)) = entries.iter().find(|(k, _)| k.name == "environments") {
                m.problem(
                    k.pos,
                    "environments",
                    "an overlay cannot declare environments",
                    "declare every environment in the base config",
                );
            } else {
                m.map(&mut doc, entries, "");
            }
        }
        _ => {
            redact::never_quote(&overlay_path);
            m.problem(
                overlay.pos,
                "",
                &format!(
                    "an overlay must be a mapping (a partial platform config), found {}",
                    overlay.type_name()
                ),
                "write it like the base config, with only the keys this environment changes",
            )
        }
    }
    if problems.is_empty() {
        derive_platform(&mut doc, &mut sources, env);
    }
    let layered = Layered {
        doc,
        sources,
        environment: Some(env.to_owned()),
        inline_secrets: BTreeSet::new(),
    };
    Ok((layered, problems))
}

/// Unless the overlay names the platform, the environment's is `<platform>-<env>`: namespaces,
/// labels and every derived secret then differ between environments.
fn derive_platform(doc: &mut Node, sources: &mut Sources, env: &str) {
    if sources.origins.contains_key("/platform") {
        return;
    }
    if let NodeValue::Map(entries) = &mut doc.value {
        if let Some((_, node)) = entries.iter_mut().find(|(k, _)| k.name == "platform") {
            if let NodeValue::Str(name) = &mut node.value {
                *name = format!("{name}-{env}");
                sources.derived_platform = Some(env.to_owned());
            }
        }
    }
}

/// One overlay being merged into the base tree.
struct Merge<'a> {
    sources: &'a mut Sources,
    /// The overlay's index in `sources.files`.
    file: usize,
    problems: &'a mut Vec<Diagnostic>,
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Removes `pointer` and every pointer below it from a map keyed by pointers, in
/// logarithmic time: the pointers below `p` are the range `p/` .. `p0` (`0` follows `/`).
fn remove_below<V>(map: &mut BTreeMap<String, V>, pointer: &str) {
    map.remove(pointer);
    let below: Vec<String> = map
        .range(format!("{pointer}/")..format!("{pointer}0"))
        .map(|(k, _)| k.clone())
        .collect();
    for k in below {
        map.remove(&k);
    }
}

impl Merge<'_> {
    fn problem(&mut self, pos: Pos, pointer: &str, message: &str, help: &str) {
        let f = &self.sources.files[self.file];
        self.problems.push(
            Diagnostic::new(&f.path, message)
                .at_line(pos, f.line(pos.line))
                .key(key_path(pointer))
                .help(help),
        );
    }

    /// Records that the overlay set the value at `pointer` (and everything below it).
    fn set_by_overlay(&mut self, pointer: &str) {
        remove_below(&mut self.sources.origins, pointer);
        remove_below(&mut self.sources.removed, pointer);
        self.sources.origins.insert(pointer.to_owned(), self.file);
    }

    /// Merges the overlay mapping `entries` into `base`, the node at `pointer`: linear in the
    /// size of both (the base's keys are indexed once).
    fn map(&mut self, base: &mut Node, entries: Vec<(Key, Node)>, pointer: &str) {
        let NodeValue::Map(base_entries) = &mut base.value else {
            return; // the caller only recurses into mappings
        };
        let plain: BTreeSet<String> = entries
            .iter()
            .filter(|(k, _)| !is_append(&k.name))
            .map(|(k, _)| k.name.clone())
            .collect();
        let mut index: std::collections::HashMap<String, usize> = base_entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.name.clone(), i))
            .collect();
        let mut removed: BTreeSet<usize> = BTreeSet::new();
        for (key, node) in entries {
            if is_append(&key.name) {
                let name = key.name[..key.name.len() - 1].to_owned();
                let at = child(pointer, &name);
                if plain.contains(&name) {
                    self.problem(
                        key.pos,
                        &at,
                        &format!("both `{name}` and `{name}+` are set"),
                        &format!(
                            "keep `{name}:` to replace the list, or `{name}+:` to append to it"
                        ),
                    );
                    continue;
                }
                let existing = index.get(&name).copied();
                self.append(
                    base_entries,
                    existing,
                    &mut index,
                    Key { name, pos: key.pos },
                    node,
                    &at,
                );
                continue;
            }
            let at = child(pointer, &key.name);
            let existing = index.get(&key.name).copied();
            match (existing, node.value) {
                (Some(i), NodeValue::Null) => {
                    removed.insert(i);
                    index.remove(&key.name);
                    self.set_by_overlay(&at);
                    self.sources.origins.remove(&at);
                    self.sources.removed.insert(at, (self.file, key.pos));
                }
                (None, NodeValue::Null) => {
                    self.sources.removed.insert(at, (self.file, key.pos));
                }
                (Some(i), NodeValue::Map(children))
                    if matches!(base_entries[i].1.value, NodeValue::Map(_)) =>
                {
                    self.map(&mut base_entries[i].1, children, &at);
                }
                (Some(i), value) => {
                    base_entries[i] = (
                        key,
                        Node {
                            value,
                            pos: node.pos,
                        },
                    );
                    self.set_by_overlay(&at);
                }
                (None, value) => {
                    index.insert(key.name.clone(), base_entries.len());
                    base_entries.push((
                        key,
                        Node {
                            value,
                            pos: node.pos,
                        },
                    ));
                    self.set_by_overlay(&at);
                }
            }
        }
        if !removed.is_empty() {
            let mut i = 0;
            base_entries.retain(|_| {
                i += 1;
                !removed.contains(&(i - 1))
            });
        }
    }

    /// `name+: [items]`: appends `items` to the list at `at`, entry `existing` of `base_entries`.
    fn append(
        &mut self,
        base_entries: &mut Vec<(Key, Node)>,
        existing: Option<usize>,
        index: &mut std::collections::HashMap<String, usize>,
        key: Key,
        node: Node,
        at: &str,
    ) {
        let NodeValue::Seq(items) = node.value else {
            self.problem(
                node.pos,
                at,
                &format!("`{}+` appends a list, found {}", key.name, node.type_name()),
                &format!("write {}+: [item, ...]", key.name),
            );
            return;
        };
        match existing {
            Some(i) => {
                let existing = &mut base_entries[i].1;
                match &mut existing.value {
                    NodeValue::Seq(list) => {
                        for item in items {
                            let i = list.len();
                            list.push(item);
                            self.set_by_overlay(&format!("{at}/{i}"));
                        }
                    }
                    NodeValue::Null => {
                        *existing = Node {
                            value: NodeValue::Seq(items),
                            pos: node.pos,
                        };
                        self.set_by_overlay(at);
                    }
                    _ => {
                        let what = existing.type_name();
                        let base_at = existing.pos;
                        let base_file = self.sources.file_of(at).path.display().to_string();
                        self.problem(
                            key.pos,
                            at,
                            &format!(
                                "`{}+` appends to a list, but {base_file}:{}:{} sets {}",
                                key.name,
                                base_at.line,
                                base_at.col,
                                a(what)
                            ),
                            &format!("use `{}:` to replace the value", key.name),
                        );
                    }
                }
            }
            None => {
                index.insert(key.name.clone(), base_entries.len());
                base_entries.push((
                    key,
                    Node {
                        value: NodeValue::Seq(items),
                        pos: node.pos,
                    },
                ));
                self.set_by_overlay(at);
            }
        }
    }
}

fn a(type_name: &str) -> &'static str {
    match type_name {
        "object" => "a mapping",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        _ => "a value",
    }
}

/// `key+`: the append marker (a key of one `+` is an ordinary key).
fn is_append(name: &str) -> bool {
    name.len() > 1 && name.ends_with('+')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(base: &str, overlay: &str) -> Result<(Node, Sources), Vec<Diagnostic>> {
        let mut doc = yaml::parse_document(base).unwrap();
        let mut sources = Sources::single(Path::new("base.yaml"), base);
        sources
            .files
            .push(SourceFile::new(Path::new("env/dev.yaml"), overlay));
        let mut problems = Vec::new();
        let NodeValue::Map(entries) = yaml::parse_document(overlay).unwrap().value else {
            panic!("overlay is a mapping");
        };
        Merge {
            sources: &mut sources,
            file: 1,
            problems: &mut problems,
        }
        .map(&mut doc, entries, "");
        if problems.is_empty() {
            Ok((doc, sources))
        } else {
            Err(problems)
        }
    }

    #[test]
    fn maps_merge_deeply_and_lists_replace() {
        let (doc, sources) = merged(
            "a:\n  b: 1\n  c: 2\nl: [1, 2]\nm: {x: 1}\n",
            "a:\n  c: 3\n  d: 4\nl: [9]\nm: null\n",
        )
        .unwrap();
        assert_eq!(
            doc.to_json(),
            json!({"a": {"b": 1, "c": 3, "d": 4}, "l": [9]})
        );
        assert_eq!(sources.origin("/a"), 0);
        assert_eq!(sources.origin("/a/b"), 0);
        assert_eq!(sources.origin("/a/c"), 1);
        assert_eq!(sources.origin("/l/0"), 1);
        assert_eq!(doc.pointer("/a/c").unwrap().pos, Pos { line: 2, col: 6 });
        let (file, pos) = sources.removed("/m").unwrap();
        assert_eq!(
            (file.path.to_str().unwrap(), pos),
            ("env/dev.yaml", Pos { line: 5, col: 1 })
        );
    }

    #[test]
    fn a_plus_key_appends_to_the_list() {
        let (doc, sources) = merged("l: [a, b]\n", "l+: [c]\nn+: [d]\n").unwrap();
        assert_eq!(doc.to_json(), json!({"l": ["a", "b", "c"], "n": ["d"]}));
        assert_eq!(sources.origin("/l/1"), 0);
        assert_eq!(sources.origin("/l/2"), 1);
        assert_eq!(sources.origin("/n/0"), 1);
    }

    #[test]
    fn appending_to_a_mapping_is_an_error_in_the_overlay() {
        let e = merged("l: {a: 1}\n", "l+: [c]\n").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "env/dev.yaml:1:1: l: `l+` appends to a list, but base.yaml:1:4 sets a mapping\n  |\n1 | l+: [c]\n  | ^\n  = help: use `l:` to replace the value"
        );
        let e = merged("l: [a]\n", "l: [b]\nl+: [c]\n").unwrap_err();
        assert_eq!(e[0].message, "both `l` and `l+` are set");
    }

    #[test]
    fn environment_names_are_short_dns_labels() {
        for ok in ["dev", "prod", "eu-west-1", "a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Dev",
            "1dev",
            "dev-",
            "dev_1",
            "a-very-long-environment",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
