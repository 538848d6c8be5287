//! The backup archive format: a tar (zstd or gzip) whose first entry is `manifest.json` (the
//! instance record, the profile, the app version and the size and hash of every other entry:
//! BLAKE3 since format 2, sha256 in format 1, which is still read),
//! then the database dump under `db/`, config files under `config/` and the app's files under
//! `data/`. Everything here runs on the host and is independent of containers, so the checks a
//! restore relies on are unit-tested on crafted archives.
//!
//! Writing streams: the entries are compressed into the file after a reserved head region while
//! their hashes are taken; the manifest (its own compressed frame) then goes into the head, so it
//! comes first without holding anything in memory. For zstd the rest of the head is a skippable
//! frame, so a large archive is written once; a small one (or gzip, which has no skippable
//! frames) is compacted by copying. zstd and gzip both read concatenated frames as one stream,
//! and so do `tar -I zstd` and `tar xz`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::escape::shown;
use crate::instance::{Instance, Slot};

mod follow;
use follow::{Feeding, Following, Seen, Tail};

/// The archive format this build writes: 2 hashes the entries with BLAKE3 and names the
/// algorithm in the manifest (`"hash": "blake3"`). It reads formats `OLDEST_FORMAT..=FORMAT`.
pub const FORMAT: u32 = 2;
/// Format 1 (sha256 of each entry, no `hash` field) is read, verified and restored as before.
pub const OLDEST_FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// The top-level directories an archive may hold besides the manifest.
pub const ROOTS: &[&str] = &["db", "config", "data"];
/// Caps applied before anything the archive declares is allocated: whatever its headers say,
/// reading one holds at most these (plus the decompressor's window) in memory.
pub const MANIFEST_MAX: u64 = 16 << 20;
/// A GNU long name or long link target (with its NUL), and an entry's path or link target.
pub const NAME_MAX: u64 = 4096;
/// A PAX extended header's records.
pub const PAX_MAX: u64 = 64 << 10;
/// Entries in one archive (tar headers, and records in the manifest).
pub const ENTRIES_MAX: u64 = 1_000_000;
/// zstd's window: frames asking for more are refused rather than allocated (2^25 = 32 MiB;
/// `zstd -19` uses 2^23, launch-tui's level 3 uses 2^21).
const ZSTD_WINDOW_LOG_MAX: u32 = 25;
/// Links resolved through other links, at most (as the kernel's limit on symlink hops).
const LINK_HOPS_MAX: u32 = 40;
/// The data of one zstd job (per worker thread) when compressing with several threads.
const JOB_SIZE: u32 = 2 << 20;
/// The chunk a file's data is copied in, from the stream into the compressor.
const COPY_CHUNK: usize = 1 << 20;
/// Room kept at the start of a new archive for the compressed manifest.
const HEAD: u64 = 1 << 20;
/// Archives with less data than this are compacted (no reserved head left in them).
const IN_PLACE_MIN: u64 = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// The algorithm of the entries' hashes: `blake3` (format 2); absent in format 1, whose
    /// entries carry `sha256`. Checked against the format and every entry by `check_hashes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// RFC 3339, UTC.
    pub created: String,
    /// `launch-tui X.Y.Z`.
    pub tool: String,
    /// Why it was taken: `backup`, `safety backup before restore`, `uninstall --keep-data`.
    pub reason: String,
    pub instance: Instance,
    pub profile: ProfileRef,
    pub app_version: String,
    /// The slot whose data directory was backed up.
    pub slot: Slot,
    pub database: DatabaseDump,
    pub entries: Vec<EntryRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProfileRef {
    pub name: String,
    pub format: u32,
    /// sha256 of the profile's YAML as it was loaded (the profile's version, in effect).
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseDump {
    /// `sqlite`, `postgres`, `mariadb`, `external-postgres`, `external-mariadb`.
    pub kind: String,
    /// The entry holding it: a SQLite file (`db/NAME`) or an SQL dump (`db/*.sql`).
    pub entry: String,
    /// The server database the dump was taken of (the active slot's, when each slot has its
    /// own): MongoDB's dump names its collections by it. Absent in older archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl DatabaseDump {
    /// The database the dump was taken of; older archives name none, and theirs was the
    /// archived record's. Checked like any other value from an archive.
    pub fn source(&self, instance: &crate::instance::Instance) -> Result<String> {
        let name = match &self.name {
            Some(n) => n.clone(),
            None => crate::render::DbContext::for_instance(instance).name,
        };
        check_database_name(&name)?;
        Ok(name)
    }
}

/// A database name from an archive: letters, digits and `_ . -`, at most 70 characters (an
/// external name's 63 and `_green`).
fn check_database_name(name: &str) -> Result<()> {
    let ok = name.len() <= 70
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        bail!(problem(format!(
            "the manifest names the dumped database {}: letters, digits and _ . - only, at most 70 characters",
            shown(name)
        )))
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryRecord {
    pub path: String,
    pub kind: EntryKind,
    #[serde(default)]
    pub size: u64,
    /// Format 1's hash of a file's data (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Format 2's hash of a file's data (hex, as `b3sum` prints it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    pub mode: u32,
    /// The target of a link (relative, and inside the archive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl EntryRecord {
    /// The record's hash in `algorithm`'s field.
    pub fn hash(&self, algorithm: HashAlgorithm) -> Option<&str> {
        match algorithm {
            HashAlgorithm::Sha256 => self.sha256.as_deref(),
            HashAlgorithm::Blake3 => self.blake3.as_deref(),
        }
    }
}

/// How an archive's entries are hashed: one algorithm per archive, named by its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// Format 1.
    Sha256,
    /// Format 2 on: several times faster than sha256 here (SIMD), as strong for this use.
    Blake3,
}

impl HashAlgorithm {
    /// What new archives use.
    pub const WRITTEN: HashAlgorithm = HashAlgorithm::Blake3;

    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    fn hasher(self) -> EntryHasher {
        match self {
            HashAlgorithm::Sha256 => EntryHasher::Sha256(Sha256::new()),
            HashAlgorithm::Blake3 => EntryHasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }
}

impl Manifest {
    /// The algorithm of the entries' hashes. Meaningful for a manifest this module wrote or
    /// parsed (`check_hashes` has accepted it): format 1 is sha256, later ones blake3.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        if self.format == 1 {
            HashAlgorithm::Sha256
        } else {
            HashAlgorithm::Blake3
        }
    }
}

