//! The `pct` command of a Proxmox host, for lab containers: exec, push, pull, status, enter.
//! It finds the lab's runtime settings in `STATE/runtime.json` (written by `network_up`).

use std::ffi::OsString;
use std::path::Path;

/// Runs `pct ARGS...` against the lab in `state_dir`; returns the process exit code.
pub fn main(_state_dir: &Path, _args: Vec<OsString>) -> i32 {
    eprintln!("pct: not implemented yet");
    255
}
