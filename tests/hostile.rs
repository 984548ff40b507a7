//! The hostile-input suite: input an attacker, or an unlucky user, would give mlplat. Each case
//! is a folder of `tests/hostile/`:
//!
//! - its files (a config, overlays, values files, a lock file), or a `generate` file naming the
//!   generator of `tests/hostile/generate.rs` for inputs too big to keep;
//! - `cmd`: mlplat's arguments (default `render -c platform.yaml -o out`);
//! - `fifos`: paths to make FIFOs at; `env`: more variables; `secrets`: more values that must
//!   never be printed; `exit`: the expected exit code (default 2).
//!
//! Every case runs in a fresh directory holding the planted secrets of `tests/hostile/planted/`
//! (a platform key, a git token, an OAuth secret, the variables of its `env`) and an `out/`
//! rendered from `planted/good.yaml`, which uses them all. The exact stderr is pinned in
//! `tests/cli/hostile-<case>.txt` (`MLPLAT_BLESS=1` rewrites them); `out/` must be exactly as it
//! was; and nothing printed, by the case's command or by every other command run on the same
//! input, may hold a planted value, a secret derived from the planted key, or a control
//! character.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "hostile/generate.rs"]
mod generate;

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn planted_dir() -> PathBuf {
    root().join("tests/hostile/planted")
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn env_file(path: &Path) -> Vec<(String, String)> {
    read_lines(path)
        .into_iter()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// Every value that must never be printed: the planted files and variables, and every secret
/// derived from the planted key for the good config (at generations 1 to 3).
fn planted_secrets() -> BTreeSet<String> {
    let dir = planted_dir();
    let mut out = BTreeSet::new();
    for f in ["mlplat.key", "token.txt", "oauth.txt"] {
        let text = std::fs::read_to_string(dir.join(f)).expect("planted file");
        out.insert(text.trim_end().to_owned());
    }
    for (_, v) in env_file(&dir.join("env")) {
        out.insert(v);
    }
    // The derived secrets: the good config, its admin password derived instead of read from
    // the environment (the tests cannot set variables), at several generations.
    let text = std::fs::read_to_string(dir.join("good.yaml"))
        .expect("good.yaml")
        .replace(
            "      adminPassword: {fromEnv: MLPLAT_TEST_PASSWORD}\n",
            "      defaultPermission: READ\n",
        );
    let mut loaded =
        mlplat::config::load_str(&dir.join("good.yaml"), &text).expect("the good config loads");
    for generation in 1..=3 {
        let r = mlplat::render::render_full(&loaded).expect("the good config renders");
        for name in r.derived.keys() {
            loaded
                .lock
                .secrets
                .generations
                .insert(name.clone(), generation + 1);
        }
        for (_, s) in r.derived {
            out.insert(s.expose().to_owned());
        }
    }
    out
}

/// A scratch directory with the planted files and `out/` rendered from the good config.
struct Workspace {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// Every run: its arguments and what it printed.
    printed: Vec<(String, Vec<u8>)>,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for e in std::fs::read_dir(planted_dir()).expect("planted") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name");
            if name != "env" {
                std::fs::copy(&p, dir.path().join(name)).expect("copy planted file");
            }
        }
        let mut ws = Workspace {
            dir,
            env: env_file(&planted_dir().join("env")),
            printed: Vec::new(),
        };
        let out = ws.run(&["render", "-c", "good.yaml", "-o", "out"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        ws
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&mut self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .env_remove("MLPLAT_SECRET_KEY")
            // Nothing may reach out: AWS to a closed port, Helm that is not there.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("AWS_ACCESS_KEY_ID", "hostile")
            .env("AWS_SECRET_ACCESS_KEY", "hostile")
            .env("AWS_REGION", "eu-west-1")
            .env("MLPLAT_HELM", "/nonexistent/helm")
            .env("RUST_BACKTRACE", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = output_within(cmd, &args.join(" "));
        let mut printed = out.stdout.clone();
        printed.extend_from_slice(&out.stderr);
        self.printed.push((args.join(" "), printed));
        out
    }

    /// Every entry under `out/` with its bytes (or type) and mode.
    fn snapshot(&self) -> BTreeMap<String, (Vec<u8>, u32)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.path("out")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read_dir") {
                let p = e.expect("entry").path();
                let meta = std::fs::symlink_metadata(&p).expect("metadata");
                let rel = p
                    .strip_prefix(self.dir.path())
                    .expect("prefix")
                    .display()
                    .to_string();
                if meta.is_dir() {
                    stack.push(p);
                } else if meta.is_file() {
                    out.insert(rel, (std::fs::read(&p).expect("read"), mode(&meta)));
                } else {
                    out.insert(rel, (b"(not a file)".to_vec(), mode(&meta)));
                }
            }
        }
        out
    }
}

/// Runs `cmd` to its end, or fails the test if it has not ended within a minute (killing it):
/// a wait on a FIFO, or any other unbounded work, is then a failure, not a hung test. A run
/// takes milliseconds; the minute is only for a machine under load.
fn output_within(mut cmd: Command, what: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mlplat");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(out) => out.expect("wait for mlplat"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("`mlplat {what}` did not finish within 60 s: it waits or works without bound");
        }
    }
}

