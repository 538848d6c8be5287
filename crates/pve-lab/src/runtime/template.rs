//! OS templates, as `pveam` would download them: built here once per machine with debootstrap
//! and cached as a tar.zst under `cache_dir/template/cache/`, behind a lock so concurrent
//! callers (tests, labs) build it once.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::cmd::{self, tool};
use super::{Runtime, RuntimeError, Template};

const MIRROR: &str = "http://deb.debian.org/debian";
const INCLUDE: &str =
    "systemd,systemd-sysv,dbus,iproute2,ca-certificates,curl,procps,iputils-ping,less,gnupg";
/// Bounds a stuck download; a normal build takes about a minute here.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Written next to a template when this machine built it, so later runs can report how long
/// the first build took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateBuildInfo {
    pub build_secs: f64,
    pub size_bytes: u64,
    pub suite: String,
}

impl Runtime {
    pub(crate) fn template_ensure(
        &self,
        t: &Template,
        log: &mut dyn FnMut(&str),
    ) -> Result<PathBuf> {
        let dest = self.template_path(t);
        if dest.is_file() {
            return Ok(dest);
        }
        let dir = self.template_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        log(&format!(
            "template {} not cached; taking the build lock",
            t.name
        ));
        let _lock = cmd::FileLock::acquire(
            &dir.join(format!(".{}.lock", t.name)),
            BUILD_TIMEOUT,
            &format!("the build of template {}", t.name),
        )?;
        if dest.is_file() {
            log("another process built it meanwhile");
            return Ok(dest);
        }
        for tool_name in ["debootstrap", "tar", "zstd"] {
            if cmd::find_tool(tool_name).is_none() {
                return Err(RuntimeError::ToolMissing {
                    tool: tool_name,
                    package: cmd::package_of(tool_name),
                }
                .into());
            }
        }
        remove_stale_builds(&dir, t.name)?;
        let work = dir.join(format!(".build-{}-{}", t.name, std::process::id()));
        let rootfs = work.join("rootfs");
        std::fs::create_dir_all(&rootfs)
            .with_context(|| format!("creating {}", rootfs.display()))?;
        let started = Instant::now();
        let res = build(t, &work, &rootfs, &dest, log);
        let cleanup = remove_build_dir(&work);
        res?;
        cleanup?;
        let secs = started.elapsed().as_secs_f64();
        let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        let info = TemplateBuildInfo {
            build_secs: secs,
            size_bytes: size,
            suite: t.suite.to_string(),
        };
        cmd::write_atomic(
            &self.template_info_path(t),
            &serde_json::to_vec_pretty(&info).context("serializing template build info")?,
            0o644,
        )?;
        log(&format!(
            "template {} built in {secs:.0} s ({} MiB)",
            t.name,
            size / (1 << 20)
        ));
        Ok(dest)
    }

    fn template_info_path(&self, t: &Template) -> PathBuf {
        self.template_dir().join(format!(".{}.build.json", t.name))
    }

