//! pve-lab: a local Proxmox VE stand-in. The API server answers as a PVE node would and
//! validates every request against the official schema; the runtime boots real Debian
//! containers with systemd-nspawn in their own network namespaces.

pub mod pct;
pub mod runtime;

pub mod access_log;
pub mod auth;
pub mod faults;
pub mod fsutil;
pub mod model;
pub mod tasks;
pub mod tls;

pub use access_log::{read_access_log, AccessEntry, Verdict};
