//! The S3 bucket of MLflow's artifacts: server-side encryption (AES256, or KMS), all public
//! access blocked, versioning, a policy that denies requests without TLS, and tags.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use serde_json::{Value, json};

use crate::error::from_sdk;
use crate::{AwsError, Clients};
use mlplat::backends::aws::BucketSpec;
use mlplat::config::S3Encryption;

/// The statement mlplat adds to the bucket policy.
pub const TLS_SID: &str = "DenyInsecureTransport";

/// A bucket as AWS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketState {
    /// The default encryption: algorithm and KMS key.
    pub encryption: Option<(String, Option<String>)>,
    pub public_access_blocked: bool,
    pub versioning: bool,
    /// The bucket policy, when there is one.
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl BucketState {
    pub fn denies_insecure_transport(&self) -> bool {
        self.policy
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .is_some_and(|p| {
                p["Statement"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["Sid"] == TLS_SID))
            })
    }
}

fn resource(name: &str) -> String {
    format!("S3 bucket {name}")
}

fn code_is<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E, code: &str) -> bool {
    e.code() == Some(code)
}

/// Looks the bucket up: `None` when no bucket has the name; an error when another account
/// owns it.
pub async fn find(c: &Clients, name: &str) -> Result<Option<BucketState>, AwsError> {
    if let Err(e) = c.s3.head_bucket().bucket(name).send().await {
        let status = e.raw_response().map(|r| r.status().as_u16());
        if e.as_service_error().is_some_and(|s| s.is_not_found()) || status == Some(404) {
            return Ok(None);
        }
        if status == Some(403) {
            return Err(AwsError::Refused {
                resource: resource(name),
                reason: "the bucket exists and these credentials may not use it (403 Forbidden)".into(),
                hint: "bucket names are global: another account may own it; choose another backends.artifacts.s3.bucket, or check AWS_PROFILE".into(),
            });
        }
        return Err(from_sdk(&resource(name), "HeadBucket", e));
    }
    let r = resource(name);
    let encryption = match c.s3.get_bucket_encryption().bucket(name).send().await {
        Ok(out) => out
            .server_side_encryption_configuration()
            .and_then(|cfg| cfg.rules().first())
            .and_then(|rule| rule.apply_server_side_encryption_by_default())
            .map(|d| {
                (
                    d.sse_algorithm().as_str().to_owned(),
                    d.kms_master_key_id().map(str::to_owned),
                )
            }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| code_is(s, "ServerSideEncryptionConfigurationNotFoundError")) =>
        {
            None
        }
        Err(e) => return Err(from_sdk(&r, "GetBucketEncryption", e)),
    };
    let public_access_blocked = match c.s3.get_public_access_block().bucket(name).send().await {
        Ok(out) => out.public_access_block_configuration().is_some_and(|p| {
            p.block_public_acls() == Some(true)
                && p.ignore_public_acls() == Some(true)
                && p.block_public_policy() == Some(true)
                && p.restrict_public_buckets() == Some(true)
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| code_is(s, "NoSuchPublicAccessBlockConfiguration")) =>
        {
            false
        }
        Err(e) => return Err(from_sdk(&r, "GetPublicAccessBlock", e)),
    };
    let versioning = match c.s3.get_bucket_versioning().bucket(name).send().await {
        Ok(out) => out.status() == Some(&BucketVersioningStatus::Enabled),
        // Some moto releases answer with a `GetBucketVersioningResponse` root the SDK cannot
        // parse: read the status from the body of that 200 answer.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => e
            .raw_response()
            .and_then(|r| r.body().bytes())
            .is_some_and(|b| String::from_utf8_lossy(b).contains("<Status>Enabled</Status>")),
        Err(e) => return Err(from_sdk(&r, "GetBucketVersioning", e)),
    };
    let policy = match c.s3.get_bucket_policy().bucket(name).send().await {
        Ok(out) => out.policy().map(str::to_owned),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| code_is(s, "NoSuchBucketPolicy")) =>
        {
            None
        }
        Err(e) => return Err(from_sdk(&r, "GetBucketPolicy", e)),
    };
    let tags = match c.s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| code_is(s, "NoSuchTagSet")) =>
        {
            BTreeMap::new()
        }
        Err(e) => return Err(from_sdk(&r, "GetBucketTagging", e)),
    };
    Ok(Some(BucketState {
        encryption,
        public_access_blocked,
        versioning,
        policy,
        tags,
    }))
}

pub async fn create(c: &Clients, spec: &BucketSpec) -> Result<(), AwsError> {
    let mut req = c.s3.create_bucket().bucket(&spec.name);
    if c.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(c.region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(())
        }
        Err(e) => Err(from_sdk(&resource(&spec.name), "CreateBucket", e)),
    }
}

/// The bucket policy with mlplat's TLS statement added to whatever the bucket had.
pub fn policy_with_tls(bucket: &str, existing: Option<&str>) -> String {
    let statement = json!({
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    });
    let mut policy = existing
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|p| p["Statement"].is_array())
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    if let Some(list) = policy["Statement"].as_array_mut() {
        list.retain(|s| s["Sid"] != TLS_SID);
        list.push(statement);
    }
    policy.to_string()
}

