//! Problems found in a user's file, each pointing at `file:line:col`, rendered with the line
//! itself and a caret, like a compiler error.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::yaml::Pos;

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub pos: Option<Pos>,
    /// The key path, dotted (`tools.airflow.dags.repo`), empty for the whole file.
    pub key: String,
    pub message: String,
    pub help: Option<String>,
    /// The source line the position points at, shown under the message.
    pub line_text: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            pos: None,
            key: String::new(),
            message: message.into(),
            help: None,
            line_text: None,
        }
    }

    /// Points the diagnostic at a position of `source` (the file's text).
    pub fn at(mut self, pos: Pos, source: &str) -> Self {
        self.line_text = source
            .lines()
            .nth(pos.line.saturating_sub(1))
            .map(str::to_owned);
        self.pos = Some(pos);
        self
    }

    /// Points the diagnostic at a position, quoting `line` (the text of that line) if given.
    pub fn at_line(mut self, pos: Pos, line: Option<&str>) -> Self {
        self.line_text = line.map(str::to_owned);
        self.pos = Some(pos);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A quoted line longer than this many characters is shown as a window around the caret.
const MAX_QUOTED: usize = 160;

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if crate::redact::is_secret_file(&self.file) {
            // Nothing of the file is shown, not even what the message would quote of it.
            // The key, if any, is where the config names the file, not something in it.
            let named_at = if self.key.is_empty() {
                String::new()
            } else {
                format!("{}: ", self.key)
            };
            return write!(
                f,
                "{}: {named_at}this file holds a secret (the platform key or a fromFile value), so mlplat shows nothing of it\n = help: it is not a config, an overlay, a values file or a lock file: point mlplat at the YAML file you meant",
                self.file.display()
            );
        }
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.col)?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        let quoted = self
            .line_text
            .as_ref()
            .filter(|_| crate::redact::may_quote(&self.file));
        if let (Some(pos), Some(text)) = (self.pos, quoted) {
            let num = pos.line.to_string();
            let pad = " ".repeat(num.len());
            let (text, caret) = quoted_line(&self.file, pos, text);
            write!(
                f,
                "\n{pad} |\n{num} | {text}\n{pad} | {}^",
                " ".repeat(caret.saturating_sub(1))
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{} = help: {help}", " ".repeat(pos_width(self.pos)))?;
        }
        Ok(())
    }
}

/// The source line as a diagnostic shows it, with the caret's column: the part under a secret
/// key masked, known secrets replaced, control characters escaped, tabs shown as one space (as
/// the column counts them), and a long line cut to a window around the caret (only a region
/// around it is cleaned, wide enough that no secret is cut in two).
fn quoted_line(file: &Path, pos: Pos, line: &str) -> (String, usize) {
    /// Characters kept on each side of the caret before cleaning: more than any secret.
    const MARGIN: usize = 70_000;
    let col = pos.col.max(1);
    let from_char = (col - 1).saturating_sub(MARGIN);
    let byte_at = |n: usize| line.char_indices().nth(n).map_or(line.len(), |(i, _)| i);
    let (start, end) = (byte_at(from_char), byte_at(col - 1 + MARGIN));
    let (cut_before, cut_after) = (start > 0, end < line.len());
    let mut text = line[start..end].replace('\t', " ");
    let mut col = col - from_char;
    if let Some(from) = crate::redact::masked(file, pos.line) {
        let from = from.saturating_sub(from_char).max(1);
        let keep: String = text.chars().take(from - 1).collect();
        text = format!("{keep}{}", crate::redact::MASK);
        col = col.min(from);
    }
    let (text, col) = crate::redact::clean_with_caret(&text, col);
    let len = text.chars().count();
    if len <= MAX_QUOTED && !cut_before && !cut_after {
        return (text, col);
    }
    let first = col
        .saturating_sub(MAX_QUOTED / 3)
        .min(len.saturating_sub(MAX_QUOTED));
    let mut window: String = text.chars().skip(first).take(MAX_QUOTED).collect();
    let mut col = col - first;
    if first > 0 || cut_before {
        window.insert(0, '…');
        col += 1;
    }
    if first + MAX_QUOTED < len || cut_after {
        window.push('…');
    }
    (window, col)
}

fn pos_width(pos: Option<Pos>) -> usize {
    pos.map_or(0, |p| p.line.to_string().len())
}

/// Every problem found in a config, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} problems found", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Converts an RFC 6901 JSON pointer into the dotted key path users see
/// (`/tools/airflow/users/0/role` → `tools.airflow.users[0].role`).
pub fn key_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&seg);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// The known name closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&word.to_lowercase(), &k.to_lowercase()),
                *k,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_like_the_file() {
        assert_eq!(key_path(""), "");
        assert_eq!(
            key_path("/tools/airflow/users/0/role"),
            "tools.airflow.users[0].role"
        );
        assert_eq!(key_path("/a~1b/c~0d"), "a/b.c~d");
    }

    #[test]
    fn display_shows_line_and_caret() {
        let src = "platform: x\ntools:\n  airflw: {}\n";
        let d = Diagnostic::new(Path::new("p.yaml"), "unknown key `airflw`")
            .at(Pos { line: 3, col: 3 }, src)
            .key("tools")
            .help("did you mean `airflow`?");
        assert_eq!(
            d.to_string(),
            "p.yaml:3:3: tools: unknown key `airflw`\n  |\n3 |   airflw: {}\n  |   ^\n  = help: did you mean `airflow`?"
        );
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(
            closest("airflw", &["airflow", "mlflow", "jupyterhub"]),
            Some("airflow")
        );
        assert_eq!(closest("zzz", &["airflow", "mlflow"]), None);
    }
}
