//! Named `format` validators. The schema only names them; the rules live in Perl (pve-common
//! JSONSchema.pm, pve-container, pve-storage, pve-access-control) and are re-implemented here
//! with PVE's messages. Formats not implemented are accepted and listed in `UNCHECKED_FORMATS`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// A validator returns PVE's `die` text without the trailing newline.
type Validator = fn(&str) -> Result<(), String>;

/// Named formats that occur in the PVE 8.4 / 9.1 schemas and are NOT checked: any value passes.
/// Most are hash-based property-string formats whose definition the schema does not carry
/// (`backup-performance`, `prune-backups`, `pve-qm-*` ...), or belong to areas Launch never
/// calls (firewall, SDN, HA, ACME, Ceph, QEMU). A test keeps this list in sync with the files.
pub const UNCHECKED_FORMATS: &[&str] = &[
    "IPorCIDR",
    "IPorCIDRorAlias",
    "backup-fleecing",
    "backup-performance",
    "bridge-pair",
    "graphite-path",
    "mac-prefix",
    "pem-certificate-chain",
    "pem-string",
    "proxmox-remote",
    "prune-backups",
    "pve-acme-alias",
    "pve-acme-domain",
    "pve-calendar-event",
    "pve-command-batch",
    "pve-cpuset",
    "pve-day-of-week",
    "pve-dir-override",
    "pve-fw-addr-spec",
    "pve-fw-conntrack-helper",
    "pve-fw-dport-spec",
    "pve-fw-icmp-type-spec",
    "pve-fw-protocol-spec",
    "pve-fw-sport-spec",
    "pve-ha-group-node",
    "pve-ha-node",
    "pve-ha-resource-id",
    "pve-ha-resource-or-vm-id",
    "pve-hotplug-features",
    "pve-priv",
    "pve-qemu-sev-fmt",
    "pve-qemu-tdx-fmt",
    "pve-qm-boot",
    "pve-qm-bootdisk",
    "pve-qm-cicustom",
    "pve-qm-hostpci",
    "pve-qm-ide",
    "pve-qm-ipconfig",
    "pve-qm-rng",
    "pve-qm-smbios1",
    "pve-qm-watchdog",
    "pve-replication-job-id",
    "pve-sdn-bgp-rt",
    "pve-sdn-controller-id",
    "pve-sdn-dhcp-range",
    "pve-sdn-dns-id",
    "pve-sdn-fabric-id",
    "pve-sdn-ipam-id",
    "pve-sdn-isis-net",
    "pve-sdn-subnet-id",
    "pve-sdn-vnet-id",
    "pve-sdn-zone-id",
    "pve-storage-options",
    "pve-storage-path",
    "pve-storage-path-in-property-string",
    "pve-storage-server",
    "pve-storage-vgname",
    "pve-tfa-config",
    "pve-tokenid",
    "pve-vm-cpu-conf",
    "pve-volume-id-or-absolute-path",
    "pve-volume-id-or-qm-path",
    "realm-sync-options",
    "storage-pair",
];

/// The base names (without `-list`/`-opt`) this module validates.
pub fn checked_formats() -> impl Iterator<Item = &'static str> {
    VALIDATORS.iter().map(|(name, _)| *name)
}

const VALIDATORS: &[(&str, Validator)] = &[
    ("string", |_| Ok(())),
    ("urlencoded", verify_urlencoded),
    ("pve-configid", verify_configid),
    ("pve-storage-id", |v| verify_id(v, "storage")),
    ("pve-bridge-id", verify_bridge_id),
    ("pve-vmid", verify_vmid),
    ("pve-node", verify_node),
    ("mac-addr", verify_mac_addr),
    ("ipv4", verify_ipv4),
    ("ipv6", verify_ipv6),
    ("ip", verify_ip),
    ("ldap-simple-attr", verify_ldap_simple_attr),
    ("ipv4mask", verify_ipv4mask),
    ("CIDRv6", verify_cidrv6),
    ("CIDRv4", verify_cidrv4),
    ("CIDR", verify_cidr),
    ("pve-ipv4-config", verify_ipv4_config),
    ("pve-ipv6-config", verify_ipv6_config),
    ("email", verify_email),
    ("email-or-username", verify_email_or_username),
    ("dns-name", verify_dns_name),
    ("timezone", verify_timezone),
    ("pve-ct-timezone", verify_ct_timezone),
    ("pve-iface", verify_iface),
    ("pve-vlan-id-or-range", verify_vlan_id_or_range),
    ("address", verify_address),
    ("disk-size", verify_disk_size),
    ("pve-startup-order", verify_startup_order),
    ("pve-tag", verify_tag),
    ("pve-task-status-type", verify_task_status_type),
    ("pve-lxc-mp-string", verify_lxc_mp_string),
    ("pve-lxc-dev-string", verify_lxc_dev_string),
    ("lxc-ip-with-ll-iface", verify_ip_with_ll_iface),
    ("pve-volume-id", verify_volume_id),
    ("pve-storage-content", verify_storage_content),
    ("pve-storage-portal-dns", verify_portal_dns),
    ("pve-userid", verify_userid),
    ("pve-realm", verify_realm),
    ("pve-poolid", verify_poolid),
    ("pve-groupid", verify_groupid),
    ("pve-roleid", verify_roleid),
];

