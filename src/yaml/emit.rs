//! Emitting: `serde_json::Value` → deterministic block-style YAML that reads the same in YAML 1.1
//! (go-yaml) and YAML 1.2: anything a 1.1 or 1.2 reader could take for something other than a
//! string is double-quoted.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// YAML limits implicit keys to 1024 characters; longer ones are written as `? key`.
const MAX_IMPLICIT_KEY_CHARS: usize = 1000;

/// One YAML document, ending with exactly one newline.
pub fn to_yaml_string(v: &Value) -> String {
    let mut out = String::new();
    write_document(&mut out, v);
    out
}

/// Several documents, separated by `---` lines.
pub fn to_yaml_documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_document(&mut out, doc);
    }
    out
}

fn write_document(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) if !map.is_empty() => write_map(out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(out, items, 0, false),
        _ => {
            write_inline(out, v);
            out.push('\n');
        }
    }
}

/// Writes the entries at `indent`; with `continues_line` the first one goes on the current line
/// (after a `- `).
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, continues_line: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !continues_line {
            push_indent(out, indent);
        }
        write_key(out, key, indent);
        match value {
            Value::Object(map) if !map.is_empty() => {
                out.push('\n');
                write_map(out, map, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent + 2, false);
            }
            _ => write_scalar(out, value, indent + 2),
        }
    }
}

/// Writes the items at `indent`, like [`write_map`].
fn write_seq(out: &mut String, items: &[Value], indent: usize, continues_line: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !continues_line {
            push_indent(out, indent);
        }
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                write_map(out, map, indent + 2, true);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push(' ');
                write_seq(out, items, indent + 2, true);
            }
            _ => write_scalar(out, item, indent + 2),
        }
    }
}

/// Writes `key:`, or `? key` and `:` on the next line when the key is too long to be implicit.
fn write_key(out: &mut String, key: &str, indent: usize) {
    let start = out.len();
    if is_plain_key(key) {
        out.push_str(key);
    } else {
        write_quoted(out, key);
    }
    let written = &out[start..];
    if written.len() > MAX_IMPLICIT_KEY_CHARS && written.chars().count() > MAX_IMPLICIT_KEY_CHARS {
        out.insert_str(start, "? ");
        out.push('\n');
        push_indent(out, indent);
    }
    out.push(':');
}

/// Writes ` value\n` after a `key:` or `-`; a multi-line string becomes a literal block whose
/// lines are indented by `block_indent`.
fn write_scalar(out: &mut String, v: &Value, block_indent: usize) {
    out.push(' ');
    match v {
        Value::String(s) => match literal_block(s) {
            Some((header, body)) => write_literal(out, header, body, block_indent),
            None => {
                write_string(out, s);
                out.push('\n');
            }
        },
        _ => {
            write_inline(out, v);
            out.push('\n');
        }
    }
}

/// Writes a scalar, `{}` or `[]` (containers here are empty) on the current line.
fn write_inline(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn write_string(out: &mut String, s: &str) {
    if is_plain_value(s) {
        out.push_str(s);
    } else {
        write_quoted(out, s);
    }
}

/// The literal block header (`|`, `|-` or `|+`) and the lines to write, if `s` is a multi-line
/// string a literal block can carry exactly: a non-empty first line that does not start with a
/// space, no trailing spaces, no tabs, carriage returns or other characters that need escaping.
fn literal_block(s: &str) -> Option<(&'static str, &str)> {
    let fits = s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.contains(" \n")
        && !s.ends_with(' ')
        && !s.chars().any(|c| c != '\n' && needs_escape(c));
    if !fits {
        return None;
    }
    let trimmed = s.trim_end_matches('\n');
    Some(match s.len() - trimmed.len() {
        0 => ("|-", s),
        1 => ("|", trimmed),
        _ => ("|+", &s[..s.len() - 1]),
    })
}

fn write_literal(out: &mut String, header: &str, body: &str, indent: usize) {
    out.push_str(header);
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// A double-quoted scalar with JSON escapes, which YAML shares; characters that are not
/// printable, or that YAML 1.1 takes for line breaks, are escaped too.
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Control characters, DEL, C1 controls (including NEL), the line and paragraph separators,
/// the byte order mark and the non-characters U+FFFE and U+FFFF.
fn needs_escape(c: char) -> bool {
    matches!(c, '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// `[A-Za-z0-9_][A-Za-z0-9_./-]*` and nothing a YAML reader resolves to a non-string.
fn is_plain_key(s: &str) -> bool {
    let b = s.as_bytes();
    b.first()
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
        && !is_special(s)
}

/// `[A-Za-z0-9_/.][A-Za-z0-9 _./:@+=,()-]*` without `: `, a trailing space or colon, a leading
/// `..` (a document end marker at the start of a line), or a meaning other than a string.
fn is_plain_value(s: &str) -> bool {
    let b = s.as_bytes();
    b.first()
        .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'.'))
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b" _./:@+=,()-".contains(&c))
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.starts_with("..")
        && !is_special(s)
}

/// Would a YAML 1.1 or 1.2 reader resolve this plain scalar to a null, boolean, number or date?
fn is_special(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "yes", "n", "no", "on", "off", "true", "false", "null", "~", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) || looks_numeric(s) || looks_like_date(s)
}

