//! What mlplat writes, judged by independent checkers: `kubectl kustomize` builds each tree,
//! every built-in object passes `kubernetes-validate --strict`, and every Flux object validates
//! against its CRD (the chart values are judged by the charts themselves, through Helm, in
//! `tests/published_charts.rs`). Also: no secret value appears outside a Secret file, and such
//! files are 0600.

#[path = "common/cases.rs"]
mod cases;
mod support;

use serde_json::Value;

/// The objects of every golden tree, built by kustomize, by tree.
fn built_trees() -> Vec<(String, Vec<Value>)> {
    cases::platforms()
        .into_iter()
        .map(|(_, dir)| (dir.display().to_string(), support::kustomize_build(&dir)))
        .collect()
}

#[test]
fn every_tree_builds_and_every_object_validates() {
    let mut problems = Vec::new();
    for (dir, objs) in built_trees() {
        assert!(objs.len() > 10, "{dir}: only {} objects", objs.len());
        if let Err(e) = support::validate_all(&objs) {
            problems.push(format!("{dir}:\n{e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn secret_values_appear_only_in_private_secret_files() {
    for (loaded, dir) in cases::platforms() {
        let config = &loaded.file;
        if loaded.platform.secrets.mode == mlplat::config::SecretMode::ExternalSecrets {
            continue; // no Secret at all: tests/secret_modes.rs scans these trees
        }
        let tree = mlplat::render::render(&loaded).expect("render");
        // Every value a Secret holds, from the Secret manifests themselves.
        let mut values = Vec::new();
        for (path, file) in tree.files.iter().filter(|(_, f)| f.secret) {
            let text = String::from_utf8(file.bytes.clone()).expect("utf8");
            for doc in mlplat::yaml::parse_documents(&text).expect("yaml") {
                let doc = doc.to_json();
                // Or an Argo CD Application whose valuesObject holds secret chart values.
                if doc["kind"] == "Application" {
                    continue;
                }
                assert_eq!(
                    doc["kind"], "Secret",
                    "{path}: a secret file holds only Secrets (or an Application)"
                );
                for (_, v) in doc["stringData"].as_object().into_iter().flatten() {
                    let v = v.as_str().expect("string data");
                    // Short values (user names such as `admin`) are not secret; multi-line
                    // ones (an ini file, chart values) repeat values that are listed alone.
                    if v.len() >= 16 && !v.contains('\n') {
                        values.push(v.to_owned());
                    }
                }
            }
        }
        assert!(
            values.len() >= 5,
            "{}: found only {} secret values",
            config.display(),
            values.len()
        );
        for (path, file) in tree.files.iter().filter(|(_, f)| !f.secret) {
            let text = String::from_utf8_lossy(&file.bytes);
            for v in &values {
                assert!(
                    !text.contains(v.as_str()),
                    "{}: {path} holds a secret value",
                    dir.display()
                );
            }
        }
    }
}
