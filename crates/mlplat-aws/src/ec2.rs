//! The security group in front of the databases: the DB port, from the private CIDR blocks
//! only. Found by VPC and name, so a run after an interrupted one finds it again.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, Tag, TagSpecification};

use crate::error::from_sdk;
use crate::{AwsError, Clients};
use mlplat::backends::aws::SecurityGroupSpec;

/// A security group as AWS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupState {
    pub id: String,
    /// CIDR blocks allowed on the DB port over TCP.
    pub cidrs: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
}

fn resource(spec: &SecurityGroupSpec) -> String {
    format!("security group {} in {}", spec.name, spec.vpc_id)
}

pub async fn find(
    c: &Clients,
    spec: &SecurityGroupSpec,
) -> Result<Option<SecurityGroupState>, AwsError> {
    let out = c
        .ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("vpc-id")
                .values(&spec.vpc_id)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("group-name")
                .values(&spec.name)
                .build(),
        )
        .send()
        .await
        .map_err(|e| from_sdk(&resource(spec), "DescribeSecurityGroups", e))?;
    let Some(g) = out.security_groups().first() else {
        return Ok(None);
    };
    let cidrs = g
        .ip_permissions()
        .iter()
        .filter(|p| {
            p.ip_protocol() == Some("tcp")
                && p.from_port() == Some(i32::from(spec.port))
                && p.to_port() == Some(i32::from(spec.port))
        })
        .flat_map(|p| {
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(str::to_owned))
        })
        .collect();
    let tags = g
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    Ok(Some(SecurityGroupState {
        id: g.group_id().unwrap_or_default().to_owned(),
        cidrs,
        tags,
    }))
}

pub async fn create(c: &Clients, spec: &SecurityGroupSpec) -> Result<String, AwsError> {
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::SecurityGroup)
        .set_tags(Some(
            spec.tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build();
    let out = c
        .ec2
        .create_security_group()
        .group_name(&spec.name)
        .description(format!(
            "PostgreSQL {} from the private subnets (mlplat)",
            spec.port
        ))
        .vpc_id(&spec.vpc_id)
        .tag_specifications(tags)
        .send()
        .await
        .map_err(|e| from_sdk(&resource(spec), "CreateSecurityGroup", e))?;
    Ok(out.group_id().unwrap_or_default().to_owned())
}

fn permission(port: u16, cidrs: &[&String]) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(i32::from(port))
        .to_port(i32::from(port))
        .set_ip_ranges(Some(
            cidrs
                .iter()
                .map(|c| {
                    IpRange::builder()
                        .cidr_ip(*c)
                        .description("private subnet")
                        .build()
                })
                .collect(),
        ))
        .build()
}

/// Makes the DB port rule exactly the spec's CIDR blocks: adds the missing, revokes the others.
pub async fn sync_rules(
    c: &Clients,
    spec: &SecurityGroupSpec,
    id: &str,
    have: &BTreeSet<String>,
) -> Result<(), AwsError> {
    let want: BTreeSet<&String> = spec.cidrs.iter().collect();
    let add: Vec<&String> = want
        .iter()
        .copied()
        .filter(|c| !have.contains(*c))
        .collect();
    let remove: Vec<&String> = have.iter().filter(|c| !want.contains(c)).collect();
    if !add.is_empty() {
        c.ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .ip_permissions(permission(spec.port, &add))
            .send()
            .await
            .map_err(|e| from_sdk(&resource(spec), "AuthorizeSecurityGroupIngress", e))?;
    }
    if !remove.is_empty() {
        c.ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .ip_permissions(permission(spec.port, &remove))
            .send()
            .await
            .map_err(|e| from_sdk(&resource(spec), "RevokeSecurityGroupIngress", e))?;
    }
    Ok(())
}

pub async fn delete(c: &Clients, spec: &SecurityGroupSpec, id: &str) -> Result<(), AwsError> {
    c.ec2
        .delete_security_group()
        .group_id(id)
        .send()
        .await
        .map_err(|e| from_sdk(&resource(spec), "DeleteSecurityGroup", e))?;
    Ok(())
}
