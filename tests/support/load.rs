//! The load of the update tests: `launch-load` (crates/loadgen) as a child process, from the
//! host through nginx to the container's address, bounded in time and count.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::lab::{text, workspace_bin};

/// A bounded run of `scenario` against `http://IP` (no update going on): 2 workers, at most
/// `max_requests`, a write every other request. Every request must succeed and more than
/// `min_writes` writes be acknowledged; they are listed in `written`. `auth` is the variable
/// the scenario's auth reads, and its value.
pub fn bounded_writes(
    ip: &str,
    scenario: &Path,
    auth: (&str, &str),
    first_worker: usize,
    max_requests: usize,
    min_writes: usize,
    written: &Path,
) {
    let out = Command::new(workspace_bin("launch-load"))
        .args(["--url", &format!("http://{ip}")])
        .arg("--scenario")
        .arg(scenario)
        .args(["--concurrency", "2", "--duration", "60"])
        .args(["--max-requests", &max_requests.to_string()])
        .args(["--write-every", "2", "--timeout", "40"])
        .args(["--first-worker", &first_worker.to_string()])
        .arg("--written")
        .arg(written)
        .env(auth.0, auth.1)
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("launch-load ({e}): {}", text(&out)));
    assert_eq!(summary["failed"], 0, "{summary}");
    let n = std::fs::read_to_string(written).unwrap().lines().count();
    assert!(n > min_writes, "only {n} writes acknowledged: {summary}");
}

/// Reads back, from `http://IP`, every write each file lists (`launch-load --verify`); none
/// may be missing. Returns how many were checked.
pub fn verify_writes(ip: &str, scenario: &Path, auth: (&str, &str), files: &[&Path]) -> u64 {
    let mut checked = 0;
    for f in files {
        let out = Command::new(workspace_bin("launch-load"))
            .args(["--url", &format!("http://{ip}")])
            .arg("--scenario")
            .arg(scenario)
            .arg("--verify")
            .arg(f)
            .env(auth.0, auth.1)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("launch-load --verify ({e}): {}", text(&out)));
        assert_eq!(
            v["missing"],
            0,
            "acknowledged writes of {} are gone: {v}",
            f.display()
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        checked += v["checked"].as_u64().unwrap();
    }
    checked
}

pub struct Load {
    child: Option<Child>,
    stop_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Load {
    /// Starts 4 workers against `http://IP`; they stop on `stop()`, or after 240 s at most.
    pub fn start(ip: &str) -> Load {
        Load::start_with(ip, &[])
    }

    /// `start` with more `launch-load` flags (`--keep-alive`; not the ones above).
    pub fn start_with(ip: &str, flags: &[&str]) -> Load {
        Load::start_with_env(ip, flags, &[])
    }

    /// `start_with` and environment for launch-load (a scenario's password, never in argv).
    pub fn start_with_env(ip: &str, flags: &[&str], env: &[(&str, &str)]) -> Load {
        let dir = tempfile::tempdir().unwrap();
        let stop_file = dir.path().join("stop");
        let child = Command::new(workspace_bin("launch-load"))
            .envs(env.iter().copied())
            .args(["--url", &format!("http://{ip}")])
            .args(["--concurrency", "4", "--duration", "240", "--pause-ms", "5"])
            // A write held by an update waits at nginx up to 30 s (the profile's maximum):
            // clients wait longer than that, as browsers do.
            .args(["--timeout", "40"])
            .args(flags)
            .arg("--stop-file")
            .arg(&stop_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let it reach a steady state before anything changes.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        Load {
            child: Some(child),
            stop_file,
            _dir: dir,
        }
    }

    /// Stops the load and returns its summary (printed for the test log).
    pub fn stop(mut self) -> serde_json::Value {
        std::fs::write(&self.stop_file, b"").unwrap();
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        let summary = String::from_utf8_lossy(&out.stderr);
        eprintln!("{}", summary.trim());
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "launch-load printed no summary ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                summary
            )
        })
    }
}

impl Drop for Load {
    /// A test that fails half-way must not leave its load running against the next test's lab
    /// (which reuses the same addresses).
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asserts a load saw no failed request, naming the first failures when it did.
pub fn assert_no_failures(what: &str, s: &serde_json::Value) {
    assert!(
        s["sent"].as_u64().unwrap_or(0) > 50,
        "{what}: the load barely ran: {s}"
    );
    assert_eq!(
        s["failed"].as_u64(),
        Some(0),
        "{what}: failed requests: {} {}",
        s["failures"],
        s["first_failures"]
    );
}
