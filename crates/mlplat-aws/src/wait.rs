//! Waiting for RDS instances: poll until each is `available` (or gone, on destroy), showing the
//! elapsed time and current status, with a timeout. Throttling and dropped connections are
//! polled through; a failed state stops at once. The status comes from a [`StatusSource`], so
//! tests can drive the loop with a paced fake.

use std::collections::BTreeMap;

use std::time::{Duration, Instant};

use crate::AwsError;
use crate::error::Elapsed;

/// Where instance statuses come from: RDS, or a fake in tests. `None`: no such instance.
#[allow(async_fn_in_trait)] // used on one thread only
pub trait StatusSource {
    async fn status(&mut self, id: &str) -> Result<Option<String>, AwsError>;
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Available,
    Gone,
}

#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub interval: Duration,
    pub timeout: Duration,
    /// Transient errors (throttling, no answer) in a row before giving up.
    pub max_transient: u32,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(40 * 60),
            max_transient: 8,
        }
    }
}

/// States an instance does not leave by itself.
const BAD_STATES: &[(&str, &str)] = &[
    (
        "failed",
        "RDS could not create it: see its events in the console, delete it, and run again",
    ),
    (
        "incompatible-parameters",
        "its parameter group does not fit the instance class: fix the parameters or the class",
    ),
    (
        "incompatible-network",
        "its subnets or security groups are wrong: check privateSubnets and the VPC",
    ),
    (
        "incompatible-option-group",
        "its option group does not fit: fix the option group",
    ),
    (
        "inaccessible-encryption-credentials",
        "RDS cannot use its KMS key: check the key's policy",
    ),
    (
        "storage-full",
        "its storage is full: raise allocatedStorage or maxAllocatedStorage",
    ),
    (
        "restore-error",
        "a restore failed: see its events in the console",
    ),
];

/// Polls until every instance of `ids` reaches `target`. `progress(id, status, elapsed)` is
/// called after every poll.
pub async fn wait_for(
    src: &mut impl StatusSource,
    ids: &[String],
    target: Target,
    opts: &WaitOptions,
    progress: &mut dyn FnMut(&str, &str, Duration),
) -> Result<(), AwsError> {
    let start = Instant::now();
    let mut pending: BTreeMap<String, String> = ids
        .iter()
        .map(|i| (i.clone(), "unknown".to_owned()))
        .collect();
    let mut transient = 0u32;
    loop {
        let mut backoff = false;
        let keys: Vec<String> = pending.keys().cloned().collect();
        for id in keys {
            let resource = format!("RDS instance {id}");
            match src.status(&id).await {
                Ok(status) => {
                    transient = 0;
                    match (target, status.as_deref()) {
                        (Target::Available, Some("available")) | (Target::Gone, None) => {
                            progress(&id, status.as_deref().unwrap_or("deleted"), start.elapsed());
                            pending.remove(&id);
                        }
                        (Target::Available, None) => {
                            return Err(AwsError::Refused {
                                resource,
                                reason: "disappeared while mlplat waited for it".into(),
                                hint:
                                    "someone deleted it: run `mlplat provision` again to create it"
                                        .into(),
                            });
                        }
                        (_, Some(s)) => {
                            if let Some((_, hint)) = BAD_STATES.iter().find(|(b, _)| *b == s) {
                                return Err(AwsError::BadState {
                                    resource,
                                    status: s.to_owned(),
                                    hint: (*hint).to_owned(),
                                });
                            }
                            progress(&id, s, start.elapsed());
                            pending.insert(id.clone(), s.to_owned());
                        }
                    }
                }
                Err(e) if e.is_transient() && transient < opts.max_transient => {
                    transient += 1;
                    backoff = true;
                    let what = format!("{} (retrying)", e.code().unwrap_or("no answer"));
                    progress(&id, &what, start.elapsed());
                }
                Err(e) => return Err(e),
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= opts.timeout {
            let (resource, status) = pending
                .iter()
                .next()
                .map(|(id, s)| (format!("RDS instance {id}"), s.clone()))
                .unwrap_or_default();
            return Err(AwsError::Timeout {
                resource,
                status,
                waited: start.elapsed(),
            });
        }
        let pause = if backoff {
            opts.interval * 2u32.saturating_pow(transient.min(4))
        } else {
            opts.interval
        };
        tokio::time::sleep(pause).await;
    }
}

/// The progress line on stderr: rewritten in place on a terminal, one line per change
/// otherwise (CI logs).
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    last: BTreeMap<String, String>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            tty: mlplat::console::stderr_is_terminal(),
            last: BTreeMap::new(),
        }
    }
}

