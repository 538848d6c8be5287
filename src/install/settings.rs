//! The settings of one install, from the wizard or an answers file, and their validation. All
//! problems are collected, so an unattended run reports every invalid field at once; nothing is
//! created until the settings are valid.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::InvalidValue;
use crate::profile::{DatabaseKind, Os, Profile, QuestionKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4Setting {
    Dhcp,
    Static {
        addr: Ipv4Addr,
        prefix: u8,
        gw: Ipv4Addr,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDb {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub name: String,
}

/// Everything an install needs, validated.
#[derive(Debug, Clone)]
pub struct InstallSettings {
    pub name: String,
    pub vmid: u32,
    pub hostname: String,
    pub cores: u32,
    pub memory_mib: u64,
    pub swap_mib: u64,
    pub disk_gib: u32,
    pub storage: String,
    pub template_storage: String,
    pub os: Os,
    pub bridge: String,
    pub ipv4: Ipv4Setting,
    pub dns: Option<String>,
    pub searchdomain: Option<String>,
    pub vlan: Option<u16>,
    pub mtu: Option<u16>,
    pub ssh_public_keys: Option<String>,
    pub root_password: Option<String>,
    pub database: DatabaseKind,
    pub external_db: Option<ExternalDb>,
    pub tls: Option<(String, String)>,
    /// `tls: acme`: a certificate from an ACME CA, obtained in the container after the install.
    pub acme: Option<crate::acme::AcmeRequest>,
    pub version: String,
    /// Set up the host's daily health check (`launch-health.timer`) after the install.
    pub health_check: bool,
    /// Answers to the profile's own questions, by key.
    pub app: BTreeMap<String, String>,
}

/// What the node offers, for defaults and checks (read from the API before asking).
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub node: String,
    pub next_id: u32,
    pub taken_ids: Vec<u32>,
    pub taken_hostnames: Vec<String>,
    /// Storages with `rootdir` content: (name, free bytes).
    pub rootdir_storages: Vec<(String, u64)>,
    pub template_storages: Vec<String>,
    pub free_memory_mib: u64,
    /// Container templates in storage or offered by the appliance index (file names).
    pub templates: Vec<String>,
    /// Bridges a container's network may name (`vmbr0`, OVS bridges, SDN vnets).
    pub bridges: Vec<String>,
}

/// The longest value taken for a single-line answer.
pub const MAX_VALUE_LEN: usize = 4096;

/// What every value from outside must be, whatever its key: no control characters (they break
/// the files it is written into and the terminal it is shown on), no surrounding spaces, a
/// sane size. `ssh_public_keys` alone may span lines.
pub fn check_value(key: &str, v: &str) -> Result<(), String> {
    let multi_line = key == "ssh_public_keys";
    let limit = if multi_line { 64 * 1024 } else { MAX_VALUE_LEN };
    if v.len() > limit {
        Err(format!("{} bytes; at most {limit} are taken", v.len()))
    } else if v
        .chars()
        .any(|c| crate::escape::is_control(c) && !(multi_line && c == '\n'))
    {
        Err("it contains a control character (a line break, tab or escape)".into())
    } else if !multi_line && v.trim() != v {
        Err("it starts or ends with spaces".into())
    } else {
        Ok(())
    }
}

/// An external database's host, user or name: written into the app's config and handed to
/// database clients, so plain names only (the password may hold anything printable).
pub fn check_db_field(field: &str, v: &str) -> Result<(), String> {
    match field {
        "db_host" => {
            if v.parse::<std::net::IpAddr>().is_ok() || check_domain(v).is_ok() {
                Ok(())
            } else {
                Err("not a host name or IP address".into())
            }
        }
        _ => {
            let ok = !v.is_empty()
                && v.len() <= 63
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if ok {
                Ok(())
            } else {
                Err("letters, digits and _ . - only, at most 63 characters".into())
            }
        }
    }
}

/// The container-level keys an answers file may hold besides the profile's questions.
pub const CONTAINER_KEYS: &[&str] = &[
    "name",
    "vmid",
    "hostname",
    "cores",
    "memory_mib",
    "swap_mib",
    "disk_gib",
    "storage",
    "template_storage",
    "os",
    "bridge",
    "ip",
    "gateway",
    "dns",
    "searchdomain",
    "vlan",
    "mtu",
    "ssh_public_keys",
    "root_password",
    "database",
    "db_host",
    "db_port",
    "db_user",
    "db_password",
    "db_name",
    "tls_cert",
    "tls_key",
    "tls",
    "acme_email",
    "acme_directory",
    "acme_challenge",
    "acme_ca_file",
    "acme_cloudflare_token_file",
    "acme_dns_resolvers",
    "version",
    "health_check",
];

/// Secret answers: never echoed in errors or logs.
pub fn is_secret_key(profile: &Profile, key: &str) -> bool {
    matches!(key, "root_password" | "db_password")
        || profile.question(key).is_some_and(|q| q.secret)
}

pub fn check_domain(s: &str) -> Result<(), String> {
    let labels: Vec<&str> = s.split('.').collect();
    let ok = !s.is_empty()
        && s.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid domain name",
            crate::escape::shown(s)
        ))
    }
}

