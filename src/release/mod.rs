//! Release artifacts: downloaded on the host, verified against the profile's pinned sha256
//! before anything uses them, cached under `/var/cache/launch/releases`, and unpacked into the
//! one executable that is later pushed into the container, or, for an app shipped as a
//! directory, repacked as a checked tree (tree.rs).

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::profile::types::{ArchiveFormat, Artifact};

mod tree;
pub use tree::Tree;

/// Where the cache lives on a PVE host.
pub const DEFAULT_CACHE_ROOT: &str = "/var/cache/launch/releases";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// reqwest's blocking client applies this to each read of the body (and to the wait for the
/// response headers), so it limits stalls, not the length of a slow but steady download.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Total tries per download; the waits between them grow linearly (1 s, 2 s), so a dead
/// server costs at most a few seconds beyond the timeouts.
const ATTEMPTS: u32 = 3;
const BACKOFF_STEP: Duration = Duration::from_secs(1);
const CHUNK: usize = 64 * 1024;
/// Entries listed in an error before the list is cut short.
const MAX_LISTED: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("unsupported host architecture `{arch}`: Launch installs release builds for amd64 (x86_64) and arm64 (aarch64) only\nhelp: run Launch on an x86_64 or aarch64 Proxmox VE host")]
    UnsupportedArch { arch: String },

    #[error("invalid {what} `{value}`: {problem}\nhelp: {help}")]
    InvalidValue {
        what: &'static str,
        value: String,
        problem: String,
        help: String,
    },

    #[error("cannot set up the HTTP client to download '{url}': {reason}\nhelp: this is a bug in Launch's HTTP setup; please report it")]
    HttpClient { url: String, reason: String },

    #[error("cannot download '{url}' (tried {attempts} times): {reason}\nhelp: check the host's network connection, DNS and proxy settings (HTTPS_PROXY/NO_PROXY), then run the command again")]
    Download {
        url: String,
        reason: String,
        attempts: u32,
    },

    #[error("release not found at '{url}' (HTTP {status})\nhelp: the release may have been removed or renamed upstream; update Launch's profiles or choose another version")]
    NotFound { url: String, status: u16 },

    #[error("'{url}' answered HTTP {status} (tried {attempts} times)\nhelp: {}", status_help(*.status))]
    HttpStatus {
        url: String,
        status: u16,
        attempts: u32,
    },

    #[error("checksum failed for '{url}': expected '{expected}', calculated '{actual}'\nhelp: the download was damaged or the file changed upstream; run the command again, and if it fails again do not use this release (report it to Launch's maintainers)")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },

    #[error("cannot {action} {}: {source}\nhelp: {}", .path.display(), io_help(.source))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot read archive {}: {reason}\nhelp: the file is damaged or not a {format} archive; delete it and run the command again to download it anew, or fix `format:` in the profile", .archive.display())]
    BadArchive {
        archive: PathBuf,
        format: &'static str,
        reason: String,
    },

    #[error("archive {} holds an unsafe entry `{entry}`: {problem}\nhelp: a release archive never needs absolute paths or `..`; refusing to use it, report it to the app's maintainers", .archive.display())]
    UnsafeEntry {
        archive: PathBuf,
        entry: String,
        problem: &'static str,
    },

    #[error("archive {} has no file named `{binary}`; its files are: {}\nhelp: set `binary:` of this artifact in the profile to the executable's path inside the archive", .archive.display(), list(.entries))]
    BinaryNotFound {
        archive: PathBuf,
        binary: String,
        entries: Vec<String>,
    },

    #[error("archive {} has several files named `{binary}`: {}\nhelp: set `binary:` of this artifact in the profile to the full path of the one to use", .archive.display(), list(.candidates))]
    AmbiguousBinary {
        archive: PathBuf,
        binary: String,
        candidates: Vec<String>,
    },

    #[error("entry `{entry}` of archive {} is a {kind}, not a regular file\nhelp: set `binary:` of this artifact in the profile to the executable itself", .archive.display())]
    NotAFile {
        archive: PathBuf,
        entry: String,
        kind: &'static str,
    },
}

fn status_help(status: u16) -> &'static str {
    if status >= 500 {
        "the download server has a problem; try again later"
    } else if status == 429 {
        "the download server limits requests from this host; wait a while and try again"
    } else {
        "the server refuses the download; check the artifact's URL in the profile and that this host may access it"
    }
}

