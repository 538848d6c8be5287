//! `launch-tui connect` through the real binary against a local HTTPS server standing in for
//! the PVE API (a test CA, so its fingerprint is what connect must pin): it pins the certificate
//! as given, tests the token, saves CONFIG/connection.yaml (0600, the token file's path, never
//! the secret), and later commands use it with no connection flags. Refusals save nothing.

#[path = "support/https_server.rs"]
mod https_server;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use https_server::{HttpsServer, Reply};
use serde_json::json;

const TOKEN: &str = "root@pam!launch=8a6a0e0f-6c8b-4a57-9f1e-2f0c5b1d7e11";

fn pve() -> HttpsServer {
    HttpsServer::start(|req| {
        let token_ok = req.header("authorization") == Some(&format!("PVEAPIToken={TOKEN}"));
        if !token_ok {
            return Reply::empty(401);
        }
        match req.line().as_str() {
            "GET /version" => {
                Reply::data(json!({"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a"}))
            }
            "GET /nodes" => Reply::data(json!([{"node": "pve", "status": "online"}])),
            _ => Reply::pve_error(501, "not in this test", None),
        }
    })
}

fn launch(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_launch-tui"))
        .env("NO_COLOR", "1")
        .env("LAUNCH_CONFIG", config)
        .env("PATH", "/usr/bin:/bin")
        .env_remove("LAUNCH_HOST")
        .env_remove("LAUNCH_TOKEN_FILE")
        .env_remove("LAUNCH_FINGERPRINT")
        .env_remove("LAUNCH_PVE_TOKEN")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn token_file(dir: &Path, token: &str) -> std::path::PathBuf {
    let p = dir.join("pve.token");
    std::fs::write(&p, token).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn saves_the_connection_and_later_commands_need_no_flags() {
    let server = pve();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let token = token_file(tmp.path(), TOKEN);
    let host = format!("https://{}", server.host());
    let out = launch(
        &config,
        &[
            "connect",
            "--host",
            &host,
            "--token-file",
            token.to_str().unwrap(),
            "--fingerprint",
            server.fingerprint(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("connected to Proxmox VE 8.4.1"));

    let saved = config.join("connection.yaml");
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let yaml = std::fs::read_to_string(&saved).unwrap();
    assert!(!yaml.contains("8a6a0e0f"), "the secret leaked:\n{yaml}");
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(v["host"].as_str(), Some(host.as_str()));
    assert_eq!(v["fingerprint"].as_str(), Some(server.fingerprint()));
    assert_eq!(v["token_file"].as_str(), token.to_str());

    // A later command, no connection flags at all: it reaches the same API with the token.
    server.clear();
    let out = launch(&config, &["doctor"]);
    let reqs = server.requests();
    assert!(
        !reqs.is_empty(),
        "doctor did not use the saved connection: {}",
        text(&out)
    );
    assert_eq!(reqs[0].line(), "GET /version");

    // A --host given now wins over the saved one; --transport pvesh ignores it.
    let out = launch(&config, &["--transport", "pvesh", "doctor"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pvesh"),
        "{}",
        text(&out)
    );

    let out = launch(&config, &["connect", "--forget"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!saved.exists());
}

#[test]
fn refuses_a_wrong_fingerprint_and_saves_nothing() {
    let server = pve();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let token = token_file(tmp.path(), TOKEN);
    let wrong = ["AB"; 32].join(":");
    let out = launch(
        &config,
        &[
            "connect",
            "--host",
            &format!("https://{}", server.host()),
            "--token-file",
            token.to_str().unwrap(),
            "--fingerprint",
            &wrong,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(server.fingerprint()), "{err}");
    assert!(!config.join("connection.yaml").exists());
}

#[test]
fn without_a_fingerprint_or_terminal_it_shows_the_fingerprint_to_pin() {
    let server = pve();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let token = token_file(tmp.path(), TOKEN);
    let out = launch(
        &config,
        &[
            "connect",
            "--host",
            &format!("https://{}", server.host()),
            "--token-file",
            token.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("--fingerprint {}", server.fingerprint())),
        "{err}"
    );
    assert!(!config.join("connection.yaml").exists());
}

#[test]
fn refuses_a_token_the_node_rejects_and_a_missing_token_file() {
    let server = pve();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let bad = token_file(
        tmp.path(),
        "root@pam!launch=00000000-0000-0000-0000-000000000000",
    );
    let out = launch(
        &config,
        &[
            "connect",
            "--host",
            &format!("https://{}", server.host()),
            "--token-file",
            bad.to_str().unwrap(),
            "--fingerprint",
            server.fingerprint(),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication failed"),
        "{}",
        text(&out)
    );
    assert!(!config.join("connection.yaml").exists());

    let out = launch(
        &config,
        &["connect", "--host", &format!("https://{}", server.host())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"));
    assert!(!config.join("connection.yaml").exists());
}

/// On a real terminal (a tmux pane of this test's own), connect shows the fingerprint and asks;
/// answering yes saves it.
#[test]
fn on_a_terminal_it_shows_the_fingerprint_and_asks_to_pin_it() {
    use std::time::{Duration, Instant};
    let server = pve();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let token = token_file(tmp.path(), TOKEN);
    let socket = format!("launch-connect-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux (apt-get install tmux)");
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .output();
        }
    }
    let _kill = Kill(socket.clone());
    let command = format!(
        "env -u LAUNCH_HOST -u LAUNCH_FINGERPRINT NO_COLOR=1 LAUNCH_CONFIG='{}' '{}' connect --host https://{} --token-file '{}'; echo \"connect exited with $?\"; sleep 3600",
        config.display(),
        env!("CARGO_BIN_EXE_launch-tui"),
        server.host(),
        token.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "c",
        "-x",
        "120",
        "-y",
        "30",
        &command,
    ]);
    // Polls the pane for a proof that the step happened (bounded).
    let wait_for = |what: &str| {
        let start = Instant::now();
        loop {
            let screen = tmux(&["capture-pane", "-p", "-J", "-t", "c"]);
            if screen.contains(what) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "`{what}` did not appear:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let screen = wait_for("Pin this certificate?");
    assert!(screen.contains(server.fingerprint()), "{screen}");
    tmux(&["send-keys", "-t", "c", "-l", "y"]);
    tmux(&["send-keys", "-t", "c", "Enter"]);
    let screen = wait_for("connect exited with");
    assert!(screen.contains("connect exited with 0"), "{screen}");
    let yaml = std::fs::read_to_string(config.join("connection.yaml")).unwrap();
    assert!(yaml.contains(server.fingerprint()), "{yaml}");
}
