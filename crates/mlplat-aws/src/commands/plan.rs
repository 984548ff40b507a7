//! `mlplat plan`: read-only. Looks every AWS backend up and prints what `provision` would
//! create (`+`), change (`~`) or leave (`=`). Exit 0 nothing to do, 1 changes pending.

use super::common;
use crate::plan::{Plan, observe};
use crate::{AwsError, Clients};
use mlplat::cli::PlanArgs;
use mlplat::commands::Outcome;

pub fn run(args: &PlanArgs) -> anyhow::Result<Outcome> {
    let Some((loaded, desired)) = common::load(&args.config, "plan")? else {
        return Ok(Outcome::Clean);
    };
    let rt = common::runtime()?;
    let (plan, observed) = rt.block_on(async {
        let c = Clients::load().await?;
        let o = observe(&c, &desired).await?;
        Ok::<_, AwsError>((Plan::new(&desired, &o), o))
    })?;
    print!("{}", plan.render());
    let gaps = crate::plan::lock_gaps(loaded.lock.aws.as_ref(), &desired, &observed);
    for gap in &gaps {
        println!(
            "~ lock file {}: {gap} not recorded",
            mlplat::lock::path_for(&args.config).display()
        );
    }
    if plan.pending() || !gaps.is_empty() {
        println!(
            "run `mlplat provision -c {}` to apply",
            args.config.display()
        );
        return Ok(Outcome::Drift);
    }
    Ok(Outcome::Clean)
}
