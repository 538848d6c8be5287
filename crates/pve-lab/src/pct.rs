//! The `pct` command of a Proxmox host, for lab containers: exec, push, pull, status, enter.
//! It finds the lab's runtime settings in `STATE/runtime.json` (written by `network_up`) and
//! answers like the real pct: exit codes pass through, errors read as PVE's do.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::runtime::Runtime;

/// Exit code of a failed pct call (PVE's CLI dies with 255).
const FAIL: i32 = 255;

#[derive(Debug, Parser)]
#[command(
    name = "pct",
    about = "Tool to manage Linux Containers (LXC) on Proxmox VE (pve-lab stand-in)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Launch a command inside the specified container.
    Exec {
        vmid: u32,
        /// Keep the current environment (1, the default) or start from a clean one (0).
        #[arg(long = "keep-env", action = clap::ArgAction::Set, value_parser = parse_bool)]
        keep_env: Option<bool>,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "extra-args"
        )]
        cmd: Vec<OsString>,
    },
    /// Copy a local file to the container.
    Push {
        vmid: u32,
        file: PathBuf,
        destination: String,
        /// File permissions to use (octal by default, prefix with '0x' for hexadecimal).
        #[arg(long, value_parser = parse_perms)]
        perms: Option<u32>,
        /// Owner user name or id.
        #[arg(long)]
        user: Option<String>,
        /// Owner group name or id.
        #[arg(long)]
        group: Option<String>,
    },
    /// Copy a file from the container to the local system.
    Pull {
        vmid: u32,
        path: String,
        destination: PathBuf,
        #[arg(long, value_parser = parse_perms)]
        perms: Option<u32>,
        /// Owner user name or id (on the host).
        #[arg(long)]
        user: Option<String>,
        /// Owner group name or id (on the host).
        #[arg(long)]
        group: Option<String>,
    },
    /// Show CT status.
    Status {
        vmid: u32,
        #[arg(long, action = clap::ArgAction::Set, value_parser = parse_bool)]
        verbose: Option<bool>,
    },
    /// Launch a shell for the specified container.
    Enter { vmid: u32 },
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Ok(true),
        "0" | "off" | "no" | "false" => Ok(false),
        _ => Err(format!("type check ('boolean') failed - got '{s}'")),
    }
}

fn parse_perms(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => u32::from_str_radix(s, 8),
    };
    match parsed {
        Ok(v) if v <= 0o7777 => Ok(v),
        _ => Err(format!(
            "invalid permissions '{s}': give octal such as 0640, or hex with a 0x prefix"
        )),
    }
}

/// Runs `pct ARGS...` (ARGS without the program name) against the lab in `state_dir`;
/// returns the process exit code.
pub fn main(state_dir: &Path, args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once(OsString::from("pct")).chain(args)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { FAIL } else { 0 };
        }
    };
    if let Cmd::Exec {
        keep_env: Some(_), ..
    } = &cli.cmd
    {
        if !keep_env_known(state_dir) {
            // What pve-container before 5.0.9 answers (its CLI's option parsing).
            eprintln!("Unknown option: keep-env\n400 unable to parse option\npct exec <vmid> [<extra-args>] [OPTIONS]");
            return FAIL;
        }
    }
    let rt = match Runtime::from_state_dir(state_dir) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e:#}");
            return FAIL;
        }
    };
    match run(&rt, cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            FAIL
        }
    }
}

/// `pct exec --keep-env` exists from pve-container 5.0.9 on (the lab's `--pve 8.0` has 5.0.8).
fn keep_env_known(state_dir: &Path) -> bool {
    let Some(info) = crate::client::read_daemon_info(state_dir) else {
        return true;
    };
    let v: Vec<u32> = info
        .pve_container
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    info.pve_container.is_empty() || v >= vec![5, 0, 9]
}

fn config_missing(rt: &Runtime, vmid: u32) -> anyhow::Error {
    let node = rt.node_name();
    anyhow::anyhow!("Configuration file 'nodes/{node}/lxc/{vmid}.conf' does not exist")
}

