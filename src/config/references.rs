//! What the config refers to, read at load time: the values only the user has (`fromEnv`,
//! `fromFile`), the platform key, and the user's chart values files.

use super::*;

/// Finds every `{fromEnv|fromFile}` in the config (outside disabled tools) and reads it.
pub(super) fn collect_inputs(
    ctx: &Ctx<'_>,
    value: &Value,
    pointer: &str,
    p: &PlatformConfig,
    inputs: &mut Inputs,
    problems: &mut Vec<Diagnostic>,
) {
    match value {
        Value::Object(map) => {
            if pointer == "/secrets/key" {
                return; // resolved by resolve_key, with its own default
            }
            if let Some(tool) = pointer.strip_prefix("/tools/") {
                if !tool.contains('/') && !Tool::from_name(tool).is_some_and(|t| p.enabled(t)) {
                    return;
                }
            }
            if is_value_source(map) {
                if let Ok(src) = serde_json::from_value::<ValueSource>(value.clone()) {
                    if let Some(secret) = read_source(ctx, &src, pointer, problems) {
                        inputs.0.insert(pointer.to_owned(), secret);
                    }
                }
                return;
            }
            for (k, v) in map {
                let child = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                collect_inputs(ctx, v, &child, p, inputs, problems);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_inputs(ctx, v, &format!("{pointer}/{i}"), p, inputs, problems);
            }
        }
        _ => {}
    }
}

fn is_value_source(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 1 && (map.contains_key("fromEnv") || map.contains_key("fromFile"))
}

/// Reads one source. A missing or empty variable or file (or one of only white space) is an
/// error, never an empty string. A `fromFile` reads a regular file of at most
/// [`files::MAX_SECRET_BYTES`], anywhere the user can read (relative paths from the file that
/// names it), never a FIFO, a device or a pseudo-file. Every value read is a secret from then
/// on (see [`crate::redact`]), and so is its file.
fn read_source(
    ctx: &Ctx<'_>,
    src: &ValueSource,
    pointer: &str,
    problems: &mut Vec<Diagnostic>,
) -> Option<Secret> {
    if let Some(var) = &src.from_env {
        let at = format!("{pointer}/fromEnv");
        return match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => {
                crate::redact::secret_with_spellings(&v);
                Some(Secret::new(v))
            }
            Ok(v) => {
                crate::redact::secret_with_spellings(&v);
                let what = if v.is_empty() {
                    "empty"
                } else {
                    "only white space"
                };
                problems.push(ctx.diag(&at, format!("environment variable `{var}` is {what}")));
                None
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                problems.push(ctx.diag(
                    &at,
                    format!("environment variable `{var}` is not UTF-8 text"),
                ));
                None
            }
            Err(std::env::VarError::NotPresent) => {
                problems.push(
                    ctx.diag(&at, format!("environment variable `{var}` is not set"))
                        .help(format!(
                            "export {var}=... before running mlplat, or use {{fromFile: path}}"
                        )),
                );
                None
            }
        };
    }
    if let Some(file) = &src.from_file {
        let at = format!("{pointer}/fromFile");
        let path = ctx.dir(&at).join(file);
        crate::redact::secret_file(&path);
        let shown = path.display();
        let read = crate::files::read(&path, crate::files::MAX_SECRET_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
            });
        return match read {
            Ok(text) => {
                let v = text.trim_end_matches(['\n', '\r']);
                crate::redact::secret_with_spellings(v);
                if v.trim().is_empty() {
                    let what = if v.is_empty() {
                        "empty"
                    } else {
                        "only white space"
                    };
                    problems.push(ctx.diag(&at, format!("file `{shown}` is {what}")));
                    None
                } else {
                    Some(Secret::new(v.to_owned()))
                }
            }
            Err(e) => {
                problems.push(
                    ctx.diag(&at, format!("cannot read `{shown}`: {e}"))
                        .help("paths are relative to the config file"),
                );
                None
            }
        };
    }
    None
}

pub(super) fn resolve_key(
    ctx: &Ctx<'_>,
    p: &PlatformConfig,
    problems: &mut Vec<Diagnostic>,
) -> Option<Secret> {
    let (src, pointer) = match &p.secrets.key {
        Some(src) => (src.clone(), "/secrets/key"),
        None if std::env::var_os(KEY_ENV).is_some() => (
            ValueSource {
                from_env: Some(KEY_ENV.to_owned()),
                from_file: None,
            },
            "",
        ),
        None => {
            if !ctx.dir("").join(KEY_FILE).exists() {
                problems.push(
                    ctx.diag("", "no platform secret key: every generated secret is derived from it")
                        .help(format!(
                            "run `mlplat init` to create {KEY_FILE}, set {KEY_ENV}, or set secrets.key: {{fromFile: path}}"
                        )),
                );
                return None;
            }
            (
                ValueSource {
                    from_env: None,
                    from_file: Some(KEY_FILE.to_owned()),
                },
                "",
            )
        }
    };
    let key = read_source(ctx, &src, pointer, problems)?;
    if key.expose().len() < 32 {
        problems.push(
            ctx.diag(
                pointer,
                "the platform secret key is shorter than 32 characters",
            )
            .help("`mlplat init` writes a 64-character key"),
        );
        return None;
    }
    Some(key)
}

pub(super) fn load_values_files(
    ctx: &Ctx<'_>,
    p: &PlatformConfig,
    problems: &mut Vec<Diagnostic>,
) -> BTreeMap<&'static str, Vec<ValuesFile>> {
    let mut out = BTreeMap::new();
    let lists: [(&'static str, Option<&Vec<String>>); 2] = [
        ("airflow", p.airflow().map(|a| &a.values)),
        ("jupyterhub", p.jupyterhub().map(|j| &j.values)),
    ];
    for (tool, list) in lists {
        let Some(list) = list else {
            continue;
        };
        let mut files = Vec::new();
        for (i, rel) in list.iter().enumerate() {
            let pointer = format!("/tools/{tool}/values/{i}");
            let path = ctx.dir(&pointer).join(rel);
            if crate::redact::is_secret_file(&path) || layers::is_key_file(&path) {
                crate::redact::secret_file(&path);
                problems.push(Diagnostic::new(&path, "holds a secret").key(key_path(&pointer)));
                continue;
            }
            let text = match crate::files::read_yaml(&path) {
                Ok(Ok(t)) => t,
                Ok(Err(d)) => {
                    problems.push(d);
                    continue;
                }
                Err(e) => {
                    problems.push(ctx.diag(
                        &pointer,
                        format!("cannot read values file {}: {e}", path.display()),
                    ));
                    continue;
                }
            };
            match yaml::parse_document(&text) {
                Ok(doc) => match doc.to_json() {
                    v @ Value::Object(_) => files.push(ValuesFile {
                        path,
                        value: v,
                        doc,
                        text,
                    }),
                    Value::Null => {}
                    _ => {
                        // A lone scalar is no values file: it may be a token; never quoted.
                        crate::redact::never_quote(&path);
                        problems.push(
                            Diagnostic::new(
                                &path,
                                format!(
                                    "chart values must be a mapping, found {}",
                                    doc.type_name()
                                ),
                            )
                            .at_line(doc.pos, None),
                        );
                    }
                },
                Err(e) => {
                    redaction::mask_line_by_keys(&path, &text, e.pos().line);
                    problems.push(Diagnostic::new(&path, e.to_string()).at(e.pos(), &text));
                }
            }
        }
        out.insert(tool, files);
    }
    out
}
