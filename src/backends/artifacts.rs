//! Where MLflow keeps its artifacts: a PVC (the embedded default) or an S3 bucket that
//! `mlplat provision` created, reached with the IAM role of MLflow's ServiceAccount (IRSA).

use serde_json::{Value, json};

use crate::config::Loaded;
use crate::config::aws::s3_config;

/// The artifact store of a render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactStore {
    Pvc,
    S3 {
        bucket: String,
        role_arn: Option<String>,
        /// From the lock file, once provisioned: boto3 signs for it.
        region: Option<String>,
    },
}

impl ArtifactStore {
    pub fn resolve(loaded: &Loaded) -> ArtifactStore {
        match s3_config(loaded) {
            Some(s3) => ArtifactStore::S3 {
                bucket: s3.bucket.clone(),
                role_arn: s3.role_arn.clone(),
                region: loaded.lock.aws.as_ref().map(|a| a.region.clone()),
            },
            None => ArtifactStore::Pvc,
        }
    }

    /// `--artifacts-destination`: `file://<path>[/<prefix>]` or `s3://<bucket>[/<prefix>]`.
    pub fn destination(&self, local_path: &str, prefix: &str) -> String {
        let base = match self {
            ArtifactStore::Pvc => format!("file://{local_path}"),
            ArtifactStore::S3 { bucket, .. } => format!("s3://{bucket}"),
        };
        if prefix.is_empty() {
            base
        } else {
            format!("{base}/{prefix}")
        }
    }

    /// The ServiceAccount's annotations: the IRSA role, for S3.
    pub fn service_account_annotations(&self) -> Value {
        match self {
            ArtifactStore::S3 {
                role_arn: Some(arn),
                ..
            } => json!({"eks.amazonaws.com/role-arn": arn}),
            _ => Value::Null,
        }
    }

    /// Environment for the MLflow container (the region boto3 signs for).
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            ArtifactStore::S3 {
                region: Some(r), ..
            } => vec![("AWS_DEFAULT_REGION".into(), r.clone())],
            _ => Vec::new(),
        }
    }

    pub fn is_pvc(&self) -> bool {
        *self == ArtifactStore::Pvc
    }
}
