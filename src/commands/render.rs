//! `mlplat render`: config in, `out/` written atomically, or compared with `--check`. A config
//! with environments renders each into `out/<env>/` (all of them, or the one `--env` names).

use std::path::{Path, PathBuf};

use super::Outcome;
use crate::cli::RenderArgs;
use crate::config::{Loaded, Selection, Tool};
use crate::output::{OutLock, Tree};
use crate::{config, output, render};

pub fn run(args: &RenderArgs) -> anyhow::Result<Outcome> {
    let mut platforms = config::load(&args.config, Selection::from_env(args.env.as_deref()))?;
    match (
        &args.env,
        platforms.first().map(|l| l.environment.is_some()),
    ) {
        (Some(env), _) => {
            let target = Target {
                dir: args.out.join(env),
                rerun: format!(
                    "mlplat render -c {} -o {} --env {env}",
                    args.config.display(),
                    args.out.display()
                ),
                what: format!("{} (environment {env})", args.config.display()),
            };
            run_one(args, &platforms.remove(0), &target)
        }
        (None, Some(true)) => run_all(args, &platforms),
        (None, _) => run_one(args, &platforms.remove(0), &Target::whole(args)),
    }
}

/// Where one render goes, and how messages name it.
struct Target {
    dir: PathBuf,
    /// The command that updates it.
    rerun: String,
    /// The config it is rendered from.
    what: String,
}

impl Target {
    /// The whole output directory of `args`, rendered from its config.
    fn whole(args: &RenderArgs) -> Self {
        Target {
            dir: args.out.clone(),
            rerun: format!(
                "mlplat render -c {} -o {}",
                args.config.display(),
                args.out.display()
            ),
            what: args.config.display().to_string(),
        }
    }
}

/// One platform: the config without environments, or the environment `--env` names.
fn run_one(args: &RenderArgs, loaded: &Loaded, target: &Target) -> anyhow::Result<Outcome> {
    // `--check` always renders and compares: a render takes milliseconds, and an answer from
    // the index alone would miss a change in mlplat itself (templates, value builders) made
    // without a version bump. The index still names files edited by hand.
    let report = render::render_report(loaded).map_err(super::render_error)?;
    let tree = &report.tree;
    if args.check {
        let outcome = {
            let _reading = OutLock::shared(&args.out, waiting)?;
            check(tree, target, &[(String::new(), target.dir.clone())])?
        };
        super::note_unchecked(&loaded.file, &report);
        return Ok(outcome);
    }
    let lock = OutLock::exclusive(&args.out, waiting)?;
    if loaded.environment.is_some() {
        output::ensure_root(&args.out, &lock)?;
    }
    let written = output::write_locked(tree, &target.dir, &lock)?;
    drop(lock);
    let dirs: Vec<&str> = tree
        .files
        .keys()
        .filter_map(|p| p.strip_suffix("/kustomization.yaml"))
        .collect();
    report_written(&written, &target.dir, tree.files.len(), &dirs);
    warn_if_no_tool(loaded, &target.dir);
    warn_if_tracked(&[loaded], &target.dir);
    super::note_unchecked(&loaded.file, &report);
    Ok(Outcome::Clean)
}

/// Every environment, each into `out/<env>/`, written (or checked) as one tree.
fn run_all(args: &RenderArgs, envs: &[Loaded]) -> anyhow::Result<Outcome> {
    let report = render::render_environments_report(envs).map_err(super::render_error)?;
    let names: Vec<&str> = envs
        .iter()
        .map(|l| l.environment.as_deref().unwrap_or_default())
        .collect();
    let tree = &report.tree;
    let target = Target::whole(args);
    if args.check {
        let indexes: Vec<(String, PathBuf)> = names
            .iter()
            .map(|env| (format!("{env}/"), args.out.join(env)))
            .collect();
        let outcome = {
            let _reading = OutLock::shared(&args.out, waiting)?;
            check(tree, &target, &indexes)?
        };
        super::note_unchecked(&args.config, &report);
        return Ok(outcome);
    }
    let lock = OutLock::exclusive(&args.out, waiting)?;
    let written = output::write_locked(tree, &args.out, &lock)?;
    drop(lock);
    report_written(&written, &args.out, tree.files.len(), &names);
    for (env, loaded) in names.iter().zip(envs) {
        warn_if_no_tool(loaded, &args.out.join(env));
    }
    let loaded: Vec<&Loaded> = envs.iter().collect();
    warn_if_tracked(&loaded, &args.out);
    super::note_unchecked(&args.config, &report);
    Ok(Outcome::Clean)
}

