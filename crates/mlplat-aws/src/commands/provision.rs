//! `mlplat provision`: creates the missing AWS backends and makes safe in-place changes, waits
//! for the databases with a progress line, and records the outputs in the lock file so that
//! `render` stays offline. Exit 0 done, 1 drift left that mlplat will not fix, 2 error.

use anyhow::{Context, bail};

use super::common;
use crate::provision::provision;
use crate::secrets_manager::Change;
use crate::wait::{Progress, WaitOptions};
use crate::{AwsError, Clients};
use mlplat::cli::ProvisionArgs;
use mlplat::commands::Outcome;
use mlplat::config::SecretMode;
use mlplat::lock::Lock;

pub fn run(args: &ProvisionArgs) -> anyhow::Result<Outcome> {
    let loaded = mlplat::config::load(&args.config)?;
    let stores_secrets = loaded.platform.secrets.mode == SecretMode::ExternalSecrets;
    if !stores_secrets {
        let Some((_, desired)) = common::load(&args.config, "provision")? else {
            return Ok(Outcome::Clean);
        };
        return provision_backends(args, &desired);
    }
    // external-secrets: the backends first (their outputs feed the secrets), then the secrets.
    let desired = mlplat::backends::aws::Desired::from_config(&loaded);
    let outcome = if desired.is_empty() {
        Outcome::Clean
    } else {
        provision_backends(args, &desired)?
    };
    store_secrets(args)?;
    Ok(outcome)
}

/// Stores every Secret of the platform in AWS Secrets Manager, where the ExternalSecrets in
/// `out/` read them: created when missing, a new version only when a value changed.
fn store_secrets(args: &ProvisionArgs) -> anyhow::Result<()> {
    // Loaded again: provisioning may have written new endpoints into the lock.
    let loaded = mlplat::config::load(&args.config)?;
    let rendered = mlplat::render::render_full(&loaded)
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
    desired: &mlplat::backends::aws::Desired,
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
        let mut show = |plan: &crate::plan::Plan| eprint!("{}", plan.render());
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
    let mut lock = Lock::load(&args.config)?;
    let changed = lock.aws.as_ref() != Some(&done.lock);
    lock.aws = Some(done.lock);
    if changed {
        lock.save(&args.config)?;
        eprintln!(
            "mlplat: wrote {}: commit it, `mlplat render` reads the endpoints from it",
            mlplat::lock::path_for(&args.config).display()
        );
    }
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
    eprintln!("mlplat: the AWS backends are provisioned");
    Ok(Outcome::Clean)
}
