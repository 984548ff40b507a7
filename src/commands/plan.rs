//! `mlplat plan`: read-only. Looks every AWS backend up and prints what `provision` would
//! create (`+`), change (`~`) or leave (`=`). Exit 0 nothing to do, 1 changes pending.

use super::{Outcome, aws_common};
use crate::aws::plan::{Plan, observe};
use crate::aws::{AwsError, Clients};
use crate::cli::PlanArgs;

pub fn run(args: &PlanArgs) -> anyhow::Result<Outcome> {
    let Some((loaded, desired)) = aws_common::load(&args.config, "plan")? else {
        return Ok(Outcome::Clean);
    };
    let rt = aws_common::runtime()?;
    let (plan, observed) = rt.block_on(async {
        let c = Clients::load().await?;
        let o = observe(&c, &desired).await?;
        Ok::<_, AwsError>((Plan::new(&desired, &o), o))
    })?;
    print!("{}", plan.render());
    let gaps = aws_common::lock_gaps(loaded.lock.aws.as_ref(), &desired, &observed);
    for gap in &gaps {
        println!(
            "~ lock file {}: {gap} not recorded",
            crate::lock::path_for(&args.config).display()
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
