//! Loading: `saphyr-parser` events → [`Node`] trees with positions, core-schema scalars, resolved
//! aliases and merge keys, and no duplicate keys.
//!
//! Bounded work on any input: nesting is at most [`MAX_DEPTH`] levels, a mapping holds at most
//! [`MAX_MAP_ENTRIES`] keys, and a document may not grow past [`MAX_DOC_BYTES`] once loaded —
//! counted as [`NODE_COST`] bytes per node plus the text of every scalar, each alias expansion
//! and each anchored copy included ("billion laughs" by count or by one huge scalar alike).
//! Duplicate keys are found in linear time.

use std::collections::HashMap;
use std::mem;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, Tag};

use super::{Key, Node, NodeValue, Pos, YamlError, float_string};

/// Deeper nesting is rejected: the tree is walked recursively afterwards.
pub const MAX_DEPTH: usize = 256;
/// The most keys one mapping may hold (after merge keys).
pub const MAX_MAP_ENTRIES: usize = 10_000;
/// What one document may weigh once loaded, aliases expanded: about as much memory again.
pub const MAX_DOC_BYTES: usize = 8 * 1024 * 1024;
/// What a node weighs besides its text.
pub const NODE_COST: usize = 64;
/// A mapping's keys are indexed (for duplicates) from this many on; fewer are scanned.
const INDEX_FROM: usize = 16;
/// saphyr-parser's message for an alias whose anchor it has not seen.
const UNKNOWN_ANCHOR: &str = "while parsing node, found unknown anchor";

/// Loads a stream that must hold at most one document; an empty stream is `null` at 1:1.
pub fn parse_document(src: &str) -> Result<Node, YamlError> {
    let mut docs = load(src, 1)?;
    Ok(docs.pop().unwrap_or(Node {
        value: NodeValue::Null,
        pos: Pos { line: 1, col: 1 },
    }))
}

/// Loads every document of a `---`-separated stream, skipping empty ones.
pub fn parse_documents(src: &str) -> Result<Vec<Node>, YamlError> {
    load(src, usize::MAX)
}

fn load(src: &str, max_docs: usize) -> Result<Vec<Node>, YamlError> {
    let mut loader = Loader::new(src);
    let mut docs = Vec::new();
    for event in Parser::new_from_str(src) {
        let (event, span) = event.map_err(scan_error)?;
        if let Some((start, doc)) = loader.event(event, span)? {
            if docs.len() == max_docs {
                return Err(YamlError::MultipleDocuments { pos: start });
            }
            docs.push(doc);
        }
    }
    Ok(docs)
}

fn scan_error(e: ScanError) -> YamlError {
    let pos = to_pos(*e.marker());
    if e.info() == UNKNOWN_ANCHOR {
        YamlError::UnknownAlias { pos }
    } else {
        YamlError::Syntax {
            pos,
            message: e.info().to_owned(),
        }
    }
}

/// saphyr lines are 1-based, its columns 0-based.
fn to_pos(m: Marker) -> Pos {
    Pos {
        line: m.line().max(1),
        col: m.col() + 1,
    }
}

fn too_large(pos: Pos, alias: bool) -> YamlError {
    let mb = MAX_DOC_BYTES / (1024 * 1024);
    YamlError::Syntax {
        pos,
        message: if alias {
            format!("aliases expand the document past {mb} MiB once loaded")
        } else {
            format!("the document is larger than {mb} MiB once loaded")
        },
    }
}

/// How a finished node may matter to its parent.
#[derive(PartialEq)]
enum Role {
    Other,
    /// An untagged, unanchored empty plain scalar: a document of only this is skipped.
    Empty,
    /// An untagged plain `<<`: a merge key when it is in key position.
    MergeKey,
}

struct Loader<'a> {
    src: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Collections being built, innermost last.
    stack: Vec<Frame>,
    /// Anchor id → anchored node and its weight.
    anchors: HashMap<usize, (Node, usize)>,
    /// What the document weighs so far (see [`MAX_DOC_BYTES`]).
    weight: usize,
    doc_start: Pos,
    root: Option<(Node, Role)>,
}

