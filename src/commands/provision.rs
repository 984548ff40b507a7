//! `mlplat provision`: creates the missing AWS backends and makes safe in-place changes, waits
//! for the databases with a progress line, and records the outputs in the lock file so that
//! `render` stays offline. Exit 0 done, 1 drift left that mlplat will not fix, 2 error.

use anyhow::bail;

use super::{Outcome, aws_common};
use crate::aws::provision::provision;
use crate::aws::wait::{Progress, WaitOptions};
use crate::aws::{AwsError, Clients};
use crate::cli::ProvisionArgs;
use crate::lock::Lock;

pub fn run(args: &ProvisionArgs) -> anyhow::Result<Outcome> {
    let Some((_, desired)) = aws_common::load(&args.config, "provision")? else {
        return Ok(Outcome::Clean);
    };
    let wait = WaitOptions {
        interval: args.poll_interval,
        timeout: args.timeout,
        ..WaitOptions::default()
    };
    let rt = aws_common::runtime()?;
    let mut progress = Progress::default();
    let result = rt.block_on(async {
        let c = Clients::load().await?;
        let mut show = |plan: &crate::aws::plan::Plan| eprint!("{}", plan.render());
        let mut say = |line: &str| eprintln!("mlplat: {line}");
        let mut report =
            |id: &str, status: &str, elapsed| progress.update("waiting for", id, status, elapsed);
        tokio::select! {
            r = provision(&c, &desired, &wait, &mut show, &mut say, &mut report) => r.map(Some),
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
            crate::lock::path_for(&args.config).display()
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