fn io_help(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "run Launch as root on the PVE host",
        io::ErrorKind::StorageFull => "free some space on that file system and try again",
        io::ErrorKind::NotFound => "check that the path exists",
        _ => "check that the file system is mounted read-write and healthy",
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    let shown: Vec<&str> = items.iter().take(MAX_LISTED).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if items.len() > MAX_LISTED {
        s.push_str(&format!(", ... and {} more", items.len() - MAX_LISTED));
    }
    s
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ReleaseError + 'a {
    move |source| ReleaseError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The Debian architecture name of the host ("amd64" or "arm64"), which keys a release's
/// artifacts in a profile.
pub fn host_arch() -> Result<&'static str, ReleaseError> {
    debian_arch(std::env::consts::ARCH)
}

/// Maps a Rust architecture name (`std::env::consts::ARCH`) to Debian's.
pub fn debian_arch(rust_arch: &str) -> Result<&'static str, ReleaseError> {
    match rust_arch {
        "x86_64" => Ok("amd64"),
        "aarch64" => Ok("arm64"),
        other => Err(ReleaseError::UnsupportedArch {
            arch: other.to_string(),
        }),
    }
}

/// Verified release archives, one directory per profile and version.
#[derive(Debug, Clone)]
pub struct ReleaseCache {
    root: PathBuf,
}

impl Default for ReleaseCache {
    fn default() -> Self {
        Self::new(PathBuf::from(DEFAULT_CACHE_ROOT))
    }
}