struct Frame {
    pos: Pos,
    anchor: usize,
    /// A flow collection (`[...]`, `{...}`) or inside one.
    flow: bool,
    /// The weight of the collection: its own and its children's.
    weight: usize,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map(MapFrame),
}

struct MapFrame {
    entries: Vec<(Key, Node)>,
    /// Key name → index in `entries`, once there are [`INDEX_FROM`] of them.
    index: Option<HashMap<String, usize>>,
    next: Slot,
    /// Where the `<<` key is, if any.
    merge_key: Option<Pos>,
    merges: Vec<Node>,
}

/// What the next node of a mapping is.
enum Slot {
    Key,
    Value(Key),
    MergeValue,
}

impl<'a> Loader<'a> {
    fn new(src: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            src,
            line_starts,
            stack: Vec::new(),
            anchors: HashMap::new(),
            weight: 0,
            doc_start: Pos::default(),
            root: None,
        }
    }

    /// Adds `bytes` to the document's weight; an error at `pos` past the limit.
    fn weigh(&mut self, bytes: usize, pos: Pos, alias: bool) -> Result<(), YamlError> {
        self.weight = self.weight.saturating_add(bytes);
        if self.weight > MAX_DOC_BYTES {
            return Err(too_large(pos, alias));
        }
        Ok(())
    }

    /// Handles one event; returns a finished, non-empty document with its start position.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<Option<(Pos, Node)>, YamlError> {
        let pos = to_pos(span.start);
        match event {
            Event::DocumentStart(_) => {
                self.anchors.clear();
                self.weight = 0;
                self.doc_start = pos;
            }
            Event::DocumentEnd => {
                return Ok(match self.root.take() {
                    Some((node, role)) if role != Role::Empty => Some((self.doc_start, node)),
                    _ => None,
                });
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.check_indentation(span.start)?;
                let weight = NODE_COST + text.len();
                self.weigh(weight, pos, false)?;
                let value = resolve_scalar(&text, style, tag.as_deref(), pos)?;
                let untagged_plain = style == ScalarStyle::Plain && tag.is_none();
                let role = match &*text {
                    "" if untagged_plain && anchor == 0 => Role::Empty,
                    "<<" if untagged_plain => Role::MergeKey,
                    _ => Role::Other,
                };
                self.finish(anchor, Node { value, pos }, weight, role)?;
            }
            Event::Alias(id) => {
                self.check_indentation(span.start)?;
                let (node, weight) = self.alias(id, pos)?;
                self.add(node, weight, Role::Other)?;
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), "seq", pos)?;
                self.open(span, anchor, FrameKind::Seq(Vec::new()))?;
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), "map", pos)?;
                let map = MapFrame {
                    entries: Vec::new(),
                    index: None,
                    next: Slot::Key,
                    merge_key: None,
                    merges: Vec::new(),
                };
                self.open(span, anchor, FrameKind::Map(map))?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(None)
    }

    fn open(&mut self, span: Span, anchor: usize, kind: FrameKind) -> Result<(), YamlError> {
        let pos = to_pos(span.start);
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError::Syntax {
                pos,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.weigh(NODE_COST, pos, false)?;
        // A flow collection's span ends just after its `[` or `{`; a block one's is empty or
        // ends at its first entry.
        let flow = self.in_flow()
            || (span.end.col() > 0
                && matches!(
                    self.line(span.end.line()).chars().nth(span.end.col() - 1),
                    Some('[' | '{')
                ));
        if !flow {
            self.check_indentation(span.start)?;
        }
        self.stack.push(Frame {
            pos,
            anchor,
            flow,
            weight: NODE_COST,
            kind,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let node = match frame.kind {
            FrameKind::Seq(items) => Node {
                value: NodeValue::Seq(items),
                pos: frame.pos,
            },
            FrameKind::Map(map) => map.finish(frame.pos)?,
        };
        self.finish(frame.anchor, node, frame.weight, Role::Other)
    }

    fn in_flow(&self) -> bool {
        self.stack.last().is_some_and(|frame| frame.flow)
    }

    /// The text of a 1-based line, to its end.
    fn line(&self, line: usize) -> &'a str {
        let start = line
            .checked_sub(1)
            .and_then(|i| self.line_starts.get(i))
            .map_or(self.src.len(), |&start| start);
        &self.src[start..]
    }

    /// Rejects a tab in the indentation before a node that starts a line in block context, as
    /// YAML does; saphyr lets some through (`\ta: 1`, `a:\n \tb: 1`). Flow collections may follow
    /// tabs.
    fn check_indentation(&self, start: Marker) -> Result<(), YamlError> {
        if self.in_flow() {
            return Ok(());
        }
        let indent = self.line(start.line()).chars().take(start.col());
        if !indent.clone().all(|c| c == ' ' || c == '\t') {
            return Ok(());
        }
        match indent.clone().position(|c| c == '\t') {
            Some(tab) => Err(YamlError::Syntax {
                pos: Pos {
                    line: start.line(),
                    col: tab + 1,
                },
                message: "tabs are not allowed in indentation".to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Records a completed node (of `weight`) under its anchor (0: none), then adds it to its
    /// parent. The anchored copy weighs as much again.
    fn finish(
        &mut self,
        anchor: usize,
        node: Node,
        weight: usize,
        role: Role,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.weigh(weight, node.pos, true)?;
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        self.add(node, weight, role)
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(Node, usize), YamlError> {
        let weight = self
            .anchors
            .get(&id)
            .map(|(_, w)| *w)
            .ok_or(YamlError::UnknownAlias { pos })?;
        // Weighed before the copy is made: a huge expansion is refused, not allocated.
        self.weigh(weight, pos, true)?;
        let (node, _) = &self.anchors[&id];
        Ok((
            Node {
                value: node.value.clone(),
                pos,
            },
            weight,
        ))
    }

    fn add(&mut self, node: Node, weight: usize, role: Role) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => self.root = Some((node, role)),
            Some(frame) => {
                frame.weight = frame.weight.saturating_add(weight);
                match &mut frame.kind {
                    FrameKind::Seq(items) => items.push(node),
                    FrameKind::Map(map) => map.add(node, role == Role::MergeKey)?,
                }
            }
        }
        Ok(())
    }
}

impl MapFrame {
    fn find(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.entries.iter().position(|(k, _)| k.name == name),
        }
    }

    fn push(&mut self, key: Key, node: Node) -> Result<(), YamlError> {
        if self.entries.len() >= MAX_MAP_ENTRIES {
            return Err(YamlError::Syntax {
                pos: key.pos,
                message: format!("a mapping of more than {MAX_MAP_ENTRIES} keys"),
            });
        }
        match &mut self.index {
            Some(index) => {
                index.insert(key.name.clone(), self.entries.len());
            }
            None if self.entries.len() + 1 >= INDEX_FROM => {
                let mut index: HashMap<String, usize> = self
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.name.clone(), i))
                    .collect();
                index.insert(key.name.clone(), self.entries.len());
                self.index = Some(index);
            }
            None => {}
        }
        self.entries.push((key, node));
        Ok(())
    }

    fn add(&mut self, node: Node, merge_key: bool) -> Result<(), YamlError> {
        match mem::replace(&mut self.next, Slot::Key) {
            Slot::Value(key) => self.push(key, node)?,
            Slot::MergeValue => self.merges.push(node),
            Slot::Key if merge_key => {
                if let Some(first) = self.merge_key {
                    return Err(duplicate("<<".to_owned(), node.pos, first));
                }
                self.merge_key = Some(node.pos);
                self.next = Slot::MergeValue;
            }
            Slot::Key => {
                let name = key_name(node.value, node.pos)?;
                if let Some(i) = self.find(&name) {
                    return Err(duplicate(name, node.pos, self.entries[i].0.pos));
                }
                // A key that is not yet an entry (its value follows) but was just named twice.
                self.next = Slot::Value(Key {
                    name,
                    pos: node.pos,
                });
            }
        }
        Ok(())
    }

    /// The mapping, with merged entries appended where no explicit (or earlier merged) key exists.
    fn finish(mut self, pos: Pos) -> Result<Node, YamlError> {
        for source in mem::take(&mut self.merges) {
            match source.value {
                NodeValue::Map(entries) => self.merge(entries)?,
                NodeValue::Seq(items) => {
                    for item in items {
                        match item.value {
                            NodeValue::Map(entries) => self.merge(entries)?,
                            _ => return Err(bad_merge(item.pos)),
                        }
                    }
                }
                _ => return Err(bad_merge(source.pos)),
            }
        }
        Ok(Node {
            value: NodeValue::Map(self.entries),
            pos,
        })
    }

    fn merge(&mut self, entries: Vec<(Key, Node)>) -> Result<(), YamlError> {
        for (key, node) in entries {
            if self.find(&key.name).is_none() {
                self.push(key, node)?;
            }
        }
        Ok(())
    }
}

fn duplicate(key: String, pos: Pos, first: Pos) -> YamlError {
    YamlError::DuplicateKey {
        key,
        pos,
        first_line: first.line,
    }
}

fn bad_merge(pos: Pos) -> YamlError {
    YamlError::Syntax {
        pos,
        message: "the merge key `<<` takes a mapping or a sequence of mappings".to_owned(),
    }
}

/// The string form of a scalar key: `1` → "1", `true` → "true", `~` → "null".
fn key_name(value: NodeValue, pos: Pos) -> Result<String, YamlError> {
    Ok(match value {
        NodeValue::Str(s) => s,
        NodeValue::Null => "null".to_owned(),
        NodeValue::Bool(b) => b.to_string(),
        NodeValue::Int(i) => i.to_string(),
        NodeValue::Float(f) => float_string(f),
        NodeValue::Seq(_) | NodeValue::Map(_) => return Err(YamlError::UnsupportedKey { pos }),
    })
}

/// A tag as written: `!!str`, `!custom`.
fn tag_text(tag: &Tag) -> String {
    if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        tag.to_string()
    }
}

