//! The pre-commit hook of `.pre-commit-hooks.yaml`, used as a project would use it: in a
//! throwaway git repository whose `.pre-commit-config.yaml` points at a copy of this
//! repository's hook file, `git commit` fails while `out/` is stale and passes once it is
//! rendered again. Needs `pre-commit` on PATH (`tests/requirements.txt`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mlplat");

fn run(dir: &Path, program: &str, args: &[&str], home: &Path) -> Output {
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    Command::new(program)
        .current_dir(dir)
        .args(args)
        .env("PATH", path)
        .env("PRE_COMMIT_HOME", home)
        .env("GIT_AUTHOR_NAME", "mlplat test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "mlplat test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env_remove("MLPLAT_SECRET_KEY")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (pre-commit: pip install -r tests/requirements.txt)")
        })
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git_init(dir: &Path, home: &Path) {
    ok(
        &run(dir, "git", &["init", "-q", "-b", "main"], home),
        "git init",
    );
}

#[test]
fn the_hook_fails_a_commit_on_a_stale_out_and_passes_a_current_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("pre-commit-home");

    // The hook repository: this repository's hook file, committed.
    let hooks: PathBuf = tmp.path().join("hooks");
    std::fs::create_dir(&hooks).expect("mkdir");
    git_init(&hooks, &home);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
        hooks.join(".pre-commit-hooks.yaml"),
    )
    .expect("copy hook file");
    ok(&run(&hooks, "git", &["add", "."], &home), "git add");
    ok(
        &run(&hooks, "git", &["commit", "-q", "-m", "hooks"], &home),
        "git commit",
    );
    let rev = run(&hooks, "git", &["rev-parse", "HEAD"], &home);
    let rev = String::from_utf8_lossy(&rev.stdout).trim().to_owned();

    // The project: a platform config, its rendered out/, and the hook.
    let project = tmp.path().join("project");
    std::fs::create_dir(&project).expect("mkdir");
    git_init(&project, &home);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for f in ["local.yaml", "example.key", "example-git-token"] {
        std::fs::copy(examples.join(f), project.join(f)).expect("copy example");
    }
    std::fs::write(
        project.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: mlplat-render-check\n        args: [-c, local.yaml, -o, out]\n",
            hooks.display()
        ),
    )
    .expect("write .pre-commit-config.yaml");
    ok(
        &run(
            &project,
            "mlplat",
            &["render", "-c", "local.yaml", "-o", "out"],
            &home,
        ),
        "mlplat render",
    );
    ok(
        &run(&project, "pre-commit", &["install"], &home),
        "pre-commit install",
    );
    ok(&run(&project, "git", &["add", "."], &home), "git add");
    ok(
        &run(&project, "git", &["commit", "-q", "-m", "platform"], &home),
        "a commit with a current out/",
    );

    // A config change without a render: the commit is refused, and says why.
    let config = std::fs::read_to_string(project.join("local.yaml")).expect("read");
    std::fs::write(
        project.join("local.yaml"),
        config.replace("mlflow.mlops.example.com", "tracking.mlops.example.com"),
    )
    .expect("write");
    ok(
        &run(&project, "git", &["add", "local.yaml"], &home),
        "git add",
    );
    let stale = run(&project, "git", &["commit", "-q", "-m", "new host"], &home);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&stale.stdout),
        String::from_utf8_lossy(&stale.stderr)
    );
    assert!(
        !stale.status.success(),
        "a stale out/ was committed:\n{said}"
    );
    assert!(said.contains("out is stale"), "{said}");
    assert!(said.contains("changed: mlflow/configmap.yaml"), "{said}");

    // Rendered again: the commit goes through.
    ok(
        &run(
            &project,
            "mlplat",
            &["render", "-c", "local.yaml", "-o", "out"],
            &home,
        ),
        "mlplat render",
    );
    ok(&run(&project, "git", &["add", "."], &home), "git add");
    ok(
        &run(&project, "git", &["commit", "-q", "-m", "new host"], &home),
        "a commit with a re-rendered out/",
    );
}
