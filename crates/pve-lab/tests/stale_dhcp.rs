//! A lab whose `down` never ran (its test was killed) leaves its dnsmasq on the bridge, where
//! it answers the next lab's containers with a stale hosts file. `up` and `down` with the same
//! prefix must stop it, and no dnsmasq of another bridge. Needs root; prefix `plabz`,
//! 10.77.29.0/24 (no other suite uses them).

mod lab_harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab_harness::{bin, free_port, require_root, serial, stderr, stdout, CACHE};

const PREFIX: &str = "plabz";
const SUBNET: &str = "10.77.29.0/24";
const BRIDGE: &str = "plabzbr0";

/// Everything the test starts; dropping it kills the daemons and the decoy and runs `down`
/// for every state dir, even after a failed assertion.
struct Labs {
    states: Vec<tempfile::TempDir>,
    daemons: Vec<Child>,
    decoy: Option<Child>,
}

impl Labs {
    fn new() -> Labs {
        Labs {
            states: Vec::new(),
            daemons: Vec::new(),
            decoy: None,
        }
    }

    fn new_state(&mut self) -> PathBuf {
        let dir = tempfile::Builder::new()
            .prefix("pve-lab-stale-dhcp-")
            .tempdir()
            .expect("temp state dir");
        let path = dir.path().to_path_buf();
        self.states.push(dir);
        path
    }

    /// `pve-lab up --foreground` on a fresh state dir; returns (state dir, daemon index).
    fn up(&mut self) -> (PathBuf, usize) {
        let state = self.new_state();
        let log = std::fs::File::create(state.join("daemon.out")).expect("daemon log");
        let child = Command::new(bin())
            .arg("--state")
            .arg(&state)
            .args([
                "up",
                "--foreground",
                "--yes",
                "--port",
                &free_port().to_string(),
            ])
            .args(["--prefix", PREFIX, "--subnet", SUBNET, "--cache", CACHE])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn pve-lab up --foreground");
        self.daemons.push(child);
        (state, self.daemons.len() - 1)
    }

