//! Throwaway PostgreSQL and MariaDB servers from Debian's packages, in a temp dir on a free
//! loopback port, each with a `vikunja` account that has a real password. Dropping one stops it.
//! Missing server binaries fail the test loudly: CI installs `postgresql` and `mariadb-server`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{free_port, run_with_timeout};

pub const DB_USER: &str = "vikunja";
pub const DB_NAME: &str = "vikunja";

fn random_password() -> String {
    crate::harness::sha256_hex(&crate::harness::random_bytes(32))[..24].to_string()
}

fn must_exist(path: &Path, package: &str) {
    assert!(
        path.exists(),
        "{} is missing: install it with `apt-get install -y {package}`",
        path.display()
    );
}

fn uid_gid(user: &str) -> (u32, u32) {
    let name = std::ffi::CString::new(user).unwrap();
    // SAFETY: getpwnam reads a static record; we copy the two ids out before any other call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !entry.is_null(),
        "there is no `{user}` OS user: install the `postgresql` package"
    );
    // SAFETY: checked non-null above.
    unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
}

pub struct Postgres {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    pub port: u16,
    pub password: String,
}

impl Postgres {
    fn bin_dir() -> PathBuf {
        let root = Path::new("/usr/lib/postgresql");
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; install it with `apt-get install -y postgresql`",
                    root.display()
                )
            })
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .filter(|(_, bin)| bin.join("initdb").exists())
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|(_, bin)| bin)
            .unwrap_or_else(|| panic!("no /usr/lib/postgresql/*/bin/initdb: install `postgresql`"))
    }

    pub fn start() -> Postgres {
        let bin = Self::bin_dir();
        let (initdb, pg_ctl) = (bin.join("initdb"), bin.join("pg_ctl"));
        must_exist(&initdb, "postgresql");
        must_exist(&pg_ctl, "postgresql");
        let dir = tempfile::Builder::new().prefix("fx-pg").tempdir().unwrap();
        let (uid, gid) = uid_gid("postgres");
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let superuser_password = random_password();
        let pwfile = dir.path().join("superuser-password");
        std::fs::write(&pwfile, &superuser_password).unwrap();
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();

        let data = dir.path().join("data");
        let out = run_with_timeout(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&initdb)
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "-A",
                    "scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
            None,
        );
        assert!(out.status.success(), "initdb failed: {out:?}");

        let port = free_port();
        let server = Postgres {
            pg_ctl,
            port,
            password: random_password(),
            dir,
        };
        let out = run_with_timeout(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&server.pg_ctl)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                    server.dir.path().display()
                ))
                .arg("start"),
            None,
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {out:?}\n{}",
            std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default()
        );

        let mut admin = postgres::Config::new()
            .host("127.0.0.1")
            .port(port)
            .user("postgres")
            .password(&superuser_password)
            .dbname("postgres")
            .connect(postgres::NoTls)
            .expect("connecting as the superuser");
        // The password is random hex, so splicing it into the statement is safe.
        // Two round trips: CREATE DATABASE refuses to run inside a multi-statement batch.
        for statement in [
            format!("CREATE ROLE {DB_USER} LOGIN PASSWORD '{}'", server.password),
            format!("CREATE DATABASE {DB_NAME} OWNER {DB_USER}"),
        ] {
            admin
                .batch_execute(&statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        server
    }

    /// The `database:` section; the password is left to VIKUNJA_DATABASE_PASSWORD.
    pub fn database_yaml(&self) -> String {
        format!(
            "  type: postgres\n  host: \"127.0.0.1:{}\"\n  user: {DB_USER}\n  database: {DB_NAME}",
            self.port
        )
    }
}

impl Postgres {
    /// Stops the server now (also what dropping it does; a second stop is harmless).
    pub fn stop(&self) {
        let _ = run_with_timeout(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&self.pg_ctl)
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "-t", "30", "stop"]),
            None,
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct MariaDb {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    pub password: String,
}

impl MariaDb {
    pub fn start() -> MariaDb {
        let install = Path::new("/usr/bin/mariadb-install-db");
        let mariadbd = Path::new("/usr/sbin/mariadbd");
        must_exist(install, "mariadb-server");
        must_exist(mariadbd, "mariadb-server");
        let dir = tempfile::Builder::new()
            .prefix("fx-maria")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let out = run_with_timeout(
            Command::new(install)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ]),
            None,
        );
        assert!(out.status.success(), "mariadb-install-db failed: {out:?}");

        let port = free_port();
        let socket = dir.path().join("mysqld.sock");
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--port={port}"))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting mariadbd");
        let mut server = MariaDb {
            dir,
            child,
            port,
            password: random_password(),
        };

        let admin_opts = mysql::OptsBuilder::new()
            .socket(Some(socket.to_str().unwrap()))
            .user(Some("root"));
        let started = Instant::now();
        let mut admin = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("mariadbd exited with {status}:\n{}", server.log());
            }
            match mysql::Conn::new(admin_opts.clone()) {
                Ok(conn) => break conn,
                Err(err) if started.elapsed() > Duration::from_secs(60) => {
                    panic!(
                        "mariadbd did not accept connections in 60 s ({err}):\n{}",
                        server.log()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        use mysql::prelude::Queryable;
        for statement in [
            format!("CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"),
            format!(
                "CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{}'",
                server.password
            ),
            format!("GRANT ALL PRIVILEGES ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1'"),
        ] {
            admin
                .query_drop(&statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn database_yaml(&self) -> String {
        format!(
            "  type: mysql\n  host: \"127.0.0.1:{}\"\n  user: {DB_USER}\n  database: {DB_NAME}",
            self.port
        )
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let started = Instant::now();
            while let Ok(None) = self.child.try_wait() {
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.wait();
        }
    }
}
