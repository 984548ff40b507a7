//! YAML in and out of mlplat.
//!
//! - [`parse_document`] / [`parse_documents`] load YAML 1.2 (core schema) into [`Node`] trees that
//!   keep the source position of every key and value, so errors can point at `file:line:col`, and
//!   that reject duplicate keys. Built on `saphyr-parser` events.
//! - [`to_yaml_string`] / [`to_yaml_documents`] write a `serde_json::Value` as deterministic
//!   block-style YAML that means the same in YAML 1.1 (go-yaml: kubectl, Helm, Flux) and YAML 1.2.

mod de;
mod emit;
mod load;

pub use de::{DeError, from_node};
pub use emit::{to_yaml_documents, to_yaml_string};
pub use load::{MAX_DEPTH, MAX_DOC_BYTES, MAX_MAP_ENTRIES, parse_document, parse_documents};

use serde_json::Value;

/// A position in the source text; line and column (in characters) are both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A loaded YAML value with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in source order (merged `<<` entries after the explicit ones); keys are unique.
    Map(Vec<(Key, Node)>),
}

/// A mapping key: the string form of a scalar key, and where the key starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum YamlError {
    #[error("{message}")]
    Syntax { pos: Pos, message: String },
    #[error("duplicate key {} (first defined at line {first_line})", quote(key))]
    DuplicateKey {
        key: String,
        pos: Pos,
        first_line: usize,
    },
    #[error("a mapping key must be a scalar, not a sequence or a mapping")]
    UnsupportedKey { pos: Pos },
    #[error("expected one YAML document, found more than one (separated by `---`)")]
    MultipleDocuments { pos: Pos },
    #[error("alias refers to an unknown anchor")]
    UnknownAlias { pos: Pos },
}

impl YamlError {
    /// Where in the source the error is.
    pub fn pos(&self) -> Pos {
        match self {
            Self::Syntax { pos, .. }
            | Self::DuplicateKey { pos, .. }
            | Self::UnsupportedKey { pos }
            | Self::MultipleDocuments { pos }
            | Self::UnknownAlias { pos } => *pos,
        }
    }
}

impl Node {
    /// The value as JSON. Non-finite floats, which JSON lacks, become the strings `.inf`, `-.inf`
    /// and `.nan`.
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| Value::String(float_string(*f)), Value::Number),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, node)| (key.name.clone(), node.to_json()))
                    .collect(),
            ),
        }
    }

    /// The node at an RFC 6901 JSON pointer (`""` is `self`, `"/a/0/b"`, `~0` is `~`, `~1` is `/`).
    pub fn pointer(&self, json_pointer: &str) -> Option<&Node> {
        if json_pointer.is_empty() {
            return Some(self);
        }
        json_pointer
            .strip_prefix('/')?
            .split('/')
            .try_fold(self, |node, token| node.child(token))
    }

    /// The position of `key` in the mapping at `json_pointer_to_map`.
    pub fn key_pos(&self, json_pointer_to_map: &str, key: &str) -> Option<Pos> {
        match &self.pointer(json_pointer_to_map)?.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(k, _)| k.pos),
            _ => None,
        }
    }

    /// The JSON Schema name of the value's type.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "boolean",
            NodeValue::Int(_) => "integer",
            NodeValue::Float(_) => "number",
            NodeValue::Str(_) => "string",
            NodeValue::Seq(_) => "array",
            NodeValue::Map(_) => "object",
        }
    }

    /// One step of a JSON pointer: `token` is still escaped.
    fn child(&self, token: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => {
                let name = unescape_pointer_token(token);
                entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v)
            }
            NodeValue::Seq(items) => {
                let canonical = token == "0" || !token.starts_with('0');
                if !canonical || token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                items.get(token.parse::<usize>().ok()?)
            }
            _ => None,
        }
    }
}

fn unescape_pointer_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

/// Text of the input quoted in a message: in backquotes, cut short when it is long.
pub fn quote(text: &str) -> String {
    format!("`{}`", shorten(text))
}

/// Text of the input as a message shows it: at most 64 characters, then `…`.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

