//! The `aws` section of the lock file: what `mlplat provision` found or created, so that
//! `render` needs no AWS credentials. Endpoints, ports, identifiers, ARNs and names only: never
//! a password (an RDS-managed master password is named by its Secrets Manager ARN).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsLock {
    /// The region the resources live in.
    pub region: String,
    /// The security group mlplat created (absent when the config gives its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group: Option<String>,
    /// RDS instances by identifier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rds: BTreeMap<String, RdsInstanceLock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<BucketLock>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RdsInstanceLock {
    pub arn: String,
    pub endpoint: String,
    pub port: u16,
    pub master_username: String,
    /// The Secrets Manager secret RDS keeps the master password in (manageMasterPassword).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user_secret_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketLock {
    pub name: String,
    pub arn: String,
}
