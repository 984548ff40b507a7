//! RDS: the DB subnet group and the PostgreSQL instances. Instances are created encrypted, not
//! publicly accessible, with deletion protection and backups as the config says, and tagged
//! with the platform and tool. Only safe in-place changes are ever made to an existing one.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_rds::types::Tag;

use crate::error::from_sdk;
use crate::wait::StatusSource;
use crate::{AwsError, Clients};
use mlplat::backends::aws::{InstanceSpec, MasterPassword, SubnetGroupSpec};

/// An RDS instance as AWS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    pub identifier: String,
    pub status: String,
    pub arn: String,
    pub endpoint: Option<String>,
    pub port: Option<u16>,
    pub instance_class: String,
    pub engine_version: String,
    pub storage_type: String,
    pub allocated_storage: u32,
    pub max_allocated_storage: u32,
    pub deletion_protection: bool,
    pub backup_retention_days: u32,
    pub storage_encrypted: bool,
    pub publicly_accessible: bool,
    pub master_username: String,
    pub master_user_secret_arn: Option<String>,
    pub security_group_ids: BTreeSet<String>,
    pub subnet_group: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A DB subnet group as AWS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetGroupState {
    pub arn: String,
    pub subnets: BTreeSet<String>,
}

fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn instance_resource(id: &str) -> String {
    format!("RDS instance {id}")
}

fn subnet_group_resource(name: &str) -> String {
    format!("DB subnet group {name}")
}

pub async fn find_instance(c: &Clients, id: &str) -> Result<Option<InstanceState>, AwsError> {
    let out = match c
        .rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(from_sdk(&instance_resource(id), "DescribeDBInstances", e)),
    };
    let Some(i) = out.db_instances().first() else {
        return Ok(None);
    };
    let n = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    Ok(Some(InstanceState {
        identifier: id.to_owned(),
        status: i.db_instance_status().unwrap_or("unknown").to_owned(),
        arn: i.db_instance_arn().unwrap_or_default().to_owned(),
        endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_owned),
        port: i
            .endpoint()
            .and_then(|e| e.port())
            .and_then(|p| u16::try_from(p).ok()),
        instance_class: i.db_instance_class().unwrap_or_default().to_owned(),
        engine_version: i.engine_version().unwrap_or_default().to_owned(),
        storage_type: i.storage_type().unwrap_or_default().to_owned(),
        allocated_storage: n(i.allocated_storage()),
        max_allocated_storage: n(i.max_allocated_storage()),
        deletion_protection: i.deletion_protection().unwrap_or(false),
        backup_retention_days: n(i.backup_retention_period()),
        storage_encrypted: i.storage_encrypted().unwrap_or(false),
        publicly_accessible: i.publicly_accessible().unwrap_or(false),
        master_username: i.master_username().unwrap_or_default().to_owned(),
        master_user_secret_arn: i
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .map(str::to_owned),
        security_group_ids: i
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
            .collect(),
        subnet_group: i
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_owned),
        tags: i
            .tag_list()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
    }))
}

/// Creates the instance and returns at once; [`crate::wait`] waits for it.
pub async fn create_instance(
    c: &Clients,
    spec: &InstanceSpec,
    security_group_ids: &[String],
) -> Result<(), AwsError> {
    let mut req = c
        .rds
        .create_db_instance()
        .db_instance_identifier(&spec.identifier)
        .db_name(&spec.db_name)
        .engine(&spec.engine)
        .engine_version(&spec.engine_version)
        .db_instance_class(&spec.instance_class)
        .storage_type(&spec.storage_type)
        .allocated_storage(i32::try_from(spec.allocated_storage).unwrap_or(i32::MAX))
        .storage_encrypted(true)
        .publicly_accessible(false)
        .deletion_protection(spec.deletion_protection)
        .backup_retention_period(i32::try_from(spec.backup_retention_days).unwrap_or(7))
        .copy_tags_to_snapshot(true)
        .auto_minor_version_upgrade(true)
        .master_username(&spec.master_username)
        .port(i32::from(spec.port))
        .db_subnet_group_name(&spec.subnet_group)
        .set_vpc_security_group_ids(Some(security_group_ids.to_vec()))
        .set_tags(Some(tags(&spec.tags)));
    if spec.max_allocated_storage > 0 {
        req = req
            .max_allocated_storage(i32::try_from(spec.max_allocated_storage).unwrap_or(i32::MAX));
    }
    req = match &spec.master_password {
        MasterPassword::Given(p) => req.master_user_password(p.expose()),
        MasterPassword::Managed => req.manage_master_user_password(true),
    };
    req.send()
        .await
        .map_err(|e| from_sdk(&instance_resource(&spec.identifier), "CreateDBInstance", e))?;
    Ok(())
}

/// The safe in-place changes mlplat makes to an existing instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafeChanges {
    pub allocated_storage: Option<u32>,
    pub max_allocated_storage: Option<u32>,
    pub backup_retention_days: Option<u32>,
    pub deletion_protection: Option<bool>,
    pub publicly_accessible: Option<bool>,
    pub tags: BTreeMap<String, String>,
}

