//! `mlplat rotate <secret>`: bumps one derived secret's generation in the lock file, so the
//! next render derives a new value, and says what that changes and what restarts. What changes
//! is found by rendering twice (before and after) and comparing, not by a table that could go
//! stale. `--list` names every secret that can be rotated.
//!
//! Values are never printed: a rotation shows the old and new fingerprints.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;

use super::{Outcome, environments};
use crate::cli::RotateArgs;
use crate::config::{self, Loaded};
use crate::render::secret::SecretObject;
use crate::render::{Rendered, render_full};

/// Why a rotation cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(
        "{name:?} is not a secret mlplat generates for this platform{hint}\nvalid names: {valid}\n(`mlplat rotate --list` shows where each is used; a value from fromEnv/fromFile is rotated where it comes from)"
    )]
    Unknown {
        name: String,
        hint: String,
        valid: String,
    },
}

pub fn run(args: &RotateArgs) -> anyhow::Result<Outcome> {
    let targets = config::load(
        &args.config,
        config::Selection::from_env(args.env.as_deref()),
    )?;
    let several = environments::several(&targets, args.env.as_deref());
    let mut rendered = Vec::new();
    for loaded in targets {
        let before = render_full(&loaded).map_err(super::render_error)?;
        crate::render::check_lock_names(&loaded, &[&before.derived])
            .map_err(super::render_error)?;
        rendered.push((loaded, before));
    }
    if args.list {
        for (loaded, before) in &rendered {
            if let Some(h) = environments::heading(loaded) {
                println!("{h}");
            }
            print!("{}", list(loaded, before));
        }
        return Ok(Outcome::Clean);
    }
    let Some(name) = args.name.as_deref() else {
        return Ok(Outcome::Clean); // clap requires a name without --list
    };
    // Every environment that derives the secret rotates it; the others say they do not.
    let mut rotations = Vec::new();
    let mut unknown = None;
    for (mut loaded, before) in rendered {
        match plan(&mut loaded, &before, name) {
            Ok(rotation) => rotations.push((loaded, rotation)),
            Err(e) if several => {
                if let Some(env) = &loaded.environment {
                    eprintln!("mlplat: environment {env} derives no secret `{name}`: skipped");
                }
                unknown.get_or_insert(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if rotations.is_empty() {
        if let Some(e) = unknown {
            return Err(e.into());
        }
        return Ok(Outcome::Clean);
    }
    for (loaded, rotation) in &rotations {
        if let Some(h) = environments::heading(loaded) {
            println!("{h}");
        }
        print!("{}", rotation.report);
    }
    if several {
        let names: Vec<&str> = rotations
            .iter()
            .filter_map(|(l, _)| l.environment.as_deref())
            .collect();
        environments::confirm(
            &format!("Rotate {name} in {}?", names.join(", ")),
            args.yes,
            &format!(
                "rotate changes {name} in every environment above: pass --yes to confirm (or --env NAME for one environment)"
            ),
        )?;
    }
    environments::each(
        "rotate",
        &mut rotations,
        |(l, _)| l,
        |(loaded, rotation)| {
            let path = loaded.lock_path();
            loaded
                .lock
                .write(&path)
                .context("saving the new generation")?;
            eprintln!(
                "mlplat: wrote {} ({name} at generation {}); next: `mlplat render -c {}`{}",
                path.display(),
                rotation.generation,
                args.config.display(),
                if loaded.platform.secrets.mode == config::SecretMode::ExternalSecrets {
                    format!(
                        ", then `mlplat provision -c {}{}` to store the new value before the cluster applies out/",
                        args.config.display(),
                        environments::env_flag(loaded)
                    )
                } else {
                    String::new()
                }
            );
            Ok(Outcome::Clean)
        },
    )
}

/// One line per rotatable secret: name, generation, and the Secret keys it feeds.
pub fn list(loaded: &Loaded, r: &Rendered) -> String {
    let mut out = String::new();
    for name in r.derived.keys() {
        let used: Vec<String> = r
            .secrets
            .iter()
            .flat_map(|o| {
                o.sources
                    .iter()
                    .filter(|(_, s)| s.contains(name))
                    .map(move |(k, _)| format!("{}[{k}]", o.id()))
            })
            .collect();
        out.push_str(&format!(
            "{name}  generation {}  {}\n",
            loaded.lock.generation(name),
            used.join(", ")
        ));
    }
    out
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub generation: u32,
    /// The Secrets whose value changed, by `namespace/name`.
    pub changed: Vec<String>,
    /// What the user reads.
    pub report: String,
}

/// Bumps `name` in `loaded.lock` (not saved) and works out what changes.
pub fn plan(loaded: &mut Loaded, before: &Rendered, name: &str) -> Result<Rotation, RotateError> {
    let Some(old) = before.derived.get(name) else {
        let names: Vec<&str> = before.derived.keys().map(String::as_str).collect();
        let best = names
            .iter()
            .map(|n| (strsim::jaro_winkler(n, name), *n))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        return Err(RotateError::Unknown {
            name: name.to_owned(),
            hint: best
                .map(|(_, n)| format!("; did you mean `{n}`?"))
                .unwrap_or_default(),
            valid: names.join(", "),
        });
    };
    let generation = loaded.lock.generation(name) + 1;
    loaded
        .lock
        .secrets
        .generations
        .insert(name.to_owned(), generation);
    #[allow(clippy::expect_used)] // the same config rendered a moment ago
    let after = render_full(loaded).expect("a config that rendered renders again");
    let new = after
        .derived
        .get(name)
        .cloned()
        .unwrap_or_else(|| old.clone());

    let mut report = format!(
        "{name}: generation {} → {generation} ({} → {})\n",
        generation - 1,
        old.fingerprint(),
        new.fingerprint()
    );
    let old_by_id: BTreeMap<String, &SecretObject> =
        before.secrets.iter().map(|o| (o.id(), o)).collect();
    let mut changed = Vec::new();
    let mut components = BTreeSet::new();
    for o in &after.secrets {
        let Some(prev) = old_by_id.get(&o.id()) else {
            continue;
        };
        let keys: Vec<&str> = o
            .data
            .iter()
            .filter(|(k, v)| prev.data.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect();
        if keys.is_empty() {
            continue;
        }
        report.push_str(&format!(
            "  changes Secret {} ({})\n",
            o.id(),
            keys.join(", ")
        ));
        changed.push(o.id());
        components.insert((o.component.clone(), o.namespace.clone(), o.name.clone()));
    }
    for line in restarts(&before.tree, &after.tree, &components) {
        report.push_str(&format!("  restarts: {line}\n"));
    }
    for job in new_jobs(&before.tree, &after.tree) {
        report.push_str(&format!(
            "  runs: Job {job} (a new one, once applied), which sets the new value on the server\n"
        ));
    }
    if let Some(step) = database_step(loaded, &after, name) {
        report.push_str(&step);
    }
    if name == "airflow/fernet-key" {
        report.push_str(
            "  then: Airflow now holds the new key and the previous one (`new,previous`) and reads both; once its pods run with them, re-encrypt the connections and variables in its database: `airflow rotate-fernet-key` in the scheduler pod\n",
        );
    }
    Ok(Rotation {
        generation,
        changed,
        report,
    })
}

fn pretty(component: &str) -> &str {
    match config::Tool::from_name(component) {
        Some(tool) => tool.title(),
        None if component == "postgres" => "PostgreSQL",
        None => component,
    }
}

/// The workloads a change of these Secrets restarts: mlplat's own (their checksum annotation
/// changed, so they roll by themselves) and the Helm releases that read them.
fn restarts(
    before: &crate::output::Tree,
    after: &crate::output::Tree,
    secrets: &BTreeSet<(String, String, String)>,
) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (path, file) in &after.files {
        if file.secret
            || before
                .files
                .get(path)
                .is_some_and(|f| f.bytes == file.bytes)
        {
            continue;
        }
        let text = String::from_utf8_lossy(&file.bytes);
        let Ok(docs) = crate::yaml::parse_documents(&text) else {
            continue;
        };
        for doc in docs {
            let doc = doc.to_json();
            let kind = doc["kind"].as_str().unwrap_or_default();
            if matches!(kind, "Deployment" | "StatefulSet") {
                let component = path.split('/').next().unwrap_or_default();
                out.insert(format!(
                    "{} ({kind} {}/{}): rolls by itself (its checksum/secret annotation changed)",
                    pretty(component),
                    doc["metadata"]["namespace"].as_str().unwrap_or_default(),
                    doc["metadata"]["name"].as_str().unwrap_or_default(),
                ));
            }
        }
    }
    for (component, namespace, secret) in secrets {
        if !after
            .files
            .contains_key(&format!("{component}/helmrelease.yaml"))
            && !after
                .files
                .contains_key(&format!("{component}/application.yaml"))
        {
            continue;
        }
        let what = format!(
            "{} (HelmRelease {namespace}/{component})",
            pretty(component)
        );
        // A release whose values carry a checksum of the Secret (JupyterHub's hub) rolls by itself.
        let values_changed = ["helmrelease.yaml", "application.yaml"].iter().any(|f| {
            let path = format!("{component}/{f}");
            after.files.get(&path).map(|a| &a.bytes) != before.files.get(&path).map(|b| &b.bytes)
        });
        if secret.ends_with("-helm-values") || values_changed {
            out.insert(format!(
                "{what}: its chart values changed, so the release upgrades and the chart rolls its pods"
            ));
        } else {
            out.insert(format!(
                "{what}: its pods read Secret {secret} at start; once the new Secret is in the cluster run `kubectl -n {namespace} rollout restart deployment,statefulset`"
            ));
        }
    }
    out.into_iter().collect()
}

/// The Jobs of `after` that `before` did not have (`namespace/name`): mlplat's reconcile and
/// identities Jobs carry a hash of their inputs in their names, so a new value makes a new Job.
fn new_jobs(before: &crate::output::Tree, after: &crate::output::Tree) -> Vec<String> {
    let jobs = |tree: &crate::output::Tree| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (path, file) in &tree.files {
            if file.secret
                || !path
                    .rsplit('/')
                    .next()
                    .is_some_and(|f| f.starts_with("job-"))
            {
                continue;
            }
            let text = String::from_utf8_lossy(&file.bytes);
            for doc in crate::yaml::parse_documents(&text).unwrap_or_default() {
                let doc = doc.to_json();
                if doc["kind"] == "Job" {
                    out.insert(format!(
                        "{}/{}",
                        doc["metadata"]["namespace"].as_str().unwrap_or_default(),
                        doc["metadata"]["name"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
        out
    };
    let old = jobs(before);
    jobs(after)
        .into_iter()
        .filter(|j| !old.contains(j))
        .collect()
}

/// A database password lives in the database too: say how it gets there. mlplat's reconcile
/// Job sets it where mlplat manages the roles (in-cluster PostgreSQL, RDS); on an external
/// server it is the user's to change.
fn database_step(loaded: &Loaded, after: &Rendered, name: &str) -> Option<String> {
    let role = if name == "postgres/superuser" {
        "postgres".to_owned()
    } else {
        name.strip_prefix("postgres/users/")?.to_owned()
    };
    let managed = after
        .tree
        .files
        .keys()
        .any(|p| p.starts_with("postgres/job-"));
    if managed {
        return Some(format!(
            "  then: the new reconcile Job sets the new password of role `{role}` in PostgreSQL (logged in with the previous one when it is the superuser's); the tools' pods connect with it once they restart\n"
        ));
    }
    let holder = after
        .secrets
        .iter()
        .find(|o| o.sources.values().any(|s| s.iter().any(|s| s == name)))
        .map(|o| o.id())
        .unwrap_or_default();
    let host = loaded
        .platform
        .backends
        .postgres
        .external
        .as_ref()
        .map(|e| e.host.clone())
        .unwrap_or_default();
    Some(format!(
        "  then: set the new password of role `{role}` on {host} (the value is in Secret {holder}, key postgresql-password, once the cluster has it); the tools fail to connect until you do\n"
    ))
}
