//! `mlplat charts pull`: fetch each chart the platform uses — in every environment — into the
//! cache and pin it, by the sha256 of its archive, in the lock file's `charts` list (with
//! environments, in each environment's own lock file the pins that environment uses). The
//! only command that needs the network for charts; see [`crate::charts`].

use super::Outcome;
use crate::charts::{self, ChartError};
use crate::cli::{ChartsCommand, ChartsPullArgs};
use crate::config;
use crate::lock::ChartPin;
use crate::render;

pub fn run(cmd: &ChartsCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ChartsCommand::Pull(args) => pull(args),
    }
}

fn pull(args: &ChartsPullArgs) -> anyhow::Result<Outcome> {
    let platforms = config::load(&args.config, config::Selection::All)?;
    let mut wanted = Vec::new();
    for loaded in &platforms {
        wanted.push(render::charts(loaded).map_err(super::render_error)?);
    }
    if wanted.iter().all(Vec::is_empty) && platforms.iter().all(|l| l.lock.charts.is_empty()) {
        return Ok(Outcome::Clean);
    }
    let cache = charts::cache_dir()?;
    let helm = charts::helm_program();
    // What this run pulled: a chart version two environments use is pulled once.
    let mut pulled: Vec<ChartPin> = Vec::new();
    for (loaded, wanted) in platforms.iter().zip(&wanted) {
        let lock_path = loaded.lock_path();
        let cx = charts::Context {
            config: &args.config,
            lock: &lock_path,
            cache: &cache,
        };
        let mut lock = loaded.lock.clone();
        for (tool, chart) in wanted {
            let who = match &loaded.environment {
                Some(env) => format!("{env}/{tool}"),
                None => tool.clone(),
            };
            if charts::verified_archive(&cx, &who, chart, &lock).is_ok() {
                eprintln!(
                    "mlplat: {who}: {} is pinned and cached",
                    charts::label(chart)
                );
                continue;
            }
            let pinned = charts::pin_of(&lock, chart).cloned();
            let pin = match pulled.iter().find(|p| charts::pins(p, chart)) {
                Some(p) => p.clone(),
                None => {
                    let p = charts::pull(&helm, &cache, &who, chart)?;
                    pulled.push(p.clone());
                    p
                }
            };
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
                        files: Box::new(charts::Files {
                            config: args.config.clone(),
                            lock: lock_path.clone(),
                        }),
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
        // A chart version the platform no longer installs keeps no pin.
        let used = |p: &ChartPin| wanted.iter().any(|(_, c)| charts::pins(p, c));
        lock.charts.retain(used);
        if lock != loaded.lock {
            lock.write(&lock_path)?;
            eprintln!("mlplat: wrote {}", lock_path.display());
        }
    }
    Ok(Outcome::Clean)
}
