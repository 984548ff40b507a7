//! `mlplat images pin`: read the digest of each image mlplat's own workloads use — in every
//! environment — from its registry, and record it in the lock file's `images` map (each
//! environment's in its own lock file), which
//! `images.pin: digest` renders from. The only command that needs the network for images; see
//! [`mlplat::images`].

use std::collections::{BTreeMap, BTreeSet};

use mlplat::cli::{ImagesCommand, ImagesPinArgs};
use mlplat::commands::Outcome;
use mlplat::config;
use mlplat::render;

pub fn run(cmd: &ImagesCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ImagesCommand::Pin(args) => pin(args),
    }
}

fn pin(args: &ImagesPinArgs) -> anyhow::Result<Outcome> {
    // Every platform: the config itself, or each of its environments, each with its own lock
    // file. An image two environments use is read from the registry once.
    let platforms = config::load(&args.config, config::Selection::All)?;
    let mut read: BTreeMap<String, String> = BTreeMap::new();
    let mut changed = Vec::new();
    for loaded in &platforms {
        let mut wanted: BTreeSet<String> =
            render::own_images(loaded).map_err(mlplat::commands::render_error)?;
        // Pinned in the config itself (`image@sha256:…`): nothing to read.
        wanted.retain(|image| !image.contains('@'));
        let env = loaded
            .environment
            .as_ref()
            .map(|e| format!("environment {e}: "))
            .unwrap_or_default();
        let mut lock = loaded.lock.clone();
        for image in &wanted {
            let known = lock.images.get(image).cloned();
            if let Some(digest) = known.as_deref().filter(|_| !args.update) {
                eprintln!("mlplat: {env}{image} is pinned ({digest})");
                continue;
            }
            let digest = match read.get(image) {
                Some(d) => d.clone(),
                None => {
                    let d = crate::registry::resolve(image)?;
                    read.insert(image.clone(), d.clone());
                    d
                }
            };
            match known {
                Some(old) if old == digest => {
                    eprintln!("mlplat: {env}{image} is unchanged ({digest})")
                }
                Some(old) => eprintln!("mlplat: {env}{image}: pinned {digest} (was {old})"),
                None => eprintln!("mlplat: {env}{image}: pinned {digest}"),
            }
            lock.images.insert(image.clone(), digest);
        }
        // An image no workload uses any more keeps no pin.
        lock.images.retain(|image, _| wanted.contains(image));
        if lock != loaded.lock {
            changed.push((loaded.lock_path(), lock));
        }
    }
    // Written only once every digest is read: a registry that fails half way leaves every
    // lock file as it was.
    for (path, lock) in changed {
        lock.write(&path)?;
        eprintln!("mlplat: wrote {}", path.display());
    }
    Ok(Outcome::Clean)
}
