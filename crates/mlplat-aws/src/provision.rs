//! `provision`, step by step: security group, DB subnet group, the instances (created without
//! waiting), the bucket, then the wait for the instances, their safe in-place changes, and the
//! outputs for the lock file. Every resource is found by its name first, so a run after an
//! interrupted or failed one carries on where it stopped. A new step (for example storing
//! generated secrets in Secrets Manager) goes into [`provision`] with its client in [`Clients`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::plan::{self, Action, Plan, observe};
use crate::rds::RdsStatus;
use crate::wait::{Target, WaitOptions, wait_for};
use crate::{AwsError, Clients, ec2, rds, s3};
use mlplat::backends::aws::Desired;
use mlplat::lock::aws::{AwsLock, BucketLock, RdsInstanceLock};

/// What a provisioning run did.
#[derive(Debug)]
pub struct Provisioned {
    pub plan: Plan,
    pub lock: AwsLock,
}

/// The ARN partition of a region.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Creates what is missing and makes the safe changes. `show` gets the plan first, `say` one
/// line per step;
/// `progress(id, status, elapsed)` reports the wait.
pub async fn provision(
    c: &Clients,
    d: &Desired,
    wait: &WaitOptions,
    show: &mut dyn FnMut(&Plan),
    say: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(&str, &str, Duration),
) -> Result<Provisioned, AwsError> {
    let observed = observe(c, d).await?;
    plan::claimed_by_another(d, &observed)?;
    let plan = Plan::new(d, &observed);
    show(&plan);

    let mut sg_ids: Vec<String> = d
        .instances
        .first()
        .map(|i| i.security_group_ids.clone())
        .unwrap_or_default();
    let mut created_sg = None;
    if let Some(spec) = &d.security_group {
        let (id, have) = match &observed.security_group {
            Some(sg) => (sg.id.clone(), sg.cidrs.clone()),
            None => {
                say(&format!("creating security group {}", spec.name));
                (ec2::create(c, spec).await?, Default::default())
            }
        };
        if have != spec.cidrs.iter().cloned().collect() {
            say(&format!(
                "setting the ingress rules of security group {}",
                spec.name
            ));
            ec2::sync_rules(c, spec, &id, &have).await?;
        }
        sg_ids = vec![id.clone()];
        created_sg = Some(id);
    }
    if let Some(spec) = &d.subnet_group {
        match &observed.subnet_group {
            None => {
                say(&format!("creating DB subnet group {}", spec.name));
                rds::create_subnet_group(c, spec).await?;
            }
            Some(have) if have.subnets != spec.subnets.iter().cloned().collect() => {
                say(&format!(
                    "changing the subnets of DB subnet group {}",
                    spec.name
                ));
                rds::modify_subnet_group(c, spec).await?;
            }
            Some(_) => {}
        }
    }
    for i in &d.instances {
        if !observed.instances.contains_key(&i.identifier) {
            say(&format!(
                "creating RDS instance {} ({} {}, {})",
                i.identifier, i.engine, i.engine_version, i.instance_class
            ));
            rds::create_instance(c, i, &sg_ids).await?;
        }
    }
    if let Some(spec) = &d.bucket {
        if observed.bucket.is_none() {
            say(&format!("creating S3 bucket {}", spec.name));
            s3::create(c, spec).await?;
        }
        let diffs = observed
            .bucket
            .as_ref()
            .map(|h| plan::bucket_diffs(spec, h))
            .unwrap_or_default();
        if observed.bucket.is_none() || !diffs.is_empty() {
            say(&format!(
                "configuring S3 bucket {}: {} encryption, public access block, versioning, TLS-only policy, tags",
                spec.name,
                spec.encryption.as_str()
            ));
            s3::configure(c, spec, observed.bucket.as_ref()).await?;
        }
    }
    let ids: Vec<String> = d.instances.iter().map(|i| i.identifier.clone()).collect();
    if !ids.is_empty() {
        wait_for(&mut RdsStatus(c), &ids, Target::Available, wait, progress).await?;
    }
    let mut instances = BTreeMap::new();
    for i in &d.instances {
        let Some(have) = rds::find_instance(c, &i.identifier).await? else {
            return Err(AwsError::Refused {
                resource: format!("RDS instance {}", i.identifier),
                reason: "disappeared during provisioning".into(),
                hint: "run `mlplat provision` again".into(),
            });
        };
        let changes = plan::safe_changes(i, &plan::instance_diffs(i, &have, &sg_ids));
        if !changes.is_empty() {
            say(&format!("changing RDS instance {} in place", i.identifier));
            rds::modify_instance(c, &i.identifier, &changes).await?;
        }
        let (Some(endpoint), Some(port)) = (have.endpoint.clone(), have.port) else {
            return Err(AwsError::Refused {
                resource: format!("RDS instance {}", i.identifier),
                reason: "is available but has no endpoint".into(),
                hint: "run `mlplat provision` again in a minute".into(),
            });
        };
        instances.insert(
            i.identifier.clone(),
            RdsInstanceLock {
                arn: have.arn,
                endpoint,
                port,
                master_username: have.master_username,
                master_user_secret_arn: have.master_user_secret_arn,
            },
        );
    }
    let lock = AwsLock {
        region: c.region.clone(),
        security_group_id: created_sg,
        db_subnet_group: d.subnet_group.as_ref().map(|g| g.name.clone()),
        rds: instances,
        s3: d.bucket.as_ref().map(|b| BucketLock {
            name: b.name.clone(),
            arn: format!("arn:{}:s3:::{}", partition(&c.region), b.name),
        }),
    };
    Ok(Provisioned { plan, lock })
}

/// Whether a plan's items all exist and match (nothing to create, change or wait for).
pub fn settled(plan: &Plan) -> bool {
    plan.items.iter().all(|i| i.action == Action::Unchanged)
}