#[cfg(unix)]
fn mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(_: &std::fs::Metadata) -> u32 {
    0
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("case dir") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if matches!(
            name.as_str(),
            "cmd" | "fifos" | "env" | "secrets" | "exit" | "generate"
        ) {
            continue;
        }
        if p.is_dir() {
            std::fs::create_dir_all(to.join(&name)).expect("mkdir");
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).expect("copy");
        }
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// What must never be printed, and the control characters a terminal acts on.
fn assert_nothing_leaked(ws: &Workspace, case: &str, secrets: &BTreeSet<String>) {
    for (run, printed) in &ws.printed {
        let printed = text(printed);
        for s in secrets {
            assert!(
                !printed.contains(s.as_str()),
                "{case}: `mlplat {run}` printed a secret ({}):\n{printed}",
                mlplat::encode::fingerprint(s.as_bytes())
            );
        }
        let bad: Vec<char> = printed
            .chars()
            .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
            .collect();
        assert!(
            bad.is_empty(),
            "{case}: `mlplat {run}` printed control characters {bad:?}:\n{printed}"
        );
    }
}

fn cases() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root().join("tests/hostile"))
        .expect("tests/hostile")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_string_lossy().into_owned();
            (p.is_dir() && name != "planted").then_some((name, p))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_hostile_case_is_refused_cleanly_and_leaks_nothing() {
    let bless = std::env::var_os("MLPLAT_BLESS").is_some();
    let planted = planted_secrets();
    assert!(planted.len() > 30, "{} planted secrets", planted.len());
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (case, dir) in &cases {
        let started = std::time::Instant::now();
        let mut ws = Workspace::new();
        copy_dir(dir, ws.dir.path());
        if let Some(generator) = read_lines(&dir.join("generate")).first() {
            generate::generate(generator, ws.dir.path());
        }
        for fifo in read_lines(&dir.join("fifos")) {
            mkfifo(&ws.path(&fifo));
        }
        ws.env.extend(env_file(&dir.join("env")));
        let mut secrets = planted.clone();
        secrets.extend(read_lines(&dir.join("secrets")));
        let cmd = read_lines(&dir.join("cmd"))
            .first()
            .cloned()
            .unwrap_or_else(|| "render -c platform.yaml -o out".to_owned());
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let exit: i32 = read_lines(&dir.join("exit"))
            .first()
            .map_or(2, |e| e.parse().expect("exit code"));

        let before = ws.snapshot();
        let out = ws.run(&args);
        let stderr = text(&out.stderr);
        let pinned = root().join(format!("tests/cli/hostile-{case}.txt"));
        if bless {
            std::fs::write(&pinned, &stderr).expect("bless");
        } else {
            let want = std::fs::read_to_string(&pinned).unwrap_or_default();
            if stderr != want {
                failures.push(format!(
                    "{case}: stderr differs from {}:\n--- got\n{stderr}--- want\n{want}",
                    pinned.display()
                ));
            }
        }
        if out.status.code() != Some(exit) {
            failures.push(format!(
                "{case}: exit {:?}, want {exit}:\n{stderr}",
                out.status.code()
            ));
        }
        if exit == 2 && !out.stdout.is_empty() {
            failures.push(format!("{case}: printed on stdout: {}", text(&out.stdout)));
        }
        if ws.snapshot() != before {
            failures.push(format!("{case}: out/ changed"));
        }

        // Every other command on the same input: no leak, and out/ still as it was.
        let config = args
            .windows(2)
            .find(|w| w[0] == "-c")
            .map_or("platform.yaml", |w| w[1]);
        let check = ws.run(&["render", "--check", "-c", config, "-o", "out"]);
        // The generated inputs test the bounds of reading: one more command is enough.
        let generated = dir.join("generate").exists();
        let mut others: Vec<Vec<&str>> = vec![
            vec!["diff", "-c", config, "-o", "out"],
            vec!["explain", "-c", config, "platform"],
            vec!["explain", "-c", config, "tools"],
            vec!["rotate", "-c", config, "--list"],
        ];
        if generated {
            others.clear();
        } else if check.status.code() == Some(2) {
            // The input is refused before anything is done: so is it by every command.
            others.extend([
                vec!["rotate", "-c", config, "airflow/fernet-key"],
                vec!["charts", "pull", "-c", config],
                vec!["plan", "-c", config],
                vec!["provision", "-c", config],
                vec!["destroy", "-c", config, "--yes"],
            ]);
        }
        for cmd in &others {
            ws.run(cmd);
        }
        if ws.snapshot() != before {
            failures.push(format!("{case}: out/ changed under the other commands"));
        }
        let leak = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_nothing_leaked(&ws, case, &secrets);
        }));
        eprintln!("{case}: {:?}", started.elapsed());
        if let Err(e) = leak {
            failures.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("{case}: leak")),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What mlplat prints when things go well, or when only `out/` is off: fingerprints and
