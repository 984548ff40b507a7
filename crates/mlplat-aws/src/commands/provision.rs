//! `mlplat provision`: creates the missing AWS backends and makes safe in-place changes, waits
//! for the databases with a progress line, and records the outputs in the lock file so that
//! `render` stays offline. Exit 0 done, 1 drift left that mlplat will not fix, 2 error.
//!
//! A config with environments: every environment with AWS work (backends, or secrets to store
//! with `secrets.mode: external-secrets`), one after another, after the plans of all and one
//! confirmation; each environment's outputs go to its own lock file. `--env` picks one.

use anyhow::{Context, bail};

use super::common;
use crate::plan::{Plan, claimed_by_another, observe};
use crate::provision::provision;
use crate::secrets_manager::Change;
use crate::wait::{Progress, WaitOptions};
use crate::{AwsError, Clients};
use mlplat::backends::aws::Desired;
use mlplat::cli::ProvisionArgs;
use mlplat::commands::Outcome;
use mlplat::commands::environments::{self, heading};
use mlplat::config::{Loaded, SecretMode};

/// One platform's work.
struct Work {
    loaded: Loaded,
    desired: Desired,
    /// `secrets.mode: external-secrets`: its Secrets go to Secrets Manager.
    stores_secrets: bool,
}

pub fn run(args: &ProvisionArgs) -> anyhow::Result<Outcome> {
    let targets = mlplat::config::load(
        &args.config,
        mlplat::config::Selection::from_env(args.env.as_deref()),
    )?;
    let several = environments::several(&targets, args.env.as_deref());
    let mut work = Vec::new();
    for loaded in targets {
        let desired = Desired::from_config(&loaded);
        let stores_secrets = loaded.platform.secrets.mode == SecretMode::ExternalSecrets;
        if desired.is_empty() && !stores_secrets {
            common::say_skipped(&loaded, "provision");
            continue;
        }
        work.push(Work {
            loaded,
            desired,
            stores_secrets,
        });
    }
    if work.is_empty() {
        return Ok(Outcome::Clean);
    }
    if several {
        show_plans(&work)?;
        let names: Vec<&str> = work
            .iter()
            .filter_map(|w| w.loaded.environment.as_deref())
            .collect();
        environments::confirm(
            &format!("Provision {}?", names.join(", ")),
            args.yes,
            "provision acts on every environment above: pass --yes to confirm (or --env NAME for one environment)",
        )?;
    }
    environments::each(
        "provision",
        &mut work,
        |w| &w.loaded,
        |w| provision_one(args, w, !several),
    )
}

/// The plan of every platform, before the one confirmation.
fn show_plans(work: &[Work]) -> anyhow::Result<()> {
    let rt = common::runtime()?;
    let c = rt.block_on(Clients::load())?;
    for w in work {
        if let Some(h) = heading(&w.loaded) {
            println!("{h}");
        }
        if !w.desired.is_empty() {
            let o = rt.block_on(observe(&c, &w.desired))?;
            claimed_by_another(&w.desired, &o)?;
            print!("{}", Plan::new(&w.desired, &o).render());
        }
        if w.stores_secrets {
            println!(
                "* secrets: every Secret of {} stored in AWS Secrets Manager under {}/",
                w.loaded.platform.platform, w.loaded.platform.platform
            );
        }
    }
    Ok(())
}

fn provision_one(args: &ProvisionArgs, w: &mut Work, show_plan: bool) -> anyhow::Result<Outcome> {
    if let Some(env) = &w.loaded.environment {
        eprintln!("mlplat: environment {env}: provisioning");
    }
    let outcome = if w.desired.is_empty() {
        Outcome::Clean
    } else {
        provision_backends(args, &mut w.loaded, &w.desired, show_plan)?
    };
    // external-secrets: the backends first (their outputs feed the secrets), then the secrets.
    if w.stores_secrets {
        store_secrets(&w.loaded)?;
    }
    Ok(outcome)
}

/// Stores every Secret of the platform in AWS Secrets Manager, where the ExternalSecrets in
/// `out/` read them: created when missing, a new version only when a value changed.
fn store_secrets(loaded: &Loaded) -> anyhow::Result<()> {
    // The lock in `loaded` holds what provisioning just recorded.
    let rendered = mlplat::render::render_full(loaded)
        .context("internal error while rendering (please report it)")?;
    let region = loaded
        .platform
        .secrets
        .external_secrets
        .as_ref()
        .map(|e| e.region.clone());
    let platform = loaded.platform.platform.clone();
    let rt = common::runtime()?;
    let done = rt.block_on(async {
        let c = Clients::load().await?;
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&c.config);
        if let Some(region) = region {
            builder = builder.region(aws_config::Region::new(region));
        }
        let client = aws_sdk_secretsmanager::Client::from_conf(builder.build());
        anyhow::Ok(crate::secrets_manager::store(&client, &platform, &rendered.secrets).await?)
    })?;
    for (id, change) in &done {
        let sign = match change {
            Change::Created => '+',
            Change::Updated => '~',
            Change::Unchanged => '=',
        };
        eprintln!("{sign} secret {id}: {change}");
    }
    let changed = done.iter().filter(|(_, c)| *c != Change::Unchanged).count();
    eprintln!(
        "mlplat: {} secrets in AWS Secrets Manager, {changed} created or updated",
        done.len()
    );
    Ok(())
}

fn provision_backends(
    args: &ProvisionArgs,
    loaded: &mut Loaded,
    desired: &Desired,
    show_plan: bool,
) -> anyhow::Result<Outcome> {
    let wait = WaitOptions {
        interval: args.poll_interval,
        timeout: args.timeout,
        ..WaitOptions::default()
    };
    let rt = common::runtime()?;
    let mut progress = Progress::default();
    let result = rt.block_on(async {
        let c = Clients::load().await?;
        let mut show = |plan: &Plan| {
            if show_plan {
                eprint!("{}", plan.render());
            }
        };
        let mut say = |line: &str| eprintln!("mlplat: {line}");
        let mut report =
            |id: &str, status: &str, elapsed| progress.update("waiting for", id, status, elapsed);
        tokio::select! {
            r = provision(&c, desired, &wait, &mut show, &mut say, &mut report) => r.map(Some),
            _ = tokio::signal::ctrl_c() => Ok::<_, AwsError>(None),
        }
    });
    let Some(done) = result? else {
        bail!(
            "interrupted: what AWS started carries on by itself; run `mlplat provision` again: it finds what exists and carries on"
        );
    };
    let path = loaded.lock_path();
    // Read again: the file is the truth, whatever another command wrote meanwhile.
    let mut lock = mlplat::lock::Lock::read(&path)?;
    let changed = lock.aws.as_ref() != Some(&done.lock);
    lock.aws = Some(done.lock);
    if changed {
        lock.write(&path)?;
        eprintln!(
            "mlplat: wrote {}: commit it, `mlplat render` reads the endpoints from it",
            path.display()
        );
    }
    loaded.lock = lock;
    let drift = done.plan.unsafe_drift();
    if !drift.is_empty() {
        for (item, d) in &drift {
            println!(
                "! {} {}: {} is {} in AWS, {} in the config: not changed (mlplat never replaces a database)",
                item.kind, item.name, d.field, d.have, d.want
            );
        }
        return Ok(Outcome::Drift);
    }
    match &loaded.environment {
        Some(env) => eprintln!("mlplat: the AWS backends of environment {env} are provisioned"),
        None => eprintln!("mlplat: the AWS backends are provisioned"),
    }
    Ok(Outcome::Clean)
}
