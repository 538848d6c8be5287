//! Real containers for the lab: templates, rootfs images, network namespaces, systemd-nspawn.
//! Everything here shells out to the host tools a Proxmox node would use underneath (ip, nft,
//! mount, mkfs.ext4, systemd-nspawn, nsenter) and names the command in every error.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::time::Duration;

use anyhow::{Context, Result};

mod cmd;
mod container;
mod dhcp;
mod image;
pub mod nesting;
mod net;
mod state;
mod template;

pub use state::RuntimeConfig;
pub use template::TemplateBuildInfo;

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
    /// Checks the names and addresses derived from this network are usable.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > 6
            || !p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(RuntimeError::InvalidLabNet {
                value: p.clone(),
                problem: "the prefix must be 1 to 6 characters of a-z and 0-9",
                help: "use a short name such as plab0 (it prefixes the bridge, veth, netns and nft table names)",
            });
        }
        if !(8..=30).contains(&self.prefix_len) {
            return Err(RuntimeError::InvalidLabNet {
                value: format!("{}/{}", self.subnet, self.prefix_len),
                problem: "the prefix length must be between 8 and 30",
                help: "use a /24 such as 10.77.0.0/24",
            });
        }
        let mask = u32::MAX << (32 - u32::from(self.prefix_len));
        if u32::from(self.subnet) & !mask != 0 {
            return Err(RuntimeError::InvalidLabNet {
                value: format!("{}/{}", self.subnet, self.prefix_len),
                problem: "the subnet has host bits set",
                help: "give the network address, e.g. 10.77.0.0/24 rather than 10.77.0.1/24",
            });
        }
        Ok(())
    }
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
    /// No `features: nesting=1`: PVE's AppArmor profile then denies mounts, so systemd units
    /// with namespace sandboxing fail with 226/NAMESPACE; the lab starts the container's init
    /// under Landlock to the same effect (see `nesting.rs`).
    pub confined: bool,
    /// `ip=dhcp`: the container asks the lab's DHCP server for its address (`ip` is unset).
    pub dhcp: bool,
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

/// What a lab user can get wrong or run into, each with the value involved and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid VMID {vmid}: a VMID is an integer from 100 to 999999999\nhelp: pick a free id such as 100")]
    InvalidVmid { vmid: u32 },
    #[error(
        "CT {vmid} does not exist (no rootfs image)\nhelp: create it first, or check the VMID"
    )]
    NoSuchCt { vmid: u32 },
    #[error("CT {vmid} already exists\nhelp: destroy it first or choose another VMID")]
    CtExists { vmid: u32 },
    #[error("CT {vmid} not running\nhelp: start it first")]
    NotRunning { vmid: u32 },
    #[error("CT {vmid} is already running")]
    AlreadyRunning { vmid: u32 },
    #[error("cannot {action} CT {vmid} while it is running\nhelp: stop or shut it down first")]
    Running { vmid: u32, action: &'static str },
    #[error("template or archive {path} does not exist\nhelp: download the template first (ensure_template / aplinfo), or check the path")]
    NoSuchTemplate { path: PathBuf },
    #[error("invalid disk size {value} GiB: it must be between 0.1 and 16384\nhelp: give a size in GiB such as 4 or 8")]
    InvalidSize { value: f64 },
    #[error("cannot shrink CT {vmid}'s disk from {current_gib:.1} GiB to {requested_gib} GiB\nhelp: disks only grow; give a size of at least {current_gib:.1} GiB")]
    ShrinkNotSupported {
        vmid: u32,
        current_gib: f64,
        requested_gib: f64,
    },
    #[error("invalid snapshot name '{name}': it must start with a letter, then letters, digits, '_' or '-' (2 to 40 characters), and not be 'current'\nhelp: use a name such as before_update")]
    InvalidSnapshotName { name: String },
    #[error("snapshot '{name}' of CT {vmid} does not exist\nhelp: list the snapshots and pick an existing name")]
    NoSuchSnapshot { vmid: u32, name: String },
    #[error("snapshot '{name}' of CT {vmid} already exists\nhelp: delete it first or choose another name")]
    SnapshotExists { vmid: u32, name: String },
    #[error("invalid {field} '{value}'\nhelp: {help}")]
    InvalidSpec {
        field: &'static str,
        value: String,
        help: &'static str,
    },
    #[error("invalid lab network '{value}': {problem}\nhelp: {help}")]
    InvalidLabNet {
        value: String,
        problem: &'static str,
        help: &'static str,
    },
    #[error("the lab bridge {bridge} does not exist\nhelp: bring the lab network up first (`pve-lab up`, Runtime::network_up)")]
    NetworkDown { bridge: String },
    #[error("`{command}` failed ({status}):\n{stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("could not run `{command}`: {reason}\nhelp: install {package} (apt-get install {package}) and run as root")]
    CommandMissing {
        command: String,
        package: &'static str,
        reason: String,
    },
    #[error("{tool} is not installed\nhelp: apt-get install {package}")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    #[error("timed out after {waited_s} s waiting for the lock on {what} ({path})\nhelp: another operation on it is still running; retry when it is done")]
    LockTimeout {
        what: String,
        path: PathBuf,
        waited_s: u64,
    },
    #[error("CT {vmid} failed to boot: {reason}; console log ends with:\n{console}\nhelp: see the whole console log in the lab's state dir (ct/{vmid}/console.log)")]
    BootFailed {
        vmid: u32,
        reason: String,
        console: String,
    },
    #[error("CT {vmid} did not reach running within {secs} s (systemd says '{state}'); console log ends with:\n{console}\nhelp: see the whole console log in the lab's state dir (ct/{vmid}/console.log)")]
    BootTimeout {
        vmid: u32,
        secs: u64,
        state: String,
        console: String,
    },
    #[error("no lab runtime settings in {path}\nhelp: bring the lab up first (`pve-lab up`), which writes them")]
    NoRuntimeConfig { path: PathBuf },
}