impl Progress {
    pub fn update(&mut self, verb: &str, id: &str, status: &str, elapsed: Duration) {
        let line = format!(
            "mlplat: {verb} RDS instance {id}: {status} ({} elapsed)",
            Elapsed(elapsed)
        );
        if self.tty {
            let done = matches!(status, "available" | "deleted");
            mlplat::console::rewrite_line(format_args!("{line}"), done);
        } else if self.last.get(id).map(String::as_str) != Some(status) {
            eprintln!("{line}");
        }
        self.last.insert(id.to_owned(), status.to_owned());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Answers from a script, one entry per poll of each instance.
    struct Paced {
        script: Vec<Result<Option<&'static str>, &'static str>>,
        polls: usize,
    }

    impl StatusSource for Paced {
        async fn status(&mut self, id: &str) -> Result<Option<String>, AwsError> {
            let step = self.script[self.polls.min(self.script.len() - 1)];
            self.polls += 1;
            match step {
                Ok(s) => Ok(s.map(str::to_owned)),
                Err(code) => Err(AwsError::call(
                    &format!("RDS instance {id}"),
                    "DescribeDBInstances",
                    code,
                    "Rate exceeded",
                )),
            }
        }
    }

    fn fast() -> WaitOptions {
        WaitOptions {
            interval: Duration::from_millis(1),
            timeout: Duration::from_secs(60),
            max_transient: 3,
        }
    }

    fn run(
        src: &mut Paced,
        target: Target,
        opts: &WaitOptions,
    ) -> (Result<(), AwsError>, Vec<String>) {
        let rt = crate::runtime().unwrap();
        let mut seen = Vec::new();
        let r = rt.block_on(wait_for(
            src,
            &["db1".to_owned()],
            target,
            opts,
            &mut |_, s, _| seen.push(s.to_owned()),
        ));
        (r, seen)
    }

    #[test]
    fn an_instance_that_takes_several_polls_is_waited_for() {
        let mut src = Paced {
            script: vec![
                Ok(Some("creating")),
                Ok(Some("creating")),
                Ok(Some("backing-up")),
                Ok(Some("available")),
            ],
            polls: 0,
        };
        let (r, seen) = run(&mut src, Target::Available, &fast());
        r.unwrap();
        assert_eq!(src.polls, 4);
        assert_eq!(seen, ["creating", "creating", "backing-up", "available"]);
    }

    #[test]
    fn throttling_is_polled_through() {
        let mut src = Paced {
            script: vec![
                Ok(Some("creating")),
                Err("Throttling"),
                Err("Throttling"),
                Ok(Some("available")),
            ],
            polls: 0,
        };
        let (r, seen) = run(&mut src, Target::Available, &fast());
        r.unwrap();
        assert_eq!(seen[1], "Throttling (retrying)");
        assert_eq!(src.polls, 4);
    }

    #[test]
    fn endless_throttling_and_other_errors_stop_the_wait() {
        let mut src = Paced {
            script: vec![Err("Throttling")],
            polls: 0,
        };
        let (r, _) = run(&mut src, Target::Available, &fast());
        assert_eq!(r.unwrap_err().code(), Some("Throttling"));
        assert_eq!(src.polls, 4, "three retries, then the error");
        let mut src = Paced {
            script: vec![Err("AccessDenied")],
            polls: 0,
        };
        let err = run(&mut src, Target::Available, &fast()).0.unwrap_err();
        assert_eq!(src.polls, 1);
        assert!(
            err.to_string()
                .contains("RDS instance db1: DescribeDBInstances failed: AccessDenied"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_instance_stops_the_wait_with_a_hint() {
        let mut src = Paced {
            script: vec![Ok(Some("creating")), Ok(Some("incompatible-network"))],
            polls: 0,
        };
        let err = run(&mut src, Target::Available, &fast())
            .0
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("incompatible-network") && err.contains("privateSubnets"),
            "{err}"
        );
    }

    #[test]
    fn a_wait_ends_at_its_timeout() {
        let mut src = Paced {
            script: vec![Ok(Some("creating"))],
            polls: 0,
        };
        let opts = WaitOptions {
            timeout: Duration::from_millis(20),
            ..fast()
        };
        let err = run(&mut src, Target::Available, &opts).0.unwrap_err();
        assert!(
            matches!(err, AwsError::Timeout { ref status, .. } if status == "creating"),
            "{err}"
        );
        assert!(err.to_string().contains("run `mlplat provision` again"));
    }

    #[test]
    fn waiting_for_deletion_ends_when_the_instance_is_gone() {
        let mut src = Paced {
            script: vec![Ok(Some("deleting")), Ok(Some("deleting")), Ok(None)],
            polls: 0,
        };
        let (r, seen) = run(&mut src, Target::Gone, &fast());
        r.unwrap();
        assert_eq!(seen, ["deleting", "deleting", "deleted"]);
    }
}
