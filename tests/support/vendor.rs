//! A vendor's servers for end-to-end tests: a throwaway signing key, a signed apt repository
//! made on the host with Debian's own tools (`dpkg-deb`, `apt-ftparchive`, `gpg --clearsign`),
//! and helpers for the files a vendor serves. Served by `www.rs` on the lab bridge's address.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The lab bridge's own address: the first host of the lab's subnet (containers reach it).
pub fn bridge_ip() -> Ipv4Addr {
    let subnet = super::lab::subnet();
    let net: Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    let o = net.octets();
    Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1)
}

/// Runs `cmd`, which must succeed; its stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", super::lab::text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A throwaway gpg home with one signing key; its agent is stopped on drop.
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    pub fn new(uid: &str) -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        let g = Gpg { home };
        sh(g.cmd()
            .args(["--quick-gen-key", uid, "ed25519", "sign", "never"]));
        g
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(self.home.path()).args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    pub fn armored_public_key(&self) -> String {
        sh(self.cmd().args(["--armor", "--export"]))
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// Builds the package tree `root` (with its `DEBIAN/control`) into `out` (gzip: quick).
pub fn build_deb(root: &Path, out: &Path) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    sh(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "-z1", "--build"])
        .arg(root)
        .arg(out));
}

/// A signed repository under `repo` holding the .debs already in `repo/pool/main`: suite
/// `suite` (which may have path parts, as `bookworm/mongodb-org/8.0`), component `main`,
/// amd64, its Release clearsigned by `signer` as InRelease.
pub fn sign_repo(repo: &Path, suite: &str, signer: &Gpg) {
    let dist = repo.join("dists").join(suite);
    std::fs::create_dir_all(dist.join("main/binary-amd64")).unwrap();
    let packages = sh(Command::new("apt-ftparchive")
        .args(["packages", "pool/main"])
        .current_dir(repo));
    std::fs::write(dist.join("main/binary-amd64/Packages"), packages).unwrap();
    let release = sh(Command::new("apt-ftparchive")
        .args([
            "-o",
            "APT::FTPArchive::Release::Origin=launch-e2e",
            "-o",
            &format!("APT::FTPArchive::Release::Suite={suite}"),
            "-o",
            &format!("APT::FTPArchive::Release::Codename={suite}"),
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
            "-o",
            "APT::FTPArchive::Release::Components=main",
            "release",
        ])
        .arg(&dist));
    std::fs::write(dist.join("Release"), release).unwrap();
    sh(signer
        .cmd()
        .arg("--clearsign")
        .arg("-o")
        .arg(dist.join("InRelease"))
        .arg(dist.join("Release")));
}

/// A file of a package tree, with its mode.
pub fn put(root: &Path, rel: &str, text: &[u8], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}