/// Why an archive is refused: always the archive's fault, so the command exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ArchiveProblem(pub String);

fn problem(s: impl Into<String>) -> anyhow::Error {
    ArchiveProblem(s.into()).into()
}

/// Whether a failure is the archive's (refuse, exit 2) rather than the machine's.
pub fn is_archive_problem(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<ArchiveProblem>())
}

// ---------------------------------------------------------------------------------------------
// Names

/// How an archive's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd, level 3, both cores (the default: about as small as gzip, many times faster).
    Zstd,
    /// gzip, for tools that know nothing newer.
    Gzip,
}

pub fn extension(c: Compression) -> &'static str {
    match c {
        Compression::Zstd => "tar.zst",
        Compression::Gzip => "tar.gz",
    }
}

/// `NAME-YYYYMMDDTHHMMSSZ-VERSION.tar.zst` (UTC), what `status` reads the newest backup's age from.
pub fn file_name(name: &str, when: time::OffsetDateTime, version: &str, c: Compression) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let ts = when
        .to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default();
    let version: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}-{ts}-{version}.{}", extension(c))
}

/// An archive file name taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    pub created: time::OffsetDateTime,
    pub version: String,
}

pub fn parse_file_name(name: &str, file: &str) -> Option<ArchiveName> {
    let rest = file.strip_prefix(name)?.strip_prefix('-')?;
    let rest = rest
        .strip_suffix(".tar.zst")
        .or_else(|| rest.strip_suffix(".tar.gz"))?;
    let (ts, version) = (rest.get(..16)?, rest.get(16..)?.strip_prefix('-')?);
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let created = time::PrimitiveDateTime::parse(ts, &fmt).ok()?.assume_utc();
    if version.is_empty() {
        return None;
    }
    Some(ArchiveName {
        created,
        version: version.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Checks an entry's path and returns it normalized (no `./`, no trailing `/`). Refuses
/// absolute paths, `..`, and anything outside the known top-level directories.
pub fn check_entry_path(raw: &str) -> Result<String> {
    if raw.len() as u64 > NAME_MAX {
        bail!(problem(format!(
            "an entry's path is {} bytes long (at most {NAME_MAX})",
            raw.len()
        )));
    }
    if raw.starts_with('/') {
        bail!(problem(format!("entry `{raw}` has an absolute path")));
    }
    let mut parts = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| problem(format!("entry `{raw}` is not valid UTF-8")))?
                    .to_string(),
            ),
            Component::CurDir => {}
            Component::ParentDir => bail!(problem(format!("entry `{raw}` contains `..`"))),
            Component::RootDir | Component::Prefix(_) => {
                bail!(problem(format!("entry `{raw}` has an absolute path")))
            }
        }
    }
    let Some(first) = parts.first() else {
        bail!(problem(format!("entry `{raw}` has an empty path")));
    };
    if !ROOTS.contains(&first.as_str()) {
        bail!(problem(format!(
            "entry `{raw}` is outside {}",
            ROOTS
                .iter()
                .map(|r| format!("{r}/"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(parts.join("/"))
}

/// A link target must be relative and stay inside the top-level directory of the link; links
/// live only under `data/` (the app's files): the database dump and config files are plain
/// files. This is the lexical check; [`check_links`] resolves links through each other.
pub fn check_link_target(entry: &str, target: &str, hard: bool) -> Result<()> {
    if !entry.starts_with("data/") {
        bail!(problem(format!(
            "link `{entry}` is outside data/: only the app's files may hold links"
        )));
    }
    if target.len() as u64 > NAME_MAX {
        bail!(problem(format!(
            "link `{entry}` has a target of {} bytes (at most {NAME_MAX})",
            target.len()
        )));
    }
    if target.starts_with('/') {
        bail!(problem(format!(
            "link `{entry}` points to the absolute path `{target}`"
        )));
    }
    if hard {
        // A hard link names another entry of the archive, a file under data/.
        let t = check_entry_path(target).map_err(|_| {
            problem(format!(
                "hard link `{entry}` points outside the archive (`{target}`)"
            ))
        })?;
        if !t.starts_with("data/") {
            bail!(problem(format!(
                "hard link `{entry}` points outside data/ (`{target}`)"
            )));
        }
        return Ok(());
    }
    let root = entry.split('/').next().unwrap_or_default();
    let mut stack: Vec<&str> = entry.split('/').collect();
    stack.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                stack.pop();
                if stack.is_empty() {
                    bail!(problem(format!(
                        "symlink `{entry}` points outside the archive (`{target}`)"
                    )));
                }
            }
            p => stack.push(p),
        }
    }
    if stack.first() != Some(&root) {
        bail!(problem(format!(
            "symlink `{entry}` points outside its directory (`{target}`)"
        )));
    }
    Ok(())
}

/// The manifest's own consistency, checked before any entry is read: links resolved against
/// the archive's root through every other link the archive holds (a link to `.` then links
/// through it, `a -> b -> ../..`), each ending inside `data/`; hard links naming a file under
/// `data/`; nothing listed below a symlink; the database dump a plain file.
pub fn check_links(m: &Manifest) -> Result<()> {
    if let Some(n) = &m.database.name {
        check_database_name(n)?;
    }
    let listed: BTreeMap<&str, &EntryRecord> =
        m.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let symlinks: BTreeMap<&str, &str> = m
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Symlink)
        .map(|e| (e.path.as_str(), e.link.as_deref().unwrap_or_default()))
        .collect();
    match listed.get(m.database.entry.as_str()) {
        // A files-only app's archive names no dump, and only such an archive may.
        None if files_only(&m.database.kind) && m.database.entry.is_empty() => {}
        Some(_) if files_only(&m.database.kind) => bail!(problem(format!(
            "a files-only archive (database `none`) names a database dump `{}`",
            m.database.entry
        ))),
        Some(e) if e.kind == EntryKind::File => {}
        Some(e) => bail!(problem(format!(
            "the database dump `{}` is a {:?}, not a plain file",
            m.database.entry, e.kind
        ))),
        None => bail!(problem(format!(
            "the database dump `{}` is not in the manifest",
            m.database.entry
        ))),
    }
    for e in &m.entries {
        // Nothing may sit below a symlink, whatever the order of the entries.
        let mut at = e.path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            if symlinks.contains_key(parent) {
                bail!(problem(format!(
                    "entry `{}` goes through the symlink `{parent}`",
                    e.path
                )));
            }
            at = parent;
        }
        match e.kind {
            EntryKind::File | EntryKind::Dir => {}
            EntryKind::Symlink => {
                let target = e.link.as_deref().unwrap_or_default();
                check_link_target(&e.path, target, false)?;
                let parent: Vec<&str> = e.path.split('/').collect();
                let mut hops = 0;
                resolve(&parent[..parent.len() - 1], target, &symlinks, &mut hops).map_err(
                    |why| problem(format!("symlink `{}` (to `{target}`) {why}", e.path)),
                )?;
            }
            EntryKind::Hardlink => {
                let target = e.link.as_deref().unwrap_or_default();
                check_link_target(&e.path, target, true)?;
                let t = check_entry_path(target)?;
                if listed.get(t.as_str()).map(|r| r.kind) != Some(EntryKind::File) {
                    bail!(problem(format!(
                        "hard link `{}` names `{target}`, which is not a file of the archive",
                        e.path
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Resolves `target` from the directory `base` (components from the archive's root) the way
/// the kernel would once everything is extracted: each component that is one of the archive's
/// symlinks is replaced by its own resolution. Errors say why it leaves `data/`.
fn resolve<'a>(
    base: &[&'a str],
    target: &'a str,
    symlinks: &BTreeMap<&'a str, &'a str>,
    hops: &mut u32,
) -> std::result::Result<Vec<&'a str>, String> {
    if target.starts_with('/') {
        return Err(format!("reaches the absolute path `{target}`"));
    }
    let mut stack: Vec<&str> = base.to_vec();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                // `data` itself is the root: going above it leaves the app's files.
                if stack.len() <= 1 {
                    return Err("resolves outside data/".into());
                }
                stack.pop();
            }
            name => {
                stack.push(name);
                let here = stack.join("/");
                if let Some((&_, &t)) = symlinks.get_key_value(here.as_str()) {
                    *hops += 1;
                    if *hops > LINK_HOPS_MAX {
                        return Err(format!(
                            "goes through more than {LINK_HOPS_MAX} links (a loop?)"
                        ));
                    }
                    stack.pop();
                    stack = resolve(&stack, t, symlinks, hops)?;
                }
            }
        }
    }
    if stack.first() != Some(&"data") {
        return Err("resolves outside data/".into());
    }
    Ok(stack)
}

// ---------------------------------------------------------------------------------------------
// Bounded reading

/// A header the archive declares beyond what launch-tui will hold in memory.
#[derive(Debug)]
struct HeaderProblem(String);

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeaderProblem {}

/// Sits between the decompressor and the `tar` crate, which reads GNU long names and PAX
/// extended headers whole into memory, however large the archive says they are (a 1 GiB
/// "name" costs 1 GiB). This follows the tar stream block by block as the crate reads it and
/// refuses a header that declares more than the caps above, before a byte of it is buffered.
/// Written by hand: the `tar` crate has no such limit, and no other crate puts one in front.
struct Gate<R> {
    inner: R,
    /// The header being assembled (a block is 512 bytes).
    header: [u8; 512],
    filled: usize,
    /// Bytes of entry data (padded to blocks) still to pass before the next header.
    data_left: u64,
    /// The PAX records being collected (at most PAX_MAX), for the size they may set.
    pax: Option<Vec<u8>>,
    pax_left: u64,
    /// A `size` from the last PAX header, which the tar crate applies to the next entry.
    pax_size: Option<u64>,
    entries: u64,
}

impl<R: Read> Gate<R> {
    fn new(inner: R) -> Self {
        Gate {
            inner,
            header: [0; 512],
            filled: 0,
            data_left: 0,
            pax: None,
            pax_left: 0,
            pax_size: None,
            entries: 0,
        }
    }

    fn refuse(msg: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, HeaderProblem(msg))
    }

    /// A whole header block arrived: decide how much data follows and whether it is allowed.
    fn on_header(&mut self) -> io::Result<()> {
        if self.header.iter().all(|b| *b == 0) {
            // End-of-archive blocks (the reader stops at the first one).
            return Ok(());
        }
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&self.header);
        let kind = h.entry_type();
        let mut size = h
            .entry_size()
            .map_err(|e| Self::refuse(format!("an entry header is damaged: {e}")))?;
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if !extension {
            if let Some(s) = self.pax_size.take() {
                size = s;
            }
            self.entries += 1;
            if self.entries > ENTRIES_MAX {
                return Err(Self::refuse(format!(
                    "the archive holds more than {ENTRIES_MAX} entries"
                )));
            }
        }
        let what = if kind.is_gnu_longname() {
            Some(("a GNU long name", NAME_MAX + 1))
        } else if kind.is_gnu_longlink() {
            Some(("a GNU long link target", NAME_MAX + 1))
        } else if kind.is_pax_local_extensions() || kind.is_pax_global_extensions() {
            Some(("a PAX extended header", PAX_MAX))
        } else {
            None
        };
        if let Some((what, max)) = what {
            if size > max {
                return Err(Self::refuse(format!(
                    "an entry header declares {what} of {size} bytes (at most {max} are read)"
                )));
            }
        }
        if kind.is_gnu_sparse() {
            return Err(Self::refuse(
                "the archive holds a sparse file, which backups never hold".into(),
            ));
        }
        if kind.is_pax_local_extensions() {
            self.pax = Some(Vec::with_capacity(size as usize));
            self.pax_left = size;
        }
        self.data_left = size
            .checked_add(511)
            .map(|s| s & !511)
            .ok_or_else(|| Self::refuse("an entry's size overflows".into()))?;
        Ok(())
    }

    fn on_pax_done(&mut self) {
        let Some(records) = self.pax.take() else {
            return;
        };
        // As the tar crate reads them (its `pax_extensions_value`): the first `size` record,
        // ignored when any record before it is malformed.
        self.pax_size = None;
        for ext in tar::PaxExtensions::new(&records) {
            let Ok(ext) = ext else { return };
            if ext.key() == Ok("size") {
                self.pax_size = ext.value().ok().and_then(|v| v.parse().ok());
                return;
            }
        }
    }

    fn pass(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            if self.data_left > 0 {
                let n = (self.data_left.min(buf.len() as u64)) as usize;
                if self.pax.is_some() {
                    let k = (self.pax_left.min(n as u64)) as usize;
                    if let Some(p) = self.pax.as_mut() {
                        p.extend_from_slice(&buf[..k]);
                    }
                    self.pax_left -= k as u64;
                }
                self.data_left -= n as u64;
                buf = &buf[n..];
                if self.data_left == 0 {
                    self.on_pax_done();
                }
            } else {
                let n = (512 - self.filled).min(buf.len());
                self.header[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
                self.filled += n;
                buf = &buf[n..];
                if self.filled == 512 {
                    self.filled = 0;
                    self.on_header()?;
                    if self.data_left == 0 {
                        self.on_pax_done();
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Gate<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pass(&buf[..n])?;
        Ok(n)
    }
}

/// The archive's problem behind an I/O error from reading it, when the gate refused a header.
fn read_error(e: io::Error) -> anyhow::Error {
    if let Some(h) = e.get_ref().and_then(|i| i.downcast_ref::<HeaderProblem>()) {
        return problem(format!("refused before reading it: {h}"));
    }
    problem(format!("the archive is damaged or truncated: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Hashing

/// An entry's hash being taken.
enum EntryHasher {
    Sha256(Sha256),
    // Boxed: BLAKE3's state (its chunk stack) is about 2 KiB.
    Blake3(Box<blake3::Hasher>),
}

impl EntryHasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            EntryHasher::Sha256(h) => h.update(data),
            // One call per chunk of up to 1 MiB: BLAKE3 hashes its 1 KiB pieces several at
            // a time with SIMD (AVX-512 or AVX2), on this thread (the other cores compress).
            EntryHasher::Blake3(h) => {
                h.update(data);
            }
        }
    }

    fn finish(self) -> String {
        match self {
            EntryHasher::Sha256(h) => hex::encode(h.finalize()),
            EntryHasher::Blake3(h) => h.finalize().to_hex().to_string(),
        }
    }
}

/// Passes bytes through while hashing and counting them (or only counting them).
pub struct Hashing<R> {
    inner: R,
    hasher: Option<EntryHasher>,
    count: u64,
}

impl<R> Hashing<R> {
    pub fn new(inner: R, algorithm: HashAlgorithm) -> Self {
        Hashing {
            inner,
            hasher: Some(algorithm.hasher()),
            count: 0,
        }
    }

    /// Counts without hashing: `finish` returns an empty hash.
    pub fn counting(inner: R) -> Self {
        Hashing {
            inner,
            hasher: None,
            count: 0,
        }
    }

    pub fn finish(self) -> (u64, String) {
        let hash = self.hasher.map(EntryHasher::finish).unwrap_or_default();
        (self.count, hash)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

enum Compressor {
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<Feeding>>),
    Gzip(flate2::write::GzEncoder<BufWriter<Feeding>>),
}

impl Compressor {
    /// Writes into `file` from its current position, `HEAD`.
    fn new(file: File, c: Compression, tail: Option<Arc<Tail>>) -> Result<Self> {
        let w = BufWriter::with_capacity(1 << 20, Feeding::new(file, HEAD, tail));
        Ok(match c {
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, 3)?;
                let threads = std::thread::available_parallelism()
                    .map(|n| n.get() as u32)
                    .unwrap_or(1);
                if threads > 1 {
                    e.multithread(threads)?;
                    // Each worker's job is buffered twice (input and output), with two jobs in
                    // reserve: zstd's default job at level 3 is 8 MiB (4 windows), which made
                    // these buffers most of a backup's peak memory (84 MiB); 2 MiB jobs cut it
                    // to about a quarter at the same speed and size.
                    e.set_parameter(zstd::stream::raw::CParameter::JobSize(JOB_SIZE))?;
                    // No overlap between jobs: by default each job first re-reads the last
                    // eighth of the window before it (256 KiB for every 2 MiB job) to find
                    // matches across the boundary. Without it a 1 GiB backup took about 0.1 s
                    // (3 %) less CPU, and its archive came out no larger (measured, 18 runs).
                    e.set_parameter(zstd::stream::raw::CParameter::OverlapSizeLog(1))?;
                }
                e.include_checksum(true)?;
                Compressor::Zstd(e)
            }
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
        })
    }

    /// Ends the stream; the file is not synced (the caller syncs what it keeps).
    fn finish(self) -> Result<File> {
        let w = match self {
            Compressor::Zstd(e) => e.finish()?,
            Compressor::Gzip(e) => e.finish()?,
        };
        Ok(w.into_inner().map_err(|e| e.into_error())?.into_file())
    }
}

fn compress_to_vec(data: &[u8], c: Compression) -> Result<Vec<u8>> {
    Ok(match c {
        Compression::Zstd => zstd::bulk::compress(data, 3)?,
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data)?;
            e.finish()?
        }
    })
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Zstd(e) => e.write(buf),
            Compressor::Gzip(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Zstd(e) => e.flush(),
            Compressor::Gzip(e) => e.flush(),
        }
    }
}

fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Files that are removed when dropped unless kept: a failure at any point leaves no partial
/// archive behind.
pub struct Partial {
    paths: Vec<PathBuf>,
}

impl Partial {
    pub fn new() -> Self {
        Partial { paths: Vec::new() }
    }
    pub fn add(&mut self, p: PathBuf) {
        self.paths.push(p);
    }
    pub fn forget(&mut self, p: &Path) {
        self.paths.retain(|x| x != p);
    }
}

impl Default for Partial {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The entries read back are the manifest's, in its order, with its kinds, sizes and links.
fn same_entries(seen: &[Seen], m: &Manifest) -> Result<()> {
    if seen.len() != m.entries.len() {
        bail!(problem(format!(
            "the archive holds {} entries, its manifest lists {}",
            seen.len(),
            m.entries.len()
        )));
    }
    for (s, r) in seen.iter().zip(&m.entries) {
        let same = s.path == r.path
            && s.kind == r.kind
            && (s.kind != EntryKind::File || s.size == r.size)
            && s.link == r.link;
        if !same {
            bail!(problem(format!(
                "entry `{}` read back is not what the manifest says of `{}`",
                s.path, r.path
            )));
        }
    }
    Ok(())
}

/// Copies `data` to `out` in large chunks, hashing what it writes: (bytes, hash in hex).
fn copy_hashed(
    mut data: impl Read,
    out: &mut impl Write,
    buf: &mut [u8],
    algorithm: HashAlgorithm,
) -> io::Result<(u64, String)> {
    let mut hasher = algorithm.hasher();
    let mut count = 0u64;
    loop {
        let n = match data.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        count += n as u64;
    }
    Ok((count, hasher.finish()))
}

/// Writes one archive: entries first (after the reserved head, hashed as they pass), then
/// `finish` puts the manifest in front.
pub struct ArchiveWriter {
    tmp: PathBuf,
    body: tar::Builder<Compressor>,
    compression: Compression,
    entries: Vec<EntryRecord>,
    seen: BTreeSet<String>,
    symlinks: BTreeSet<String>,
    partial: Partial,
    buf: Vec<u8>,
    /// The read-back running beside the writer (`create_verified`).
    follower: Option<std::thread::JoinHandle<Result<Vec<Seen>>>>,
    /// From this much data on, a zstd archive keeps its head instead of being compacted.
    pub in_place_min: u64,
}

impl ArchiveWriter {
    /// Creates `tmp` (mode 0600), removed again unless `finish` succeeds.
    pub fn create(tmp: &Path, compression: Compression) -> Result<ArchiveWriter> {
        Self::create_with(tmp, compression, false)
    }

    /// As `create`, and for zstd starts reading the archive back as it is written, for
    /// `finish_verified`.
    pub fn create_verified(tmp: &Path, compression: Compression) -> Result<ArchiveWriter> {
        Self::create_with(tmp, compression, compression == Compression::Zstd)
    }

    fn create_with(tmp: &Path, compression: Compression, follow: bool) -> Result<ArchiveWriter> {
        let mut partial = Partial::new();
        let mut f = create_private(tmp)?;
        partial.add(tmp.to_path_buf());
        f.seek(SeekFrom::Start(HEAD))?;
        let (tail, follower) = if follow {
            let tail = Arc::new(Tail::default());
            let reader = Following::new(
                File::open(tmp).with_context(|| format!("cannot open {}", tmp.display()))?,
                HEAD,
                tail.clone(),
            );
            let handle = std::thread::Builder::new()
                .name("read-back".into())
                .spawn(move || follow::read_body(reader))
                .context("cannot start the read-back")?;
            (Some(tail), Some(handle))
        } else {
            (None, None)
        };
        let mut body = tar::Builder::new(Compressor::new(f, compression, tail)?);
        body.mode(tar::HeaderMode::Complete);
        Ok(ArchiveWriter {
            tmp: tmp.to_path_buf(),
            body,
            compression,
            entries: Vec::new(),
            seen: BTreeSet::new(),
            symlinks: BTreeSet::new(),
            partial,
            buf: vec![0; COPY_CHUNK],
            follower,
            in_place_min: IN_PLACE_MIN,
        })
    }

    fn note(&mut self, path: &str) -> Result<()> {
        if !self.seen.insert(path.to_string()) {
            bail!("entry `{path}` appears twice");
        }
        if let Some(s) = self
            .symlinks
            .iter()
            .find(|s| path.starts_with(&format!("{s}/")))
        {
            bail!("entry `{path}` goes through the symlink `{s}`");
        }
        Ok(())
    }

    pub fn add_dir(&mut self, path: &str, mode: u32, owner: (&str, &str)) -> Result<()> {
        let path = check_entry_path(path)?;
        self.note(&path)?;
        let mut h = header(tar::EntryType::Directory, mode, 0, owner);
        self.body.append_data(&mut h, &path, io::empty())?;
        self.entries.push(EntryRecord {
            path,
            kind: EntryKind::Dir,
            size: 0,
            sha256: None,
            blake3: None,
            mode,
            link: None,
        });
        Ok(())
    }

    /// Streams a file of `size` bytes from `data` into the archive, hashing it on the way.
    pub fn add_file(
        &mut self,
        path: &str,
        mode: u32,
        owner: (&str, &str),
        size: u64,
        data: impl Read,
    ) -> Result<()> {
        let path = check_entry_path(path)?;
        self.note(&path)?;
        let mut h = header(tar::EntryType::Regular, mode, size, owner);
        // The header (with a long name's extra header, if any) through the tar builder, then
        // the data by hand: the hash is taken of exactly the bytes the compressor gets, whose
        // own checksum the read-back then proves (see `verify_written`).
        self.body
            .append_data(&mut h, &path, io::empty())
            .with_context(|| format!("cannot write {path} into the archive"))?;
        let (n, hash) = copy_hashed(
            data.take(size),
            self.body.get_mut(),
            &mut self.buf,
            HashAlgorithm::WRITTEN,
        )
        .with_context(|| format!("cannot write {path} into the archive"))?;
        if n != size {
            bail!("{path}: the stream ended after {n} of {size} bytes");
        }
        let pad = (512 - (size % 512) as usize) % 512;
        self.body.get_mut().write_all(&[0u8; 512][..pad])?;
        self.entries.push(EntryRecord {
            path,
            kind: EntryKind::File,
            size,
            sha256: None,
            blake3: Some(hash),
            mode,
            link: None,
        });
        Ok(())
    }

    pub fn add_link(
        &mut self,
        path: &str,
        target: &str,
        hard: bool,
        mode: u32,
        owner: (&str, &str),
    ) -> Result<()> {
        let path = check_entry_path(path)?;
        check_link_target(&path, target, hard)?;
        self.note(&path)?;
        let kind = if hard {
            tar::EntryType::Link
        } else {
            tar::EntryType::Symlink
        };
        let mut h = header(kind, mode, 0, owner);
        self.body.append_link(&mut h, &path, target)?;
        if !hard {
            self.symlinks.insert(path.clone());
        }
        self.entries.push(EntryRecord {
            path,
            kind: if hard {
                EntryKind::Hardlink
            } else {
                EntryKind::Symlink
            },
            size: 0,
            sha256: None,
            blake3: None,
            mode,
            link: Some(target.to_string()),
        });
        Ok(())
    }

    pub fn entries(&self) -> &[EntryRecord] {
        &self.entries
    }

    /// Puts the manifest (with every entry's record) in front of the entries and syncs the
    /// file. Returns the archive's size. The file is removed again if anything fails.
    pub fn finish(self, manifest: Manifest) -> Result<u64> {
        self.finish_inner(manifest).map(|(size, _, _)| size)
    }

    /// As `finish`, then proves the archive on disk readable and every entry its size and
    /// sha256: from a writer made by `create_verified` with the read-back that ran beside it
    /// (see [`verify_written`] for why its entries need not be hashed again) and the head
    /// read back; otherwise by reading the finished file back. Returns the size and the
    /// manifest.
    pub fn finish_verified(mut self, manifest: Manifest) -> Result<(u64, Manifest)> {
        let follower = self.follower.take();
        let tmp = self.tmp.clone();
        let compression = self.compression;
        let mut partial = Partial::new();
        partial.add(tmp.clone());
        let (size, manifest, head) = self.finish_inner(manifest)?;
        let body = follower.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the read-back stopped (a bug)")))
        });
        match (head, body) {
            (Some(head), Some(body)) => {
                let seen = body?;
                same_entries(&seen, &manifest)?;
                let mut on_disk = vec![0u8; head.len()];
                File::open(&tmp)?.read_exact_at(&mut on_disk, 0)?;
                if on_disk != head || read_manifest(&tmp)? != manifest {
                    bail!(problem(
                        "the manifest read back is not the one written (the archive is damaged)"
                    ));
                }
            }
            _ => {
                verify_written(&tmp, &manifest, compression)?;
            }
        }
        partial.forget(&tmp);
        Ok((size, manifest))
    }

    /// Returns the size, the manifest and, when the head was written in place (the body
    /// stays where it was written), the head's bytes (the manifest frame and the start of the
    /// skippable frame).
    fn finish_inner(mut self, mut manifest: Manifest) -> Result<(u64, Manifest, Option<Vec<u8>>)> {
        // The writer decides the format: it took the entries' hashes.
        manifest.format = FORMAT;
        manifest.hash = Some(HashAlgorithm::WRITTEN.name().into());
        manifest.entries = std::mem::take(&mut self.entries);
        let file = self
            .body
            .into_inner()
            .context("cannot finish the archive")?
            .finish()
            .context("cannot finish the archive")?;
        let end = file.metadata()?.len();
        let json = serde_json::to_vec_pretty(&manifest)?;
        let mut plain = Vec::with_capacity(json.len() + 1024);
        let mut h = header(
            tar::EntryType::Regular,
            0o600,
            json.len() as u64,
            ("root", "root"),
        );
        h.set_path(MANIFEST)?;
        h.set_cksum();
        plain.extend_from_slice(h.as_bytes());
        plain.extend_from_slice(&json);
        plain.resize(plain.len() + (512 - json.len() % 512) % 512, 0);
        let head = compress_to_vec(&plain, self.compression)?;
        let fits = head.len() as u64 + 8 <= HEAD;
        let mut in_place = None;
        let size =
            if self.compression == Compression::Zstd && fits && end - HEAD >= self.in_place_min {
                // The manifest frame, then a skippable frame over the rest of the head (a hole).
                let mut skip = Vec::with_capacity(8);
                skip.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
                skip.extend_from_slice(&((HEAD - head.len() as u64 - 8) as u32).to_le_bytes());
                file.write_all_at(&head, 0)?;
                file.write_all_at(&skip, head.len() as u64)?;
                file.sync_all().context("cannot write the archive")?;
                in_place = Some([&head[..], &skip[..]].concat());
                end
            } else {
                let compact = self.tmp.with_extension("compact");
                let mut out = create_private(&compact)?;
                self.partial.add(compact.clone());
                out.write_all(&head)?;
                let mut body = file;
                body.seek(SeekFrom::Start(HEAD))?;
                io::copy(&mut body, &mut out).context("cannot write the archive")?;
                out.sync_all().context("cannot write the archive")?;
                let size = out.metadata()?.len();
                std::fs::rename(&compact, &self.tmp).context("cannot write the archive")?;
                self.partial.forget(&compact);
                size
            };
        let tmp = self.tmp.clone();
        self.partial.forget(&tmp);
        Ok((size, manifest, in_place))
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64, owner: (&str, &str)) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_size(size);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    let _ = h.set_username(owner.0);
    let _ = h.set_groupname(owner.1);
    h
}

// ---------------------------------------------------------------------------------------------
// Reading and verifying

/// Opens an archive for reading, zstd or gzip by its magic bytes, behind the header gate.
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    Ok(Box::new(Gate::new(decompressed(path)?)))
}

fn decompressed(path: &Path) -> Result<Box<dyn Read>> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    drop(f);
    let f = BufReader::with_capacity(
        1 << 20,
        File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    if n >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let mut d = zstd::stream::read::Decoder::with_buffer(f)?;
        d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
        Ok(Box::new(d))
    } else if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(f)))
    } else {
        Err(problem(format!(
            "{} is not a backup archive (neither zstd nor gzip)",
            path.display()
        )))
    }
}

