//! `cargo bench --bench scale`: the scale case of `scripts/bench`, one config with 100
//! environments rendered by one process.
//!
//! The config is `examples/local.yaml` with an `environments:` block and one overlay file per
//! environment (its own hosts and database size, every fourth one on the Celery executor),
//! written to a temporary directory with the files it reads. One sample loads and validates
//! every environment and renders them; it is timed three ways (in memory, writing a fresh
//! `out/`, and `--check` against an up-to-date one). Prints the median of every phase and the
//! peak resident memory of the process (`VmHWM`). A benchmark, not a test: it never fails on
//! time. `scripts/bench` also times the same config through the `mlplat` binary.
//!
//! Options: `--environments N` (default 100), `--samples N` (default 15), `--markdown` (also
//! print the figures as rows of the table in README.md), `--write-config DIR` (only write the
//! config, its overlays and inputs into DIR, and print the config's path).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mlplat::{config, output, render};

struct Options {
    environments: usize,
    samples: usize,
    markdown: bool,
    write_config: Option<PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        environments: 100,
        samples: 15,
        markdown: false,
        write_config: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--environments" => &mut o.environments,
            "--samples" => &mut o.samples,
            "--markdown" => {
                o.markdown = true;
                continue;
            }
            "--write-config" => {
                let dir = args
                    .next()
                    .unwrap_or_else(|| fail("--write-config takes a directory"));
                o.write_config = Some(PathBuf::from(dir));
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
    if let Some(dir) = &opts.write_config {
        let config = generate(&examples, dir, opts.environments);
        println!("{}", config.display());
        return;
    }
    let work = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("temporary directory: {e}")));
    let config = generate(&examples, work.path(), opts.environments);
    // Every sample's output is kept until the end: deleting thousands of files just before
    // the next sample writes as many makes ext4 scan past the freed inodes, a kernel cost of
    // the deletion (see README, Performance). 15 samples of 100 environments take ~200 MB.
    let out = work.path().join("out");
    // A first, untimed run checks the config and compiles what is compiled once per process
    // (templates): the samples measure what every further render costs.
    let n = load_and_render(&config).files.len();

    let mut in_memory = Vec::new();
    let mut write = Vec::new();
    let mut check = Vec::new();
    for sample in 0..opts.samples {
        in_memory.push(time(|| {
            load_and_render(&config);
        }));
        let fresh = out.join(sample.to_string());
        write.push(time(|| {
            let tree = load_and_render(&config);
            let written = output::write(&tree, &fresh);
            if !matches!(written, Ok(true)) {
                fail(&format!("not written: {written:?}"));
            }
        }));
        check.push(time(|| {
            let tree = load_and_render(&config);
            match output::check(&tree, &fresh) {
                Ok(drift) if drift.is_empty() => {}
                other => fail(&format!("not up to date: {other:?}")),
            }
        }));
    }

    let envs = opts.environments;
    println!(
        "{envs} environments ({n} files), one process, median of {} samples (min .. max):",
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
            "| {envs} environments, in process (`cargo bench`): {name} | {} | {peak} |",
            ms(median(times))
        ));
        println!(
            "  {name:<28} {:>9}   ({} .. {})   {} per environment",
            ms(median(times)),
            ms(times[0]),
            ms(times[times.len() - 1]),
            ms(median(times) / envs as u32),
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

/// Writes into `dir` the example config with `count` environments, their overlays and the
/// files the config reads; returns the config's path.
fn generate(examples: &Path, dir: &Path, count: usize) -> PathBuf {
    std::fs::create_dir_all(dir.join("env")).unwrap_or_else(|e| io_fail(dir, e));
    for input in ["example.key", "example-git-token"] {
        let (from, to) = (examples.join(input), dir.join(input));
        std::fs::copy(&from, &to).unwrap_or_else(|e| io_fail(&from, e));
    }
    let base = examples.join("local.yaml");
    let mut text = std::fs::read_to_string(&base).unwrap_or_else(|e| io_fail(&base, e));
    text.push_str("\nenvironments:\n");
    for i in 0..count {
        let env = format!("e{i:03}");
        text.push_str(&format!("  {env}: {{file: env/{env}.yaml}}\n"));
        let celery = if i % 4 == 3 {
            "    executor: CeleryExecutor\n"
        } else {
            ""
        };
        let overlay = format!(
            "backends:\n  postgres:\n    inCluster: {{storage: {}Gi}}\n\
             tools:\n  airflow:\n{celery}    ingress: {{host: airflow.{env}.example.com}}\n\
             \x20 jupyterhub:\n    ingress: {{host: hub.{env}.example.com}}\n",
            5 + i % 5
        );
        let path = dir.join(format!("env/{env}.yaml"));
        std::fs::write(&path, overlay).unwrap_or_else(|e| io_fail(&path, e));
    }
    let config = dir.join("platform.yaml");
    std::fs::write(&config, text).unwrap_or_else(|e| io_fail(&config, e));
    config
}

fn io_fail(what: &Path, e: std::io::Error) -> ! {
    fail(&format!("{}: {e}", what.display()))
}

fn load_and_render(path: &Path) -> output::Tree {
    let envs = config::load(path, config::Selection::All).unwrap_or_else(|e| fail(&format!("{e}")));
    render::render_environments(&envs).unwrap_or_else(|e| fail(&format!("{e}")))
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
