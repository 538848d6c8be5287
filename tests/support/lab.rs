//! Harness for end-to-end tests: a real pve-lab (HTTPS API validated against the official
//! schema, real systemd-nspawn containers on the lab's own bridge), the fixture Vikunja releases
//! served over loopback, and the real `launch-tui` binary pointed at both.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Host-side names and subnet of the e2e lab; overridable so two checkouts can test at once.
pub fn prefix() -> String {
    std::env::var("LAUNCH_E2E_PREFIX").unwrap_or_else(|_| "plabe".into())
}

pub fn subnet() -> String {
    std::env::var("LAUNCH_E2E_SUBNET").unwrap_or_else(|_| "10.77.3.0/24".into())
}
pub const VERSIONS: &[(&str, bool)] = &[("v1.0.0", false), ("v2.0.0", false), ("v3.0.0", true)];

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("debug")
}

/// A workspace binary built by `cargo build --workspace` (scripts/test-all.sh does it first).
pub fn workspace_bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before these tests (scripts/test-all.sh does)",
        p.display()
    );
    p
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "end-to-end tests start real containers and must run as root (CI does)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running lab; `down` on drop, so no test leaves containers, links or tables behind.
pub struct Lab {
    pub state: tempfile::TempDir,
    pub port: u16,
}