/// One checked entry handed to a consumer while an archive is walked.
pub struct CheckedEntry<'a> {
    pub record: &'a EntryRecord,
    pub owner: (String, String),
}

/// Reads the whole archive, checking everything a restore relies on: the manifest comes first
/// and is of a known format; every other entry is listed in it, with the same kind, size and
/// hash (the algorithm its manifest names); paths are relative, without `..`, inside the known directories, not through a
/// symlink; links stay inside; no device files; nothing is missing or doubled. `consume` sees
/// each entry (and may read its data) before its hash is checked, so a consumer must treat
/// what it got as provisional until this returns Ok.
pub fn walk(
    path: &Path,
    consume: impl FnMut(&CheckedEntry, &mut dyn Read) -> Result<()>,
) -> Result<Manifest> {
    walk_checked(path, true, consume)
}

/// Reads back an archive this process has just written (`ArchiveWriter`) and checks it as
/// [`walk`] does, and that its manifest is the one written; for zstd without hashing every
/// entry a second time. The writer took each entry's hash of exactly the bytes it gave the
/// zstd compressor, which checksums all it is given (XXH64, kept at the end of the frame);
/// the decoder checks that checksum when it reaches the frame's end, and this reads to the
/// end. So a complete read proves that the file decodes to the bytes that were hashed: the
/// archive is readable and every entry matches its size and hash in the manifest. (gzip
/// keeps only a CRC32, so its entries are hashed again.)
pub fn verify_written(path: &Path, written: &Manifest, c: Compression) -> Result<Manifest> {
    let m = walk_checked(path, c == Compression::Gzip, |_, _| Ok(()))?;
    if &m != written {
        bail!(problem(
            "the manifest read back is not the one written (the archive is damaged)"
        ));
    }
    Ok(m)
}

