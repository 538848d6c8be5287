//! The node's durable model: PVE-style container config files (STATE/lxc/<vmid>.conf with
//! snapshot sections), the two storages (`local` dir, `local-lvm` for rootfs images), the
//! appliance index, and the lab's address pool that stands in for DHCP.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::fsutil::write_file_atomic;
use crate::runtime::{LabNet, Template, TEMPLATES};

pub const NODE: &str = "pve";

/// One section of a container config: the current config or a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    pub description: Option<String>,
    pub opts: BTreeMap<String, String>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.opts.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CtConfig {
    pub current: Section,
    pub snapshots: BTreeMap<String, Section>,
}

/// PVE::Tools::encode_text: description lines are stored as `#` comments, escaped.
fn encode_text(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || "-_.!~*'()/ :,;=+@".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_text(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn render_section(sec: &Section, out: &mut String) {
    if let Some(d) = &sec.description {
        for line in d.split('\n') {
            out.push('#');
            out.push_str(&encode_text(line));
            out.push('\n');
        }
    }
    for (k, v) in &sec.opts {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push('\n');
    }
}

impl CtConfig {
    pub fn render(&self) -> String {
        let mut out = String::new();
        render_section(&self.current, &mut out);
        for (name, sec) in &self.snapshots {
            out.push_str(&format!("\n[{name}]\n"));
            render_section(sec, &mut out);
        }
        out
    }

    pub fn parse(text: &str) -> Result<CtConfig> {
        let mut cfg = CtConfig::default();
        let mut section: Option<String> = None;
        let mut desc: Vec<String> = Vec::new();
        let flush_desc = |cfg: &mut CtConfig, section: &Option<String>, desc: &mut Vec<String>| {
            if desc.is_empty() {
                return;
            }
            let text = desc.join("\n");
            desc.clear();
            let sec = match section {
                None => &mut cfg.current,
                Some(n) => cfg.snapshots.entry(n.clone()).or_default(),
            };
            sec.description = Some(text);
        };
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if let Some(c) = line.strip_prefix('#') {
                desc.push(decode_text(c));
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                flush_desc(&mut cfg, &section, &mut desc);
                section = Some(name.to_string());
                cfg.snapshots.entry(name.to_string()).or_default();
                continue;
            }
            flush_desc(&mut cfg, &section, &mut desc);
            let (k, v) = line
                .split_once(':')
                .with_context(|| format!("line {}: expected 'key: value', got '{line}'", i + 1))?;
            let sec = match &section {
                None => &mut cfg.current,
                Some(n) => cfg.snapshots.entry(n.clone()).or_default(),
            };
            sec.opts.insert(k.trim().to_string(), v.trim().to_string());
        }
        flush_desc(&mut cfg, &section, &mut desc);
        Ok(cfg)
    }

    /// PVE sends the SHA-1 of the config file; SHA-256 cut to the same 40 hex characters keeps
    /// the shape (the schema caps `digest` at 40) without another hash crate.
    pub fn digest(&self) -> String {
        let full = hex::encode(Sha256::digest(self.render().as_bytes()));
        full[..40].to_string()
    }

    pub fn lock(&self) -> Option<&str> {
        self.current.get("lock")
    }

    /// Snapshot names in creation order.
    pub fn snapshot_order(&self) -> Vec<String> {
        let mut names: Vec<(u64, String)> = self
            .snapshots
            .iter()
            .map(|(n, s)| {
                (
                    s.get("snaptime").and_then(|t| t.parse().ok()).unwrap_or(0),
                    n.clone(),
                )
            })
            .collect();
        names.sort();
        names.into_iter().map(|(_, n)| n).collect()
    }
}

pub fn conf_dir(state: &Path) -> PathBuf {
    state.join("lxc")
}

pub fn conf_path(state: &Path, vmid: u32) -> PathBuf {
    conf_dir(state).join(format!("{vmid}.conf"))
}

/// The PVE-relative name used in error messages.
pub fn conf_display(vmid: u32) -> String {
    format!("nodes/{NODE}/lxc/{vmid}.conf")
}

pub fn load_conf(state: &Path, vmid: u32) -> Result<Option<CtConfig>> {
    let path = conf_path(state, vmid);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            CtConfig::parse(&text).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn save_conf(state: &Path, vmid: u32, cfg: &CtConfig) -> Result<()> {
    write_file_atomic(&conf_path(state, vmid), cfg.render().as_bytes(), 0o640)
}

pub fn remove_conf(state: &Path, vmid: u32) -> Result<()> {
    match std::fs::remove_file(conf_path(state, vmid)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("removing the container config"),
    }
}

/// All vmids that have a config, ascending.
pub fn list_vmids(state: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(conf_dir(state))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".conf")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

// ---------------------------------------------------------------------------------------------
// Storages

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    pub id: &'static str,
    /// PVE plugin type.
    pub kind: &'static str,
    pub content: &'static [&'static str],
}

