//! `self-update`: replaces this launch-tui with a signed release, checked exactly as install.sh
//! checks it (the minisign signature of SHA256SUMS with the embedded key, then the tarball's
//! SHA-256), atomically (stage beside the binary, then rename), keeping the previous binary as
//! `launch-tui.previous` for `--rollback`. A newer release seen here is remembered for `status`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::error::LaunchError;
use crate::fsutil;

/// The release signing key (minisign), the same one install.sh embeds.
const PUBKEY_FILE: &str = include_str!("../keys/launch-release.pub");
/// Where releases are published, laid out like GitHub releases (`BASE/download/vV/FILE`,
/// `BASE/latest/download/FILE`); the release build may set it.
const DEFAULT_BASE_URL: &str = match option_env!("LAUNCH_RELEASE_BASE_URL") {
    Some(u) => u,
    None => "https://github.com/launch-tui/launch/releases",
};
/// The tarball install.sh and self-update download for x86_64.
pub const ASSET: &str = "launch-tui-x86_64-linux.tar.gz";
const SUMS: &str = "SHA256SUMS";
const TIMEOUT: Duration = Duration::from_secs(120);
/// A release binary is well under this; more means a wrong or hostile download.
const MAX_DOWNLOAD: u64 = 200 * 1024 * 1024;

pub const URL_ENV: &str = "LAUNCH_DOWNLOAD_URL";
pub const CA_ENV: &str = "LAUNCH_CA_FILE";
pub const PUBKEY_ENV: &str = "LAUNCH_RELEASE_PUBKEY";

#[derive(Debug, Error)]
pub enum SelfUpdateError {
    #[error("bad signature: {what} is not signed by Launch's release key ({reason})\n  help: do not use this download; if you use a mirror ({URL_ENV}), check it")]
    BadSignature { what: String, reason: String },
    #[error("checksum mismatch for {file}: expected {expected}, got {actual}; the download is damaged or truncated\n  help: try again; if it persists, the mirror serves a wrong file")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("download failed: {url}: {reason}\n  help: check the network and the version; the release may not exist")]
    Download { url: String, reason: String },
    #[error("the release is not usable: {0}")]
    Release(String),
}

impl From<SelfUpdateError> for LaunchError {
    fn from(e: SelfUpdateError) -> Self {
        LaunchError::Failed(anyhow::Error::new(e))
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub check: bool,
    pub version: Option<String>,
    pub rollback: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Only looked (`--check`).
    Checked,
    UpToDate,
    Updated,
    RolledBack,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub action: Action,
    pub installed: String,
    /// The release found (or now running).
    pub release: String,
    pub binary: PathBuf,
    pub previous: Option<PathBuf>,
}

impl Report {
    pub fn text(&self) -> String {
        match self.action {
            Action::Checked if self.release == self.installed => {
                format!("launch-tui {} is the newest release", self.installed)
            }
            Action::Checked => format!(
                "launch-tui {} is available (this is {}): run `launch-tui self-update`",
                self.release, self.installed
            ),
            Action::UpToDate => format!(
                "launch-tui {} is already the newest release",
                self.installed
            ),
            Action::Updated => format!(
                "updated launch-tui {} -> {} ({}); the previous binary is kept: `launch-tui self-update --rollback`",
                self.installed,
                self.release,
                self.binary.display()
            ),
            Action::RolledBack => format!(
                "rolled back launch-tui {} -> {} ({})",
                self.installed,
                self.release,
                self.binary.display()
            ),
        }
    }
}

/// The newest release seen by the last check, for `status` (no network there).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeenRelease {
    pub version: String,
}

const SEEN_FILE: &str = "launch-release.yaml";

fn seen_path() -> PathBuf {
    crate::oplock::state_dir().join(SEEN_FILE)
}

/// A line for `status` when a newer Launch release was seen by the last `self-update --check`.
pub fn newer_release_note() -> Option<String> {
    newer_release_note_in(&crate::oplock::state_dir())
}

fn newer_release_note_in(state_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(state_dir.join(SEEN_FILE)).ok()?;
    let seen: SeenRelease = serde_yaml_ng::from_str(&text).ok()?;
    let newer = Version::parse(&seen.version).ok()? > current_version();
    newer.then(|| {
        format!(
            "launch-tui {} is available (this is {}): run `launch-tui self-update`",
            seen.version,
            env!("CARGO_PKG_VERSION")
        )
    })
}