/// `walk`; `rehash`: check each entry's hash, else only its size (and read to the end, so
/// the compressed stream's own checksums are checked).
fn walk_checked(
    path: &Path,
    rehash: bool,
    mut consume: impl FnMut(&CheckedEntry, &mut dyn Read) -> Result<()>,
) -> Result<Manifest> {
    let reader = open(path)?;
    let mut ar = tar::Archive::new(reader);
    let damaged = read_error;
    let mut entries = ar.entries().map_err(damaged)?;
    let first = entries
        .next()
        .ok_or_else(|| problem("the archive is empty (no manifest)"))?
        .map_err(damaged)?;
    let first_path = first
        .path()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if first_path.trim_start_matches("./") != MANIFEST {
        bail!(problem(format!(
            "the archive does not start with {MANIFEST} (its first entry is `{first_path}`): it was not made by launch-tui backup, or was repacked"
        )));
    }
    if first.header().entry_type() != tar::EntryType::Regular || first.size() > MANIFEST_MAX {
        bail!(problem(format!(
            "{MANIFEST} is not a plain file of sane size"
        )));
    }
    let mut json = Vec::with_capacity(first.size() as usize);
    let mut first = first;
    (&mut first)
        .take(MANIFEST_MAX)
        .read_to_end(&mut json)
        .map_err(damaged)?;
    drop(first);
    let manifest = parse_manifest(&json)?;
    let algorithm = manifest.hash_algorithm();
    let listed: BTreeMap<&str, &EntryRecord> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    if listed.len() != manifest.entries.len() {
        bail!(problem("the manifest lists an entry twice"));
    }
    let mut seen = BTreeSet::new();
    let mut symlinks: Vec<String> = Vec::new();
    for e in entries {
        let mut e = e.map_err(damaged)?;
        let raw = e
            .path()
            .map_err(|err| problem(format!("an entry has an unreadable path: {err}")))?
            .to_string_lossy()
            .into_owned();
        let path = check_entry_path(&raw)?;
        if let Some(s) = symlinks.iter().find(|s| path.starts_with(&format!("{s}/"))) {
            bail!(problem(format!(
                "entry `{path}` goes through the symlink `{s}`"
            )));
        }
        let kind = match e.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::Hardlink,
            tar::EntryType::Char | tar::EntryType::Block => {
                bail!(problem(format!("entry `{path}` is a device file")))
            }
            other => bail!(problem(format!(
                "entry `{path}` is of a kind backups never hold ({other:?})"
            ))),
        };
        let Some(rec) = listed.get(path.as_str()) else {
            bail!(problem(format!("entry `{path}` is not in the manifest")));
        };
        if rec.kind != kind {
            bail!(problem(format!(
                "entry `{path}` is a {kind:?} but the manifest says {:?}",
                rec.kind
            )));
        }
        if !seen.insert(path.clone()) {
            bail!(problem(format!("entry `{path}` appears twice")));
        }
        if matches!(kind, EntryKind::Symlink | EntryKind::Hardlink) {
            let target = e
                .link_name()
                .map_err(|err| problem(format!("link `{path}` is unreadable: {err}")))?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_link_target(&path, &target, kind == EntryKind::Hardlink)?;
            if rec.link.as_deref() != Some(target.as_str()) {
                bail!(problem(format!(
                    "link `{path}` points to `{target}`, not where the manifest says"
                )));
            }
            if kind == EntryKind::Symlink {
                symlinks.push(path.clone());
            }
        }
        let owner = (
            e.header()
                .username()
                .ok()
                .flatten()
                .unwrap_or("root")
                .to_string(),
            e.header()
                .groupname()
                .ok()
                .flatten()
                .unwrap_or("root")
                .to_string(),
        );
        let size = e.size();
        if kind == EntryKind::File && size != rec.size {
            bail!(problem(format!(
                "entry `{path}` is {size} bytes, the manifest says {}",
                rec.size
            )));
        }
        let checked = CheckedEntry { record: rec, owner };
        let mut hashing = if rehash {
            Hashing::new(&mut e, algorithm)
        } else {
            Hashing::counting(&mut e)
        };
        consume(&checked, &mut hashing)?;
        io::copy(&mut hashing, &mut io::sink()).map_err(damaged)?;
        let (n, hash) = hashing.finish();
        if kind == EntryKind::File {
            if n != rec.size {
                bail!(problem(format!(
                    "entry `{path}` is truncated ({n} of {} bytes)",
                    rec.size
                )));
            }
            if rehash && rec.hash(algorithm) != Some(hash.as_str()) {
                bail!(problem(format!(
                    "entry `{path}` does not match its {} in the manifest (the archive is damaged)",
                    algorithm.name()
                )));
            }
        }
    }
    if let Some(missing) = manifest
        .entries
        .iter()
        .find(|r| !seen.contains(r.path.as_str()))
    {
        bail!(problem(format!(
            "entry `{}` is listed in the manifest but missing from the archive (truncated?)",
            missing.path
        )));
    }
    let no_dump = files_only(&manifest.database.kind) && manifest.database.entry.is_empty();
    if !no_dump && !seen.contains(manifest.database.entry.as_str()) {
        bail!(problem(format!(
            "the database dump `{}` is missing",
            manifest.database.entry
        )));
    }
    if !rehash {
        // tar's end blocks and the end of the frame, where zstd checks its checksum.
        io::copy(&mut ar.into_inner(), &mut io::sink()).map_err(damaged)?;
    }
    Ok(manifest)
}