/// The longest public URL taken: it is written into the CT's description, nginx and the app's
/// config, and no one types more.
pub const MAX_URL_LEN: usize = 512;

/// A public URL: http(s), a host, no user info, query or fragment, and only characters that
/// every file it is written into (nginx, YAML, `.env`) takes as they are.
pub fn check_url(s: &str) -> Result<(), String> {
    if s.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} characters"));
    }
    let u = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._~:/@!&*+,=%-".contains(*c)))
    {
        return Err(format!(
            "the URL holds `{}`; a public URL takes letters, digits and ._~:/@!&*+,=%- only",
            crate::escape::shown(&c.to_string())
        ));
    }
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err("the URL must start with http:// or https://".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the URL holds a user name or password".into());
    }
    match u.host() {
        Some(url::Host::Domain(d)) => check_domain(d),
        Some(_) => Ok(()),
        None => Err("the URL has no host".into()),
    }
}

/// An email address: a local part of RFC 5322 `atext` and dots (so `o'brien@example.com` is
/// one), `@`, and a domain name.
pub fn check_email(s: &str) -> Result<(), String> {
    let bad = || format!("`{}` is not an email address", crate::escape::shown(s));
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && s.len() <= 254
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| atext(c) || c == '.');
    if !local_ok || !domain.contains('.') {
        return Err(bad());
    }
    check_domain(domain)
}

/// A whole number as people write it: digits only (no sign, spaces, `0x`).
pub fn parse_whole(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// A Linux network interface name as PVE takes it for a bridge: ASCII, at most 15 characters.
pub fn check_bridge_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err("not a bridge name (ASCII letters, digits, _ . -, at most 15 characters)".into())
    }
}

/// A storage ID as PVE takes it (`pve-storage-id`).
pub fn check_storage_id(s: &str) -> Result<(), String> {
    let ok = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err("not a storage ID (a letter, then letters, digits, - _ .)".into())
    }
}

/// The SSH public keys PVE writes into the CT's root account: one per line, each a known key
/// type and its base64 blob (whose own type must agree), an optional comment; 64 KiB at most.
pub fn check_ssh_keys(s: &str) -> Result<(), String> {
    use base64::Engine;
    if s.len() > 64 * 1024 {
        return Err(format!("{} bytes; at most 64 KiB of keys", s.len()));
    }
    const TYPES: &[&str] = &[
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    let mut n = 0;
    for (i, line) in s.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let what = format!("line {}", i + 1);
        if line.chars().any(crate::escape::is_control) {
            return Err(format!("{what} holds a control character"));
        }
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            return Err(format!("{what} is not `TYPE BASE64 [COMMENT]`"));
        };
        if !TYPES.contains(&kind) {
            return Err(format!(
                "{what}: unknown key type (expected one of {})",
                TYPES.join(", ")
            ));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|_| format!("{what}: the key is not base64"))?;
        let inner = raw
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .and_then(|len| raw.get(4..4 + len));
        if inner != Some(kind.as_bytes()) {
            return Err(format!("{what}: the key's data is not a {kind} key"));
        }
        n += 1;
    }
    if n == 0 {
        return Err("no key in it".into());
    }
    Ok(())
}