/// Sets whatever of encryption, public access block, versioning, policy and tags differs.
pub async fn configure(
    c: &Clients,
    spec: &BucketSpec,
    have: Option<&BucketState>,
) -> Result<(), AwsError> {
    let r = resource(&spec.name);
    let name = &spec.name;
    let want_enc = (spec.encryption.as_str().to_owned(), spec.kms_key_id.clone());
    if have.and_then(|h| h.encryption.as_ref()) != Some(&want_enc) {
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(match spec.encryption {
                S3Encryption::Aes256 => ServerSideEncryption::Aes256,
                S3Encryption::Kms => ServerSideEncryption::AwsKms,
            })
            .set_kms_master_key_id(spec.kms_key_id.clone())
            .build()
            .map_err(|e| incomplete_request(&r, &e))?;
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .bucket_key_enabled(spec.encryption == S3Encryption::Kms)
            .build();
        let cfg = ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| incomplete_request(&r, &e))?;
        c.s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(cfg)
            .send()
            .await
            .map_err(|e| from_sdk(&r, "PutBucketEncryption", e))?;
    }
    if !have.is_some_and(|h| h.public_access_blocked) {
        c.s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk(&r, "PutPublicAccessBlock", e))?;
    }
    if !have.is_some_and(|h| h.versioning) {
        c.s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk(&r, "PutBucketVersioning", e))?;
    }
    if !have.is_some_and(BucketState::denies_insecure_transport) {
        c.s3.put_bucket_policy()
            .bucket(name)
            .policy(policy_with_tls(
                name,
                have.and_then(|h| h.policy.as_deref()),
            ))
            .send()
            .await
            .map_err(|e| from_sdk(&r, "PutBucketPolicy", e))?;
    }
    let mut tags = have.map(|h| h.tags.clone()).unwrap_or_default();
    let before = tags.clone();
    tags.extend(spec.tags.clone());
    if tags != before || have.is_none() {
        let set: Vec<Tag> = tags
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        let tagging = Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| incomplete_request(&r, &e))?;
        c.s3.put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| from_sdk(&r, "PutBucketTagging", e))?;
    }
    Ok(())
}

/// Every object version and delete marker of the bucket, up to `limit`.
async fn versions(
    c: &Clients,
    name: &str,
    limit: Option<i32>,
) -> Result<Vec<ObjectIdentifier>, AwsError> {
    let r = resource(name);
    let mut out = Vec::new();
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let page =
            c.s3.list_object_versions()
                .bucket(name)
                .set_max_keys(limit)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| from_sdk(&r, "ListObjectVersions", e))?;
        let ids = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            );
        for (key, version) in ids {
            if let Some(key) = key
                && let Ok(id) = ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.map(str::to_owned))
                    .build()
            {
                out.push(id);
            }
        }
        if limit.is_some() || page.is_truncated() != Some(true) {
            return Ok(out);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
}

pub async fn is_empty(c: &Clients, name: &str) -> Result<bool, AwsError> {
    Ok(versions(c, name, Some(1)).await?.is_empty())
}

/// Deletes every object version, then the bucket.
pub async fn delete(c: &Clients, name: &str) -> Result<usize, AwsError> {
    let r = resource(name);
    let all = versions(c, name, None).await?;
    for chunk in all.chunks(1000) {
        let delete = Delete::builder()
            .set_objects(Some(chunk.to_vec()))
            .quiet(true)
            .build()
            .map_err(|e| incomplete_request(&r, &e))?;
        let out =
            c.s3.delete_objects()
                .bucket(name)
                .delete(delete)
                .send()
                .await
                .map_err(|e| from_sdk(&r, "DeleteObjects", e))?;
        // DeleteObjects answers 200 and lists the objects it could not delete.
        if let Some(e) = out.errors().first() {
            return Err(AwsError::Call {
                resource: r.clone(),
                action: "DeleteObjects".into(),
                code: e.code().map(str::to_owned),
                message: format!(
                    "{} object versions not deleted, the first {}: {}",
                    out.errors().len(),
                    e.key().unwrap_or_default(),
                    e.message().unwrap_or_default()
                ),
                hint: Some(
                    "check that the credentials may delete objects (and the bucket policy allows it), then run `mlplat destroy` again".into(),
                ),
            });
        }
    }
    c.s3.delete_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(|e| from_sdk(&r, "DeleteBucket", e))?;
    Ok(all.len())
}

/// A request builder the SDK refused because a required field was missing: mlplat's bug.
fn incomplete_request(resource: &str, e: &impl std::fmt::Display) -> AwsError {
    AwsError::Refused {
        resource: resource.to_owned(),
        reason: e.to_string(),
        hint: "this is a bug in mlplat".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_statement_joins_an_existing_policy_once() {
        let existing = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Mine","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
        let p = policy_with_tls("b", Some(existing));
        let again = policy_with_tls("b", Some(&p));
        let v: Value = serde_json::from_str(&again).unwrap();
        let sids: Vec<&str> = v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, ["Mine", TLS_SID]);
        let state = BucketState {
            encryption: None,
            public_access_blocked: false,
            versioning: false,
            policy: Some(again),
            tags: BTreeMap::new(),
        };
        assert!(state.denies_insecure_transport());
    }
}
