//! Launch: installs and manages self-hosted apps in unprivileged Debian LXCs on Proxmox VE.

pub mod pve;

pub fn run() -> i32 {
    0
}
