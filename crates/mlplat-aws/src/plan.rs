//! What provisioning would do: every resource the config asks for, looked up, compared with
//! what AWS has, and shown Terraform-style: `+` create, `~` change (in place, safe), `!` drift
//! mlplat will not fix (it never replaces or resizes a database), `=` unchanged.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::ec2::{self, SecurityGroupState};
use crate::rds::{self, InstanceState, SafeChanges, SubnetGroupState};
use crate::s3::{self, BucketState};
use crate::{AwsError, Clients};
use mlplat::backends::aws::{Desired, InstanceSpec};

/// What AWS has of each resource the config asks for.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub security_group: Option<SecurityGroupState>,
    pub subnet_group: Option<SubnetGroupState>,
    pub instances: BTreeMap<String, InstanceState>,
    pub bucket: Option<BucketState>,
}

pub async fn observe(c: &Clients, d: &Desired) -> Result<Observed, AwsError> {
    let mut o = Observed::default();
    if let Some(sg) = &d.security_group {
        o.security_group = ec2::find(c, sg).await?;
    }
    if let Some(g) = &d.subnet_group {
        o.subnet_group = rds::find_subnet_group(c, &g.name).await?;
    }
    for i in &d.instances {
        if let Some(state) = rds::find_instance(c, &i.identifier).await? {
            o.instances.insert(i.identifier.clone(), state);
        }
    }
    if let Some(b) = &d.bucket {
        o.bucket = s3::find(c, &b.name).await?;
    }
    Ok(o)
}

