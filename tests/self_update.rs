//! `launch-tui self-update` through the real binary (a copy in a temporary directory, so it
//! replaces that copy), against signed dists made by scripts/release.sh with fake binaries and
//! a throwaway minisign key, served over HTTPS with a test CA: check, update keeping the
//! previous binary, refusals (checksum, signature, missing release, downgrade) leaving the
//! binary untouched, a named downgrade, and rollback.

#[path = "support/dist.rs"]
mod dist;
#[path = "support/https_server.rs"]
mod https_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use dist::{Dists, Mirror, Tamper};
use https_server::HttpsServer;

const NEW: &str = "0.2.0";
const OLD: &str = "0.0.9";
const THIS: &str = env!("CARGO_PKG_VERSION");

struct Fixture {
    dists: Arc<Dists>,
    server: HttpsServer,
    ca: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dists = Arc::new(Dists::build(&[NEW, OLD]));
        let m = |name, latest, tamper| Mirror {
            name,
            latest,
            tamper,
        };
        let server = dist::serve(
            dists.clone(),
            vec![
                m("good", NEW, Tamper::None),
                m("old", OLD, Tamper::None),
                m("badsum", NEW, Tamper::Checksum),
                m("badsig", NEW, Tamper::Signature),
            ],
            std::net::Ipv4Addr::LOCALHOST,
        );
        let ca = dist::write_ca(&server, dists.dir.path());
        Fixture { dists, server, ca }
    })
}

/// A copy of the real launch-tui in its own directory, with its own state directory.
struct Installed {
    dir: tempfile::TempDir,
}

impl Installed {
    fn new() -> Installed {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_launch-tui"),
            dir.path().join("bin/launch-tui"),
        )
        .unwrap();
        Installed { dir }
    }

    fn binary(&self) -> PathBuf {
        self.dir.path().join("bin/launch-tui")
    }

    fn previous(&self) -> PathBuf {
        self.dir.path().join("bin/launch-tui.previous")
    }

    fn run(&self, mirror: &str, args: &[&str]) -> Output {
        let f = fixture();
        Command::new(self.binary())
            .arg("self-update")
            .args(args)
            .env("NO_COLOR", "1")
            .env("LAUNCH_DOWNLOAD_URL", dist::base_url(&f.server, mirror))
            .env("LAUNCH_CA_FILE", &f.ca)
            .env("LAUNCH_RELEASE_PUBKEY", &f.dists.pubkey)
            .env("LAUNCH_STATE_DIR", self.dir.path().join("state"))
            .env("LAUNCH_CONFIG", self.dir.path().join("config"))
            .output()
            .unwrap()
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path().join("bin"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn is_untouched(&self) -> bool {
        std::fs::read(self.binary()).unwrap()
            == std::fs::read(env!("CARGO_BIN_EXE_launch-tui")).unwrap()
            && self.files() == ["launch-tui"]
    }
}

fn version_of(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_reports_a_newer_release_and_changes_nothing() {
    let i = Installed::new();
    let out = i.run("good", &["--check"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("launch-tui {NEW} is available (this is {THIS})")),
        "{}",
        text(&out)
    );
    // The mirror's own key is announced on every run.
    assert!(String::from_utf8_lossy(&out.stderr).contains("another key than Launch's"));
    assert!(i.is_untouched());
    // Remembered for `status`, which never asks the network itself.
    let seen = std::fs::read_to_string(i.dir.path().join("state/launch-release.yaml")).unwrap();
    assert!(seen.contains(NEW), "{seen}");

    let json = i.run("good", &["--check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["action"], "checked");
    assert_eq!(v["release"], NEW);
}

#[test]
fn update_replaces_the_binary_and_keeps_the_previous() {
    let i = Installed::new();
    let out = i.run("good", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("updated launch-tui {THIS} -> {NEW}")),
        "{}",
        text(&out)
    );
    assert_eq!(version_of(&i.binary()), format!("launch-tui {NEW}"));
    assert_eq!(
        std::fs::read(i.previous()).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_launch-tui")).unwrap()
    );
    assert_eq!(i.files(), ["launch-tui", "launch-tui.previous"]);
}

#[test]
fn refuses_a_checksum_mismatch() {
    let i = Installed::new();
    let out = i.run("badsum", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("checksum mismatch for launch-tui-x86_64-linux.tar.gz"),
        "{}",
        text(&out)
    );
    assert!(i.is_untouched(), "{:?}", i.files());
}

#[test]
fn refuses_a_bad_signature() {
    let i = Installed::new();
    let out = i.run("badsig", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad signature: SHA256SUMS is not signed"),
        "{}",
        text(&out)
    );
    assert!(i.is_untouched());

    // The embedded key (no override) refuses the test key's signature too.
    let f = fixture();
    let out = Command::new(i.binary())
        .args(["self-update", "--check"])
        .env("LAUNCH_DOWNLOAD_URL", dist::base_url(&f.server, "good"))
        .env("LAUNCH_CA_FILE", &f.ca)
        .env_remove("LAUNCH_RELEASE_PUBKEY")
        .env("LAUNCH_STATE_DIR", i.dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad signature"));
}

#[test]
fn refuses_a_missing_release() {
    let i = Installed::new();
    let out = i.run("good", &["--version", "7.7.7"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("download failed")
            && err.contains("/download/v7.7.7/SHA256SUMS")
            && err.contains("404"),
        "{err}"
    );
    assert!(i.is_untouched());
}

#[test]
fn refuses_a_downgrade_unless_the_version_is_named() {
    let i = Installed::new();
    let out = i.run("old", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing a downgrade"), "{err}");
    assert!(
        err.contains(&format!("self-update --version {OLD}")),
        "{err}"
    );
    assert!(i.is_untouched());

    let out = i.run("old", &["--version", OLD]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(version_of(&i.binary()), format!("launch-tui {OLD}"));
}

#[test]
fn rollback_swaps_with_the_previous_binary() {
    let i = Installed::new();
    let out = i.run("good", &["--rollback"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no previous binary"));

    // What install.sh or an earlier self-update kept.
    std::fs::copy(
        fixture().dists.dir.path().join(format!("fake-{OLD}")),
        i.previous(),
    )
    .unwrap();
    let out = i.run("good", &["--rollback"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("rolled back launch-tui {THIS} -> {OLD}")),
        "{}",
        text(&out)
    );
    assert_eq!(version_of(&i.binary()), format!("launch-tui {OLD}"));
    assert_eq!(
        std::fs::read(i.previous()).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_launch-tui")).unwrap()
    );
    assert_eq!(i.files(), ["launch-tui", "launch-tui.previous"]);
}
