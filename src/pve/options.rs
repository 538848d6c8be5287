//! Typed inputs for the requests that take more than a couple of values (CT creation,
//! config updates, backups), with their property-string rendering and validation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use super::auth::Secret;
use super::error::PveError;
use super::validate;

/// What `POST /nodes/{node}/lxc` needs for one app container. Launch always creates
/// unprivileged CTs; there is deliberately no field to change that.
#[derive(Clone, Debug)]
pub struct CreateCt {
    pub vmid: u32,
    /// Volume id of the template, e.g. `local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst`.
    pub ostemplate: String,
    pub hostname: String,
    pub cores: u32,
    /// MiB.
    pub memory: u64,
    /// MiB.
    pub swap: u64,
    pub rootfs: RootFs,
    pub net0: NetConfig,
    pub features: Features,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub onboot: bool,
    pub start: bool,
    /// DNS servers; empty means "use the host's".
    pub nameserver: Vec<String>,
    pub searchdomain: Option<String>,
    /// One key per line, plain text.
    pub ssh_public_keys: Option<String>,
    /// Root password inside the CT. Never logged; refused by the pvesh transport.
    pub password: Option<Secret>,
    /// `host` or a zone like `Europe/Berlin`.
    pub timezone: Option<String>,
}

impl CreateCt {
    pub fn validate(&self) -> Result<(), PveError> {
        validate::vmid(self.vmid)?;
        validate::plain("template", &self.ostemplate, 255)?;
        validate::hostname(&self.hostname)?;
        if !(1..=8192).contains(&self.cores) {
            return Err(PveError::InvalidInput {
                what: "core count",
                value: self.cores.to_string(),
                problem: "cores must be 1 to 8192".into(),
                help: "e.g. 2".into(),
            });
        }
        if self.memory < 16 {
            return Err(PveError::InvalidInput {
                what: "memory (MiB)",
                value: self.memory.to_string(),
                problem: "PVE needs at least 16 MiB".into(),
                help: "give the app what it needs, e.g. 1024".into(),
            });
        }
        self.rootfs.validate()?;
        self.net0.validate()?;
        for t in &self.tags {
            validate::tag(t)?;
        }
        if let Some(d) = &self.description {
            validate::text("description", d, 8192)?;
        }
        for ns in &self.nameserver {
            validate::ip(ns)?;
        }
        if let Some(s) = &self.searchdomain {
            for d in s.split([',', ';', ' ']).filter(|d| !d.is_empty()) {
                validate::hostname(d)?;
            }
        }
        if let Some(k) = &self.ssh_public_keys {
            validate::text("SSH public keys", k, 64 * 1024)?;
        }
        if let Some(p) = &self.password {
            if p.expose().chars().count() < 5 {
                return Err(PveError::InvalidInput {
                    what: "root password",
                    value: "(hidden)".into(),
                    problem: "PVE requires at least 5 characters".into(),
                    help: "use a longer password, or leave it unset and use SSH keys".into(),
                });
            }
        }
        if let Some(tz) = &self.timezone {
            validate::timezone(tz)?;
        }
        Ok(())
    }
}

/// `rootfs` as "allocate `size_gib` GiB on `storage`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootFs {
    pub storage: String,
    pub size_gib: u32,
}

impl RootFs {
    pub fn validate(&self) -> Result<(), PveError> {
        validate::storage(&self.storage)?;
        if self.size_gib == 0 {
            return Err(PveError::InvalidInput {
                what: "root disk size (GiB)",
                value: "0".into(),
                problem: "the root disk needs at least 1 GiB".into(),
                help: "e.g. 8".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for RootFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.storage, self.size_gib)
    }
}

/// One `net[n]` property string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Interface name inside the CT, e.g. `eth0`.
    pub name: String,
    pub bridge: String,
    pub ip: IpConfig,
    pub tag: Option<u16>,
    pub mtu: Option<u16>,
    pub firewall: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpConfig {
    Dhcp,
    /// `cidr` like `192.168.1.50/24`.
    Static {
        cidr: String,
        gw: Option<Ipv4Addr>,
    },
}

impl NetConfig {
    pub fn validate(&self) -> Result<(), PveError> {
        validate::iface(&self.name)?;
        validate::bridge(&self.bridge)?;
        if let IpConfig::Static { cidr, .. } = &self.ip {
            validate::ipv4_cidr(cidr)?;
        }
        if let Some(t) = self.tag {
            validate::vlan_tag(t)?;
        }
        if let Some(m) = self.mtu {
            validate::mtu(m)?;
        }
        Ok(())
    }
}

impl fmt::Display for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "name={},bridge={}", self.name, self.bridge)?;
        match &self.ip {
            IpConfig::Dhcp => write!(f, ",ip=dhcp")?,
            IpConfig::Static { cidr, gw } => {
                write!(f, ",ip={cidr}")?;
                if let Some(gw) = gw {
                    write!(f, ",gw={gw}")?;
                }
            }
        }
        if let Some(t) = self.tag {
            write!(f, ",tag={t}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, ",mtu={m}")?;
        }
        write!(f, ",firewall={}", u8::from(self.firewall))
    }
}

