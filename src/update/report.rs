//! What `update` and `rollback` hand back: typed reports, serialized as they are for `--json`
//! and the dashboard, with the text people read made from the same fields.

use std::path::PathBuf;

use serde::Serialize;

use crate::report::Report;

/// `update --check`: what is recorded, what runs, what could come.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub instance: String,
    pub recorded: String,
    /// What the app itself reports, when its profile can ask it.
    pub running: Option<String>,
    /// Why `running` is unknown, in words (no probe, no answer).
    #[serde(skip)]
    pub running_unknown: String,
    pub channel: String,
    pub newest: String,
    pub target: String,
    /// `--version` as given.
    #[serde(skip)]
    pub asked_version: Option<String>,
    /// The commit a source build of `target` is made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub update_available: bool,
    /// Whether upstream's newest release is newer than every release the profile pins.
    #[serde(skip)]
    pub upstream_newer: bool,
    pub upstream: Option<Upstream>,
    pub pending_operation: Option<PendingOperation>,
}

/// Upstream's newest release, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An update or rollback that was cut off and waits to be finished or undone.
#[derive(Debug, Clone, Serialize)]
pub struct PendingOperation {
    pub operation: String,
    pub from: String,
    pub to: String,
    pub started: String,
}

impl Report for CheckReport {
    fn text(&self) -> String {
        let mut text = format!(
            "{name}: {recorded} recorded, {running} running; newest allowed ({channel}): {newest}",
            name = self.instance,
            recorded = self.recorded,
            running = self.running.as_deref().unwrap_or(&self.running_unknown),
            channel = self.channel,
            newest = self.newest,
        );
        if let Some(r) = &self.running {
            if r != &self.recorded {
                text.push_str(&format!(
                    "\n  warning: the app reports {r}, the record says {}",
                    self.recorded
                ));
            }
        }
        if let Some(j) = &self.pending_operation {
            text.push_str(&format!(
                "\n  an interrupted {} ({} → {}) is pending: `launch-tui update {}` finishes or undoes it",
                j.operation, j.from, j.to, self.instance
            ));
        }
        if let Some(commit) = &self.commit {
            text.push_str(&format!(
                "\n  {} is built from commit {commit}",
                self.target
            ));
        }
        match &self.upstream {
            Some(Upstream {
                latest: Some(v), ..
            }) if self.upstream_newer => text.push_str(&format!(
                "\n  upstream's newest release is {v}, newer than the {} this profile pins: a newer profile (or launch-tui) offers it with its verified sha256",
                self.newest
            )),
            Some(Upstream {
                latest: Some(v), ..
            }) => text.push_str(&format!("\n  upstream's newest release is {v}")),
            Some(Upstream { error: Some(e), .. }) => {
                text.push_str(&format!("\n  upstream: {e}"))
            }
            _ => {}
        }
        text.push_str(&if self.update_available {
            format!(
                "\n  update available: {} → {} (run `launch-tui update {}{}`)",
                self.recorded,
                self.target,
                self.instance,
                self.asked_version
                    .as_ref()
                    .map(|v| format!(" --version {v}"))
                    .unwrap_or_default()
            )
        } else {
            "\n  nothing to do".into()
        });
        text
    }
}

/// An update that found nothing to do, or finished an interrupted one that had reached the
/// target already.
#[derive(Debug, Clone, Serialize)]
pub struct NothingToDo {
    pub instance: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<bool>,
    /// What finishing or undoing the interrupted operation did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<String>,
}

impl Report for NothingToDo {
    fn text(&self) -> String {
        match &self.recovered {
            Some(what) => format!("{what}\n{} is at {}.", self.instance, self.version),
            None => format!(
                "{} is at {}, the newest release allowed: nothing to do.",
                self.instance, self.version
            ),
        }
    }
}

/// One phase of the write hold and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct HoldPhase {
    pub phase: String,
    pub ms: u64,
}

/// A finished blue-green update.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    pub instance: String,
    pub from: String,
    pub to: String,
    pub updated: bool,
    pub elapsed_ms: u64,
    /// How long writes waited at nginx.
    pub writes_held_ms: u64,
    /// From the upstream's change to the first request the new slot answered through nginx.
    pub switch_ms: u64,
    pub drain_ms: Option<u64>,
    pub hold_phases_ms: Vec<HoldPhase>,
    /// The pre-update Proxmox snapshot, when the storage takes one.
    pub snapshot: Option<String>,
    /// Free and needed disk in the container, as the preflight found them.
    #[serde(skip)]
    pub disk: String,
    pub log: PathBuf,
}

impl Report for UpdateReport {
    fn text(&self) -> String {
        let phases = self
            .hold_phases_ms
            .iter()
            .map(|p| format!("{} {} ms", p.phase, p.ms))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "Updated {name}: {from} → {to} in {secs:.1} s, without downtime.\n  writes held: {held} ms (writes waited at nginx and went on to {to}; reads kept flowing)\n  hold phases: {phases}\n  switch:      {switch} ms (no reload; proven by a request through nginx)\n  disk:        {disk}\n  previous:    {from} stays on disk; go back with `launch-tui rollback {name}`\n  log:         {log}",
            name = self.instance,
            from = self.from,
            to = self.to,
            secs = self.elapsed_ms as f64 / 1000.0,
            held = self.writes_held_ms,
            switch = self.switch_ms,
            disk = self.disk,
            log = self.log.display(),
        )
    }
}

/// A finished rollback to the previous release.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub instance: String,
    pub from: String,
    pub to: String,
    /// The data is as it was at this time, when the update switched away from `to`.
    pub data_as_of: String,
    /// Where `from`'s data stays until the next update.
    pub kept_data: String,
    pub switch_ms: Option<u64>,
    #[serde(skip)]
    pub elapsed_ms: u64,
    pub log: PathBuf,
}

impl Report for RollbackReport {
    fn text(&self) -> String {
        format!(
            "Rolled {name} back: {from} → {to} in {secs:.1} s.\n  data: as it was at {until}; {from}'s data stays in {kept} until the next update\n  log:  {log}",
            name = self.instance,
            from = self.from,
            to = self.to,
            secs = self.elapsed_ms as f64 / 1000.0,
            until = self.data_as_of,
            kept = self.kept_data,
            log = self.log.display(),
        )
    }
}

/// A finished `rollback --snapshot`.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRollbackReport {
    pub instance: String,
    pub vmid: u32,
    pub snapshot: String,
    /// The version the container's record held then.
    pub version: String,
    pub log: PathBuf,
}

impl Report for SnapshotRollbackReport {
    fn text(&self) -> String {
        format!(
            "Rolled CT {} back to {}: {} {} serves.\n  log: {}",
            self.vmid,
            self.snapshot,
            self.instance,
            self.version,
            self.log.display()
        )
    }
}
