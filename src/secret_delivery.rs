//! The secrets stage: how Secrets reach the cluster, chosen by `secrets.mode`, applied to each
//! component the backends and the tools built.
//!
//! Every Secret a render produces is recorded once, as a [`SecretObject`] (namespace, name,
//! keys and values, and where each value came from), by [`crate::render::component::Component::secrets`].
//! This stage decides what the component's secret files hold:
//!
//! - `plain`: the Secret manifests themselves (files 0600);
//! - `external-secrets`: one `ExternalSecret` per Secret, reading AWS Secrets Manager at
//!   `<platform>/<namespace>/<secret>` (a JSON object, one property per key, stored there by
//!   `mlplat provision`), and per namespace a `SecretStore` with the ServiceAccount whose IAM
//!   role (IRSA) may read it. The operator makes in the cluster exactly the Secrets `plain`
//!   would write: same names, same keys. No secret value is left in `out/`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::{Loaded, SecretMode};
use crate::encode::uri_encode;
use crate::render::component::Component;
use crate::render::component::File;
use crate::render::component::render_to;
use crate::render::error::RenderError;
use crate::render::secret::{STORE, SecretObject};
use crate::secrets::{Deriver, Secret};

/// The file that holds a component's SecretStore and its ServiceAccount.
const STORE_FILE: &str = "secretstore.yaml";

/// Finds what each key of each Secret is made of: a derived secret or a user input whose value
/// appears in the key's value as it is, percent-encoded (URIs) or with `%` doubled (ini files).
pub fn trace_sources(
    objects: &mut [SecretObject],
    derived: &BTreeMap<String, Secret>,
    loaded: &Loaded,
) {
    // Each known value in its three spellings, encoded once (not once per Secret key).
    let known: Vec<(&str, [Secret; 3])> = derived
        .iter()
        .map(|(n, s)| (n.as_str(), s))
        .chain(loaded.inputs.iter())
        .filter(|(_, s)| !s.expose().is_empty())
        .map(|(n, s)| {
            let raw = s.expose();
            let uri = uri_encode(raw);
            let ini = uri.replace('%', "%%");
            (n, [s.clone(), Secret::new(uri), Secret::new(ini)])
        })
        .collect();
    for o in objects {
        for (key, value) in &o.data {
            let v = value.expose();
            let found: Vec<String> = known
                .iter()
                .filter(|(_, spellings)| spellings.iter().any(|s| v.contains(s.expose())))
                .map(|(n, _)| (*n).to_owned())
                .collect();
            if !found.is_empty() {
                o.sources.insert(key.clone(), found);
            }
        }
    }
}

/// Writes the component's secret files the way the config's mode says.
pub fn apply(loaded: &Loaded, deriver: &Deriver, c: &mut Component) -> Result<(), RenderError> {
    let secrets = &loaded.platform.secrets;
    let (SecretMode::ExternalSecrets, Some(cfg)) = (secrets.mode, &secrets.external_secrets) else {
        return Ok(());
    };
    if c.secret_objects.is_empty() {
        return Ok(());
    }
    let platform = &loaded.platform.platform;
    let labels = c.labels.all();
    let objects = &c.secret_objects;
    // Only the files of recorded Secrets; anything else is left as it is (and the config
    // check keeps external-secrets mode from producing such files).
    for file in c
        .files
        .iter_mut()
        .filter(|f| f.secret && objects.iter().any(|o| o.file == f.name))
    {
        let list: Vec<Value> = objects
            .iter()
            .filter(|o| o.file == file.name)
            .map(|o| {
                let remote = o.remote_key(platform);
                let data: Vec<Value> = o
                    .data
                    .keys()
                    .map(|k| json!({"secretKey": k, "remoteRef": {"key": remote, "property": k}}))
                    .collect();
                json!({
                    "name": o.name,
                    "note": null,
                    "remote_key": remote,
                    "checksum": deriver.checksum(o.remote_value().expose().as_bytes()),
                    "data": data,
                })
            })
            .collect();
        let text = checked(
            "external-secrets/externalsecret.yaml",
            &json!({"secrets": list, "namespace": c.namespace, "labels": labels, "store": STORE}),
        )?;
        file.text = text;
        file.secret = false;
    }
    let store = checked(
        "external-secrets/secretstore.yaml",
        &json!({
            "namespace": c.namespace,
            "labels": labels,
            "store": STORE,
            "service_account": cfg.service_account.as_deref().unwrap_or(crate::config::defaults::text("/secrets/externalSecrets/serviceAccount")),
            "role_arn": cfg.role_arn,
            "region": cfg.region,
        }),
    )?;
    // Right after the Namespace: the store comes before what reads from it.
    let at = usize::from(!c.files.is_empty());
    c.files.insert(
        at,
        File {
            name: STORE_FILE.to_owned(),
            text: store,
            secret: false,
            resource: true,
        },
    );
    Ok(())
}

fn checked(template: &str, ctx: &Value) -> Result<String, RenderError> {
    let text = render_to(template, ctx)?;
    crate::render::component::check_yaml(template, &text)?;
    Ok(text)
}
