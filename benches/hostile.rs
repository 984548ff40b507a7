//! `cargo bench --bench hostile -- --write DIR`: the hostile-input suite's cases, ready to
//! time. Writes every case of `tests/hostile/` into `DIR/<case>/` (the planted files, the
//! case's files, the generated ones) and prints one line per case, tab-separated: its name,
//! mlplat's arguments, and the paths to make FIFOs at once `out/` is rendered. `scripts/bench`
//! renders `good.yaml` into `out/` in each, makes the FIFOs, and reports the wall time and peak
//! memory of each command (the README's performance section). A benchmark, never a test.

use std::path::{Path, PathBuf};

#[path = "../tests/hostile/generate.rs"]
#[allow(dead_code)]
mod generate;

const CONTROL: &[&str] = &["cmd", "fifos", "env", "secrets", "exit", "generate"];

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap_or_else(|e| fail(&format!("{}: {e}", from.display()))) {
        let Ok(e) = e else { continue };
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if CONTROL.contains(&name.as_str()) || name == "env" {
            continue;
        }
        if p.is_dir() {
            let _ = std::fs::create_dir_all(to.join(&name));
            copy_dir(&p, &to.join(&name));
        } else if let Err(e) = std::fs::copy(&p, to.join(&name)) {
            fail(&format!("copy {}: {e}", p.display()));
        }
    }
}

fn first_line(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()
        .map(str::to_owned)
}

fn fail(message: &str) -> ! {
    eprintln!("bench hostile: {message}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args
        .windows(2)
        .find(|w| w[0] == "--write")
        .map(|w| PathBuf::from(&w[1]))
    else {
        // `cargo bench` runs every bench: without --write this one has nothing to do.
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", root.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !p.ends_with("planted"))
        .collect();
    cases.sort();
    for case in cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = dir.join(&name);
        if let Err(e) = std::fs::create_dir_all(&to) {
            fail(&format!("{}: {e}", to.display()));
        }
        copy_dir(&root.join("planted"), &to);
        copy_dir(&case, &to);
        if let Some(generator) = first_line(&case.join("generate")) {
            generate::generate(&generator, &to);
        }
        let cmd = first_line(&case.join("cmd"))
            .unwrap_or_else(|| "render -c platform.yaml -o out".to_owned());
        let fifos = std::fs::read_to_string(case.join("fifos"))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        println!("{name}\t{cmd}\t{fifos}");
    }
}
