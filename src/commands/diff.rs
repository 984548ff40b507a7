//! `mlplat diff`: what a fresh render would change in `out/`, per Kubernetes object, with every
//! secret value shown as its fingerprint. Exit 0 when nothing would change, 1 otherwise. With
//! environments: every `out/<env>/`, or the one `--env` names.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use super::Outcome;
use crate::cli::DiffArgs;
use crate::config::Selection;
use crate::diff::{Side, diff};
use crate::output::Tree;
use crate::{config, render};

pub fn run(args: &DiffArgs) -> anyhow::Result<Outcome> {
    let platforms = config::load(&args.config, Selection::from_env(args.env.as_deref()))?;
    let (report, dir) = match (&args.env, platforms.as_slice()) {
        (Some(env), [loaded]) => (render_one(loaded)?, args.out.join(env)),
        (None, [loaded]) if loaded.environment.is_none() => (render_one(loaded)?, args.out.clone()),
        (_, envs) => {
            let report = render::render_environments_report(envs).map_err(super::render_error)?;
            (report, args.out.clone())
        }
    };
    let tree = &report.tree;
    let reading = crate::output::OutLock::shared(&args.out, super::render::waiting)?;
    let on_disk = read_dir(&dir, tree)?;
    drop(reading);
    let changes = diff(&on_disk, tree);
    let out = dir.display();
    let outcome = if changes.is_empty() {
        eprintln!("mlplat: {out} is up to date: a fresh render changes nothing");
        Outcome::Clean
    } else {
        print!("{}", changes.text());
        Outcome::Drift
    };
    super::note_unchecked(&args.config, &report);
    Ok(outcome)
}

fn render_one(loaded: &config::Loaded) -> anyhow::Result<render::Report> {
    render::render_report(loaded).map_err(super::render_error)
}

/// Every file under `dir` (none when it does not exist), marked secret when the fresh render
/// marks the same path so.
fn read_dir(dir: &Path, tree: &Tree) -> anyhow::Result<BTreeMap<String, Side>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in fs_err::read_dir(&path)? {
            let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type()?.is_dir() {
                stack.push((entry.path(), rel));
                continue;
            }
            // Only regular files are read (a FIFO would block): anything else is reported,
            // and a fresh render would replace it.
            let bytes = match crate::files::open_regular(&entry.path(), false) {
                Ok(f) => f
                    .read(crate::files::MAX_OUTPUT_BYTES)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", entry.path().display()))?,
                Err(crate::files::ReadError::NotRegular(kind)) => {
                    eprintln!(
                        "warning: {} is not a regular file ({kind}): a render would replace it",
                        entry.path().display()
                    );
                    continue;
                }
                Err(e) => anyhow::bail!("{}: {e}", entry.path().display()),
            };
            let secret = tree.files.get(&rel).is_some_and(|f| f.secret);
            out.insert(rel, Side { bytes, secret });
        }
    }
    Ok(out)
}
