//! Stage 1: read `platform.yaml` (merged with an environment's overlay: [`layers`]), check it
//! against the schema, and resolve the values only the user has (`fromEnv`, `fromFile`). Every
//! problem is collected and reported with its position.

pub mod aws;
pub mod charts;
pub mod defaults;
pub mod explain;
pub mod hub;
pub mod layers;
pub mod redaction;
pub mod schema;
pub mod sources;
pub mod tool;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics, key_path};
pub use aws::{RdsConfig, RdsLayout, S3Config, S3Encryption};
pub use layers::environment_names;
pub use sources::{Layered, Sources};
pub use tool::{Namespace, Tool};

use crate::secrets::Secret;
use crate::yaml::{self, Node};

/// The environment variable read when the config names no secret key.
pub const KEY_ENV: &str = "MLPLAT_SECRET_KEY";
/// The key file read, beside the config, when neither the config nor the environment names one.
pub const KEY_FILE: &str = "mlplat.key";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformConfig {
    pub platform: String,
    #[serde(default)]
    pub delivery: Delivery,
    pub argocd: Option<ArgocdConfig>,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub backends: BackendsConfig,
    #[serde(default)]
    pub tools: ToolsConfig,
    #[serde(default)]
    pub network_policies: NetworkPoliciesConfig,
    #[serde(default)]
    pub images: ImagesConfig,
}

/// How the images of mlplat's own workloads are referenced: see [`crate::images`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagesConfig {
    pub pin: Option<ImagePin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImagePin {
    Tag,
    Digest,
}

impl ImagesConfig {
    pub fn pin(&self) -> ImagePin {
        self.pin
            .unwrap_or_else(|| match defaults::text("/images/pin") {
                "digest" => ImagePin::Digest,
                _ => ImagePin::Tag,
            })
    }
}

/// Who may connect to the servers mlplat renders itself (MLflow, the in-cluster PostgreSQL),
/// and the charts' own network policies: see [`crate::render::network`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPoliciesConfig {
    /// Off: no NetworkPolicy of mlplat's, and the charts' left as they are (default on).
    pub enabled: Option<bool>,
    /// The ingress controller's namespace (default `ingress-nginx`).
    pub ingress_namespace: Option<String>,
    /// More namespaces that may connect, by server.
    #[serde(default)]
    pub allow_from: AllowFrom,
}

impl NetworkPoliciesConfig {
    pub fn enabled(&self) -> bool {
        self.enabled
            .unwrap_or_else(|| defaults::flag("/networkPolicies/enabled"))
    }

    pub fn ingress_namespace(&self) -> &str {
        self.ingress_namespace
            .as_deref()
            .unwrap_or_else(|| defaults::text("/networkPolicies/ingressNamespace"))
    }
}

/// Extra namespaces allowed to connect to each server mlplat renders.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowFrom {
    #[serde(default)]
    pub mlflow: Vec<String>,
    #[serde(default)]
    pub postgres: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    #[default]
    Flux,
    Argocd,
    /// The charts inflated by `helm template` into plain manifests: see
    /// [`crate::delivery::rendered`].
    Rendered,
}

/// Where the Argo CD Applications live (`delivery: argocd`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgocdConfig {
    /// The namespace Argo CD watches for Applications (default `argocd`).
    pub namespace: Option<String>,
    /// The Argo CD project of every Application (default `default`).
    pub project: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretsConfig {
    pub key: Option<ValueSource>,
    #[serde(default)]
    pub mode: SecretMode,
    /// Where `external-secrets` mode reads from: see [`crate::secret_delivery`].
    pub external_secrets: Option<ExternalSecretsConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SecretMode {
    #[default]
    Plain,
    ExternalSecrets,
}

/// AWS Secrets Manager, read by the external-secrets operator through IRSA.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalSecretsConfig {
    pub region: String,
    pub role_arn: String,
    pub service_account: Option<String>,
}

