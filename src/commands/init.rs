//! `mlplat init`: a commented starter config and a fresh platform secret key (0600, and
//! git-ignored), so a new platform renders at once.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};

use super::Outcome;
use crate::cli::InitArgs;
use crate::config::KEY_FILE;

const STARTER: &str = include_str!("../../templates/init/platform.yaml");

pub fn run(args: &InitArgs) -> anyhow::Result<Outcome> {
    let name_ok = {
        let n = args.name.as_bytes();
        !n.is_empty()
            && n.len() <= 32
            && n[0].is_ascii_lowercase()
            && n.iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && !args.name.ends_with('-')
    };
    if !name_ok {
        bail!(
            "--name {:?} is not a DNS label: lowercase letters, digits and '-', starting with a letter",
            args.name
        );
    }
    fs_err::create_dir_all(&args.dir)?;
    let config = args.dir.join("platform.yaml");
    if config.exists() && !args.force {
        bail!(
            "{} already exists: pass --force to replace it",
            config.display()
        );
    }
    let key = args.dir.join(KEY_FILE);
    let key_written = if key.exists() {
        false
    } else {
        write_key(&key)?;
        true
    };
    fs_err::write(&config, STARTER.replace("{{ name }}", &args.name))?;
    ignore_key(&args.dir)?;
    eprintln!("mlplat: wrote {}", config.display());
    if key_written {
        eprintln!(
            "mlplat: wrote {} (0600, git-ignored): every secret is derived from it, keep it safe",
            key.display()
        );
    } else {
        eprintln!("mlplat: kept the existing {}", key.display());
    }
    Ok(Outcome::Clean)
}

/// 32 random bytes from the operating system, as 64 hex digits, in a file only its owner reads.
fn write_key(path: &Path) -> anyhow::Result<()> {
    let mut bytes = [0u8; 32];
    fs_err::File::open("/dev/urandom")?
        .read_exact(&mut bytes)
        .context("reading random bytes for the key")?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = fs_err::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    writeln!(f, "{hex}")?;
    Ok(())
}

/// Adds the key file to `.gitignore` beside it, once.
fn ignore_key(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(".gitignore");
    let existing = match fs_err::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    if existing
        .lines()
        .any(|l| l.trim() == KEY_FILE || l.trim() == format!("/{KEY_FILE}"))
    {
        return Ok(());
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "# the platform secret key: never commit it\n/{KEY_FILE}\n"
    ));
    fs_err::write(&path, text)?;
    Ok(())
}
