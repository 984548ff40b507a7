//! Reading a config file into [`Loaded`]: the [`Selection`] of platforms (the file as it is,
//! one environment, or all), each validated (schema, then the rules between keys, then what it
//! refers to) and given its own lock file.

use super::checks::semantic_checks;
use super::references::{collect_inputs, load_values_files, resolve_key};
use super::*;

/// Which platforms of a config file [`load`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// The file as it is, its environments not applied, with the lock file beside it.
    Plain,
    /// One environment: the base merged with its overlay, with the environment's lock file.
    Environment(&'a str),
    /// What a command acts on without `--env`: each environment of a config that declares
    /// some, in name order; otherwise the config itself.
    All,
}

impl<'a> Selection<'a> {
    /// `--env NAME`, or every platform without it.
    pub fn from_env(env: Option<&'a str>) -> Self {
        env.map_or(Selection::All, Selection::Environment)
    }
}

/// Reads, validates and resolves the platforms `selection` names, each with its lock file
/// (read once). Diagnostics point into the file that set each value; with [`Selection::All`],
/// every problem of every environment is reported (a problem of the base once).
pub fn load(path: &Path, selection: Selection<'_>) -> Result<Vec<Loaded>, ConfigError> {
    match selection {
        Selection::Plain => load_layered(layers::read_layers(path, None)?).map(|l| vec![l]),
        Selection::Environment(env) => {
            let mut loaded = validate(layers::read_layers(path, Some(env))?)?;
            loaded.lock = env_lock(path, env)?;
            Ok(vec![loaded])
        }
        Selection::All => {
            let layered = layers::read_layers(path, None)?;
            if layers::declares_environments(path, &layered)? {
                load_environments(path)
            } else {
                load_layered(layered).map(|l| vec![l])
            }
        }
    }
}

/// [`load`] of the file as it is ([`Selection::Plain`]): its one platform.
pub fn load_one(path: &Path) -> Result<Loaded, ConfigError> {
    let mut all = load(path, Selection::Plain)?;
    Ok(all.remove(0))
}

/// [`Selection::Plain`] of a config tree already read (`mlplat explain`'s).
pub fn load_layered(layered: Layered) -> Result<Loaded, ConfigError> {
    let path = layered.sources.base().path.clone();
    let mut loaded = validate(layered)?;
    loaded.lock = crate::lock::Lock::load(&path)?;
    Ok(loaded)
}

/// The lock of `environment`: its own file. A lock file of the base config beside a config
/// with environments is an error, not ignored: its generations would silently be lost, and
/// every secret they rotated would change back.
fn env_lock(path: &Path, environment: &str) -> Result<crate::lock::Lock, ConfigError> {
    let base = crate::lock::path_for(path);
    if base.is_file() {
        return Err(crate::lock::LockError::BaseWithEnvironments {
            path: base,
            config: path.to_path_buf(),
            example: crate::lock::path_for_env(path, environment),
        }
        .into());
    }
    Ok(crate::lock::Lock::read(&crate::lock::path_for_env(
        path,
        environment,
    ))?)
}

