//! The values behind `secrets.mode: external-secrets`: every Secret of a render stored in AWS
//! Secrets Manager at `<platform>/<namespace>/<secret>` (a JSON object, one property per key),
//! where the ExternalSecrets in `out/` read them. Called by `mlplat provision`.
//!
//! Idempotent: a secret that holds the right value is left alone (no new version), one that
//! differs gets a new version, a missing one is created and tagged as mlplat's. Errors name
//! the secret and the AWS error code, never a value.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::Tag;

use mlplat::render::secret::SecretObject;

/// What [`store`] did to one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated (new version)",
            Change::Unchanged => "unchanged",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("AWS Secrets Manager {action} {id}: {code}: {message}")]
pub struct StoreError {
    pub id: String,
    pub action: &'static str,
    pub code: String,
    pub message: String,
}

fn error<E: ProvideErrorMetadata>(id: &str, action: &'static str, e: &E) -> StoreError {
    StoreError {
        id: id.to_owned(),
        action,
        code: e.code().unwrap_or("error").to_owned(),
        message: e.message().unwrap_or("no message").to_owned(),
    }
}

/// Stores every Secret, in order; returns each secret id with what was done.
pub async fn store(
    client: &Client,
    platform: &str,
    secrets: &[SecretObject],
) -> Result<Vec<(String, Change)>, StoreError> {
    let mut done = Vec::with_capacity(secrets.len());
    for o in secrets {
        let id = o.remote_key(platform);
        let value = o.remote_value();
        let current = match client.get_secret_value().secret_id(&id).send().await {
            Ok(out) => Some(out.secret_string().map(str::to_owned)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(e) => return Err(error(&id, "GetSecretValue", &e)),
        };
        let change = match current {
            Some(Some(v)) if v == value.expose() => Change::Unchanged,
            Some(_) => {
                client
                    .put_secret_value()
                    .secret_id(&id)
                    .secret_string(value.expose())
                    .send()
                    .await
                    .map_err(|e| error(&id, "PutSecretValue", &e))?;
                Change::Updated
            }
            None => {
                client
                    .create_secret()
                    .name(&id)
                    .description(format!(
                        "Secret {} of platform {platform}, read by an ExternalSecret; written by mlplat provision",
                        o.id()
                    ))
                    .secret_string(value.expose())
                    .tags(Tag::builder().key("mlplat.dev/managed-by").value("mlplat").build())
                    .tags(Tag::builder().key("mlplat.dev/platform").value(platform).build())
                    .send()
                    .await
                    .map_err(|e| error(&id, "CreateSecret", &e))?;
                Change::Created
            }
        };
        done.push((id, change));
    }
    Ok(done)
}
