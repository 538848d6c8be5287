//! Instances: one installed app, recorded in `CONFIG/instances/NAME.yaml` on the host (mode
//! 0600, written atomically: it holds the app's generated secrets) and copied into the
//! container at `/etc/launch/instance.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LaunchError;
use crate::fsutil;
use crate::profile::check_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    #[default]
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub node: String,
    pub vmid: u32,
    pub hostname: String,
    /// The address the host reaches the app at (from the CT's interfaces after start).
    #[serde(default)]
    pub ip: Option<String>,
    pub storage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub name: String,
    pub profile: String,
    pub app_version: String,
    pub container: Container,
    #[serde(default)]
    pub active_slot: Slot,
    /// Releases kept on disk in the container, newest last.
    #[serde(default)]
    pub releases: Vec<String>,
    /// Versions of the extra components installed beside the app (`mcp: 0.10.3`), checked
    /// against a release's `requires` before an update.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, String>,
    /// What the last update switched away from: `rollback` goes back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    /// The answers to the profile's questions, and the install settings (database kind ...).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Generated secrets (the app's signing secret, database passwords). Never logged.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    pub created: String,
    pub updated: String,
}

/// The release and slot an update left behind, with its data as it was at the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Previous {
    pub version: String,
    pub slot: Slot,
    /// When traffic left it: its data holds no writes made after this.
    pub until: String,
    /// A server database's dump taken before the update (in the container), which `rollback`
    /// restores; none for SQLite (the slot's own copy is the way back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<String>,
}

/// The directory of instance records.
pub struct InstanceStore {
    dir: PathBuf,
}

impl InstanceStore {
    pub fn new(config_dir: &Path) -> Self {
        InstanceStore {
            dir: config_dir.join("instances"),
        }
    }

    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.yaml"))
    }

    pub fn list(&self) -> Result<Vec<Instance>, LaunchError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(LaunchError::Failed(anyhow::anyhow!(
                    "cannot read {}: {e}",
                    self.dir.display()
                )))
            }
        };
        let mut paths: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        paths.sort();
        for p in paths {
            out.push(self.read(&p)?);
        }
        Ok(out)
    }

    pub fn load(&self, name: &str) -> Result<Instance, LaunchError> {
        check_instance_name(name)?;
        let p = self.path_of(name);
        if !p.exists() {
            let known: Vec<String> = self.list()?.into_iter().map(|i| i.name).collect();
            return Err(LaunchError::bad_input(
                format!("instance `{name}`"),
                "no such instance",
                if known.is_empty() {
                    "no instances are installed yet; install one with `launch-tui install`".into()
                } else {
                    format!("installed instances: {}", known.join(", "))
                },
            ));
        }
        self.read(&p)
    }

    fn read(&self, p: &Path) -> Result<Instance, LaunchError> {
        let text = std::fs::read_to_string(p).map_err(|e| {
            LaunchError::Failed(anyhow::anyhow!("cannot read {}: {e}", p.display()))
        })?;
        serde_yaml_ng::from_str(&text).map_err(|e| {
            LaunchError::bad_input(
                p.display().to_string(),
                format!("the instance record is damaged: {e}"),
                "restore it from the copy in the container (/etc/launch/instance.yaml) or a backup",
            )
        })
    }

    pub fn save(&self, inst: &Instance) -> Result<(), LaunchError> {
        let text = serde_yaml_ng::to_string(inst)
            .map_err(|e| LaunchError::Failed(anyhow::anyhow!("cannot encode the record: {e}")))?;
        fsutil::write_atomic(&self.path_of(&inst.name), text.as_bytes(), 0o600)?;
        Ok(())
    }

    pub fn remove(&self, name: &str) -> Result<(), LaunchError> {
        match std::fs::remove_file(self.path_of(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LaunchError::Failed(anyhow::anyhow!(
                "cannot remove the record of {name}: {e}"
            ))),
        }
    }
}

pub fn check_instance_name(name: &str) -> Result<(), LaunchError> {
    check_name(name).map_err(|problem| {
        LaunchError::bad_input(
            format!("instance name `{}`", crate::escape::shown(name)),
            problem,
            "instance names look like `tasks` or `tasks-2`",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_load_roundtrip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = InstanceStore::new(dir.path());
        let inst = Instance {
            name: "vikunja".into(),
            profile: "vikunja".into(),
            app_version: "v2.5.0".into(),
            container: Container {
                node: "pve".into(),
                vmid: 105,
                hostname: "vikunja".into(),
                ip: Some("10.0.0.5".into()),
                storage: "local-lvm".into(),
            },
            active_slot: Slot::Blue,
            releases: vec!["v2.5.0".into()],
            previous: None,
            components: BTreeMap::new(),
            settings: BTreeMap::new(),
            secrets: [("service_secret".to_string(), "s3cret".to_string())]
                .into_iter()
                .collect(),
            created: "2026-01-01T00:00:00Z".into(),
            updated: "2026-01-01T00:00:00Z".into(),
        };
        store.save(&inst).unwrap();
        assert_eq!(store.load("vikunja").unwrap(), inst);
        let mode = std::fs::metadata(store.path_of("vikunja"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.list().unwrap().len(), 1);
        let err = store.load("nope").unwrap_err().to_string();
        assert!(err.contains("installed instances: vikunja"), "{err}");
    }
}