/// names, never a value.
#[test]
fn the_good_paths_print_no_secret_either() {
    let planted = planted_secrets();
    let mut ws = Workspace::new();
    let ok = |o: &Output, code: i32, what: &str| {
        assert_eq!(o.status.code(), Some(code), "{what}: {}", text(&o.stderr));
    };
    ok(
        &ws.run(&["render", "-c", "good.yaml", "-o", "out"]),
        0,
        "again",
    );
    ok(
        &ws.run(&["render", "--check", "-c", "good.yaml", "-o", "out"]),
        0,
        "check",
    );
    ok(&ws.run(&["rotate", "-c", "good.yaml", "--list"]), 0, "list");
    ok(
        &ws.run(&["rotate", "-c", "good.yaml", "airflow/fernet-key"]),
        0,
        "rotate",
    );
    ok(
        &ws.run(&["render", "--check", "-c", "good.yaml", "-o", "out"]),
        1,
        "stale",
    );
    ok(
        &ws.run(&["diff", "-c", "good.yaml", "-o", "out"]),
        1,
        "diff",
    );
    // A planted value put into files of out/ by hand: named, never shown.
    let secrets = ws.path("out/airflow/secrets.yaml");
    let edited = std::fs::read_to_string(&secrets).expect("read") + "# edited\n";
    std::fs::write(&secrets, edited).expect("write");
    let values = ws.path("out/airflow/values.yaml");
    let token = std::fs::read_to_string(ws.path("token.txt")).expect("token");
    let edited = std::fs::read_to_string(&values).expect("read") + &format!("# {token}");
    std::fs::write(&values, edited).expect("write");
    ok(
        &ws.run(&["diff", "-c", "good.yaml", "-o", "out"]),
        1,
        "diff of hand edits",
    );
    ok(
        &ws.run(&["render", "--check", "-c", "good.yaml", "-o", "out"]),
        1,
        "check",
    );
    for key in [
        "secrets.key",
        "tools.airflow.dags.credentials",
        "tools.jupyterhub.auth.github",
        "tools.mlflow.auth.adminPassword",
        "tools",
    ] {
        ok(&ws.run(&["explain", "-c", "good.yaml", key]), 0, key);
    }
    ok(
        &ws.run(&["render", "-c", "good.yaml", "-o", "out"]),
        0,
        "render",
    );
    // Terminal escapes in arguments are shown escaped too.
    let escaped = ws.run(&["init", "--dir", "new", "--name", "x\u{1b}]0;pwned\u{7}"]);
    ok(&escaped, 2, "init --name");
    let escaped = ws.run(&["explain", "-c", "good.yaml", "tools.\u{1b}[2J"]);
    ok(&escaped, 2, "explain of an escape");
    assert_nothing_leaked(&ws, "good paths", &planted);
    let rotate = text(&ws.printed[4].1);
    assert!(
        rotate.contains("airflow/fernet-key: generation 1 → 2 (sha256:"),
        "{rotate}"
    );
}

/// An inline secret is shown by `explain` as a fingerprint only.
#[test]
fn explain_shows_an_inline_secret_as_its_fingerprint() {
    let mut ws = Workspace::new();
    std::fs::write(
        ws.path("inline.yaml"),
        "platform: hostile\ntools:\n  mlflow:\n    auth:\n      adminPassword: pw\"with\\\\escapes-8Kq\n",
    )
    .expect("write");
    let out = ws.run(&[
        "explain",
        "-c",
        "inline.yaml",
        "tools.mlflow.auth.adminPassword",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown
            .starts_with("tools.mlflow.auth.adminPassword = a secret written in the file (sha256:"),
        "{shown}"
    );
    assert!(!shown.contains("escapes-8Kq"), "{shown}");
}

/// Directories follow the discipline of files whatever the umask: nothing is writable by
/// others, Secret data is private.
#[cfg(unix)]
#[test]
fn a_permissive_umask_does_not_open_out() {
    let ws = Workspace::new();
    // Into a directory whose parents do not exist yet: they are made too, with the same mode.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000 && exec '{BIN}' render -c good.yaml -o made/for/fresh"
        ))
        .current_dir(ws.dir.path())
        .env_remove("MLPLAT_SECRET_KEY")
        .env("MLPLAT_TEST_PASSWORD", "planted-env-password-9Hs3Fq7Yp")
        .output()
        .expect("sh");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for parent in ["made", "made/for"] {
        let m = std::fs::metadata(ws.path(parent)).expect("meta");
        assert_eq!(mode(&m), 0o755, "{parent}");
    }
    let mut stack = vec![ws.path("made/for/fresh")];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        let m = std::fs::metadata(&dir).expect("meta");
        assert_eq!(mode(&m), 0o755, "{}", dir.display());
        for e in std::fs::read_dir(&dir).expect("ls") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("meta");
            if m.is_dir() {
                stack.push(p);
                continue;
            }
            seen += 1;
            let private = p
                .file_name()
                .is_some_and(|n| n == "secrets.yaml" || n == "helm-values.yaml");
            assert_eq!(
                mode(&m),
                if private { 0o600 } else { 0o644 },
                "{}",
                p.display()
            );
        }
    }
    assert!(seen > 10);
}
