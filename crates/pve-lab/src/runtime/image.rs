//! Root filesystems as real ext4 images (the lab's "local-lvm"): create from a template or
//! backup archive, grow, snapshot (fsfreeze + sparse copy), roll back, back up as tar.zst,
//! and the disk-full fault.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::cmd::{self, tool};
use super::{Runtime, RuntimeError};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: u64 = 1 << 20;
/// The file `fill_disk` creates in the container's root; `clear_fill` removes it.
pub(crate) const FILL_FILE: &str = ".pve-lab-fill";

/// Thaws the filesystem when dropped, so an error (or panic) while frozen never leaves the
/// container's disk blocked.
struct Frozen<'a>(&'a Path);

impl<'a> Frozen<'a> {
    fn freeze(mp: &'a Path) -> Result<Frozen<'a>> {
        cmd::run(tool("fsfreeze").arg("-f").arg(mp))?;
        Ok(Frozen(mp))
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = cmd::run(tool("fsfreeze").arg("-u").arg(self.0));
    }
}

pub(crate) fn size_bytes(size_gib: f64) -> Result<u64, RuntimeError> {
    // PVE accepts fractional GiB; anything below 0.1 GiB cannot hold a Debian rootfs anyway.
    if !size_gib.is_finite() || !(0.1..=16384.0).contains(&size_gib) {
        return Err(RuntimeError::InvalidSize { value: size_gib });
    }
    let mib = (size_gib * GIB / MIB as f64).round() as u64;
    Ok(mib * MIB)
}

pub(crate) fn validate_snapshot_name(name: &str) -> Result<(), RuntimeError> {
    let b = name.as_bytes();
    let ok = (2..=40).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
    if ok && name != "current" {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSnapshotName {
            name: name.to_string(),
        })
    }
}

pub(crate) fn mount_loop(img: &Path, mp: &Path, read_only: bool) -> Result<()> {
    std::fs::create_dir_all(mp)
        .with_context(|| format!("creating mount point {}", mp.display()))?;
    let opts = if read_only { "loop,ro" } else { "loop" };
    cmd::run(tool("mount").args(["-o", opts]).arg(img).arg(mp))?;
    Ok(())
}

fn unmount_and_rmdir(mp: &Path) -> Result<()> {
    cmd::umount(mp)?;
    let _ = std::fs::remove_dir(mp);
    Ok(())
}

fn copy_sparse(src: &Path, dst: &Path) -> Result<()> {
    let _ = std::fs::remove_file(dst);
    cmd::run(tool("cp").arg("--sparse=always").arg(src).arg(dst))?;
    std::fs::File::open(dst)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", dst.display()))
}

impl Runtime {
    pub(crate) fn image_create(
        &self,
        vmid: u32,
        archive: &Path,
        size_gib: f64,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let bytes = size_bytes(size_gib)?;
        let _lock = self.lock_ct(vmid)?;
        let img = self.image_path(vmid);
        if img.exists() {
            return Err(RuntimeError::CtExists { vmid }.into());
        }
        if !archive.is_file() {
            return Err(RuntimeError::NoSuchTemplate {
                path: archive.to_path_buf(),
            }
            .into());
        }
        let dir = self.image_dir(vmid);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let partial = dir.join(format!(".vm-{vmid}-disk-0.raw.partial"));
        let mp = self.mnt_root().join(format!(".create-{vmid}"));
        let res = (|| -> Result<()> {
            log(&format!(
                "allocating {:.1} GiB ext4 image {}",
                bytes as f64 / GIB,
                img.display()
            ));
            let _ = std::fs::remove_file(&partial);
            let f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            f.set_len(bytes)
                .with_context(|| format!("sizing {} to {bytes} bytes", partial.display()))?;
            drop(f);
            cmd::run(
                tool("mkfs.ext4")
                    .args(["-q", "-F", "-L", "rootfs"])
                    .arg(&partial),
            )?;
            if cmd::is_mountpoint(&mp) {
                cmd::umount(&mp)?;
            }
            mount_loop(&partial, &mp, false)?;
            log(&format!("extracting {}", archive.display()));
            let unpacked = cmd::run(
                tool("tar")
                    .args(["-xpf"])
                    .arg(archive)
                    .args([
                        "--numeric-owner",
                        "--xattrs",
                        "--xattrs-include=*",
                        "--acls",
                        "-C",
                    ])
                    .arg(&mp),
            );
            let unmounted = unmount_and_rmdir(&mp);
            unpacked?;
            unmounted?;
            std::fs::rename(&partial, &img)
                .with_context(|| format!("renaming {} to {}", partial.display(), img.display()))?;
            Ok(())
        })();
        if res.is_err() {
            let _ = unmount_and_rmdir(&mp);
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_dir(&dir);
        }
        res
    }

