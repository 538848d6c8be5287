//! A terminal for the TUI's end-to-end tests: a tmux server of the test's own, a plain shell in
//! its pane, and the waits on what the pane shows (a proof on the screen, never a sleep).
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use super::lab::{Config, Lab};

/// A tmux server of this test's own (`-L`), killed on drop so no pane outlives the test.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the pane shows now (the TUI's alternate screen while it runs).
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", "tui"])
    }

    /// Polls the pane until `want` appears; fails at once on `bad`, or when time runs out.
    pub fn wait_for(&self, want: &str, bad: &[&str], limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(want) {
                return screen;
            }
            for b in bad {
                assert!(
                    !screen.contains(b),
                    "`{b}` appeared while waiting for `{want}`:\n{screen}"
                );
            }
            assert!(
                start.elapsed() < limit,
                "`{want}` did not appear within {limit:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the TUI has exited and the shell has the terminal again: keys typed
    /// before that would reach the exiting TUI's reader instead of the shell.
    pub fn wait_for_shell(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let state = self.run(&[
                "display-message",
                "-p",
                "-t",
                "tui",
                "#{pane_current_command} #{alternate_on}",
            ]);
            if state.trim() == "bash 0" {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "the shell did not get the terminal back within {limit:?} ({}):\n{}",
                state.trim(),
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    pub fn type_text(&self, text: &str) {
        // `--`: text that starts with a dash is text, not an option.
        self.run(&["send-keys", "-t", "tui", "-l", "--", text]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn has_word(text: &str, word: &str) -> bool {
    text.split_whitespace().any(|w| w == word)
}

impl Tmux {
    /// A new server (named after `name` and this process) with a 120x40 pane running a plain
    /// shell: the TUI runs in it, and `stty` after it.
    pub fn start(name: &str) -> Tmux {
        let tmux_ok = Command::new("tmux").arg("-V").output();
        assert!(
            tmux_ok.is_ok_and(|o| o.status.success()),
            "tmux is needed to drive the TUI on a real terminal: apt-get install tmux"
        );
        let t = Tmux {
            socket: format!("{name}-{}", std::process::id()),
        };
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "tui",
            "-x",
            "120",
            "-y",
            "40",
            "env -i TERM=xterm-256color LANG=C.UTF-8 PATH=/usr/bin:/bin bash --norc --noprofile",
        ]);
        t
    }
}

/// The shell line that opens the dashboard (no subcommand: on a terminal that is the TUI)
/// against the lab, with the test's own config, state and log directories.
pub fn tui_command(lab: &Lab, cfg: &Config, bin: &str) -> String {
    let env = [
        ("PATH", lab.path_env()),
        ("NO_COLOR", "1".to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("LAUNCH_CONFIG", cfg.path().display().to_string()),
        (
            "LAUNCH_LOG_DIR",
            cfg.path().join("log").display().to_string(),
        ),
        (
            "LAUNCH_CACHE_DIR",
            cfg.path().join("cache").display().to_string(),
        ),
        (
            "LAUNCH_STATE_DIR",
            cfg.path().join("state").display().to_string(),
        ),
    ]
    .iter()
    .map(|(k, v)| shell_quote(&format!("{k}={v}")))
    .collect::<Vec<_>>()
    .join(" ");
    format!(
        "env -u LAUNCH_PVE_TOKEN {env} {bin} --host {host} --fingerprint {fp} --token-file {token}",
        bin = shell_quote(bin),
        host = shell_quote(&format!("https://127.0.0.1:{}", lab.port)),
        fp = shell_quote(&lab.fingerprint()),
        token = shell_quote(&lab.path().join("token").display().to_string()),
    )
}
