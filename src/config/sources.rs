//! The files behind a config tree: each file's text (for the line a diagnostic shows), which
//! file set each value when an environment's overlay is merged over the base, and the merged
//! tree itself ([`Layered`]), which [`super::layers`] builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::yaml::{Node, Pos};

/// One file a config was read from, with its text (for the line a diagnostic shows).
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: &Path, text: &str) -> Self {
        SourceFile {
            path: path.to_path_buf(),
            text: text.to_owned(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        }
    }

    /// The text of 1-based line `n`, without its line break.
    pub fn line(&self, n: usize) -> Option<&str> {
        let start = *self.line_starts.get(n.checked_sub(1)?)?;
        let rest = self.text.get(start..)?;
        let line = rest.split('\n').next().unwrap_or_default();
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

/// The files behind a (possibly merged) config tree: the base first, then the overlay, and
/// which of them set each value.
#[derive(Debug, Clone)]
pub struct Sources {
    pub files: Vec<SourceFile>,
    /// The file that set the value at a JSON pointer, for values an overlay set: everything
    /// below a recorded pointer comes from the same file, anything else from the base.
    pub(super) origins: BTreeMap<String, usize>,
    /// Keys an overlay removed with `null`: file and position of the `key: null`.
    pub(super) removed: BTreeMap<String, (usize, Pos)>,
    /// The environment whose name was appended to the base's platform name.
    pub derived_platform: Option<String>,
}

impl Sources {
    /// A config read from one file.
    pub fn single(path: &Path, text: &str) -> Self {
        Sources {
            files: vec![SourceFile::new(path, text)],
            origins: BTreeMap::new(),
            removed: BTreeMap::new(),
            derived_platform: None,
        }
    }

    pub fn base(&self) -> &SourceFile {
        &self.files[0]
    }

    /// The index of the file that set the value at `pointer`.
    pub fn origin(&self, pointer: &str) -> usize {
        let mut p = pointer;
        loop {
            if let Some(i) = self.origins.get(p) {
                return *i;
            }
            match p.rsplit_once('/') {
                Some((parent, _)) => p = parent,
                None => return 0,
            }
        }
    }

    /// The file that set the value at `pointer`.
    pub fn file_of(&self, pointer: &str) -> &SourceFile {
        &self.files[self.origin(pointer)]
    }

    /// Where an overlay removed the key at `pointer` with `null`.
    pub fn removed(&self, pointer: &str) -> Option<(&SourceFile, Pos)> {
        self.removed
            .get(pointer)
            .map(|(i, pos)| (&self.files[*i], *pos))
    }

    /// A diagnostic at `pos` in the file that set the value at `pointer`.
    pub fn diag(&self, pointer: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        let f = self.file_of(pointer);
        Diagnostic::new(&f.path, message).at_line(pos, f.line(pos.line))
    }

    /// The text of the files, for the inputs digest: the one file's as it is; with an
    /// environment each after a line naming the environment and the file's place.
    pub fn text(&self, environment: Option<&str>) -> String {
        match (environment, self.files.as_slice()) {
            (None, [only]) => only.text.clone(),
            // Not the paths: they depend on how the config was named on the command line.
            (env, files) => files
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let env = env.unwrap_or_default();
                    format!("# mlplat environment {env}, file {i}\n{}", f.text)
                })
                .collect(),
        }
    }

    /// The order diagnostics are shown in: the base's, then the overlay's, each in file order;
    /// files that are neither (chart values files) count as the base.
    pub fn rank(&self, d: &Diagnostic) -> (usize, usize, usize) {
        let file = self
            .files
            .iter()
            .position(|f| f.path == d.file)
            .unwrap_or(0);
        let (line, col) = d.pos.map_or((0, 0), |p| (p.line, p.col));
        (file, line, col)
    }
}

/// A config tree and the files it was read from.
#[derive(Debug, Clone)]
pub struct Layered {
    pub doc: Node,
    pub sources: Sources,
    /// The environment merged in, if any.
    pub environment: Option<String>,
    /// The pointers of values written inline under a secret key (never shown).
    pub inline_secrets: BTreeSet<String>,
}