    /// How long this machine's build of the template took, if it was built here.
    pub fn template_build_info(&self, t: &Template) -> Option<TemplateBuildInfo> {
        let text = std::fs::read_to_string(self.template_info_path(t)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

fn build(
    t: &Template,
    work: &Path,
    rootfs: &Path,
    dest: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    log(&format!(
        "debootstrap {} (minbase + systemd) from {MIRROR}",
        t.suite
    ));
    let mut c = cmd::tool("sh");
    c.arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(cmd::find_tool("debootstrap").unwrap_or_else(|| "debootstrap".into()))
        .args([
            "--variant=minbase",
            &format!("--include={INCLUDE}"),
            t.suite,
        ])
        .arg(rootfs)
        .arg(MIRROR)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env("DEBIAN_FRONTEND", "noninteractive")
        // Its own process group, so the watchdog can stop debootstrap's children as well.
        .process_group(0);
    run_streaming(&mut c, BUILD_TIMEOUT, log).with_context(|| {
        let dlog = std::fs::read_to_string(rootfs.join("debootstrap/debootstrap.log")).unwrap_or_default();
        format!(
            "building template {} with debootstrap failed; debootstrap.log ends with:\n{}\nhelp: check that {MIRROR} is reachable, then retry",
            t.name,
            cmd::tail(&dlog, 15)
        )
    })?;
    customize(rootfs, t).with_context(|| format!("preparing the {} rootfs", t.suite))?;
    log("packing the rootfs as tar.zst");
    let partial = work.join(format!("{}.partial", t.name));
    cmd::run(
        tool("tar")
            .arg("--zstd")
            .arg("-cpf")
            .arg(&partial)
            .args([
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--acls",
                "-C",
            ])
            .arg(rootfs)
            .arg("."),
    )?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", partial.display()))?;
    std::fs::rename(&partial, dest)
        .with_context(|| format!("moving the template to {}", dest.display()))?;
    Ok(())
}

/// What makes the tree a good PVE-like template: no machine identity, no host resolver or
/// hostname baked in (set at each start), full apt sources, and no package lists (a real
/// template needs `apt-get update` first too).
fn customize(rootfs: &Path, t: &Template) -> Result<()> {
    let w = |rel: &str, text: &str| -> Result<()> {
        let p = rootfs.join(rel);
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
    };
    w("etc/machine-id", "")?;
    // dbus's postinst made its own id during debootstrap; systemd would copy it into
    // /etc/machine-id at first boot and every container would share it. Point it at the
    // per-container id instead, as Debian's cloud images do.
    let dbus_id = rootfs.join("var/lib/dbus/machine-id");
    let _ = std::fs::remove_file(&dbus_id);
    std::os::unix::fs::symlink("/etc/machine-id", &dbus_id)
        .with_context(|| format!("linking {} to /etc/machine-id", dbus_id.display()))?;
    w("etc/hostname", "localhost\n")?;
    w(
        "etc/hosts",
        "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
    )?;
    w("etc/resolv.conf", "")?;
    let s = t.suite;
    w(
        "etc/apt/sources.list",
        &format!(
            "deb {MIRROR} {s} main contrib\n\
             deb {MIRROR} {s}-updates main contrib\n\
             deb http://security.debian.org/debian-security {s}-security main contrib\n"
        ),
    )?;
    for dir in ["var/lib/apt/lists", "var/cache/apt/archives"] {
        let d = rootfs.join(dir);
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_file() && e.file_name() != "lock" {
                    std::fs::remove_file(&p)
                        .with_context(|| format!("removing {}", p.display()))?;
                }
            }
        }
    }
    for f in [
        "var/cache/apt/pkgcache.bin",
        "var/cache/apt/srcpkgcache.bin",
    ] {
        let _ = std::fs::remove_file(rootfs.join(f));
    }
    Ok(())
}

/// Runs a command whose stdout is piped, passing each line to `log`; kills its process
/// group if it runs past `timeout`.
fn run_streaming(
    c: &mut std::process::Command,
    timeout: Duration,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut child = c.spawn().map_err(|e| cmd::spawn_error(c, e))?;
    let pgid = child.id() as i32;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
            cmd::send_signal(-pgid, libc::SIGKILL);
            return true;
        }
        false
    });
    let mut last = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            log(&line);
            last.push(line);
            if last.len() > 30 {
                last.remove(0);
            }
        }
    }
    let status = child.wait().context("waiting for the build")?;
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    if timed_out {
        anyhow::bail!(
            "`{}` ran longer than {} s and was stopped",
            cmd::describe(c),
            timeout.as_secs()
        );
    }
    if !status.success() {
        return Err(RuntimeError::CommandFailed {
            command: cmd::describe(c),
            status: status.to_string(),
            stderr: last.join("\n"),
        }
        .into());
    }
    Ok(())
}

/// A build interrupted earlier may have left debootstrap's /proc and /sys mounts inside its
/// tree; unmount them before deleting, and never cross into another filesystem.
fn remove_stale_builds(dir: &Path, name: &str) -> Result<()> {
    let prefix = format!(".build-{name}-");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            remove_build_dir(&e.path())?;
        }
    }
    Ok(())
}

fn remove_build_dir(work: &Path) -> Result<()> {
    if !work.exists() {
        return Ok(());
    }
    let mut under: Vec<PathBuf> = cmd::mounts()
        .into_iter()
        .map(|(_, mp, _)| mp)
        .filter(|mp| mp.starts_with(work))
        .collect();
    under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for mp in under {
        cmd::umount(&mp)?;
    }
    cmd::run(tool("rm").args(["-rf", "--one-file-system"]).arg(work))?;
    Ok(())
}