/// Numbers in any YAML 1.1 or 1.2 form (`012`, `0x1f`, `0o17`, `0b1`, `1_000`, `1e3`, `.5`,
/// `1:20` sexagesimal), generously: a sign, then a digit or `.` and digit, then only characters
/// that occur in numbers.
fn looks_numeric(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let starts_like_number = match b {
        [first, ..] if first.is_ascii_digit() => true,
        [b'.', second, ..] => second.is_ascii_digit() || *second == b'_',
        _ => false,
    };
    starts_like_number
        && b.iter()
            .all(|&c| c.is_ascii_hexdigit() || b"_.:+-xXoObB".contains(&c))
}

/// `2024-01-01`, `2024-01-01T10:00:00Z`, ...: four digits and a dash.
fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pins_the_format_of_a_deployment() {
        let deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "mlflow",
                "labels": { "app.kubernetes.io/name": "mlflow", "version": "2.14.1" },
                "annotations": {},
            },
            "spec": {
                "replicas": 2,
                "selector": { "matchLabels": { "app": "mlflow" } },
                "template": {
                    "spec": {
                        "containers": [{
                            "name": "server",
                            "image": "ghcr.io/mlflow/mlflow:v2.14.1",
                            "args": ["--host", "0.0.0.0", "--port", "5000"],
                            "env": [
                                { "name": "DEBUG", "value": "true" },
                                { "name": "PORT", "value": "5000" },
                                { "name": "EMPTY", "value": "" },
                            ],
                            "command": ["sh", "-c", "set -e\nexec mlflow server\n"],
                            "resources": { "limits": { "cpu": "500m", "memory": "1Gi" } },
                            "ports": [{ "containerPort": 5000 }],
                            "readOnlyRootFilesystem": true,
                            "volumeMounts": [],
                            "matrix": [["a", 1], [], [{ "x": null }]],
                        }],
                    },
                },
            },
        });
        let expected = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  annotations: {}
  labels:
    app.kubernetes.io/name: mlflow
    version: "2.14.1"
  name: mlflow
spec:
  replicas: 2
  selector:
    matchLabels:
      app: mlflow
  template:
    spec:
      containers:
        - args:
            - "--host"
            - "0.0.0.0"
            - "--port"
            - "5000"
          command:
            - sh
            - "-c"
            - |
              set -e
              exec mlflow server
          env:
            - name: DEBUG
              value: "true"
            - name: PORT
              value: "5000"
            - name: EMPTY
              value: ""
          image: ghcr.io/mlflow/mlflow:v2.14.1
          matrix:
            - - a
              - 1
            - []
            - - x: null
          name: server
          ports:
            - containerPort: 5000
          readOnlyRootFilesystem: true
          resources:
            limits:
              cpu: 500m
              memory: 1Gi
          volumeMounts: []
