//! The hostile inputs too big to keep as files: a case folder of `tests/hostile/` that holds a
//! `generate` file has its `platform.yaml` (and what it refers to) written by [`generate`].
//! Shared by `tests/hostile.rs` and `benches/hostile.rs`.

use std::fmt::Write as _;
use std::path::Path;

const HEAD: &str = "platform: hostile\nsecrets: {key: {fromFile: mlplat.key}}\n";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
}

/// Writes the generated files of case `name` into `dir`.
pub fn generate(name: &str, dir: &Path) {
    let mut s = String::new();
    match name {
        // 5 MiB: over the size mlplat reads a YAML file to.
        "huge-file" => {
            s.push_str(HEAD);
            s.push_str("tools:\n  mlflow:\n    image: \"");
            s.push_str(&"x".repeat(5 << 20));
            s.push_str("\"\n");
        }
        // About 1 MB of aliases to a 1 MiB scalar: 3.4 GB if expanded.
        "alias-bytes" => {
            s.push_str(HEAD);
            alias_bytes(&mut s, "x-big");
        }
        "alias-bytes-values" => {
            s.push_str(HEAD);
            s.push_str("tools:\n  jupyterhub:\n    auth: {adminUsers: [admin]}\n    values: [values.yaml]\n");
            let mut v = String::new();
            alias_bytes(&mut v, "hub");
            write(dir, "values.yaml", &v);
        }
        // Billion laughs: nine levels of ten aliases each.
        "alias-count" => {
            s.push_str(HEAD);
            s.push_str("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
            for i in 1..10 {
                let p = i - 1;
                let refs = vec![format!("*a{p}"); 10].join(", ");
                let _ = writeln!(s, "a{i}: &a{i} [{refs}]");
            }
        }
        // 100 000 keys in one mapping (1.8 MB).
        "many-keys" => {
            s.push_str(HEAD);
            for i in 0..100_000 {
                let _ = writeln!(s, "entry{i}: value");
            }
        }
        // A chart values file of 50 000 keys.
        "many-keys-values" => {
            s.push_str(HEAD);
            s.push_str("tools:\n  jupyterhub:\n    auth: {adminUsers: [admin]}\n    values: [values.yaml]\n");
            let mut v = String::new();
            for i in 0..50_000 {
                let _ = writeln!(v, "entry{i}: value");
            }
            write(dir, "values.yaml", &v);
        }
        // 10 000 levels of block sequences.
        "deep-nesting" => {
            let _ = write!(s, "{HEAD}tools:\n  {}x\n", "- ".repeat(10_000));
        }
        // A branch name of 1 MB, on one line.
        "huge-branch" => {
            s.push_str(HEAD);
            s.push_str("tools:\n  airflow:\n    dags:\n      repo: https://github.com/example-org/dags.git\n      branch: ");
            s.push_str(&"b".repeat(1 << 20));
            s.push('\n');
        }
        // One line of 1 MB with the problem at its end.
        "long-line" => {
            s.push_str(HEAD);
            s.push_str("tools: {mlflow: {image: ");
            s.push_str(&"i".repeat(1 << 20));
            s.push_str(", replicaz: 2}}\n");
        }
        // 5 000 problems at once.
        "many-errors" => {
            s.push_str(HEAD);
            s.push_str("tools:\n  mlflow:\n");
            for i in 0..5_000 {
                let _ = writeln!(s, "    unknown{i}: x");
            }
        }
        // A base and an overlay of 9 000 keys each, merged.
        "overlay-many-keys" => {
            s.push_str(HEAD);
            s.push_str("environments:\n  dev: {file: dev.yaml}\ntools:\n  mlflow:\n    ingress: {host: m.example.com}\n");
            let mut o = String::from("tools:\n  mlflow:\n    ingress: null\n");
            for i in 0..9_000 {
                let _ = writeln!(s, "k{i}: {i}");
                let _ = writeln!(o, "k{i}: {}", i + 1);
            }
            write(dir, "dev.yaml", &o);
        }
        other => panic!("no generator for hostile case {other}"),
    }
    write(dir, "platform.yaml", &s);
}

/// A 1 MiB scalar under an anchor, then as many aliases to it as 1 MB of text holds.
fn alias_bytes(s: &mut String, key: &str) {
    s.push_str("big: &big \"");
    s.push_str(&"x".repeat(1 << 20));
    s.push_str("\"\n");
    let _ = write!(s, "{key}: [");
    for i in 0..300_000 {
        s.push_str(if i == 0 { "*big" } else { ", *big" });
    }
    s.push_str("]\n");
}
