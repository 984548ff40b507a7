//! The command-line surface, snapshotted: `mlplat --help` and the `--help` of every subcommand
//! it lists are compared with `tests/cli/help/<command>.txt`. A change to the surface is then a
//! reviewed diff. Regenerate with `MLPLAT_BLESS=1 cargo test --test help`.

use std::path::PathBuf;
use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mlplat"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run mlplat");
    assert_eq!(out.status.code(), Some(0), "{args:?} --help");
    String::from_utf8(out.stdout).expect("utf8")
}

/// The subcommands a help text lists in its "Commands:" block.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_help_text_matches_its_snapshot() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cli/help");
    let bless = std::env::var_os("MLPLAT_BLESS").is_some();
    let top = help(&[]);
    let commands = subcommands(&top);
    assert!(commands.len() >= 2, "{top}");
    let mut cases = vec![("mlplat".to_owned(), top)];
    for c in &commands {
        let text = help(&[c]);
        // And a command's own subcommands (`charts pull`), as `<command>-<subcommand>.txt`.
        for sub in subcommands(&text) {
            cases.push((format!("{c}-{sub}"), help(&[c, &sub])));
        }
        cases.push((c.clone(), text));
    }
    let mut stale = Vec::new();
    for (name, text) in &cases {
        let path = dir.join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(&path, text).expect("write snapshot");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "--help changed for {stale:?}: review, then MLPLAT_BLESS=1 cargo test --test help"
    );
    if !bless {
        let snapshots = std::fs::read_dir(&dir).expect("snapshots").count();
        assert_eq!(
            snapshots,
            cases.len(),
            "a snapshot of a command that is gone is left in {}",
            dir.display()
        );
    }
}