impl Lab {
    pub fn start() -> Lab {
        require_root();
        let state = tempfile::Builder::new()
            .prefix("launch-e2e-lab")
            .tempdir_in("/var/tmp")
            .unwrap();
        let port = free_port();
        let out = Command::new(workspace_bin("pve-lab"))
            .arg("up")
            .arg("--state")
            .arg(state.path())
            .args(["--port", &port.to_string()])
            .args(["--prefix", &prefix(), "--subnet", &subnet()])
            .args(["--yes", "--auth-fail-delay-ms", "0"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pve-lab up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Lab { state, port }
    }

    pub fn path(&self) -> &Path {
        self.state.path()
    }

    pub fn fingerprint(&self) -> String {
        std::fs::read_to_string(self.path().join("fingerprint"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// The lab's `pct`, as launch-tui runs it.
    pub fn pct(&self, args: &[&str]) -> Output {
        Command::new(self.path().join("bin/pct"))
            .args(args)
            .output()
            .unwrap()
    }

    pub fn pct_ok(&self, args: &[&str]) -> String {
        let out = self.pct(args);
        assert!(
            out.status.success(),
            "pct {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pve-lab --state STATE ARGS...` (its pvesh, faults, nodes, SDN), which must succeed;
    /// returns its stdout.
    pub fn pve_lab_ok(&self, args: &[&str]) -> String {
        let out = Command::new(workspace_bin("pve-lab"))
            .arg("--state")
            .arg(self.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "pve-lab {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// VMIDs of the lab's containers (from its state, as `pct list` would).
    pub fn vmids(&self) -> Vec<u32> {
        let out = Command::new(workspace_bin("pve-lab"))
            .arg("--state")
            .arg(self.path())
            .args(["pvesh", "get", "/nodes/pve/lxc", "--output-format", "json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let mut ids: Vec<u32> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        c["vmid"]
                            .as_u64()
                            .or_else(|| c["vmid"].as_str().and_then(|s| s.parse().ok()))
                            .map(|n| n as u32)
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(workspace_bin("pve-lab"))
            .arg("--state")
            .arg(self.path())
            .arg("down")
            .output();
    }
}

/// The fixture releases (v1, v2, v3-broken), packaged like Vikunja's zips and served over
/// loopback by a small HTTP server of the test's own.
pub struct Releases {
    pub dir: tempfile::TempDir,
    pub base_url: String,
    pub requests: std::sync::Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl Releases {
    pub fn start() -> Releases {
        let dir = tempfile::tempdir().unwrap();
        for (v, broken) in VERSIONS {
            let mut cmd = Command::new(workspace_bin("fixture-app"));
            cmd.args(["package", "--version", v, "--out"])
                .arg(dir.path());
            if *broken {
                cmd.arg("--broken");
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "fixture package {v}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // What the fixture's "GitHub" says is upstream's newest release.
        std::fs::write(dir.path().join("latest.json"), r#"{"tag_name":"v2.1.0"}"#).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let root = dir.path().to_path_buf();
        let requests = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let app = axum::Router::new().route(
            "/{file}",
            axum::routing::get(
                move |axum::extract::Path(file): axum::extract::Path<String>| {
                    let root = root.clone();
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        match std::fs::read(root.join(&file)) {
                            Ok(b) if !file.contains('/') => (axum::http::StatusCode::OK, b),
                            _ => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                        }
                    }
                },
            ),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Releases {
            dir,
            base_url: format!("http://{addr}"),
            requests,
            _runtime: runtime,
        }
    }

    pub fn sha256(&self, version: &str) -> String {
        use sha2::Digest;
        let b = std::fs::read(self.dir.path().join(zip_name(version))).unwrap();
        hex::encode(sha2::Sha256::digest(b))
    }
}

pub fn zip_name(version: &str) -> String {
    format!("vikunja-{version}-linux-amd64-full.zip")
}

/// The built-in Vikunja profile with its releases replaced by the fixture's, served over
/// loopback: the same download-and-verify path, different bytes. `sha_override` pins a wrong
/// sum for one version (to test the failure path).
pub fn fixture_profile(rel: &Releases, sha_override: Option<(&str, &str)>) -> String {
    let real = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/vikunja/profile.yaml"),
    )
    .unwrap();
    // Upstream's "latest release" document, served by the same loopback server.
    let real = real.replace(
        "https://api.github.com/repos/go-vikunja/vikunja/releases/latest",
        &format!("{}/latest.json", rel.base_url),
    );
    let start = real.find("versions:\n").unwrap();
    let end = real.find("\nquestions:").unwrap();
    let mut versions = String::from("versions:\n");
    for (v, broken) in VERSIONS {
        let sha = match sha_override {
            Some((ov, sum)) if ov == *v => sum.to_string(),
            _ => rel.sha256(v),
        };
        versions.push_str(&format!(
            "  - version: {v}\n    channel: {channel}\n    artifacts:\n      amd64:\n        url: {base}/{zip}\n        sha256: {sha}\n        format: zip\n        binary: vikunja-{v}-linux-amd64\n",
            base = rel.base_url,
            zip = zip_name(v),
            // The broken build is offered, but never as the newest stable release.
            channel = if *broken { "unstable" } else { "stable" },
        ));
    }
    format!("{}{}{}", &real[..start], versions, &real[end..])
}

/// A config directory for launch-tui with the fixture profile installed as an override.
pub struct Config {
    pub dir: tempfile::TempDir,
}

impl Config {
    pub fn new(profile_yaml: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("profiles")).unwrap();
        std::fs::write(dir.path().join("profiles/vikunja.yaml"), profile_yaml).unwrap();
        Config { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// How launch-tui reaches the lab in these tests: the lab's `pvesh` as root on a node does
/// (the default on a real node, so the default here), or the HTTPS API with a pinned
/// fingerprint and a token. A file may prefer HTTPS (`prefer_transport`); CI runs those over
/// HTTPS and every other e2e file over pvesh. `LAUNCH_E2E_TRANSPORT=https|pvesh` runs every
/// file over one transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Https,
    Pvesh,
}

static PREFERRED_HTTPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes HTTPS this test binary's transport unless `LAUNCH_E2E_TRANSPORT` says otherwise.
pub fn prefer_transport(t: Transport) {
    PREFERRED_HTTPS.store(t == Transport::Https, Ordering::SeqCst);
}

pub fn transport() -> Transport {
    match std::env::var("LAUNCH_E2E_TRANSPORT").as_deref() {
        Ok("pvesh") => Transport::Pvesh,
        Ok("https") => Transport::Https,
        Err(_) if PREFERRED_HTTPS.load(Ordering::SeqCst) => Transport::Https,
        Err(_) => Transport::Pvesh,
        Ok(other) => panic!("LAUNCH_E2E_TRANSPORT={other}: use https or pvesh"),
    }
}

/// Runs the real launch-tui against the lab over `transport()` (pvesh by default).
pub fn launch(lab: &Lab, cfg: &Config, args: &[&str]) -> Output {
    launch_via(lab, cfg, transport(), args, &[])
}

/// `launch` over a chosen transport, with extra environment.
pub fn launch_via(
    lab: &Lab,
    cfg: &Config,
    via: Transport,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let bin = env!("CARGO_BIN_EXE_launch-tui");
    let mut cmd = Command::new(bin);
    cmd.env("PATH", lab.path_env())
        .env("NO_COLOR", "1")
        .env("LAUNCH_CONFIG", cfg.path())
        .env("LAUNCH_LOG_DIR", cfg.path().join("log"))
        .env("LAUNCH_CACHE_DIR", cfg.path().join("cache"))
        .env("LAUNCH_STATE_DIR", cfg.path().join("state"))
        .env_remove("LAUNCH_PVE_TOKEN")
        .env_remove("LAUNCH_HOST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    match via {
        Transport::Https => {
            cmd.args(["--host", &format!("https://127.0.0.1:{}", lab.port)])
                .args(["--fingerprint", &lab.fingerprint()])
                .arg("--token-file")
                .arg(lab.path().join("token"));
        }
        Transport::Pvesh => {
            cmd.args(["--transport", "pvesh"]);
        }
    }
    cmd.args(args).output().unwrap()
}

/// `status NAME --json` exits 0 and says the instance is healthy; its first line (the report).
pub fn healthy(lab: &Lab, cfg: &Config, name: &str) -> serde_json::Value {
    let out = launch(lab, cfg, &["status", name, "--json"]);
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("status --json ({e}): {}", text(&out)));
    assert_eq!(out.status.code(), Some(0), "status: {v:#}");
    assert_eq!(v["instances"][0]["healthy"], true, "{v:#}");
    v
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn http_get(url: &str) -> (u16, String) {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    match c.get(url).send() {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// PUTs a JSON body (the fixture app's task API); returns the status and the answer.
pub fn http_put_json(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap();
    let r = c.put(url).json(body).send().unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or_default())
}

/// PUTs raw bytes (the fixture app's attachment upload); returns the status and the answer.
pub fn http_put_bytes(url: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .unwrap();
    let r = c.put(url).body(body).send().unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or_default())
}

/// GETs raw bytes; status 0 when the request failed.
pub fn http_get_bytes(url: &str) -> (u16, Vec<u8>) {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .unwrap();
    match c.get(url).send() {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.bytes().map(|b| b.to_vec()).unwrap_or_default())
        }
        Err(_) => (0, Vec::new()),
    }
}

/// Installs the fixture Vikunja with these answers (YAML lines); returns the instance record.
pub fn install_with(lab: &Lab, cfg: &Config, file: &str, answers: &str) -> serde_yaml_ng::Value {
    let path = cfg.path().join(file);
    std::fs::write(&path, answers).unwrap();
    let out = launch(
        lab,
        cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "install: {}", text(&out));
    let name = answers
        .lines()
        .find_map(|l| l.strip_prefix("name: "))
        .unwrap_or("vikunja")
        .trim()
        .to_string();
    let rec = std::fs::read_to_string(cfg.path().join(format!("instances/{name}.yaml"))).unwrap();
    serde_yaml_ng::from_str(&rec).unwrap()
}

/// `launch` with extra environment (e.g. `LAUNCH_SYSTEMD_DIR` for the health timer's units).
pub fn launch_env(lab: &Lab, cfg: &Config, args: &[&str], env: &[(&str, &str)]) -> Output {
    launch_via(lab, cfg, transport(), args, env)
}
