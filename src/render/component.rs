//! What every stage builds: a [`Component`] (one directory of `out/`: its namespace, files,
//! chart, Secrets), its [`File`]s and [`Labels`], the templates that render them, and the
//! image references and checkov annotations of the workloads mlplat writes itself.

use serde_json::{Map, Value, json};

use super::error::RenderError;
use super::secret::SecretObject;
use crate::charts::ChartRelease;
use crate::config::Loaded;
use crate::templates;
use crate::yaml;

/// Checks that a rendered template is YAML. Templates are fixed at build time and every value
/// goes through mlplat's emitter, so this guards mlplat's own bugs: debug builds (every test,
/// every golden tree) check each render; release builds skip the re-parse, which was a fifth
/// of a render's instructions.
pub fn check_yaml(template: &str, text: &str) -> Result<(), RenderError> {
    if cfg!(debug_assertions) {
        yaml::parse_documents(text).map_err(|source| RenderError::Yaml {
            name: template.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Renders a template; the caller decides what the text is.
pub fn render_to(name: &str, ctx: &Value) -> Result<String, RenderError> {
    templates::render(name, ctx).map_err(|source| RenderError::Template {
        name: name.to_owned(),
        source,
    })
}

/// The labels every object of a component carries.
#[derive(Debug, Clone)]
pub struct Labels {
    platform: String,
    name: String,
    component: String,
}

impl Labels {
    pub fn new(platform: &str, name: &str, component: &str) -> Self {
        Labels {
            platform: platform.to_owned(),
            name: name.to_owned(),
            component: component.to_owned(),
        }
    }

    /// What selects this component's pods: stable across upgrades.
    pub fn selector(&self) -> Value {
        json!({
            "app.kubernetes.io/instance": self.platform,
            "app.kubernetes.io/name": self.name,
        })
    }

    pub fn all(&self) -> Value {
        json!({
            "app.kubernetes.io/component": self.component,
            "app.kubernetes.io/instance": self.platform,
            "app.kubernetes.io/managed-by": "mlplat",
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/part-of": self.platform,
        })
    }
}

/// One output file of a component.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub text: String,
    /// Holds Secret data.
    pub secret: bool,
    /// Listed in the component's `kustomization.yaml`.
    pub resource: bool,
}

/// Everything one tool (or backend) puts in `out/<name>/`.
#[derive(Debug)]
pub struct Component {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    pub files: Vec<File>,
    pub chart: Option<ChartRelease>,
    /// Every Secret the component needs, by the file it is written to; the secret delivery
    /// mode decides what that file holds (see [`crate::secret_delivery`]).
    pub secret_objects: Vec<SecretObject>,
    /// CustomResourceDefinitions its chart brings (`delivery: rendered`): written once for the
    /// whole platform, under `crds/`.
    pub crds: Vec<Value>,
}

impl Component {
    /// A component with its Namespace.
    pub fn new(name: &str, namespace: &str, labels: &Labels) -> Result<Self, RenderError> {
        let mut c = Component {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            labels: labels.clone(),
            files: Vec::new(),
            chart: None,
            secret_objects: Vec::new(),
            crds: Vec::new(),
        };
        let text = c.render_checked(
            "namespace.yaml",
            &json!({"name": namespace, "labels": labels.all()}),
        )?;
        c.push("namespace.yaml", text, false, true);
        Ok(c)
    }

    fn push(&mut self, name: &str, text: String, secret: bool, resource: bool) {
        self.files.push(File {
            name: name.to_owned(),
            text,
            secret,
            resource,
        });
    }

    /// Renders a template with `namespace`, `labels` and `selector` added to `ctx`, checks that
    /// the result is YAML, and adds it as a resource file. Returns the text (for checksums).
    pub fn object(
        &mut self,
        file: &str,
        template: &str,
        ctx: &Value,
    ) -> Result<String, RenderError> {
        let mut ctx = ctx.clone();
        if let Value::Object(map) = &mut ctx {
            map.insert("namespace".into(), json!(self.namespace));
            map.insert("labels".into(), self.labels.all());
            map.insert("selector".into(), self.labels.selector());
        }
        let text = self.render_checked(template, &ctx)?;
        self.push(file, text.clone(), false, true);
        Ok(text)
    }

    /// Adds `secrets.yaml` (or `file`) with one Secret per `(name, string data)`.
    pub fn secrets(&mut self, secrets: &[(&str, Value)]) -> Result<String, RenderError> {
        self.secrets_file("secrets.yaml", secrets)
    }

    pub fn secrets_file(
        &mut self,
        file: &str,
        secrets: &[(&str, Value)],
    ) -> Result<String, RenderError> {
        let list: Vec<Value> = secrets
            .iter()
            .map(|(name, data)| json!({"name": name, "data": data}))
            .collect();
        let text = self.render_checked(
            "secret.yaml",
            &json!({"secrets": list, "namespace": self.namespace, "labels": self.labels.all()}),
        )?;
        for (name, data) in secrets {
            self.secret_objects.push(SecretObject::new(
                &self.name,
                file,
                &self.namespace,
                name,
                data,
            ));
        }
        self.push(file, text.clone(), true, true);
        Ok(text)
    }

    /// A resource file that mlplat did not template (a chart's manifests, as Helm made them).
    pub fn chart_file(&mut self, name: &str, text: String, secret: bool) {
        self.push(name, text, secret, true);
    }

    /// A file that is not applied (for example the chart values, for reading and for Helm).
    pub fn extra_file(&mut self, name: &str, text: String) {
        self.push(name, text, false, false);
    }

    fn render_checked(&self, template: &str, ctx: &Value) -> Result<String, RenderError> {
        let text = render_to(template, ctx)?;
        check_yaml(template, &text)?;
        Ok(text)
    }

    /// The component's `kustomization.yaml`, listing its resources in order.
    pub fn kustomization(&self) -> Result<String, RenderError> {
        let resources: Vec<&str> = self
            .files
            .iter()
            .filter(|f| f.resource)
            .map(|f| f.name.as_str())
            .collect();
        render_to("kustomization.yaml", &json!({"resources": resources}))
    }
}

/// The checks of checkov (a Kubernetes policy scanner) that an object of mlplat's fails on
/// purpose, with why, as the `checkov.io/skipN` annotations checkov reads (`ID=reason`).
pub fn checkov_skips(skips: &[(&str, &str)]) -> Value {
    let mut map = Map::new();
    for (i, (id, reason)) in skips.iter().enumerate() {
        debug_assert!(
            !reason.contains('='),
            "checkov splits the annotation at '='"
        );
        map.insert(
            format!("checkov.io/skip{}", i + 1),
            json!(format!("{id}={reason}")),
        );
    }
    Value::Object(map)
}

/// Why an image is pinned by tag, not digest (checkov's CKV_K8S_43), and pulled only when
/// missing (CKV_K8S_15, which a digest would satisfy too).
pub const SKIP_TAG_PIN: [(&str, &str); 2] = [
    (
        "CKV_K8S_43",
        "pinned by a tag set in the config (images.pin: digest pins it by digest)",
    ),
    (
        "CKV_K8S_15",
        "IfNotPresent with a pinned tag; Always would make every start depend on the registry",
    ),
];

/// The image reference a workload of mlplat's uses for `image`, and the checkov skips that
/// reference needs (none for a digest; see [`SKIP_TAG_PIN`]) followed by `more`.
pub fn pinned_image(
    loaded: &Loaded,
    image: &str,
    more: &[(&'static str, &'static str)],
) -> Result<(String, Value), RenderError> {
    let (reference, by_digest) = crate::images::reference(loaded, image)?;
    let mut skips: Vec<(&str, &str)> = if by_digest {
        Vec::new()
    } else {
        SKIP_TAG_PIN.to_vec()
    };
    skips.extend_from_slice(more);
    Ok((reference, checkov_skips(&skips)))
}