/// A resource the config names that mlplat created for another platform (another
/// environment, say): its `mlplat:platform` tag names someone else. Provisioning would change
/// it and record it as this platform's, so plan and provision stop before any change.
pub fn claimed_by_another(d: &Desired, o: &Observed) -> Result<(), AwsError> {
    use mlplat::backends::aws::{TAG_MANAGED_BY, TAG_PLATFORM};
    let mut owned: Vec<(String, &BTreeMap<String, String>)> = Vec::new();
    if let (Some(spec), Some(have)) = (&d.security_group, &o.security_group) {
        owned.push((format!("security group {}", spec.name), &have.tags));
    }
    for (id, have) in &o.instances {
        owned.push((format!("RDS instance {id}"), &have.tags));
    }
    if let (Some(spec), Some(have)) = (&d.bucket, &o.bucket) {
        owned.push((format!("S3 bucket {}", spec.name), &have.tags));
    }
    for (resource, tags) in owned {
        let owner = tags.get(TAG_PLATFORM).map(String::as_str);
        if tags.get(TAG_MANAGED_BY).map(String::as_str) == Some("mlplat")
            && owner.is_some_and(|o| o != d.platform)
        {
            return Err(AwsError::Refused {
                resource,
                reason: format!(
                    "mlplat created it for platform {} (its mlplat:platform tag), not for {}: nothing was changed",
                    owner.unwrap_or_default(),
                    d.platform
                ),
                hint: "give this platform (or environment) names of its own: backends.postgres.rds.identifier, backends.artifacts.s3.bucket".into(),
            });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Change,
    Unchanged,
}

/// One difference between the config and AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub field: &'static str,
    pub have: String,
    pub want: String,
    /// mlplat applies it in place; otherwise it is reported only.
    pub safe: bool,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub kind: &'static str,
    pub name: String,
    pub action: Action,
    pub detail: String,
    pub diffs: Vec<Diff>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub items: Vec<Item>,
}

/// A set AWS holds against the list the config asks for (order does not matter); changing it
/// is safe in place.
fn set_diff(
    field: &'static str,
    have: &std::collections::BTreeSet<String>,
    want: &[String],
) -> Vec<Diff> {
    let wanted: std::collections::BTreeSet<String> = want.iter().cloned().collect();
    if *have == wanted {
        return Vec::new();
    }
    let join =
        |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
    vec![diff(field, join(have), want.join(","), true)]
}

fn diff(field: &'static str, have: impl ToString, want: impl ToString, safe: bool) -> Diff {
    Diff {
        field,
        have: have.to_string(),
        want: want.to_string(),
        safe,
    }
}

fn major(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

/// The differences of an existing instance from its spec.
pub fn instance_diffs(spec: &InstanceSpec, have: &InstanceState, sg_ids: &[String]) -> Vec<Diff> {
    let mut d = Vec::new();
    if have.status != "available" {
        d.push(diff("status", &have.status, "available", true));
    }
    if have.instance_class != spec.instance_class {
        d.push(diff(
            "instance_class",
            &have.instance_class,
            &spec.instance_class,
            false,
        ));
    }
    // Minor versions move by themselves (auto minor version upgrade); a major one never does.
    if major(&have.engine_version) != major(&spec.engine_version) {
        d.push(diff(
            "engine_version",
            &have.engine_version,
            &spec.engine_version,
            false,
        ));
    }
    if have.storage_type != spec.storage_type {
        d.push(diff(
            "storage_type",
            &have.storage_type,
            &spec.storage_type,
            false,
        ));
    }
    if have.allocated_storage < spec.allocated_storage {
        d.push(diff(
            "allocated_storage",
            have.allocated_storage,
            spec.allocated_storage,
            true,
        ));
    }
    if have.max_allocated_storage != spec.max_allocated_storage {
        d.push(diff(
            "max_allocated_storage",
            have.max_allocated_storage,
            spec.max_allocated_storage,
            true,
        ));
    }
    if have.backup_retention_days != spec.backup_retention_days {
        d.push(diff(
            "backup_retention_days",
            have.backup_retention_days,
            spec.backup_retention_days,
            true,
        ));
    }
    if have.deletion_protection != spec.deletion_protection {
        d.push(diff(
            "deletion_protection",
            have.deletion_protection,
            spec.deletion_protection,
            true,
        ));
    }
    if have.publicly_accessible {
        d.push(diff("publicly_accessible", true, false, true));
    }
    if !have.storage_encrypted {
        d.push(diff("storage_encrypted", false, true, false));
    }
    if let Some(port) = have.port.filter(|p| *p != spec.port) {
        d.push(diff("port", port, spec.port, false));
    }
    if have.master_username != spec.master_username {
        d.push(diff(
            "master_username",
            &have.master_username,
            &spec.master_username,
            false,
        ));
    }
    if !sg_ids.is_empty() && have.security_group_ids != sg_ids.iter().cloned().collect() {
        let list = |v: Vec<&String>| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        d.push(diff(
            "security_groups",
            list(have.security_group_ids.iter().collect()),
            list(sg_ids.iter().collect()),
            false,
        ));
    }
    let missing: Vec<String> = spec
        .tags
        .iter()
        .filter(|(k, v)| have.tags.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !missing.is_empty() {
        d.push(diff("tags", "", missing.join(","), true));
    }
    d
}

/// The safe changes among the diffs of an instance.
pub fn safe_changes(spec: &InstanceSpec, diffs: &[Diff]) -> SafeChanges {
    let mut ch = SafeChanges::default();
    for d in diffs.iter().filter(|d| d.safe) {
        match d.field {
            "allocated_storage" => ch.allocated_storage = Some(spec.allocated_storage),
            "max_allocated_storage" => ch.max_allocated_storage = Some(spec.max_allocated_storage),
            "backup_retention_days" => ch.backup_retention_days = Some(spec.backup_retention_days),
            "deletion_protection" => ch.deletion_protection = Some(spec.deletion_protection),
            "publicly_accessible" => ch.publicly_accessible = Some(false),
            "tags" => ch.tags = spec.tags.clone(),
            _ => {}
        }
    }
    ch
}

pub fn bucket_diffs(spec: &mlplat::backends::aws::BucketSpec, have: &BucketState) -> Vec<Diff> {
    let mut d = Vec::new();
    let want = (spec.encryption.as_str().to_owned(), spec.kms_key_id.clone());
    if have.encryption.as_ref() != Some(&want) {
        let show = |e: Option<&(String, Option<String>)>| match e {
            None => "none".to_owned(),
            Some((a, None)) => a.clone(),
            Some((a, Some(k))) => format!("{a} ({k})"),
        };
        d.push(diff(
            "encryption",
            show(have.encryption.as_ref()),
            show(Some(&want)),
            true,
        ));
    }
    if !have.public_access_blocked {
        d.push(diff("public_access_block", "partial", "all blocked", true));
    }
    if !have.versioning {
        d.push(diff("versioning", "off", "Enabled", true));
    }
    if !have.denies_insecure_transport() {
        d.push(diff(
            "policy",
            "allows plain HTTP",
            "denies non-TLS requests",
            true,
        ));
    }
    let missing: Vec<String> = spec
        .tags
        .iter()
        .filter(|(k, v)| have.tags.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !missing.is_empty() {
        d.push(diff("tags", "", missing.join(","), true));
    }
    d
}

fn item(kind: &'static str, name: &str, detail: String, exists: bool, diffs: Vec<Diff>) -> Item {
    let action = match (exists, diffs.is_empty()) {
        (false, _) => Action::Create,
        (true, true) => Action::Unchanged,
        (true, false) => Action::Change,
    };
    Item {
        kind,
        name: name.to_owned(),
        action,
        detail,
        diffs,
    }
}

impl Plan {
    pub fn new(d: &Desired, o: &Observed) -> Plan {
        let mut items = Vec::new();
        if let Some(sg) = &d.security_group {
            let diffs = o
                .security_group
                .as_ref()
                .map(|have| set_diff("ingress", &have.cidrs, &sg.cidrs))
                .unwrap_or_default();
            items.push(item(
                "security group",
                &sg.name,
                format!(
                    "in {}: tcp/{} from {}",
                    sg.vpc_id,
                    sg.port,
                    sg.cidrs.join(", ")
                ),
                o.security_group.is_some(),
                diffs,
            ));
        }
        if let Some(g) = &d.subnet_group {
            let diffs = o
                .subnet_group
                .as_ref()
                .map(|have| set_diff("subnets", &have.subnets, &g.subnets))
                .unwrap_or_default();
            items.push(item(
                "DB subnet group",
                &g.name,
                format!("subnets {}", g.subnets.join(", ")),
                o.subnet_group.is_some(),
                diffs,
            ));
        }
        let sg_ids: Vec<String> = d
            .instances
            .first()
            .map(|i| i.security_group_ids.clone())
            .filter(|ids| !ids.is_empty())
            .or_else(|| o.security_group.as_ref().map(|s| vec![s.id.clone()]))
            .unwrap_or_default();
        for i in &d.instances {
            let have = o.instances.get(&i.identifier);
            let diffs = have
                .map(|h| instance_diffs(i, h, &sg_ids))
                .unwrap_or_default();
            let autoscale = if i.max_allocated_storage > 0 {
                format!("→{}", i.max_allocated_storage)
            } else {
                String::new()
            };
            items.push(item(
                "RDS instance",
                &i.identifier,
                format!(
                    "{} {} {}, {} {}{autoscale} GiB, encrypted, private, deletion protection {}, backups {} days, for {}",
                    i.engine,
                    i.engine_version,
                    i.instance_class,
                    i.storage_type,
                    i.allocated_storage,
                    if i.deletion_protection { "on" } else { "off" },
                    i.backup_retention_days,
                    i.tools.join(", ")
                ),
                have.is_some(),
                diffs,
            ));
        }
        if let Some(b) = &d.bucket {
            let diffs = o
                .bucket
                .as_ref()
                .map(|h| bucket_diffs(b, h))
                .unwrap_or_default();
            items.push(item(
                "S3 bucket",
                &b.name,
                format!(
                    "{} encryption, public access blocked, versioning, TLS only",
                    b.encryption.as_str()
                ),
                o.bucket.is_some(),
                diffs,
            ));
        }
        Plan { items }
    }

    /// Whether provisioning has anything to do (or to wait for).
    pub fn pending(&self) -> bool {
        self.items.iter().any(|i| i.action != Action::Unchanged)
    }

    /// Differences mlplat reports but will not apply.
    pub fn unsafe_drift(&self) -> Vec<(&Item, &Diff)> {
        self.items
            .iter()
            .flat_map(|i| i.diffs.iter().filter(|d| !d.safe).map(move |d| (i, d)))
            .collect()
    }

    /// The plan as text, one resource a line, differences indented under it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (mut create, mut change, mut same) = (0, 0, 0);
        for i in &self.items {
            let sign = match i.action {
                Action::Create => {
                    create += 1;
                    "+"
                }
                Action::Change => {
                    change += 1;
                    "~"
                }
                Action::Unchanged => {
                    same += 1;
                    "="
                }
            };
            let _ = writeln!(out, "{sign} {} {} ({})", i.kind, i.name, i.detail);
            for d in &i.diffs {
                let (mark, note) = if d.field == "status" {
                    (" ", "(wait for it)")
                } else if d.safe {
                    ("~", "(in place)")
                } else {
                    (
                        "!",
                        "(drift: not applied, mlplat never replaces a database)",
                    )
                };
                let have = if d.have.is_empty() { "-" } else { &d.have };
                let _ = writeln!(out, "    {mark} {}: {have} → {} {note}", d.field, d.want);
            }
        }
        let _ = writeln!(
            out,
            "Plan: {create} to create, {change} to change, {same} unchanged."
        );
        out
    }
}

/// Why the lock file does not hold what AWS has, if it does not.
pub fn lock_gaps(
    lock: Option<&mlplat::lock::aws::AwsLock>,
    d: &Desired,
    o: &Observed,
) -> Vec<String> {
    let mut gaps = Vec::new();
    for i in &d.instances {
        let Some(have) = o.instances.get(&i.identifier) else {
            continue;
        };
        let locked = lock.and_then(|l| l.rds.get(&i.identifier));
        if locked.map(|l| (Some(&l.endpoint), Some(l.port)))
            != Some((have.endpoint.as_ref(), have.port))
        {
            gaps.push(format!("RDS instance {}: endpoint", i.identifier));
        }
    }
    if let (Some(b), Some(_)) = (&d.bucket, &o.bucket)
        && lock.and_then(|l| l.s3.as_ref()).map(|s| &s.name) != Some(&b.name)
    {
        gaps.push(format!("S3 bucket {}", b.name));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use mlplat::backends::aws::MasterPassword;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            identifier: "p-airflow".into(),
            tools: vec!["airflow".into()],
            db_name: "airflow".into(),
            master_username: "airflow".into(),
            master_password: MasterPassword::Managed,
            engine: "postgres".into(),
            engine_version: "16".into(),
            instance_class: "db.t3.micro".into(),
            storage_type: "gp3".into(),
            allocated_storage: 20,
            max_allocated_storage: 100,
            port: 5432,
            deletion_protection: true,
            backup_retention_days: 7,
            skip_final_snapshot: false,
            subnet_group: "p-db".into(),
            security_group_ids: vec![],
            tags: BTreeMap::from([("managed-by".into(), "mlplat".into())]),
        }
    }

    fn state() -> InstanceState {
        InstanceState {
            identifier: "p-airflow".into(),
            status: "available".into(),
            arn: "arn".into(),
            endpoint: Some("h".into()),
            port: Some(5432),
            instance_class: "db.t3.micro".into(),
            engine_version: "16.6".into(),
            storage_type: "gp3".into(),
            allocated_storage: 37,
            max_allocated_storage: 100,
            deletion_protection: true,
            backup_retention_days: 7,
            storage_encrypted: true,
            publicly_accessible: false,
            master_username: "airflow".into(),
            master_user_secret_arn: None,
            security_group_ids: BTreeSet::from(["sg-1".to_owned()]),
            subnet_group: Some("p-db".into()),
            tags: BTreeMap::from([("managed-by".into(), "mlplat".into())]),
        }
    }

    #[test]
    fn minor_upgrades_and_autoscaled_storage_are_not_drift() {
        assert_eq!(instance_diffs(&spec(), &state(), &["sg-1".into()]), vec![]);
    }

    #[test]
    fn safe_changes_are_applied_and_the_others_only_reported() {
        let mut have = state();
        have.engine_version = "15.8".into();
        have.instance_class = "db.t3.large".into();
        have.max_allocated_storage = 0;
        have.publicly_accessible = true;
        let diffs = instance_diffs(&spec(), &have, &["sg-1".into()]);
        let fields: Vec<(&str, bool)> = diffs.iter().map(|d| (d.field, d.safe)).collect();
        assert_eq!(
            fields,
            [
                ("instance_class", false),
                ("engine_version", false),
                ("max_allocated_storage", true),
                ("publicly_accessible", true),
            ]
        );
        let ch = safe_changes(&spec(), &diffs);
        assert_eq!(ch.max_allocated_storage, Some(100));
        assert_eq!(ch.publicly_accessible, Some(false));
        assert_eq!(ch.allocated_storage, None);
    }
}
