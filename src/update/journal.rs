//! The journal of a running update or rollback: written before its first step and after each
//! one, removed when it ends. Finding one means the operation was cut off (kill, power loss);
//! `recover` then finishes or undoes it from the container's real state.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::instance::Slot;
use crate::oplock::state_dir;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// `update` or `rollback`.
    pub operation: String,
    pub instance: String,
    pub from_version: String,
    pub to_version: String,
    pub from_slot: Slot,
    pub to_slot: Slot,
    /// The release directory did not exist before (so undoing removes it).
    pub new_release: bool,
    pub started: String,
    pub pid: u32,
    pub host: String,
    #[serde(default)]
    pub snapshot: Option<String>,
    /// The safety backup archive taken before anything changed (on the host).
    #[serde(default)]
    pub backup: Option<String>,
    /// A server database's pre-update dump, inside the container.
    #[serde(default)]
    pub dump: Option<String>,
    /// Each slot has its own database: the new slot's was emptied and loaded from the dump.
    #[serde(default)]
    pub db_loaded: bool,
    /// Each slot has its own database: a dump of the new slot's database as it was before
    /// this update (what `rollback` went back to), loaded back if the update is undone.
    #[serde(default)]
    pub previous_dump: Option<String>,
    #[serde(default)]
    pub steps_done: Vec<String>,
}

impl Journal {
    pub fn path(instance: &str) -> PathBuf {
        state_dir().join("journal").join(format!("{instance}.json"))
    }

    pub fn load(instance: &str) -> Result<Option<Journal>> {
        let p = Self::path(instance);
        match std::fs::read_to_string(&p) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "the operation journal {} is damaged; move it aside and run `launch-tui status {instance}`",
                    p.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_atomic(&Self::path(&self.instance), text.as_bytes(), 0o600)
    }

    pub fn mark(&mut self, step: &str) -> Result<()> {
        if !self.steps_done.iter().any(|s| s == step) {
            self.steps_done.push(step.to_string());
        }
        self.save()
    }

    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(Self::path(&self.instance)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context("cannot remove the operation journal")
            }
            _ => Ok(()),
        }
    }
}
