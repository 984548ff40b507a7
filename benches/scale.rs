//! `cargo bench --bench scale`: many platforms rendered by one process, the scale case of
//! `scripts/bench`.
//!
//! Until a config can hold several environments, the large case is 100 platforms: copies of the
//! configs in `examples/`, each under its own platform name and namespaces, written to a
//! temporary directory with the files they read. One sample loads, validates and renders all
//! of them; it is timed three ways (in memory, writing a fresh output directory each, and
//! `--check` against an up-to-date one). Prints the median of every phase and the peak
//! resident memory of the process (`VmHWM`). A benchmark, not a test: it never fails on time.
//!
//! Options: `--platforms N` (default 100), `--samples N` (default 15), `--markdown` (also print
//! the figures as rows of the table in README.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mlplat::{config, output, render};

struct Options {
    platforms: usize,
    samples: usize,
    markdown: bool,
}

fn options() -> Options {
    let mut o = Options {
        platforms: 100,
        samples: 15,
        markdown: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--platforms" => &mut o.platforms,
            "--samples" => &mut o.samples,
            "--markdown" => {
                o.markdown = true;
                continue;
            }
            // `cargo bench` passes `--bench`, and a filter may follow: neither applies here.
            _ => continue,
        };
        match args.next().and_then(|v| v.parse().ok()) {
            Some(n) if n > 0 => *slot = n,
            _ => fail(&format!("{arg} takes a positive number")),
        }
    }
    o
}

fn fail(message: &str) -> ! {
    eprintln!("bench scale: {message}");
    std::process::exit(2);
}

fn main() {
    let opts = options();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let work = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("temporary directory: {e}")));
    // Also compiles the schema and the templates: the samples measure a warm process.
    let configs = generate(&examples, work.path(), opts.platforms);
    let out = work.path().join("out");

    let mut in_memory = Vec::new();
    let mut write = Vec::new();
    let mut check = Vec::new();
    for sample in 0..opts.samples {
        in_memory.push(time(|| {
            for c in &configs {
                load_and_render(c);
            }
        }));
        let fresh = out.join(sample.to_string());
        write.push(time(|| {
            for (i, c) in configs.iter().enumerate() {
                let tree = load_and_render(c);
                let written = output::write(&tree, &fresh.join(i.to_string()));
                if !matches!(written, Ok(true)) {
                    fail(&format!("{}: not written: {written:?}", c.display()));
                }
            }
        }));
        check.push(time(|| {
            for (i, c) in configs.iter().enumerate() {
                let tree = load_and_render(c);
                match output::check(&tree, &fresh.join(i.to_string())) {
                    Ok(drift) if drift.is_empty() => {}
                    other => fail(&format!("{}: not up to date: {other:?}", c.display())),
                }
            }
        }));
        // Only the latest output is kept, so the disk holds one sample's worth.
        if sample > 0 {
            let _ = std::fs::remove_dir_all(out.join((sample - 1).to_string()));
        }
    }

    let n = configs.len();
    println!(
        "{n} platforms, one process, median of {} samples (min .. max):",
        opts.samples
    );
    let peak = peak_rss_kib().map_or("unknown".to_owned(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    });
    let mut rows = Vec::new();
    for (name, times) in [
        ("load + render, in memory", &mut in_memory),
        ("load + render + write out/", &mut write),
        ("load + render + --check", &mut check),
    ] {
        times.sort();
        rows.push(format!(
            "| {n} platforms, one process: {name} | {} | {peak} |",
            ms(median(times))
        ));
        println!(
            "  {name:<28} {:>9}   ({} .. {})   {} per platform",
            ms(median(times)),
            ms(times[0]),
            ms(times[times.len() - 1]),
            ms(median(times) / n as u32),
        );
    }
    println!("peak RSS of the process (VmHWM): {peak}");
    if opts.markdown {
        println!();
        for row in rows {
            println!("{row}");
        }
    }
}

/// Writes `count` configs into `dir`, taken in turn from the examples, each renamed.
fn generate(examples: &Path, dir: &Path, count: usize) -> Vec<PathBuf> {
    copy_inputs(examples, dir, true).unwrap_or_else(|e| fail(&format!("copying examples: {e}")));
    let mut sources: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", examples.display())))
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_config(p))
        .collect();
    sources.sort();
    // An example that does not render here under another name is left out: one that needs an
    // environment variable, or AWS resources recorded in its lock file under its own name.
    sources.retain(|src| {
        let probe = dir.join("probe.yaml");
        let text = std::fs::read_to_string(src).unwrap_or_default();
        let _ = std::fs::write(&probe, rename(&text, 0));
        copy_lock(src, &probe);
        let result = config::load(&probe)
            .map_err(|e| e.to_string())
            .and_then(|loaded| render::render(&loaded).map_err(|e| e.to_string()));
        let _ = std::fs::remove_file(probe.with_extension("lock.yaml"));
        match result {
            Ok(_) => true,
            Err(e) => {
                eprintln!("bench scale: leaving out {}: {e}", src.display());
                false
            }
        }
    });
    if sources.is_empty() {
        fail("no example config loads");
    }
    (0..count)
        .map(|i| {
            let src = &sources[i % sources.len()];
            let text = std::fs::read_to_string(src)
                .unwrap_or_else(|e| fail(&format!("{}: {e}", src.display())));
            let path = dir.join(format!("p{i:03}.yaml"));
            std::fs::write(&path, rename(&text, i))
                .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
            copy_lock(src, &path);
            path
        })
        .collect()
}

/// The lock file of config `src` (`<name>.lock.yaml`), if it has one, beside config `dst`.
fn copy_lock(src: &Path, dst: &Path) {
    let lock = src.with_extension("lock.yaml");
    if lock.is_file() {
        let _ = std::fs::copy(&lock, dst.with_extension("lock.yaml"));
    }
}

fn is_config(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    p.is_file() && name.ends_with(".yaml") && !name.ends_with(".lock.yaml")
}

/// Gives config number `i` its own platform name and its own explicit namespaces.
fn rename(text: &str, i: usize) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = line.strip_prefix("platform: ") {
            out.push_str(&format!("platform: p{i:03}-{}", name.trim()));
        } else if let Some(ns) = trimmed.strip_prefix("namespace: ") {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(&format!("{indent}namespace: {}-p{i:03}", ns.trim()));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Copies what the examples read (keys, tokens, values files) beside the generated configs.
fn copy_inputs(from: &Path, to: &Path, top: bool) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, name) = (entry.path(), entry.file_name());
        let dst = to.join(&name);
        if entry.file_type()?.is_dir() {
            // `rendered/` is output, not input.
            if name != "rendered" {
                std::fs::create_dir_all(&dst)?;
                copy_inputs(&src, &dst, false)?;
            }
        } else if !(top && is_config(&src)) {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

fn load_and_render(path: &Path) -> output::Tree {
    let loaded = config::load(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    render::render(&loaded).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(sorted: &[Duration]) -> Duration {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The process's peak resident set size, in KiB, from `/proc/self/status`.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