fn remember(version: &Version) {
    let seen = SeenRelease {
        version: version.to_string(),
    };
    if let Ok(text) = serde_yaml_ng::to_string(&seen) {
        // Only a hint for `status`; failing to write it changes nothing else.
        let _ = fsutil::write_atomic(&seen_path(), text.as_bytes(), 0o644);
    }
}

pub fn current_version() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).expect("Cargo.toml's version is semver")
}

fn parse_version(v: &str) -> Result<Version, LaunchError> {
    Version::parse(v.strip_prefix('v').unwrap_or(v)).map_err(|e| {
        LaunchError::bad_input(
            format!("--version {v}"),
            format!("not a release version: {e}"),
            "give one like 0.2.0",
        )
    })
}

/// The key that checks signatures: the embedded one, or a mirror's own (`LAUNCH_RELEASE_PUBKEY`).
fn public_key() -> Result<(minisign_verify::PublicKey, bool), LaunchError> {
    let embedded = PUBKEY_FILE.lines().nth(1).unwrap_or_default().trim();
    let (text, overridden) = match std::env::var(PUBKEY_ENV) {
        Ok(k) if k.trim() != embedded => (k, true),
        _ => (embedded.to_string(), false),
    };
    let key = minisign_verify::PublicKey::from_base64(text.trim()).map_err(|e| {
        LaunchError::bad_input(
            format!("{PUBKEY_ENV}={text}"),
            format!("not a minisign public key: {e}"),
            "give the second line of a minisign .pub file",
        )
    })?;
    Ok((key, overridden))
}

/// Checks `sig_text` (a .minisig file) over `data`; returns the release version it names in its
/// trusted comment (`launch-tui 0.2.0`).
pub fn verify_sums(
    key: &minisign_verify::PublicKey,
    data: &[u8],
    sig_text: &str,
) -> Result<Version, SelfUpdateError> {
    let bad = |reason: String| SelfUpdateError::BadSignature {
        what: SUMS.into(),
        reason,
    };
    let sig = minisign_verify::Signature::decode(sig_text).map_err(|e| bad(e.to_string()))?;
    // release.sh signs prehashed (minisign's default); legacy signatures are not accepted.
    key.verify(data, &sig, false)
        .map_err(|e| bad(e.to_string()))?;
    let comment = sig.trusted_comment();
    comment
        .strip_prefix("launch-tui ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| Version::parse(v).ok())
        .ok_or_else(|| {
            SelfUpdateError::Release(format!(
                "the signed comment does not name a launch-tui release: {comment:?}"
            ))
        })
}

/// The expected SHA-256 of `file` in a SHA256SUMS text.
pub fn listed_sum(sums: &str, file: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let (sum, name) = l.split_once(char::is_whitespace)?;
        let name = name.trim_start();
        (name == file || name.strip_prefix('*') == Some(file)).then(|| sum.to_ascii_lowercase())
    })
}

struct Downloader {
    http: reqwest::blocking::Client,
    base: String,
}

