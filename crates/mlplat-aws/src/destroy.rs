//! `destroy`: removes what mlplat created for this platform (resources tagged `managed-by:
//! mlplat` and `mlplat:platform: <name>`), and nothing else. Everything that would stop it —
//! deletion protection, a non-empty bucket without `forceDestroy` — is checked before anything
//! is deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::plan::observe;
use crate::rds::RdsStatus;
use crate::wait::{Target, WaitOptions, wait_for};
use crate::{AwsError, Clients, ec2, rds, s3};
use mlplat::backends::aws::{Desired, TAG_MANAGED_BY, TAG_PLATFORM};

fn ours(tags: &BTreeMap<String, String>, platform: &str) -> bool {
    tags.get(TAG_MANAGED_BY).map(String::as_str) == Some("mlplat")
        && tags.get(TAG_PLATFORM).map(String::as_str) == Some(platform)
}

/// What destroy found, before it deletes anything.
#[derive(Debug, Default)]
pub struct Targets {
    pub instances: Vec<String>,
    pub subnet_group: Option<String>,
    pub security_group: Option<String>,
    pub bucket: Option<String>,
    /// Resources with the config's names that mlplat did not create: left alone.
    pub foreign: Vec<String>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
            && self.subnet_group.is_none()
            && self.security_group.is_none()
            && self.bucket.is_none()
    }

    pub fn lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .instances
            .iter()
            .map(|i| format!("- RDS instance {i}"))
            .collect();
        v.extend(self.bucket.iter().map(|b| format!("- S3 bucket {b}")));
        v.extend(
            self.subnet_group
                .iter()
                .map(|g| format!("- DB subnet group {g}")),
        );
        v.extend(
            self.security_group
                .iter()
                .map(|g| format!("- security group {g}")),
        );
        v
    }
}

/// Finds what would be destroyed and checks that it can be.
pub async fn targets(c: &Clients, d: &Desired) -> Result<Targets, AwsError> {
    let o = observe(c, d).await?;
    let mut t = Targets::default();
    for i in &d.instances {
        let Some(have) = o.instances.get(&i.identifier) else {
            continue;
        };
        if !ours(&have.tags, &d.platform) {
            t.foreign.push(format!("RDS instance {}", i.identifier));
            continue;
        }
        if have.deletion_protection {
            return Err(AwsError::Refused {
                resource: format!("RDS instance {}", i.identifier),
                reason: "deletion protection is on: nothing was deleted".into(),
                hint: "set backends.postgres.rds.deletionProtection: false, run `mlplat provision` (it turns protection off in place), then `mlplat destroy` again".into(),
            });
        }
        t.instances.push(i.identifier.clone());
    }
    if let (Some(spec), Some(have)) = (&d.bucket, &o.bucket) {
        if !ours(&have.tags, &d.platform) {
            t.foreign.push(format!("S3 bucket {}", spec.name));
        } else {
            if !spec.force_destroy && !s3::is_empty(c, &spec.name).await? {
                return Err(AwsError::Refused {
                    resource: format!("S3 bucket {}", spec.name),
                    reason: "the bucket holds objects: nothing was deleted".into(),
                    hint: "set backends.artifacts.s3.forceDestroy: true to delete them with it, or empty it yourself".into(),
                });
            }
            t.bucket = Some(spec.name.clone());
        }
    }
    if let (Some(spec), Some(have)) = (&d.subnet_group, &o.subnet_group) {
        let tags = rds::tags_of(c, &format!("DB subnet group {}", spec.name), &have.arn).await?;
        if ours(&tags, &d.platform) {
            t.subnet_group = Some(spec.name.clone());
        } else {
            t.foreign.push(format!("DB subnet group {}", spec.name));
        }
    }
    if let (Some(spec), Some(have)) = (&d.security_group, &o.security_group) {
        if ours(&have.tags, &d.platform) {
            t.security_group = Some(have.id.clone());
        } else {
            t.foreign.push(format!("security group {}", spec.name));
        }
    }
    Ok(t)
}

/// Deletes the targets: the bucket, the instances (waiting until they are gone), then the
/// subnet group and the security group they used.
pub async fn destroy(
    c: &Clients,
    d: &Desired,
    t: &Targets,
    wait: &WaitOptions,
    say: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(&str, &str, Duration),
) -> Result<(), AwsError> {
    if let Some(b) = &t.bucket {
        let n = s3::delete(c, b).await?;
        say(&format!("deleted S3 bucket {b} ({n} object versions)"));
    }
    for id in &t.instances {
        if let Some(spec) = d.instances.iter().find(|i| &i.identifier == id) {
            rds::delete_instance(c, spec).await?;
            say(&if spec.skip_final_snapshot {
                format!("deleting RDS instance {id} (no final snapshot)")
            } else {
                format!("deleting RDS instance {id} (final snapshot {id}-final)")
            });
        }
    }
    if !t.instances.is_empty() {
        wait_for(
            &mut RdsStatus(c),
            &t.instances,
            Target::Gone,
            wait,
            progress,
        )
        .await?;
    }
    if let Some(g) = &t.subnet_group {
        rds::delete_subnet_group(c, g).await?;
        say(&format!("deleted DB subnet group {g}"));
    }
    if let (Some(id), Some(spec)) = (&t.security_group, &d.security_group) {
        ec2::delete(c, spec, id).await?;
        say(&format!("deleted security group {} ({id})", spec.name));
    }
    Ok(())
}
