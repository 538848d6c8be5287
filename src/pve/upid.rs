//! Task ids (UPIDs) as PVE prints them: parsed with PVE's own regex, displayed verbatim
//! (the node compares the string, so we never re-render it).

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::PveError;

// PVE::Tools::upid_decode, with pstart allowed 8 or 9 hex digits (long-running hosts).
static UPID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$",
    )
    .expect("UPID regex is valid")
});

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Upid {
    raw: String,
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    pub task_type: String,
    /// Often the vmid; empty for node-wide tasks; the template name for `download`.
    pub id: String,
    /// `user@realm` or `user@realm!tokenid`.
    pub user: String,
}

impl Upid {
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl FromStr for Upid {
    type Err = PveError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: &str| PveError::InvalidUpid {
            value: s.to_string(),
            problem: problem.to_string(),
        };
        let c = UPID_RE.captures(s).ok_or_else(|| {
            bad("expected UPID:<node>:<pid 8 hex>:<pstart 8-9 hex>:<starttime 8 hex>:<type>:<id>:<user>: (with the trailing colon)")
        })?;
        let hex = |i: usize| {
            u64::from_str_radix(&c[i], 16).map_err(|_| bad("a hex field does not parse"))
        };
        let pid = u32::try_from(hex(3)?).map_err(|_| bad("pid out of range"))?;
        Ok(Upid {
            raw: s.to_string(),
            node: c[1].to_string(),
            pid,
            pstart: hex(4)?,
            starttime: hex(5)?,
            task_type: c[6].to_string(),
            id: c[7].to_string(),
            user: c[8].to_string(),
        })
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Upid({})", self.raw)
    }
}

impl Serialize for Upid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Upid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
