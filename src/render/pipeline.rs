//! The pipeline, end to end: a loaded config in, the whole output tree out, in memory.
//! config → backends → secrets → tools → delivery → output.

use serde_json::json;

use crate::backends::Backends;
use crate::charts::ChartRelease;
use crate::config::{Delivery, Loaded};
use crate::delivery::deliver;
use crate::output::Tree;
use crate::render::component::Component;
use crate::render::component::render_to;
use crate::render::error::RenderError;
use crate::secrets::Deriver;
use crate::tools::{self, Links};

/// Renders every enabled component of the platform into a tree of files.
pub fn render(loaded: &Loaded) -> Result<Tree, RenderError> {
    render_report(loaded).map(|r| r.tree)
}

/// A render's tree, and the charts whose values it could not check against the chart itself
/// (`<chart> <version>: <why>`), which the commands mention once.
#[derive(Debug)]
pub struct Report {
    pub tree: Tree,
    pub unchecked: Vec<String>,
}

/// [`render`], with what it could not check.
pub fn render_report(loaded: &Loaded) -> Result<Report, RenderError> {
    let prepared = prepare(loaded)?;
    let manifests = crate::charts::inflate::run_all(&prepared.jobs)?;
    let unchecked = prepared.unchecked.clone();
    let (tree, _, derived) = finish(loaded, prepared, manifests)?;
    // One environment alone cannot judge names the others may use.
    if loaded.environment.is_none() {
        check_lock_names(loaded, &[&derived])?;
    }
    Ok(Report { tree, unchecked })
}

/// Renders every environment of a config (as [`crate::config::load`] gives them) into
/// `<name>/`, each a whole output with its own index, under one marker: what `out/` holds for a
/// config with environments.
pub fn render_environments(envs: &[Loaded]) -> Result<Tree, RenderError> {
    render_environments_report(envs).map(|r| r.tree)
}

/// [`render_environments`], with what it could not check. The Helm calls of every environment
/// (`delivery: rendered`) run at once.
pub fn render_environments_report(envs: &[Loaded]) -> Result<Report, RenderError> {
    let prepared = envs.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
    let jobs: Vec<_> = prepared.iter().flat_map(|p| p.jobs.clone()).collect();
    let mut manifests = crate::charts::inflate::run_all(&jobs)?.into_iter();
    let mut tree = Tree::new();
    let mut unchecked = Vec::new();
    let mut derived = Vec::new();
    for (loaded, p) in envs.iter().zip(prepared) {
        let name = loaded.environment.as_deref().unwrap_or_default();
        unchecked.extend(p.unchecked.iter().cloned());
        let mine: Vec<_> = manifests.by_ref().take(p.jobs.len()).collect();
        let (env_tree, _, env_derived) = finish(loaded, p, mine)?;
        for (path, file) in env_tree.files {
            tree.files.insert(format!("{name}/{path}"), file);
        }
        derived.push(env_derived);
    }
    if let Some(first) = envs.first() {
        let all: Vec<_> = derived.iter().collect();
        check_lock_names(first, &all)?;
    }
    Ok(Report { tree, unchecked })
}

/// The lock's generations must name secrets the platform derives: a typo or a stale name is an
/// error at its line. Only the components the render derived something for are judged (a
/// disabled tool keeps its rotations for when it comes back).
pub fn check_lock_names(
    loaded: &Loaded,
    derived: &[&std::collections::BTreeMap<String, crate::secrets::Secret>],
) -> Result<(), RenderError> {
    let component = |name: &str| name.split('/').next().unwrap_or_default().to_owned();
    let judged: std::collections::BTreeSet<String> = derived
        .iter()
        .flat_map(|d| d.keys())
        .map(|n| component(n))
        .collect();
    for name in loaded.lock.secrets.generations.keys() {
        if judged.contains(&component(name)) && !derived.iter().any(|d| d.contains_key(name)) {
            let mut known: Vec<&str> = derived
                .iter()
                .flat_map(|d| d.keys())
                .filter(|n| component(n) == component(name))
                .map(String::as_str)
                .collect();
            known.sort_unstable();
            known.dedup();
            let message = format!(
                "{} is not a secret this platform derives; its {} secrets are: {}",
                crate::yaml::quote(name),
                component(name),
                known.join(", ")
            );
            return Err(crate::lock::LockError::Invalid(Box::new(
                crate::lock::Lock::diagnostic_at(&loaded.file, name, message)
                    .help("fix the name, or remove the line if the secret is gone"),
            ))
            .into());
        }
    }
    Ok(())
}

