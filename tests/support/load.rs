//! The load of the update tests: `launch-load` (crates/loadgen) as a child process, from the
//! host through nginx to the container's address, bounded in time and count.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::lab::workspace_bin;

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
