//! One mutating operation per instance at a time. Two locks, taken in this order:
//! - on the host, an fs2 (flock) lock on `STATE/locks/NAME.lock`: exclusive among processes on
//!   this host, and released by the kernel when its holder dies, so a crashed run never blocks;
//! - in the container, `/etc/launch/lock`: tells a second host (another cluster node, a GitOps
//!   runner) that an operation is running. A container lock left by a dead process of this host
//!   (our host lock was free) is stale and taken over, with a warning.
//!
//! Both hold who has them (pid, host, operation, since), which is what a second operation that
//! has to give up (exit 3) prints.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ct::CtAccess;
use crate::engine::render::timestamp;
use crate::error::LaunchError;
use crate::fsutil::{self, LockGuard};

/// Launch's state on the host: locks, operation journals, backups (`LAUNCH_STATE_DIR`
/// overrides; the default is `/var/lib/launch`).
pub fn state_dir() -> PathBuf {
    std::env::var_os("LAUNCH_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/launch"))
}

/// Where the container keeps its copy of the lock.
pub const CT_LOCK: &str = "/etc/launch/lock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub operation: String,
    pub since: String,
}

impl Holder {
    pub fn me(operation: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_string(),
            since: timestamp(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "`{}` (pid {} on {}, since {})",
            self.operation, self.pid, self.host, self.since
        )
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Held for the whole operation; both locks go when it is dropped.
pub struct InstanceLock {
    _host: LockGuard,
    ct: Option<(Box<dyn CtAccess>, u32)>,
    /// A lock left by a dead process that was taken over (for the operation to report, and to
    /// know that an unfinished operation may need finishing).
    pub took_over: Option<Holder>,
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        if let Some((ct, vmid)) = &self.ct {
            let _ = ct.exec(*vmid, &["rm", "-f", CT_LOCK]);
        }
    }
}

fn locked_error(name: &str, holder: &str) -> LaunchError {
    LaunchError::Locked(format!(
        "instance `{name}` is busy: {holder} holds its lock\n  help: wait for it to finish, or pass --wait SECS to wait for it"
    ))
}

/// Takes the host lock of `name`, waiting up to `wait`; exit 3 (Locked) names the holder.
pub fn lock_host(name: &str, operation: &str, wait: Duration) -> Result<LockGuard, LaunchError> {
    let path = state_dir().join("locks").join(format!("{name}.lock"));
    let me = serde_json::to_string(&Holder::me(operation)).unwrap_or_default();
    match fsutil::lock_with_timeout(&path, wait, &me)? {
        Ok(g) => Ok(g),
        Err(text) => {
            let holder = serde_json::from_str::<Holder>(&text)
                .map(|h| h.describe())
                .unwrap_or_else(|_| format!("another launch-tui ({})", text.trim()));
            Err(locked_error(name, &holder))
        }
    }
}

/// Takes both locks of an instance for `operation`.
pub fn lock_instance(
    name: &str,
    operation: &str,
    wait: Duration,
    ct: Box<dyn CtAccess>,
    vmid: u32,
) -> Result<InstanceLock, LaunchError> {
    let deadline = Instant::now() + wait;
    let host = lock_host(name, operation, wait)?;
    let me = Holder::me(operation);
    let mut took_over = None;
    loop {
        let out = ct
            .exec(vmid, &["cat", CT_LOCK])
            .map_err(LaunchError::Failed)?;
        if !out.ok() || out.stdout.trim().is_empty() {
            break;
        }
        match serde_json::from_str::<Holder>(out.stdout.trim()) {
            // Our host lock was free, so a holder on this host is gone.
            Ok(h) if h.host == me.host => {
                took_over = Some(h);
                break;
            }
            Ok(h) if Instant::now() < deadline => {
                let _ = h;
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(h) => return Err(locked_error(name, &h.describe())),
            // Unreadable: written by something else, or cut off by a crash; ours to replace.
            Err(_) => break,
        }
    }
    let text = serde_json::to_string(&me).unwrap_or_default();
    ct.exec(vmid, &["mkdir", "-p", "/etc/launch"])
        .map_err(LaunchError::Failed)?;
    ct.write(vmid, CT_LOCK, text.as_bytes(), 0o600, None)
        .map_err(LaunchError::Failed)?;
    Ok(InstanceLock {
        _host: host,
        ct: Some((ct, vmid)),
        took_over,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_host_lock_names_the_holder_and_exits_3() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("LAUNCH_STATE_DIR", dir.path());
        let first = lock_host("demo", "update", Duration::ZERO).unwrap();
        let err = lock_host("demo", "backup", Duration::from_millis(150)).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Locked);
        assert!(text.contains("`update`"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("--wait"), "{text}");
        drop(first);
        lock_host("demo", "backup", Duration::ZERO).unwrap();
    }
}