/// PVE's checks before touching a container: it must exist, and be running.
fn check_running(rt: &Runtime, vmid: u32) -> anyhow::Result<()> {
    if !rt.exists(vmid) {
        return Err(config_missing(rt, vmid));
    }
    if !rt.status(vmid)?.running {
        anyhow::bail!("CT {vmid} not running");
    }
    Ok(())
}

fn run(rt: &Runtime, cmd: Cmd) -> anyhow::Result<i32> {
    match cmd {
        Cmd::Exec {
            vmid,
            keep_env,
            cmd,
        } => {
            check_running(rt, vmid)?;
            let argv: Vec<String> = cmd
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            // Before 5.0.9 pct always kept the environment; after, 1 is the default.
            let env: Vec<(String, String)> = if keep_env.unwrap_or(true) {
                std::env::vars_os()
                    .map(|(k, v)| {
                        (
                            k.to_string_lossy().into_owned(),
                            v.to_string_lossy().into_owned(),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let status = rt.exec(vmid, &argv, &env)?;
            Ok(exit_code(status))
        }
        Cmd::Push {
            vmid,
            file,
            destination,
            perms,
            user,
            group,
        } => {
            check_running(rt, vmid)?;
            // Real pct does the copy in a worker (`fork_worker`, run in the foreground on the
            // CLI): the worker's error is printed, yet pct exits 0.
            if let Err(e) = rt.push(
                vmid,
                &file,
                &destination,
                perms,
                user.as_deref(),
                group.as_deref(),
            ) {
                eprintln!("{e:#}");
            }
            Ok(0)
        }
        Cmd::Pull {
            vmid,
            path,
            destination,
            perms,
            user,
            group,
        } => {
            check_running(rt, vmid)?;
            rt.pull(vmid, &path, &destination, perms)?;
            if user.is_some() || group.is_some() {
                let target = if destination.is_dir() {
                    destination.join(Path::new(&path).file_name().unwrap_or_default())
                } else {
                    destination
                };
                let owner = format!("{}:{}", user.unwrap_or_default(), group.unwrap_or_default());
                let out = std::process::Command::new("chown")
                    .arg(&owner)
                    .arg(&target)
                    .output()
                    .map_err(|e| anyhow::anyhow!("could not run chown: {e}"))?;
                if !out.status.success() {
                    anyhow::bail!(
                        "chown {owner} {}: {}",
                        target.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            Ok(0)
        }
        Cmd::Status { vmid, verbose: _ } => {
            if !rt.exists(vmid) {
                return Err(config_missing(rt, vmid));
            }
            let st = rt.status(vmid)?;
            println!("status: {}", if st.running { "running" } else { "stopped" });
            Ok(0)
        }
        Cmd::Enter { vmid } => {
            check_running(rt, vmid)?;
            let shell = "if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi";
            let mut env = Vec::new();
            if let Ok(term) = std::env::var("TERM") {
                env.push(("TERM".to_string(), term));
            }
            let status = rt.exec(vmid, &["/bin/sh".into(), "-c".into(), shell.into()], &env)?;
            Ok(exit_code(status))
        }
    }
}

/// A command killed by a signal exits 128+signal, as a shell reports it.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(FAIL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_parse_like_pct() {
        assert_eq!(parse_perms("0640"), Ok(0o640));
        assert_eq!(parse_perms("755"), Ok(0o755));
        assert_eq!(parse_perms("0x1ed"), Ok(0o755));
        let e = parse_perms("999").unwrap_err();
        assert!(e.contains("'999'") && e.contains("octal"), "{e}");
    }

    #[test]
    fn exec_takes_command_after_double_dash() {
        let cli = Cli::try_parse_from(["pct", "exec", "100", "--keep-env", "0", "--", "ls", "-la"])
            .unwrap();
        match cli.cmd {
            Cmd::Exec {
                vmid,
                keep_env,
                cmd,
            } => {
                assert_eq!(vmid, 100);
                assert_eq!(keep_env, Some(false));
                assert_eq!(cmd, vec![OsString::from("ls"), OsString::from("-la")]);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn missing_runtime_config_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let code = main(dir.path(), vec!["status".into(), "100".into()]);
        assert_eq!(code, FAIL);
        let e = Runtime::from_state_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("runtime.json") && e.contains("help:"), "{e}");
    }
}