fn parse_manifest(json: &[u8]) -> Result<Manifest> {
    // The format alone first (serde skips the rest without building it), then the typed
    // manifest: no intermediate `Value` tree, whose size would be a multiple of the text's.
    #[derive(Deserialize)]
    struct Format {
        format: Option<serde_json::Value>,
        tool: Option<serde_json::Value>,
    }
    let f: Format = serde_json::from_slice(json)
        .map_err(|e| problem(format!("{MANIFEST} is not valid JSON: {e}")))?;
    let tool = match f.tool.as_ref().and_then(|t| t.as_str()) {
        Some(t) => format!("`{}`", shown(t)),
        None => "unnamed".into(),
    };
    match f.format.as_ref().and_then(|f| f.as_u64()) {
        Some(f) if (OLDEST_FORMAT as u64..=FORMAT as u64).contains(&f) => {}
        Some(f) if f > FORMAT as u64 => bail!(problem(format!(
            "the archive's format is {f}, newer than this launch-tui ({}) reads (formats {OLDEST_FORMAT} to {FORMAT}); it was written by {tool}\n  help: update launch-tui (`launch-tui self-update`) and run this again, or use the launch-tui version that wrote it",
            env!("CARGO_PKG_VERSION")
        ))),
        Some(f) => bail!(problem(format!(
            "the archive's format is {f}, which no launch-tui writes (this one reads formats {OLDEST_FORMAT} to {FORMAT}; the archive says it was written by {tool})\n  help: the archive is damaged or not a launch-tui backup; use another copy"
        ))),
        None => bail!(problem(format!(
            "{MANIFEST} has no format version (a number: {OLDEST_FORMAT} to {FORMAT})\n  help: the archive is damaged or not a launch-tui backup; use another copy"
        ))),
    }
    let m: Manifest = serde_json::from_slice(json)
        .map_err(|e| problem(format!("{MANIFEST} is not a launch-tui manifest: {e}")))?;
    if m.entries.len() as u64 > ENTRIES_MAX {
        bail!(problem(format!(
            "the manifest lists {} entries (at most {ENTRIES_MAX})",
            m.entries.len()
        )));
    }
    for e in &m.entries {
        let p = check_entry_path(&e.path)?;
        if p != e.path {
            bail!(problem(format!(
                "the manifest lists `{}`, which is not a normalized path",
                e.path
            )));
        }
    }
    check_hashes(&m)?;
    check_links(&m)?;
    Ok(m)
}