    pub(crate) fn image_resize(&self, vmid: u32, size_gib: f64) -> Result<()> {
        let bytes = size_bytes(size_gib)?;
        let _lock = self.lock_ct(vmid)?;
        let img = self.existing_image(vmid)?;
        let current = std::fs::metadata(&img)
            .with_context(|| format!("reading {}", img.display()))?
            .len();
        if bytes < current {
            return Err(RuntimeError::ShrinkNotSupported {
                vmid,
                current_gib: current as f64 / GIB,
                requested_gib: size_gib,
            }
            .into());
        }
        if bytes == current {
            return Ok(());
        }
        let grow = |img: &Path| -> Result<()> {
            OpenOptions::new()
                .write(true)
                .open(img)
                .and_then(|f| f.set_len(bytes))
                .with_context(|| format!("growing {} to {bytes} bytes", img.display()))
        };
        match self.live_mountpoint(vmid) {
            Some(_) => {
                // Online: grow the file, let the loop device see it, then resize2fs the
                // mounted filesystem. ext4's online grow needs CAP_SYS_RESOURCE, which root
                // lacks on some sandboxed hosts (this build machine): there the filesystem
                // grows at the next start instead, as the image already has its new size.
                grow(&img)?;
                std::fs::write(self.grow_marker(vmid), b"")
                    .with_context(|| format!("marking CT {vmid}'s filesystem for growing"))?;
                let dev = loop_device_of(&img)?;
                cmd::run(tool("losetup").arg("-c").arg(&dev))?;
                let mut c = tool("resize2fs");
                c.arg(&dev);
                let out = cmd::output(&mut c)?;
                if out.status.success() {
                    let _ = std::fs::remove_file(self.grow_marker(vmid));
                } else if !String::from_utf8_lossy(&out.stderr).contains("Permission denied") {
                    return Err(cmd::failed(&c, &out).into());
                }
            }
            None => {
                grow(&img)?;
                grow_fs_offline(&img)?;
            }
        }
        Ok(())
    }

    fn grow_marker(&self, vmid: u32) -> PathBuf {
        self.image_dir(vmid).join(".fs-grow-pending")
    }

    /// Before mounting at start: finish a grow that could not happen online.
    pub(crate) fn apply_pending_grow(&self, vmid: u32) -> Result<()> {
        let marker = self.grow_marker(vmid);
        if marker.exists() {
            grow_fs_offline(&self.image_path(vmid))?;
            std::fs::remove_file(&marker)
                .with_context(|| format!("removing {}", marker.display()))?;
        }
        Ok(())
    }

    /// Whether the filesystem still waits for a grow that needs a restart (see `resize`).
    pub fn fs_grow_pending(&self, vmid: u32) -> bool {
        self.grow_marker(vmid).exists()
    }

    /// A point-in-time copy of the image: with the container running, its filesystem is
    /// frozen for the duration of a sparse copy (about a second for a few hundred MB).
    fn consistent_copy(&self, vmid: u32, img: &Path, dst: &Path) -> Result<()> {
        match self.live_mountpoint(vmid) {
            Some(mp) => {
                let frozen = Frozen::freeze(&mp)?;
                let res = copy_sparse(img, dst);
                drop(frozen);
                res
            }
            None => copy_sparse(img, dst),
        }
    }

    pub(crate) fn image_snapshot(&self, vmid: u32, name: &str) -> Result<()> {
        validate_snapshot_name(name)?;
        let _lock = self.lock_ct(vmid)?;
        let img = self.existing_image(vmid)?;
        let snap = self.snapshot_path(vmid, name);
        if snap.exists() {
            return Err(RuntimeError::SnapshotExists {
                vmid,
                name: name.to_string(),
            }
            .into());
        }
        let partial = snap.with_extension("raw.partial");
        let res = self.consistent_copy(vmid, &img, &partial).and_then(|()| {
            std::fs::rename(&partial, &snap)
                .with_context(|| format!("renaming {} to {}", partial.display(), snap.display()))
        });
        if res.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        res
    }