/// Checks `value` against the named format like PVE's `check_format`. `Err` holds the complete
/// `$@` text (with its trailing newline) that PVE prefixes with "invalid format - ".
pub fn check_named(format: &str, value: &str) -> Result<(), String> {
    // Formats used as `format => 'regex'` are only compiled by PVE, never matched.
    if format == "regex" {
        return Ok(());
    }
    let (base, kind) = if let Some(b) = format.strip_suffix("-list") {
        (b, Kind::List)
    } else if let Some(b) = format.strip_suffix("-opt") {
        (b, Kind::Opt)
    } else {
        (format, Kind::Single)
    };
    let Some(validator) = VALIDATORS.iter().find(|(n, _)| *n == base).map(|(_, v)| *v) else {
        return Ok(()); // unchecked: see UNCHECKED_FORMATS
    };
    let run = |v: &str| validator(v).map_err(|msg| format!("{msg}\n"));
    match kind {
        Kind::Single => run(value),
        Kind::Opt if perl_truthy(value) => run(value),
        Kind::Opt => Ok(()),
        Kind::List => split_list(value).iter().try_for_each(|item| run(item)),
    }
}

enum Kind {
    Single,
    List,
    Opt,
}

/// PVE::Tools::split_list: NUL-separated if a NUL is present, else split on `,` `;` whitespace.
pub fn split_list(text: &str) -> Vec<&str> {
    if text.contains('\0') {
        let mut items: Vec<&str> = text.split('\0').collect();
        // Perl's split drops trailing empty fields.
        while items.last() == Some(&"") {
            items.pop();
        }
        return items;
    }
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Perl truthiness of a string scalar: "" and "0" are false.
pub fn perl_truthy(s: &str) -> bool {
    !s.is_empty() && s != "0"
}

fn re(pattern: &'static str) -> Regex {
    match Regex::new(pattern) {
        Ok(r) => r,
        // The patterns are constants below; the unit tests compile every one of them.
        Err(e) => unreachable!("built-in format regex {pattern:?} does not compile: {e}"),
    }
}

macro_rules! static_re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| re($pat));
    };
}

