//! The AWS backends of the config: `backends.postgres.rds` (RDS PostgreSQL, one instance per
//! tool or one shared) and `backends.artifacts.s3` (MLflow's artifact bucket), and the rules AWS
//! enforces but an emulator does not, checked at load time so that no call is made with them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    ArtifactsMode, Ctx, Diagnostic, Inputs, Loaded, PlatformConfig, PostgresMode, Tool, ValueSource,
};

/// RDS PostgreSQL. Every key of the seed's module has its place here.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RdsConfig {
    #[serde(default)]
    pub layout: RdsLayout,
    /// per-tool: the prefix of each instance's identifier (`<identifier>-<tool>`);
    /// shared: the instance's identifier. Default: the platform's name.
    pub identifier: Option<String>,
    pub vpc_id: String,
    pub private_subnets: Vec<String>,
    pub private_subnets_cidr_blocks: Vec<String>,
    /// Security groups to attach instead of the one mlplat creates.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub engine: RdsEngine,
    pub engine_version: Option<String>,
    pub instance_class: Option<String>,
    #[serde(default)]
    pub storage_type: StorageType,
    pub allocated_storage: Option<u32>,
    /// Storage autoscaling ceiling in GiB; 0 turns autoscaling off.
    pub max_allocated_storage: Option<u32>,
    /// shared layout: the master user (default `mlplat`). per-tool: each tool's user is master.
    pub master_username: Option<String>,
    /// shared layout: the master password, when it is not derived.
    pub master_password: Option<ValueSource>,
    /// shared layout: let RDS keep the master password in Secrets Manager.
    #[serde(default)]
    pub manage_master_password: bool,
    pub deletion_protection: Option<bool>,
    pub backup_retention_days: Option<u32>,
    #[serde(default)]
    pub skip_final_snapshot: bool,
    pub sslmode: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RdsLayout {
    /// One instance per tool, the tool's user its master user (the seed's layout).
    #[default]
    PerTool,
    /// One instance; a database and a user per tool, created by a Job as the master user.
    Shared,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RdsEngine {
    #[default]
    Postgres,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StorageType {
    Gp2,
    #[default]
    Gp3,
    Io1,
    Io2,
}

impl StorageType {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::Gp2 => "gp2",
            StorageType::Gp3 => "gp3",
            StorageType::Io1 => "io1",
            StorageType::Io2 => "io2",
        }
    }
}

/// MLflow's artifact bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    #[serde(default)]
    pub encryption: S3Encryption,
    pub kms_key_id: Option<String>,
    /// Delete a non-empty bucket (every object version) on `mlplat destroy`.
    #[serde(default)]
    pub force_destroy: bool,
    /// The IAM role MLflow's ServiceAccount assumes (IRSA).
    pub role_arn: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum S3Encryption {
    #[default]
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "aws:kms")]
    Kms,
}

impl S3Encryption {
    pub fn as_str(self) -> &'static str {
        match self {
            S3Encryption::Aes256 => "AES256",
            S3Encryption::Kms => "aws:kms",
        }
    }
}

/// Whether the platform runs on AWS (an RDS database or an S3 bucket).
pub fn on_aws(p: &PlatformConfig) -> bool {
    p.backends.postgres.mode == PostgresMode::Rds || p.backends.artifacts.mode == ArtifactsMode::S3
}

/// RDS's rule for a master password: 8 to 128 printable ASCII characters, none of `/`, `@`,
/// `"` or a space. `Err` says what is wrong, never what the password is.
pub fn check_rds_password(p: &str) -> Result<(), String> {
    if p.len() < 8 || p.len() > 128 {
        return Err(format!(
            "an RDS master password has 8 to 128 characters, this one has {}",
            p.chars().count()
        ));
    }
    if let Some(c) = p.chars().find(|c| !c.is_ascii_graphic() && *c != ' ') {
        return Err(format!(
            "an RDS master password is printable ASCII; this one holds {}",
            if c.is_ascii() {
                "a control character".to_owned()
            } else {
                "a non-ASCII character".to_owned()
            }
        ));
    }
    if let Some(c) = p.chars().find(|c| matches!(c, '/' | '@' | '"' | ' ')) {
        let what = if c == ' ' {
            "a space".to_owned()
        } else {
            format!("`{c}`")
        };
        return Err(format!(
            "RDS refuses a master password with {what} (nor `/`, `@`, `\"` or a space)"
        ));
    }
    Ok(())
}

