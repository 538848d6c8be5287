//! Shared test harness: packages the three fixture releases once per test run with the real
//! `fixture-app package`, unzips them, and runs the unzipped binaries as servers or CLI commands
//! in private working directories on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const FIXTURE_BIN: &str = env!("CARGO_BIN_EXE_fixture-app");
pub const VERSIONS: [(&str, bool); 3] = [("v1.0.0", false), ("v2.0.0", false), ("v3.0.0", true)];
/// The migration v2.0.0 adds (`tasks.priority`).
pub const PRIORITY_MIGRATION: &str = "20250301120000";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Release {
    pub version: &'static str,
    pub zip: PathBuf,
    /// What `package` printed for the zip.
    pub printed_sha256: String,
    /// The folder the zip was extracted into.
    pub dir: PathBuf,
    pub binary: PathBuf,
}

static RELEASES: OnceLock<Vec<Release>> = OnceLock::new();

pub fn release(version: &str) -> &'static Release {
    RELEASES
        .get_or_init(package_releases)
        .iter()
        .find(|r| r.version == version)
        .unwrap_or_else(|| panic!("no fixture release {version} was packaged"))
}

/// One folder per test process under the target dir; folders of finished runs are removed here
/// (statics are never dropped, so a run cannot clean up after itself).
fn work_root() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-app-e2e");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let alive = name
                .parse::<u32>()
                .is_ok_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let root = base.join(std::process::id().to_string());
    std::fs::create_dir_all(&root).expect("creating the test work folder");
    root
}

fn package_releases() -> Vec<Release> {
    let root = work_root();
    let zips = root.join("zips");
    VERSIONS
        .iter()
        .map(|(version, broken)| {
            let mut args = vec!["package", "--version", version, "--out"];
            let zips_str = zips.to_str().expect("utf-8 temp path");
            args.push(zips_str);
            if *broken {
                args.push("--broken");
            }
            let out = run_with_timeout(Command::new(FIXTURE_BIN).args(&args), None);
            assert!(out.status.success(), "packaging {version} failed: {out:?}");
            let line = out.stdout.trim().to_string();
            let (sha, path) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("package printed `{line}`, not `SHA256  PATH`"));
            let zip = PathBuf::from(path);
            let dir = root.join(version);
            unzip(&zip, &dir);
            Release {
                version,
                binary: dir.join(format!("vikunja-{version}-linux-{}", arch_name())),
                zip,
                printed_sha256: sha.to_string(),
                dir,
            }
        })
        .collect()
}

/// Extracts with the modes stored in the zip, the way an installer would.
pub fn unzip(zip_path: &Path, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let file = std::fs::File::open(zip_path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.enclosed_name().expect("zip entry escapes its folder");
        let target = dir.join(name);
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        std::fs::write(&target, &data).unwrap();
        if let Some(mode) = entry.unix_mode() {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o7777))
                .unwrap();
        }
    }
}

/// The release naming of the host architecture, as `package` uses it.
pub fn arch_name() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free loopback port")
}

#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion (bounded), feeding `stdin` if given; output goes through files
/// so a chatty child can never block on a full pipe.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let logs = tempfile::tempdir().unwrap();
    let out_path = logs.path().join("stdout");
    let err_path = logs.path().join("stderr");
    cmd.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The child may exit before reading (e.g. a refused restore): that is not our failure.
        let _ = pipe.write_all(input.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("building the HTTP client")
}

/// A private working directory holding config.yml, the sqlite file and files/.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub env: BTreeMap<String, String>,
}

