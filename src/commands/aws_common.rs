//! What `plan`, `provision` and `destroy` share: loading the config into the desired AWS
//! state, the runtime and clients, durations on the command line, and the lock's outputs.

use std::time::Duration;

use anyhow::Context;

use crate::aws::lock::AwsLock;
use crate::aws::plan::Observed;
use crate::aws::spec::Desired;
use crate::config::{self, Loaded};

/// The platforms `--env` selects (every environment without it) and what each asks of AWS.
/// One that asks nothing is left out, with a line that says so.
pub fn load(
    path: &std::path::Path,
    env: Option<&str>,
    verb: &str,
) -> anyhow::Result<Vec<(Loaded, Desired)>> {
    let mut out = Vec::new();
    for loaded in config::load_targets(path, env)? {
        let desired = Desired::from_config(&loaded);
        if desired.is_empty() {
            say_skipped(&loaded, verb);
            continue;
        }
        out.push((loaded, desired));
    }
    Ok(out)
}

/// The line for a platform without AWS backends.
pub fn say_skipped(loaded: &Loaded, verb: &str) {
    const NONE: &str = "uses no AWS backend (postgres.mode: rds, artifacts.mode: s3)";
    match &loaded.environment {
        Some(env) => eprintln!("mlplat: environment {env} {NONE}: skipped"),
        None => eprintln!(
            "mlplat: {} {NONE}: nothing to {verb}",
            loaded.file.display()
        ),
    }
}

/// The current-thread runtime of an AWS command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    crate::aws::runtime().context("cannot start the async runtime")
}

/// `90s`, `40m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 90s, 40m or 1h"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}` is not a duration such as 90s, 40m or 1h")),
    }
}

/// Why the lock file does not hold what AWS has, if it does not.
pub fn lock_gaps(lock: Option<&AwsLock>, d: &Desired, o: &Observed) -> Vec<String> {
    let mut gaps = Vec::new();
    for i in &d.instances {
        let Some(have) = o.instances.get(&i.identifier) else {
            continue;
        };
        let locked = lock.and_then(|l| l.rds.get(&i.identifier));
        if locked.map(|l| (Some(&l.endpoint), Some(l.port)))
            != Some((have.endpoint.as_ref(), have.port))
        {
            gaps.push(format!("RDS instance {}: endpoint", i.identifier));
        }
    }
    if let (Some(b), Some(_)) = (&d.bucket, &o.bucket) {
        if lock.and_then(|l| l.s3.as_ref()).map(|s| &s.name) != Some(&b.name) {
            gaps.push(format!("S3 bucket {}", b.name));
        }
    }
    gaps
}