/// `--check`: compares `tree` with `target.dir`; `indexes` are the directories whose index
/// names the files edited by hand, with the prefix of their paths in `tree`.
fn check(tree: &Tree, target: &Target, indexes: &[(String, PathBuf)]) -> anyhow::Result<Outcome> {
    let out = target.dir.display();
    let drift = output::check(tree, &target.dir)?;
    // git keeps no file modes: every checkout of a committed tree has its secret files 0644, so
    // a loose mode there is no news (render warns about Secret data in git instead).
    let loose = if drift.loose_mode.is_empty() || crate::files::tracked_by_git(&target.dir) {
        &[][..]
    } else {
        &drift.loose_mode[..]
    };
    for path in loose {
        eprintln!(
            "warning: {out}/{path} holds Secret data and others can read it: `chmod 600` it, or render again"
        );
    }
    if drift.is_empty() {
        eprintln!("mlplat: {out} is up to date ({} files)", tree.files.len());
        return Ok(Outcome::Clean);
    }
    println!("{out} is stale: a fresh render of {} differs", target.what);
    let by_hand = edited_by_hand(indexes);
    for line in drift.lines() {
        let edited = line
            .strip_prefix("changed: ")
            .is_some_and(|p| by_hand.iter().any(|h| h == p));
        let note = if edited { " (edited by hand)" } else { "" };
        println!("  {line}{note}");
    }
    println!("run `{}` to update it", target.rerun);
    Ok(Outcome::Drift)
}

fn edited_by_hand(indexes: &[(String, PathBuf)]) -> Vec<String> {
    let mut out = Vec::new();
    for (prefix, dir) in indexes {
        if let Some(index) = output::index::read(dir) {
            out.extend(
                output::index::edited_by_hand(dir, &index)
                    .into_iter()
                    .map(|p| format!("{prefix}{p}")),
            );
        }
    }
    out
}

/// Said once when another mlplat holds the lock of the output directory.
pub(crate) fn waiting(parent: &Path) {
    eprintln!(
        "mlplat: another mlplat is writing an output directory in {}: waiting for it (at most {} s)",
        parent.display(),
        output::LOCK_TIMEOUT.as_secs()
    );
}

fn report_written(written: &output::Written, dir: &Path, files: usize, dirs: &[&str]) {
    for w in &written.warnings {
        eprintln!("warning: {w}");
    }
    let out = dir.display();
    let dirs = if dirs.is_empty() {
        "no tool".to_owned()
    } else {
        list_some(dirs)
    };
    if written.changed {
        eprintln!("mlplat: wrote {out} ({files} files: {dirs})");
    } else {
        eprintln!("mlplat: {out} is already up to date ({files} files)");
    }
}

/// The names, or with many (100 environments), the first few and how many more.
fn list_some(names: &[&str]) -> String {
    const SHOWN: usize = 6;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..SHOWN - 1].join(", "),
        names.len() - (SHOWN - 1)
    )
}

/// A config whose every tool is absent or `enabled: false` renders an output with no workload:
/// legal (applied with pruning, it removes the platform), but rarely what was meant.
fn warn_if_no_tool(loaded: &Loaded, dir: &Path) {
    let p = &loaded.platform;
    if Tool::ALL.into_iter().all(|tool| !p.enabled(tool)) {
        let env = loaded
            .environment
            .as_ref()
            .map(|e| format!(" (environment {e})"))
            .unwrap_or_default();
        eprintln!(
            "warning: no tool is enabled in {}{env}: tools.airflow, tools.mlflow and tools.jupyterhub are each absent or `enabled: false`, so {} holds no workload (applied with pruning, it removes the platform)",
            loaded.file.display(),
            dir.display()
        );
    }
}

/// Secret manifests in a git repository are worth a warning, unless every secret in them is
/// derived from the public example key (the committed examples): then there is nothing to keep.
fn warn_if_tracked(loaded: &[&Loaded], dir: &Path) {
    if loaded.iter().any(|l| {
        l.platform.secrets.mode == config::SecretMode::Plain && !l.uses_public_example_key()
    }) && crate::files::tracked_by_git(dir)
    {
        let out = dir.display();
        eprintln!(
            "warning: {out} is tracked by git and holds Secret manifests (secrets.mode: plain): every secret is in the repository's history; use secrets.mode: external-secrets, or keep {out} out of git"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::list_some;

    #[test]
    fn many_names_are_cut_short() {
        assert_eq!(list_some(&["airflow", "mlflow"]), "airflow, mlflow");
        let envs: Vec<String> = (0..100).map(|i| format!("e{i:03}")).collect();
        let envs: Vec<&str> = envs.iter().map(String::as_str).collect();
        assert_eq!(list_some(&envs), "e000, e001, e002, e003, e004 and 95 more");
        assert_eq!(list_some(&envs[..6]).matches(", ").count(), 5);
    }
}
