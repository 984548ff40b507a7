//! Problems found in a user's file, each pointing at `file:line:col`, rendered with the line
//! itself and a caret, like a compiler error.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::yaml::Pos;

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.col)?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let (Some(pos), Some(text)) = (self.pos, &self.line_text) {
            let num = pos.line.to_string();
            let pad = " ".repeat(num.len());
            // Tabs would misplace the caret: show them as one space, as the column counts them.
            let text = text.replace('\t', " ");
            write!(
                f,
                "\n{pad} |\n{num} | {text}\n{pad} | {}^",
                " ".repeat(pos.col.saturating_sub(1))
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{} = help: {help}", " ".repeat(pos_width(self.pos)))?;
        }
        Ok(())
    }
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
}
