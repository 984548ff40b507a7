//! What the commands that act on several environments share (`plan`, `provision`, `destroy`,
//! `rotate`): how a platform is named in their output, the one confirmation before they act
//! on several, and running one environment after another, stopping at the first failure.

use std::io::{BufRead, IsTerminal};

use anyhow::bail;

use super::Outcome;
use crate::config::Loaded;

/// Whether the command acts on every environment of a config that declares some (no `--env`),
/// rather than on one platform.
pub fn several(targets: &[Loaded], env: Option<&str>) -> bool {
    env.is_none() && targets.iter().any(|l| l.environment.is_some())
}

/// The heading of an environment's part of the output (`environment prod:`); none for a
/// config without environments.
pub fn heading(loaded: &Loaded) -> Option<String> {
    loaded
        .environment
        .as_ref()
        .map(|env| format!("environment {env}:"))
}

/// ` --env NAME` for a command line that acts on this platform alone.
pub fn env_flag(loaded: &Loaded) -> String {
    loaded
        .environment
        .as_ref()
        .map(|env| format!(" --env {env}"))
        .unwrap_or_default()
}

/// Asks once before acting: `--yes`, or `yes` typed on a terminal. Without a terminal and
/// without `--yes`, nothing is done (exit 2) and `refusal` says why.
pub fn confirm(question: &str, yes: bool, refusal: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{refusal}");
    }
    print!("{question} Type `yes`: ");
    crate::console::flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed: nothing was done");
    }
    Ok(())
}

/// Runs `step` for each platform in order. A failure stops there, before the next, with a
/// line saying which environments were done and which were not started; the outcome is
/// drift when any step ended in drift.
pub fn each<T>(
    verb: &str,
    items: &mut [T],
    loaded: impl Fn(&T) -> &Loaded,
    mut step: impl FnMut(&mut T) -> anyhow::Result<Outcome>,
) -> anyhow::Result<Outcome> {
    let names: Vec<String> = items
        .iter()
        .map(|t| loaded(t).environment.clone().unwrap_or_default())
        .collect();
    let mut outcome = Outcome::Clean;
    for (i, item) in items.iter_mut().enumerate() {
        match step(item) {
            Ok(Outcome::Drift) => outcome = Outcome::Drift,
            Ok(Outcome::Clean) => {}
            Err(e) => {
                if !names[i].is_empty() {
                    eprintln!("{}", stopped(verb, &names, i));
                }
                return Err(e);
            }
        }
    }
    Ok(outcome)
}

/// `mlplat: provision stopped at environment prod (done: dev; not started: staging)`.
fn stopped(verb: &str, names: &[String], at: usize) -> String {
    let list = |s: &[String]| {
        if s.is_empty() {
            "none".to_owned()
        } else {
            s.join(", ")
        }
    };
    format!(
        "mlplat: {verb} stopped at environment {} (done: {}; not started: {})",
        names[at],
        list(&names[..at]),
        list(&names[at + 1..])
    )
}

#[cfg(test)]
mod tests {
    use super::stopped;

    #[test]
    fn a_stop_names_what_was_done_and_what_was_not_started() {
        let names: Vec<String> = ["dev", "prod", "staging"].map(String::from).to_vec();
        assert_eq!(
            stopped("provision", &names, 1),
            "mlplat: provision stopped at environment prod (done: dev; not started: staging)"
        );
        assert_eq!(
            stopped("destroy", &names, 0),
            "mlplat: destroy stopped at environment dev (done: none; not started: prod, staging)"
        );
    }
}
