//! `mlplat destroy`: deletes the AWS backends mlplat created for this platform, after `--yes`
//! or a confirmation on a terminal. Deletion protection and a non-empty bucket without
//! `forceDestroy` stop it before anything is deleted.
//!
//! A config with environments: every environment's backends (or those of the one `--env`
//! names), all shown first, one confirmation, then one environment after another. Only
//! resources tagged with the environment's own platform name are deleted.

use super::common;
use crate::destroy::{Targets, destroy, targets};
use crate::wait::{Progress, WaitOptions};
use crate::{AwsError, Clients};
use mlplat::backends::aws::Desired;
use mlplat::cli::DestroyArgs;
use mlplat::commands::Outcome;
use mlplat::commands::environments::{self, heading};
use mlplat::config::Loaded;
use mlplat::lock::Lock;

pub fn run(args: &DestroyArgs) -> anyhow::Result<Outcome> {
    let mut found = common::load(&args.config, args.env.as_deref(), "destroy")?;
    if found.is_empty() {
        return Ok(Outcome::Clean);
    }
    let several = found.iter().any(|(l, _)| l.environment.is_some()) && args.env.is_none();
    let rt = common::runtime()?;
    let c = rt.block_on(Clients::load())?;
    let mut work: Vec<(Loaded, Desired, Targets)> = Vec::new();
    for (loaded, desired) in found.drain(..) {
        let t = rt.block_on(targets(&c, &desired))?;
        work.push((loaded, desired, t));
    }
    let mut any = false;
    for (loaded, _, t) in &work {
        let h = heading(loaded).map(|h| format!("{h} ")).unwrap_or_default();
        for f in &t.foreign {
            eprintln!(
                "mlplat: {h}leaving {f} alone: mlplat did not create it for {} (no managed-by: mlplat and mlplat:platform: {} tags)",
                loaded.platform.platform, loaded.platform.platform
            );
        }
        if t.is_empty() {
            eprintln!("mlplat: {h}nothing to destroy");
            continue;
        }
        any = true;
        match &loaded.environment {
            Some(env) => println!("mlplat destroy would delete, in environment {env}:"),
            None => println!("mlplat destroy would delete:"),
        }
        for line in t.lines() {
            println!("  {line}");
        }
    }
    if any {
        let refusal = if several {
            "destroy deletes the databases and artifacts of every environment above: pass --yes to confirm (or --env NAME for one environment)"
        } else {
            "destroy deletes databases and artifacts: pass --yes to confirm"
        };
        environments::confirm("Delete them?", args.yes, refusal)?;
    }
    environments::each(
        "destroy",
        &mut work,
        |(l, ..)| l,
        |(loaded, desired, t)| {
            if !t.is_empty() {
                if let Some(env) = &loaded.environment {
                    eprintln!("mlplat: environment {env}: destroying");
                }
                destroy_one(args, &rt, &c, desired, t)?;
            }
            forget(loaded)?;
            Ok(Outcome::Clean)
        },
    )
}

fn destroy_one(
    args: &DestroyArgs,
    rt: &tokio::runtime::Runtime,
    c: &Clients,
    desired: &Desired,
    t: &Targets,
) -> anyhow::Result<()> {
    let wait = WaitOptions {
        interval: args.poll_interval,
        timeout: args.timeout,
        ..WaitOptions::default()
    };
    let mut progress = Progress::default();
    let mut say = |line: &str| eprintln!("mlplat: {line}");
    let mut report =
        |id: &str, status: &str, elapsed| progress.update("deleting", id, status, elapsed);
    rt.block_on(async {
        tokio::select! {
            r = destroy(c, desired, t, &wait, &mut say, &mut report) => r,
            _ = tokio::signal::ctrl_c() => Err(AwsError::Refused {
                resource: "destroy".into(),
                reason: "interrupted".into(),
                hint: "run `mlplat destroy` again: it finds what is left".into(),
            }),
        }
    })?;
    Ok(())
}

/// Removes the `aws` section of the platform's lock file (the file itself when nothing else
/// is left in it).
fn forget(loaded: &Loaded) -> anyhow::Result<()> {
    let path = loaded.lock_path();
    let mut lock = Lock::read(&path)?;
    if lock.aws.take().is_some() {
        if lock == Lock::default() {
            fs_err::remove_file(&path)?;
        } else {
            lock.write(&path)?;
        }
        eprintln!("mlplat: removed the aws section of {}", path.display());
    }
    Ok(())
}