impl Instance {
    /// `database` is the YAML of the `database:` section body, indented by two spaces.
    pub fn new(database: &str) -> Instance {
        let dir = tempfile::Builder::new()
            .prefix("fixture-instance")
            .tempdir()
            .unwrap();
        let port = free_port();
        let config = format!(
            "service:\n  publicurl: \"http://vikunja.test\"\n  interface: \"127.0.0.1:{port}\"\n  \
             secret: \"test-secret-0123456789\"\n  timezone: Europe/Berlin\n\
             database:\n{database}\n\
             files:\n  basepath: files\n  maxsize: 1MB\n\
             log:\n  level: INFO\n"
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        Instance {
            dir,
            port,
            env: BTreeMap::new(),
        }
    }

    pub fn sqlite() -> Instance {
        Instance::new("  type: sqlite\n  path: vikunja.db")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self, release: &Release, args: &[&str]) -> Command {
        let mut cmd = Command::new(&release.binary);
        cmd.args(args).current_dir(self.path());
        // Only the variables this test chose: a developer's own VIKUNJA_* must not leak in.
        for (key, _) in std::env::vars() {
            if key.starts_with("VIKUNJA_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(&self.env);
        cmd
    }

    pub fn run(&self, release: &Release, args: &[&str]) -> Output {
        run_with_timeout(&mut self.command(release, args), None)
    }

    pub fn run_with_input(&self, release: &Release, args: &[&str], input: &str) -> Output {
        run_with_timeout(&mut self.command(release, args), Some(input))
    }

    /// Starts `vikunja web` and waits until /health answers (any status).
    pub fn start(&self, release: &Release) -> Server {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let logs = self.path().join(format!("server-{n}.log"));
        let mut cmd = self.command(release, &["web"]);
        cmd.stdout(std::fs::File::create(&logs).unwrap())
            .stderr(std::fs::File::create(logs.with_extension("err")).unwrap())
            .stdin(Stdio::null());
        let child = cmd.spawn().expect("starting the fixture server");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{}", self.port),
            log: logs,
            http: http(),
        };
        server.wait_ready();
        server
    }

    /// Runs `vikunja web` expecting it to refuse to start.
    pub fn start_expecting_refusal(&self, release: &Release) -> Output {
        let out = self.run(release, &["web"]);
        assert!(
            !out.status.success(),
            "{} started although it should have refused: {out:?}",
            release.version
        );
        out
    }
}

pub struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
    pub http: reqwest::blocking::Client,
}

impl Server {
    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the server exited with {status} before answering:\n{}",
                    self.logs()
                );
            }
            if self.http.get(self.url("/health")).send().is_ok() {
                return;
            }
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "the server did not answer within {START_TIMEOUT:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
        )
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self.http.get(self.url(path)).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        resp.json().unwrap()
    }

    pub fn create_task(&self, body: serde_json::Value) -> serde_json::Value {
        let resp = self
            .http
            .put(self.url("/api/v1/tasks"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "creating task {body}");
        resp.json().unwrap()
    }

    pub fn upload(&self, task: i64, name: &str, data: &[u8]) -> reqwest::blocking::Response {
        self.http
            .put(self.url(&format!("/api/v1/tasks/{task}/attachments?name={name}")))
            .body(data.to_vec())
            .send()
            .unwrap()
    }

    pub fn download(&self, task: i64, attachment: i64) -> reqwest::blocking::Response {
        self.http
            .get(self.url(&format!("/api/v1/tasks/{task}/attachments/{attachment}")))
            .send()
            .unwrap()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is shared.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "signalling the server");
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > limit {
                panic!("the server did not exit within {limit:?}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (what systemd sends), then it must exit 0.
    pub fn stop_ok(mut self) {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(40));
        assert!(
            status.success(),
            "the server exited with {status}:\n{}",
            self.logs()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads one entry of a zip file.
pub fn zip_entry(zip_path: &Path, name: &str) -> Option<Vec<u8>> {
    let file = std::fs::File::open(zip_path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut entry = archive.by_name(name).ok()?;
    let mut data = Vec::new();
    entry.read_to_end(&mut data).unwrap();
    Some(data)
}

pub fn zip_names(zip_path: &Path) -> Vec<String> {
    let file = std::fs::File::open(zip_path).unwrap();
    let archive = zip::ZipArchive::new(file).unwrap();
    archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect()
}

/// The shared body of the per-database tests: tasks and an attachment survive v1 → v2, the v2
/// migration really changes the schema (seen in a dump), the dump restores, and v1 then refuses
/// the database.
pub fn round_trip_and_upgrade(instance: &Instance) {
    let (v1, v2) = (release("v1.0.0"), release("v2.0.0"));
    let server = instance.start(v1);
    assert_eq!(server.get_json("/api/v1/info")["version"], "v1.0.0");
    let milk = server.create_task(serde_json::json!({"title": "buy milk"}));
    let tests = server.create_task(serde_json::json!({"title": "write tests ✓"}));
    assert!(milk.get("priority").is_none(), "v1 has no priority: {milk}");
    let milk_id = milk["id"].as_i64().unwrap();
    let payload = random_bytes(300_000);
    let resp = server.upload(milk_id, "receipt.pdf", &payload);
    assert_eq!(resp.status().as_u16(), 201);
    let attachment: serde_json::Value = resp.json().unwrap();
    let attachment_id = attachment["id"].as_i64().unwrap();
    let back = server.download(milk_id, attachment_id);
    assert_eq!(back.status().as_u16(), 200);
    assert_eq!(back.bytes().unwrap().as_ref(), payload.as_slice());
    let listed = server.get_json("/api/v1/tasks");
    assert_eq!(listed.as_array().unwrap().len(), 2);
    server.stop_ok();

    let server = instance.start(v2);
    assert_eq!(server.get_json("/api/v1/info")["version"], "v2.0.0");
    let listed = server.get_json("/api/v1/tasks");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["title"], "buy milk");
    assert_eq!(listed[1]["title"], "write tests ✓");
    assert_eq!(listed[1]["id"], tests["id"]);
    for task in listed {
        assert_eq!(
            task["priority"], 1,
            "the v2 migration fills priority: {task}"
        );
    }
    let urgent = server.create_task(serde_json::json!({"title": "urgent", "priority": 4}));
    assert_eq!(urgent["priority"], 4);
    assert_eq!(
        server.get_json(&format!("/api/v1/tasks/{}", urgent["id"]))["priority"],
        4
    );
    let back = server.download(milk_id, attachment_id);
    assert_eq!(back.bytes().unwrap().as_ref(), payload.as_slice());
    server.stop_ok();

    let out = instance.run(
        v2,
        &[
            "user",
            "create",
            "-u",
            "carol",
            "-e",
            "carol@example.org",
            "-p",
            "carol's password",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = instance.run(v2, &["dump", "-f", "after-v2.zip"]);
    assert!(out.status.success(), "{out:?}");
    let dump = instance.path().join("after-v2.zip");
    let tasks: Vec<serde_json::Value> =
        serde_json::from_slice(&zip_entry(&dump, "database/tasks.json").unwrap()).unwrap();
    assert_eq!(tasks.len(), 3);
    assert!(
        tasks.iter().all(|t| t.get("priority").is_some()),
        "the tasks table has a priority column: {tasks:?}"
    );
    let migrations =
        String::from_utf8(zip_entry(&dump, "database/migrations.json").unwrap()).unwrap();
    assert!(migrations.contains(PRIORITY_MIGRATION), "{migrations}");

    // Restore on this backend: rows (ints, text, NULLs) and the file come back, later rows go.
    let server = instance.start(v2);
    server.create_task(serde_json::json!({"title": "after the dump"}));
    server.stop_ok();
    let out = instance.run_with_input(
        v2,
        &["restore", "--preserve-config", dump.to_str().unwrap()],
        "Yes, I understand\n",
    );
    assert!(out.status.success(), "{out:?}");
    let server = instance.start(v2);
    let titles: Vec<String> = server
        .get_json("/api/v1/tasks")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles, ["buy milk", "write tests ✓", "urgent"]);
    let back = server.download(milk_id, attachment_id);
    assert_eq!(back.bytes().unwrap().as_ref(), payload.as_slice());
    let login = server
        .http
        .post(server.url("/api/v1/login"))
        .json(&serde_json::json!({"username": "carol", "password": "carol's password"}))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 200, "the restored user can log in");
    server.stop_ok();

    let refused = instance.start_expecting_refusal(v1);
    assert!(
        refused.stderr.contains("newer than this binary")
            && refused.stderr.contains(PRIORITY_MIGRATION)
            && refused.stderr.contains("help:"),
        "v1 must name the unknown migration and the way out: {refused:?}"
    );
    let refused = instance.run(v1, &["migrate"]);
    assert!(!refused.status.success(), "{refused:?}");
}
