//! `mlplat plan`: read-only. Looks every AWS backend up and prints what `provision` would
//! create (`+`), change (`~`) or leave (`=`), for each environment with AWS backends (or the
//! one `--env` names). Exit 0 nothing to do, 1 changes pending.

use super::common;
use crate::plan::{Plan, claimed_by_another, observe};
use crate::{AwsError, Clients};
use mlplat::cli::PlanArgs;
use mlplat::commands::Outcome;
use mlplat::commands::environments::{env_flag, heading};

pub fn run(args: &PlanArgs) -> anyhow::Result<Outcome> {
    let targets = common::load(&args.config, args.env.as_deref(), "plan")?;
    if targets.is_empty() {
        return Ok(Outcome::Clean);
    }
    let rt = common::runtime()?;
    let c = rt.block_on(Clients::load())?;
    let mut pending = Vec::new();
    for (loaded, desired) in &targets {
        let (plan, observed) = rt.block_on(async {
            let o = observe(&c, desired).await?;
            claimed_by_another(desired, &o)?;
            Ok::<_, AwsError>((Plan::new(desired, &o), o))
        })?;
        if let Some(h) = heading(loaded) {
            println!("{h}");
        }
        print!("{}", plan.render());
        let gaps = crate::plan::lock_gaps(loaded.lock.aws.as_ref(), desired, &observed);
        for gap in &gaps {
            println!(
                "~ lock file {}: {gap} not recorded",
                loaded.lock_path().display()
            );
        }
        if plan.pending() || !gaps.is_empty() {
            pending.push(env_flag(loaded));
        }
    }
    if pending.is_empty() {
        return Ok(Outcome::Clean);
    }
    // One platform pending: the command for it; several: the command for all of them.
    let flag = match pending.as_slice() {
        [one] => one.clone(),
        _ => String::new(),
    };
    println!(
        "run `mlplat provision -c {}{flag}` to apply",
        args.config.display()
    );
    Ok(Outcome::Drift)
}