    pub(crate) fn image_rollback(&self, vmid: u32, name: &str) -> Result<()> {
        validate_snapshot_name(name)?;
        let _lock = self.lock_ct(vmid)?;
        let img = self.existing_image(vmid)?;
        if self.live_run_state(vmid).is_some() {
            return Err(RuntimeError::Running {
                vmid,
                action: "roll back",
            }
            .into());
        }
        self.reap(vmid)?;
        let snap = self.existing_snapshot(vmid, name)?;
        let partial = img.with_extension("raw.partial");
        let res = copy_sparse(&snap, &partial).and_then(|()| {
            std::fs::rename(&partial, &img).with_context(|| format!("replacing {}", img.display()))
        });
        if res.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        res
    }

    pub(crate) fn image_delete_snapshot(&self, vmid: u32, name: &str) -> Result<()> {
        validate_snapshot_name(name)?;
        let _lock = self.lock_ct(vmid)?;
        self.existing_image(vmid)?;
        let snap = self.existing_snapshot(vmid, name)?;
        std::fs::remove_file(&snap).with_context(|| format!("removing {}", snap.display()))
    }

    /// Snapshot names of a container, sorted.
    pub fn snapshots(&self, vmid: u32) -> Vec<String> {
        let pre = format!("snap_vm-{vmid}-disk-0_");
        let mut v: Vec<String> = std::fs::read_dir(self.image_dir(vmid))
            .map(|rd| {
                rd.filter_map(|e| {
                    let n = e.ok()?.file_name().into_string().ok()?;
                    Some(n.strip_prefix(&pre)?.strip_suffix(".raw")?.to_string())
                })
                .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn existing_snapshot(&self, vmid: u32, name: &str) -> Result<PathBuf, RuntimeError> {
        let snap = self.snapshot_path(vmid, name);
        if snap.is_file() {
            Ok(snap)
        } else {
            Err(RuntimeError::NoSuchSnapshot {
                vmid,
                name: name.to_string(),
            })
        }
    }

    pub(crate) fn image_vzdump(
        &self,
        vmid: u32,
        out: &Path,
        pct_conf: Option<&str>,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let _lock = self.lock_ct(vmid)?;
        let img = self.existing_image(vmid)?;
        let work = self.mnt_root().join(format!(".dump-{vmid}"));
        let copy = self.image_dir(vmid).join(".vzdump-copy.raw");
        let mp = work.join("root");
        let extra = work.join("extra");
        let partial = {
            let mut s = out.as_os_str().to_owned();
            s.push(".partial");
            PathBuf::from(s)
        };
        let res = (|| -> Result<()> {
            let source = if self.live_mountpoint(vmid).is_some() {
                log("running: freezing the filesystem for a consistent copy (snapshot mode)");
                self.consistent_copy(vmid, &img, &copy)?;
                copy.clone()
            } else {
                img.clone()
            };
            if cmd::is_mountpoint(&mp) {
                cmd::umount(&mp)?;
            }
            // The copy of a live filesystem may need its journal replayed, so it is mounted
            // read-write; the image of a stopped container is left untouched (read-only).
            mount_loop(&source, &mp, source == img)?;
            let mut tar = tool("tar");
            tar.arg("--zstd")
                .arg("-cpf")
                .arg(&partial)
                .args([
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "--acls",
                    "--one-file-system",
                    "--sparse",
                    "--exclude=./lost+found",
                    // What PVE's vzdump leaves out of every container backup.
                    "--exclude=./tmp/?*",
                    "--exclude=./var/tmp/?*",
                    "--exclude=./var/run/?*.pid",
                    &format!("--exclude=./{FILL_FILE}"),
                    "-C",
                ])
                .arg(&mp)
                .arg(".");
            if let Some(conf) = pct_conf {
                let conf_path = extra.join("etc/vzdump/pct.conf");
                std::fs::create_dir_all(extra.join("etc/vzdump"))
                    .context("creating the vzdump config dir")?;
                std::fs::write(&conf_path, conf)
                    .with_context(|| format!("writing {}", conf_path.display()))?;
                tar.arg("-C").arg(&extra).arg("./etc/vzdump/pct.conf");
            }
            log(&format!("creating archive {}", out.display()));
            cmd::run(&mut tar)?;
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", partial.display()))?;
            std::fs::rename(&partial, out)
                .with_context(|| format!("moving the archive to {}", out.display()))?;
            Ok(())
        })();
        let cleanup = unmount_and_rmdir(&mp);
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_dir_all(&extra);
        let _ = std::fs::remove_dir(&work);
        if res.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        res.and(cleanup)
    }

    /// Runs `f` on the container's root filesystem: the live mount if it is running,
    /// otherwise a temporary mount.
    fn with_rootfs<T>(&self, vmid: u32, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        if let Some(mp) = self.live_mountpoint(vmid) {
            return f(&mp);
        }
        self.reap(vmid)?;
        let img = self.existing_image(vmid)?;
        let mp = self.mnt_root().join(format!(".fault-{vmid}"));
        if cmd::is_mountpoint(&mp) {
            cmd::umount(&mp)?;
        }
        mount_loop(&img, &mp, false)?;
        let res = f(&mp);
        let cleanup = unmount_and_rmdir(&mp);
        res.and_then(|v| cleanup.map(|()| v))
    }

    pub(crate) fn image_fill(&self, vmid: u32) -> Result<()> {
        let _lock = self.lock_ct(vmid)?;
        self.existing_image(vmid)?;
        self.with_rootfs(vmid, |root| fill_fs(&root.join(FILL_FILE)))
    }

    pub(crate) fn image_clear_fill(&self, vmid: u32) -> Result<()> {
        let _lock = self.lock_ct(vmid)?;
        self.existing_image(vmid)?;
        self.with_rootfs(vmid, |root| {
            let p = root.join(FILL_FILE);
            match std::fs::remove_file(&p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
            }
        })
    }
}

/// Allocates every free block (including root's reserve) to one file with fallocate, so
/// `df` inside shows 100% without writing gigabytes of zeros. Chunks halve on ENOSPC
/// because metadata for the extents takes a few blocks of its own.
fn fill_fs(path: &Path) -> Result<()> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let mut offset = f.metadata().map(|m| m.len()).unwrap_or(0);
    let free = |f: &std::fs::File| -> u64 {
        // SAFETY: statvfs is a plain out-parameter struct; zeroed is a valid initial value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open for the duration of the call and st is a valid pointer.
        if unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) } == 0 {
            st.f_bfree as u64 * st.f_frsize as u64
        } else {
            0
        }
    };
    let mut chunk = free(&f);
    for _ in 0..128 {
        if chunk < 4096 {
            break;
        }
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe {
            libc::fallocate(
                f.as_raw_fd(),
                0,
                offset as libc::off_t,
                chunk as libc::off_t,
            )
        };
        if rc == 0 {
            offset += chunk;
            chunk = chunk.min(free(&f));
        } else {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ENOSPC) {
                return Err(err).with_context(|| format!("fallocate on {}", path.display()));
            }
            chunk /= 2;
        }
    }
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

/// e2fsck then resize2fs on an unmounted image (resize2fs insists on a fresh check).
fn grow_fs_offline(img: &Path) -> Result<()> {
    let mut fsck = tool("e2fsck");
    fsck.args(["-f", "-p"]).arg(img);
    let out = cmd::output(&mut fsck)?;
    // 0: clean, 1: errors fixed; anything else needs a human.
    if !matches!(out.status.code(), Some(0) | Some(1)) {
        return Err(cmd::failed(&fsck, &out).into());
    }
    cmd::run(tool("resize2fs").arg(img))?;
    Ok(())
}

/// The loop device backing an image, from `losetup -j`.
fn loop_device_of(img: &Path) -> Result<String> {
    let out = cmd::run(tool("losetup").arg("-j").arg(img))?;
    let text = cmd::stdout_str(&out);
    text.lines()
        .next()
        .and_then(|l| l.split(':').next())
        .map(str::to_string)
        .filter(|d| d.starts_with("/dev/loop"))
        .with_context(|| {
            format!(
                "no loop device backs {} (losetup -j printed {text:?})",
                img.display()
            )
        })
}