fn unknown_tag(tag: &Tag, pos: Pos) -> YamlError {
    YamlError::Syntax {
        pos,
        message: format!(
            "unknown tag `{}`: mlplat reads plain YAML, whose only tags are !!str, !!int, !!float, !!bool, !!null, !!seq and !!map",
            super::shorten(&tag_text(tag))
        ),
    }
}

/// A collection may carry its own core tag (`!!seq`, `!!map`) and no other.
fn check_collection_tag(tag: Option<&Tag>, kind: &str, pos: Pos) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) if t.is_yaml_core_schema() && t.suffix == kind => Ok(()),
        Some(t) => Err(unknown_tag(t, pos)),
    }
}

/// Resolves a scalar by its core-schema tag (`!!str`, `!!int`, ...) if it has one, else by the
/// core schema if it is plain; anything else is a string. Any other tag is an error.
fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    pos: Pos,
) -> Result<NodeValue, YamlError> {
    let core_tag = match tag {
        None => None,
        // `!` alone: the non-specific tag, a string.
        Some(t)
            if (t.handle == "!" && t.suffix.is_empty())
                || (t.handle.is_empty() && t.suffix == "!") =>
        {
            Some("str")
        }
        Some(t)
            if t.is_yaml_core_schema()
                && matches!(t.suffix.as_str(), "str" | "null" | "bool" | "int" | "float") =>
        {
            Some(t.suffix.as_str())
        }
        Some(t) => return Err(unknown_tag(t, pos)),
    };
    let value = match core_tag {
        Some("str") => Some(NodeValue::Str(text.to_owned())),
        Some("null") => is_null(text).then_some(NodeValue::Null),
        Some("bool") => resolve_bool(text).map(NodeValue::Bool),
        Some("int") => resolve_int(text).map(NodeValue::Int),
        Some(_) => resolve_float(text)
            .or_else(|| resolve_int(text).map(|i| i as f64))
            .map(NodeValue::Float),
        None if style == ScalarStyle::Plain => Some(resolve_plain(text)),
        None => Some(NodeValue::Str(text.to_owned())),
    };
    value.ok_or_else(|| YamlError::Syntax {
        pos,
        message: format!(
            "{} is not a valid !!{}",
            super::quote(text),
            core_tag.unwrap_or_default()
        ),
    })
}