/// The hash the manifest names is the one of its format, and every entry carries exactly
/// that: each file one well-formed hash in the algorithm's field, nothing else anywhere. An
/// archive cannot pick an algorithm this build does not check, leave an entry unhashed (it
/// would be read without a check) or list a hash in another algorithm's field (which the
/// check of its own algorithm would not see).
pub fn check_hashes(m: &Manifest) -> Result<HashAlgorithm> {
    const HELP: &str = "help: the archive is damaged or was not written by launch-tui; use another copy, or take a new backup";
    let algorithm = match (m.format, m.hash.as_deref()) {
        (1, None) => HashAlgorithm::Sha256,
        (1, Some(h)) => bail!(problem(format!(
            "{MANIFEST} is of format 1 (sha256) but names the hash `{}`: format 1 names none\n  {HELP}",
            shown(h)
        ))),
        (_, Some("blake3")) => HashAlgorithm::Blake3,
        (f, Some("sha256")) => bail!(problem(format!(
            "{MANIFEST} of format {f} names the hash `sha256`: since format 2 the entries' hash is blake3 (format 1's sha256 comes without a `hash` field)\n  {HELP}"
        ))),
        (f, Some(h)) => bail!(problem(format!(
            "{MANIFEST} names the hash `{}`, which launch-tui does not know (format {f} archives are hashed with blake3)\n  {HELP}",
            shown(h)
        ))),
        (f, None) => bail!(problem(format!(
            "{MANIFEST} of format {f} names no hash algorithm (`\"hash\": \"blake3\"`)\n  {HELP}"
        ))),
    };
    let name = algorithm.name();
    for e in &m.entries {
        let path = shown(&e.path);
        let fields = [
            (HashAlgorithm::Sha256, e.sha256.as_deref()),
            (HashAlgorithm::Blake3, e.blake3.as_deref()),
        ];
        for (other, value) in fields {
            if let Some(v) = value {
                if e.kind != EntryKind::File {
                    bail!(problem(format!(
                        "entry `{path}` is a {:?} but carries a {} (`{}`): only files are hashed\n  {HELP}",
                        e.kind,
                        other.name(),
                        shown(v)
                    )));
                }
                if other != algorithm {
                    bail!(problem(format!(
                        "entry `{path}` carries a {} (`{}`) in an archive hashed with {name}: one archive uses one algorithm\n  {HELP}",
                        other.name(),
                        shown(v)
                    )));
                }
            }
        }
        if e.kind != EntryKind::File {
            continue;
        }
        let Some(v) = e.hash(algorithm) else {
            bail!(problem(format!(
                "entry `{path}` has no {name} in {MANIFEST}, so it could not be checked\n  {HELP}"
            )));
        };
        if v.len() != 64 || !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            bail!(problem(format!(
                "entry `{path}` has the {name} `{}`, which is not 64 lowercase hex digits\n  {HELP}",
                shown(v)
            )));
        }
    }
    Ok(algorithm)
}

