//! Injected failures, armed through `/lab/fault/...` (or `pve-lab fault ...`): failing or
//! delaying tasks of a type, answering API requests with an error status (500, or 595/596 as
//! PVE's proxy does when a node is unreachable). Container-side faults (full disk, killed init)
//! go straight to the runtime and are not kept here.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The next `count` tasks of `task_type` fail at once with `exitstatus`.
    FailTask {
        task_type: String,
        count: u32,
        exitstatus: String,
    },
    /// Every task of `task_type` waits `ms` before it runs, until cleared.
    DelayTask { task_type: String, ms: u64 },
    /// The next `count` API requests under `path_prefix` (relative to /api2/json) get `status`.
    Http {
        status: u16,
        count: u32,
        path_prefix: Option<String>,
    },
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::FailTask {
                task_type,
                exitstatus,
                ..
            } => format!("fail-task {task_type}: {exitstatus}"),
            Fault::DelayTask { task_type, ms } => format!("delay-task {task_type} {ms}ms"),
            Fault::Http {
                status,
                path_prefix,
                ..
            } => format!(
                "http {status}{}",
                path_prefix
                    .as_deref()
                    .map(|p| format!(" under {p}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The reason phrase sent with an injected status, as AnyEvent::HTTP reports proxy failures.
pub fn http_fault_reason(status: u16) -> &'static str {
    match status {
        595 => "Connection refused",
        596 => "Connection timed out",
        599 => "Internal error (lab fault)",
        500 => "Internal Server Error (lab fault)",
        _ => "Lab fault",
    }
}

#[derive(Default)]
pub struct Faults {
    armed: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn arm(&self, fault: Fault) {
        self.lock().push(fault);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Consumes one armed HTTP fault matching `path`, returning its status.
    pub fn take_http(&self, path: &str) -> Option<u16> {
        let mut armed = self.lock();
        let idx = armed.iter().position(|f| match f {
            Fault::Http {
                count, path_prefix, ..
            } => *count > 0 && path_prefix.as_deref().is_none_or(|p| path.starts_with(p)),
            _ => false,
        })?;
        let mut status = 0;
        if let Fault::Http {
            status: s, count, ..
        } = &mut armed[idx]
        {
            *count -= 1;
            status = *s;
            if *count == 0 {
                armed.remove(idx);
            }
        }
        Some(status)
    }

    /// Consumes one armed task failure for `task_type`, returning its exit status.
    pub fn take_task_failure(&self, task_type: &str) -> Option<String> {
        let mut armed = self.lock();
        let idx = armed.iter().position(|f| {
            matches!(f, Fault::FailTask { task_type: t, count, .. } if t == task_type && *count > 0)
        })?;
        let mut text = String::new();
        if let Fault::FailTask {
            count, exitstatus, ..
        } = &mut armed[idx]
        {
            *count -= 1;
            text = exitstatus.clone();
            if *count == 0 {
                armed.remove(idx);
            }
        }
        Some(text)
    }

    pub fn task_delay(&self, task_type: &str) -> Option<Duration> {
        self.lock().iter().find_map(|f| match f {
            Fault::DelayTask { task_type: t, ms } if t == task_type => {
                Some(Duration::from_millis(*ms))
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_faults_count_down_and_match_prefix() {
        let f = Faults::default();
        f.arm(Fault::Http {
            status: 596,
            count: 2,
            path_prefix: Some("/nodes".into()),
        });
        assert_eq!(f.take_http("/version"), None);
        assert_eq!(f.take_http("/nodes/pve/status"), Some(596));
        assert_eq!(f.take_http("/nodes"), Some(596));
        assert_eq!(f.take_http("/nodes"), None);
        assert!(f.list().is_empty());
    }

    #[test]
    fn task_faults() {
        let f = Faults::default();
        f.arm(Fault::FailTask {
            task_type: "vzstart".into(),
            count: 1,
            exitstatus: "boom".into(),
        });
        f.arm(Fault::DelayTask {
            task_type: "vzstop".into(),
            ms: 5,
        });
        assert_eq!(f.take_task_failure("vzstop"), None);
        assert_eq!(f.take_task_failure("vzstart").as_deref(), Some("boom"));
        assert_eq!(f.take_task_failure("vzstart"), None);
        assert_eq!(f.task_delay("vzstop"), Some(Duration::from_millis(5)));
        f.clear();
        assert_eq!(f.task_delay("vzstop"), None);
    }
}