    /// The dnsmasq the lab in `state` started, once its pid file names a live one on the bridge.
    fn wait_dnsmasq(&mut self, state: &Path, daemon: usize) -> i32 {
        let pid_file = state.join("dhcp").join("dnsmasq.pid");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = self.daemons[daemon].try_wait() {
                panic!("pve-lab exited early ({st}):\n{}", daemon_log(state));
            }
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if let Some(pid) = pid.filter(|p| bridge_dnsmasqs().contains(p)) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "no dnsmasq on {BRIDGE} in {} after 60 s:\n{}",
                pid_file.display(),
                daemon_log(state)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as when the test process that ran the lab is killed: no `down`.
    fn kill_daemon(&mut self, daemon: usize) {
        let child = &mut self.daemons[daemon];
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM (the daemon stops its API), then `pve-lab down`.
    fn down(&mut self, state: &Path, daemon: usize) -> Output {
        let child = &mut self.daemons[daemon];
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        down(state)
    }
}

impl Drop for Labs {
    fn drop(&mut self) {
        for child in self.daemons.iter_mut().chain(self.decoy.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for state in &self.states {
            let out = down(state.path());
            if !out.status.success() {
                eprintln!(
                    "pve-lab down failed during cleanup:\n{}{}",
                    stdout(&out),
                    stderr(&out)
                );
            }
        }
    }
}

fn down(state: &Path) -> Output {
    Command::new(bin())
        .arg("--state")
        .arg(state)
        .args([
            "down", "--prefix", PREFIX, "--subnet", SUBNET, "--cache", CACHE,
        ])
        .output()
        .expect("run pve-lab down")
}

fn daemon_log(state: &Path) -> String {
    std::fs::read_to_string(state.join("daemon.out")).unwrap_or_default()
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every dnsmasq naming the lab's bridge, read from /proc independently of the runtime.
fn bridge_dnsmasqs() -> Vec<i32> {
    let iface = format!("--interface={BRIDGE}");
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| {
            let argv = cmdline(pid);
            argv.first().is_some_and(|a| a.ends_with("dnsmasq")) && argv.contains(&iface)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// A dnsmasq whose interface only starts with the bridge's name: nothing may stop it.
fn start_decoy(labs: &mut Labs) {
    let dir = labs.new_state();
    let decoy = Command::new("dnsmasq")
        .args(["--keep-in-foreground", "--conf-file=/dev/null", "--port=0"])
        .arg(format!("--interface={BRIDGE}x"))
        .arg("--bind-dynamic")
        .arg(format!("--pid-file={}", dir.join("decoy.pid").display()))
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the decoy dnsmasq");
    labs.decoy = Some(decoy);
    // Its pid file is the proof it is up (it reads its options before writing it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("decoy.pid").exists() {
        assert!(
            Instant::now() < deadline,
            "the decoy dnsmasq wrote no pid file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_decoy_alive(labs: &mut Labs) {
    let decoy = labs.decoy.as_mut().expect("decoy started");
    assert!(
        matches!(decoy.try_wait(), Ok(None)),
        "the decoy dnsmasq on {BRIDGE}x was stopped, but only {BRIDGE}'s may be"
    );
}

/// A lab on a fresh state dir, killed before `down`; returns its dnsmasq's pid, still running.
fn killed_lab(labs: &mut Labs) -> i32 {
    let (state, daemon) = labs.up();
    let pid = labs.wait_dnsmasq(&state, daemon);
    labs.kill_daemon(daemon);
    assert_eq!(
        bridge_dnsmasqs(),
        vec![pid],
        "the killed lab's dnsmasq should outlive it (that is the leftover under test)"
    );
    pid
}

fn setup() -> (std::sync::MutexGuard<'static, ()>, Labs) {
    require_root();
    let guard = serial();
    let mut labs = Labs::new();
    // An interrupted earlier run of this test may have left the prefix's network behind.
    let fresh = labs.new_state();
    let _ = down(&fresh);
    (guard, labs)
}

#[test]
fn up_stops_the_dnsmasq_a_killed_lab_left_on_its_bridge() {
    let (_serial, mut labs) = setup();
    start_decoy(&mut labs);
    let old = killed_lab(&mut labs);

    let (state, daemon) = labs.up();
    let new = labs.wait_dnsmasq(&state, daemon);
    assert_ne!(new, old);
    assert_eq!(
        bridge_dnsmasqs(),
        vec![new],
        "exactly the new lab's dnsmasq should serve {BRIDGE}"
    );
    let our_pid_file = format!(
        "--pid-file={}",
        state.join("dhcp").join("dnsmasq.pid").display()
    );
    assert!(cmdline(new).contains(&our_pid_file), "{:?}", cmdline(new));
    let log = daemon_log(&state);
    assert!(
        log.contains(&format!(
            "stopped a leftover dnsmasq (pid {old}) on bridge {BRIDGE}"
        )),
        "up should say it stopped the leftover dnsmasq:\n{log}"
    );
    assert_decoy_alive(&mut labs);

    let out = labs.down(&state, daemon);
    assert!(
        out.status.success(),
        "down failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(bridge_dnsmasqs(), Vec::<i32>::new(), "down left a dnsmasq");
    assert_decoy_alive(&mut labs);
}

#[test]
fn down_stops_the_dnsmasq_a_killed_lab_left_on_its_bridge() {
    let (_serial, mut labs) = setup();
    let old = killed_lab(&mut labs);

    // `down` on another state dir with the same prefix, as a harness cleaning up first does.
    let other = labs.new_state();
    let out = down(&other);
    assert!(
        out.status.success(),
        "down failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("stopped a leftover dnsmasq (pid {old})")),
        "{}",
        stderr(&out)
    );
    assert_eq!(bridge_dnsmasqs(), Vec::<i32>::new(), "down left a dnsmasq");
}