pub const STORAGES: &[Storage] = &[
    Storage {
        id: "local",
        kind: "dir",
        content: &["iso", "vztmpl", "backup"],
    },
    Storage {
        id: "local-lvm",
        kind: "lvmthin",
        content: &["rootdir", "images"],
    },
    // As on a node installed on ZFS. The disk is the same kind of image as local-lvm's; what
    // differs is PVE's rule for it: rollback only to the newest snapshot.
    Storage {
        id: "local-zfs",
        kind: "zfspool",
        content: &["rootdir", "images"],
    },
];

pub fn storage(id: &str) -> Option<&'static Storage> {
    STORAGES.iter().find(|s| s.id == id)
}

impl Storage {
    pub fn supports(&self, content: &str) -> bool {
        self.content.contains(&content)
    }
    pub fn content_list(&self) -> String {
        self.content.join(",")
    }
}

pub fn local_dir(state: &Path) -> PathBuf {
    state.join("storage").join("local")
}

pub fn template_dir(state: &Path) -> PathBuf {
    local_dir(state).join("template").join("cache")
}

pub fn dump_dir(state: &Path) -> PathBuf {
    local_dir(state).join("dump")
}

/// Where the runtime keeps a container's rootfs image ("local-lvm").
pub fn image_path(state: &Path, vmid: u32) -> PathBuf {
    state
        .join("images")
        .join(vmid.to_string())
        .join(format!("vm-{vmid}-disk-0.raw"))
}

pub fn rootfs_volume(vmid: u32) -> String {
    rootfs_volume_on("local-lvm", vmid)
}

/// The rootfs volume's name on `storage`, as PVE names it there (a ZFS subvolume for
/// containers, a thin volume on LVM).
pub fn rootfs_volume_on(storage: &str, vmid: u32) -> String {
    match self::storage(storage).map(|s| s.kind) {
        Some("zfspool") => format!("{storage}:subvol-{vmid}-disk-0"),
        _ => format!("{storage}:vm-{vmid}-disk-0"),
    }
}

/// Total/used/avail bytes of the filesystem holding `path`.
pub fn fs_usage(path: &Path) -> (u64, u64, u64) {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return (0, 0, 0);
    };
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return (0, 0, 0);
    }
    let frsize = st.f_frsize;
    let total = st.f_blocks * frsize;
    let free = st.f_bfree * frsize;
    let avail = st.f_bavail * frsize;
    (total, total.saturating_sub(free), avail)
}

/// A parsed storage volume id `storage:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolId {
    pub storage: String,
    pub name: String,
}

pub fn parse_volid(volid: &str) -> Option<VolId> {
    let (s, n) = volid.split_once(':')?;
    if s.is_empty() || n.is_empty() {
        return None;
    }
    Some(VolId {
        storage: s.to_string(),
        name: n.to_string(),
    })
}

/// `512M`, `8G`, `+2G`, `1.5T` (PVE disk sizes; bare numbers are bytes) to GiB.
pub fn parse_disk_size_gib(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = match s.chars().last()? {
        c @ ('K' | 'M' | 'G' | 'T') => (&s[..s.len() - 1], c),
        _ => (s, 'B'),
    };
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let gib = match unit {
        'K' => v / (1024.0 * 1024.0),
        'M' => v / 1024.0,
        'G' => v,
        'T' => v * 1024.0,
        _ => v / (1024.0 * 1024.0 * 1024.0),
    };
    Some(gib)
}

