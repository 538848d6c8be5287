//! End to end: the install wizard's Default path, typed into the real `launch-tui` binary on a
//! real terminal (a tmux pane), against a real pve-lab; the app must then answer through nginx.
//!
//! Real: tmux's terminal, inquire's prompts in raw mode, the launch-tui binary and its HTTPS
//! client with a pinned certificate, the lab's schema-checked API and its nspawn containers.
//! Stood in: Proxmox VE (pve-lab) and the Vikunja release (the fixture app over loopback), as in
//! e2e_install.rs. Uses the same lab prefix as e2e_install: never run the two at once.

#[path = "support/lab.rs"]
mod lab;

use std::process::Command;
use std::time::{Duration, Instant};

use lab::{fixture_profile, http_get, Config, Lab, Releases};

/// A tmux server of this test's own (`-L`), killed on drop so no pane outlives the test.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything the pane showed, scrollback included.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", "wiz"])
    }

    /// Polls the pane until `text` appears (bounded); fails with the screen if launch-tui
    /// exits first or the time runs out.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                !screen.contains("launch-tui exited with"),
                "launch-tui exited before showing `{text}`:\n{screen}"
            );
            assert!(
                start.elapsed() < limit,
                "`{text}` did not appear within {limit:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "wiz"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "wiz", "-l", text]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn default_wizard_installs_a_working_app_through_a_real_terminal() {
    let tmux_ok = Command::new("tmux").arg("-V").output();
    assert!(
        tmux_ok.is_ok_and(|o| o.status.success()),
        "tmux is needed to drive the wizard on a real terminal: apt-get install tmux"
    );
    let lab = Lab::start();
    let rel = Releases::start();
    // The fixture's v3 is the broken release, offered as unstable: Default mode (the newest
    // stable) installs v2.
    let profile = fixture_profile(&rel, None);
    assert!(profile.contains("channel: unstable"), "{profile}");
    let cfg = Config::new(&profile);

    let bin = env!("CARGO_BIN_EXE_launch-tui");
    // The variables go on the command line through `env`: the pane's shell rebuilds PATH from
    // its startup files, so tmux's own `-e` would lose the lab's `pct`.
    let env = [
        ("PATH", lab.path_env()),
        ("NO_COLOR", "1".to_string()),
        ("LAUNCH_CONFIG", cfg.path().display().to_string()),
        (
            "LAUNCH_LOG_DIR",
            cfg.path().join("log").display().to_string(),
        ),
        (
            "LAUNCH_CACHE_DIR",
            cfg.path().join("cache").display().to_string(),
        ),
    ]
    .iter()
    .map(|(k, v)| shell_quote(&format!("{k}={v}")))
    .collect::<Vec<_>>()
    .join(" ");
    let command = format!(
        "env -u LAUNCH_PVE_TOKEN {env} {bin} --host {host} --fingerprint {fp} --token-file {token} install vikunja; echo \"launch-tui exited with $?\"; sleep 3600",
        bin = shell_quote(bin),
        host = shell_quote(&format!("https://127.0.0.1:{}", lab.port)),
        fp = shell_quote(&lab.fingerprint()),
        token = shell_quote(&lab.path().join("token").display().to_string()),
    );
    let tmux = Tmux {
        socket: format!("launch-wizard-{}", std::process::id()),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "wiz",
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);

    let prompt = Duration::from_secs(60);
    let t = Instant::now();
    let screen = tmux.wait_for("Advanced settings", prompt);
    assert!(screen.contains("Default settings") && screen.contains("Cancel"));
    tmux.keys(&["Enter"]);

    let screen = tmux.wait_for("Public URL", prompt);
    // The defaults are shown before anything is asked: next free ID, storage with free space.
    for want in ["CT ID", "GiB free", "IPv4 by DHCP", "sqlite", "v2.0.0"] {
        assert!(
            screen.contains(want),
            "`{want}` not in the summary:\n{screen}"
        );
    }
    // An invalid URL is refused at the prompt and asked again.
    tmux.type_text("not a url");
    tmux.keys(&["Enter"]);
    tmux.wait_for("not a URL", prompt);
    tmux.type_text("http://wizard.lab.example");
    tmux.keys(&["Enter"]);

    tmux.wait_for("Admin email", prompt);
    tmux.type_text("admin@lab.example");
    tmux.keys(&["Enter"]);

    tmux.wait_for("Create the container with these settings?", prompt);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Save these as my defaults for vikunja?", prompt);
    tmux.type_text("n");
    tmux.keys(&["Enter"]);
    eprintln!("wizard answered in {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let screen = tmux.wait_for("is running in CT", Duration::from_secs(300));
    eprintln!(
        "install after the wizard: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        screen.contains("Vikunja v2.0.0 is running in CT"),
        "{screen}"
    );
    assert!(
        !cfg.path().join("defaults/vikunja.yaml").exists(),
        "defaults were saved although the answer was no"
    );

    let record = std::fs::read_to_string(cfg.path().join("instances/vikunja.yaml"))
        .expect("the instance record is written");
    let record: serde_yaml_ng::Value = serde_yaml_ng::from_str(&record).expect("YAML");
    assert_eq!(
        record["settings"]["public_url"],
        "http://wizard.lab.example"
    );
    assert_eq!(record["settings"]["admin_email"], "admin@lab.example");
    let ip = record["container"]["ip"]
        .as_str()
        .expect("the record holds the container's IP")
        .to_string();
    let (status, body) = http_get(&format!("http://{ip}/"));
    assert_eq!(status, 200, "GET / through nginx at {ip}: {body}");
    let (status, info) = http_get(&format!("http://{ip}/api/v1/info"));
    assert_eq!(status, 200, "{info}");
    assert!(info.contains("v2.0.0"), "{info}");
}

#[test]
fn without_a_terminal_or_answers_it_says_how_to_install() {
    let cfg = tempfile::tempdir().expect("a temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_launch-tui"))
        .env("LAUNCH_CONFIG", cfg.path())
        .args(["install", "vikunja"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no terminal to run the wizard on"), "{err}");
    assert!(
        err.contains("help: ") && err.contains("--answers FILE --yes"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