/// CT features an API token may set. Others (`keyctl`, `fuse`, `mount`...) are root@pam-only
/// through the API, so they are not offered here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub nesting: bool,
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nesting={}", u8::from(self.nesting))
    }
}

/// `PUT /nodes/{node}/lxc/{vmid}/config`: only the fields that are `Some` are sent.
#[derive(Clone, Debug, Default)]
pub struct CtConfigUpdate {
    /// The `digest` of the config this update was computed from; PVE refuses the update
    /// if the config changed since.
    pub digest: Option<String>,
    pub hostname: Option<String>,
    pub cores: Option<u32>,
    pub memory: Option<u64>,
    pub swap: Option<u64>,
    pub onboot: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    /// Index → interface (`net0`, `net1`...).
    pub net: BTreeMap<u8, NetConfig>,
    pub features: Option<Features>,
    pub nameserver: Option<Vec<String>>,
    pub searchdomain: Option<String>,
    pub timezone: Option<String>,
    /// Keys to remove from the config (e.g. `net1`).
    pub delete: Vec<String>,
}

impl CtConfigUpdate {
    pub fn validate(&self) -> Result<(), PveError> {
        if let Some(d) = &self.digest {
            validate::digest(d)?;
        }
        if let Some(h) = &self.hostname {
            validate::hostname(h)?;
        }
        for t in self.tags.iter().flatten() {
            validate::tag(t)?;
        }
        if let Some(d) = &self.description {
            validate::text("description", d, 8192)?;
        }
        for (i, n) in &self.net {
            if *i > 31 {
                return Err(PveError::InvalidInput {
                    what: "network interface index",
                    value: format!("net{i}"),
                    problem: "PVE has net0 to net31".into(),
                    help: "use an index from 0 to 31".into(),
                });
            }
            n.validate()?;
        }
        for ns in self.nameserver.iter().flatten() {
            validate::ip(ns)?;
        }
        if let Some(s) = &self.searchdomain {
            validate::hostname(s)?;
        }
        if let Some(tz) = &self.timezone {
            validate::timezone(tz)?;
        }
        for k in &self.delete {
            validate::config_key(k)?;
        }
        Ok(())
    }
}

/// `POST /nodes/{node}/vzdump` for one CT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vzdump {
    pub vmid: u32,
    pub storage: String,
    pub mode: BackupMode,
    pub compress: Compress,
    /// Shown in the backup list; `{{guestname}}` etc. are expanded by PVE.
    pub notes_template: Option<String>,
    /// Protect the archive from pruning.
    pub protected: bool,
}

impl Vzdump {
    pub fn validate(&self) -> Result<(), PveError> {
        validate::vmid(self.vmid)?;
        validate::storage(&self.storage)?;
        if let Some(n) = &self.notes_template {
            validate::text("backup notes", n, 1024)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupMode {
    Snapshot,
    Suspend,
    Stop,
}

impl BackupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupMode::Snapshot => "snapshot",
            BackupMode::Suspend => "suspend",
            BackupMode::Stop => "stop",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Lzo,
    Zstd,
}

impl Compress {
    pub fn as_str(self) -> &'static str {
        match self {
            Compress::None => "0",
            Compress::Gzip => "gzip",
            Compress::Lzo => "lzo",
            Compress::Zstd => "zstd",
        }
    }
}

/// Filter for `GET /cluster/resources`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    Vm,
    Storage,
    Node,
    Sdn,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Vm => "vm",
            ResourceType::Storage => "storage",
            ResourceType::Node => "node",
            ResourceType::Sdn => "sdn",
        }
    }
}

/// Storage content types (`pve-storage-content`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    Images,
    Rootdir,
    Vztmpl,
    Iso,
    Backup,
    Snippets,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Images => "images",
            ContentType::Rootdir => "rootdir",
            ContentType::Vztmpl => "vztmpl",
            ContentType::Iso => "iso",
            ContentType::Backup => "backup",
            ContentType::Snippets => "snippets",
        }
    }
}
