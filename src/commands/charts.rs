//! `mlplat charts pull`: fetch each chart the platform uses — in every environment — into the
//! cache and pin it, by the sha256 of its archive, in the lock file's `charts` list. The only
//! command that needs the network for charts; see [`crate::charts`].

use super::Outcome;
use crate::charts::ChartRelease;
use crate::charts::{self, ChartError};
use crate::cli::{ChartsCommand, ChartsPullArgs};
use crate::config::{self, Platforms};
use crate::lock::ChartPin;
use crate::render;

pub fn run(cmd: &ChartsCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ChartsCommand::Pull(args) => pull(args),
    }
}

fn pull(args: &ChartsPullArgs) -> anyhow::Result<Outcome> {
    // Every environment's charts: they share the lock file beside the config.
    let platforms = match config::load_platforms(&args.config)? {
        Platforms::One(loaded) => vec![(None, *loaded)],
        Platforms::Environments => config::load_all(&args.config)?
            .into_iter()
            .map(|(env, loaded)| (Some(env), loaded))
            .collect(),
    };
    let mut wanted: Vec<(String, ChartRelease)> = Vec::new();
    for (env, loaded) in &platforms {
        for (tool, chart) in render::charts(loaded).map_err(super::render_error)? {
            let who = match env {
                Some(env) => format!("{env}/{tool}"),
                None => tool,
            };
            let same = |(_, c): &(String, ChartRelease)| {
                (&c.repository, &c.chart, &c.version)
                    == (&chart.repository, &chart.chart, &chart.version)
            };
            if !wanted.iter().any(same) {
                wanted.push((who, chart));
            }
        }
    }
    let Some((_, first)) = platforms.first() else {
        return Ok(Outcome::Clean);
    };
    let cache = charts::cache_dir()?;
    let helm = charts::helm_program();
    let lock_path = crate::lock::path_for(&args.config);
    let cx = charts::Context {
        config: &args.config,
        cache: &cache,
    };
    let mut lock = first.lock.clone();
    for (who, chart) in &wanted {
        if charts::verified_archive(&cx, who, chart, &lock).is_ok() {
            eprintln!(
                "mlplat: {who}: {} is pinned and cached",
                charts::label(chart)
            );
            continue;
        }
        let pinned = charts::pin_of(&lock, chart).cloned();
        let pin = charts::pull(&helm, &cache, who, chart)?;
        if let Some(old) = pinned.filter(|old| old.sha256 != pin.sha256) {
            if !args.update {
                return Err(ChartError::Republished {
                    tool: who.clone(),
                    chart: charts::label(chart),
                    path: charts::archive_path(&cache, &pin),
                    digests: Box::new(charts::Digests {
                        pinned: old.sha256.clone(),
                        actual: pin.sha256,
                    }),
                    config: args.config.clone(),
                }
                .into());
            }
        }
        eprintln!(
            "mlplat: {who}: pinned {} ({})",
            charts::label(chart),
            pin.sha256
        );
        lock.set_chart_pin(pin);
    }
    // A chart version no environment installs any more keeps no pin.
    let used = |p: &ChartPin| wanted.iter().any(|(_, c)| charts::pins(p, c));
    lock.charts.retain(used);
    if lock != first.lock {
        lock.save(&args.config)?;
        eprintln!("mlplat: wrote {}", lock_path.display());
    }
    Ok(Outcome::Clean)
}