static_re!(URLENCODED, r"^[-%a-zA-Z0-9_.!~*'()]*$");
static_re!(CONFIGID, r"(?i)^[a-z][a-z0-9_-]+$");
static_re!(STORAGE_ID, r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$");
static_re!(BRIDGE_ID, r"^[-_.\w\d]+$");
static_re!(VMID, r"^[1-9][0-9]{2,8}$");
static_re!(NODE, r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$");
static_re!(MAC, r"(?i)^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$");
static_re!(LDAP_ATTR, r"^[a-zA-Z0-9]+$");
static_re!(
    EMAIL,
    r"^[\w+\-~]+(\.[\w+\-~]+)*@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*$"
);
static_re!(EMAIL_USER, r"^[\w+\-~]+(\.[\w+\-~]+)*$");
static_re!(
    DNS_NAME,
    r"^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$"
);
static_re!(IFACE, r"(?i)^[a-z][a-z0-9_]{1,20}([:.]\d+)?$");
static_re!(VLAN, r"^(\d+)(?:-(\d+))?$");
static_re!(SIZE, r"^(\d+(\.\d+)?)([KMGT])?$");
static_re!(TAG, r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$");
static_re!(TASK_STATUS, r"(?i)^(ok|error|warning|unknown)$");
static_re!(VOLUME_ID, r"(?i)^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$");
static_re!(
    PORTAL_DNS,
    r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[[:alnum:]\-.]+)(:\d+)?$"
);
static_re!(USERID, r"^([^\s:/]+)@([A-Za-z][A-Za-z0-9.\-_]+)$");
static_re!(REALM, r"^[A-Za-z][A-Za-z0-9.\-_]+$");
// Nested pools (PVE >= 8.1) allow up to three levels separated by '/'.
static_re!(POOLID, r"^[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}$");
static_re!(GROUP_ROLE, r"^[A-Za-z0-9.\-_]+$");
// zone.tab is not embedded: any Area/Location[/Sub] name in one of zone.tab's areas passes.
static_re!(
    TIMEZONE,
    r"^(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific)(/[A-Za-z0-9_+\-]+){1,2}$"
);

fn verify_urlencoded(v: &str) -> Result<(), String> {
    ok_if(URLENCODED.is_match(v), || {
        format!("invalid urlencoded string: {v}")
    })
}

fn verify_configid(v: &str) -> Result<(), String> {
    ok_if(CONFIGID.is_match(v), || {
        format!("invalid configuration ID '{v}'")
    })
}

fn verify_id(v: &str, what: &str) -> Result<(), String> {
    ok_if(STORAGE_ID.is_match(v), || {
        format!("{what} ID '{v}' contains illegal characters")
    })
}

fn verify_bridge_id(v: &str) -> Result<(), String> {
    ok_if(BRIDGE_ID.is_match(v), || format!("invalid bridge ID '{v}'"))
}

fn verify_vmid(v: &str) -> Result<(), String> {
    ok_if(VMID.is_match(v), || {
        "value does not look like a valid VM ID".to_string()
    })
}

fn verify_node(v: &str) -> Result<(), String> {
    ok_if(NODE.is_match(v), || {
        "value does not look like a valid node name".to_string()
    })
}

fn verify_mac_addr(v: &str) -> Result<(), String> {
    ok_if(MAC.is_match(v), || {
        "value does not look like a valid unicast MAC address".to_string()
    })
}

fn is_ipv4(v: &str) -> bool {
    // std rejects leading zeros ("01.2.3.4") exactly like PVE's $IPV4RE.
    v.parse::<Ipv4Addr>().is_ok()
}

fn is_ipv6(v: &str) -> bool {
    v.parse::<Ipv6Addr>().is_ok()
}

fn verify_ipv4(v: &str) -> Result<(), String> {
    ok_if(is_ipv4(v), || {
        "value does not look like a valid IPv4 address".to_string()
    })
}

fn verify_ipv6(v: &str) -> Result<(), String> {
    ok_if(is_ipv6(v), || {
        "value does not look like a valid IPv6 address".to_string()
    })
}

fn verify_ip(v: &str) -> Result<(), String> {
    ok_if(is_ipv4(v) || is_ipv6(v), || {
        "value does not look like a valid IP address".to_string()
    })
}

fn verify_ldap_simple_attr(v: &str) -> Result<(), String> {
    ok_if(LDAP_ATTR.is_match(v), || {
        format!("value '{v}' does not look like a simple ldap attribute name")
    })
}

fn verify_ipv4mask(v: &str) -> Result<(), String> {
    let valid = v.parse::<Ipv4Addr>().is_ok_and(|m| {
        let bits = u32::from(m);
        bits.leading_ones() + bits.trailing_zeros() == 32
    });
    ok_if(valid, || {
        "value does not look like a valid IP netmask".to_string()
    })
}

fn cidr_ok(v: &str, addr_ok: fn(&str) -> bool, max: u64) -> bool {
    let Some((addr, bits)) = v.split_once('/') else {
        return false;
    };
    // PVE: (\d+) with 7 < bits <= max; a huge digit string is simply out of range.
    !bits.is_empty()
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u64>().is_ok_and(|n| n > 7 && n <= max)
        && addr_ok(addr)
}

fn verify_cidrv4(v: &str) -> Result<(), String> {
    ok_if(cidr_ok(v, is_ipv4, 32), || {
        "value does not look like a valid IPv4 CIDR network".to_string()
    })
}

fn verify_cidrv6(v: &str) -> Result<(), String> {
    ok_if(cidr_ok(v, is_ipv6, 128), || {
        "value does not look like a valid IPv6 CIDR network".to_string()
    })
}

fn verify_cidr(v: &str) -> Result<(), String> {
    ok_if(cidr_ok(v, is_ipv4, 32) || cidr_ok(v, is_ipv6, 128), || {
        "value does not look like a valid CIDR network".to_string()
    })
}

fn verify_ipv4_config(v: &str) -> Result<(), String> {
    ok_if(
        matches!(v, "dhcp" | "manual") || cidr_ok(v, is_ipv4, 32),
        || "value does not look like a valid ipv4 network configuration".to_string(),
    )
}

fn verify_ipv6_config(v: &str) -> Result<(), String> {
    ok_if(
        matches!(v, "auto" | "dhcp" | "manual") || cidr_ok(v, is_ipv6, 128),
        || "value does not look like a valid ipv6 network configuration".to_string(),
    )
}

fn verify_email(v: &str) -> Result<(), String> {
    ok_if(EMAIL.is_match(v), || {
        "value does not look like a valid email address".to_string()
    })
}

fn verify_email_or_username(v: &str) -> Result<(), String> {
    ok_if(EMAIL.is_match(v) || EMAIL_USER.is_match(v), || {
        "value does not look like a valid email address or user name".to_string()
    })
}

fn verify_dns_name(v: &str) -> Result<(), String> {
    ok_if(DNS_NAME.is_match(v), || {
        "value does not look like a valid DNS name".to_string()
    })
}

/// PVE reads /usr/share/zoneinfo/zone.tab; that file is not embedded here, so any
/// `Area/Location` name in one of zone.tab's areas is accepted (see TIMEZONE).
fn verify_timezone(v: &str) -> Result<(), String> {
    ok_if(v == "UTC" || TIMEZONE.is_match(v), || {
        format!("invalid time zone '{v}'")
    })
}

fn verify_ct_timezone(v: &str) -> Result<(), String> {
    if v == "host" {
        return Ok(());
    }
    verify_timezone(v)
}

fn verify_iface(v: &str) -> Result<(), String> {
    ok_if(IFACE.is_match(v), || {
        format!("invalid network interface name '{v}'")
    })
}

fn verify_vlan_id_or_range(v: &str) -> Result<(), String> {
    let Some(caps) = VLAN.captures(v) else {
        return Err(format!("invalid VLAN configuration '{v}'"));
    };
    let tag = |i: usize| {
        caps.get(i)
            .map(|m| m.as_str().parse::<u64>().unwrap_or(u64::MAX))
    };
    let valid_tag = |t: u64, text: &str| {
        if (2..=4094).contains(&t) {
            Ok(())
        } else {
            Err(format!("invalid VLAN tag '{text}'"))
        }
    };
    let start = tag(1).unwrap_or(0);
    valid_tag(start, caps.get(1).map_or("", |m| m.as_str()))?;
    if let Some(end) = tag(2).filter(|e| *e != 0) {
        valid_tag(end, caps.get(2).map_or("", |m| m.as_str()))?;
        if start >= end {
            return Err(format!("VLAN range must go from lower to higher tag '{v}'"));
        }
    }
    Ok(())
}

fn verify_address(v: &str) -> Result<(), String> {
    ok_if(is_ipv4(v) || is_ipv6(v) || DNS_NAME.is_match(v), || {
        format!("value does not look like a valid address: {v}")
    })
}

fn verify_disk_size(v: &str) -> Result<(), String> {
    ok_if(SIZE.is_match(v), || {
        format!("value does not look like a valid disk size: {v}")
    })
}

fn verify_startup_order(v: &str) -> Result<(), String> {
    // pve_parse_startup_order: comma-separated [order=]N, up=N, down=N; an empty value fails.
    static PART: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:(?:order=)?\d+|up=\d+|down=\d+)$"));
    let valid = perl_truthy(v)
        && v.split(',')
            .filter(|p| !p.trim().is_empty())
            .all(|p| PART.is_match(p));
    ok_if(valid, || "unable to parse startup options".to_string())
}

fn verify_tag(v: &str) -> Result<(), String> {
    ok_if(TAG.is_match(v), || "invalid characters in tag".to_string())
}

fn verify_task_status_type(v: &str) -> Result<(), String> {
    ok_if(TASK_STATUS.is_match(v), || format!("invalid status '{v}'"))
}

fn has_dot_segments(p: &str) -> bool {
    p.contains("/./") || p.contains("/../") || p.ends_with("/.") || p.ends_with("/..")
}

fn verify_lxc_mp_string(v: &str) -> Result<(), String> {
    ok_if(!has_dot_segments(v) && !v.starts_with("../"), || {
        format!("{v} contains illegal character sequences")
    })
}

/// pve-container's device-path check; its message is PVE-like, not verified against the source.
fn verify_lxc_dev_string(v: &str) -> Result<(), String> {
    ok_if(!has_dot_segments(v) && v.starts_with("/dev/"), || {
        format!("{v} is not a valid device path")
    })
}

fn verify_ip_with_ll_iface(v: &str) -> Result<(), String> {
    // A link-local IPv6 address may carry its interface: fe80::1%eth0.
    if v.len() >= 5 && v[..5].eq_ignore_ascii_case("fe80:") {
        if let Some((addr, iface)) = v.split_once('%') {
            if is_ipv6(addr) && IFACE.is_match(iface) {
                return Ok(());
            }
        }
    }
    verify_ip(v)
}

fn verify_volume_id(v: &str) -> Result<(), String> {
    ok_if(VOLUME_ID.is_match(v), || {
        format!("unable to parse volume ID '{v}'")
    })
}

fn verify_storage_content(v: &str) -> Result<(), String> {
    // valid_content_types('dir') plus 'import' (PVE >= 8.2).
    const CONTENT: &[&str] = &[
        "images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import",
    ];
    ok_if(CONTENT.contains(&v), || {
        format!("invalid content type '{v}'")
    })
}

fn verify_portal_dns(v: &str) -> Result<(), String> {
    ok_if(PORTAL_DNS.is_match(v), || {
        "value does not look like a valid portal address".to_string()
    })
}

fn verify_userid(v: &str) -> Result<(), String> {
    let len = v.chars().count();
    if len < 3 {
        return Err(format!("user name '{v}' is too short"));
    }
    if len > 64 {
        return Err(format!("user name '{v}' is too long ({len} > 64)"));
    }
    ok_if(USERID.is_match(v), || {
        format!("value '{v}' does not look like a valid user name")
    })
}

fn verify_realm(v: &str) -> Result<(), String> {
    ok_if(REALM.is_match(v), || {
        "value does not look like a valid realm".to_string()
    })
}

fn verify_poolid(v: &str) -> Result<(), String> {
    ok_if(POOLID.is_match(v), || {
        format!("pool name '{v}' contains invalid characters")
    })
}

fn verify_groupid(v: &str) -> Result<(), String> {
    ok_if(GROUP_ROLE.is_match(v), || {
        format!("group name '{v}' contains invalid characters")
    })
}

fn verify_roleid(v: &str) -> Result<(), String> {
    ok_if(GROUP_ROLE.is_match(v), || {
        format!("role name '{v}' contains invalid characters")
    })
}

fn ok_if(valid: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if valid {
        Ok(())
    } else {
        Err(message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(format: &str, value: &str) -> String {
        match check_named(format, value) {
            Ok(()) => panic!("{format}: {value:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_builtin_regex_compiles() {
        for r in [
            &URLENCODED,
            &CONFIGID,
            &STORAGE_ID,
            &BRIDGE_ID,
            &VMID,
            &NODE,
            &MAC,
            &LDAP_ATTR,
            &EMAIL,
            &EMAIL_USER,
            &DNS_NAME,
            &IFACE,
            &VLAN,
            &SIZE,
            &TAG,
            &TASK_STATUS,
            &VOLUME_ID,
            &PORTAL_DNS,
            &USERID,
            &REALM,
            &POOLID,
            &GROUP_ROLE,
            &TIMEZONE,
        ] {
            assert!(!r.as_str().is_empty());
        }
    }

    #[test]
    fn list_formats_split_like_pve() {
        assert_eq!(split_list("a,b; c  d"), vec!["a", "b", "c", "d"]);
        assert_eq!(split_list("a b\0c"), vec!["a b", "c"]);
        assert_eq!(split_list(""), Vec::<&str>::new());
        assert!(check_named("pve-tag-list", "launch;vikunja").is_ok());
        assert_eq!(
            err("pve-tag-list", "launch;bad tag!"),
            "invalid characters in tag\n"
        );
        assert!(check_named("pve-vmid-list", "100,101 102").is_ok());
        assert_eq!(
            err("pve-vmid-list", "100,99"),
            "value does not look like a valid VM ID\n"
        );
        assert!(check_named("email-opt", "").is_ok());
        assert!(check_named("email-opt", "x").is_err());
    }

    #[test]
    fn network_formats() {
        assert!(check_named("pve-ipv4-config", "10.0.0.2/24").is_ok());
        assert!(check_named("pve-ipv4-config", "dhcp").is_ok());
        assert!(check_named("pve-ipv4-config", "10.0.0.2/7").is_err());
        assert!(check_named("pve-ipv4-config", "10.0.0.2").is_err());
        assert!(check_named("pve-ipv6-config", "auto").is_ok());
        assert!(check_named("pve-ipv6-config", "fd00::2/64").is_ok());
        assert!(check_named("CIDRv4", "010.0.0.1/24").is_err());
        assert!(check_named("mac-addr", "BC:24:11:00:00:01").is_ok());
        assert_eq!(
            err("mac-addr", "01:00:5e:00:00:01"),
            "value does not look like a valid unicast MAC address\n"
        );
        assert!(check_named("ipv4mask", "255.255.255.0").is_ok());
        assert!(check_named("ipv4mask", "255.0.255.0").is_err());
        assert!(check_named("lxc-ip-with-ll-iface-list", "1.1.1.1 fe80::1%eth0").is_ok());
        assert!(check_named("lxc-ip-with-ll-iface", "fe80::1%").is_err());
        assert!(check_named("address", "pve.example.com").is_ok());
        assert!(check_named("pve-vlan-id-or-range", "10-20").is_ok());
        assert_eq!(
            err("pve-vlan-id-or-range", "20-10"),
            "VLAN range must go from lower to higher tag '20-10'\n"
        );
        assert_eq!(err("pve-vlan-id-or-range", "1"), "invalid VLAN tag '1'\n");
    }

    #[test]
    fn identifier_formats() {
        assert_eq!(
            err("pve-storage-id", "1local"),
            "storage ID '1local' contains illegal characters\n"
        );
        assert!(check_named("pve-storage-id", "local-lvm").is_ok());
        assert_eq!(err("pve-configid", "a"), "invalid configuration ID 'a'\n");
        assert!(check_named("pve-userid", "launch@pve").is_ok());
        assert_eq!(err("pve-userid", "ab"), "user name 'ab' is too short\n");
        assert_eq!(
            err("pve-userid", "launch@1x"),
            "value 'launch@1x' does not look like a valid user name\n"
        );
        assert!(check_named("pve-poolid", "apps/launch").is_ok());
        assert!(check_named(
            "pve-volume-id",
            "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
        )
        .is_ok());
        assert_eq!(
            err("pve-volume-id", "nocolon"),
            "unable to parse volume ID 'nocolon'\n"
        );
        assert_eq!(
            err("pve-storage-content-list", "rootdir,iso,bogus"),
            "invalid content type 'bogus'\n"
        );
        assert!(check_named("pve-startup-order", "order=1,up=30").is_ok());
        assert!(check_named("pve-startup-order", "sideways=1").is_err());
    }

    #[test]
    fn container_formats() {
        assert!(check_named("pve-lxc-mp-string", "/mnt/data").is_ok());
        assert_eq!(
            err("pve-lxc-mp-string", "/mnt/../etc"),
            "/mnt/../etc contains illegal character sequences\n"
        );
        assert!(check_named("pve-lxc-mp-string", "../x").is_err());
        assert!(check_named("pve-ct-timezone", "host").is_ok());
        assert!(check_named("pve-ct-timezone", "Europe/Berlin").is_ok());
        assert!(check_named("pve-ct-timezone", "America/Argentina/Buenos_Aires").is_ok());
        assert_eq!(
            err("pve-ct-timezone", "Mars/Olympus"),
            "invalid time zone 'Mars/Olympus'\n"
        );
        assert!(check_named("pve-lxc-dev-string", "/dev/net/tun").is_ok());
        assert!(check_named("pve-lxc-dev-string", "/etc/passwd").is_err());
    }

    #[test]
    fn unknown_formats_pass() {
        assert!(check_named("pve-fw-addr-spec", "anything at all").is_ok());
        assert!(check_named("no-such-format", "x").is_ok());
    }
}
