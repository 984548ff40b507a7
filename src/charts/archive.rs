//! What a render reads from a chart archive itself: the chart's default values
//! (`<chart>/values.yaml`) and its values schema (`<chart>/values.schema.json`), which
//! [`super::values`] checks the final values against.
//!
//! Gunzipping and walking an archive costs more than a whole render (the official Airflow
//! chart is 0.3 MB compressed, 2.6 MB of tar), so the two files are extracted once per archive
//! and kept in the cache under the archive's sha256 (`facts/<digest>.json`): the defaults as
//! JSON, and the schema with what never rejects a value taken out (descriptions, defaults,
//! examples, `x-*` annotations, whatever stands beside a `$ref`), a quarter of its size.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::ChartError;

/// The version of the extracted form; a new one is extracted again.
const FORMAT: &str = "mlplat-chart-facts/1";

/// A chart's own values and schema.
#[derive(Debug, Clone)]
pub struct ChartFacts {
    /// `values.yaml` of the chart, as JSON (an empty mapping when it has none).
    pub defaults: Value,
    /// `values.schema.json`, slimmed; `None` when the chart ships none.
    pub schema: Option<Value>,
}

/// Where the cache keeps the facts of the archive with `digest` (`sha256:<hex>`).
pub fn facts_path(cache: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    cache.join("facts").join(format!("{hex}.json"))
}

/// The facts of the archive pinned with `digest`, from the cache; `None` when they were never
/// extracted (or cannot be read back, which makes them extracted again).
pub fn cached(cache: &Path, digest: &str) -> Option<ChartFacts> {
    let text = std::fs::read_to_string(facts_path(cache, digest)).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    if value["format"] != FORMAT {
        return None;
    }
    Some(ChartFacts {
        defaults: value["defaults"].clone(),
        schema: Some(value["schema"].clone()).filter(|s| !s.is_null()),
    })
}

/// Extracts the facts of a verified archive (with `digest`) and keeps them in the cache.
pub fn extract(cache: &Path, archive: &Path, digest: &str) -> Result<ChartFacts, ChartError> {
    let bad = |message: String| ChartError::BadArchive {
        path: archive.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(archive).map_err(|source| ChartError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut values = None;
    let mut schema = None;
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        // `<chart>/values.yaml`: the chart's own, not a subchart's (`<chart>/charts/…`).
        let parts: Vec<_> = path.components().collect();
        let [_, name] = parts.as_slice() else {
            continue;
        };
        let slot = match name.as_os_str().to_str() {
            Some("values.yaml") => &mut values,
            Some("values.schema.json") => &mut schema,
            _ => continue,
        };
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        *slot = Some(text);
    }
    let defaults = match values {
        Some(text) => crate::yaml::parse_document(&text)
            .map_err(|e| bad(format!("values.yaml: {e}")))?
            .to_json(),
        None => Value::Null,
    };
    let defaults = if defaults.is_null() {
        json!({})
    } else {
        defaults
    };
    let schema = match schema {
        Some(text) => Some(slim(
            &serde_json::from_str(&text).map_err(|e| bad(format!("values.schema.json: {e}")))?,
        )),
        None => None,
    };
    let stored = json!({"format": FORMAT, "defaults": defaults, "schema": schema});
    write_atomically(&facts_path(cache, digest), stored.to_string().as_bytes())?;
    Ok(ChartFacts { defaults, schema })
}

/// Writes `bytes` to `path` through a temporary file beside it, so a reader never sees half.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ChartError> {
    let io = |source| ChartError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Keywords that never reject a value.
const ANNOTATIONS: &[&str] = &[
    "description",
    "default",
    "examples",
    "title",
    "$comment",
    "readOnly",
    "writeOnly",
];

/// The schema without what never rejects a value: annotations and every keyword beside a
/// `$ref` (ignored in draft-07). Names under `properties`, `patternProperties` and
/// `definitions` are kept whatever they are (a property may be called `description`).
fn slim(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            if let (Some(r), false) = (map.get("$ref"), map.contains_key("$schema")) {
                return json!({"$ref": r});
            }
            let mut out = Map::new();
            for (k, v) in map {
                if ANNOTATIONS.contains(&k.as_str()) || k.starts_with("x-") {
                    continue;
                }
                let kept = match k.as_str() {
                    "properties" | "patternProperties" | "definitions" => match v {
                        Value::Object(named) => {
                            Value::Object(named.iter().map(|(n, s)| (n.clone(), slim(s))).collect())
                        }
                        other => other.clone(),
                    },
                    "enum" | "const" | "required" => v.clone(),
                    _ => slim(v),
                };
                out.insert(k.clone(), kept);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(slim).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slimming_keeps_every_assertion_and_every_name() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "description": "d",
            "properties": {
                "description": {"type": "string", "description": "a property so named"},
                "a": {"$ref": "#/definitions/x", "type": "null", "default": 1},
                "e": {"enum": [{"description": "kept"}], "x-docsSection": "s"}
            },
            "definitions": {"x": {"type": "integer", "examples": [1]}}
        });
        assert_eq!(
            slim(&schema),
            json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "properties": {
                    "description": {"type": "string"},
                    "a": {"$ref": "#/definitions/x"},
                    "e": {"enum": [{"description": "kept"}]}
                },
                "definitions": {"x": {"type": "integer"}}
            })
        );
    }
}
