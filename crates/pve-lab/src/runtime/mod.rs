//! Real containers for the lab: templates, rootfs images, network namespaces, systemd-nspawn.
//! Everything here shells out to the host tools a Proxmox node would use underneath (ip, nft,
//! mount, mkfs.ext4, systemd-nspawn, nsenter) and names the command in every error.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::time::Duration;

use anyhow::Result;

/// The lab's bridge network. Every host-side name (bridge, veths, netns, nft table, cgroups)
/// derives from `prefix`, so two labs (and parallel test runs) can coexist on one machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabNet {
    /// At most 6 characters, `[a-z0-9]`, e.g. "plab0".
    pub prefix: String,
    /// The network address, e.g. 10.77.0.0.
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
}

impl Default for LabNet {
    fn default() -> Self {
        LabNet {
            prefix: "plab0".into(),
            subnet: Ipv4Addr::new(10, 77, 0, 0),
            prefix_len: 24,
        }
    }
}

impl LabNet {
    /// The first host address of the subnet (".1"), held by the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet) | 1)
    }
    pub fn bridge(&self) -> String {
        format!("{}br0", self.prefix)
    }
}

/// What `start` needs beyond the image: the PVE config of the container, already parsed.
#[derive(Debug, Clone, Default)]
pub struct StartSpec {
    pub vmid: u32,
    pub hostname: String,
    pub ip: Option<(Ipv4Addr, u8)>,
    pub gw: Option<Ipv4Addr>,
    pub nameserver: Option<String>,
    pub searchdomain: Option<String>,
    pub mtu: Option<u16>,
    pub hwaddr: Option<String>,
    pub memory_mib: u64,
    pub cores: u32,
    pub ssh_public_keys: Option<String>,
    pub root_password_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CtRuntimeStatus {
    pub running: bool,
    pub init_pid: Option<i32>,
    pub uptime_s: u64,
    pub mem_bytes: u64,
    pub disk_used: u64,
    pub disk_total: u64,
    pub netin: u64,
    pub netout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    pub name: &'static str,
    pub suite: &'static str,
    pub os_version: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "debian-12-standard_12.7-1_amd64.tar.zst",
        suite: "bookworm",
        os_version: "12",
    },
    Template {
        name: "debian-13-standard_13.1-2_amd64.tar.zst",
        suite: "trixie",
        os_version: "13",
    },
];

/// One lab node's container runtime. Cheap to build; all state lives under `state_dir`.
#[derive(Debug, Clone)]
pub struct Runtime {
    state_dir: PathBuf,
    cache_dir: PathBuf,
    net: LabNet,
}

impl Runtime {
    pub fn new(state_dir: PathBuf, cache_dir: PathBuf, net: LabNet) -> Runtime {
        Runtime {
            state_dir,
            cache_dir,
            net,
        }
    }
    pub fn net(&self) -> &LabNet {
        &self.net
    }
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    pub fn missing_host_packages() -> Vec<&'static str> {
        Vec::new()
    }
    pub fn install_host_packages(_pkgs: &[&str]) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn network_up(&self) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn network_down(&self) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn ensure_template(&self, _t: &Template, _log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
        anyhow::bail!("not implemented yet")
    }
    pub fn template_cached(&self, _t: &Template) -> bool {
        false
    }
    pub fn create(
        &self,
        _vmid: u32,
        _template: &Path,
        _size_gib: f64,
        _log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn resize(&self, _vmid: u32, _size_gib: f64) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn start(&self, _spec: &StartSpec, _log: &mut dyn FnMut(&str)) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn shutdown(&self, _vmid: u32, _timeout: Duration) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn stop(&self, _vmid: u32) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn status(&self, _vmid: u32) -> Result<CtRuntimeStatus> {
        anyhow::bail!("not implemented yet")
    }
    pub fn exists(&self, _vmid: u32) -> bool {
        false
    }
    #[allow(clippy::type_complexity)]
    pub fn ipv4_addresses(&self, _vmid: u32) -> Result<Vec<(String, String, Vec<(Ipv4Addr, u8)>)>> {
        anyhow::bail!("not implemented yet")
    }
    pub fn exec(
        &self,
        _vmid: u32,
        _argv: &[String],
        _env: &[(String, String)],
    ) -> Result<ExitStatus> {
        anyhow::bail!("not implemented yet")
    }
    pub fn exec_capture(&self, _vmid: u32, _argv: &[String]) -> Result<Output> {
        anyhow::bail!("not implemented yet")
    }
    pub fn push(
        &self,
        _vmid: u32,
        _src: &Path,
        _dst: &str,
        _perms: Option<u32>,
        _user: Option<&str>,
        _group: Option<&str>,
    ) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn pull(&self, _vmid: u32, _src: &str, _dst: &Path, _perms: Option<u32>) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn snapshot(&self, _vmid: u32, _name: &str) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn rollback(&self, _vmid: u32, _name: &str) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn delete_snapshot(&self, _vmid: u32, _name: &str) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn vzdump(&self, _vmid: u32, _out: &Path, _log: &mut dyn FnMut(&str)) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn destroy(&self, _vmid: u32) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn fill_disk(&self, _vmid: u32) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn clear_fill(&self, _vmid: u32) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn kill_init(&self, _vmid: u32) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
    pub fn running_vmids(&self) -> Vec<u32> {
        Vec::new()
    }
    pub fn leftovers(&self) -> Vec<String> {
        Vec::new()
    }
}
