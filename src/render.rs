//! The pipeline, end to end: a loaded config in, the whole output tree out, in memory.
//! config → backends → secrets → tools → delivery → output.

use serde_json::json;

use crate::backends::Backends;
use crate::config::Loaded;
use crate::delivery::deliver;
use crate::output::Tree;
use crate::secrets::Deriver;
use crate::tools::{self, Component, Links, RenderError, render_to};

/// Renders every enabled component of the platform into a tree of files.
pub fn render(loaded: &Loaded) -> Result<Tree, RenderError> {
    let p = &loaded.platform;
    let deriver = Deriver::new(&loaded.key, &p.platform)
        .with_generations(loaded.lock.secrets.generations.clone());
    let mut backends = Backends::resolve(loaded);
    let links = Links::new(loaded);
    let mut components: Vec<Component> = Vec::new();
    if let Some(cfg) = p.tools.airflow.as_ref().filter(|_| p.enabled("airflow")) {
        components.push(tools::airflow::build(
            loaded,
            cfg,
            &deriver,
            &mut backends,
            &links,
        )?);
    }
    if let Some(cfg) = p.tools.mlflow.as_ref().filter(|_| p.enabled("mlflow")) {
        components.push(tools::mlflow::build(loaded, cfg, &deriver, &mut backends)?);
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
            &deriver,
            &mut backends,
            &links,
        )?);
    }
    if let Some(pg) = backends.render_postgres(loaded, &deriver)? {
        components.insert(0, pg);
    }
    let mut tree = Tree::new();
    let mut dirs = Vec::new();
    for mut c in components {
        deliver(p, &mut c)?;
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
    let root = render_to("kustomization.yaml", &json!({"resources": dirs}))?;
    tree.insert("kustomization.yaml", root.into_bytes(), false);
    Ok(tree)
}
