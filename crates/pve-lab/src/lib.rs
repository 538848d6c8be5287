//! pve-lab: a local Proxmox VE stand-in. The API server answers as a PVE node would and
//! validates every request against the official schema; the runtime boots real Debian
//! containers with systemd-nspawn in their own network namespaces.

pub mod pct;
pub mod runtime;
