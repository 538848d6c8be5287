//! pve-lab: a local Proxmox VE stand-in. The API server answers as a PVE node would and
//! validates every request against the official schema; the runtime boots real Debian
//! containers with systemd-nspawn in their own network namespaces.

pub mod pct;
pub mod runtime;

pub mod access_log;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod faults;
pub mod fsutil;
pub mod hostinfo;
pub mod model;
pub mod pvesh;
pub mod tasks;
pub mod tls;

pub use access_log::{read_access_log, AccessEntry, Verdict};
