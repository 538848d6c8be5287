//! What `backup`, `backups` and `restore` hand back: typed reports, serialized as they are for
//! `--json` and the dashboard, with the text people read made from the same fields.

use std::path::PathBuf;

use serde::Serialize;

use super::take::mib;
use crate::report::Report;

/// A backup taken and verified.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub instance: String,
    pub archive: PathBuf,
    pub size: u64,
    pub entries: usize,
    pub verified: bool,
}

impl Report for BackupReport {
    fn text(&self) -> String {
        format!(
            "Backed up {name}: {path}\n  {size}, {n} entries, verified; mode 0600 (it holds the instance's secrets)\n  restore: launch-tui restore {name} {path}",
            name = self.instance,
            path = self.archive.display(),
            size = mib(self.size),
            n = self.entries
        )
    }
}

/// One archive in `backups`.
#[derive(Debug, Clone, Serialize)]
pub struct ListedBackup {
    pub archive: PathBuf,
    /// `YYYY-MM-DD HH:MM:SS`, UTC, from the file's name.
    pub created: String,
    pub version: String,
    pub size: u64,
    /// "verified TIME", "not verified", "changed since verified", "unreadable".
    pub state: String,
    /// Why it was taken (the manifest's reason), or why the manifest cannot be read.
    pub reason: String,
}

/// An instance's archives in its backup directory, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct BackupsReport {
    pub instance: String,
    pub dir: PathBuf,
    pub backups: Vec<ListedBackup>,
}

impl Report for BackupsReport {
    fn text(&self) -> String {
        if self.backups.is_empty() {
            return format!(
                "No backups of {} in {}. Take one with `launch-tui backup {}`.",
                self.instance,
                self.dir.display(),
                self.instance
            );
        }
        let mut text = format!(
            "{:<20}  {:<10}  {:>10}  {:<32}  {}\n",
            "CREATED (UTC)", "VERSION", "SIZE", "STATE", "ARCHIVE"
        );
        for b in &self.backups {
            text.push_str(&format!(
                "{:<20}  {:<10}  {:>10}  {:<32}  {}\n",
                b.created,
                b.version,
                mib(b.size),
                b.state,
                b.archive.display()
            ));
        }
        text.push_str(&format!(
            "re-check one: launch-tui backups {} --verify ARCHIVE",
            self.instance
        ));
        text
    }
}

/// One archive checked completely (`backups NAME --verify ARCHIVE`).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub archive: PathBuf,
    pub verified: bool,
    pub entries: usize,
    /// The archive format and the hash its manifest uses for each entry.
    pub format: u32,
    pub hash: String,
    /// Whose archive it is, as its manifest says.
    pub instance: String,
    #[serde(skip)]
    pub profile: String,
    pub version: String,
    pub created: String,
    #[serde(skip)]
    pub reason: String,
    #[serde(skip)]
    pub size: u64,
}

impl Report for VerifyReport {
    fn text(&self) -> String {
        format!(
            "{}: verified: format {}, {} entries ({} and size of each), {} of {} {} taken {} ({}), {}",
            self.archive.display(),
            self.format,
            self.entries,
            self.hash,
            self.instance,
            self.profile,
            self.version,
            self.created,
            self.reason,
            mib(self.size)
        )
    }
}

/// The container a `restore --to-new` installed.
#[derive(Debug, Clone, Serialize)]
pub struct NewContainer {
    pub vmid: u32,
    pub ip: String,
}

/// A restore that finished: the instance answers its health check with the archive's data.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub instance: String,
    pub archive: PathBuf,
    pub version: String,
    /// The archive's profile and when it was taken, as its manifest says.
    #[serde(skip)]
    pub profile: String,
    #[serde(skip)]
    pub taken: String,
    /// The backup taken just before (restoring it undoes this restore).
    pub safety_backup: Option<PathBuf>,
    pub log: PathBuf,
    /// Set by `--to-new`: the container installed for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_container: Option<NewContainer>,
}

impl Report for RestoreReport {
    fn text(&self) -> String {
        let mut text = format!(
            "Restored {name} from {} ({} {}, taken {}); it answers its health check.",
            self.archive.display(),
            self.profile,
            self.version,
            self.taken,
            name = self.instance,
        );
        if let Some(p) = &self.safety_backup {
            text.push_str(&format!(
                "\n  undo:      launch-tui restore {} {}  (the safety backup)",
                self.instance,
                p.display()
            ));
        }
        text.push_str(&format!("\n  log:       {}", self.log.display()));
        if let Some(n) = &self.new_container {
            text.push_str(&format!(
                "\n  new instance {} in CT {} (from this host: http://{}/)",
                self.instance, n.vmid, n.ip
            ));
        }
        text
    }
}