impl ReleaseCache {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Downloads (if not cached and verified already) and verifies the artifact; returns the
    /// verified archive path `root/<profile>/<version>/<file name from URL>`.
    ///
    /// The download goes to a temporary name in the same directory, is hashed while streaming
    /// (memory does not grow with size) and is renamed only when the sum matches; on any
    /// failure nothing is left behind. A cached file is re-hashed before use, and a damaged one
    /// is deleted and downloaded again. `progress` gets (bytes so far, total if known), starting
    /// again from 0 on a retry.
    pub fn fetch(
        &self,
        profile: &str,
        version: &str,
        artifact: &Artifact,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<PathBuf, ReleaseError> {
        check_path_part(
            "profile name",
            profile,
            "profile names are single lowercase words",
        )?;
        check_path_part(
            "release version",
            version,
            "fix `version:` in the profile, e.g. `v2.5.0`",
        )?;
        let url = artifact.url.as_str();
        let file_name = url_file_name(url)?;
        let expected = artifact.sha256.as_str();
        let profile_dir = self.root.join(profile);
        let dir = profile_dir.join(version);
        let dest = dir.join(&file_name);

        match fs::symlink_metadata(&dest) {
            Ok(meta) if meta.is_file() => {
                if sha256_file(&dest)? == expected {
                    return Ok(dest);
                }
                // A damaged entry (disk error, interrupted copy, tampering) is never used;
                // the pinned sum lets us simply fetch it again.
                fs::remove_file(&dest).map_err(io_err("remove damaged cache file", &dest))?;
            }
            // Only Launch writes here, so anything else under the name is debris to replace.
            Ok(_) => fs::remove_file(&dest).map_err(io_err("remove", &dest))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspect cache file", &dest)(e)),
        }

        fs::create_dir_all(&dir).map_err(io_err("create cache directory", &dir))?;
        let result = download_verified(url, &dir, &file_name, &dest, expected, progress);
        if result.is_err() {
            // Leave no empty directories behind either; these fail harmlessly when not empty.
            let _ = fs::remove_dir(&dir);
            let _ = fs::remove_dir(&profile_dir);
        }
        result.map(|()| dest)
    }

    /// Extracts the executable named `artifact.binary` (for zip and tar.gz; for a plain binary
    /// the file itself) into `dest_dir` as `dest_name`, mode 0755, atomically (temp + rename).
    /// Refuses archives with entries that have absolute paths or `..`. `archive` must be a
    /// path returned by [`ReleaseCache::fetch`], i.e. already verified.
    pub fn unpack_binary(
        &self,
        archive: &Path,
        artifact: &Artifact,
        dest_dir: &Path,
        dest_name: &str,
    ) -> Result<PathBuf, ReleaseError> {
        check_path_part(
            "destination file name",
            dest_name,
            "give a plain file name such as `myapp`",
        )?;
        let binary = match artifact.format {
            ArchiveFormat::Binary => None,
            ArchiveFormat::Zip | ArchiveFormat::TarGz => {
                Some(check_binary_name(artifact.binary.as_deref(), artifact)?)
            }
        };
        fs::create_dir_all(dest_dir).map_err(io_err("create directory", dest_dir))?;
        let dest = dest_dir.join(dest_name);
        let mut staged = Staged::create(dest_dir, dest_name, 0o755)?;
        match (artifact.format, binary) {
            (ArchiveFormat::Zip, Some(binary)) => {
                unpack_zip(archive, &binary, &mut staged.file, &staged.path)?
            }
            (ArchiveFormat::TarGz, Some(binary)) => {
                unpack_tar_gz(archive, &binary, &mut staged.file, &staged.path)?
            }
            _ => {
                let mut src = File::open(archive).map_err(io_err("open", archive))?;
                copy_to(&mut src, archive, &mut staged.file, &staged.path)?;
            }
        }
        // The umask may have narrowed the mode given at creation.
        fs::set_permissions(&staged.path, fs::Permissions::from_mode(0o755))
            .map_err(io_err("set the mode of", &staged.path))?;
        staged.persist(&dest)?;
        Ok(dest)
    }
}

/// Refuses values that would leave their directory when used as one path component.
fn check_path_part(what: &'static str, value: &str, help: &str) -> Result<(), ReleaseError> {
    let problem = if value.is_empty() {
        Some("it is empty")
    } else if value == "." || value == ".." {
        Some("it names a directory, not a file")
    } else if value.contains('/') || value.contains('\0') {
        Some("it contains '/' or a NUL byte")
    } else if value.starts_with('.') {
        Some("it starts with '.' (reserved for temporary files)")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(ReleaseError::InvalidValue {
            what,
            value: value.to_string(),
            problem: problem.to_string(),
            help: help.to_string(),
        }),
    }
}

/// The cache keeps the upstream file name so an admin recognises the file; it must be a
/// single harmless path component.
fn url_file_name(url: &str) -> Result<String, ReleaseError> {
    let invalid = |problem: &str| {
        ReleaseError::InvalidValue {
        what: "artifact URL",
        value: url.to_string(),
        problem: problem.to_string(),
        help: "the URL must end in the release file's name, e.g. https://example.org/releases/v1.2.0/myapp-v1.2.0-linux-amd64.zip".into(),
    }
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(&format!("it is not a URL ({e})")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(invalid("only http:// and https:// are supported"));
    }
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '~'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(invalid(
            "its last path segment is not a plain file name (letters, digits, '.', '_', '-', '+', '~')",
        ))
    }
}

fn check_binary_name(binary: Option<&str>, artifact: &Artifact) -> Result<String, ReleaseError> {
    let url = artifact.url.as_str();
    let Some(raw) = binary else {
        return Err(ReleaseError::InvalidValue {
            what: "artifact",
            value: url.to_string(),
            problem: "it is an archive but names no executable (`binary:` is missing)".into(),
            help: "add `binary: <path of the executable inside the archive>` to this artifact in the profile".into(),
        });
    };
    let name = normalize_entry(raw);
    let bad = name.is_empty() || name.ends_with('/') || entry_problem(raw).is_some();
    if bad {
        return Err(ReleaseError::InvalidValue {
            what: "`binary:` of artifact",
            value: raw.to_string(),
            problem: "it must be a relative file path inside the archive, without `..`".into(),
            help: "give the executable's path inside the archive, e.g. `myapp` or `bin/myapp`"
                .into(),
        });
    }
    Ok(name.to_string())
}

fn normalize_entry(name: &str) -> &str {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./") {
        n = rest;
    }
    n
}

/// Why an archive entry name is unsafe, if it is. Zip writers on Windows use '\', so both
/// separators count.
fn entry_problem(name: &str) -> Option<&'static str> {
    if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name.starts_with('/') || name.starts_with('\\') {
        Some("it is an absolute path")
    } else if name.split(['/', '\\']).any(|part| part == "..") {
        Some("it contains `..`")
    } else {
        None
    }
}