/// S3's naming rules beyond the schema's pattern. `Err` says which rule.
pub fn check_bucket_name(b: &str) -> Result<(), String> {
    if b.len() < 3 || b.len() > 63 {
        return Err("a bucket name has 3 to 63 characters".into());
    }
    if !b
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
    {
        return Err("a bucket name holds lowercase letters, digits, `.` and `-` only".into());
    }
    let first_last = [b.as_bytes()[0], b.as_bytes()[b.len() - 1]];
    if !first_last
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err("a bucket name starts and ends with a letter or digit".into());
    }
    if b.contains("..") || b.contains(".-") || b.contains("-.") {
        return Err("a bucket name has no `..`, `.-` or `-.`".into());
    }
    if b.split('.').count() == 4 && b.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("a bucket name is not an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if b.starts_with(prefix) {
            return Err(format!("S3 reserves the prefix `{prefix}`"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if b.ends_with(suffix) {
            return Err(format!("S3 reserves the suffix `{suffix}`"));
        }
    }
    Ok(())
}

/// `a.b.c.d/n` with each part in range.
pub fn check_cidr(c: &str) -> bool {
    let Some((ip, len)) = c.split_once('/') else {
        return false;
    };
    let parts: Vec<&str> = ip.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
        && len.parse::<u8>().is_ok_and(|n| n <= 32)
        && !len.starts_with('+')
}

/// An RDS identifier (instance, subnet group): a letter, then letters, digits and single `-`,
/// at most 63, not ending in `-`.
pub fn check_identifier(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !id.ends_with('-')
        && !id.contains("--")
}

/// A PostgreSQL name RDS accepts for a master user or the initial database.
fn check_pg_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The tools that keep data in Postgres, with the config pointer of their `database` block
/// and their user and database names.
pub fn postgres_tools(p: &PlatformConfig) -> Vec<(&'static str, &'static str, String, String)> {
    let mut out = Vec::new();
    if let Some(a) = p.airflow() {
        out.push((
            "airflow",
            "/tools/airflow/database",
            a.database.user.clone().unwrap_or_else(|| "airflow".into()),
            a.database.name.clone().unwrap_or_else(|| "airflow".into()),
        ));
    }
    if let Some(m) = p.mlflow() {
        out.push((
            "mlflow",
            "/tools/mlflow/database",
            m.database.user.clone().unwrap_or_else(|| "mlflow".into()),
            m.database.name.clone().unwrap_or_else(|| "mlflow".into()),
        ));
    }
    if let Some(j) =
        p.tools.jupyterhub.as_ref().filter(|j| {
            p.enabled(Tool::Jupyterhub) && j.database.kind == super::HubDbKind::Postgres
        })
    {
        out.push((
            "jupyterhub",
            "/tools/jupyterhub/database",
            j.database
                .user
                .clone()
                .unwrap_or_else(|| "jupyterhub".into()),
            j.database
                .name
                .clone()
                .unwrap_or_else(|| "jupyterhub".into()),
        ));
    }
    out
}

/// Rules on the AWS backends that a JSON Schema cannot say.
pub(super) fn checks(ctx: &Ctx<'_>, p: &PlatformConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let pg = &p.backends.postgres;
    if pg.mode == PostgresMode::Rds {
        match &pg.rds {
            None => out.push(
                ctx.diag("/backends/postgres/mode", "mode `rds` needs `backends.postgres.rds`")
                    .help("add rds: {vpcId: vpc-..., privateSubnets: [subnet-..., subnet-...], privateSubnetsCidrBlocks: [10.0.1.0/24, 10.0.2.0/24]}"),
            ),
            Some(rds) => rds_checks(ctx, p, rds, &mut out),
        }
    }
    if p.backends.artifacts.mode == ArtifactsMode::S3 {
        match &p.backends.artifacts.s3 {
            None => out.push(
                ctx.diag(
                    "/backends/artifacts/mode",
                    "mode `s3` needs `backends.artifacts.s3`",
                )
                .help("add s3: {bucket: my-platform-mlflow-artifacts}"),
            ),
            Some(s3) => {
                if let Err(e) = check_bucket_name(&s3.bucket) {
                    out.push(
                        ctx.diag(
                            "/backends/artifacts/s3/bucket",
                            format!("`{}` is not a valid S3 bucket name: {e}", s3.bucket),
                        )
                        .help("see https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"),
                    );
                }
                if s3.kms_key_id.is_some() && s3.encryption != S3Encryption::Kms {
                    out.push(ctx.diag(
                        "/backends/artifacts/s3/kmsKeyId",
                        "a KMS key needs `encryption: aws:kms`",
                    ));
                }
            }
        }
    }
    out
}

fn rds_checks(ctx: &Ctx<'_>, p: &PlatformConfig, rds: &RdsConfig, out: &mut Vec<Diagnostic>) {
    let base = "/backends/postgres/rds";
    for (i, c) in rds.private_subnets_cidr_blocks.iter().enumerate() {
        if !check_cidr(c) {
            out.push(
                ctx.diag(
                    &format!("{base}/privateSubnetsCidrBlocks/{i}"),
                    format!("`{c}` is not an IPv4 CIDR block"),
                )
                .help("write it as 10.0.1.0/24"),
            );
        }
    }
    let prefix = rds.identifier.clone().unwrap_or_else(|| p.platform.clone());
    let ids: Vec<String> = match rds.layout {
        RdsLayout::Shared => vec![prefix.clone()],
        RdsLayout::PerTool => postgres_tools(p)
            .iter()
            .map(|(t, ..)| format!("{prefix}-{t}"))
            .collect(),
    };
    for id in ids {
        if !check_identifier(&id) {
            out.push(
                ctx.diag(
                    &format!("{base}/identifier"),
                    format!("`{id}` is not a valid RDS instance identifier"),
                )
                .help("letters, digits and single hyphens, starting with a letter, at most 63 characters"),
            );
        }
    }
    match rds.layout {
        RdsLayout::Shared => {
            let user = rds
                .master_username
                .as_deref()
                .unwrap_or(super::defaults::DEFAULT_SHARED_MASTER);
            if !check_pg_name(user) || user == "rdsadmin" {
                out.push(
                    ctx.diag(
                        &format!("{base}/masterUsername"),
                        format!("RDS refuses `{user}` as a master user name"),
                    )
                    .help("letters, digits and `_`, starting with a letter (not rdsadmin)"),
                );
            }
            if rds.manage_master_password && rds.master_password.is_some() {
                out.push(
                    ctx.diag(
                        &format!("{base}/manageMasterPassword"),
                        "give either `masterPassword` or `manageMasterPassword: true`, not both",
                    )
                    .help("RDS refuses a password when it manages the password itself"),
                );
            }
        }
        RdsLayout::PerTool => {
            for key in ["masterUsername", "masterPassword", "manageMasterPassword"] {
                let set = match key {
                    "masterUsername" => rds.master_username.is_some(),
                    "masterPassword" => rds.master_password.is_some(),
                    _ => rds.manage_master_password,
                };
                if set {
                    out.push(
                        ctx.diag(
                            &format!("{base}/{key}"),
                            format!("`{key}` belongs to `layout: shared`"),
                        )
                        .help("with layout per-tool each tool's database user is its instance's master user: set tools.<tool>.database.user / password"),
                    );
                }
            }
            for (_, pointer, user, name) in postgres_tools(p) {
                if !check_pg_name(&user) || user == "rdsadmin" {
                    out.push(
                        ctx.diag(
                            &format!("{pointer}/user"),
                            format!("RDS refuses `{user}` as a master user name"),
                        )
                        .help("with layout per-tool the tool's user is the master user: letters, digits and `_`, starting with a letter"),
                    );
                }
                if !check_pg_name(&name) {
                    out.push(
                        ctx.diag(
                            &format!("{pointer}/name"),
                            format!("RDS refuses `{name}` as a database name"),
                        )
                        .help("letters, digits and `_`, starting with a letter"),
                    );
                }
            }
        }
    }
    let allocated = rds
        .allocated_storage
        .unwrap_or_else(|| super::defaults::number("/backends/postgres/rds/allocatedStorage"));
    if let Some(max) = rds
        .max_allocated_storage
        .filter(|m| *m != 0 && *m <= allocated)
    {
        out.push(
            ctx.diag(
                &format!("{base}/maxAllocatedStorage"),
                format!("the autoscaling ceiling ({max} GiB) must be above allocatedStorage ({allocated} GiB)"),
            )
            .help("raise it, or set 0 to turn storage autoscaling off"),
        );
    }
}

/// Passwords handed to RDS as a master password, once the inputs are read.
pub(super) fn password_checks(
    ctx: &Ctx<'_>,
    p: &PlatformConfig,
    inputs: &Inputs,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(rds) = p.backends.postgres.rds.as_ref() else {
        return out;
    };
    if p.backends.postgres.mode != PostgresMode::Rds {
        return out;
    }
    let pointers: Vec<String> = match rds.layout {
        RdsLayout::Shared => vec!["/backends/postgres/rds/masterPassword".into()],
        RdsLayout::PerTool => postgres_tools(p)
            .iter()
            .map(|(_, ptr, ..)| format!("{ptr}/password"))
            .collect(),
    };
    for ptr in pointers {
        if let Some(secret) = inputs.get(&ptr) {
            if let Err(e) = check_rds_password(secret.expose()) {
                out.push(ctx.diag(&ptr, e).help(
                    "choose another password, or leave the key out and mlplat derives one RDS accepts",
                ));
            }
        }
    }
    out
}

// --- what the config names in AWS -------------------------------------------------------

/// The RDS config, when the platform keeps its databases on RDS.
pub fn rds_config(loaded: &Loaded) -> Option<&RdsConfig> {
    let pg = &loaded.platform.backends.postgres;
    pg.rds.as_ref().filter(|_| pg.mode == PostgresMode::Rds)
}

/// The S3 config, when MLflow's artifacts go to S3 and MLflow is on.
pub fn s3_config(loaded: &Loaded) -> Option<&S3Config> {
    let a = &loaded.platform.backends.artifacts;
    a.s3.as_ref()
        .filter(|_| a.mode == ArtifactsMode::S3 && loaded.platform.enabled(Tool::Mlflow))
}

/// The identifier of the instance that keeps `tool`'s data.
pub fn instance_for(loaded: &Loaded, rds: &RdsConfig, tool: &str) -> String {
    let prefix = rds
        .identifier
        .clone()
        .unwrap_or_else(|| loaded.platform.platform.clone());
    match rds.layout {
        RdsLayout::Shared => prefix,
        RdsLayout::PerTool => format!("{prefix}-{tool}"),
    }
}

/// The names of the AWS resources the platform asks for (`RDS instance mlops-airflow`, …),
/// found without deriving anything: what must differ between two environments.
pub fn resource_names(loaded: &Loaded) -> Vec<String> {
    let p = &loaded.platform;
    let mut names = Vec::new();
    let tools = postgres_tools(p);
    if let Some(rds) = rds_config(loaded).filter(|_| !tools.is_empty()) {
        let prefix = rds.identifier.clone().unwrap_or_else(|| p.platform.clone());
        names.push(format!("DB subnet group {prefix}-db"));
        if rds.security_group_ids.is_empty() {
            names.push(format!("security group {prefix}-db"));
        }
        match rds.layout {
            RdsLayout::Shared => names.push(format!("RDS instance {prefix}")),
            RdsLayout::PerTool => names.extend(
                tools
                    .iter()
                    .map(|(tool, ..)| format!("RDS instance {}", instance_for(loaded, rds, tool))),
            ),
        }
    }
    if let Some(s3) = s3_config(loaded) {
        names.push(format!("S3 bucket {}", s3.bucket));
    }
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rds_passwords_follow_the_rds_policy() {
        assert!(check_rds_password("short").is_err());
        assert!(check_rds_password("long-enough-1").is_ok());
        for bad in ["has/slash1", "has@at-sign", "has\"quote", "has a space"] {
            let e = check_rds_password(bad).unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
        assert!(check_rds_password(&"x".repeat(129)).is_err());
        assert!(check_rds_password("tab\there-x").is_err());
    }

    #[test]
    fn bucket_names_follow_the_s3_rules() {
        for ok in ["mlops-artifacts", "a.b.c", "abc"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "Mlops",
            "ab",
            "a..b",
            "-abc",
            "abc-",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "a_b",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_and_identifiers() {
        assert!(check_cidr("10.0.1.0/24"));
        assert!(!check_cidr("10.0.1.0"));
        assert!(!check_cidr("10.0.256.0/24"));
        assert!(!check_cidr("10.0.1.0/33"));
        assert!(check_identifier("mlops-airflow"));
        assert!(!check_identifier("mlops--airflow"));
        assert!(!check_identifier("1mlops"));
        assert!(!check_identifier("mlops-"));
    }
}
