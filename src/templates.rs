//! The minijinja environment. Templates live in `templates/` and are embedded at build time;
//! values are built in Rust and handed in whole, so a template is the shape of one object.
//!
//! Filters: `yaml(n)` writes a value as block YAML on the following lines, indented by `n`
//! (like Helm's `toYaml | nindent n`); `q` writes a scalar as a YAML scalar, quoted if needed.

use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

/// Every template, by name. Adding a file under `templates/` means adding it here.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "kustomization.yaml",
        include_str!("../templates/kustomization.yaml.j2"),
    ),
    (
        "namespace.yaml",
        include_str!("../templates/namespace.yaml.j2"),
    ),
    ("secret.yaml", include_str!("../templates/secret.yaml.j2")),
    (
        "networkpolicy.yaml",
        include_str!("../templates/networkpolicy.yaml.j2"),
    ),
    (
        "flux/helmrepository.yaml",
        include_str!("../templates/flux/helmrepository.yaml.j2"),
    ),
    (
        "flux/helmrelease.yaml",
        include_str!("../templates/flux/helmrelease.yaml.j2"),
    ),
    (
        "argocd/application.yaml",
        include_str!("../templates/argocd/application.yaml.j2"),
    ),
    (
        "postgres/statefulset.yaml",
        include_str!("../templates/postgres/statefulset.yaml.j2"),
    ),
    (
        "postgres/service.yaml",
        include_str!("../templates/postgres/service.yaml.j2"),
    ),
    (
        "postgres/configmap.yaml",
        include_str!("../templates/postgres/configmap.yaml.j2"),
    ),
    (
        "postgres/reconcile.sh",
        include_str!("../templates/postgres/reconcile.sh.j2"),
    ),
    (
        "postgres/job.yaml",
        include_str!("../templates/postgres/job.yaml.j2"),
    ),
    (
        "jupyterhub/storageclass.yaml",
        include_str!("../templates/jupyterhub/storageclass.yaml.j2"),
    ),
    (
        "mlflow/deployment.yaml",
        include_str!("../templates/mlflow/deployment.yaml.j2"),
    ),
    (
        "mlflow/service.yaml",
        include_str!("../templates/mlflow/service.yaml.j2"),
    ),
    (
        "mlflow/configmap.yaml",
        include_str!("../templates/mlflow/configmap.yaml.j2"),
    ),
    (
        "mlflow/serviceaccount.yaml",
        include_str!("../templates/mlflow/serviceaccount.yaml.j2"),
    ),
    (
        "mlflow/pvc.yaml",
        include_str!("../templates/mlflow/pvc.yaml.j2"),
    ),
    (
        "mlflow/ingress.yaml",
        include_str!("../templates/mlflow/ingress.yaml.j2"),
    ),
    (
        "mlflow/pdb.yaml",
        include_str!("../templates/mlflow/pdb.yaml.j2"),
    ),
    (
        "mlflow/job-identities.yaml",
        include_str!("../templates/mlflow/job-identities.yaml.j2"),
    ),
    (
        "mlflow/basic_auth.ini",
        include_str!("../templates/mlflow/basic_auth.ini.j2"),
    ),
    (
        "external-secrets/externalsecret.yaml",
        include_str!("../templates/external-secrets/externalsecret.yaml.j2"),
    ),
    (
        "external-secrets/secretstore.yaml",
        include_str!("../templates/external-secrets/secretstore.yaml.j2"),
    ),
];

/// Files that are shipped as they are (scripts a ConfigMap carries), by name: no template
/// syntax is applied to them, so they are the very bytes the tests run.
const FILES: &[(&str, &str)] = &[
    (
        "mlflow/admin.py",
        include_str!("../templates/mlflow/admin.py"),
    ),
    (
        "mlflow/identities.py",
        include_str!("../templates/mlflow/identities.py"),
    ),
];

/// A file of `templates/` shipped verbatim (see [`FILES`]); empty for an unknown name, which
/// the `every_file_is_there` test rules out.
pub fn file(name: &str) -> String {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| (*text).to_owned())
        .unwrap_or_default()
}

/// The shared environment, built on first use.
pub fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        #[allow(clippy::expect_used)] // the default delimiters are valid
        env.set_syntax(
            SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("default syntax"),
        );
        env.add_filter("yaml", yaml_filter);
        env.add_filter("q", quote_filter);
        // Each template is parsed on its first use: a platform renders about two thirds of
        // them. The `every_template_parses` test loads them all.
        env.set_loader(|name| {
            Ok(TEMPLATES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, source)| (*source).to_owned()))
        });
        env
    })
}

/// Renders template `name` with a context built in Rust.
pub fn render(name: &str, ctx: &serde_json::Value) -> Result<String, Error> {
    env().get_template(name)?.render(Value::from(Serde(ctx)))
}

fn to_json(value: &Value) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

fn yaml_filter(value: &Value, indent: usize) -> Result<String, Error> {
    let text = crate::yaml::to_yaml_string(&to_json(value)?);
    let pad = " ".repeat(indent);
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    Ok(out)
}

fn quote_filter(value: &Value) -> Result<String, Error> {
    let json = to_json(value)?;
    if json.is_object() || json.is_array() {
        return Err(Error::new(ErrorKind::InvalidOperation, "q takes a scalar"));
    }
    Ok(crate::yaml::to_yaml_string(&json).trim_end().to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn every_template_parses() {
        let env = super::env();
        for (name, _) in super::TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn every_file_is_there() {
        for (name, text) in super::FILES {
            assert!(!text.is_empty(), "{name}");
            assert_eq!(super::file(name), *text);
        }
    }
}
