//! Stage 1: read `platform.yaml` (merged with an environment's overlay: [`layers`]), check it
//! against the schema, and resolve the values only the user has (`fromEnv`, `fromFile`). Every
//! problem is collected and reported with its position.
//!
//! The config's shape is [`types`] (what serde reads); [`load`] reads a file into [`Loaded`],
//! the resolved platform every stage takes, through the schema ([`schema`]), the rules between
//! keys ([`checks`], [`aws`], [`hub`]) and the values it refers to ([`references`]); [`tool`]
//! resolves each part's namespace, [`charts`] and [`defaults`] what is not set.

pub mod aws;
pub mod charts;
mod checks;
pub mod defaults;
pub mod explain;
pub mod hub;
pub mod layers;
mod load;
pub mod redaction;
mod references;
pub mod schema;
pub mod sources;
pub mod tool;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics, key_path};
pub use aws::{RdsConfig, RdsLayout, S3Config, S3Encryption};
pub use layers::environment_names;
pub use load::{Selection, load, load_layered, load_one, load_str};
pub use sources::{Layered, Sources};
pub use tool::{Namespace, Tool, namespaces, uses_postgres};
pub use types::*;

use crate::secrets::Secret;
use crate::yaml::{self, Node};

/// The environment variable read when the config names no secret key.
pub const KEY_ENV: &str = "MLPLAT_SECRET_KEY";
/// The key file read, beside the config, when neither the config nor the environment names one.
pub const KEY_FILE: &str = "mlplat.key";

/// The values only the user has, read from the environment or from files, by the JSON pointer
/// of their `{fromEnv|fromFile}` in the config (`/tools/airflow/dags/credentials/token`).
#[derive(Debug, Default, Clone)]
pub struct Inputs(BTreeMap<String, Secret>);

impl Inputs {
    pub fn get(&self, pointer: &str) -> Option<&Secret> {
        self.0.get(pointer)
    }

    /// Every value, by pointer.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A user's chart values file, parsed, with what points a problem at its line.
#[derive(Debug, Clone)]
pub struct ValuesFile {
    pub path: PathBuf,
    pub value: Value,
    /// The file's tree, with the position of every key and value.
    pub doc: Node,
    pub text: String,
}

/// The key of the committed examples (`examples/example.key`): public by design, so what is
/// derived from it protects nothing and needs no warning about where it is kept.
const PUBLIC_EXAMPLE_KEY: &str = include_str!("../../examples/example.key");

/// A config that passed every check, with everything it refers to read in.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    /// The environment whose overlay was merged in, if any.
    pub environment: Option<String>,
    pub platform: PlatformConfig,
    pub inputs: Inputs,
    /// The platform secret key.
    pub key: Secret,
    /// Chart values files per tool (`airflow`, `jupyterhub`), in merge order.
    pub values_files: BTreeMap<&'static str, Vec<ValuesFile>>,
    /// The lock file of this platform, [`Loaded::lock_path`] (empty when there is none).
    pub lock: crate::lock::Lock,
    /// The namespace of each part of the platform (the in-cluster PostgreSQL, each enabled
    /// tool), resolved once when the config is loaded.
    pub namespaces: Vec<Namespace>,
    /// The config's text, as read (with an environment: the base's, then the overlay's, each
    /// after a line naming it).
    pub source: String,
}

impl Loaded {
    /// The namespace of a part of the platform (`postgres` or a tool's name), when it has one.
    pub fn namespace(&self, component: &str) -> Option<&str> {
        self.namespaces
            .iter()
            .find(|n| n.component == component)
            .map(|n| n.name.as_str())
    }

    /// The namespace of an enabled component (empty for one that is not).
    pub fn namespace_of(&self, component: &str) -> String {
        self.namespace(component)
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// Whether the platform key is the public one of the committed examples.
    pub fn uses_public_example_key(&self) -> bool {
        self.key.expose().trim() == PUBLIC_EXAMPLE_KEY.trim()
    }

    /// The lock file this platform reads and its commands write: the config's, or with an
    /// environment, the environment's own.
    pub fn lock_path(&self) -> PathBuf {
        crate::lock::path_of(&self.file, self.environment.as_deref())
    }

    /// How messages name this platform: `platform.yaml`, or `platform.yaml (environment dev)`.
    pub fn label(&self) -> String {
        match &self.environment {
            Some(env) => format!("{} (environment {env})", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
}

struct Ctx<'a> {
    sources: &'a Sources,
    doc: &'a Node,
}

impl Ctx<'_> {
    fn diag(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        let (at, pos) = schema::locate_pointer(self.doc, pointer);
        self.sources.diag(&at, pos, message).key(key_path(pointer))
    }

    /// The directory relative paths at `pointer` are read from: that of the file that set them.
    fn dir(&self, pointer: &str) -> &Path {
        self.sources
            .file_of(pointer)
            .path
            .parent()
            .unwrap_or(Path::new(""))
    }
}
