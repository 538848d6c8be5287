//! Where the runtime keeps things on disk, and the small JSON records that let another
//! process (the `pct` shim, a restarted daemon) find running containers again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::cmd;
use super::{LabNet, Runtime};

/// `state_dir/runtime.json`: what the `pct` shim needs to rebuild a `Runtime`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub net: LabNet,
    pub cache_dir: PathBuf,
    /// The PVE node name the lab answers as, for pct's error messages (set by the API side
    /// with `Runtime::set_node_name`; kept across `network_up`).
    #[serde(default)]
    pub node: Option<String>,
}

/// `state_dir/ct/<vmid>/run.json`: one booted container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// The outer systemd-nspawn process, and its start time to tell it from a reused pid.
    pub pid: i32,
    pub pid_start: u64,
    pub started_unix: u64,
    pub netns: String,
    pub veth: String,
    pub mountpoint: PathBuf,
    /// Per-container cgroup directories (v1 controllers and unified) made for it.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
}

impl RunState {
    /// The recorded nspawn is still the same live process.
    pub fn alive(&self) -> bool {
        cmd::proc_start_time(self.pid) == Some(self.pid_start)
    }
}

impl Runtime {
    pub(crate) fn config_path(state_dir: &Path) -> PathBuf {
        state_dir.join("runtime.json")
    }
    pub(crate) fn image_dir(&self, vmid: u32) -> PathBuf {
        self.state_dir.join("images").join(vmid.to_string())
    }
    /// The rootfs volume, named as on a PVE "local-lvm" storage.
    pub fn image_path(&self, vmid: u32) -> PathBuf {
        self.image_dir(vmid).join(format!("vm-{vmid}-disk-0.raw"))
    }
    pub(crate) fn snapshot_path(&self, vmid: u32, name: &str) -> PathBuf {
        self.image_dir(vmid)
            .join(format!("snap_vm-{vmid}-disk-0_{name}.raw"))
    }
    pub(crate) fn ct_dir(&self, vmid: u32) -> PathBuf {
        self.state_dir.join("ct").join(vmid.to_string())
    }
    pub fn console_log_path(&self, vmid: u32) -> PathBuf {
        self.ct_dir(vmid).join("console.log")
    }
    fn run_state_path(&self, vmid: u32) -> PathBuf {
        self.ct_dir(vmid).join("run.json")
    }
    pub(crate) fn mnt_root(&self) -> PathBuf {
        self.state_dir.join("mnt")
    }
    pub(crate) fn mountpoint(&self, vmid: u32) -> PathBuf {
        self.mnt_root().join(vmid.to_string())
    }
    pub(crate) fn lock_path(&self, vmid: u32) -> PathBuf {
        self.state_dir.join("locks").join(format!("{vmid}.lock"))
    }
    pub(crate) fn template_dir(&self) -> PathBuf {
        self.cache_dir.join("template").join("cache")
    }
    pub fn template_path(&self, t: &super::Template) -> PathBuf {
        self.template_dir().join(t.name)
    }

    /// Host names of a container's network plumbing. Interface names are limited to 15 bytes,
    /// so 9-digit VMIDs with a 6-char prefix switch to base 36 under a different letter.
    pub(crate) fn netns_name(&self, vmid: u32) -> String {
        format!("{}-{vmid}", self.net.prefix)
    }
    pub(crate) fn veth_name(&self, vmid: u32) -> String {
        let dec = format!("{}v{vmid}", self.net.prefix);
        if dec.len() <= 15 {
            dec
        } else {
            format!("{}x{}", self.net.prefix, base36(vmid))
        }
    }
    pub(crate) fn machine_name(&self, vmid: u32) -> String {
        format!("{}-{vmid}", self.net.prefix)
    }

    pub(crate) fn read_run_state(&self, vmid: u32) -> Option<RunState> {
        let text = std::fs::read_to_string(self.run_state_path(vmid)).ok()?;
        serde_json::from_str(&text).ok()
    }
    pub(crate) fn write_run_state(&self, vmid: u32, st: &RunState) -> Result<()> {
        let json = serde_json::to_vec_pretty(st).context("serializing run state")?;
        cmd::write_atomic(&self.run_state_path(vmid), &json, 0o600)
    }
    pub(crate) fn remove_run_state(&self, vmid: u32) {
        let _ = std::fs::remove_file(self.run_state_path(vmid));
    }

    /// VMIDs that have a ct/ directory (booted at least once) or an image.
    pub(crate) fn known_vmids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = ["ct", "images"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.state_dir.join(d)).ok())
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_ifnamsiz() {
        let rt = Runtime::new(
            "/tmp/s".into(),
            "/tmp/c".into(),
            LabNet {
                prefix: "abcdef".into(),
                ..LabNet::default()
            },
        );
        assert_eq!(rt.veth_name(100), "abcdefv100");
        assert_eq!(rt.veth_name(99_999_999), "abcdefv99999999");
        let long = rt.veth_name(999_999_999);
        assert_eq!(long, "abcdefxgjdgxr");
        assert!(long.len() <= 15);
        assert_eq!(base36(0), "0");
    }
}
