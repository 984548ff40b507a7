//! Rules for `tools.jupyterhub` that the schema cannot say: admin names that key a Secret,
//! admin passwords for the authenticators that read them, a VS Code profile with an image.

use super::Tool;
use super::{Ctx, Diagnostic, HubAuthKind, Inputs, PlatformConfig};

/// bcrypt (NativeAuthenticator's hash) reads at most 72 bytes, and bcrypt 5 refuses more.
const BCRYPT_MAX_BYTES: usize = 72;

/// Whether `name` can key the `jupyterhub-admin-passwords` Secret and stays what it is after
/// JupyterHub's normalization (lowercase): lowercase letters, digits, `.`, `_`, `-`, not
/// starting with `.`.
pub fn is_admin_key(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

pub(super) fn checks(ctx: &Ctx<'_>, p: &PlatformConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(j) = p.jupyterhub() else {
        return out;
    };
    let auth = &j.auth;
    if auth.kind == HubAuthKind::Github {
        if !auth.admin_passwords.is_empty() {
            out.push(
                ctx.diag(
                    "/tools/jupyterhub/auth/adminPasswords",
                    "with auth type `github` admins log in with their GitHub account: `adminPasswords` is not read",
                )
                .help("remove adminPasswords"),
            );
        }
    } else {
        for (i, name) in auth.admin_users.iter().enumerate() {
            if !is_admin_key(name) {
                out.push(
                    ctx.diag(
                        &format!("/tools/jupyterhub/auth/adminUsers/{i}"),
                        format!("admin name `{name}` cannot key the Secret that holds the admins' passwords"),
                    )
                    .help("use lowercase letters, digits, `.`, `_` and `-` (JupyterHub lowercases names anyway)"),
                );
            }
        }
        for name in auth.admin_passwords.keys() {
            if !auth.admin_users.contains(name) {
                out.push(
                    ctx.diag(
                        &format!("/tools/jupyterhub/auth/adminPasswords/{name}"),
                        format!("`{name}` is not in adminUsers: its password would not be used"),
                    )
                    .help(format!("add {name} to adminUsers, or remove its password")),
                );
            }
        }
    }
    if j.vscode.enabled == Some(true) && j.vscode.image.is_none() {
        out.push(
            ctx.diag(
                "/tools/jupyterhub/vscode/enabled",
                "the VS Code profile needs an image: none is published with code-server and jupyter-vscode-proxy",
            )
            .help("build images/jupyter-vscode/Dockerfile, push it to your registry and set vscode.image"),
        );
    }
    out
}

/// Admin passwords the user supplies: NativeAuthenticator hashes them with bcrypt.
pub(super) fn password_checks(
    ctx: &Ctx<'_>,
    p: &PlatformConfig,
    inputs: &Inputs,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(j) = p
        .tools
        .jupyterhub
        .as_ref()
        .filter(|j| p.enabled(Tool::Jupyterhub) && j.auth.kind == HubAuthKind::Native)
    else {
        return out;
    };
    // A name not in adminUsers is reported by `checks`.
    for name in j
        .auth
        .admin_passwords
        .keys()
        .filter(|n| j.auth.admin_users.contains(n))
    {
        let ptr = format!("/tools/jupyterhub/auth/adminPasswords/{name}");
        if let Some(secret) = inputs.get(&ptr) {
            if secret.expose().len() > BCRYPT_MAX_BYTES {
                out.push(
                    ctx.diag(&ptr, format!("the password of admin `{name}` is longer than {BCRYPT_MAX_BYTES} bytes, which bcrypt (NativeAuthenticator's hash) refuses"))
                        .help("choose a shorter password, or leave it out and mlplat derives one"),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_keys_are_lowercase_secret_keys() {
        for ok in ["admin", "a.b", "ops_admin", "x-1", "0"] {
            assert!(is_admin_key(ok), "{ok}");
        }
        for bad in ["", "Admin", ".hidden", "a b", "a/b", "a@b.com", "é"] {
            assert!(!is_admin_key(bad), "{bad}");
        }
    }
}