/// Every environment the config declares, loaded, in name order. Every problem of every
/// environment is reported (a problem of the base once); two environments may not share a
/// platform name, nor an AWS resource.
fn load_environments(path: &Path) -> Result<Vec<Loaded>, ConfigError> {
    let mut out: Vec<(String, Option<Loaded>)> = Vec::new();
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for env in environment_names(path)? {
        match load(path, Selection::Environment(&env)) {
            Ok(loaded) => out.push((env, loaded.into_iter().next())),
            Err(ConfigError::Invalid(d)) => {
                // A problem of the base is found in every environment: reported once.
                for d in d.0 {
                    if seen.insert(d.clone()) {
                        problems.push(d);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(Diagnostics(problems)));
    }
    let out: Vec<(String, Loaded)> = out
        .into_iter()
        .filter_map(|(env, loaded)| Some((env, loaded?)))
        .collect();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (env, loaded) in &out {
        if let Some(other) = seen.insert(&loaded.platform.platform, env) {
            let message = format!(
                "environments `{other}` and `{env}` both name the platform `{}`: their namespaces and secrets would be the same",
                loaded.platform.platform
            );
            // Where this environment's name is set: its overlay, or the base.
            let layered = layers::read_layers(path, Some(env))?;
            let (at, pos) = schema::locate_pointer(&layered.doc, "/platform");
            let d = layered
                .sources
                .diag(&at, pos, message)
                .key("platform")
                .help("let each overlay leave `platform` unset (it becomes <platform>-<environment>), or give each its own name");
            return Err(ConfigError::Invalid(Diagnostics(vec![d])));
        }
    }
    // The AWS resources of two environments must differ by name: provision finds resources by
    // name, so one environment would change, and destroy delete, what the other uses.
    let mut owners: BTreeMap<String, &str> = BTreeMap::new();
    for (env, loaded) in &out {
        for name in aws::resource_names(loaded) {
            if let Some(other) = owners.insert(name.clone(), env) {
                let d = Diagnostic::new(
                    path,
                    format!(
                        "environments `{other}` and `{env}` both use the AWS {name}: provisioning one would change, and destroying it delete, what the other uses"
                    ),
                )
                .key("environments")
                .help("leave backends.postgres.rds.identifier unset (it defaults to the environment's platform name) or set it in each overlay, and give each environment its own backends.artifacts.s3.bucket");
                return Err(ConfigError::Invalid(Diagnostics(vec![d])));
            }
        }
    }
    Ok(out.into_iter().map(|(_, loaded)| loaded).collect())
}

/// Validates a config given as text; `path` is used for messages and relative paths.
pub fn load_str(path: &Path, source: &str) -> Result<Loaded, ConfigError> {
    let doc = layers::parse(path, source)?;
    let mut layered = Layered {
        doc,
        sources: Sources::single(path, source),
        environment: None,
        inline_secrets: Default::default(),
    };
    layered.inline_secrets = redaction::scan(&layered);
    validate(layered)
}

/// Checks a (merged) config tree against the schema, then the rules between keys, and reads
/// what it refers to.
fn validate(layered: Layered) -> Result<Loaded, ConfigError> {
    let fail = |d: Vec<Diagnostic>| ConfigError::Invalid(Diagnostics(d));
    let Layered {
        doc,
        sources,
        environment,
        ..
    } = layered;
    let path = sources.base().path.clone();
    let value = doc.to_json();
    let problems = schema::check(&sources, &doc, &value);
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    // `environments` says how to build configs, and is read by [`layers`]: it is no part of one.
    let mut typed = value.clone();
    if let Value::Object(map) = &mut typed {
        map.remove("environments");
    }
    let platform: PlatformConfig = match serde_json::from_value(typed) {
        Ok(p) => p,
        // The schema and the types describe the same shape; a gap is a bug, reported plainly.
        Err(e) => return Err(fail(vec![Diagnostic::new(&path, e.to_string())])),
    };
    let ctx = Ctx {
        sources: &sources,
        doc: &doc,
    };
    let mut problems = semantic_checks(&ctx, &platform);
    problems.extend(aws::checks(&ctx, &platform));
    problems.extend(hub::checks(&ctx, &platform));
    let mut inputs = Inputs::default();
    collect_inputs(&ctx, &value, "", &platform, &mut inputs, &mut problems);
    problems.extend(aws::password_checks(&ctx, &platform, &inputs));
    problems.extend(hub::password_checks(&ctx, &platform, &inputs));
    let key = resolve_key(&ctx, &platform, &mut problems);
    let values_files = load_values_files(&ctx, &platform, &mut problems);
    problems.sort_by_key(|d| sources.rank(d));
    match key {
        Some(key) if problems.is_empty() => Ok(Loaded {
            file: path,
            namespaces: namespaces(&platform),
            platform,
            inputs,
            key,
            values_files,
            lock: crate::lock::Lock::default(),
            source: sources.text(environment.as_deref()),
            environment,
        }),
        _ => Err(fail(problems)),
    }
}