impl SafeChanges {
    pub fn is_empty(&self) -> bool {
        *self == SafeChanges::default()
    }
}

pub async fn modify_instance(c: &Clients, id: &str, ch: &SafeChanges) -> Result<(), AwsError> {
    let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    if !ch.tags.is_empty() {
        let arn = find_instance(c, id)
            .await?
            .map(|i| i.arn)
            .unwrap_or_default();
        c.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags(&ch.tags)))
            .send()
            .await
            .map_err(|e| from_sdk(&instance_resource(id), "AddTagsToResource", e))?;
    }
    let ch = SafeChanges {
        tags: BTreeMap::new(),
        ..ch.clone()
    };
    if ch.is_empty() {
        return Ok(());
    }
    c.rds
        .modify_db_instance()
        .db_instance_identifier(id)
        .apply_immediately(true)
        .set_allocated_storage(ch.allocated_storage.map(to_i32))
        .set_max_allocated_storage(ch.max_allocated_storage.map(to_i32))
        .set_backup_retention_period(ch.backup_retention_days.map(to_i32))
        .set_deletion_protection(ch.deletion_protection)
        .set_publicly_accessible(ch.publicly_accessible)
        .send()
        .await
        .map_err(|e| from_sdk(&instance_resource(id), "ModifyDBInstance", e))?;
    Ok(())
}

pub async fn delete_instance(c: &Clients, spec: &InstanceSpec) -> Result<(), AwsError> {
    let mut req = c
        .rds
        .delete_db_instance()
        .db_instance_identifier(&spec.identifier)
        .skip_final_snapshot(spec.skip_final_snapshot);
    if !spec.skip_final_snapshot {
        req = req.final_db_snapshot_identifier(format!("{}-final", spec.identifier));
    }
    match req.send().await {
        Ok(_) => Ok(()),
        // Already being deleted (an interrupted destroy): wait for it like the first time.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_db_instance_state_fault()) =>
        {
            Ok(())
        }
        Err(e) => Err(from_sdk(
            &instance_resource(&spec.identifier),
            "DeleteDBInstance",
            e,
        )),
    }
}

pub async fn find_subnet_group(
    c: &Clients,
    name: &str,
) -> Result<Option<SubnetGroupState>, AwsError> {
    let out = match c
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_subnet_group_not_found_fault()) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(from_sdk(
                &subnet_group_resource(name),
                "DescribeDBSubnetGroups",
                e,
            ));
        }
    };
    Ok(out.db_subnet_groups().first().map(|g| SubnetGroupState {
        arn: g.db_subnet_group_arn().unwrap_or_default().to_owned(),
        subnets: g
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_identifier().map(str::to_owned))
            .collect(),
    }))
}

pub async fn create_subnet_group(c: &Clients, spec: &SubnetGroupSpec) -> Result<(), AwsError> {
    c.rds
        .create_db_subnet_group()
        .db_subnet_group_name(&spec.name)
        .db_subnet_group_description("The private subnets of the platform's databases (mlplat)")
        .set_subnet_ids(Some(spec.subnets.clone()))
        .set_tags(Some(tags(&spec.tags)))
        .send()
        .await
        .map_err(|e| from_sdk(&subnet_group_resource(&spec.name), "CreateDBSubnetGroup", e))?;
    Ok(())
}

pub async fn modify_subnet_group(c: &Clients, spec: &SubnetGroupSpec) -> Result<(), AwsError> {
    c.rds
        .modify_db_subnet_group()
        .db_subnet_group_name(&spec.name)
        .set_subnet_ids(Some(spec.subnets.clone()))
        .send()
        .await
        .map_err(|e| from_sdk(&subnet_group_resource(&spec.name), "ModifyDBSubnetGroup", e))?;
    Ok(())
}

/// The tags of an RDS resource by ARN (describe does not return a subnet group's tags).
pub async fn tags_of(
    c: &Clients,
    what: &str,
    arn: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    let out = c
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| from_sdk(what, "ListTagsForResource", e))?;
    Ok(out
        .tag_list()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect())
}

pub async fn delete_subnet_group(c: &Clients, name: &str) -> Result<(), AwsError> {
    c.rds
        .delete_db_subnet_group()
        .db_subnet_group_name(name)
        .send()
        .await
        .map_err(|e| from_sdk(&subnet_group_resource(name), "DeleteDBSubnetGroup", e))?;
    Ok(())
}

/// The real status source: DescribeDBInstances.
#[derive(Debug)]
pub struct RdsStatus<'a>(pub &'a Clients);

impl StatusSource for RdsStatus<'_> {
    async fn status(&mut self, id: &str) -> Result<Option<String>, AwsError> {
        Ok(find_instance(self.0, id).await?.map(|i| i.status))
    }
}
