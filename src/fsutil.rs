//! State files on the host: written atomically with their mode set at creation (temp file,
//! fsync, rename, fsync the directory), and exclusive operation locks with a timeout.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fs2::FileExt;

/// Replaces `path` with `data` so that a reader sees either the old or the new content, never
/// a mix, and a crash leaves no partial file. The file is created with `mode` (e.g. 0o600), so
/// a secret is never readable by others, not even for an instant.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(data)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} into place", path.display()))?;
        // The rename is durable only once the directory entry is on disk.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive lock held for as long as the value lives (released on drop, and by the kernel
/// if the process dies, so a dead holder never blocks anyone).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// Takes the lock at `path`, waiting up to `wait`. On timeout returns `Ok(Err(holder))` with
/// what the current holder wrote into the lock file (pid, host, operation, since when).
pub fn lock_with_timeout(
    path: &Path,
    wait: Duration,
    holder_info: &str,
) -> Result<std::result::Result<LockGuard, String>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock_exclusive() {
            Ok(()) => {
                file.set_len(0)?;
                (&file).write_all(holder_info.as_bytes())?;
                return Ok(Ok(LockGuard {
                    file,
                    path: path.to_path_buf(),
                }));
            }
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(_) => {
                let holder = fs::read_to_string(path).unwrap_or_default();
                return Ok(Err(holder.trim().to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.yaml");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn second_lock_times_out_naming_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("op.lock");
        let first = lock_with_timeout(&p, Duration::ZERO, "pid 1 install")
            .unwrap()
            .unwrap();
        let second = lock_with_timeout(&p, Duration::from_millis(200), "pid 2 update").unwrap();
        assert_eq!(second.unwrap_err(), "pid 1 install");
        drop(first);
        assert!(lock_with_timeout(&p, Duration::ZERO, "pid 2 update")
            .unwrap()
            .is_ok());
    }
}
