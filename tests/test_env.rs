//! `scripts/test-env` on a machine whose Python refuses installs into itself: PEP 668's
//! `EXTERNALLY-MANAGED` (Debian 12's system Python), `PIP_REQUIRE_VIRTUALENV=1`, and a Python with
//! no pip at all (a venv made `--without-pip`). The script must make its own venv from it,
//! install there, reuse it on the next run, leave the Python it started from untouched, and name
//! the step that failed when one does.

use std::path::Path;
use std::process::{Command, Output};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-env")
}

/// A Python whose pip refuses to install anything: a venv without pip, under `dir`.
fn python_without_pip(dir: &Path) -> std::path::PathBuf {
    let base = dir.join("base");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&base)
        .output()
        .expect("run python3 -m venv");
    assert!(made.status.success(), "{made:?}");
    let python = base.join("bin/python3");
    let pip = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .output()
        .expect("run python");
    assert!(!pip.status.success(), "the base Python has no pip: {pip:?}");
    python
}

fn test_env(python: &Path, venv: &Path, requirements: &Path) -> Output {
    Command::new("bash")
        .arg(script())
        .env("MLPLAT_TEST_PYTHON", python)
        .env("MLPLAT_TEST_VENV", venv)
        .env("MLPLAT_TEST_REQUIREMENTS", requirements)
        .env("MLPLAT_TEST_RUNTIME", "0")
        // pip outside a venv refuses to run at all.
        .env("PIP_REQUIRE_VIRTUALENV", "1")
        .env("PIP_USER", "1")
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run scripts/test-env")
}

#[test]
fn the_test_venv_is_made_from_a_python_that_refuses_installs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = python_without_pip(dir.path());
    let venv = dir.path().join("venv");
    // `pip` is already in the new venv: satisfied without reaching an index.
    let requirements = dir.path().join("requirements.txt");
    std::fs::write(&requirements, "pip\n").expect("write");

    let first = test_env(&python, &venv, &requirements);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        venv.to_str().expect("utf-8"),
        "{stderr}"
    );
    assert!(stderr.contains("making the venv"), "{stderr}");
    assert!(venv.join("bin/python").is_file());
    assert!(venv.join(".mlplat-requirements").is_file());

    // Unchanged requirements: reused, nothing made or installed.
    let again = test_env(&python, &venv, &requirements);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(again.stderr.is_empty(), "{again:?}");

    // Changed requirements: installed again into the same venv.
    std::fs::write(&requirements, "pip\n# changed\n").expect("write");
    let changed = test_env(&python, &venv, &requirements);
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("installing"), "{stderr}");
    assert!(!stderr.contains("making the venv"), "{stderr}");

    // The Python it started from is as it was: still no pip.
    let pip = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .output()
        .expect("run python");
    assert!(!pip.status.success(), "{pip:?}");
}

#[test]
fn a_failed_install_names_the_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = python_without_pip(dir.path());
    let venv = dir.path().join("venv");
    let requirements = dir.path().join("requirements.txt");
    // A local path that does not exist: pip fails without reaching an index.
    std::fs::write(&requirements, "./no-such-package-dir\n").expect("write");
    let out = test_env(&python, &venv, &requirements);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("scripts/test-env: `pip install -r"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");

    let missing = test_env(&dir.path().join("no-python"), &venv, &requirements);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not on PATH"), "{stderr}");
}