"#;
        assert_eq!(to_yaml_string(&deployment), expected);
    }

    #[test]
    fn writes_scalars_and_empty_containers() {
        let cases = [
            (json!(null), "null\n"),
            (json!(true), "true\n"),
            (json!(-3), "-3\n"),
            (json!(1.5), "1.5\n"),
            (json!(1.0), "1.0\n"),
            (json!(1e300), "1e+300\n"),
            (json!("x"), "x\n"),
            (json!("a\nb"), "\"a\\nb\"\n"),
            (json!("..."), "\"...\"\n"),
            (json!({}), "{}\n"),
            (json!([]), "[]\n"),
            (json!([null, [], {}]), "- null\n- []\n- {}\n"),
            (json!([[["x"]]]), "- - - x\n"),
            (json!([{ "a": 1, "b": [2] }]), "- a: 1\n  b:\n    - 2\n"),
        ];
        for (v, want) in cases {
            assert_eq!(to_yaml_string(&v), want, "{v}");
        }
    }

    #[test]
    fn quotes_strings_that_could_mean_something_else() {
        let plain = [
            "x",
            "hello world",
            "apps/v1",
            "/data",
            ".config",
            "a:b",
            "http://x:80/y",
            "10Gi",
            "500m",
            "v1.2",
            "_x",
            "a=b,c",
            "f(x)",
            "user@host",
            "1h",
            "a-b",
            "x.",
        ];
        for s in plain {
            assert_eq!(to_yaml_string(&json!(s)), format!("{s}\n"));
        }
        let quoted = [
            "",
            "y",
            "NO",
            "On",
            "oFF",
            "TRUE",
            "Null",
            "~",
            "12",
            "012",
            "0x1f",
            "0o17",
            "0b1",
            "1_000",
            "1e3",
            ".5",
            "1:20",
            ".inf",
            "-.Inf",
            ".NaN",
            "2024-01-01",
            "2024-01-01T10:00:00Z",
            "1.2.3",
            "a: b",
            "a:",
            "a #b",
            "#a",
            "-a",
            "- a",
            "*a",
            "&a",
            "!a",
            "%a",
            "@a",
            "`a",
            "{a}",
            "[a]",
            "|",
            ">",
            "'",
            "\"",
            " a",
            "a ",
            "a\tb",
            "<<",
            "é",
            "..",
            "?",
            ",a",
            "=",
        ];
        for s in quoted {
            assert_eq!(to_yaml_string(&json!(s)), format!("{}\n", json!(s)), "{s}");
        }
        assert_eq!(
            to_yaml_string(&json!("\u{85}\u{2028}\u{7f}")),
            "\"\\u0085\\u2028\\u007f\"\n"
        );
    }

    #[test]
    fn quotes_keys_that_could_mean_something_else() {
        let v =
            json!({ "a.b/c-d_e": 1, "y": 2, "1": 3, "on": 4, "a b": 5, "": 6, "<<": 7, "-x": 8 });
        let want = "\"\": 6\n\"-x\": 8\n\"1\": 3\n\"<<\": 7\n\"a b\": 5\na.b/c-d_e: 1\n\"on\": 4\n\"y\": 2\n";
        assert_eq!(to_yaml_string(&v), want);
    }

    #[test]
    fn writes_multi_line_strings_as_literal_blocks() {
        let v = json!({
            "clip": "a\n\nb\n",
            "strip": "a\nb",
            "keep": "a\n\n",
            "items": ["x\ny\n"],
            "quoted": ["\n", "\nx", " x\ny", "x \ny", "a\tb\nc", "a\r\nb", "x\n\u{85}"],
        });
        let want = r#"clip: |
  a

  b
items:
  - |
    x
    y
keep: |+
  a

quoted:
  - "\n"
  - "\nx"
  - " x\ny"
  - "x \ny"
  - "a\tb\nc"
  - "a\r\nb"
  - "x\n\u0085"
strip: |-
  a
  b
"#;
        assert_eq!(to_yaml_string(&v), want);
    }

    #[test]
    fn writes_long_keys_explicitly() {
        let key = "k".repeat(MAX_IMPLICIT_KEY_CHARS + 1);
        let v = json!({ key.clone(): { "a": 1 } });
        assert_eq!(to_yaml_string(&v), format!("? {key}\n:\n  a: 1\n"));
        let v = json!([{ key.clone(): 1 }]);
        assert_eq!(to_yaml_string(&v), format!("- ? {key}\n  : 1\n"));
    }

    #[test]
    fn joins_documents() {
        let docs = [json!({ "a": 1 }), json!("x"), json!([])];
        assert_eq!(to_yaml_documents(&docs), "a: 1\n---\nx\n---\n[]\n");
        assert_eq!(to_yaml_documents(&[]), "");
    }
}