/// A TLS certificate and key on the host: PEM, of the right kinds, belonging together, small,
/// and not from the places where the host keeps its own secrets (they would be copied into
/// the container).
pub fn check_tls_files(cert: &str, key: &str) -> Vec<(&'static str, String)> {
    const FORBIDDEN: &[&str] = &[
        "/etc/pve/",
        "/etc/ssh/",
        "/root/.ssh/",
        "/proc/",
        "/sys/",
        "/dev/",
    ];
    let mut problems = Vec::new();
    let mut read = |field: &'static str, path: &str| -> Option<Vec<u8>> {
        let p = std::path::Path::new(path);
        if !p.is_absolute() {
            problems.push((field, "give an absolute path".to_string()));
            return None;
        }
        let real = match std::fs::canonicalize(p) {
            Ok(r) if r.is_file() => r,
            _ => {
                problems.push((field, "no such file on this host".to_string()));
                return None;
            }
        };
        let shown = format!("{}/", real.display());
        if let Some(f) = FORBIDDEN.iter().find(|f| shown.starts_with(*f)) {
            problems.push((
                field,
                format!(
                    "{} is under {f}, where the host keeps its own secrets",
                    real.display()
                ),
            ));
            return None;
        }
        match std::fs::metadata(&real) {
            Ok(m) if m.len() <= 1024 * 1024 => std::fs::read(&real).ok(),
            _ => {
                problems.push((field, "larger than 1 MiB: not a PEM file".to_string()));
                None
            }
        }
    };
    let (c, k) = (read("tls_cert", cert), read("tls_key", key));
    let (Some(c), Some(k)) = (c, k) else {
        return problems;
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut c.as_slice())
        .filter_map(|r| r.ok())
        .collect();
    if certs.is_empty() {
        problems.push((
            "tls_cert",
            "no PEM certificate (BEGIN CERTIFICATE) in it".into(),
        ));
    }
    let pk = rustls_pemfile::private_key(&mut k.as_slice())
        .ok()
        .flatten();
    let Some(pk) = pk else {
        problems.push(("tls_key", "no PEM private key in it".into()));
        return problems;
    };
    if certs.is_empty() {
        return problems;
    }
    let provider = rustls::crypto::ring::default_provider();
    match provider.key_provider.load_private_key(pk) {
        Err(e) => problems.push(("tls_key", format!("not a usable private key ({e})"))),
        Ok(signing) => {
            let ck = rustls::sign::CertifiedKey::new(certs, signing);
            if ck.keys_match().is_err() {
                problems.push((
                    "tls_key",
                    "this key does not belong to the certificate in tls_cert".into(),
                ));
            }
        }
    }
    problems
}

fn check_hostname(s: &str) -> Result<(), String> {
    if s.len() <= 63 && !s.contains('.') {
        check_domain(s).map_err(|_| "not a valid hostname".to_string())
    } else {
        Err("not a valid hostname (one label, at most 63 characters)".to_string())
    }
}

fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let prefix: u8 = p.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((a.parse().ok()?, prefix))
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(a) & mask) == (u32::from(b) & mask)
}

/// Can the host open a TCP connection to the external database? Checked before anything is
/// created, so a typo in the host name fails fast.
pub fn db_reachable(host: &str, port: u16) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    for a in &addrs {
        if TcpStream::connect_timeout(a, Duration::from_secs(3)).is_ok() {
            return Ok(());
        }
    }
    Err(format!("nothing answers at {host}:{port}"))
}