pub(crate) fn validate_vmid(vmid: u32) -> Result<(), RuntimeError> {
    if (100..=999_999_999).contains(&vmid) {
        Ok(())
    } else {
        Err(RuntimeError::InvalidVmid { vmid })
    }
}

/// One lab node's container runtime. Cheap to build and clone; all state lives under
/// `state_dir`, so several threads and processes can use it at once (per-CT operations
/// serialize on a lock file).
#[derive(Debug, Clone)]
pub struct Runtime {
    state_dir: PathBuf,
    cache_dir: PathBuf,
    net: LabNet,
}

impl Runtime {
    pub fn new(state_dir: PathBuf, cache_dir: PathBuf, net: LabNet) -> Runtime {
        // Absolute, because mount points are compared with /proc/mounts and handed to
        // nspawn, and the pct shim may run from another directory.
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        Runtime {
            state_dir: abs(state_dir),
            cache_dir: abs(cache_dir),
            net,
        }
    }

    /// The runtime a lab brought up in `state_dir` uses (from the runtime.json that
    /// `network_up` writes); this is how the `pct` shim finds it.
    pub fn from_state_dir(state_dir: &Path) -> Result<Runtime> {
        let path = Runtime::config_path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NoRuntimeConfig { path }.into())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let cfg: RuntimeConfig =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Runtime::new(
            state_dir.to_path_buf(),
            cfg.cache_dir,
            cfg.net,
        ))
    }

    /// Records the node name the lab answers as, for the `pct` shim's messages.
    pub fn set_node_name(&self, node: &str) -> Result<()> {
        let mut cfg = self.read_config().unwrap_or_else(|| RuntimeConfig {
            net: self.net.clone(),
            cache_dir: self.cache_dir.clone(),
            node: None,
        });
        cfg.node = Some(node.to_string());
        self.write_config(&cfg)
    }

    /// The node name recorded with `set_node_name`, else the host's short hostname.
    pub fn node_name(&self) -> String {
        self.read_config().and_then(|c| c.node).unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .and_then(|h| h.trim().split('.').next().map(str::to_string))
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
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

    /// Debian packages whose tools the runtime needs and that are not installed.
    pub fn missing_host_packages() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = cmd::TOOLS
            .iter()
            .filter(|(t, _)| cmd::find_tool(t).is_none())
            .map(|(_, p)| *p)
            .collect();
        v.dedup();
        v
    }

    /// `apt-get update` then `apt-get install -y` the packages; waits for a busy dpkg lock
    /// (another lab installing at the same time) instead of failing.
    pub fn install_host_packages(pkgs: &[&str]) -> Result<()> {
        if pkgs.is_empty() {
            return Ok(());
        }
        let apt = |args: &[&str]| -> Result<()> {
            let mut c = cmd::tool("apt-get");
            c.args(["-q", "-o", "DPkg::Lock::Timeout=600"])
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive");
            cmd::run(&mut c).map(|_| ())
        };
        apt(&["update"]).context("refreshing apt's package lists")?;
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend_from_slice(pkgs);
        apt(&args).with_context(|| format!("installing host packages {}", pkgs.join(" ")))
    }

    /// Bridge with the gateway address, IPv4 forwarding, and an nft table named after the
    /// prefix that masquerades the subnet. Idempotent. Also writes `state_dir/runtime.json`.
    pub fn network_up(&self) -> Result<()> {
        self.net_up()?;
        self.dhcp_up()
    }

    /// Reserves (or keeps) CT `vmid`'s DHCP address for its MAC; returns the address.
    pub fn dhcp_reserve_for(&self, vmid: u32, mac: &str, ip: Ipv4Addr) -> Result<Ipv4Addr> {
        self.dhcp_reserve(vmid, mac, ip)
    }

    pub fn dhcp_release_for(&self, vmid: u32) -> Result<()> {
        self.dhcp_release(vmid)
    }

    /// Every reservation moved: `(vmid, old, new)`.
    pub fn dhcp_renumber_all(&self) -> Result<Vec<(u32, Ipv4Addr, Ipv4Addr)>> {
        self.dhcp_renumber()
    }

    /// Removes the bridge, the container veths and netns, and the nft table of this lab,
    /// and cleans up after containers that died on their own (mounts, cgroups). Idempotent.
    /// Stop the running containers first: they would lose their network.
    pub fn network_down(&self) -> Result<()> {
        let dhcp = self.dhcp_down();
        self.net_down()?;
        dhcp
    }

    /// The template tarball in the cache (`cache_dir/template/cache/<name>`), building it
    /// with debootstrap if missing (atomic rename; a lock so concurrent callers build once).
    pub fn ensure_template(&self, t: &Template, log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
        self.template_ensure(t, log)
    }

    pub fn template_cached(&self, t: &Template) -> bool {
        self.template_path(t).is_file()
    }

    /// A real ext4 image of `size_gib` on "local-lvm"
    /// (`state_dir/images/<vmid>/vm-<vmid>-disk-0.raw`) with `template` unpacked into it.
    /// `template` may be any tar archive of a rootfs, so a vzdump archive restores the same way.
    pub fn create(
        &self,
        vmid: u32,
        template: &Path,
        size_gib: f64,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        self.image_create(vmid, template, size_gib, log)
    }

    /// Grows the disk; shrinking is refused as PVE does. While running, the filesystem
    /// grows online where the host allows it (CAP_SYS_RESOURCE), else at the next start
    /// (`fs_grow_pending` tells).
    pub fn resize(&self, vmid: u32, size_gib: f64) -> Result<()> {
        self.image_resize(vmid, size_gib)
    }

    /// Boots the container: netns `<prefix>-<vmid>`, veth `<prefix>v<vmid>` on the bridge,
    /// address and default route set, systemd-nspawn started detached in it; returns once
    /// systemd inside is running or degraded (at most about 60 s).
    pub fn start(&self, spec: &StartSpec, log: &mut dyn FnMut(&str)) -> Result<()> {
        validate_vmid(spec.vmid)?;
        self.ct_start(spec, log)
    }

    /// Clean poweroff, then a hard stop once `timeout` passes. Stopped already: Ok.
    pub fn shutdown(&self, vmid: u32, timeout: Duration) -> Result<()> {
        self.ct_shutdown(vmid, timeout)
    }

    /// Hard stop, by pid (SIGKILL to the container's init). Stopped already: Ok.
    pub fn stop(&self, vmid: u32) -> Result<()> {
        self.ct_stop(vmid)
    }

    pub fn status(&self, vmid: u32) -> Result<CtRuntimeStatus> {
        self.ct_status(vmid)
    }

    pub fn exists(&self, vmid: u32) -> bool {
        validate_vmid(vmid).is_ok() && self.image_path(vmid).is_file()
    }

    /// (ifname, hwaddr, IPv4 addresses) of each interface inside a running container.
    #[allow(clippy::type_complexity)]
    pub fn ipv4_addresses(&self, vmid: u32) -> Result<Vec<(String, String, Vec<(Ipv4Addr, u8)>)>> {
        self.existing_image(vmid)?;
        if self.live_run_state(vmid).is_none() {
            return Err(RuntimeError::NotRunning { vmid }.into());
        }
        self.ct_ipv4(vmid)
    }

    /// Runs a command inside (stdio inherited) with a clean environment plus `env`; the
    /// exit status is the command's.
    pub fn exec(&self, vmid: u32, argv: &[String], env: &[(String, String)]) -> Result<ExitStatus> {
        self.ct_exec(vmid, argv, env)
    }

    pub fn exec_capture(&self, vmid: u32, argv: &[String]) -> Result<Output> {
        self.ct_exec_capture(vmid, argv)
    }

    /// Copies a host file into the running container as `pct push` does: in place (an existing
    /// file is truncated), the copy unchecked. `user`/`group` (names or ids) resolve inside it.
    /// Without `perms` a new file gets 0644 and an existing one keeps its mode.
    pub fn push(
        &self,
        vmid: u32,
        src: &Path,
        dst: &str,
        perms: Option<u32>,
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<()> {
        self.ct_push(vmid, src, dst, perms, user, group)
    }

    /// Copies a file out of the running container. Without `perms` its mode inside is kept.
    pub fn pull(&self, vmid: u32, src: &str, dst: &Path, perms: Option<u32>) -> Result<()> {
        self.ct_pull(vmid, src, dst, perms)
    }

    /// A consistent copy of the disk, even while running (fsfreeze + sparse copy).
    pub fn snapshot(&self, vmid: u32, name: &str) -> Result<()> {
        self.image_snapshot(vmid, name)
    }

    /// Puts the disk back to the snapshot; the container must be stopped.
    pub fn rollback(&self, vmid: u32, name: &str) -> Result<()> {
        self.image_rollback(vmid, name)
    }

    pub fn delete_snapshot(&self, vmid: u32, name: &str) -> Result<()> {
        self.image_delete_snapshot(vmid, name)
    }

    /// A tar.zst of the rootfs, consistent even while running (snapshot mode), written
    /// atomically to `out`.
    pub fn vzdump(&self, vmid: u32, out: &Path, log: &mut dyn FnMut(&str)) -> Result<()> {
        self.image_vzdump(vmid, out, None, log)
    }

    /// Like `vzdump`, with the container's config stored as `./etc/vzdump/pct.conf` in the
    /// archive, where PVE's vzdump puts it.
    pub fn vzdump_with_config(
        &self,
        vmid: u32,
        out: &Path,
        pct_conf: &str,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        self.image_vzdump(vmid, out, Some(pct_conf), log)
    }

    /// Removes the image, snapshots, console log, netns and veth. The container must be stopped.
    pub fn destroy(&self, vmid: u32) -> Result<()> {
        self.ct_destroy(vmid)
    }

    /// Fault: fills the container's filesystem (one file, `/.pve-lab-fill`).
    pub fn fill_disk(&self, vmid: u32) -> Result<()> {
        self.image_fill(vmid)
    }

    pub fn clear_fill(&self, vmid: u32) -> Result<()> {
        self.image_clear_fill(vmid)
    }

    /// Fault: SIGKILL to the container's init, as if it crashed. Its mount and network stay
    /// until the next start, stop or destroy (as a crashed CT's would).
    pub fn kill_init(&self, vmid: u32) -> Result<()> {
        self.ct_kill_init(vmid)
    }

    /// Fault: new connections from this host into the lab's bridge are dropped (or no longer),
    /// as a VLAN or firewall between a PVE node and its containers can; traffic the containers
    /// start, and its replies, still flows.
    pub fn block_host(&self, block: bool) -> Result<()> {
        self.net_block_host(block)
    }

    pub fn running_vmids(&self) -> Vec<u32> {
        self.ct_running_vmids()
    }

    /// Everything of this lab still present on the host: nspawn processes (recorded or found
    /// by their machine name), netns, links, the nft table, mounts and loop devices under
    /// `state_dir`, per-container cgroups, and any dnsmasq on the bridge.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = self.ct_leftovers();
        let br = self.net.bridge();
        found.extend(
            self.bridge_dnsmasqs()
                .into_iter()
                .map(|pid| format!("process {pid} (dnsmasq on {br})")),
        );
        found
    }
}