/// Where a value only the user has comes from. Resolved once, at load time, into [`Inputs`].
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueSource {
    pub from_env: Option<String>,
    pub from_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendsConfig {
    #[serde(default)]
    pub postgres: PostgresConfig,
    #[serde(default)]
    pub artifacts: ArtifactsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresConfig {
    #[serde(default)]
    pub mode: PostgresMode,
    #[serde(default)]
    pub in_cluster: InClusterPostgres,
    pub external: Option<ExternalPostgres>,
    pub rds: Option<RdsConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PostgresMode {
    #[default]
    InCluster,
    External,
    Rds,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InClusterPostgres {
    pub namespace: Option<String>,
    pub image: Option<String>,
    pub storage: Option<String>,
    pub storage_class: Option<String>,
    pub resources: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalPostgres {
    pub host: String,
    pub port: Option<u16>,
    pub sslmode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactsConfig {
    #[serde(default)]
    pub mode: ArtifactsMode,
    #[serde(default)]
    pub pvc: PvcConfig,
    pub s3: Option<S3Config>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactsMode {
    #[default]
    Pvc,
    S3,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PvcConfig {
    pub size: Option<String>,
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolsConfig {
    pub airflow: Option<AirflowConfig>,
    pub mlflow: Option<MlflowConfig>,
    pub jupyterhub: Option<JupyterhubConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartConfig {
    pub repository: Option<String>,
    pub name: Option<String>,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressConfig {
    pub host: String,
    pub class_name: Option<String>,
    pub tls_secret: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseConfig {
    pub name: Option<String>,
    pub user: Option<String>,
    pub password: Option<ValueSource>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AirflowFlavor {
    #[default]
    Official,
    Community,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AirflowConfig {
    pub enabled: Option<bool>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub flavor: AirflowFlavor,
    pub chart: Option<ChartConfig>,
    pub executor: Option<String>,
    #[serde(default)]
    pub database: DatabaseConfig,
    pub dags: Option<DagsConfig>,
    #[serde(default)]
    pub users: Vec<AirflowUser>,
    pub ingress: Option<IngressConfig>,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DagsConfig {
    pub repo: String,
    pub branch: Option<String>,
    pub sub_path: Option<String>,
    pub sync_wait: Option<u32>,
    pub credentials: Option<GitCredentials>,
    pub ssh_key: Option<ValueSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitCredentials {
    pub username: String,
    pub token: ValueSource,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AirflowUser {
    pub username: String,
    pub role: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password: Option<ValueSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MlflowConfig {
    pub enabled: Option<bool>,
    pub namespace: Option<String>,
    pub image: Option<String>,
    pub replicas: Option<u32>,
    /// uvicorn worker processes per replica.
    pub workers: Option<u32>,
    /// MLflow's job runner (GenAI evaluation jobs): a process and its consumers per replica.
    pub job_execution: Option<bool>,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub artifacts: MlflowArtifacts,
    #[serde(default)]
    pub auth: MlflowAuth,
    pub resources: Option<Value>,
    pub ingress: Option<IngressConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MlflowArtifacts {
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MlflowAuth {
    pub admin_username: Option<String>,
    pub admin_password: Option<ValueSource>,
    pub default_permission: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JupyterhubConfig {
    pub enabled: Option<bool>,
    pub namespace: Option<String>,
    pub chart: Option<ChartConfig>,
    #[serde(default)]
    pub database: HubDatabase,
    #[serde(default)]
    pub auth: HubAuth,
    #[serde(default)]
    pub singleuser: Singleuser,
    #[serde(default)]
    pub vscode: Vscode,
    pub ingress: Option<IngressConfig>,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubDatabase {
    #[serde(default, rename = "type")]
    pub kind: HubDbKind,
    pub name: Option<String>,
    pub user: Option<String>,
    pub password: Option<ValueSource>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HubDbKind {
    #[default]
    Postgres,
    SqlitePvc,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubAuth {
    #[serde(default, rename = "type")]
    pub kind: HubAuthKind,
    #[serde(default)]
    pub local_demo: bool,
    #[serde(default)]
    pub admin_users: Vec<String>,
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Passwords the user supplies for admins, by admin name; the others are derived.
    #[serde(default)]
    pub admin_passwords: BTreeMap<String, ValueSource>,
    pub github: Option<GithubAuth>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HubAuthKind {
    #[default]
    Native,
    Github,
    Dummy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GithubAuth {
    pub client_id: String,
    pub client_secret: ValueSource,
    pub callback_url: String,
    #[serde(default)]
    pub allowed_organizations: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Singleuser {
    pub image: Option<String>,
    pub storage: Option<String>,
    pub storage_class: Option<String>,
    pub clone_dags: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vscode {
    pub enabled: Option<bool>,
    pub image: Option<String>,
}

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

/// Which platforms of a config file [`load`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// The file as it is, its environments not applied, with the lock file beside it.
    Plain,
    /// One environment: the base merged with its overlay, with the environment's lock file.
    Environment(&'a str),
    /// What a command acts on without `--env`: each environment of a config that declares
    /// some, in name order; otherwise the config itself.
    All,
}

impl<'a> Selection<'a> {
    /// `--env NAME`, or every platform without it.
    pub fn from_env(env: Option<&'a str>) -> Self {
        env.map_or(Selection::All, Selection::Environment)
    }
}

/// Reads, validates and resolves the platforms `selection` names, each with its lock file
/// (read once). Diagnostics point into the file that set each value; with [`Selection::All`],
/// every problem of every environment is reported (a problem of the base once).
pub fn load(path: &Path, selection: Selection<'_>) -> Result<Vec<Loaded>, ConfigError> {
    match selection {
        Selection::Plain => load_layered(layers::read_layers(path, None)?).map(|l| vec![l]),
        Selection::Environment(env) => {
            let mut loaded = validate(layers::read_layers(path, Some(env))?)?;
            loaded.lock = env_lock(path, env)?;
            Ok(vec![loaded])
        }
        Selection::All => {
            let layered = layers::read_layers(path, None)?;
            if layers::declares_environments(path, &layered)? {
                load_environments(path)
            } else {
                load_layered(layered).map(|l| vec![l])
            }
        }
    }
}

/// [`load`] of the file as it is ([`Selection::Plain`]): its one platform.
pub fn load_one(path: &Path) -> Result<Loaded, ConfigError> {
    let mut all = load(path, Selection::Plain)?;
    Ok(all.remove(0))
}

/// [`Selection::Plain`] of a config tree already read (`mlplat explain`'s).
pub fn load_layered(layered: Layered) -> Result<Loaded, ConfigError> {
    let path = layered.sources.base().path.clone();
    let mut loaded = validate(layered)?;
    loaded.lock = crate::lock::Lock::load(&path)?;
    Ok(loaded)
}

/// The lock of `environment`: its own file. A lock file of the base config beside a config
/// with environments is an error, not ignored: its generations would silently be lost, and
/// every secret they rotated would change back.
fn env_lock(path: &Path, environment: &str) -> Result<crate::lock::Lock, ConfigError> {
    let base = crate::lock::path_for(path);
    if base.is_file() {
        return Err(crate::lock::LockError::BaseWithEnvironments {
            path: base,
            config: path.to_path_buf(),
            example: crate::lock::path_for_env(path, environment),
        }
        .into());
    }
    Ok(crate::lock::Lock::read(&crate::lock::path_for_env(
        path,
        environment,
    ))?)
}

/// Every environment the config declares, loaded, in name order. Every problem of every
/// environment is reported (a problem of the base once); two environments may not share a
/// platform name, nor an AWS resource.
fn load_environments(path: &Path) -> Result<Vec<Loaded>, ConfigError> {
    let mut out: Vec<(String, Option<Loaded>)> = Vec::new();
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for env in environment_names(path)? {
        match load(path, Selection::Environment(&env)) {
            Ok(loaded) => out.push((env, loaded.into_iter().next())),
            Err(ConfigError::Invalid(d)) => {
                // A problem of the base is found in every environment: reported once.
                for d in d.0 {
                    if seen.insert(d.clone()) {
                        problems.push(d);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(Diagnostics(problems)));
    }
    let out: Vec<(String, Loaded)> = out
        .into_iter()
        .filter_map(|(env, loaded)| Some((env, loaded?)))
        .collect();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (env, loaded) in &out {
        if let Some(other) = seen.insert(&loaded.platform.platform, env) {
            let message = format!(
                "environments `{other}` and `{env}` both name the platform `{}`: their namespaces and secrets would be the same",
                loaded.platform.platform
            );
            // Where this environment's name is set: its overlay, or the base.
            let layered = layers::read_layers(path, Some(env))?;
            let (at, pos) = schema::locate_pointer(&layered.doc, "/platform");
            let d = layered
                .sources
                .diag(&at, pos, message)
                .key("platform")
                .help("let each overlay leave `platform` unset (it becomes <platform>-<environment>), or give each its own name");
            return Err(ConfigError::Invalid(Diagnostics(vec![d])));
        }
    }
    // The AWS resources of two environments must differ by name: provision finds resources by
    // name, so one environment would change, and destroy delete, what the other uses.
    let mut owners: BTreeMap<String, &str> = BTreeMap::new();
    for (env, loaded) in &out {
        for name in aws::resource_names(loaded) {
            if let Some(other) = owners.insert(name.clone(), env) {
                let d = Diagnostic::new(
                    path,
                    format!(
                        "environments `{other}` and `{env}` both use the AWS {name}: provisioning one would change, and destroying it delete, what the other uses"
                    ),
                )
                .key("environments")
                .help("leave backends.postgres.rds.identifier unset (it defaults to the environment's platform name) or set it in each overlay, and give each environment its own backends.artifacts.s3.bucket");
                return Err(ConfigError::Invalid(Diagnostics(vec![d])));
            }
        }
    }
    Ok(out.into_iter().map(|(_, loaded)| loaded).collect())
}

/// Validates a config given as text; `path` is used for messages and relative paths.
pub fn load_str(path: &Path, source: &str) -> Result<Loaded, ConfigError> {
    let doc = layers::parse(path, source)?;
    let mut layered = Layered {
        doc,
        sources: Sources::single(path, source),
        environment: None,
        inline_secrets: Default::default(),
    };
    layered.inline_secrets = redaction::scan(&layered);
    validate(layered)
}

/// Checks a (merged) config tree against the schema, then the rules between keys, and reads
/// what it refers to.
fn validate(layered: Layered) -> Result<Loaded, ConfigError> {
    let fail = |d: Vec<Diagnostic>| ConfigError::Invalid(Diagnostics(d));
    let Layered {
        doc,
        sources,
        environment,
        ..
    } = layered;
    let path = sources.base().path.clone();
    let value = doc.to_json();
    let problems = schema::check(&sources, &doc, &value);
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    // `environments` says how to build configs, and is read by [`layers`]: it is no part of one.
    let mut typed = value.clone();
    if let Value::Object(map) = &mut typed {
        map.remove("environments");
    }
    let platform: PlatformConfig = match serde_json::from_value(typed) {
        Ok(p) => p,
        // The schema and the types describe the same shape; a gap is a bug, reported plainly.
        Err(e) => return Err(fail(vec![Diagnostic::new(&path, e.to_string())])),
    };
    let ctx = Ctx {
        sources: &sources,
        doc: &doc,
    };
    let mut problems = semantic_checks(&ctx, &platform);
    problems.extend(aws::checks(&ctx, &platform));
    problems.extend(hub::checks(&ctx, &platform));
    let mut inputs = Inputs::default();
    collect_inputs(&ctx, &value, "", &platform, &mut inputs, &mut problems);
    problems.extend(aws::password_checks(&ctx, &platform, &inputs));
    problems.extend(hub::password_checks(&ctx, &platform, &inputs));
    let key = resolve_key(&ctx, &platform, &mut problems);
    let values_files = load_values_files(&ctx, &platform, &mut problems);
    problems.sort_by_key(|d| sources.rank(d));
    match key {
        Some(key) if problems.is_empty() => Ok(Loaded {
            file: path,
            namespaces: namespaces(&platform),
            platform,
            inputs,
            key,
            values_files,
            lock: crate::lock::Lock::default(),
            source: sources.text(environment.as_deref()),
            environment,
        }),
        _ => Err(fail(problems)),
    }
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

impl PlatformConfig {
    /// Whether a tool is present in the config and not disabled.
    pub fn enabled(&self, tool: Tool) -> bool {
        match tool {
            Tool::Airflow => self.airflow().is_some(),
            Tool::Mlflow => self.mlflow().is_some(),
            Tool::Jupyterhub => self.jupyterhub().is_some(),
        }
    }

    /// Airflow's block, when Airflow is enabled.
    pub fn airflow(&self) -> Option<&AirflowConfig> {
        self.tools
            .airflow
            .as_ref()
            .filter(|t| t.enabled != Some(false))
    }

    /// MLflow's block, when MLflow is enabled.
    pub fn mlflow(&self) -> Option<&MlflowConfig> {
        self.tools
            .mlflow
            .as_ref()
            .filter(|t| t.enabled != Some(false))
    }

    /// JupyterHub's block, when JupyterHub is enabled.
    pub fn jupyterhub(&self) -> Option<&JupyterhubConfig> {
        self.tools
            .jupyterhub
            .as_ref()
            .filter(|t| t.enabled != Some(false))
    }
}

/// Rules a JSON Schema cannot say well: combinations of keys.
fn semantic_checks(ctx: &Ctx<'_>, p: &PlatformConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if p.argocd.is_some() && p.delivery != Delivery::Argocd {
        out.push(
            ctx.diag(
                "/argocd",
                "`argocd` settings are only read with `delivery: argocd`",
            )
            .help("set delivery: argocd, or remove the argocd block"),
        );
    }
    if p.backends.postgres.mode == PostgresMode::External && p.backends.postgres.external.is_none()
    {
        out.push(
            ctx.diag(
                "/backends/postgres/mode",
                "mode `external` needs `backends.postgres.external`",
            )
            .help("add external: {host: db.example.com, port: 5432}"),
        );
    }
    if let Some(a) = p.airflow() {
        if let Some(d) = &a.dags {
            if d.credentials.is_some() && d.ssh_key.is_some() {
                out.push(ctx.diag(
                    "/tools/airflow/dags/sshKey",
                    "give either `credentials` (HTTPS) or `sshKey`, not both",
                ));
            }
            if d.ssh_key.is_some() && d.repo.starts_with("http") {
                out.push(
                    ctx.diag(
                        "/tools/airflow/dags/repo",
                        "an SSH key needs an SSH repository URL",
                    )
                    .help("use git@host:org/repo.git or ssh://git@host/org/repo.git"),
                );
            }
        }
        if let Some(chart) = &a.chart {
            let supported = charts::versions(a.flavor);
            if !supported.contains(&chart.version) {
                let name = match a.flavor {
                    AirflowFlavor::Official => "the official Airflow chart",
                    AirflowFlavor::Community => "the community Airflow chart",
                };
                out.push(
                    ctx.diag(
                        "/tools/airflow/chart/version",
                        format!(
                            "{name} {} is not supported: mlplat builds values for versions {}",
                            chart.version, supported.text
                        ),
                    )
                    .help(format!(
                        "pin a version in that range (chart keys move between releases, and values for another version would be refused by the chart), or leave `chart` out for {}",
                        match a.flavor {
                            AirflowFlavor::Official => charts::OFFICIAL_CHART.2,
                            AirflowFlavor::Community => charts::COMMUNITY_CHART.2,
                        }
                    )),
                );
            }
        }
        if a.flavor == AirflowFlavor::Official && a.users.len() > 1 {
            out.push(
                ctx.diag(
                    "/tools/airflow/users/1",
                    "the official Airflow chart creates one user at install",
                )
                .help("keep one user here and add the others in Airflow, or use flavor: community"),
            );
        }
    }
    if let Some(m) = p.mlflow() {
        if m.replicas
            .unwrap_or_else(|| defaults::number("/tools/mlflow/replicas"))
            > 1
            && p.backends.artifacts.mode == ArtifactsMode::Pvc
        {
            out.push(
                ctx.diag("/tools/mlflow/replicas", "more than one MLflow replica needs artifacts outside a PVC")
                    .help("a ReadWriteOnce volume mounts on one node only: keep replicas: 1 with artifacts.mode: pvc"),
            );
        }
    }
    if let Some(j) = p.jupyterhub() {
        if j.auth.kind == HubAuthKind::Dummy && !j.auth.local_demo {
            out.push(
                ctx.diag(
                    "/tools/jupyterhub/auth/type",
                    "the dummy authenticator lets anyone in with any password",
                )
                .help("set auth.localDemo: true if this is a local demo, or use native or github"),
            );
        }
        if j.auth.kind == HubAuthKind::Github && j.auth.github.is_none() {
            out.push(
                ctx.diag("/tools/jupyterhub/auth/type", "auth type `github` needs `auth.github`")
                    .help("add github: {clientId: ..., clientSecret: {fromEnv: GITHUB_CLIENT_SECRET}, callbackUrl: https://<host>/hub/oauth_callback}"),
            );
        }
        if j.auth.kind != HubAuthKind::Dummy
            && j.auth.allowed_users.is_empty()
            && j.auth.admin_users.is_empty()
            && j.auth
                .github
                .as_ref()
                .is_none_or(|g| g.allowed_organizations.is_empty())
        {
            out.push(
                ctx.diag(
                    "/tools/jupyterhub/auth",
                    "nobody could log in: JupyterHub 5 admits only allowed users",
                )
                .help("list adminUsers or allowedUsers (or github.allowedOrganizations)"),
            );
        }
    }
    if p.secrets.mode == SecretMode::ExternalSecrets && p.secrets.external_secrets.is_none() {
        out.push(
            ctx.diag(
                "/secrets/mode",
                "mode `external-secrets` needs `secrets.externalSecrets`",
            )
            .help("add externalSecrets: {region: eu-west-1, roleArn: arn:aws:iam::123456789012:role/mlops-external-secrets}"),
        );
    }
    // Argo CD takes chart values inline only: the charts' secret values would land in out/.
    let chart_secrets = p.enabled(Tool::Jupyterhub)
        || p.tools
            .airflow
            .as_ref()
            .is_some_and(|a| p.enabled(Tool::Airflow) && a.flavor == AirflowFlavor::Community);
    if p.secrets.mode == SecretMode::ExternalSecrets
        && p.delivery == Delivery::Rendered
        && chart_secrets
    {
        out.push(
            ctx.diag(
                "/secrets/mode",
                "with `delivery: rendered` the charts' secret values (JupyterHub's keys, the community Airflow chart's keys) end up in the Secrets `helm template` writes to out/, which `external-secrets` forbids",
            )
            .help("use delivery: flux, whose HelmRelease reads them from a Secret"),
        );
    }
    if p.secrets.mode == SecretMode::ExternalSecrets
        && p.delivery == Delivery::Argocd
        && chart_secrets
    {
        out.push(
            ctx.diag(
                "/secrets/mode",
                "with `delivery: argocd` the charts' secret values (JupyterHub's keys, the community Airflow chart's keys) are written inline in out/, which `external-secrets` forbids",
            )
            .help("use delivery: flux, whose HelmRelease reads them from a Secret"),
        );
    }
    // Namespaces must not collide: each tool owns its namespace and what kustomize puts there.
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for Namespace {
        component,
        name: ns,
        pointer,
    } in namespaces(p)
    {
        if let Some(other) = seen.insert(ns.clone(), component) {
            out.push(ctx.diag(pointer, format!("namespace `{ns}` is also used by {other}")));
        }
    }
    out
}

/// The namespace of each enabled component: `(component, namespace, config pointer)`.
pub fn namespaces(p: &PlatformConfig) -> Vec<Namespace> {
    let ns =
        |explicit: Option<&String>, component: &'static str, pointer: &'static str| Namespace {
            component,
            name: explicit
                .cloned()
                .unwrap_or_else(|| defaults::namespace(&p.platform, component)),
            pointer,
        };
    let mut out = Vec::new();
    if matches!(
        p.backends.postgres.mode,
        PostgresMode::InCluster | PostgresMode::Rds
    ) && uses_postgres(p)
    {
        out.push(ns(
            p.backends.postgres.in_cluster.namespace.as_ref(),
            "postgres",
            "/backends/postgres/inCluster/namespace",
        ));
    }
    if let Some(a) = p.airflow() {
        out.push(ns(
            a.namespace.as_ref(),
            "airflow",
            "/tools/airflow/namespace",
        ));
    }
    if let Some(m) = p.mlflow() {
        out.push(ns(
            m.namespace.as_ref(),
            "mlflow",
            "/tools/mlflow/namespace",
        ));
    }
    if let Some(j) = p.jupyterhub() {
        out.push(ns(
            j.namespace.as_ref(),
            "jupyterhub",
            "/tools/jupyterhub/namespace",
        ));
    }
    out
}

/// Whether any enabled tool keeps its data in Postgres.
pub fn uses_postgres(p: &PlatformConfig) -> bool {
    p.enabled(Tool::Airflow)
        || p.enabled(Tool::Mlflow)
        || p.tools
            .jupyterhub
            .as_ref()
            .is_some_and(|j| p.enabled(Tool::Jupyterhub) && j.database.kind == HubDbKind::Postgres)
}

/// Finds every `{fromEnv|fromFile}` in the config (outside disabled tools) and reads it.
fn collect_inputs(
    ctx: &Ctx<'_>,
    value: &Value,
    pointer: &str,
    p: &PlatformConfig,
    inputs: &mut Inputs,
    problems: &mut Vec<Diagnostic>,
) {
    match value {
        Value::Object(map) => {
            if pointer == "/secrets/key" {
                return; // resolved by resolve_key, with its own default
            }
            if let Some(tool) = pointer.strip_prefix("/tools/") {
                if !tool.contains('/') && !Tool::from_name(tool).is_some_and(|t| p.enabled(t)) {
                    return;
                }
            }
            if is_value_source(map) {
                if let Ok(src) = serde_json::from_value::<ValueSource>(value.clone()) {
                    if let Some(secret) = read_source(ctx, &src, pointer, problems) {
                        inputs.0.insert(pointer.to_owned(), secret);
                    }
                }
                return;
            }
            for (k, v) in map {
                let child = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                collect_inputs(ctx, v, &child, p, inputs, problems);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_inputs(ctx, v, &format!("{pointer}/{i}"), p, inputs, problems);
            }
        }
        _ => {}
    }
}

fn is_value_source(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 1 && (map.contains_key("fromEnv") || map.contains_key("fromFile"))
}

/// Reads one source. A missing or empty variable or file (or one of only white space) is an
/// error, never an empty string. A `fromFile` reads a regular file of at most
/// [`files::MAX_SECRET_BYTES`], anywhere the user can read (relative paths from the file that
/// names it), never a FIFO, a device or a pseudo-file. Every value read is a secret from then
/// on (see [`crate::redact`]), and so is its file.
fn read_source(
    ctx: &Ctx<'_>,
    src: &ValueSource,
    pointer: &str,
    problems: &mut Vec<Diagnostic>,
) -> Option<Secret> {
    if let Some(var) = &src.from_env {
        let at = format!("{pointer}/fromEnv");
        return match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => {
                crate::redact::secret_with_spellings(&v);
                Some(Secret::new(v))
            }
            Ok(v) => {
                crate::redact::secret_with_spellings(&v);
                let what = if v.is_empty() {
                    "empty"
                } else {
                    "only white space"
                };
                problems.push(ctx.diag(&at, format!("environment variable `{var}` is {what}")));
                None
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                problems.push(ctx.diag(
                    &at,
                    format!("environment variable `{var}` is not UTF-8 text"),
                ));
                None
            }
            Err(std::env::VarError::NotPresent) => {
                problems.push(
                    ctx.diag(&at, format!("environment variable `{var}` is not set"))
                        .help(format!(
                            "export {var}=... before running mlplat, or use {{fromFile: path}}"
                        )),
                );
                None
            }
        };
    }
    if let Some(file) = &src.from_file {
        let at = format!("{pointer}/fromFile");
        let path = ctx.dir(&at).join(file);
        crate::redact::secret_file(&path);
        let shown = path.display();
        let read = crate::files::read(&path, crate::files::MAX_SECRET_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
            });
        return match read {
            Ok(text) => {
                let v = text.trim_end_matches(['\n', '\r']);
                crate::redact::secret_with_spellings(v);
                if v.trim().is_empty() {
                    let what = if v.is_empty() {
                        "empty"
                    } else {
                        "only white space"
                    };
                    problems.push(ctx.diag(&at, format!("file `{shown}` is {what}")));
                    None
                } else {
                    Some(Secret::new(v.to_owned()))
                }
            }
            Err(e) => {
                problems.push(
                    ctx.diag(&at, format!("cannot read `{shown}`: {e}"))
                        .help("paths are relative to the config file"),
                );
                None
            }
        };
    }
    None
}

fn resolve_key(
    ctx: &Ctx<'_>,
    p: &PlatformConfig,
    problems: &mut Vec<Diagnostic>,
) -> Option<Secret> {
    let (src, pointer) = match &p.secrets.key {
        Some(src) => (src.clone(), "/secrets/key"),
        None if std::env::var_os(KEY_ENV).is_some() => (
            ValueSource {
                from_env: Some(KEY_ENV.to_owned()),
                from_file: None,
            },
            "",
        ),
        None => {
            if !ctx.dir("").join(KEY_FILE).exists() {
                problems.push(
                    ctx.diag("", "no platform secret key: every generated secret is derived from it")
                        .help(format!(
                            "run `mlplat init` to create {KEY_FILE}, set {KEY_ENV}, or set secrets.key: {{fromFile: path}}"
                        )),
                );
                return None;
            }
            (
                ValueSource {
                    from_env: None,
                    from_file: Some(KEY_FILE.to_owned()),
                },
                "",
            )
        }
    };
    let key = read_source(ctx, &src, pointer, problems)?;
    if key.expose().len() < 32 {
        problems.push(
            ctx.diag(
                pointer,
                "the platform secret key is shorter than 32 characters",
            )
            .help("`mlplat init` writes a 64-character key"),
        );
        return None;
    }
    Some(key)
}

fn load_values_files(
    ctx: &Ctx<'_>,
    p: &PlatformConfig,
    problems: &mut Vec<Diagnostic>,
) -> BTreeMap<&'static str, Vec<ValuesFile>> {
    let mut out = BTreeMap::new();
    let lists: [(&'static str, Option<&Vec<String>>); 2] = [
        ("airflow", p.airflow().map(|a| &a.values)),
        ("jupyterhub", p.jupyterhub().map(|j| &j.values)),
    ];
    for (tool, list) in lists {
        let Some(list) = list else {
            continue;
        };
        let mut files = Vec::new();
        for (i, rel) in list.iter().enumerate() {
            let pointer = format!("/tools/{tool}/values/{i}");
            let path = ctx.dir(&pointer).join(rel);
            if crate::redact::is_secret_file(&path) || layers::is_key_file(&path) {
                crate::redact::secret_file(&path);
                problems.push(Diagnostic::new(&path, "holds a secret").key(key_path(&pointer)));
                continue;
            }
            let text = match crate::files::read_yaml(&path) {
                Ok(Ok(t)) => t,
                Ok(Err(d)) => {
                    problems.push(d);
                    continue;
                }
                Err(e) => {
                    problems.push(ctx.diag(
                        &pointer,
                        format!("cannot read values file {}: {e}", path.display()),
                    ));
                    continue;
                }
            };
            match yaml::parse_document(&text) {
                Ok(doc) => match doc.to_json() {
                    v @ Value::Object(_) => files.push(ValuesFile {
                        path,
                        value: v,
                        doc,
                        text,
                    }),
                    Value::Null => {}
                    _ => {
                        // A lone scalar is no values file: it may be a token; never quoted.
                        crate::redact::never_quote(&path);
                        problems.push(
                            Diagnostic::new(
                                &path,
                                format!(
                                    "chart values must be a mapping, found {}",
                                    doc.type_name()
                                ),
                            )
                            .at_line(doc.pos, None),
                        );
                    }
                },
                Err(e) => {
                    redaction::mask_line_by_keys(&path, &text, e.pos().line);
                    problems.push(Diagnostic::new(&path, e.to_string()).at(e.pos(), &text));
                }
            }
        }
        out.insert(tool, files);
    }
    out
}
