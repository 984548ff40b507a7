//! A PostgreSQL server of the test's own, from Debian's packages: `initdb` into a temporary
//! directory (as the `postgres` user when the test is root: initdb refuses root), listening on
//! a free 127.0.0.1 port, SCRAM for every TCP login, so that each role logs in with its password
//! as a pod would. With `tls`, it serves TLS (a throwaway self-signed certificate) and refuses
//! every TCP connection without it: a client that does not ask for TLS cannot log in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use super::proc::{Program, Server, User, free_port, give, me, text, user_named};

/// Debian's server binaries (`/usr/lib/postgresql/<major>/bin`), the newest major.
pub fn bindir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: the runtime test starts a \
             PostgreSQL server of its own; install Debian's package (`apt-get install -y postgresql`, \
             as .ci/run does) and run again"
        )
    })
}

/// A running server; stopped (by its process id) when dropped.
#[derive(Debug)]
pub struct Postgres {
    pub port: u16,
    pub tls: bool,
    dir: PathBuf,
    bin: PathBuf,
    user: User,
    /// Stopped, by its process id, when this is dropped.
    _server: Server,
}

impl Postgres {
    pub fn start(dir: &Path, tls: bool) -> Postgres {
        let bin = bindir();
        let user = if me().uid == 0 {
            user_named("postgres")
                .expect("the postgres user (Debian's postgresql package makes it)")
        } else {
            me()
        };
        std::fs::create_dir_all(dir).expect("mkdir");
        give(dir, user);
        let data = dir.join("data");
        let run = |argv: Vec<String>| -> Output {
            Program {
                argv,
                env: [(
                    "PATH".to_owned(),
                    format!("{}:/usr/bin:/bin", bin.display()),
                )]
                .into(),
                cwd: dir.to_owned(),
                user,
            }
            .run(Duration::from_secs(120))
        };
        let out = run(vec![
            bin.join("initdb").display().to_string(),
            "-D".into(),
            data.display().to_string(),
            "-U".into(),
            "postgres".into(),
            "--auth-local=trust".into(),
            "--auth-host=reject".into(),
            "-E".into(),
            "UTF8".into(),
            "--no-instructions".into(),
        ]);
        assert!(out.status.success(), "initdb failed:\n{}", text(&out));
        let hba = if tls {
            "local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n"
        } else {
            "local all postgres trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        };
        std::fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba");
        let port = free_port();
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\npassword_encryption = 'scram-sha-256'\nfsync = off\nlog_min_messages = warning\n",
            dir.display()
        );
        if tls {
            let out = run(vec![
                "openssl".into(),
                "req".into(),
                "-x509".into(),
                "-newkey".into(),
                "rsa:2048".into(),
                "-nodes".into(),
                "-subj".into(),
                "/CN=localhost".into(),
                "-days".into(),
                "2".into(),
                "-keyout".into(),
                data.join("server.key").display().to_string(),
                "-out".into(),
                data.join("server.crt").display().to_string(),
            ]);
            assert!(out.status.success(), "openssl req failed:\n{}", text(&out));
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        let auto = data.join("postgresql.auto.conf");
        std::fs::write(&auto, conf).expect("conf");
        give(&data, user);
        let mut server = Program {
            argv: vec![
                bin.join("postgres").display().to_string(),
                "-D".into(),
                data.display().to_string(),
            ],
            env: [(
                "PATH".to_owned(),
                format!("{}:/usr/bin:/bin", bin.display()),
            )]
            .into(),
            cwd: dir.to_owned(),
            user,
        }
        .spawn(&dir.join("postgres.log"));
        let socket = dir.to_owned();
        let isready = bin.join("pg_isready");
        server.wait_until("postgres", Duration::from_secs(60), || {
            std::process::Command::new(&isready)
                .arg("-q")
                .arg("-h")
                .arg(&socket)
                .arg("-p")
                .arg(port.to_string())
                .status()
                .is_ok_and(|s| s.success())
        });
        Postgres {
            port,
            tls,
            dir: dir.to_owned(),
            bin,
            user,
            _server: server,
        }
    }

    /// The directory of psql, pg_isready and the other client programs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Runs SQL as the superuser over the local socket (the test's own administration: what
    /// RDS or the postgres image's entrypoint would have done). `vars` become psql variables.
    pub fn admin(&self, sql: &str, vars: &[(&str, &str)]) -> String {
        let mut argv = vec![
            self.bin.join("psql").display().to_string(),
            "-X".into(),
            "-q".into(),
            "-At".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-h".into(),
            self.dir.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
            "-d".into(),
            "postgres".into(),
        ];
        // Values reach psql through the environment (`\getenv`), never the command line.
        let mut env = BTreeMap::new();
        let mut script = String::new();
        for (i, (k, v)) in vars.iter().enumerate() {
            env.insert(format!("MLPLAT_VAR_{i}"), (*v).to_owned());
            script.push_str(&format!("\\getenv {k} MLPLAT_VAR_{i}\n"));
        }
        script.push_str(sql);
        argv.push("-f".into());
        let file = self.dir.join(format!("admin-{}.sql", free_port()));
        std::fs::write(&file, script).expect("sql");
        give(&file, self.user);
        argv.push(file.display().to_string());
        let out = Program {
            argv,
            env,
            cwd: self.dir.clone(),
            user: self.user,
        }
        .run(Duration::from_secs(60));
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "psql as postgres failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Logs in over TCP as `user` with `password` into `database` (`sslmode` as a client of
    /// the config would ask), and runs `SELECT current_user`. Err: what psql said.
    pub fn login(
        &self,
        user: &str,
        password: &str,
        database: &str,
        sslmode: Option<&str>,
    ) -> Result<(), String> {
        let mut env: BTreeMap<String, String> = [
            ("PGHOST", "127.0.0.1".to_owned()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", user.to_owned()),
            ("PGPASSWORD", password.to_owned()),
            ("PGDATABASE", database.to_owned()),
            ("PGCONNECT_TIMEOUT", "10".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(mode) = sslmode {
            env.insert("PGSSLMODE".into(), mode.to_owned());
        }
        let out = Program {
            argv: vec![
                self.bin.join("psql").display().to_string(),
                "-X".into(),
                "-At".into(),
                "-c".into(),
                "SELECT current_user".into(),
            ],
            env,
            cwd: self.dir.clone(),
            user: me(),
        }
        .run(Duration::from_secs(60));
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == user {
            Ok(())
        } else {
            Err(text(&out).trim().to_owned())
        }
    }
}
