//! Processes of the runtime test: each in a process group of its own (so a server and the
//! workers it forks stop together, by the group's id), as an unprivileged user when the test
//! runs as root (the containers run as non-root users), never inheriting the test's environment.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A user to run as: uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The test's own user.
pub fn me() -> User {
    let meta = std::fs::metadata("/proc/self").expect("/proc/self");
    User {
        uid: meta.uid(),
        gid: meta.gid(),
    }
}

/// `name`'s uid and gid, from /etc/passwd.
pub fn user_named(name: &str) -> Option<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| User {
            uid: f[2].parse().unwrap_or(u32::MAX),
            gid: f[3].parse().unwrap_or(u32::MAX),
        })
    })
}

/// Who runs a program that a container runs as a non-root user: the test's user, or `nobody`
/// (or `fallback`) when the test runs as root.
pub fn unprivileged(fallback: &str) -> User {
    let me = me();
    if me.uid != 0 {
        return me;
    }
    user_named(fallback)
        .or_else(|| user_named("nobody"))
        .expect("a user to run servers as (nobody)")
}

/// Gives `path` (and everything under it) to `user`, when the test is root.
pub fn give(path: &Path, user: User) {
    if me().uid != 0 || user.uid == 0 {
        return;
    }
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown -R {}", path.display());
}

/// A program to run: argv, a clean environment, a working directory and a user.
#[derive(Debug, Clone)]
pub struct Program {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub user: User,
}

impl Program {
    fn command(&self) -> Command {
        let mut argv: Vec<String> = Vec::new();
        if self.user != me() {
            argv.extend([
                "setpriv".to_owned(),
                format!("--reuid={}", self.user.uid),
                format!("--regid={}", self.user.gid),
                "--clear-groups".to_owned(),
            ]);
        }
        argv.extend(self.argv.iter().cloned());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }

    /// Runs it to the end (at most `timeout`), with its output.
    pub fn run(&self, timeout: Duration) -> Output {
        let dir = tempfile::tempdir().expect("tempdir");
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let mut child = self
            .command()
            .stdout(std::fs::File::create(&out).expect("out"))
            .stderr(std::fs::File::create(&err).expect("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.argv));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > timeout {
                stop_group(&mut child);
                panic!(
                    "{:?} did not finish in {timeout:?}; its output:\n{}{}",
                    self.argv,
                    std::fs::read_to_string(&out).unwrap_or_default(),
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        }
    }

    /// Starts it in the background, its output going to `log`.
    pub fn spawn(&self, log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("log");
        let child = self
            .command()
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.argv));
        Server {
            child,
            log: log.to_owned(),
        }
    }
}

/// A background process, stopped (with its process group) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub log: PathBuf,
}

impl Server {
    /// Panics with its log when it has exited.
    pub fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().expect("wait") {
            panic!("{what} exited ({status}):\n{}", self.log_text());
        }
    }

    /// The memory of its process group now: (processes, PSS summed, RSS summed), in bytes. PSS
    /// (`/proc/PID/smaps_rollup`) shares a page among the processes that map it, as the kernel
    /// charges a container's cgroup; where a process's smaps cannot be read, its RSS stands in.
    pub fn memory(&self) -> (usize, u64, u64) {
        let group = self.child.id().to_string();
        let kib = |text: &str, key: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.starts_with(key))?;
            line[key.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        };
        let (mut n, mut pss, mut rss) = (0, 0, 0);
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let dir = entry.path();
            let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            if rest.split_whitespace().nth(2) != Some(group.as_str()) {
                continue;
            }
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            let Some(r) = kib(&status, "VmRSS:") else {
                continue; // a zombie, or gone
            };
            let smaps = std::fs::read_to_string(dir.join("smaps_rollup")).unwrap_or_default();
            n += 1;
            rss += r * 1024;
            pss += kib(&smaps, "Pss:").unwrap_or(r) * 1024;
        }
        (n, pss, rss)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, at most `timeout`; panics with the log otherwise.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let started = Instant::now();
        loop {
            self.assert_running(what);
            if ready() {
                return;
            }
            if started.elapsed() > timeout {
                panic!("{what} not ready after {timeout:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// SIGTERM to the process group `child` leads (and SIGKILL if it is still there after 20 s);
/// returns once the group is gone and `child` reaped. The leader is reaped while waiting: a
/// zombie leader would keep the group alive to `kill -0`.
pub fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    signal("-TERM");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let _ = child.try_wait();
        if !signal("-0") {
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal("-KILL");
    let _ = child.wait();
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Output as text, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
