//! Checks on values we put into API paths and property strings, with PVE's own formats.
//! PVE validates too, but a `/` in a node name or a `,` in a bridge name would change
//! *which* request we send, so those are caught here before anything is built.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use regex::Regex;

use super::error::PveError;

fn re(p: &str) -> Regex {
    Regex::new(p).expect("static regex is valid")
}

static NODE: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$"));
static STORAGE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$"));
static CONFIGID: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[a-z][a-z0-9_-]+$"));
static DNS_LABEL: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$"));
static TAG: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$"));
static BRIDGE: LazyLock<Regex> = LazyLock::new(|| re(r"^[-_.\w]+$"));
static IFACE: LazyLock<Regex> = LazyLock::new(|| re(r"^[-_.\w]{1,15}$"));
static TIMEZONE: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"));
static DIGEST: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9a-fA-F]{1,40}$"));

fn invalid(what: &'static str, value: &str, problem: &str, help: &str) -> PveError {
    PveError::InvalidInput {
        what,
        value: value.to_string(),
        problem: problem.to_string(),
        help: help.to_string(),
    }
}

pub fn node(v: &str) -> Result<(), PveError> {
    if NODE.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "node name",
            v,
            "a node name has letters, digits and inner dashes only",
            "use the name `pvesh get /nodes` or the web UI shows, e.g. `pve`",
        ))
    }
}

pub fn vmid(v: u32) -> Result<(), PveError> {
    if (100..=999_999_999).contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            "CT id",
            &v.to_string(),
            "ids run from 100 to 999999999",
            "pick a free id (the cluster's next free id is `pvesh get /cluster/nextid`)",
        ))
    }
}

pub fn storage(v: &str) -> Result<(), PveError> {
    if v.len() >= 2 && STORAGE.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "storage id",
            v,
            "a storage id starts with a letter and has letters, digits, `-`, `_` and `.`",
            "use a name from `pvesm status`, e.g. `local-lvm`",
        ))
    }
}

pub fn snapname(v: &str) -> Result<(), PveError> {
    if v.len() <= 40 && CONFIGID.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "snapshot name",
            v,
            "a snapshot name starts with a letter, has letters, digits, `_` and `-`, and is at most 40 characters",
            "e.g. `pre_update_2024_06_01`",
        ))
    }
}

pub fn config_key(v: &str) -> Result<(), PveError> {
    if CONFIGID.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "config key",
            v,
            "config keys are names like `net1` or `mp0`",
            "list the CT's keys with `pct config <vmid>`",
        ))
    }
}

pub fn hostname(v: &str) -> Result<(), PveError> {
    let ok = !v.is_empty()
        && v.len() <= 255
        && v.split('.').all(|l| l.len() <= 63 && DNS_LABEL.is_match(l));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "host name",
            v,
            "a host name is DNS labels of letters, digits and inner dashes, joined by dots",
            "e.g. `tasks` or `tasks.home.arpa`",
        ))
    }
}

pub fn tag(v: &str) -> Result<(), PveError> {
    if TAG.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "tag",
            v,
            "tags have letters, digits, `_`, `-`, `+` and `.`, and do not start with `-`, `+` or `.`",
            "e.g. `launch` or `app-tasks`",
        ))
    }
}

pub fn bridge(v: &str) -> Result<(), PveError> {
    if BRIDGE.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "bridge",
            v,
            "a bridge name has letters, digits, `-`, `_` and `.` only",
            "use a bridge from `ip -br link show type bridge`, e.g. `vmbr0`",
        ))
    }
}

pub fn iface(v: &str) -> Result<(), PveError> {
    if IFACE.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "interface name",
            v,
            "an interface name is 1 to 15 letters, digits, `-`, `_` or `.`",
            "use `eth0`",
        ))
    }
}

pub fn ipv4_cidr(v: &str) -> Result<(), PveError> {
    let ok = v.split_once('/').is_some_and(|(a, p)| {
        a.parse::<Ipv4Addr>().is_ok() && p.parse::<u8>().is_ok_and(|p| (1..=32).contains(&p))
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "IPv4 address",
            v,
            "expected an IPv4 address with a prefix length",
            "e.g. `192.168.1.50/24`, or use DHCP",
        ))
    }
}

pub fn ip(v: &str) -> Result<(), PveError> {
    if v.parse::<IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(invalid(
            "IP address",
            v,
            "not an IPv4 or IPv6 address",
            "e.g. `192.168.1.1`",
        ))
    }
}

pub fn vlan_tag(v: u16) -> Result<(), PveError> {
    if (1..=4094).contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            "VLAN tag",
            &v.to_string(),
            "VLAN tags run from 1 to 4094",
            "leave it unset for an untagged port",
        ))
    }
}

pub fn mtu(v: u16) -> Result<(), PveError> {
    if v >= 64 {
        Ok(())
    } else {
        Err(invalid(
            "MTU",
            &v.to_string(),
            "the MTU must be 64 to 65535",
            "leave it unset to use the bridge's MTU",
        ))
    }
}

pub fn timezone(v: &str) -> Result<(), PveError> {
    if v == "host" || TIMEZONE.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "time zone",
            v,
            "expected `host` or a zone like `Europe/Berlin`",
            "see `timedatectl list-timezones`",
        ))
    }
}

pub fn digest(v: &str) -> Result<(), PveError> {
    if DIGEST.is_match(v) {
        Ok(())
    } else {
        Err(invalid(
            "config digest",
            v,
            "a digest is up to 40 hex digits",
            "pass the `digest` from the config you read, unchanged",
        ))
    }
}

/// A free-text value with PVE's length limit; control characters other than newline and
/// tab are refused since they would corrupt the CT's config file.
pub fn text(what: &'static str, v: &str, max: usize) -> Result<(), PveError> {
    if v.len() > max {
        return Err(invalid(
            what,
            &shorten(v),
            &format!("at most {max} bytes allowed, got {}", v.len()),
            "shorten it",
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(
            what,
            &shorten(v),
            "contains control characters",
            "remove them",
        ));
    }
    Ok(())
}

/// A single-line value that must not carry property-string separators.
pub fn plain(what: &'static str, v: &str, max: usize) -> Result<(), PveError> {
    if v.is_empty() || v.len() > max || v.chars().any(|c| c.is_control() || c == ',') {
        return Err(invalid(
            what,
            &shorten(v),
            &format!("must be 1 to {max} bytes, one line, without `,`"),
            "check the value",
        ));
    }
    Ok(())
}

fn shorten(v: &str) -> String {
    if v.chars().count() > 60 {
        let head: String = v.chars().take(60).collect();
        format!("{head}...")
    } else {
        v.to_string()
    }
}