/// The `size=` form PVE writes: whole gigabytes as `8G`, else megabytes.
pub fn format_disk_size(gib: f64) -> String {
    if (gib - gib.round()).abs() < 1e-9 {
        format!("{}G", gib.round() as u64)
    } else {
        format!("{}M", (gib * 1024.0).round() as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// Appliance index

pub fn template_by_name(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// One `aplinfo` entry shaped like PVE's (fields from download.proxmox.com's aplinfo.dat).
pub fn aplinfo_entry(t: &Template, sha512sum: Option<String>) -> serde_json::Value {
    let mut parts = t.name.splitn(3, '_');
    let package = parts.next().unwrap_or(t.name).to_string();
    let version = parts.next().unwrap_or("").to_string();
    let os = format!("debian-{}", t.os_version);
    let suite = {
        let mut c = t.suite.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let mut v = serde_json::json!({
        "template": t.name,
        "package": package,
        "os": os,
        "version": version,
        "section": "system",
        "type": "lxc",
        "headline": format!("Debian {} {} (standard)", t.os_version, suite),
        "description": format!("Debian {} {} (standard). Built locally by pve-lab with debootstrap.", t.os_version, suite),
        "location": format!("http://download.proxmox.com/images/system/{}", t.name),
        "source": "http://download.proxmox.com/images",
        "infopage": "https://pve.proxmox.com/wiki/Linux_Container#pct_supported_distributions",
        "maintainer": "Proxmox Support Team <support@proxmox.com>",
        "architecture": "amd64",
    });
    if let Some(sum) = sha512sum {
        v["sha512sum"] = serde_json::Value::String(sum);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Address pool: `ip=dhcp` gets a stable address from .100-.199 of the lab subnet.

fn leases_path(state: &Path) -> PathBuf {
    state.join("leases.json")
}

/// The address held by `vmid`, allocating one (`.100 + vmid % 100`, then the next free) if new.
pub fn lease(state: &Path, net: &LabNet, vmid: u32) -> Result<Ipv4Addr> {
    let path = leases_path(state);
    let mut leases: BTreeMap<String, Ipv4Addr> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(ip) = leases.get(&vmid.to_string()) {
        return Ok(*ip);
    }
    let base = u32::from(net.subnet);
    let taken: Vec<Ipv4Addr> = leases.values().copied().collect();
    let ip = (0..100)
        .map(|i| Ipv4Addr::from(base + 100 + (vmid + i) % 100))
        .find(|ip| !taken.contains(ip))
        .context("the lab address pool (.100-.199) is exhausted\nhelp: destroy unused containers or give net0 a static ip=")?;
    leases.insert(vmid.to_string(), ip);
    write_file_atomic(&path, &serde_json::to_vec_pretty(&leases)?, 0o644)?;
    Ok(ip)
}

pub fn release_lease(state: &Path, vmid: u32) -> Result<()> {
    let path = leases_path(state);
    let mut leases: BTreeMap<String, Ipv4Addr> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if leases.remove(&vmid.to_string()).is_some() {
        write_file_atomic(&path, &serde_json::to_vec_pretty(&leases)?, 0o644)?;
    }
    Ok(())
}

/// `BC:24:11:xx:xx:xx`, the Proxmox OUI PVE uses for generated MACs.
pub fn random_hwaddr() -> String {
    use rand::RngCore;
    let mut b = [0u8; 3];
    rand::rng().fill_bytes(&mut b);
    format!("BC:24:11:{:02X}:{:02X}:{:02X}", b[0], b[1], b[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_round_trip_with_snapshots_and_description() {
        let mut cfg = CtConfig::default();
        cfg.current.description = Some("line one\n100% sure".into());
        cfg.current.opts.insert("hostname".into(), "ct1".into());
        cfg.current.opts.insert("memory".into(), "512".into());
        let mut snap = cfg.current.clone();
        snap.description = None;
        snap.opts.insert("snaptime".into(), "1700000000".into());
        cfg.snapshots.insert("s1".into(), snap);
        let text = cfg.render();
        assert!(text.starts_with("#line one\n#100%25 sure\nhostname: ct1\n"));
        assert!(text.contains("\n[s1]\n"));
        let back = CtConfig::parse(&text).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.digest().len(), 40);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_disk_size_gib("8G"), Some(8.0));
        assert_eq!(parse_disk_size_gib("512M"), Some(0.5));
        assert_eq!(parse_disk_size_gib("x"), None);
        assert_eq!(format_disk_size(8.0), "8G");
        assert_eq!(format_disk_size(0.5), "512M");
    }

    #[test]
    fn leases_are_stable_and_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let net = LabNet::default();
        let a = lease(dir.path(), &net, 101).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 77, 0, 101));
        let b = lease(dir.path(), &net, 201).unwrap();
        assert_ne!(a, b);
        assert_eq!(lease(dir.path(), &net, 101).unwrap(), a);
        release_lease(dir.path(), 101).unwrap();
    }

    #[test]
    fn aplinfo_shape() {
        let e = aplinfo_entry(&TEMPLATES[0], None);
        assert_eq!(e["package"], "debian-12-standard");
        assert_eq!(e["version"], "12.7-1");
        assert_eq!(e["type"], "lxc");
    }
}