impl Downloader {
    fn new() -> Result<Self, LaunchError> {
        let base = std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_BASE_URL.to_string());
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("https://") {
            return Err(LaunchError::bad_input(
                format!("{URL_ENV}={base}"),
                "releases are downloaded over HTTPS only",
                "give an https:// address",
            ));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .https_only(true)
            .user_agent(concat!("launch-tui/", env!("CARGO_PKG_VERSION")));
        if let Ok(ca) = std::env::var(CA_ENV) {
            let pem = fs::read(&ca).map_err(|e| {
                LaunchError::bad_input(
                    format!("{CA_ENV}={ca}"),
                    format!("cannot read it: {e}"),
                    "give the path of a PEM CA certificate",
                )
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                LaunchError::bad_input(
                    format!("{CA_ENV}={ca}"),
                    format!("not a PEM certificate: {e}"),
                    "give the path of a PEM CA certificate",
                )
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .context("cannot build the HTTP client")
            .map_err(LaunchError::Failed)?;
        Ok(Downloader { http, base })
    }

    fn dir(&self, version: Option<&Version>) -> String {
        match version {
            Some(v) => format!("{}/download/v{v}", self.base),
            None => format!("{}/latest/download", self.base),
        }
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, SelfUpdateError> {
        let fail = |reason: String| SelfUpdateError::Download {
            url: url.to_string(),
            reason,
        };
        let resp = self
            .http
            .get(url)
            .send()
            .map_err(|e| fail(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let mut body = Vec::new();
        resp.take(MAX_DOWNLOAD)
            .read_to_end(&mut body)
            .map_err(|e| fail(e.to_string()))?;
        Ok(body)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The binary to replace: the one running.
fn own_binary() -> Result<PathBuf, LaunchError> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find the running launch-tui binary")
        .map_err(LaunchError::Failed)?;
    Ok(exe)
}

pub fn previous_of(binary: &Path) -> PathBuf {
    binary.with_file_name("launch-tui.previous")
}

pub fn run(req: &Request) -> Result<Report, LaunchError> {
    let binary = own_binary()?;
    let dir = binary.parent().unwrap_or(Path::new("/")).to_path_buf();
    let _lock = lock()?;
    if req.rollback {
        return rollback(&binary);
    }
    let wanted = req.version.as_deref().map(parse_version).transpose()?;
    let (key, overridden) = public_key()?;
    if overridden {
        eprintln!("warning: checking signatures with another key than Launch's ({PUBKEY_ENV})");
    }
    let dl = Downloader::new()?;
    let url = dl.dir(wanted.as_ref());
    let sums = dl.get(&format!("{url}/{SUMS}"))?;
    let sig = dl.get(&format!("{url}/{SUMS}.minisig"))?;
    let sig = String::from_utf8(sig).map_err(|_| SelfUpdateError::BadSignature {
        what: SUMS.into(),
        reason: "the signature file is not text".into(),
    })?;
    let release = verify_sums(&key, &sums, &sig)?;
    if let Some(w) = &wanted {
        if *w != release {
            return Err(SelfUpdateError::Release(format!(
                "asked for {w} but the signed release at {url} is {release}"
            ))
            .into());
        }
    }
    let installed = current_version();
    remember(&release);
    let report = |action| Report {
        action,
        installed: installed.to_string(),
        release: release.to_string(),
        binary: binary.clone(),
        previous: None,
    };
    if req.check {
        return Ok(report(Action::Checked));
    }
    if release == installed && wanted.is_none() {
        return Ok(report(Action::UpToDate));
    }
    if release < installed && wanted.is_none() {
        return Err(LaunchError::bad_input(
            format!("launch-tui {release}"),
            format!("the newest release is older than this launch-tui {installed}: refusing a downgrade"),
            format!("to go back on purpose, name the version: launch-tui self-update --version {release}"),
        ));
    }

    let sums = String::from_utf8_lossy(&sums).into_owned();
    let expected = listed_sum(&sums, ASSET)
        .ok_or_else(|| SelfUpdateError::Release(format!("{SUMS} lists no checksum for {ASSET}")))?;
    let tarball = dl.get(&format!("{url}/{ASSET}"))?;
    let actual = hex::encode(Sha256::digest(&tarball));
    if actual != expected {
        return Err(SelfUpdateError::Checksum {
            file: ASSET.into(),
            expected,
            actual,
        }
        .into());
    }
    let new_binary = unpack(&tarball)?;
    let staged = dir.join(format!(".launch-tui.new.{}", std::process::id()));
    let result = (|| -> Result<(), LaunchError> {
        fsutil::write_atomic(&staged, &new_binary, 0o755).map_err(LaunchError::Failed)?;
        let says = version_of(&staged)?;
        if says != format!("launch-tui {release}") {
            return Err(SelfUpdateError::Release(format!(
                "the downloaded binary says {says:?}, the signed release is {release}"
            ))
            .into());
        }
        keep_previous(&binary)?;
        fs::rename(&staged, &binary)
            .with_context(|| format!("cannot move the new binary to {}", binary.display()))
            .map_err(LaunchError::Failed)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&staged);
    }
    result?;
    Ok(Report {
        previous: Some(previous_of(&binary)),
        ..report(Action::Updated)
    })
}

fn lock() -> Result<fsutil::LockGuard, LaunchError> {
    let path = crate::oplock::state_dir().join("locks/launch-tui.lock");
    match fsutil::lock_with_timeout(
        &path,
        Duration::from_secs(0),
        &format!("pid {} self-update", std::process::id()),
    )
    .map_err(LaunchError::Failed)?
    {
        Ok(g) => Ok(g),
        Err(holder) => Err(LaunchError::Locked(format!(
            "another self-update is running ({holder})\n  help: wait for it to finish"
        ))),
    }
}

/// The `launch-tui` file from a release tarball.
fn unpack(tarball: &[u8]) -> Result<Vec<u8>, LaunchError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let entries = archive
        .entries()
        .map_err(|e| SelfUpdateError::Release(format!("cannot read {ASSET}: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| SelfUpdateError::Release(format!("cannot read {ASSET}: {e}")))?;
        let is_binary = entry
            .path()
            .map(|p| p.as_ref() == Path::new("launch-tui"))
            .unwrap_or(false);
        if is_binary && entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            (&mut entry)
                .take(MAX_DOWNLOAD)
                .read_to_end(&mut data)
                .map_err(|e| SelfUpdateError::Release(format!("cannot read {ASSET}: {e}")))?;
            return Ok(data);
        }
    }
    Err(SelfUpdateError::Release(format!("{ASSET} holds no launch-tui binary")).into())
}

fn version_of(binary: &Path) -> Result<String, LaunchError> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))
        .map_err(LaunchError::Failed)?;
    if !out.status.success() {
        return Err(SelfUpdateError::Release(format!(
            "{} --version failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Copies the running binary to `launch-tui.previous` (staged, then renamed).
fn keep_previous(binary: &Path) -> Result<(), LaunchError> {
    let data = fs::read(binary)
        .with_context(|| format!("cannot read {}", binary.display()))
        .map_err(LaunchError::Failed)?;
    fsutil::write_atomic(&previous_of(binary), &data, 0o755).map_err(LaunchError::Failed)
}

/// Swaps the running binary and `launch-tui.previous`; each step is one rename, so the binary
/// is always there.
fn rollback(binary: &Path) -> Result<Report, LaunchError> {
    let previous = previous_of(binary);
    if !previous.is_file() {
        return Err(LaunchError::bad_input(
            previous.display().to_string(),
            "there is no previous binary to go back to",
            "it is kept by install.sh and self-update when they replace launch-tui",
        ));
    }
    let back_to = version_of(&previous)?;
    let back_to = back_to
        .strip_prefix("launch-tui ")
        .unwrap_or(&back_to)
        .to_string();
    let swap = binary.with_file_name(format!(".launch-tui.swap.{}", std::process::id()));
    let data = fs::read(binary)
        .with_context(|| format!("cannot read {}", binary.display()))
        .map_err(LaunchError::Failed)?;
    fsutil::write_atomic(&swap, &data, 0o755).map_err(LaunchError::Failed)?;
    fs::rename(&previous, binary)
        .with_context(|| format!("cannot move {} into place", previous.display()))
        .map_err(LaunchError::Failed)?;
    fs::rename(&swap, &previous)
        .with_context(|| format!("cannot keep the replaced binary as {}", previous.display()))
        .map_err(LaunchError::Failed)?;
    fs::set_permissions(binary, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", binary.display()))
        .map_err(LaunchError::Failed)?;
    Ok(Report {
        action: Action::RolledBack,
        installed: env!("CARGO_PKG_VERSION").to_string(),
        release: back_to,
        binary: binary.to_path_buf(),
        previous: Some(previous),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_found_by_name() {
        let sums = "abc  launch-tui-x86_64-linux.tar.gz\nDEF *install.sh\n";
        assert_eq!(listed_sum(sums, ASSET).as_deref(), Some("abc"));
        assert_eq!(listed_sum(sums, "install.sh").as_deref(), Some("def"));
        assert_eq!(listed_sum(sums, "other"), None);
    }

    #[test]
    fn status_mentions_only_a_newer_release() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(newer_release_note_in(dir.path()), None);
        std::fs::write(dir.path().join(SEEN_FILE), "version: 999.0.0\n").unwrap();
        let note = newer_release_note_in(dir.path()).unwrap();
        assert!(
            note.starts_with("launch-tui 999.0.0 is available"),
            "{note}"
        );
        std::fs::write(dir.path().join(SEEN_FILE), "version: 0.0.1\n").unwrap();
        assert_eq!(newer_release_note_in(dir.path()), None);
    }

    #[test]
    fn the_embedded_key_is_install_sh_s_key() {
        let script = include_str!("../install.sh");
        let embedded = PUBKEY_FILE.lines().nth(1).unwrap().trim();
        assert!(
            script.contains(&format!("\nRELEASE_PUBKEY='{embedded}'\n")),
            "install.sh and keys/launch-release.pub disagree"
        );
        minisign_verify::PublicKey::from_base64(embedded).unwrap();
    }
}
