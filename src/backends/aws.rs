//! What the config asks of AWS, computed without a call: the security group, the DB subnet
//! group, each RDS instance and the bucket, with deterministic names, so that every run (and
//! a run after an interrupted one) finds the same resources. Shared with the render, which
//! needs the same identifiers and master passwords.

use std::collections::BTreeMap;

use crate::config::aws::{RdsLayout, instance_for, postgres_tools, rds_config, s3_config};
use crate::config::defaults::DEFAULT_SHARED_MASTER;
use crate::config::{Loaded, RdsConfig, S3Encryption};
use crate::secrets::{Deriver, Policy, Secret};

/// The tag every resource mlplat creates carries; `destroy` removes only what has it.
pub const TAG_MANAGED_BY: &str = "managed-by";
pub const TAG_PLATFORM: &str = "mlplat:platform";
pub const TAG_TOOL: &str = "mlplat:tool";

/// The whole of what the platform wants from AWS.
#[derive(Debug, Clone)]
pub struct Desired {
    pub platform: String,
    pub security_group: Option<SecurityGroupSpec>,
    pub subnet_group: Option<SubnetGroupSpec>,
    pub instances: Vec<InstanceSpec>,
    pub bucket: Option<BucketSpec>,
}

#[derive(Debug, Clone)]
pub struct SecurityGroupSpec {
    pub name: String,
    pub vpc_id: String,
    pub port: u16,
    pub cidrs: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct SubnetGroupSpec {
    pub name: String,
    pub subnets: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// How the master password is set.
#[derive(Debug, Clone)]
pub enum MasterPassword {
    /// Derived by mlplat or given in the config: sent on create, never printed.
    Given(Secret),
    /// RDS keeps it in Secrets Manager (`ManageMasterUserPassword`).
    Managed,
}

#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub identifier: String,
    /// The tools whose data it keeps.
    pub tools: Vec<String>,
    pub db_name: String,
    pub master_username: String,
    pub master_password: MasterPassword,
    pub engine: String,
    pub engine_version: String,
    pub instance_class: String,
    pub storage_type: String,
    pub allocated_storage: u32,
    /// 0: no storage autoscaling.
    pub max_allocated_storage: u32,
    pub port: u16,
    pub deletion_protection: bool,
    pub backup_retention_days: u32,
    pub skip_final_snapshot: bool,
    pub subnet_group: String,
    /// Empty: the security group mlplat creates (its id is known once it exists).
    pub security_group_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct BucketSpec {
    pub name: String,
    pub encryption: S3Encryption,
    pub kms_key_id: Option<String>,
    pub force_destroy: bool,
    pub tags: BTreeMap<String, String>,
}

fn base_tags(
    platform: &str,
    tool: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = user.clone();
    tags.insert(TAG_MANAGED_BY.into(), "mlplat".into());
    tags.insert(TAG_PLATFORM.into(), platform.into());
    tags.insert(TAG_TOOL.into(), tool.into());
    tags
}

/// The master password of an instance, as the config decides: given (`fromEnv`/`fromFile`),
/// derived (an RDS-safe password), or `None` when RDS manages it.
pub fn master_password(
    loaded: &Loaded,
    rds: &RdsConfig,
    deriver: &Deriver,
    identifier: &str,
    tool_pointer: Option<&str>,
) -> Option<Secret> {
    let given = match rds.layout {
        RdsLayout::Shared if rds.manage_master_password => return None,
        RdsLayout::Shared => loaded.inputs.get("/backends/postgres/rds/masterPassword"),
        RdsLayout::PerTool => {
            tool_pointer.and_then(|p| loaded.inputs.get(&format!("{p}/password")))
        }
    };
    Some(given.cloned().unwrap_or_else(|| {
        deriver.derive(&format!("rds/{identifier}/master"), Policy::RdsPassword)
    }))
}

impl Desired {
    /// Everything the config asks for. Validation happened at load time.
    pub fn from_config(loaded: &Loaded) -> Desired {
        let p = &loaded.platform;
        let deriver = Deriver::new(&loaded.key, &p.platform)
            .with_generations(loaded.lock.secrets.generations.clone());
        let mut d = Desired {
            platform: p.platform.clone(),
            security_group: None,
            subnet_group: None,
            instances: Vec::new(),
            bucket: None,
        };
        let tools = postgres_tools(p);
        if let Some(rds) = rds_config(loaded).filter(|_| !tools.is_empty()) {
            let prefix = rds.identifier.clone().unwrap_or_else(|| p.platform.clone());
            let port = rds
                .port
                .unwrap_or_else(|| crate::config::defaults::port("/backends/postgres/rds/port"));
            let name = format!("{prefix}-db");
            if rds.security_group_ids.is_empty() {
                d.security_group = Some(SecurityGroupSpec {
                    name: name.clone(),
                    vpc_id: rds.vpc_id.clone(),
                    port,
                    cidrs: rds.private_subnets_cidr_blocks.clone(),
                    tags: base_tags(&p.platform, "postgres", &rds.tags),
                });
            }
            d.subnet_group = Some(SubnetGroupSpec {
                name: name.clone(),
                subnets: rds.private_subnets.clone(),
                tags: base_tags(&p.platform, "postgres", &rds.tags),
            });
            let mut instance = |identifier: String,
                                tools: Vec<String>,
                                db_name: String,
                                user: String,
                                password: MasterPassword| {
                let tag_tool = if tools.len() == 1 {
                    tools[0].clone()
                } else {
                    "shared".to_owned()
                };
                d.instances.push(InstanceSpec {
                    tags: base_tags(&p.platform, &tag_tool, &rds.tags),
                    identifier,
                    tools,
                    db_name,
                    master_username: user,
                    master_password: password,
                    engine: "postgres".into(),
                    engine_version: rds.engine_version.clone().unwrap_or_else(|| {
                        crate::config::defaults::text("/backends/postgres/rds/engineVersion").into()
                    }),
                    instance_class: rds.instance_class.clone().unwrap_or_else(|| {
                        crate::config::defaults::text("/backends/postgres/rds/instanceClass").into()
                    }),
                    storage_type: rds.storage_type.as_str().into(),
                    allocated_storage: rds.allocated_storage.unwrap_or_else(|| {
                        crate::config::defaults::number("/backends/postgres/rds/allocatedStorage")
                    }),
                    max_allocated_storage: rds.max_allocated_storage.unwrap_or_else(|| {
                        crate::config::defaults::number(
                            "/backends/postgres/rds/maxAllocatedStorage",
                        )
                    }),
                    port,
                    deletion_protection: rds.deletion_protection.unwrap_or_else(|| {
                        crate::config::defaults::flag("/backends/postgres/rds/deletionProtection")
                    }),
                    backup_retention_days: rds.backup_retention_days.unwrap_or_else(|| {
                        crate::config::defaults::number(
                            "/backends/postgres/rds/backupRetentionDays",
                        )
                    }),
                    skip_final_snapshot: rds.skip_final_snapshot,
                    subnet_group: name.clone(),
                    security_group_ids: rds.security_group_ids.clone(),
                });
            };
            match rds.layout {
                RdsLayout::PerTool => {
                    for (tool, pointer, user, db) in &tools {
                        let id = instance_for(loaded, rds, tool);
                        let pw = master_password(loaded, rds, &deriver, &id, Some(pointer));
                        instance(
                            id,
                            vec![(*tool).to_owned()],
                            db.clone(),
                            user.clone(),
                            pw.map_or(MasterPassword::Managed, MasterPassword::Given),
                        );
                    }
                }
                RdsLayout::Shared => {
                    let pw = master_password(loaded, rds, &deriver, &prefix, None);
                    instance(
                        prefix.clone(),
                        tools.iter().map(|(t, ..)| (*t).to_owned()).collect(),
                        "postgres".into(),
                        rds.master_username
                            .clone()
                            .unwrap_or_else(|| DEFAULT_SHARED_MASTER.into()),
                        pw.map_or(MasterPassword::Managed, MasterPassword::Given),
                    );
                }
            }
        }
        if let Some(s3) = s3_config(loaded) {
            d.bucket = Some(BucketSpec {
                name: s3.bucket.clone(),
                encryption: s3.encryption,
                kms_key_id: s3.kms_key_id.clone(),
                force_destroy: s3.force_destroy,
                tags: base_tags(&p.platform, "mlflow", &s3.tags),
            });
        }
        d
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.bucket.is_none()
    }
}
