//! Shared harness of the lab's integration tests: runs the real `pve-lab up --foreground` on a
//! free loopback port with a temporary state dir (prefix `plaba`, 10.77.2.0/24, the shared
//! template cache), talks to it as launch-tui will (token, pinned certificate), and always
//! kills the daemon and runs `pve-lab down` when dropped, even after a failed assertion.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const PREFIX: &str = "plaba";
pub const SUBNET: &str = "10.77.2.0/24";
pub const CACHE: &str = "/var/cache/pve-lab";
pub const TEMPLATE: &str = "debian-12-standard_12.7-1_amd64.tar.zst";

/// One lab at a time per test binary: they share the prefix and subnet.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the one-lab-at-a-time lock, for tests that run `pve-lab` without the harness.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local addr").port()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pve-lab"))
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the pve-lab integration tests need root (network namespaces, loop mounts, nspawn); CI runs them as root"
    );
}

pub struct Resp {
    pub status: u16,
    pub reason: String,
    pub body: Value,
    pub raw: String,
    pub elapsed: Duration,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.status, self.reason, self.raw)
    }
}

pub struct Lab {
    pub state: tempfile::TempDir,
    pub port: u16,
    pub token: String,
    pub fingerprint: String,
    child: Option<Child>,
    pub http: reqwest::blocking::Client,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    /// Starts a lab daemon; `delay_ms` is the failed-auth delay.
    pub fn start(delay_ms: u64) -> Lab {
        Lab::start_with(delay_ms, &[])
    }

    /// Same, with extra `up` arguments (e.g. `--pve 9`).
    pub fn start_with(delay_ms: u64, extra: &[&str]) -> Lab {
        require_root();
        let serial = serial();
        let state = tempfile::Builder::new()
            .prefix("pve-lab-test-")
            .tempdir()
            .expect("temp state dir");
        // A previous crashed run may have left the prefix's network behind.
        let _ = Command::new(bin())
            .arg("--state")
            .arg(state.path())
            .args(["down", "--prefix", PREFIX, "--subnet", SUBNET])
            .output();
        let port = free_port();
        let log = std::fs::File::create(state.path().join("daemon.out")).expect("daemon log");
        let child = Command::new(bin())
            .arg("--state")
            .arg(state.path())
            .args(["up", "--foreground", "--yes", "--port", &port.to_string()])
            .args(["--prefix", PREFIX, "--subnet", SUBNET, "--cache", CACHE])
            .args(["--auth-fail-delay-ms", &delay_ms.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn pve-lab up --foreground");
        let mut lab = Lab {
            state,
            port,
            token: String::new(),
            fingerprint: String::new(),
            child: Some(child),
            http: reqwest::blocking::Client::new(),
            _serial: serial,
        };
        lab.wait_ready();
        lab
    }

    pub fn path(&self) -> &Path {
        self.state.path()
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.path().join("daemon.out")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    panic!("pve-lab exited early ({st}):\n{}", self.daemon_log());
                }
            }
            let fp = std::fs::read_to_string(self.path().join("fingerprint")).unwrap_or_default();
            let tok = std::fs::read_to_string(self.path().join("token")).unwrap_or_default();
            if !fp.trim().is_empty() && !tok.trim().is_empty() {
                self.fingerprint = fp.trim().to_string();
                self.token = tok.trim().to_string();
                self.http =
                    pve_lab::tls::pinned_client(&self.fingerprint, Duration::from_secs(120))
                        .expect("pinned client");
                if let Ok(r) = self.try_call("GET", "/version", &[], Some(&self.token.clone())) {
                    if r.status == 200 {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "pve-lab did not answer within 60 s:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/api2/json{path}", self.port)
    }

    pub fn read_resp(resp: reqwest::blocking::Response, started: Instant) -> Resp {
        let status = resp.status().as_u16();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| resp.status().canonical_reason().map(str::to_string))
            .unwrap_or_default();
        let raw = resp.text().unwrap_or_default();
        Resp {
            status,
            reason,
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
            elapsed: started.elapsed(),
        }
    }

    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        token: Option<&str>,
    ) -> reqwest::Result<Resp> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m.clone(), self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", format!("PVEAPIToken={t}"));
        }
        req = if m == reqwest::Method::GET || m == reqwest::Method::DELETE {
            req.query(params)
        } else {
            req.form(params)
        };
        let started = Instant::now();
        Ok(Self::read_resp(req.send()?, started))
    }

    /// A call with the root token.
    pub fn call(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Resp {
        self.try_call(method, path, params, Some(&self.token))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.daemon_log()))
    }

    pub fn ok(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Value {
        let r = self.call(method, path, params);
        assert_eq!(r.status, 200, "{method} {path} {params:?}: {r:?}");
        r.body["data"].clone()
    }

    /// Waits for a task and returns its final status object.
    pub fn wait_task(&self, upid: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.ok("GET", &format!("/nodes/pve/tasks/{upid}/status"), &[]);
            if st["status"] == "stopped" {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "task {upid} still running after {timeout:?}; log: {}",
                self.task_log(upid)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn task_log(&self, upid: &str) -> String {
        let log = self.ok(
            "GET",
            &format!("/nodes/pve/tasks/{upid}/log"),
            &[("limit", "1000")],
        );
        log.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["t"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    /// Runs a task endpoint and asserts it ends with `OK`.
    pub fn task_ok(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        timeout: Duration,
    ) -> Value {
        let upid = self.ok(method, path, params);
        let upid = upid.as_str().expect("a UPID string").to_string();
        let st = self.wait_task(&upid, timeout);
        assert_eq!(
            st["exitstatus"],
            "OK",
            "{method} {path}: task failed: {st}\n{}",
            self.task_log(&upid)
        );
        st
    }

    /// `pve-lab --state STATE ARGS...`
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--state")
            .arg(self.path())
            .args(args)
            .output()
            .expect("run pve-lab")
    }

    /// The wrapper scripts `up` wrote, as launch-tui runs them from PATH.
    pub fn tool(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(self.path().join("bin").join(tool))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run STATE/bin/{tool}: {e}"))
    }

    /// Stops the daemon and runs `down`; returns down's output.
    pub fn down(&mut self) -> Output {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.cmd(&["down"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.down();
        if !out.status.success() {
            eprintln!(
                "pve-lab down failed during cleanup:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
