//! `mlplat destroy`: deletes the AWS backends mlplat created for this platform, after `--yes`
//! or a confirmation on a terminal. Deletion protection and a non-empty bucket without
//! `forceDestroy` stop it before anything is deleted.

use std::io::{BufRead, IsTerminal};

use anyhow::bail;

use super::common;
use crate::destroy::{destroy, targets};
use crate::wait::{Progress, WaitOptions};
use crate::{AwsError, Clients};
use mlplat::cli::DestroyArgs;
use mlplat::commands::Outcome;
use mlplat::lock::Lock;

pub fn run(args: &DestroyArgs) -> anyhow::Result<Outcome> {
    let Some((_, desired)) = common::load(&args.config, "destroy")? else {
        return Ok(Outcome::Clean);
    };
    let wait = WaitOptions {
        interval: args.poll_interval,
        timeout: args.timeout,
        ..WaitOptions::default()
    };
    let rt = common::runtime()?;
    let c = rt.block_on(Clients::load())?;
    let t = rt.block_on(targets(&c, &desired))?;
    for f in &t.foreign {
        eprintln!(
            "mlplat: leaving {f} alone: mlplat did not create it (no managed-by: mlplat tag)"
        );
    }
    if t.is_empty() {
        eprintln!("mlplat: nothing to destroy");
    } else {
        println!("mlplat destroy would delete:");
        for line in t.lines() {
            println!("  {line}");
        }
        if !args.yes {
            if !std::io::stdin().is_terminal() {
                bail!("destroy deletes databases and artifacts: pass --yes to confirm");
            }
            print!("Delete them? Type `yes`: ");
            mlplat::console::flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if answer.trim() != "yes" {
                bail!("not confirmed: nothing was deleted");
            }
        }
        let mut progress = Progress::default();
        let mut say = |line: &str| eprintln!("mlplat: {line}");
        let mut report =
            |id: &str, status: &str, elapsed| progress.update("deleting", id, status, elapsed);
        rt.block_on(async {
            tokio::select! {
                r = destroy(&c, &desired, &t, &wait, &mut say, &mut report) => r,
                _ = tokio::signal::ctrl_c() => Err(AwsError::Refused {
                    resource: "destroy".into(),
                    reason: "interrupted".into(),
                    hint: "run `mlplat destroy` again: it finds what is left".into(),
                }),
            }
        })?;
    }
    let mut lock = Lock::load(&args.config)?;
    if lock.aws.take().is_some() {
        if lock == Lock::default() {
            fs_err::remove_file(mlplat::lock::path_for(&args.config))?;
        } else {
            lock.save(&args.config)?;
        }
        eprintln!(
            "mlplat: removed the aws section of {}",
            mlplat::lock::path_for(&args.config).display()
        );
    }
    Ok(Outcome::Clean)
}
