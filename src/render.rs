//! The pipeline, end to end: a loaded config in, the whole output tree out, in memory.
//! config → backends → secrets → tools → delivery → output.

use serde_json::json;

use crate::backends::Backends;
use crate::config::Loaded;
use crate::delivery::deliver;
use crate::output::Tree;
use crate::secrets::Deriver;
use crate::tools::{self, ChartRelease, Component, Links, RenderError, render_to};

/// Renders every enabled component of the platform into a tree of files.
pub fn render(loaded: &Loaded) -> Result<Tree, RenderError> {
    render_full(loaded).map(|r| r.tree)
}

/// Renders every environment of a config into `<name>/`, each a whole output with its own
/// index, under one marker: what `out/` holds for a config with environments.
pub fn render_environments(envs: &[(String, Loaded)]) -> Result<Tree, RenderError> {
    let mut tree = Tree::new();
    for (name, loaded) in envs {
        for (path, file) in render(loaded)?.files {
            tree.files.insert(format!("{name}/{path}"), file);
        }
    }
    Ok(tree)
}

/// A render with what went into it, for the commands that need more than the files.
#[derive(Debug)]
pub struct Rendered {
    pub tree: Tree,
    /// Every Secret the platform needs, whatever the secret delivery mode writes to `out/`.
    pub secrets: Vec<crate::secret_delivery::SecretObject>,
    /// Every derived secret the render used, by name: what `mlplat rotate` can bump.
    pub derived: std::collections::BTreeMap<String, crate::secrets::Secret>,
}

/// Every chart the platform installs, by tool: what `mlplat charts pull` pins.
pub fn charts(loaded: &Loaded) -> Result<Vec<(String, ChartRelease)>, RenderError> {
    Ok(components(loaded, &deriver(loaded))?
        .into_iter()
        .filter_map(|c| c.chart.map(|chart| (c.name, chart)))
        .collect())
}

fn deriver(loaded: &Loaded) -> Deriver {
    Deriver::new(&loaded.key, &loaded.platform.platform)
        .with_generations(loaded.lock.secrets.generations.clone())
}

/// Each enabled tool and backend, built, before delivery.
fn components(loaded: &Loaded, deriver: &Deriver) -> Result<Vec<Component>, RenderError> {
    let p = &loaded.platform;
    let mut backends = Backends::resolve(loaded);
    let links = Links::new(loaded);
    let mut components: Vec<Component> = Vec::new();
    if let Some(cfg) = p.tools.airflow.as_ref().filter(|_| p.enabled("airflow")) {
        components.push(tools::airflow::build(
            loaded,
            cfg,
            deriver,
            &mut backends,
            &links,
        )?);
    }
    if let Some(cfg) = p.tools.mlflow.as_ref().filter(|_| p.enabled("mlflow")) {
        components.push(tools::mlflow::build(loaded, cfg, deriver, &mut backends)?);
    }
    if let Some(cfg) = p
        .tools
        .jupyterhub
        .as_ref()
        .filter(|_| p.enabled("jupyterhub"))
    {
        components.push(tools::jupyterhub::build(
            loaded,
            cfg,
            deriver,
            &mut backends,
            &links,
        )?);
    }
    if let Some(pg) = backends.render_postgres(loaded, deriver)? {
        components.insert(0, pg);
    }
    Ok(components)
}

/// [`render`], keeping the Secrets and the derived names.
pub fn render_full(loaded: &Loaded) -> Result<Rendered, RenderError> {
    let deriver = deriver(loaded);
    let components = components(loaded, &deriver)?;
    let mut tree = Tree::new();
    let mut dirs = Vec::new();
    let mut secrets = Vec::new();
    let mut crds = Vec::new();
    for mut c in components {
        deliver(loaded, &mut c)?;
        crds.extend(c.crds.drain(..).map(|crd| (c.name.clone(), crd)));
        crate::secret_delivery::apply(loaded, &deriver, &mut c)?;
        secrets.append(&mut c.secret_objects);
        let kustomization = c.kustomization()?;
        for f in &c.files {
            tree.insert(
                &format!("{}/{}", c.name, f.name),
                f.text.clone().into_bytes(),
                f.secret,
            );
        }
        tree.insert(
            &format!("{}/kustomization.yaml", c.name),
            kustomization.into_bytes(),
            false,
        );
        dirs.push(c.name);
    }
    // The charts' CRDs, once each, listed first: `kubectl apply -k out/crds` installs them
    // before the objects that need them (see the README).
    let crd_files = crate::delivery::rendered::crd_files(&crds)?;
    if !crd_files.is_empty() {
        let names: Vec<&str> = crd_files.iter().map(|(n, _)| n.as_str()).collect();
        let k = render_to("kustomization.yaml", &json!({"resources": names}))?;
        tree.insert("crds/kustomization.yaml", k.into_bytes(), false);
        for (name, text) in &crd_files {
            tree.insert(&format!("crds/{name}"), text.clone().into_bytes(), false);
        }
        dirs.insert(0, "crds".to_owned());
    }
    let root = render_to("kustomization.yaml", &json!({"resources": dirs}))?;
    tree.insert("kustomization.yaml", root.into_bytes(), false);
    crate::index::seal(&mut tree, &crate::index::inputs_digest(loaded));
    let derived = deriver.used();
    crate::secret_delivery::trace_sources(&mut secrets, &derived, loaded);
    Ok(Rendered {
        tree,
        secrets,
        derived,
    })
}
