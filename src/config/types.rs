//! The config's shape, as serde reads it once the schema has passed it: one type per block of
//! `platform.yaml`, camelCase keys, unknown keys refused. An enabled tool's block is reached
//! through [`PlatformConfig::airflow`] and its siblings.

use super::*;

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
