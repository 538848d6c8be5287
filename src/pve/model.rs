//! Typed answers from PVE. Decoding is lenient on purpose (see `de`): numbers may be
//! strings, booleans may be 0/1, unknown fields are ignored, and anything PVE may omit
//! is an `Option`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::de;

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct VersionInfo {
    pub version: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub release: Option<String>,
    #[serde(default)]
    pub repoid: Option<String>,
    #[serde(default)]
    pub console: Option<String>,
}

impl VersionInfo {
    /// The major version (`8` of `8.4.1`).
    pub fn major(&self) -> Option<u32> {
        self.version.split('.').next()?.parse().ok()
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ClusterResource {
    pub id: String,
    /// `node`, `storage`, `pool`, `qemu`, `lxc`, `openvz` or `sdn`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub vmid: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub maxcpu: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub disk: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    #[serde(default)]
    pub storage: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub plugintype: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub hastate: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
}

/// Splits a `pve-tag-list` (PVE writes `;`, accepts `,` and spaces too).
pub fn split_tags(tags: Option<&str>) -> Vec<String> {
    tags.unwrap_or_default()
        .split([';', ',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl ClusterResource {
    pub fn tag_list(&self) -> Vec<String> {
        split_tags(self.tags.as_deref())
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct NodeInfo {
    pub node: String,
    /// `online`, `offline` or `unknown`.
    pub status: String,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub maxcpu: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub ssl_fingerprint: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct MemoryUsage {
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub total: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub used: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub free: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub avail: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CpuInfo {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub cpus: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub cores: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub sockets: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub mhz: Option<String>,
    /// The CPU's feature flags, space-separated as in `/proc/cpuinfo` (`fpu vme ... avx avx2`).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub flags: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct KernelInfo {
    #[serde(default)]
    pub sysname: Option<String>,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub machine: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct NodeStatus {
    #[serde(default)]
    pub pveversion: Option<String>,
    #[serde(default)]
    pub kversion: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "de::vec_f64")]
    pub loadavg: Vec<f64>,
    #[serde(default)]
    pub memory: Option<MemoryUsage>,
    #[serde(default)]
    pub swap: Option<MemoryUsage>,
    #[serde(default)]
    pub rootfs: Option<MemoryUsage>,
    #[serde(default)]
    pub cpuinfo: Option<CpuInfo>,
    #[serde(default, rename = "current-kernel")]
    pub current_kernel: Option<KernelInfo>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct StorageInfo {
    pub storage: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Comma-separated content types, e.g. `rootdir,images`.
    #[serde(default)]
    pub content: String,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub shared: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub total: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub used: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub avail: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub used_fraction: Option<f64>,
}

impl StorageInfo {
    pub fn holds(&self, content: super::options::ContentType) -> bool {
        self.content
            .split(',')
            .any(|c| c.trim() == content.as_str())
    }
}

/// One entry of the appliance index (`pveam available`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Appliance {
    pub template: String,
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub version: Option<String>,
    #[serde(default)]
    pub section: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub headline: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub sha512sum: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub infopage: Option<String>,
    #[serde(default)]
    pub maintainer: Option<String>,
}

/// A volume on a storage (template, backup, disk...).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct StorageItem {
    pub volid: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub size: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub used: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub ctime: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub vmid: Option<u32>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub protected: Option<bool>,
    #[serde(default)]
    pub subtype: Option<String>,
}

/// One row of `GET /nodes/{node}/lxc`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CtSummary {
    #[serde(deserialize_with = "de::u32")]
    pub vmid: u32,
    pub status: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpus: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub disk: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
}

impl CtSummary {
    pub fn tag_list(&self) -> Vec<String> {
        split_tags(self.tags.as_deref())
    }
}

/// A CT's configuration. The common keys are typed; everything else (`net1`, `mp0`,
/// `lxc.*`...) is in `other` as PVE sent it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CtConfig {
    /// Pass back in `CtConfigUpdate::digest` to refuse lost updates.
    pub digest: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub ostype: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub cores: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub memory: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub swap: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub onboot: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub unprivileged: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rootfs: Option<String>,
    #[serde(default)]
    pub features: Option<String>,
    #[serde(default)]
    pub nameserver: Option<String>,
    #[serde(default)]
    pub searchdomain: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl CtConfig {
    /// The root disk's size in GiB, from `rootfs`'s `size=` (`8G`, `512M`, `1T`).
    pub fn rootfs_size_gib(&self) -> Option<f64> {
        let size = self
            .rootfs
            .as_deref()?
            .split(',')
            .find_map(|p| p.strip_prefix("size="))?;
        let (num, unit) = size.split_at(size.len().checked_sub(1)?);
        let (num, factor) = match unit {
            "K" => (num, 1.0 / (1024.0 * 1024.0)),
            "M" => (num, 1.0 / 1024.0),
            "G" => (num, 1.0),
            "T" => (num, 1024.0),
            _ => (size, 1.0 / (1024.0 * 1024.0 * 1024.0)),
        };
        num.parse::<f64>().ok().map(|n| n * factor)
    }

    /// The raw `net{index}` property string.
    pub fn net(&self, index: u8) -> Option<&str> {
        self.other
            .get(&format!("net{index}"))
            .and_then(Value::as_str)
    }

    pub fn tag_list(&self) -> Vec<String> {
        split_tags(self.tags.as_deref())
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct HaState {
    #[serde(default, deserialize_with = "de::bool")]
    pub managed: bool,
    #[serde(default)]
    pub state: Option<String>,
}

/// `GET .../status/current`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CtStatus {
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub vmid: Option<u32>,
    /// `running` or `stopped`.
    pub status: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpus: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub swap: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxswap: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub disk: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub netin: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub netout: Option<u64>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    #[serde(default)]
    pub ha: Option<HaState>,
}

impl CtStatus {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Snapshot {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub snaptime: Option<i64>,
}

impl Snapshot {
    /// PVE lists the live state as a pseudo-snapshot named `current`.
    pub fn is_current(&self) -> bool {
        self.name == "current"
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct IpAddress {
    #[serde(rename = "ip-address")]
    pub ip_address: String,
    /// `inet` or `inet6`.
    #[serde(rename = "ip-address-type", default)]
    pub ip_address_type: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub prefix: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CtInterface {
    pub name: String,
    #[serde(default)]
    pub hwaddr: Option<String>,
    /// `address/prefix`.
    #[serde(default)]
    pub inet: Option<String>,
    #[serde(default)]
    pub inet6: Option<String>,
    #[serde(rename = "ip-addresses", default)]
    pub ip_addresses: Vec<IpAddress>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TaskStatus {
    /// `running` or `stopped`.
    pub status: String,
    /// Set once stopped: `OK`, `WARNINGS: N`, or the error text.
    #[serde(default)]
    pub exitstatus: Option<String>,
    #[serde(default)]
    pub upid: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub pid: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub starttime: Option<u64>,
}

impl TaskStatus {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TaskLogLine {
    /// 1-based line number.
    #[serde(deserialize_with = "de::u64")]
    pub n: u64,
    #[serde(default)]
    pub t: String,
}
