//! The `pct` command of a Proxmox host, for lab containers.