/// A render with what went into it, for the commands that need more than the files.
#[derive(Debug)]
pub struct Rendered {
    pub tree: Tree,
    /// Every Secret the platform needs, whatever the secret delivery mode writes to `out/`.
    pub secrets: Vec<crate::render::secret::SecretObject>,
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

/// Every image the workloads mlplat renders itself use (not the charts'), as the config names
/// them: what `mlplat images pin` pins.
pub fn own_images(loaded: &Loaded) -> Result<std::collections::BTreeSet<String>, RenderError> {
    // By tag, whatever the config says: the images are what is asked, not their pins.
    let mut by_tag = loaded.clone();
    by_tag.platform.images.pin = Some(crate::config::ImagePin::Tag);
    let mut images = std::collections::BTreeSet::new();
    for c in components(&by_tag, &deriver(&by_tag))? {
        for f in &c.files {
            let docs =
                crate::yaml::parse_documents(&f.text).map_err(|source| RenderError::Yaml {
                    name: f.name.clone(),
                    source,
                })?;
            for doc in docs {
                let Ok(obj) = crate::yaml::from_node::<serde_json::Value>(&doc) else {
                    continue;
                };
                collect_images(&obj, &mut images);
            }
        }
    }
    Ok(images)
}

/// The container images of a workload object (Deployment, StatefulSet, DaemonSet, Job,
/// CronJob, Pod).
fn collect_images(obj: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    let pod = match obj["kind"].as_str() {
        Some("Deployment" | "StatefulSet" | "DaemonSet" | "Job") => {
            &obj["spec"]["template"]["spec"]
        }
        Some("CronJob") => &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        Some("Pod") => &obj["spec"],
        _ => return,
    };
    for list in ["initContainers", "containers"] {
        for c in pod[list].as_array().into_iter().flatten() {
            if let Some(image) = c["image"].as_str() {
                out.insert(image.to_owned());
            }
        }
    }
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
    if let Some(cfg) = p.airflow() {
        components.push(tools::airflow::build(
            loaded,
            cfg,
            deriver,
            &mut backends,
            &links,
        )?);
    }
    if let Some(cfg) = p.mlflow() {
        components.push(tools::mlflow::build(loaded, cfg, deriver, &mut backends)?);
    }
    if let Some(cfg) = p.jupyterhub() {
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

/// The components of a platform, built and their chart values checked, with the Helm calls
/// they need (`delivery: rendered`): everything before anything runs.
#[derive(Debug)]
struct Prepared {
    deriver: Deriver,
    components: Vec<Component>,
    /// One per component with a chart, for `delivery: rendered`; in component order.
    jobs: Vec<crate::charts::inflate::Job>,
    unchecked: Vec<String>,
}

fn prepare(loaded: &Loaded) -> Result<Prepared, RenderError> {
    let deriver = deriver(loaded);
    let components = components(loaded, &deriver)?;
    let rendered = loaded.platform.delivery == Delivery::Rendered;
    let mut jobs = Vec::new();
    let mut unchecked = Vec::new();
    for c in &components {
        let Some(chart) = &c.chart else { continue };
        let checked = crate::charts::check_values(loaded, &c.name, chart, rendered)?;
        unchecked.extend(checked.unchecked);
        if let Some((archive, digest)) = checked.archive {
            jobs.push(crate::charts::inflate::Job {
                platform: loaded.platform.platform.clone(),
                tool: c.name.clone(),
                chart: chart.clone(),
                archive,
                digest,
                namespace: c.namespace.clone(),
                values: crate::charts::values::release_values(chart),
                secrets: crate::delivery::rendered::secret_strings(&chart.secret_values),
            });
        }
    }
    Ok(Prepared {
        deriver,
        components,
        jobs,
        unchecked,
    })
}

type Built = (
    Tree,
    Vec<crate::render::secret::SecretObject>,
    std::collections::BTreeMap<String, crate::secrets::Secret>,
);

/// Delivers the prepared components (with what Helm printed for each job, in order) and
/// writes the tree.
fn finish(
    loaded: &Loaded,
    prepared: Prepared,
    manifests: Vec<crate::charts::inflate::Inflated>,
) -> Result<Built, RenderError> {
    let Prepared {
        deriver,
        components,
        jobs,
        ..
    } = prepared;
    let mut manifests: std::collections::BTreeMap<String, crate::charts::inflate::Inflated> =
        jobs.into_iter().map(|j| j.tool).zip(manifests).collect();
    let mut tree = Tree::new();
    let mut dirs = Vec::new();
    let mut secrets = Vec::new();
    let mut crds = Vec::new();
    for mut c in components {
        let inflated = manifests.remove(&c.name);
        deliver(loaded, &mut c, inflated.as_ref())?;
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
    crate::output::index::seal(&mut tree, &crate::output::index::inputs_digest(loaded));
    let derived = deriver.used();
    Ok((tree, secrets, derived))
}

/// [`render`], keeping the Secrets and the derived names.
pub fn render_full(loaded: &Loaded) -> Result<Rendered, RenderError> {
    let prepared = prepare(loaded)?;
    let manifests = crate::charts::inflate::run_all(&prepared.jobs)?;
    let (tree, mut secrets, derived) = finish(loaded, prepared, manifests)?;
    crate::secret_delivery::trace_sources(&mut secrets, &derived, loaded);
    Ok(Rendered {
        tree,
        secrets,
        derived,
    })
}