fn download_verified(
    url: &str,
    dir: &Path,
    file_name: &str,
    dest: &Path,
    expected: &str,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(), ReleaseError> {
    // http:// is allowed on purpose: the pinned sha256 protects integrity whatever the
    // transport, and some mirrors inside air-gapped networks only speak plain HTTP.
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(READ_TIMEOUT)
        .user_agent(concat!("launch-tui/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ReleaseError::HttpClient {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
    let mut attempt = 1;
    loop {
        match download_once(
            &client, url, attempt, dir, file_name, dest, expected, progress,
        ) {
            Ok(()) => return Ok(()),
            Err(Failure::Retry(_)) if attempt < ATTEMPTS => {
                std::thread::sleep(BACKOFF_STEP * attempt);
                attempt += 1;
            }
            Err(Failure::Retry(e) | Failure::Final(e)) => return Err(e),
        }
    }
}

/// Whether trying again may help: connection trouble and server errors may be transient; a
/// wrong checksum, a 404 or a full disk are not.
enum Failure {
    Retry(ReleaseError),
    Final(ReleaseError),
}

#[allow(clippy::too_many_arguments)]
fn download_once(
    client: &reqwest::blocking::Client,
    url: &str,
    attempt: u32,
    dir: &Path,
    file_name: &str,
    dest: &Path,
    expected: &str,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(), Failure> {
    let transport = |reason: String| {
        Failure::Retry(ReleaseError::Download {
            url: url.to_string(),
            reason,
            attempts: attempt,
        })
    };
    let mut response = client
        .get(url)
        .send()
        .map_err(|e| transport(error_chain(&e.without_url())))?;
    let status = response.status().as_u16();
    match status {
        200..=299 => {}
        404 | 410 => {
            return Err(Failure::Final(ReleaseError::NotFound {
                url: url.to_string(),
                status,
            }))
        }
        _ => {
            let err = ReleaseError::HttpStatus {
                url: url.to_string(),
                status,
                attempts: attempt,
            };
            return Err(if status >= 500 || status == 408 || status == 429 {
                Failure::Retry(err)
            } else {
                Failure::Final(err)
            });
        }
    }
    let total = response.content_length();
    progress(0, total);

    let mut staged = Staged::create(dir, file_name, 0o644).map_err(Failure::Final)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done: u64 = 0;
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A cut connection, a body shorter than its Content-Length or a stall.
            Err(e) => return Err(transport(error_chain(&e))),
        };
        hasher.update(&buf[..n]);
        staged
            .file
            .write_all(&buf[..n])
            .map_err(|e| Failure::Final(io_err("write", &staged.path)(e)))?;
        done += n as u64;
        progress(done, total);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(Failure::Final(ReleaseError::Checksum {
            url: url.to_string(),
            expected: expected.to_string(),
            actual,
        }));
    }
    staged.persist(dest).map_err(Failure::Final)
}

/// The messages of an error and its causes, for users who see only the top-level text.
fn error_chain(e: &dyn StdError) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if parts.last() != Some(&msg) {
            parts.push(msg);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn sha256_file(path: &Path) -> Result<String, ReleaseError> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A file being written next to its final name. It is removed on drop unless persisted, so
/// a failed download or unpack leaves nothing behind; the name is unique per process and
/// call, so concurrent runs never write into the same temporary file.
struct Staged {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl Staged {
    fn create(dir: &Path, name: &str, mode: u32) -> Result<Self, ReleaseError> {
        let path = dir.join(format!(
            ".{name}.part-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok(Self {
            path,
            file,
            persisted: false,
        })
    }

    fn persist(mut self, dest: &Path) -> Result<(), ReleaseError> {
        self.file.sync_all().map_err(io_err("sync", &self.path))?;
        fs::rename(&self.path, dest).map_err(io_err("move into place", dest))?;
        self.persisted = true;
        // The rename survives a crash only once the directory entry is on disk.
        if let Some(dir) = dest.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn copy_to(
    src: &mut dyn Read,
    src_path: &Path,
    dst: &mut File,
    dst_path: &Path,
) -> Result<(), ReleaseError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read", src_path)(e)),
        };
        dst.write_all(&buf[..n])
            .map_err(io_err("write", dst_path))?;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

impl EntryKind {
    fn label(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "directory",
            EntryKind::Symlink => "link",
            EntryKind::Other => "special entry",
        }
    }
}

struct EntryInfo {
    name: String,
    kind: EntryKind,
}

/// Checks every entry and picks the one to extract: the entry whose path is `binary`, or
/// else the only one whose path ends in `/binary` (release archives often wrap everything
/// in a versioned top directory).
fn choose_entry(
    archive: &Path,
    entries: &[EntryInfo],
    binary: &str,
) -> Result<usize, ReleaseError> {
    for e in entries {
        if let Some(problem) = entry_problem(&e.name) {
            return Err(ReleaseError::UnsafeEntry {
                archive: archive.to_path_buf(),
                entry: e.name.clone(),
                problem,
            });
        }
    }
    let suffix = format!("/{binary}");
    let mut exact = None;
    let mut nested = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let name = normalize_entry(&e.name);
        let name = name.strip_suffix('/').unwrap_or(name);
        if name == binary {
            exact = Some(i);
        } else if name.ends_with(&suffix) {
            nested.push(i);
        }
    }
    let chosen = match (exact, nested.as_slice()) {
        (Some(i), _) => i,
        (None, [i]) => *i,
        (None, []) => {
            return Err(ReleaseError::BinaryNotFound {
                archive: archive.to_path_buf(),
                binary: binary.to_string(),
                entries: entries
                    .iter()
                    .filter(|e| e.kind != EntryKind::Dir)
                    .map(|e| e.name.clone())
                    .collect(),
            })
        }
        (None, many) => {
            return Err(ReleaseError::AmbiguousBinary {
                archive: archive.to_path_buf(),
                binary: binary.to_string(),
                candidates: many.iter().map(|&i| entries[i].name.clone()).collect(),
            })
        }
    };
    let e = &entries[chosen];
    if e.kind != EntryKind::File {
        return Err(ReleaseError::NotAFile {
            archive: archive.to_path_buf(),
            entry: e.name.clone(),
            kind: e.kind.label(),
        });
    }
    Ok(chosen)
}

fn unpack_zip(
    archive: &Path,
    binary: &str,
    out: &mut File,
    out_path: &Path,
) -> Result<(), ReleaseError> {
    let bad = |reason: String| ReleaseError::BadArchive {
        archive: archive.to_path_buf(),
        format: "zip",
        reason,
    };
    let file = File::open(archive).map_err(io_err("open", archive))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(error_chain(&e)))?;
    let mut entries = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        // Raw access reads only the metadata, so encrypted or exotic entries we never
        // extract do not stop the listing.
        let entry = zip.by_index_raw(i).map_err(|e| bad(error_chain(&e)))?;
        let name = entry.name().map_err(|e| bad(error_chain(&e)))?.into_owned();
        let kind = if entry.is_dir() {
            EntryKind::Dir
        } else if entry.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::File
        };
        entries.push(EntryInfo { name, kind });
    }
    let chosen = choose_entry(archive, &entries, binary)?;
    // Reading to the end makes the zip crate check the entry's CRC32.
    let mut entry = zip.by_index(chosen).map_err(|e| bad(error_chain(&e)))?;
    copy_to(&mut entry, archive, out, out_path)
}