/// A float as text: as JSON prints it when finite, else `.inf`, `-.inf` or `.nan`.
fn float_string(f: f64) -> String {
    match serde_json::Number::from_f64(f) {
        Some(n) => n.to_string(),
        None if f.is_nan() => ".nan".to_owned(),
        None if f > 0.0 => ".inf".to_owned(),
        None => "-.inf".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny xorshift64 generator, so the property tests need no extra crate.
    pub(super) struct Rng(u64);

    impl Rng {
        pub(super) fn new(seed: u64) -> Self {
            Self(seed | 1)
        }
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub(super) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// JSON equality that compares numbers as f64 (YAML does not keep `1.0` vs `1` apart the way
    /// serde_json does for very large integers).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((kx, x), (ky, y))| kx == ky && same(x, y))
            }
            _ => a == b,
        }
    }

    fn assert_round_trip(v: &Value) {
        let text = to_yaml_string(v);
        let back = parse_document(&text)
            .unwrap_or_else(|e| panic!("{e:?} at {:?} parsing:\n{text}", e.pos()))
            .to_json();
        assert!(same(v, &back), "{v:?}\nwrote:\n{text}\nread back: {back:?}");
    }

    const TRICKY_STRINGS: &[&str] = &[
        "",
        " ",
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "true",
        "True",
        "TRUE",
        "tRuE",
        "false",
        "FALSE",
        "null",
        "Null",
        "NULL",
        "~",
        "nUll",
        "0",
        "-0",
        "+1",
        "12",
        "012",
        "0x1f",
        "0X1F",
        "0o17",
        "0b101",
        "1_000",
        "1e3",
        "1E3",
        "1.",
        ".5",
        "-.5",
        "._5",
        "1.5e-3",
        "1:20",
        "190:20:30.15",
        ".inf",
        "-.inf",
        "+.INF",
        ".nan",
        ".NaN",
        "inf",
        "nan",
        "2024-01-01",
        "2024-01-01T10:00:00Z",
        "2001-12-14 21:59:43.10 -5",
        "1.2.3",
        "10Gi",
        "500m",
        "v1",
        "apps/v1",
        "héllo",
        "日本語",
        "emoji 🎉",
        "- x",
        "-",
        "--",
        "---",
        "...",
        "..",
        ".",
        "a: b",
        "a:",
        "a:b",
        "http://x/y",
        "#x",
        "a #b",
        "a#b",
        "@x",
        "`x",
        "*x",
        "&x",
        "!x",
        "%x",
        "{x}",
        "[x]",
        "x]",
        "|",
        ">",
        "'",
        "\"",
        "\\",
        "x\n",
        "x\n\n",
        "\n",
        "\n\n",
        "\nx",
        "x\ny",
        "x\n\ny\n",
        " lead",
        "trail ",
        "a\tb",
        "\t",
        "a\r\nb",
        "a \nb",
        "x\n y",
        "x\n\n\n",
        "<<",
        "=",
        "?",
        "? x",
        ": x",
        ",",
        "a,b",
        "(x)",
        "x=1",
        "\u{85}",
        "a\u{2028}b",
        "\u{feff}x",
        "\u{7f}",
        "\u{1}",
        "\0",
        "x\n\u{85}",
        "ключ: значение",
        "a  b",
        "  ",
        "# comment\nx",
        "x\n#y\n",
        "é\n",
    ];

    #[test]
    fn round_trips_tricky_strings_as_values_keys_and_items() {
        for s in TRICKY_STRINGS {
            assert_round_trip(&json!(s));
            assert_round_trip(&json!({ *s: s, "k": [s, [s], { *s: s }] }));
            assert_round_trip(&json!([s, { "a": s, *s: [[s]] }]));
        }
    }

    #[test]
    fn round_trips_tricky_structures() {
        let long_key = "k".repeat(1500);
        let values = [
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1.0),
            json!(-0.0),
            json!(1e300),
            json!(1.5e-300),
            json!(0.1),
            json!({}),
            json!([]),
            json!([[]]),
            json!([{}]),
            json!({ "a": {}, "b": [], "c": [[], {}, [[]], { "d": {} }] }),
            json!([[["deep"]], [[1, 2], [3]], [{ "a": [{ "b": [[{ "c": 1 }]] }] }]]),
            json!({ "script": "set -e\n\necho hi\n  indented\n\nend\n", "k": ["a\nb", "c\n\n"] }),
            json!({ long_key.clone(): { "x": 1 }, "list": [{ long_key.clone(): [1] }] }),
            json!({ long_key: "v" }),
        ];
        for v in &values {
            assert_round_trip(v);
        }
        let mut deep = json!("leaf\nblock\n");
        for i in 0..40 {
            deep = if i % 2 == 0 {
                json!([deep, 1])
            } else {
                json!({ "k": deep, "z": [] })
            };
        }
        assert_round_trip(&deep);
    }

    fn random_string(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &[
            "a", "b", "Z", "0", "1", "9", " ", "\n", ":", "#", "-", "_", ".", "/", "\"", "'", "\\",
            "\t", "é", "🎉", "yes", "no", "null", "~", "0x", "e", "|", ">", "&", "*", "!", "%",
            "@", "[", "]", "{", "}", ",", "?", "<<", "\u{85}", "\u{2028}", "\r", "=", "+",
        ];
        let len = rng.below(6);
        (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect()
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        let kinds = if depth == 0 { 6 } else { 8 };
        match rng.below(kinds) {
            0 => Value::Null,
            1 => json!(rng.below(2) == 0),
            2 => json!(rng.next() as i64 >> rng.below(64)),
            3 => {
                json!(f64::from_bits(rng.next() >> 2) * if rng.below(2) == 0 { 1.0 } else { -1.0 })
            }
            4 | 5 => json!(random_string(rng)),
            6 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(4))
                    .map(|_| (random_string(rng), random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn round_trips_random_values() {
        let mut rng = Rng::new(0x5EED_1234_ABCD_0001);
        for _ in 0..600 {
            let v = random_value(&mut rng, 4);
            assert_round_trip(&v);
        }
    }

    #[test]
    fn round_trips_multiple_documents() {
        let docs = [json!({ "a": 1 }), json!(null), json!(["x"]), json!("s\n")];
        let text = to_yaml_documents(&docs);
        let back: Vec<Value> = parse_documents(&text)
            .unwrap()
            .iter()
            .map(Node::to_json)
            .collect();
        assert_eq!(back, docs);
    }

    fn doc(src: &str) -> Node {
        parse_document(src).unwrap()
    }

    #[test]
    fn pointer_and_key_pos() {
        let n = doc("a:\n  b: 1\n  c: [x, {d/e: 2, t~: 3}]\nl:\n  - 7\n");
        assert_eq!(n.pointer("").unwrap().pos, Pos { line: 1, col: 1 });
        assert_eq!(n.pointer("/a").unwrap().pos, Pos { line: 2, col: 3 });
        assert_eq!(n.pointer("/a/b").unwrap().pos, Pos { line: 2, col: 6 });
        assert_eq!(n.pointer("/a/c/1/d~1e").unwrap().value, NodeValue::Int(2));
        assert_eq!(
            n.pointer("/a/c/1/t~0").unwrap().pos,
            Pos { line: 3, col: 23 }
        );
        assert_eq!(n.pointer("/l/0").unwrap().to_json(), json!(7));
        assert!(n.pointer("/l/00").is_none());
        assert!(n.pointer("/l/1").is_none());
        assert!(n.pointer("/l/-").is_none());
        assert!(n.pointer("/a/b/c").is_none());
        assert!(n.pointer("a").is_none());
        assert_eq!(n.key_pos("/a", "c"), Some(Pos { line: 3, col: 3 }));
        assert_eq!(n.key_pos("", "l"), Some(Pos { line: 4, col: 1 }));
        assert_eq!(n.key_pos("/a/c/1", "d/e"), Some(Pos { line: 3, col: 11 }));
        assert_eq!(n.key_pos("/a", "zz"), None);
        assert_eq!(n.key_pos("/l", "0"), None);
    }

    #[test]
    fn type_names_and_json() {
        let n = doc("[~, true, 1, 1.5, x, [], {}, .inf, -.inf, .nan]");
        let names: Vec<_> = match &n.value {
            NodeValue::Seq(items) => items.iter().map(Node::type_name).collect(),
            _ => unreachable!(),
        };
        assert_eq!(
            names,
            [
                "null", "boolean", "integer", "number", "string", "array", "object", "number",
                "number", "number"
            ]
        );
        assert_eq!(
            n.to_json(),
            json!([null, true, 1, 1.5, "x", [], {}, ".inf", "-.inf", ".nan"])
        );
    }

    #[test]
    fn error_pos_and_messages() {
        let e = parse_document("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos(), Pos { line: 2, col: 1 });
        assert_eq!(e.to_string(), "duplicate key `a` (first defined at line 1)");
        let e = parse_document("a: \"x\n").unwrap_err();
        assert!(matches!(e, YamlError::Syntax { .. }), "{e:?}");
        assert!(!e.to_string().contains("line"), "{e}");
    }
}
