//! `mlplat charts pull`: fetch each chart the platform uses into the cache and pin it, by the
//! sha256 of its archive, in the lock file's `charts` section. The only command of
//! `delivery: rendered` that needs the network; see [`crate::charts`].

use super::Outcome;
use crate::charts::{self, ChartError};
use crate::cli::{ChartsCommand, ChartsPullArgs};
use crate::{config, render};

pub fn run(cmd: &ChartsCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ChartsCommand::Pull(args) => pull(args),
    }
}

fn pull(args: &ChartsPullArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load_plain(&args.config, "charts pull")?;
    let wanted = render::charts(&loaded).map_err(super::render_error)?;
    let cache = charts::cache_dir()?;
    let helm = charts::helm_program();
    let lock_path = crate::lock::path_for(&args.config);
    let cx = charts::Context {
        config: &args.config,
        cache: &cache,
    };
    let mut lock = loaded.lock.clone();
    for (tool, chart) in &wanted {
        let pinned = lock.charts.get(tool).filter(|p| charts::pins(p, chart));
        if charts::verified_archive(&cx, tool, chart, pinned).is_ok() {
            eprintln!(
                "mlplat: {tool}: {} is pinned and cached",
                charts::label(chart)
            );
            continue;
        }
        let pin = charts::pull(&helm, &cache, tool, chart)?;
        if let Some(old) = pinned.filter(|old| old.sha256 != pin.sha256) {
            if !args.update {
                return Err(ChartError::Republished {
                    tool: tool.clone(),
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
            "mlplat: {tool}: pinned {} ({})",
            charts::label(chart),
            pin.sha256
        );
        lock.charts.insert(tool.clone(), pin);
    }
    // A tool that no longer has a chart keeps no pin.
    lock.charts
        .retain(|tool, _| wanted.iter().any(|(t, _)| t == tool));
    if lock != loaded.lock {
        lock.save(&args.config)?;
        eprintln!("mlplat: wrote {}", lock_path.display());
    }
    Ok(Outcome::Clean)
}
