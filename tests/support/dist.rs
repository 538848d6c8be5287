//! Signed release dists for the installer and self-update tests: a throwaway minisign key made
//! here, small fake "binaries" (shell scripts that print their version), packaged and signed by
//! the real `scripts/release.sh`, served over HTTPS laid out like GitHub releases
//! (`/MIRROR/download/vV/FILE`, `/MIRROR/latest/download/FILE`). A mirror can tamper with what it
//! serves, to prove the checks refuse it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::https_server::{HttpsServer, Reply};

pub const ASSET: &str = "launch-tui-x86_64-linux.tar.gz";

pub struct Dists {
    pub dir: tempfile::TempDir,
    /// The throwaway public key (the second line of its .pub file).
    pub pubkey: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Dists {
    /// One signed dist per version, each with a fake binary printing `launch-tui V`.
    pub fn build(versions: &[&str]) -> Dists {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("test.key");
        let pubfile = dir.path().join("test.pub");
        run_ok(
            Command::new("minisign")
                .args(["-G", "-W", "-p"])
                .arg(&pubfile)
                .arg("-s")
                .arg(&key)
                .stdin(std::process::Stdio::null()),
        );
        for v in versions {
            let fake = dir.path().join(format!("fake-{v}"));
            // `--version` as the real one; otherwise it says where it runs (the wizard's stand-in).
            std::fs::write(
                &fake,
                format!(
                    "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'launch-tui {v}'; else echo \"launch-tui {v} started on $(tty)\"; fi\n"
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
            run_ok(
                Command::new("bash")
                    .arg(repo().join("scripts/release.sh"))
                    .arg("--binary")
                    .arg(&fake)
                    .args(["--version", v, "--key"])
                    .arg(&key)
                    .arg("--pubkey")
                    .arg(&pubfile)
                    .arg("--out")
                    .arg(dir.path().join(format!("dist-{v}"))),
            );
        }
        let pubkey = std::fs::read_to_string(&pubfile)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .to_string();
        Dists { dir, pubkey }
    }

    pub fn path(&self, version: &str, file: &str) -> PathBuf {
        self.dir.path().join(format!("dist-{version}")).join(file)
    }

    pub fn file(&self, version: &str, file: &str) -> Option<Vec<u8>> {
        if file.contains('/') {
            return None;
        }
        std::fs::read(self.path(version, file)).ok()
    }
}

/// What a mirror does to the files it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    None,
    /// The tarball's last byte flipped (SHA256SUMS and its signature intact).
    Checksum,
    /// A line added to SHA256SUMS (its signature no longer matches).
    Signature,
    /// Only the first half of the tarball.
    Truncate,
    /// Only the first half of install.sh.
    TruncateScript,
}

#[derive(Clone, Debug)]
pub struct Mirror {
    pub name: &'static str,
    pub latest: &'static str,
    pub tamper: Tamper,
}

/// Serves `dists` through these mirrors on `ip`.
pub fn serve(dists: Arc<Dists>, mirrors: Vec<Mirror>, ip: std::net::Ipv4Addr) -> HttpsServer {
    HttpsServer::start_on(ip, move |req| {
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let found = match parts.as_slice() {
            [m, "download", v, f] => v.strip_prefix('v').map(|v| (*m, v, *f)),
            [m, "latest", "download", f] => mirrors
                .iter()
                .find(|x| x.name == *m)
                .map(|x| (*m, x.latest, *f)),
            _ => None,
        };
        let Some((m, version, file)) = found else {
            return Reply::empty(404);
        };
        let Some(mirror) = mirrors.iter().find(|x| x.name == m) else {
            return Reply::empty(404);
        };
        let Some(mut body) = dists.file(version, file) else {
            return Reply::empty(404);
        };
        match (mirror.tamper, file) {
            (Tamper::Checksum, ASSET) => {
                if let Some(b) = body.last_mut() {
                    *b ^= 0xff;
                }
            }
            (Tamper::Truncate, ASSET) | (Tamper::TruncateScript, "install.sh") => {
                body.truncate(body.len() / 2)
            }
            (Tamper::Signature, "SHA256SUMS") => {
                body.extend_from_slice(format!("{}  evil.tar.gz\n", "0".repeat(64)).as_bytes())
            }
            _ => {}
        }
        Reply { status: 200, body }
    })
}

/// `https://IP:PORT/MIRROR`.
pub fn base_url(server: &HttpsServer, mirror: &str) -> String {
    format!("https://{}/{mirror}", server.addr)
}

pub fn write_ca(server: &HttpsServer, dir: &Path) -> PathBuf {
    server.pki.write_ca(dir)
}
