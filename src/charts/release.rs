//! A chart to install ([`ChartRelease`]) and how its values are layered: the way Helm merges
//! `-f` files ([`merge`]), and a value set at a path ([`set`]).

use serde_json::{Map, Value, json};

use crate::config::ChartConfig;

/// A Helm chart to install, with its values split in two: `secret_values` holds every value
/// that is a secret and travels in a Secret; `values` holds the rest.
#[derive(Debug, Clone)]
pub struct ChartRelease {
    pub repository: String,
    pub chart: String,
    pub version: String,
    pub values: Value,
    pub secret_values: Value,
}

impl ChartRelease {
    /// The chart the config names, or the tool's default.
    pub fn from_config(cfg: Option<&ChartConfig>, default: (&str, &str, &str)) -> Self {
        let (repository, chart, version) = default;
        ChartRelease {
            repository: cfg
                .and_then(|c| c.repository.clone())
                .unwrap_or_else(|| repository.to_owned()),
            chart: cfg
                .and_then(|c| c.name.clone())
                .unwrap_or_else(|| chart.to_owned()),
            version: cfg
                .map(|c| c.version.clone())
                .unwrap_or_else(|| version.to_owned()),
            values: json!({}),
            secret_values: json!({}),
        }
    }
}

/// Merges `overlay` into `base` the way Helm merges `-f` files: maps merge deeply, anything
/// else (lists included) is replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Sets `value` at a dotted path of maps, creating them as needed.
pub fn set(root: &mut Value, path: &[&str], value: Value) {
    let mut cur = root;
    for key in &path[..path.len().saturating_sub(1)] {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        cur = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let (Value::Object(map), Some(last)) = (cur, path.last()) {
        map.insert((*last).to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep_for_maps_and_replaces_lists() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1});
        merge(
            &mut base,
            &json!({"a": {"c": [3], "e": true}, "d": {"x": 1}}),
        );
        assert_eq!(
            base,
            json!({"a": {"b": 1, "c": [3], "e": true}, "d": {"x": 1}})
        );
    }

    #[test]
    fn set_creates_maps() {
        let mut v = json!({});
        set(&mut v, &["a", "b", "c"], json!(1));
        assert_eq!(v, json!({"a": {"b": {"c": 1}}}));
    }
}
