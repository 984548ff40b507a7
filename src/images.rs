//! The images of the workloads mlplat renders itself (MLflow, the in-cluster PostgreSQL, the
//! database Jobs): referenced by tag (`images.pin: tag`, the default), or by tag and digest
//! (`images.pin: digest`), the digest read from the registry by `mlplat images pin` and kept in
//! the lock file's `images` map, so that `render` stays offline and a re-pushed tag changes
//! nothing. The charts' images keep the tags their values set.

use std::path::PathBuf;

use crate::config::{ImagePin, Loaded};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "{}: images.pin is digest and {} records no digest of {image}: run `mlplat images pin -c {}` (it reads the digests from the registry)",
        config.display(), lock.display(), config.display()
    )]
    NotPinned {
        image: String,
        config: PathBuf,
        lock: PathBuf,
    },
    #[error("{image}: {message}")]
    Registry { image: String, message: String },
}

/// The reference a manifest uses for `image`, and whether it is pinned by digest.
pub fn reference(loaded: &Loaded, image: &str) -> Result<(String, bool), ImageError> {
    if image.contains('@') {
        // Pinned by digest in the config itself.
        return Ok((image.to_owned(), true));
    }
    if loaded.platform.images.pin() == ImagePin::Tag {
        return Ok((image.to_owned(), false));
    }
    match loaded.lock.images.get(image) {
        Some(digest) => Ok((format!("{image}@{digest}"), true)),
        None => Err(ImageError::NotPinned {
            image: image.to_owned(),
            config: loaded.file.clone(),
            lock: loaded.lock_path(),
        }),
    }
}

/// Where an image is: the registry's host, the repository in it, and the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

/// Splits a reference as Docker does: the first part is a registry when it has a `.` or a
/// `:` or is `localhost`; otherwise the image is on Docker Hub (`library/` for one part).
pub fn parse(image: &str) -> Parsed {
    let (name, tag) = match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_owned(), rest.to_owned())
        }
        Some(_) => ("registry-1.docker.io".to_owned(), name.to_owned()),
        None => ("registry-1.docker.io".to_owned(), format!("library/{name}")),
    };
    let registry = if registry == "docker.io" {
        "registry-1.docker.io".to_owned()
    } else {
        registry
    };
    Parsed {
        registry,
        repository,
        tag: tag.to_owned(),
    }
}
