//! `mlplat images pin`: read the digest of each image mlplat's own workloads use — in every
//! environment — from its registry, and record it in the lock file's `images` map, which
//! `images.pin: digest` renders from. The only command that needs the network for images; see
//! [`mlplat::images`].

use std::collections::BTreeSet;

use mlplat::cli::{ImagesCommand, ImagesPinArgs};
use mlplat::commands::Outcome;
use mlplat::config::{self, Platforms};
use mlplat::render;

pub fn run(cmd: &ImagesCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ImagesCommand::Pin(args) => pin(args),
    }
}

fn pin(args: &ImagesPinArgs) -> anyhow::Result<Outcome> {
    // Every environment's images: they share the lock file beside the config.
    let platforms = match config::load_platforms(&args.config)? {
        Platforms::One(loaded) => vec![*loaded],
        Platforms::Environments => config::load_all(&args.config)?
            .into_iter()
            .map(|(_, loaded)| loaded)
            .collect(),
    };
    let Some(first) = platforms.first() else {
        return Ok(Outcome::Clean);
    };
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for loaded in &platforms {
        wanted.extend(render::own_images(loaded).map_err(mlplat::commands::render_error)?);
    }
    // Pinned in the config itself (`image@sha256:…`): nothing to read.
    wanted.retain(|image| !image.contains('@'));
    let mut lock = first.lock.clone();
    for image in &wanted {
        let known = lock.images.get(image).cloned();
        if let Some(digest) = known.as_deref().filter(|_| !args.update) {
            eprintln!("mlplat: {image} is pinned ({digest})");
            continue;
        }
        let digest = crate::registry::resolve(image)?;
        match known {
            Some(old) if old == digest => eprintln!("mlplat: {image} is unchanged ({digest})"),
            Some(old) => eprintln!("mlplat: {image}: pinned {digest} (was {old})"),
            None => eprintln!("mlplat: {image}: pinned {digest}"),
        }
        lock.images.insert(image.clone(), digest);
    }
    // An image no workload uses any more keeps no pin.
    lock.images.retain(|image, _| wanted.contains(image));
    if lock != first.lock {
        lock.save(&args.config)?;
        eprintln!(
            "mlplat: wrote {}",
            mlplat::lock::path_for(&args.config).display()
        );
    }
    Ok(Outcome::Clean)
}
