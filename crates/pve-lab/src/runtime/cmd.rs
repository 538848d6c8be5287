//! Running host tools (ip, nft, mount, ...) with errors that name the command and show its
//! stderr, plus the small process and lock helpers the runtime shares.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fs2::FileExt;

use super::RuntimeError;

/// Directories searched for host tools: a test harness or API daemon may run with a PATH
/// that lacks the sbin directories where ip, nft and mkfs live.
const TOOL_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The Debian package that ships each host tool the runtime calls.
pub(crate) const TOOLS: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("systemd-nspawn", "systemd-container"),
    ("nft", "nftables"),
    ("dnsmasq", "dnsmasq-base"),
    ("ip", "iproute2"),
    ("mkfs.ext4", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("resize2fs", "e2fsprogs"),
    ("zstd", "zstd"),
    ("nsenter", "util-linux"),
    ("fsfreeze", "util-linux"),
    ("losetup", "util-linux"),
    ("setsid", "util-linux"),
    ("mount", "mount"),
    ("umount", "mount"),
    ("tar", "tar"),
    ("cp", "coreutils"),
    ("truncate", "coreutils"),
];

pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path_env = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_env)
        .chain(TOOL_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

pub(crate) fn package_of(tool: &str) -> &'static str {
    TOOLS
        .iter()
        .find(|(t, _)| *t == tool)
        .map(|(_, p)| *p)
        .unwrap_or("the package providing it")
}

/// A `Command` for a host tool, resolved to its absolute path when found.
pub(crate) fn tool(name: &str) -> Command {
    let mut c = Command::new(find_tool(name).unwrap_or_else(|| PathBuf::from(name)));
    c.stdin(Stdio::null());
    c
}

pub(crate) fn describe(cmd: &Command) -> String {
    let prog = Path::new(cmd.get_program())
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut s = prog;
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs the command to completion, capturing output; a non-zero exit is an error that
/// names the command line and carries its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let out = output(cmd)?;
    if !out.status.success() {
        return Err(failed(cmd, &out).into());
    }
    Ok(out)
}

/// Like `run` but a non-zero exit is returned, not an error (for probes).
pub(crate) fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output().map_err(|e| spawn_error(cmd, e).into())
}

pub(crate) fn spawn_error(cmd: &Command, e: std::io::Error) -> RuntimeError {
    let prog = Path::new(cmd.get_program())
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    RuntimeError::CommandMissing {
        package: package_of(&prog),
        command: describe(cmd),
        reason: e.to_string(),
    }
}

pub(crate) fn failed(cmd: &Command, out: &Output) -> RuntimeError {
    RuntimeError::CommandFailed {
        command: describe(cmd),
        status: out.status.to_string(),
        stderr: tail(&String::from_utf8_lossy(&out.stderr), 20),
    }
}

/// The last `n` lines of a text, trimmed, for error messages.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

pub(crate) fn stdout_str(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An exclusive advisory lock on a file, held until dropped. flock locks belong to the open
/// file description, so two threads of one process exclude each other as two processes do.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    pub(crate) fn acquire(path: &Path, timeout: Duration, what: &str) -> Result<FileLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating lock directory {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock_exclusive() {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::EWOULDBLOCK) =>
                {
                    if Instant::now() >= deadline {
                        return Err(RuntimeError::LockTimeout {
                            what: what.to_string(),
                            path: path.to_path_buf(),
                            waited_s: timeout.as_secs(),
                        }
                        .into());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e).with_context(|| format!("locking {}", path.display())),
            }
        }
    }
}

/// Writes a file atomically (temp name, fsync, rename) with its mode set at creation.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call, so two threads writing the same file never share a temp.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{seq}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Process identity as (pid, start time in clock ticks): a recorded pid is only "ours" while
/// the process with that pid still has the recorded start time (pids get reused).
pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?;
    if *state == "Z" || *state == "X" {
        return None;
    }
    fields.get(19)?.parse().ok()
}

pub(crate) fn proc_ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn all_pids() -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

pub(crate) fn proc_cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn send_signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) with a positive pid only signals that one process.
    pid > 0 && unsafe { libc::kill(pid, sig) } == 0
}

/// Mount points (decoded) currently listed in /proc/mounts.
pub(crate) fn mounts() -> Vec<(String, PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let src = it.next()?;
            let mp = it.next()?;
            let fstype = it.next()?;
            Some((
                unescape_mount(src),
                PathBuf::from(unescape_mount(mp)),
                fstype.to_string(),
            ))
        })
        .collect()
}

/// /proc/mounts escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let code = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok());
            if let Some(v) = code {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn is_mountpoint(path: &Path) -> bool {
    mounts().iter().any(|(_, mp, _)| mp == path)
}

/// Unmounts, retrying briefly while the mount is still busy (a container's processes take a
/// moment to release it after their namespace dies).
pub(crate) fn umount(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    // Bounded: a stacked mount takes one pass each, a busy one is retried until the deadline.
    for _ in 0..200 {
        if !is_mountpoint(path) {
            return Ok(());
        }
        let mut c = tool("umount");
        c.arg(path);
        let out = output(&mut c)?;
        if out.status.success() {
            continue;
        }
        if Instant::now() >= deadline {
            return Err(failed(&c, &out).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::bail!("{} is still mounted after 200 unmounts", path.display())
}