/// The YAML 1.2 core schema for an untagged plain scalar.
fn resolve_plain(text: &str) -> NodeValue {
    if is_null(text) {
        NodeValue::Null
    } else if let Some(b) = resolve_bool(text) {
        NodeValue::Bool(b)
    } else if let Some(i) = resolve_int(text) {
        NodeValue::Int(i)
    } else if let Some(f) = resolve_float(text) {
        // Includes decimal integers too large for i64.
        NodeValue::Float(f)
    } else {
        NodeValue::Str(text.to_owned())
    }
}

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn resolve_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`, if it fits in an i64.
fn resolve_int(s: &str) -> Option<i64> {
    let all_digits =
        |digits: &str, radix| !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    if let Some(octal) = s.strip_prefix("0o") {
        all_digits(octal, 8)
            .then(|| i64::from_str_radix(octal, 8).ok())
            .flatten()
    } else if let Some(hex) = s.strip_prefix("0x") {
        all_digits(hex, 16)
            .then(|| i64::from_str_radix(hex, 16).ok())
            .flatten()
    } else {
        let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
        all_digits(unsigned, 10).then(|| s.parse().ok()).flatten()
    }
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `[-+]?\.(inf|Inf|INF)`, `\.(nan|NaN|NAN)`.
fn resolve_float(s: &str) -> Option<f64> {
    if matches!(s, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if is_decimal_float(unsigned) {
        s.parse().ok()
    } else {
        None
    }
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_decimal_float(s: &str) -> bool {
    let b = s.as_bytes();
    let digits_from = |i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let int_digits = digits_from(0);
    let mut i = int_digits;
    if b.get(i) == Some(&b'.') {
        let frac_digits = digits_from(i + 1);
        if int_digits == 0 && frac_digits == 0 {
            return false;
        }
        i += 1 + frac_digits;
    } else if int_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp_digits = digits_from(i);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::Rng;
    use super::*;
    use serde_json::json;

    fn load_json(src: &str) -> serde_json::Value {
        parse_document(src)
            .unwrap_or_else(|e| panic!("{e:?} for {src:?}"))
            .to_json()
    }

    fn pos(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }

    #[test]
    fn resolves_plain_scalars_by_the_core_schema() {
        let cases: &[(&str, serde_json::Value)] = &[
            ("~", json!(null)),
            ("null", json!(null)),
            ("Null", json!(null)),
            ("NULL", json!(null)),
            ("nULL", json!("nULL")),
            ("true", json!(true)),
            ("True", json!(true)),
            ("FALSE", json!(false)),
            ("yes", json!("yes")),
            ("on", json!("on")),
            ("y", json!("y")),
            ("0", json!(0)),
            ("-17", json!(-17)),
            ("+17", json!(17)),
            ("012", json!(12)),
            ("0o17", json!(15)),
            ("0x1F", json!(31)),
            ("0x", json!("0x")),
            ("0o8", json!("0o8")),
            ("-0x1", json!("-0x1")),
            ("0b101", json!("0b101")),
            ("1_000", json!("1_000")),
            ("9223372036854775807", json!(i64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("9223372036854775808", json!(9_223_372_036_854_775_808.0)),
            ("0x10000000000000000", json!("0x10000000000000000")),
            ("1.5", json!(1.5)),
            ("-1.", json!(-1.0)),
            (".5", json!(0.5)),
            ("+.5e2", json!(50.0)),
            ("1e3", json!(1000.0)),
            ("1E-3", json!(0.001)),
            ("1.e5", json!(100000.0)),
            ("1e", json!("1e")),
            (".", json!(".")),
            (".e1", json!(".e1")),
            ("1.2.3", json!("1.2.3")),
            (".inf", json!(".inf")),
            ("-.Inf", json!("-.inf")),
            ("+.INF", json!(".inf")),
            (".NaN", json!(".nan")),
            ("-.nan", json!("-.nan")),
            ("2024-01-01", json!("2024-01-01")),
            ("1:20", json!("1:20")),
            ("hello world", json!("hello world")),
        ];
        for (src, want) in cases {
            assert_eq!(&load_json(src), want, "{src}");
            assert_eq!(load_json(&format!("k: {src}"))["k"], *want, "k: {src}");
        }
        assert_eq!(load_json(".inf"), json!(".inf"));
        assert!(matches!(parse_document(".nan").unwrap().value, NodeValue::Float(f) if f.is_nan()));
        assert_eq!(parse_document("").unwrap().value, NodeValue::Null);
        assert_eq!(
            parse_document("k:").unwrap().to_json(),
            json!({ "k": null })
        );
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        let src = "a: '1'\nb: \"true\"\nc: |\n  null\nd: >-\n  1\n  2\ne: ''\n";
        assert_eq!(
            load_json(src),
            json!({ "a": "1", "b": "true", "c": "null\n", "d": "1 2", "e": "" })
        );
    }

    #[test]
    fn honours_core_tags_and_refuses_others() {
        let src = "a: !!str 1\nb: !!int \"0x10\"\nc: !!float 2\nd: !!bool 'true'\ne: !!null ''\n\
                   f: !!str\ng: ! 5\ni: !!map {x: 1}\nj: !!float '-.inf'\nk: !!seq [1]\n";
        assert_eq!(
            load_json(src),
            json!({ "a": "1", "b": 16, "c": 2.0, "d": true, "e": null, "f": "", "g": "5",
                    "i": { "x": 1 }, "j": "-.inf", "k": [1] })
        );
        for bad in [
            "!!int abc",
            "!!bool yes",
            "!!null 0",
            "!!float x",
            "!!int 99999999999999999999",
            "!custom main",
            "!custom '5'",
            "!!binary aGk=",
            "!!map x",
            "!custom {a: 1}",
            "!!seq {a: 1}",
            "!<tag:example.com,2000:x> 1",
        ] {
            let e = parse_document(&format!("k: {bad}")).unwrap_err();
            assert!(
                matches!(
                    e,
                    YamlError::Syntax {
                        pos: Pos { line: 1, col: 4 },
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
        let e = parse_document("branch: !custom main\n").unwrap_err();
        assert!(e.to_string().starts_with("unknown tag `!custom`"), "{e}");
    }

    #[test]
    fn keys_are_strings() {
        let src = "1: a\ntrue: b\n~: c\n1.5: d\n'x': e\n0x10: f\n";
        assert_eq!(
            load_json(src),
            json!({ "1": "a", "true": "b", "null": "c", "1.5": "d", "x": "e", "16": "f" })
        );
        for src in [
            "[a]: 1",
            "{a: 1}: 2",
            "? [a]\n: 1",
            "? {a: 1}\n: 1",
            "{[a]: 1}",
            "x: &a [1]\n*a : 2",
        ] {
            let e = parse_document(src).unwrap_err();
            assert!(
                matches!(e, YamlError::UnsupportedKey { .. }),
                "{src}: {e:?}"
            );
        }
        let e = parse_document("? [a]\n: 1").unwrap_err();
        assert_eq!(e.pos(), pos(1, 3));
    }

    #[test]
    fn rejects_duplicate_keys() {
        let cases = [
            ("a: 1\nb: 2\na: 3\n", "a", pos(3, 1), 1),
            ("x:\n  k: 1\n  'k': 2\n", "k", pos(3, 3), 2),
            ("{a: 1, b: 2, b: 3}", "b", pos(1, 14), 1),
            ("1: a\n'1': b\n", "1", pos(2, 1), 1),
            ("<<: {a: 1}\n<<: {b: 1}\n", "<<", pos(2, 1), 1),
            ("- a: 1\n  c: 2\n  a: 3\n", "a", pos(3, 3), 1),
        ];
        for (src, key, at, first_line) in cases {
            assert_eq!(
                parse_document(src),
                Err(YamlError::DuplicateKey {
                    key: key.to_owned(),
                    pos: at,
                    first_line
                }),
                "{src}"
            );
        }
        // The same key in different mappings is fine.
        assert_eq!(
            load_json("a: {k: 1}\nb: {k: 2}\n"),
            json!({ "a": { "k": 1 }, "b": { "k": 2 } })
        );
    }

    #[test]
    fn resolves_anchors_aliases_and_merge_keys() {
        let src = "base: &base\n  a: 1\n  b: 2\nother: &o {c: 3}\n\
                   x:\n  <<: *base\n  b: 20\ny:\n  b: 5\n  <<: [*o, *base]\n\
                   z: *base\ns: &s hi\nt: *s\nq: '<<'\nr: {'<<': 1}\n";
        let n = parse_document(src).unwrap();
        assert_eq!(
            n.to_json(),
            json!({
                "base": { "a": 1, "b": 2 },
                "other": { "c": 3 },
                "x": { "a": 1, "b": 20 },
                "y": { "a": 1, "b": 5, "c": 3 },
                "z": { "a": 1, "b": 2 },
                "s": "hi",
                "t": "hi",
                "q": "<<",
                "r": { "<<": 1 },
            })
        );
        assert_eq!(n.pointer("/z").unwrap().pos, pos(11, 4));
        assert_eq!(n.pointer("/z/a").unwrap().pos, pos(2, 6));
        assert_eq!(n.pointer("/t").unwrap().pos, pos(13, 4));
        for src in ["<<: 1", "<<: [1]", "a: &a 1\nb:\n  <<: *a\n"] {
            let e = parse_document(src).unwrap_err();
            assert!(matches!(e, YamlError::Syntax { .. }), "{src}: {e:?}");
        }
    }

    #[test]
    fn rejects_unknown_aliases() {
        for (src, at) in [
            ("a: *nope\n", pos(1, 4)),
            ("a: &x\n  b: *x\n", pos(2, 6)),
            ("a: &x 1\n---\nb: *x\n", pos(3, 4)),
        ] {
            assert_eq!(
                parse_documents(src),
                Err(YamlError::UnknownAlias { pos: at }),
                "{src}"
            );
        }
    }

    #[test]
    fn limits_alias_expansion() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse_document(&src).unwrap_err();
        assert!(e.to_string().contains("aliases expand"), "{e}");
    }

    #[test]
    fn limits_nesting() {
        assert!(parse_document(&format!("{}x", "- ".repeat(MAX_DEPTH))).is_ok());
        let e = parse_document(&format!("{}x", "- ".repeat(MAX_DEPTH + 1))).unwrap_err();
        assert_eq!(e.pos(), pos(1, 2 * MAX_DEPTH + 1));
        // saphyr-parser stops flow nesting at 255 levels itself.
        let flow = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert!(matches!(
            parse_document(&flow),
            Err(YamlError::Syntax { .. })
        ));
    }

    #[test]
    fn records_positions() {
        let src = "# comment\nkind: Deployment\nspec:\n  replicas: 3\n  containers:\n  - name: app\n    \
                   args: [\"-v\", 'x']\n  empty:\n  lit: |\n    text\n  é: ü\n";
        let n = parse_document(src).unwrap();
        let at = |p: &str| n.pointer(p).unwrap().pos;
        assert_eq!(at(""), pos(2, 1));
        assert_eq!(at("/kind"), pos(2, 7));
        assert_eq!(at("/spec"), pos(4, 3));
        assert_eq!(at("/spec/replicas"), pos(4, 13));
        assert_eq!(at("/spec/containers/0"), pos(6, 5));
        assert_eq!(at("/spec/containers/0/name"), pos(6, 11));
        assert_eq!(at("/spec/containers/0/args"), pos(7, 11));
        assert_eq!(at("/spec/containers/0/args/1"), pos(7, 18));
        assert_eq!(at("/spec/lit"), pos(10, 5));
        assert_eq!(at("/spec/é"), pos(11, 6));
        assert_eq!(n.key_pos("/spec", "containers"), Some(pos(5, 3)));
        assert_eq!(n.key_pos("/spec/containers/0", "args"), Some(pos(7, 5)));
        assert_eq!(n.key_pos("/spec", "é"), Some(pos(11, 3)));
        let seq = parse_document("- - a\n  - b\n- [c]\n").unwrap();
        assert_eq!(seq.pos, pos(1, 1));
        assert_eq!(seq.pointer("/0").unwrap().pos, pos(1, 3));
        assert_eq!(seq.pointer("/0/1").unwrap().pos, pos(2, 5));
        assert_eq!(seq.pointer("/1").unwrap().pos, pos(3, 3));
    }

    #[test]
    fn documents() {
        let src = "---\n---\na: 1\n---\n# only a comment\n---\n~\n---\n'' \n...\n---\n";
        let docs: Vec<_> = parse_documents(src)
            .unwrap()
            .iter()
            .map(Node::to_json)
            .collect();
        assert_eq!(docs, [json!({ "a": 1 }), json!(null), json!("")]);
        assert_eq!(parse_documents("").unwrap(), []);
        assert_eq!(parse_documents("# nothing\n").unwrap(), []);
        assert_eq!(
            parse_document("a: 1\n---\nb: 2\n"),
            Err(YamlError::MultipleDocuments { pos: pos(2, 1) })
        );
        assert_eq!(load_json("---\na: 1\n---\n"), json!({ "a": 1 }));
        assert_eq!(
            parse_document("# nothing\n"),
            Ok(Node {
                value: NodeValue::Null,
                pos: pos(1, 1)
            })
        );
    }

    #[test]
    fn reports_syntax_errors_with_positions() {
        let cases = [
            ("a:\n\tb: 1\n", pos(2, 2)),
            ("a: \"abc\n", pos(1, 4)),
            ("a: 1\n  b: 2\n", pos(2, 4)),
            ("a:\n  - x\n  y: 1\n", pos(3, 3)),
        ];
        for (src, at) in cases {
            match parse_document(src) {
                Err(YamlError::Syntax { pos, message }) => {
                    assert_eq!(pos, at, "{src:?}: {message}");
                    assert!(
                        !message.is_empty() && !message.contains(" line "),
                        "{message}"
                    );
                }
                other => panic!("{src:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_tabs_in_block_indentation() {
        for (src, at) in [
            ("\ta: 1\n", pos(1, 1)),
            ("a:\n \tb: 1\n", pos(2, 2)),
            ("a:\n\t- x\n", pos(2, 2)), // saphyr's own error, just after the tab
            ("a:\n  b: 1\n\tc: 2\n", pos(2, 6)),
            ("- a\n\t- b\n", pos(1, 3)),
            ("a:\n\t[x]\n", pos(2, 2)),
        ] {
            match parse_document(src) {
                Err(YamlError::Syntax { pos, .. }) => assert_eq!(pos, at, "{src:?}"),
                other => panic!("{src:?}: {other:?}"),
            }
        }
        let allowed = [
            ("- \ta\n", json!(["a"])),
            ("\t[a]\n", json!(["a"])),
            ("a: \tb\t# comment\n", json!({ "a": "b" })),
            (
                "run: |\n  \techo hi\n  \tdone\n",
                json!({ "run": "\techo hi\n\tdone\n" }),
            ),
        ];
        for (src, want) in allowed {
            assert_eq!(load_json(src), want, "{src:?}");
        }
    }

    const MALFORMED: &[&str] = &[
        "a:\n\tb: 1\n",
        "\ta: 1\n",
        "a:\n \tb: 1\n",
        "a: \"unclosed\n",
        "a: 'unclosed\n",
        "a: 1\n  b: 2\n",
        "a:\n  - x\n  y: 1\n",
        "[a, b",
        "{a: 1",
        "]",
        "}",
        "a: b: c\n",
        "a: [1, 2]]\n",
        "key: \"\\q\"\n",
        "- a\nb: 1\n",
        "a: @x\n",
        "a: `x\n",
        "%YAML 1.2\n%YAML 1.2\n---\na\n",
        "%FOO\na: 1\n",
        "a: 1\n%YAML 1.2\n---\n",
        "a: 1\na: 2\n",
        "a: *missing\n",
        "[a]: 1\n",
        "a: !!int x\n",
        "<<: 3\n",
        "a: |\n  x\n y\n",
        "{a: 1, b}: c\n",
        "a:\n  b\n  c: d\n",
        "\"a\" \"b\"\n",
        "a: 1\n- b\n",
        "a: &x [1, *x]\n",
        "x: 1\n---\ny: 2\n",
        "a: {b: [c: d}\n",
    ];

    #[test]
    fn malformed_inputs_are_errors() {
        for src in MALFORMED {
            assert!(parse_document(src).is_err(), "accepted {src:?}");
        }
    }

    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[u8] = b"ab1:- \n\t[]{},#&*!|>'\"?%@`.~\\<";
        let mut rng = Rng::new(0xF00D_CAFE_0123_4567);
        for case in 0..2000 {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if case % 2 == 0 {
                        ALPHABET[rng.below(ALPHABET.len())]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect();
            let src = String::from_utf8_lossy(&bytes);
            let _ = parse_documents(&src);
            let _ = parse_document(&src);
        }
    }
}
