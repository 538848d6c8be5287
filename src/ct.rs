//! Running commands and placing files inside a container. Proxmox VE has no API for this
//! (notes §6), so on the node it is `pct exec` / `pct push`, as every LXC tool does; the lab's
//! `pct` behaves the same. Steps use the trait, so tests can swap the implementation.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

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

/// Every command starts in the container under umask 022, whatever the umask of the shell
/// that ran launch-tui: `pct exec` (and the lab's) hands the caller's umask on, and under a
/// hardened 077 the releases npm, pip or `mkdir` placed were unreadable to the app's user.
/// The command's words stay arguments (`"$@"`), never shell text. Files that must be private
/// are written with an explicit mode ([`CtAccess::write`]) or under the script's own `umask 077`.
pub const UMASK_022: &[&str] = &["/bin/sh", "-c", "umask 022 && exec \"$@\"", "sh"];

/// `pct` on the Proxmox VE node (or the lab's stand-in on PATH).
pub struct Pct {
    program: PathBuf,
    /// Whether `pct exec` knows `--keep-env` (pve-container 5.0.9 and later): unknown until
    /// the first exec, which learns it from pct's refusal ([`KEEP_ENV_UNKNOWN`] ...).
    keep_env: AtomicU8,
}

const KEEP_ENV_UNKNOWN: u8 = 0;
const KEEP_ENV_YES: u8 = 1;
const KEEP_ENV_NO: u8 = 2;

/// Without `--keep-env 0` (older pct keeps the caller's environment), the command starts
/// from this clean one instead.
const CLEAN_ENV: &[&str] = &[
    "/usr/bin/env",
    "-i",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
];

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
        Ok(Pct::at(program))
    }

    pub fn at(program: PathBuf) -> Pct {
        Pct {
            program,
            keep_env: AtomicU8::new(KEEP_ENV_UNKNOWN),
        }
    }

    /// `pct exec VMID ... -- ARGV` with a clean environment, however this pct offers it.
    fn exec_command(&self, vmid: u32, argv: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.arg("exec").arg(vmid.to_string());
        if self.keep_env.load(Ordering::Relaxed) == KEEP_ENV_NO {
            c.arg("--").args(CLEAN_ENV);
        } else {
            c.args(["--keep-env", "0", "--"]);
        }
        c.args(UMASK_022).args(argv);
        c
    }

    /// Learns from pct's answer whether it knows `--keep-env`; true when it refused it, so the
    /// command must run again without.
    fn refused_keep_env(&self, out: &std::process::Output) -> bool {
        if self.keep_env.load(Ordering::Relaxed) != KEEP_ENV_UNKNOWN {
            return false;
        }
        let refused = out.status.code() == Some(255)
            && String::from_utf8_lossy(&out.stderr).contains("Unknown option: keep-env");
        self.keep_env.store(
            if refused { KEEP_ENV_NO } else { KEEP_ENV_YES },
            Ordering::Relaxed,
        );
        refused
    }
}

