//! `mlplat images pin`'s registry requests: the digest of an image's manifest, read over the
//! OCI distribution API (an anonymous Bearer token when the registry asks for one; plain HTTP
//! for a registry on this machine only). The rest of the images' story (references, the lock's
//! `images` map) is mlplat's own [`mlplat::images`].

use std::collections::BTreeMap;
use std::time::Duration;

use mlplat::images::{ImageError, parse};

/// Plain HTTP for a registry on this machine (as Docker allows), HTTPS for every other.
fn base_url(registry: &str) -> String {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(host, _)| host);
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    format!("{}://{registry}", if local { "http" } else { "https" })
}

/// The manifest kinds a digest may name: an index (multi-platform) or a single manifest.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Reads the digest of `image`'s manifest from its registry (the OCI distribution API, with
/// an anonymous token when the registry asks for one).
pub fn resolve(image: &str) -> Result<String, ImageError> {
    let err = |message: String| ImageError::Registry {
        image: image.to_owned(),
        message,
    };
    let p = parse(image);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!(
        "{}/v2/{}/manifests/{}",
        base_url(&p.registry),
        p.repository,
        p.tag
    );
    let get = |token: Option<&str>| {
        let mut req = agent.get(&url).header("Accept", ACCEPT);
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        req.call()
            .map_err(|e| err(format!("cannot reach the registry {}: {e}", p.registry)))
    };
    let mut resp = get(None)?;
    if resp.status() == 401 {
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let token = token(&agent, &challenge).map_err(err)?;
        resp = get(Some(&token))?;
    }
    let status = resp.status();
    if status == 404 {
        return Err(err(format!(
            "the registry {} has no tag {} of {} (HTTP 404)",
            p.registry, p.tag, p.repository
        )));
    }
    if !status.is_success() {
        return Err(err(format!(
            "the registry {} answered HTTP {} for the manifest",
            p.registry,
            status.as_u16()
        )));
    }
    let header = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_vec()
        .map_err(|e| err(format!("cannot read the manifest: {e}")))?;
    // The digest is the sha256 of the manifest's bytes: computed, and checked against the
    // registry's header when it sends one.
    let computed = mlplat::encode::sha256_digest(&body);
    match header {
        Some(h) if h != computed => Err(err(format!(
            "the registry says the manifest is {h}, its bytes are {computed}"
        ))),
        _ => Ok(computed),
    }
}

/// An anonymous token from the realm of a `Bearer` challenge.
fn token(agent: &ureq::Agent, challenge: &str) -> Result<String, String> {
    let Some(params) = challenge.strip_prefix("Bearer ") else {
        return Err(
            "the registry wants credentials (only anonymous pulls are supported)".to_owned(),
        );
    };
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for part in split_params(params) {
        if let Some((k, v)) = part.split_once('=') {
            fields.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
        }
    }
    let realm = fields
        .get("realm")
        .ok_or("the registry's token challenge names no realm")?;
    let mut req = agent.get(realm);
    for key in ["service", "scope"] {
        if let Some(v) = fields.get(key) {
            req = req.query(key, v);
        }
    }
    let mut resp = req
        .call()
        .map_err(|e| format!("cannot reach the token service {realm}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "the token service {realm} answered HTTP {} (only anonymous pulls are supported)",
            resp.status().as_u16()
        ));
    }
    let body: serde_json::Value = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_json()
        .map_err(|e| format!("the token service {realm} sent no JSON: {e}"))?;
    body.get("token")
        .or_else(|| body.get("access_token"))
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("the token service {realm} sent no token"))
}

/// Splits `a="x,y",b=z` at the commas outside quotes.
fn split_params(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_registries_are_plain_http() {
        assert_eq!(base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(base_url("ghcr.io"), "https://ghcr.io");
    }

    #[test]
    fn challenges_split_outside_quotes() {
        assert_eq!(
            split_params(r#"realm="https://a/token",scope="repository:x:pull,push""#),
            vec![
                r#"realm="https://a/token""#,
                r#"scope="repository:x:pull,push""#
            ]
        );
    }
}
