//! Running commands and placing files inside a container. Proxmox VE has no API for this
//! (notes §6), so on the node it is `pct exec` / `pct push`, as every LXC tool does; the lab's
//! `pct` behaves the same. Steps use the trait, so tests can swap the implementation.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// The last lines of output, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let all = format!("{}{}", self.stdout, self.stderr);
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

pub trait CtAccess: Send + Sync {
    /// Runs `argv` in the container with a clean environment, capturing its output.
    fn exec(&self, vmid: u32, argv: &[&str]) -> Result<ExecOutput>;
    /// Places `content` at `dst` in the container with this mode and owner.
    fn write(
        &self,
        vmid: u32,
        dst: &str,
        content: &[u8],
        mode: u32,
        owner: Option<&str>,
    ) -> Result<()>;
    /// Copies a host file into the container.
    fn push(&self, vmid: u32, src: &Path, dst: &str, mode: u32, owner: Option<&str>) -> Result<()>;
    /// Starts `argv` in the container with its stdout (and, with `stdin`, its stdin) as pipes,
    /// so large data streams through with flat memory (backups, restores).
    fn spawn(&self, vmid: u32, argv: &[&str], stdin: bool) -> Result<Streaming> {
        let _ = (vmid, argv, stdin);
        bail!("streaming commands into a container is not supported here")
    }
}

/// A command running in a container whose output (or input) is a pipe. Its stderr is
/// collected on a thread, so a chatty command never blocks on a full pipe.
pub struct Streaming {
    child: std::process::Child,
    stderr: Option<std::thread::JoinHandle<String>>,
    what: String,
}

impl Streaming {
    pub fn new(mut child: std::process::Child, what: String) -> Streaming {
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = std::io::Read::read_to_string(&mut e, &mut s);
                s
            })
        });
        Streaming {
            child,
            stderr,
            what,
        }
    }

    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits for the command; fails with its exit code and the last lines of its stderr.
    pub fn finish(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        drop(self.child.stdout.take());
        let status = self.child.wait()?;
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if !status.success() {
            let lines: Vec<&str> = err.lines().collect();
            bail!(
                "`{}` failed (exit {}):\n{}",
                self.what,
                status.code().unwrap_or(-1),
                lines[lines.len().saturating_sub(12)..].join("\n")
            );
        }
        Ok(())
    }

    /// Stops the command (after a failure on our side).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `argv` and fails with its last output lines when it exits non-zero.
pub fn run(ct: &dyn CtAccess, vmid: u32, argv: &[&str]) -> Result<ExecOutput> {
    let out = ct.exec(vmid, argv)?;
    if !out.ok() {
        bail!(
            "`{}` failed in CT {vmid} (exit {}):\n{}",
            argv.join(" "),
            out.code,
            out.tail(12)
        );
    }
    Ok(out)
}

/// Runs a shell script in the container (`sh -c`), failing with its output on error.
pub fn sh(ct: &dyn CtAccess, vmid: u32, script: &str) -> Result<ExecOutput> {
    run(ct, vmid, &["/bin/sh", "-c", script])
}

/// `pct` on the Proxmox VE node (or the lab's stand-in on PATH).
pub struct Pct {
    program: PathBuf,
}

impl Pct {
    pub fn find() -> Result<Pct> {
        let program = std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("pct"))
                    .find(|p| p.is_file())
            })
            .context(
                "`pct` is not on PATH: installing needs to run on the Proxmox VE node (as root), \
                 because Proxmox VE's API cannot run commands inside a container",
            )?;
        Ok(Pct { program })
    }
}

impl CtAccess for Pct {
    fn exec(&self, vmid: u32, argv: &[&str]) -> Result<ExecOutput> {
        let out = Command::new(&self.program)
            .arg("exec")
            .arg(vmid.to_string())
            .arg("--keep-env")
            .arg("0")
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        Ok(ExecOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn write(
        &self,
        vmid: u32,
        dst: &str,
        content: &[u8],
        mode: u32,
        owner: Option<&str>,
    ) -> Result<()> {
        // The staging file is private (0600) and removed right after: it may hold secrets.
        let dir = tempfile::Builder::new().prefix("launch-push").tempdir()?;
        let tmp = dir.path().join("f");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        drop(f);
        self.push(vmid, &tmp, dst, mode, owner)
    }

    fn push(&self, vmid: u32, src: &Path, dst: &str, mode: u32, owner: Option<&str>) -> Result<()> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("push")
            .arg(vmid.to_string())
            .arg(src)
            .arg(dst)
            .arg("--perms")
            .arg(format!("{mode:o}"));
        if let Some(o) = owner {
            cmd.arg("--user").arg(o).arg("--group").arg(o);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        if !out.status.success() {
            bail!(
                "pct push to {dst} in CT {vmid} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn spawn(&self, vmid: u32, argv: &[&str], stdin: bool) -> Result<Streaming> {
        let child = Command::new(&self.program)
            .arg("exec")
            .arg(vmid.to_string())
            .arg("--keep-env")
            .arg("0")
            .arg("--")
            .args(argv)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        Ok(Streaming::new(
            child,
            format!("{} in CT {vmid}", argv.join(" ")),
        ))
    }
}