/// Turns answers (with defaults filled in) into settings, collecting every problem.
pub fn resolve(
    profile: &Profile,
    facts: &NodeFacts,
    answers: &BTreeMap<String, String>,
    force: bool,
) -> Result<InstallSettings, Vec<InvalidValue>> {
    let mut problems = Vec::new();
    let mut bad = |field: &str, value: &str, problem: String, help: String| {
        problems.push(InvalidValue {
            field: field.to_string(),
            value: if is_secret_key(profile, field) {
                "(secret)".into()
            } else {
                value.to_string()
            },
            problem,
            help,
        });
    };
    // Every value first: no control characters (they break the files and the terminal), no
    // surrounding spaces, a sane size. A value refused here is not looked at again.
    let mut refused = std::collections::BTreeSet::new();
    for (k, v) in answers {
        if let Err(problem) = check_value(k, v) {
            bad(
                k,
                v,
                problem,
                "write the value on one line, as it is".into(),
            );
            refused.insert(k.clone());
        }
    }
    let get = |k: &str| {
        answers
            .get(k)
            .filter(|_| !refused.contains(k))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };

    for k in answers.keys() {
        if !CONTAINER_KEYS.contains(&k.as_str()) && profile.question(k).is_none() {
            bad(
                k,
                &answers[k],
                "unknown key".into(),
                format!(
                    "known keys: {} and the profile's questions ({})",
                    CONTAINER_KEYS.join(", "),
                    profile
                        .questions
                        .iter()
                        .map(|q| q.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    let name = get("name").unwrap_or_else(|| profile.name.to_string());
    if let Err(e) = crate::profile::check_name(&name) {
        bad("name", &name, e, "use a name like tasks-2".into());
    }

    let mut num = |k: &str, default: u64, lo: u64, hi: u64| -> u64 {
        match get(k) {
            None => default,
            Some(v) => match parse_whole(&v) {
                Some(n) if (lo..=hi).contains(&n) => n,
                _ => {
                    bad(
                        k,
                        &v,
                        format!("expected a whole number from {lo} to {hi}"),
                        format!("e.g. {default}"),
                    );
                    default
                }
            },
        }
    };
    let d = &profile.resources.default;
    let vmid = num("vmid", facts.next_id as u64, 100, 999_999_999) as u32;
    let cores = num("cores", d.cores as u64, 1, 8192) as u32;
    let memory_mib = num("memory_mib", d.memory_mib, 16, 16 * 1024 * 1024);
    let swap_mib = num("swap_mib", d.swap_mib, 0, 16 * 1024 * 1024);
    let disk_gib = num("disk_gib", d.disk_gib as u64, 1, 128 * 1024) as u32;
    let vlan = get("vlan").map(|_| num("vlan", 1, 1, 4094) as u16);
    let mtu = get("mtu").map(|_| num("mtu", 1500, 576, 65535) as u16);
    let db_port_default = 5432;
    let db_port = num("db_port", db_port_default, 1, 65535) as u16;

    if get("vmid").is_some() && facts.taken_ids.contains(&vmid) {
        bad(
            "vmid",
            &vmid.to_string(),
            format!("CT/VM ID {vmid} is already in use"),
            format!("the next free ID is {}", facts.next_id),
        );
    }
    let min = &profile.resources.minimum;
    if memory_mib < min.memory_mib && !force {
        bad(
            "memory_mib",
            &memory_mib.to_string(),
            format!("below the profile's minimum of {} MiB", min.memory_mib),
            format!(
                "use at least {} MiB (default {}), or pass --force",
                min.memory_mib, d.memory_mib
            ),
        );
    }
    // A source build needs its memory whatever --force says: it would only fail later,
    // inside a container that exists by then.
    if let Some(crate::profile::InstallMethod::Source {
        build_memory_mib: Some(need),
        ..
    }) = profile.components.first().map(|c| &c.install)
    {
        if memory_mib < *need {
            bad(
                "memory_mib",
                &memory_mib.to_string(),
                format!(
                    "below the {need} MiB the build of {} needs (the profile's build_memory_mib)",
                    profile.title
                ),
                format!("use at least {need} MiB (default {})", d.memory_mib),
            );
        }
    }
    if cores < min.cores && !force {
        bad(
            "cores",
            &cores.to_string(),
            format!("below the profile's minimum of {}", min.cores),
            "pass --force to install anyway".into(),
        );
    }
    if disk_gib < min.disk_gib && !force {
        bad(
            "disk_gib",
            &disk_gib.to_string(),
            format!("below the profile's minimum of {} GiB", min.disk_gib),
            format!("use at least {} GiB", min.disk_gib),
        );
    }
    if facts.free_memory_mib > 0 && memory_mib > facts.free_memory_mib && !force {
        bad(
            "memory_mib",
            &memory_mib.to_string(),
            format!("the node has only {} MiB free", facts.free_memory_mib),
            "lower memory_mib, free memory on the node, or pass --force".into(),
        );
    }

    let hostname = get("hostname").unwrap_or_else(|| name.clone());
    if let Err(e) = check_hostname(&hostname) {
        bad(
            "hostname",
            &hostname,
            e,
            "letters, digits and '-', e.g. tasks".into(),
        );
    } else if facts.taken_hostnames.iter().any(|h| h == &hostname) {
        bad(
            "hostname",
            &hostname,
            "another guest already has this hostname".into(),
            format!("choose another, e.g. {hostname}-2"),
        );
    }

    let storage = match get("storage") {
        Some(s) => {
            match facts.rootdir_storages.iter().find(|(n, _)| n == &s) {
                None => bad(
                    "storage",
                    &s,
                    "not a storage for container disks on this node".into(),
                    format!(
                        "choose one of: {}",
                        facts
                            .rootdir_storages
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Some((_, free)) if *free < disk_gib as u64 * 1024 * 1024 * 1024 && !force => bad(
                    "storage",
                    &s,
                    format!(
                        "only {} GiB free, {disk_gib} GiB needed",
                        free / 1024 / 1024 / 1024
                    ),
                    "choose another storage or a smaller disk_gib".into(),
                ),
                _ => {}
            }
            s
        }
        None => match facts
            .rootdir_storages
            .iter()
            .find(|(_, free)| *free >= disk_gib as u64 * 1024 * 1024 * 1024)
        {
            Some((n, _)) => n.clone(),
            None => {
                bad(
                    "storage",
                    "",
                    format!("no storage for container disks has {disk_gib} GiB free"),
                    "free space, add a storage, or lower disk_gib".into(),
                );
                String::new()
            }
        },
    };
    if let Some(t) = get("template_storage") {
        if let Err(e) = check_storage_id(&t) {
            bad("template_storage", &t, e, "e.g. local".into());
        } else if !facts.template_storages.contains(&t) {
            bad(
                "template_storage",
                &t,
                "not a storage for container templates on this node".into(),
                format!("choose one of: {}", facts.template_storages.join(", ")),
            );
        }
    }
    let template_storage = get("template_storage")
        .or_else(|| facts.template_storages.first().cloned())
        .unwrap_or_else(|| {
            bad(
                "template_storage",
                "",
                "no storage on this node holds container templates".into(),
                "enable content `vztmpl` on a storage (usually `local`)".into(),
            );
            String::new()
        });

    let os = match get("os").as_deref() {
        None => profile.os.default,
        Some("debian-12") => Os::Debian12,
        Some("debian-13") => Os::Debian13,
        Some(o) => {
            bad(
                "os",
                o,
                "unknown OS".into(),
                "use debian-12 or debian-13".into(),
            );
            profile.os.default
        }
    };
    if !profile.os.supported.contains(&os) {
        bad(
            "os",
            os.label(),
            "this profile does not support it".into(),
            format!("use {}", profile.os.default.label()),
        );
    }

    let bridge = get("bridge").unwrap_or_else(|| "vmbr0".into());
    if let Err(e) = check_bridge_name(&bridge) {
        bad("bridge", &bridge, e, "e.g. vmbr0".into());
    } else if !facts.bridges.contains(&bridge) {
        bad(
            "bridge",
            &bridge,
            "no such bridge on this node".into(),
            format!("choose one of: {}", facts.bridges.join(", ")),
        );
    }
    let ipv4 = match get("ip").as_deref() {
        None | Some("dhcp") => Ipv4Setting::Dhcp,
        Some(cidr) => match (
            parse_cidr(cidr),
            get("gateway").and_then(|g| g.parse::<Ipv4Addr>().ok()),
        ) {
            (None, _) => {
                bad(
                    "ip",
                    cidr,
                    "expected dhcp or an IPv4 address with prefix, e.g. 192.168.1.50/24".into(),
                    "write it as ADDRESS/PREFIX".into(),
                );
                Ipv4Setting::Dhcp
            }
            (Some(_), None) => {
                bad(
                    "gateway",
                    &get("gateway").unwrap_or_default(),
                    "a static address needs a gateway".into(),
                    "add gateway: 192.168.1.1".into(),
                );
                Ipv4Setting::Dhcp
            }
            (Some((addr, prefix)), Some(gw)) => {
                if !same_subnet(addr, gw, prefix) {
                    bad(
                        "ip",
                        cidr,
                        format!("the gateway {gw} is outside {addr}/{prefix}"),
                        "use an address in the gateway's subnet, or fix the prefix".into(),
                    );
                }
                Ipv4Setting::Static { addr, prefix, gw }
            }
        },
    };

    let database = match get("database") {
        None => profile.databases.default,
        Some(d) => match profile.databases.supported.iter().find(|k| k.label() == d) {
            Some(k) => *k,
            None => {
                bad(
                    "database",
                    &d,
                    "not supported by this profile".into(),
                    format!(
                        "choose one of: {}",
                        profile
                            .databases
                            .supported
                            .iter()
                            .map(|k| k.label())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                profile.databases.default
            }
        },
    };
    let external_db = match database {
        k if crate::database::adapter(k).is_external() => {
            let host = get("db_host").unwrap_or_default();
            let default_port = crate::database::adapter(database).default_port();
            let port = if get("db_port").is_some() {
                db_port
            } else {
                default_port
            };
            let host_ok = host.parse::<std::net::IpAddr>().is_ok() || check_domain(&host).is_ok();
            if !host.is_empty() && !host_ok {
                bad(
                    "db_host",
                    &host,
                    "not a host name or IP address".into(),
                    "e.g. db.example.com or 192.168.1.10".into(),
                );
            } else if host.is_empty() {
                bad(
                    "db_host",
                    "",
                    "an external database needs its host".into(),
                    "add db_host (and db_port, db_user, db_password, db_name)".into(),
                );
            } else if let Err(e) = db_reachable(&host, port) {
                bad(
                    "db_host",
                    &format!("{host}:{port}"),
                    format!("the database is unreachable: {e}"),
                    "check the address and that the server accepts connections from this network"
                        .into(),
                );
            }
            let user = get("db_user").unwrap_or_else(|| profile.name.to_string());
            let db_name = get("db_name").unwrap_or_else(|| profile.name.to_string());
            for (field, v) in [("db_user", &user), ("db_name", &db_name)] {
                if let Err(e) = check_db_field(field, v) {
                    bad(
                        field,
                        v,
                        e,
                        "create the database and user with such a name".into(),
                    );
                }
            }
            if crate::database::adapter(database).slot_databases()
                && check_db_field("db_name", &db_name).is_ok()
                && (db_name.contains('.') || db_name.len() > 57)
            {
                // MongoDB's names: no `.`, under 64 characters, and the green slot's copy
                // is NAME_green.
                bad(
                    "db_name",
                    &db_name,
                    "a MongoDB database name holds no `.`, and with `_green` (the update's copy) stays under 64 characters".into(),
                    format!("name it with letters, digits, _ and - only, at most 57 characters, and grant the user readWrite on it and on it followed by _green (e.g. {}_green)", db_name.replace('.', "_").chars().take(57).collect::<String>()),
                );
            }
            Some(ExternalDb {
                host,
                port,
                user,
                password: get("db_password").unwrap_or_default(),
                name: db_name,
            })
        }
        _ => None,
    };

    let tls = match (get("tls_cert"), get("tls_key")) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            for (field, problem) in check_tls_files(&c, &k) {
                let value = if field == "tls_cert" { &c } else { &k };
                bad(
                    field,
                    value,
                    problem,
                    "give the paths of your PEM certificate (chain) and its key on this host"
                        .into(),
                );
            }
            Some((c, k))
        }
        _ => {
            bad(
                "tls_cert",
                "",
                "give both tls_cert and tls_key, or neither (HTTP only)".into(),
                "add the missing one".into(),
            );
            None
        }
    };

    let acme_given: Vec<&str> = crate::acme::KEYS
        .iter()
        .copied()
        .filter(|k| get(k).is_some())
        .collect();
    let acme = match get("tls").as_deref() {
        None | Some("off") | Some("own") => {
            for k in &acme_given {
                bad(
                    k,
                    &get(k).unwrap_or_default(),
                    "an ACME setting without `tls: acme`".into(),
                    "add `tls: acme` (a certificate from Let's Encrypt or your ACME CA)".into(),
                );
            }
            None
        }
        Some("acme") => {
            if tls.is_some() {
                bad(
                    "tls",
                    "acme",
                    "tls: acme obtains the certificate; tls_cert and tls_key give your own".into(),
                    "keep one of the two".into(),
                );
            }
            let sets: BTreeMap<String, String> = acme_given
                .iter()
                .map(|k| (k.to_string(), get(k).unwrap_or_default()))
                .collect();
            let url_key = profile
                .role_key(crate::profile::Role::PublicUrl)
                .unwrap_or("roles.public_url");
            let url = get(url_key).unwrap_or_default();
            match crate::acme::validate(&sets, url_key, &url) {
                Ok(r) => Some(r),
                Err(ps) => {
                    for p in ps {
                        bad(&p.field, &p.value, p.problem, p.help);
                    }
                    None
                }
            }
        }
        Some(other) => {
            bad(
                "tls",
                other,
                "expected off (HTTP only, or your own tls_cert + tls_key) or acme".into(),
                "tls: acme with acme_email: ADDRESS gets a certificate from Let's Encrypt".into(),
            );
            None
        }
    };

    let health_check = match get("health_check") {
        None => false,
        Some(v) => match check_answer(QuestionKind::Bool, &v, None, None, &[]) {
            Ok(()) => matches!(v.as_str(), "true" | "yes" | "1"),
            Err(e) => {
                bad(
                    "health_check",
                    &v,
                    e,
                    "true sets up a daily `launch-tui status --all --notify` on this host".into(),
                );
                false
            }
        },
    };

    let version = get("version")
        .or_else(|| {
            profile
                .latest(crate::profile::Channel::Stable)
                .map(|r| r.version.clone())
        })
        .unwrap_or_default();
    if profile.release(&version).is_none() {
        bad(
            "version",
            &version,
            "not a release of this profile".into(),
            format!(
                "choose one of: {}",
                profile
                    .versions
                    .iter()
                    .map(|r| r.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    let mut app = BTreeMap::new();
    for q in &profile.questions {
        if refused.contains(q.key.as_str()) {
            continue;
        }
        let value = get(q.key.as_str()).or_else(|| q.default.clone());
        let Some(v) = value else {
            bad(
                q.key.as_str(),
                "",
                "no answer and no default".into(),
                format!("add `{}: ...` ({})", q.key, q.prompt),
            );
            continue;
        };
        if let Err(e) = check_answer(q.kind, &v, q.min, q.max, &q.choices) {
            bad(
                q.key.as_str(),
                &v,
                e,
                q.help.clone().unwrap_or_else(|| q.prompt.clone()),
            );
        }
        let v = match q.kind {
            QuestionKind::Bool => (matches!(v.as_str(), "true" | "yes" | "1")).to_string(),
            _ => v,
        };
        app.insert(q.key.to_string(), v);
    }
    for q in &profile.questions {
        if q.required_by(&app) && app.get(q.key.as_str()).is_none_or(|v| v.trim().is_empty()) {
            let because: Vec<String> = q
                .required_when
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            bad(
                q.key.as_str(),
                "",
                format!("needed with {}", because.join(", ")),
                format!("add `{}: ...` ({})", q.key, q.prompt),
            );
        }
    }
    // Kept with the answers: the site renders the challenge location from them, and the
    // record keeps them for renewals, reconfigures and restores.
    if let Some(r) = &acme {
        app.insert("acme_email".into(), r.email.clone());
        app.insert("acme_directory".into(), r.directory.clone());
        app.insert("acme_challenge".into(), r.challenge.as_str().into());
    }

    let dns = get("dns");
    if let Some(d) = &dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            bad("dns", d, "not an IP address".into(), "e.g. 1.1.1.1".into());
        }
    }
    let searchdomain = get("searchdomain");
    if let Some(s) = &searchdomain {
        if let Err(e) = check_domain(s) {
            bad("searchdomain", s, e, "e.g. lan".into());
        }
    }

    let root_password = get("root_password");
    if let Some(pw) = &root_password {
        if pw.chars().count() < 5 || pw.len() > 256 {
            bad(
                "root_password",
                pw,
                "Proxmox VE takes 5 to 256 characters".into(),
                "use a longer password, or leave it out and log in with ssh_public_keys or `pct enter`"
                    .into(),
            );
        }
    }
    let ssh_public_keys = get("ssh_public_keys");
    if let Some(k) = &ssh_public_keys {
        if let Err(e) = check_ssh_keys(k) {
            bad(
                "ssh_public_keys",
                k,
                e,
                "paste lines of ~/.ssh/id_ed25519.pub (TYPE BASE64 COMMENT)".into(),
            );
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(InstallSettings {
        name,
        vmid,
        hostname,
        cores,
        memory_mib,
        swap_mib,
        disk_gib,
        storage,
        template_storage,
        os,
        bridge,
        ipv4,
        dns,
        searchdomain,
        vlan,
        mtu,
        ssh_public_keys,
        root_password,
        database,
        external_db,
        tls,
        acme,
        version,
        health_check,
        app,
    })
}

/// A login name an app keeps in its own account files (see [`QuestionKind::Username`]).
pub fn check_username(v: &str) -> Result<(), String> {
    let ok_chars = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if v.is_empty() || v.len() > 64 {
        Err("expected 1 to 64 characters".into())
    } else if !ok_chars {
        Err("expected letters, digits, '.', '_', '@' and '-' only".into())
    } else if v.starts_with(['-', '.']) {
        Err("a user name cannot start with '-' or '.'".into())
    } else {
        Ok(())
    }
}

pub fn check_answer(
    kind: QuestionKind,
    v: &str,
    min: Option<i64>,
    max: Option<i64>,
    choices: &[String],
) -> Result<(), String> {
    match kind {
        QuestionKind::Text => Ok(()),
        QuestionKind::Username => check_username(v),
        QuestionKind::Url => check_url(v),
        QuestionKind::Email => check_email(v),
        QuestionKind::Bool => match v {
            "true" | "false" | "yes" | "no" | "1" | "0" => Ok(()),
            _ => Err("expected true or false".into()),
        },
        QuestionKind::Integer => {
            let (neg, digits) = match v.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, v),
            };
            let n = parse_whole(digits)
                .and_then(|n| i64::try_from(n).ok())
                .map(|n| if neg { -n } else { n })
                .ok_or_else(|| "expected a whole number (digits only)".to_string())?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(format!(
                    "expected {} to {}",
                    min.map(|m| m.to_string()).unwrap_or("-".into()),
                    max.map(|m| m.to_string()).unwrap_or("-".into())
                ));
            }
            Ok(())
        }
        QuestionKind::Timezone => {
            let ok = v == "UTC"
                || (v.contains('/')
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c)));
            if ok {
                Ok(())
            } else {
                Err("expected a timezone such as Europe/Berlin or Etc/UTC".into())
            }
        }
        QuestionKind::Choice => {
            if choices.iter().any(|c| c == v) {
                Ok(())
            } else {
                Err(format!("expected one of: {}", choices.join(", ")))
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn usernames_are_plain_login_names() {
        for ok in ["admin", "anna.k", "o_brien", "me@example.org", "a-1"] {
            assert_eq!(check_username(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "-rf",
            ".hidden",
            "a:b",
            "a b",
            "a\nb",
            "tab\t",
            "$(id)",
            "é",
            &"x".repeat(65),
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }

    use super::*;
    use crate::profile::Catalog;

    fn facts() -> NodeFacts {
        NodeFacts {
            node: "pve".into(),
            next_id: 105,
            taken_ids: vec![100, 101],
            taken_hostnames: vec!["vikunja".into()],
            rootdir_storages: vec![("local-lvm".into(), 100 << 30)],
            template_storages: vec!["local".into()],
            free_memory_mib: 8192,
            templates: vec!["debian-12-standard_12.7-1_amd64.tar.zst".into()],
            bridges: vec!["vmbr0".into()],
        }
    }

    fn answers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = Catalog::new(std::path::Path::new("/none"))
            .load("vikunja")
            .unwrap()
            .profile;
        let errs = resolve(
            &p,
            &facts(),
            &answers(&[
                ("public_url", "https://bad_domain!.example"),
                ("admin_email", "admin@example.com"),
                ("vmid", "101"),
                ("memory_mib", "64"),
                ("ip", "10.0.0.5/24"),
                ("gateway", "10.0.1.1"),
                ("root_password", "hunter2hunter2"),
                ("colour", "blue"),
            ]),
            false,
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "public_url",
            "vmid",
            "memory_mib",
            "ip",
            "colour",
            "hostname",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(!format!("{errs:?}").contains("hunter2"));
    }

    #[test]
    fn a_source_build_refuses_less_memory_than_it_needs_even_with_force() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/profiles/srcdemo");
        let p = crate::profile::load_dir(&dir).unwrap().profile;
        let errs = resolve(&p, &facts(), &answers(&[("memory_mib", "320")]), true).unwrap_err();
        let e = errs
            .iter()
            .find(|e| e.field == "memory_mib")
            .expect("memory_mib refused");
        assert!(
            e.problem.contains("384 MiB the build of Source Demo needs"),
            "{e:?}"
        );
        // Enough memory: no such refusal.
        let ok = resolve(&p, &facts(), &answers(&[("memory_mib", "384")]), true);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn defaults_fill_everything_but_the_required() {
        let p = Catalog::new(std::path::Path::new("/none"))
            .load("vikunja")
            .unwrap()
            .profile;
        let mut f = facts();
        f.taken_hostnames.clear();
        let s = resolve(
            &p,
            &f,
            &answers(&[
                ("public_url", "http://10.0.0.5"),
                ("admin_email", "a@example.com"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(s.vmid, 105);
        assert_eq!(s.hostname, "vikunja");
        assert_eq!(s.storage, "local-lvm");
        assert_eq!(s.database, DatabaseKind::Sqlite);
        assert_eq!(s.ipv4, Ipv4Setting::Dhcp);
        assert_eq!(s.app["mcp"], "true");
    }

    /// TLS files must be a PEM pair that belongs together, and never from where the host keeps
    /// its own secrets, even through a link.
    #[test]
    fn tls_files_are_a_matching_pem_pair_outside_the_hosts_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pair = |name: &str| {
            let c = rcgen::generate_simple_self_signed(vec!["a.example".into()]).unwrap();
            let (cert, key) = (d.join(format!("{name}.crt")), d.join(format!("{name}.key")));
            std::fs::write(&cert, c.cert.pem()).unwrap();
            std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
            (cert.display().to_string(), key.display().to_string())
        };
        let (c1, k1) = pair("one");
        let (_, k2) = pair("two");
        assert!(check_tls_files(&c1, &k1).is_empty());
        let p = check_tls_files(&c1, &k2);
        assert!(
            p.iter()
                .any(|(f, m)| *f == "tls_key" && m.contains("does not belong")),
            "{p:?}"
        );
        let p = check_tls_files(&k1, &c1);
        assert!(p.iter().any(|(f, _)| *f == "tls_cert"), "{p:?}");
        std::os::unix::fs::symlink("/proc/self/environ", d.join("innocent.pem")).unwrap();
        let link = d.join("innocent.pem").display().to_string();
        let p = check_tls_files(&link, &k1);
        assert!(
            p.iter()
                .any(|(f, m)| *f == "tls_cert" && m.contains("/proc/")),
            "{p:?}"
        );
        assert!(!check_tls_files("relative.pem", &k1).is_empty());
    }

    #[test]
    fn values_from_outside_are_checked_strictly() {
        assert_eq!(parse_whole("20"), Some(20));
        for bad in [
            "+20",
            " 2 ",
            "0x10",
            "",
            "2.0",
            "-1",
            "99999999999999999999",
        ] {
            assert_eq!(parse_whole(bad), None, "{bad:?}");
        }
        assert!(check_email("o'brien@example.com").is_ok());
        for bad in [
            "x'$(id)'@example.com",
            "a b@example.com",
            "@example.com",
            "a@b",
            "a..b@example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_url("https://tasks.example.com/").is_ok());
        for bad in [
            "http://a.example/$host",
            "http://a.example/\nserver",
            "ftp://a.example",
            "http://u:p@a.example",
            "http://a.example/#x",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
        assert!(check_bridge_name("vmbr0").is_ok());
        for bad in [
            "vmbr0,tag=5",
            "vmbr\u{0433}0",
            "a-very-long-bridge-name",
            "0br",
        ] {
            assert!(check_bridge_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_ssh_keys("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f me@host").is_ok());
        for bad in [
            "not a key",
            "ssh-ed25519 AAAA",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
        ] {
            assert!(check_ssh_keys(bad).is_err(), "{bad:?}");
        }
        assert!(check_value("k", "a\u{1b}[2J").is_err());
        assert!(check_value("k", &"x".repeat(MAX_VALUE_LEN + 1)).is_err());
    }
}
