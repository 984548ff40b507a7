//! The command line: arguments only. Each command lives in `commands/<name>.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Compile one platform config into the Kubernetes manifests of an ML platform: Apache
/// Airflow, MLflow and JupyterHub, with their databases and secrets.
///
/// Exit codes: 0 success (or up to date), 1 out/ differs from a fresh render (--check),
/// 2 error.
#[derive(Debug, Parser)]
#[command(
    name = "mlplat",
    bin_name = "mlplat",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 done or up to date; 1 out/ differs from a fresh render (render --check, diff) or AWS changes are pending (plan); 2 error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the platform into a directory of manifests (`kubectl apply -k out/`).
    Render(RenderArgs),
    /// Write a commented starter config and a new platform secret key.
    Init(InitArgs),
    /// Show what a fresh render would change in the output, per Kubernetes object.
    Diff(DiffArgs),
    /// Show what `provision` would create or change on AWS (read-only; exit 1 if anything).
    Plan(PlanArgs),
    /// Create or update the AWS backends (RDS, S3), record their endpoints in the lock file,
    /// and (secrets.mode: external-secrets) store the platform's secrets in Secrets Manager.
    Provision(ProvisionArgs),
    /// Delete the AWS backends mlplat created for this platform.
    Destroy(DestroyArgs),
    /// Rotate one generated secret: bump its generation in the lock file, say what restarts.
    Rotate(RotateArgs),
    /// Print the final value of a config key and the file and line that set it.
    Explain(ExplainArgs),
    /// Chart archives: pull them, pin them in the lock file (renders check chart values against them; `delivery: rendered` installs them).
    #[command(subcommand)]
    Charts(ChartsCommand),
    /// Images of mlplat's own workloads: read their digests from the registry, pin them in the lock file (`images.pin: digest` renders them).
    #[command(subcommand)]
    Images(ImagesCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Read the digest of each image mlplat's own workloads use (MLflow, PostgreSQL, the
    /// database Jobs), in every environment, from its registry and record it in the lock.
    ///
    /// Needs the network (anonymous pulls: the OCI distribution API, HTTPS; plain HTTP for a
    /// registry on localhost or 127.0.0.1). An image already pinned is kept, and the registry
    /// not asked, unless `--update`; a pin no workload uses any more is dropped.
    Pin(ImagesPinArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImagesPinArgs {
    /// The platform config (its lock file beside it records the digests).
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// Read every digest again, and record the ones whose tag now names another manifest.
    #[arg(long)]
    pub update: bool,
}

/// Reads the config and the environment's overlay only: nothing is checked, no `fromEnv` or
/// `fromFile` is read.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The platform config.
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// Explain the value in this environment (default: in the base config alone).
    #[arg(short, long, value_name = "NAME")]
    pub env: Option<String>,
    /// The key, dotted as in error messages: `tools.mlflow.replicas`, `tools.airflow.users[0].role`.
    #[arg(value_name = "KEY")]
    pub key: String,
}

#[derive(Debug, Subcommand)]
pub enum ChartsCommand {
    /// Pull each chart into the cache (`helm pull`) and pin its archive's sha256 in the lock.
    ///
    /// Every environment's charts, when the config declares environments. Needs the network;
    /// `render` then stays offline, checks the chart values against each pinned chart's own
    /// schema, and (`delivery: rendered`) refuses an archive that no longer matches its pin. Helm is `$MLPLAT_HELM`, else `helm` on PATH; the cache is
    /// `$MLPLAT_CACHE`, else `$XDG_CACHE_HOME/mlplat/charts`, else `~/.cache/mlplat/charts`.
    Pull(ChartsPullArgs),
}

#[derive(Debug, clap::Args)]
pub struct ChartsPullArgs {
    /// The platform config (its lock file beside it records the pins).
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// Pin what the repository serves now even where it differs from the pinned archive of
    /// the same version (a chart republished in place). Review the change first.
    #[arg(long)]
    pub update: bool,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The platform config (its lock file beside it records the generations).
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// Rotate in this environment only (default: in every environment that derives the
    /// secret, after one confirmation; each environment's lock file records its generations).
    #[arg(short, long, value_name = "NAME")]
    pub env: Option<String>,
    /// Rotate in every environment without asking.
    #[arg(long)]
    pub yes: bool,
    /// The secret to rotate, as `--list` names it (for example `airflow/fernet-key`).
    #[arg(value_name = "SECRET", required_unless_present = "list")]
    pub name: Option<String>,
    /// List the secrets that can be rotated, with their generation and where they are used.
    #[arg(long, conflicts_with = "name")]
    pub list: bool,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The platform config.
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// The output directory: mlplat owns it and replaces it whole.
    #[arg(short, long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// Write nothing; exit 1 and name the files that differ when the output is stale.
    #[arg(long)]
    pub check: bool,
    /// Render only this environment, into DIR/NAME/ (default: every environment the config
    /// declares, each into DIR/<name>/).
    #[arg(short, long, value_name = "NAME")]
    pub env: Option<String>,
}

/// Exit codes: 0 nothing would change, 1 something would, 2 error.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The platform config.
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// The output directory to compare with a fresh render.
    #[arg(short, long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// Compare only this environment, in DIR/NAME/ (default: every environment).
    #[arg(short, long, value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The platform config.
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// Plan this environment only (default: every environment with AWS backends).
    #[arg(short, long, value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The platform config; the lock file beside it receives the endpoints.
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// Provision this environment only (default: every environment with AWS backends, one
    /// after another, after their plans and one confirmation).
    #[arg(short, long, value_name = "NAME")]
    pub env: Option<String>,
    /// Provision every environment without asking.
    #[arg(long)]
    pub yes: bool,
    /// How long to wait for the databases to become available (90s, 40m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "40m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How often to ask AWS for their status.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration, hide = true)]
    pub poll_interval: Duration,
}

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// The platform config.
    #[arg(short, long, value_name = "FILE", default_value = "platform.yaml")]
    pub config: PathBuf,
    /// Destroy this environment's backends only (default: every environment's, one after
    /// another, after one confirmation).
    #[arg(short, long, value_name = "NAME")]
    pub env: Option<String>,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    /// How long to wait for the databases to be deleted.
    #[arg(long, value_name = "DURATION", default_value = "40m", value_parser = parse_duration)]
    pub timeout: Duration,
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration, hide = true)]
    pub poll_interval: Duration,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Where to write platform.yaml and mlplat.key.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The platform's name.
    #[arg(long, default_value = "mlops")]
    pub name: String,
    /// Replace an existing platform.yaml (the key file is never replaced).
    #[arg(long)]
    pub force: bool,
}

/// `90s`, `40m`, `1h` or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 90s, 40m or 1h"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}` is not a duration such as 90s, 40m or 1h")),
    }
}
