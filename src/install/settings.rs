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
        Err(format!("`{s}` is not a valid domain name"))
    }
}

pub fn check_url(s: &str) -> Result<(), String> {
    let u = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err("the URL must start with http:// or https://".into());
    }
    match u.host() {
        Some(url::Host::Domain(d)) => check_domain(d),
        Some(_) => Ok(()),
        None => Err("the URL has no host".into()),
    }
}

pub fn check_email(s: &str) -> Result<(), String> {
    match s.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => check_domain(domain),
        _ => Err(format!("`{s}` is not an email address")),
    }
}

fn check_hostname(s: &str) -> Result<(), String> {
    if s.len() <= 63 && !s.contains('.') {
        check_domain(s).map_err(|_| format!("`{s}` is not a valid hostname"))
    } else {
        Err(format!(
            "`{s}` is not a valid hostname (one label, at most 63 characters)"
        ))
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
    let get = |k: &str| {
        answers
            .get(k)
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
        bad("name", &name, e, "use a name like vikunja-2".into());
    }

    let mut num = |k: &str, default: u64, lo: u64, hi: u64| -> u64 {
        match get(k) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (lo..=hi).contains(&n) => n,
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
            "letters, digits and '-', e.g. vikunja".into(),
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
        DatabaseKind::ExternalPostgres | DatabaseKind::ExternalMariadb => {
            let host = get("db_host").unwrap_or_default();
            let default_port = if database == DatabaseKind::ExternalMariadb {
                3306
            } else {
                5432
            };
            let port = if get("db_port").is_some() {
                db_port
            } else {
                default_port
            };
            if host.is_empty() {
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
            Some(ExternalDb {
                host,
                port,
                user: get("db_user").unwrap_or_else(|| profile.name.to_string()),
                password: get("db_password").unwrap_or_default(),
                name: get("db_name").unwrap_or_else(|| profile.name.to_string()),
            })
        }
        _ => None,
    };

    let tls = match (get("tls_cert"), get("tls_key")) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            for (f, p) in [("tls_cert", &c), ("tls_key", &k)] {
                if !std::path::Path::new(p).is_file() {
                    bad(
                        f,
                        p,
                        "no such file on this host".into(),
                        "give the path of the PEM file on the Proxmox VE host".into(),
                    );
                }
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
        ssh_public_keys: get("ssh_public_keys"),
        root_password: get("root_password"),
        database,
        external_db,
        tls,
        version,
        health_check,
        app,
    })
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
        QuestionKind::Url => check_url(v),
        QuestionKind::Email => check_email(v),
        QuestionKind::Bool => match v {
            "true" | "false" | "yes" | "no" | "1" | "0" => Ok(()),
            _ => Err("expected true or false".into()),
        },
        QuestionKind::Integer => {
            let n: i64 = v
                .parse()
                .map_err(|_| "expected a whole number".to_string())?;
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
}
