//! A small typed Proxmox VE client: HTTPS API or local pvesh, behind one transport trait.
