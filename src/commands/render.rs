//! `mlplat render`: config in, `out/` written atomically, or compared with `--check`.

use super::Outcome;
use crate::cli::RenderArgs;
use crate::{config, output, render};

pub fn run(args: &RenderArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load(&args.config)?;
    // `--check` always renders and compares: a render takes milliseconds, and an answer from
    // the index alone would miss a change in mlplat itself (templates, value builders) made
    // without a version bump. The index still names files edited by hand.
    let tree = render::render(&loaded).map_err(|e| match e {
        crate::tools::RenderError::Unprovisioned(_) => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context("internal error while rendering (please report it)"),
    })?;
    let out = args.out.display();
    if args.check {
        let drift = output::check(&tree, &args.out)?;
        for path in &drift.loose_mode {
            eprintln!(
                "warning: {out}/{path} holds Secret data and others can read it: `chmod 600` it, or render again"
            );
        }
        if drift.is_empty() {
            eprintln!("mlplat: {out} is up to date ({} files)", tree.files.len());
            return Ok(Outcome::Clean);
        }
        println!(
            "{out} is stale: a fresh render of {} differs",
            args.config.display()
        );
        let by_hand = crate::index::read(&args.out)
            .map(|index| crate::index::edited_by_hand(&args.out, &index))
            .unwrap_or_default();
        for line in drift.lines() {
            let edited = line
                .strip_prefix("changed: ")
                .is_some_and(|p| by_hand.iter().any(|h| h == p));
            let note = if edited { " (edited by hand)" } else { "" };
            println!("  {line}{note}");
        }
        println!(
            "run `mlplat render -c {} -o {out}` to update it",
            args.config.display()
        );
        return Ok(Outcome::Drift);
    }
    let written = output::write(&tree, &args.out)?;
    let dirs: Vec<&str> = tree
        .files
        .keys()
        .filter_map(|p| p.strip_suffix("/kustomization.yaml"))
        .collect();
    if written {
        eprintln!(
            "mlplat: wrote {out} ({} files: {})",
            tree.files.len(),
            dirs.join(", ")
        );
    } else {
        eprintln!(
            "mlplat: {out} is already up to date ({} files)",
            tree.files.len()
        );
    }
    if loaded.platform.secrets.mode == config::SecretMode::Plain
        && crate::secret_delivery::tracked_by_git(&args.out)
    {
        eprintln!(
            "warning: {out} is tracked by git and holds Secret manifests (secrets.mode: plain): every secret is in the repository's history; use secrets.mode: external-secrets, or keep {out} out of git"
        );
    }
    Ok(Outcome::Clean)
}