impl CtAccess for Pct {
    fn exec(&self, vmid: u32, argv: &[&str]) -> Result<ExecOutput> {
        let run = || {
            self.exec_command(vmid, argv)
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("cannot run {}", self.program.display()))
        };
        let mut out = run()?;
        if self.refused_keep_env(&out) {
            out = run()?;
        }
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
        self.push_file(
            vmid,
            &tmp,
            dst,
            mode,
            owner,
            &hex::encode(Sha256::digest(content)),
        )
    }

    fn push(&self, vmid: u32, src: &Path, dst: &str, mode: u32, owner: Option<&str>) -> Result<()> {
        let mut hasher = Sha256::new();
        let mut f = std::fs::File::open(src)
            .with_context(|| format!("cannot read {} to push it", src.display()))?;
        std::io::copy(&mut f, &mut hasher)?;
        self.push_file(vmid, src, dst, mode, owner, &hex::encode(hasher.finalize()))
    }

    fn spawn(&self, vmid: u32, argv: &[&str], stdin: bool) -> Result<Streaming> {
        if self.keep_env.load(Ordering::Relaxed) == KEEP_ENV_UNKNOWN {
            // A stream cannot be replayed: learn pct's options with a harmless command first.
            self.exec(vmid, &["true"])?;
        }
        let child = self
            .exec_command(vmid, argv)
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

impl Pct {
    /// `pct push`, then a check that the file inside has the content's sha256.
    fn push_file(
        &self,
        vmid: u32,
        src: &Path,
        dst: &str,
        mode: u32,
        owner: Option<&str>,
        sha256: &str,
    ) -> Result<()> {
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
        let said = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("pct push to {dst} in CT {vmid} failed: {}", said.trim());
        }
        // pct copies in a worker whose failure it only prints, and it never checks the copy: it
        // exits 0 with a truncated file when the disk is full. So the result is checked inside.
        let sum = self.exec(vmid, &["sha256sum", "--", dst])?;
        let got = sum.stdout.split_whitespace().next().unwrap_or_default();
        if !sum.ok() || got != sha256 {
            let size = self
                .exec(vmid, &["stat", "-c", "%s", "--", dst])
                .map(|o| o.stdout.trim().to_string())
                .unwrap_or_default();
            // Say so plainly when the container's disk is what stopped the copy.
            let want = std::fs::metadata(src).map(|m| m.len()).unwrap_or(0);
            let dir = dst
                .rsplit_once('/')
                .map(|(d, _)| d)
                .filter(|d| !d.is_empty())
                .unwrap_or("/");
            let free_kib = self
                .exec(vmid, &["df", "-Pk", "--", dir])
                .ok()
                .and_then(|o| {
                    o.stdout
                        .lines()
                        .nth(1)
                        .and_then(|l| l.split_whitespace().nth(3))
                        .and_then(|v| v.parse::<u64>().ok())
                });
            let full = match free_kib {
                Some(kib) if kib * 1024 < want.max(1) + 64 * 1024 => {
                    format!(": the container's disk is full ({kib} KiB free in {dir})")
                }
                _ => String::new(),
            };
            bail!(
                "pct push to {dst} in CT {vmid} did not complete{full}: the file inside is {} bytes, sha256 {} instead of {sha256}{}\n  help: check the container's free space (`pct exec {vmid} -- df -h /`), free some or grow its disk, then retry",
                if size.is_empty() { "?" } else { &size },
                if got.is_empty() { "unreadable" } else { got },
                if said.trim().is_empty() { String::new() } else { format!(" (pct said: {})", said.trim()) }
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in `pct` whose push behaves as real pct's does on a full disk: it keeps the
    /// first bytes only, prints nothing and exits 0. Its exec runs the check on that copy.
    fn short_writing_pct(dir: &Path) -> Pct {
        let program = dir.join("pct");
        let copy = dir.join("inside");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\ncase \"$1\" in\npush) head -c 3 \"$3\" > '{c}'; exit 0;;\nexec) shift 9; case \"$1\" in sha256sum) sha256sum '{c}';; stat) stat -c %s '{c}';; esac;;\nesac\n",
                c = copy.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        Pct::at(program)
    }

    #[test]
    fn a_push_that_pct_left_short_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let pct = short_writing_pct(dir.path());
        let e = pct
            .write(101, "/etc/app.env", b"KEY=value\n", 0o600, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/app.env") && e.contains("3 bytes") && e.contains("help:"),
            "{e}"
        );
        let src = dir.path().join("src");
        std::fs::write(&src, b"abc").unwrap();
        pct.push(101, &src, "/etc/abc", 0o644, None)
            .expect("a complete copy passes");
    }
}

#[cfg(test)]
mod keep_env_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// pve-container before 5.0.9 refuses `--keep-env`; the command then runs again with the
    /// environment cleared by `env -i`, and later calls go that way at once.
    #[test]
    fn an_old_pct_without_keep_env_is_handled() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("pct");
        let calls = dir.path().join("calls");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{c}'\ncase \"$*\" in *keep-env*) printf 'Unknown option: keep-env\\n400 unable to parse option\\n' >&2; exit 255;; esac\nshift 3\n\"$@\"\n",
                c = calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pct = Pct::at(program);
        let out = pct.exec(101, &["sh", "-c", "echo ${HOME:-clean}"]).unwrap();
        assert_eq!((out.code, out.stdout.as_str()), (0, "clean\n"), "{out:?}");
        let out = pct.exec(101, &["echo", "again"]).unwrap();
        assert_eq!(out.stdout, "again\n");
        let calls = std::fs::read_to_string(&calls).unwrap();
        assert_eq!(calls.matches("keep-env").count(), 1, "{calls}");
        assert!(
            calls.contains("exec 101 -- /usr/bin/env -i PATH="),
            "{calls}"
        );
    }
}

#[cfg(test)]
mod umask_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in `pct` that hands the command a hardened umask (077), as real `pct exec` does
    /// when the admin's shell has one: what the command creates is still 0644/0755, and its
    /// words arrive as they were, never read as shell text.
    #[test]
    fn commands_run_under_umask_022_with_their_words_intact() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("pct");
        std::fs::write(
            &program,
            "#!/bin/sh\n[ \"$1\" = exec ] || exit 9\nshift 5\numask 077\n\"$@\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pct = Pct::at(program);
        let out = pct.exec(101, &["sh", "-c", "umask"]).unwrap();
        assert_eq!(out.stdout.trim(), "0022", "{out:?}");
        let made = dir.path().join("release");
        let made = made.to_str().unwrap();
        run(&pct, 101, &["mkdir", "-p", &format!("{made}/bin")]).unwrap();
        run(&pct, 101, &["touch", &format!("{made}/bin/app")]).unwrap();
        let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(made), 0o755);
        assert_eq!(mode(&format!("{made}/bin/app")), 0o644);
        let hostile = "$(touch pwned); `id` 'q' \"d\" ; a b";
        let out = pct.exec(101, &["printf", "%s|", hostile, ""]).unwrap();
        assert_eq!(out.stdout, format!("{hostile}||"), "{out:?}");
        assert!(!Path::new("pwned").exists());
    }
}