fn open_tar_gz(
    archive: &Path,
) -> Result<tar::Archive<flate2::read::GzDecoder<File>>, ReleaseError> {
    let file = File::open(archive).map_err(io_err("open", archive))?;
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(file)))
}

/// A tar stream cannot seek, so the archive is read twice: once to check and choose, once to
/// extract. Release archives are tens of MiB, which keeps the second pass cheap.
fn unpack_tar_gz(
    archive: &Path,
    binary: &str,
    out: &mut File,
    out_path: &Path,
) -> Result<(), ReleaseError> {
    let bad = |e: io::Error| ReleaseError::BadArchive {
        archive: archive.to_path_buf(),
        format: "tar.gz",
        reason: error_chain(&e),
    };
    let mut entries = Vec::new();
    let mut tar = open_tar_gz(archive)?;
    for entry in tar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        entries.push(EntryInfo {
            name: tar_name(&entry),
            kind: tar_kind(entry.header().entry_type()),
        });
    }
    let chosen = choose_entry(archive, &entries, binary)?;

    let mut tar = open_tar_gz(archive)?;
    let mut iter = tar.entries().map_err(bad)?;
    let mut entry = match iter.nth(chosen) {
        Some(entry) => entry.map_err(bad)?,
        None => {
            return Err(bad(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive changed while it was read",
            )))
        }
    };
    copy_to(&mut entry, archive, out, out_path)?;
    // The header's size is what the archive promised; a short entry would be a truncated file.
    let expected = entry.header().size().map_err(bad)?;
    let written = out.stream_position().map_err(io_err("read", out_path))?;
    if written != expected {
        return Err(bad(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "entry `{}` is {written} bytes, its header says {expected}",
                tar_name(&entry)
            ),
        )));
    }
    Ok(())
}

/// The name as stored (long GNU/PAX names included), so the safety check and error messages
/// see exactly what the archive holds.
fn tar_name(entry: &tar::Entry<'_, impl Read>) -> String {
    match entry.path_bytes() {
        Cow::Borrowed(b) => String::from_utf8_lossy(b).into_owned(),
        Cow::Owned(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

fn tar_kind(t: tar::EntryType) -> EntryKind {
    match t {
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink | tar::EntryType::Link => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}