/// The bytes the archive's files take once extracted, as its manifest declares them (each
/// file rounded up to a 4 KiB block, as a filesystem stores it).
pub fn declared_size(m: &Manifest) -> u64 {
    m.entries
        .iter()
        .map(|e| match e.kind {
            EntryKind::File => e.size.saturating_add(4095) & !4095,
            _ => 4096,
        })
        .fold(0u64, u64::saturating_add)
}

/// Reads only the manifest (the first entry), for listing.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let mut ar = tar::Archive::new(open(path)?);
    let mut entries = ar.entries().map_err(read_error)?;
    let mut first = entries
        .next()
        .ok_or_else(|| problem("the archive is empty"))?
        .map_err(read_error)?;
    let p = first.path()?.to_string_lossy().into_owned();
    if p.trim_start_matches("./") != MANIFEST || first.size() > MANIFEST_MAX {
        bail!(problem(format!(
            "the archive does not start with {MANIFEST}"
        )));
    }
    let mut json = Vec::with_capacity(first.size() as usize);
    (&mut first)
        .take(MANIFEST_MAX)
        .read_to_end(&mut json)
        .map_err(read_error)?;
    parse_manifest(&json)
}

#[cfg(test)]
mod tests;

/// A manifest's database kind whose adapter makes no dump (a files-only app).
fn files_only(kind: &str) -> bool {
    crate::database::by_label(kind).is_ok_and(|a| !a.has_dump())
}
