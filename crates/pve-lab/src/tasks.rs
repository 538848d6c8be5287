//! PVE worker tasks: each async API call runs on its own thread under a real UPID (the worker
//! thread's id and start time stand in for PVE's forked worker pid/pstart), with a line log,
//! `TASK OK` / `TASK ERROR: ...` endings, one task per container at a time, and the injected
//! task faults. Finished tasks are kept in STATE/tasks so they outlive a daemon restart.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::faults::Faults;
use crate::fsutil::{now_epoch, proc_start_ticks, write_file_atomic};

/// How long a task waits for another task on the same container (PVE's config lock timeout).
const VM_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upid {
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    #[serde(rename = "type")]
    pub ty: String,
    pub id: String,
    pub user: String,
}

impl std::fmt::Display for Upid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "UPID:{}:{:08X}:{:08X}:{:08X}:{}:{}:{}:",
            self.node, self.pid, self.pstart, self.starttime, self.ty, self.id, self.user
        )
    }
}

impl Upid {
    /// Parses the format PVE's regex accepts (trailing colon included).
    pub fn parse(s: &str) -> Option<Upid> {
        let rest = s.strip_prefix("UPID:")?.strip_suffix(':')?;
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() != 7 {
            return None;
        }
        let hex = |p: &str, min: usize, max: usize| {
            (p.len() >= min && p.len() <= max && p.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(p, 16).ok())
                .flatten()
        };
        Some(Upid {
            node: parts[0].to_string(),
            pid: u32::try_from(hex(parts[1], 8, 8)?).ok()?,
            pstart: hex(parts[2], 8, 9)?,
            starttime: hex(parts[3], 8, 8)?,
            ty: parts[4].to_string(),
            id: parts[5].to_string(),
            user: parts[6].to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    Running,
    Stopped { exitstatus: String, endtime: u64 },
}

struct TaskState {
    lines: Vec<String>,
    status: TaskStatus,
}

pub struct Task {
    pub upid: Upid,
    pub upid_str: String,
    state: Mutex<TaskState>,
}

impl Task {
    fn lock(&self) -> std::sync::MutexGuard<'_, TaskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> TaskStatus {
        self.lock().status.clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    /// The `GET .../tasks/{upid}/status` object.
    pub fn status_json(&self) -> Value {
        let u = &self.upid;
        let mut v = json!({
            "upid": self.upid_str, "node": u.node, "pid": u.pid, "pstart": u.pstart,
            "starttime": u.starttime, "type": u.ty, "id": u.id, "user": u.user,
        });
        match self.status() {
            TaskStatus::Running => v["status"] = json!("running"),
            TaskStatus::Stopped { exitstatus, .. } => {
                v["status"] = json!("stopped");
                v["exitstatus"] = json!(exitstatus);
            }
        }
        v
    }

    /// A `GET /nodes/{node}/tasks` row.
    pub fn list_json(&self) -> Value {
        let u = &self.upid;
        let mut v = json!({
            "upid": self.upid_str, "node": u.node, "pid": u.pid, "pstart": u.pstart,
            "starttime": u.starttime, "type": u.ty, "id": u.id, "user": u.user,
        });
        if let TaskStatus::Stopped {
            exitstatus,
            endtime,
        } = self.status()
        {
            v["status"] = json!(exitstatus);
            v["endtime"] = json!(endtime);
        }
        v
    }
}

/// Handed to a task body for its log.
pub struct TaskCtx {
    task: Arc<Task>,
}

impl TaskCtx {
    pub fn log(&self, line: &str) {
        let mut st = self.task.lock();
        for l in line.lines() {
            st.lines.push(l.to_string());
        }
    }
    pub fn upid(&self) -> &str {
        &self.task.upid_str
    }
    pub fn lines(&self) -> Vec<String> {
        self.task.lines()
    }
}

#[derive(Serialize, Deserialize)]
struct ArchivedTask {
    upid: String,
    status: TaskStatus,
    lines: Vec<String>,
}

pub struct Tasks {
    node: String,
    dir: PathBuf,
    list: Mutex<Vec<Arc<Task>>>,
    vm_locks: Mutex<HashMap<u32, Arc<Mutex<()>>>>,
    faults: Arc<Faults>,
}

impl Tasks {
    pub fn new(state: &Path, node: &str, faults: Arc<Faults>) -> Tasks {
        let dir = state.join("tasks");
        let tasks = Tasks {
            node: node.to_string(),
            dir,
            list: Mutex::new(Vec::new()),
            vm_locks: Mutex::new(HashMap::new()),
            faults,
        };
        tasks.load_archive();
        tasks
    }

    fn archive_path(&self) -> PathBuf {
        self.dir.join("archive.jsonl")
    }

    fn load_archive(&self) {
        let text = std::fs::read_to_string(self.archive_path()).unwrap_or_default();
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            let Ok(a) = serde_json::from_str::<ArchivedTask>(line) else {
                continue;
            };
            let Some(upid) = Upid::parse(&a.upid) else {
                continue;
            };
            // A task that was running when the daemon died is over, like PVE's "unexpected status".
            let status = match a.status {
                TaskStatus::Running => TaskStatus::Stopped {
                    exitstatus: "unexpected status".into(),
                    endtime: upid.starttime,
                },
                s => s,
            };
            list.push(Arc::new(Task {
                upid,
                upid_str: a.upid,
                state: Mutex::new(TaskState {
                    lines: a.lines,
                    status,
                }),
            }));
        }
    }

    /// Appends a finished task to the archive; called with its state locked, so nobody sees
    /// the task stopped before it is on disk (a restart right after a wait finds it).
    fn archive(&self, task: &Task, st: &TaskState) {
        let rec = ArchivedTask {
            upid: task.upid_str.clone(),
            status: st.status.clone(),
            lines: st.lines.clone(),
        };
        let write = || -> Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.archive_path())?;
            f.write_all(format!("{}\n", serde_json::to_string(&rec)?).as_bytes())?;
            Ok(())
        };
        if let Err(e) = write() {
            eprintln!("pve-lab: cannot archive task {}: {e:#}", task.upid_str);
        }
    }

    pub fn get(&self, upid: &str) -> Option<Arc<Task>> {
        self.list
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|t| t.upid_str == upid)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Task>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Is a task for this container running right now?
    pub fn busy(&self, vmid: u32) -> bool {
        let id = vmid.to_string();
        self.all()
            .iter()
            .any(|t| t.upid.id == id && t.status() == TaskStatus::Running)
    }

    fn vm_lock(&self, vmid: u32) -> Arc<Mutex<()>> {
        self.vm_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(vmid)
            .or_default()
            .clone()
    }

    /// Starts a worker; returns its UPID once the task is registered (so its status is
    /// readable the moment the caller sees the UPID). `vmid` serializes tasks per container.
    pub fn spawn<F>(
        self: &Arc<Self>,
        ty: &str,
        id: &str,
        user: &str,
        vmid: Option<u32>,
        body: F,
    ) -> Result<String>
    where
        F: FnOnce(&TaskCtx) -> Result<()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<String>();
        let me = Arc::clone(self);
        let (ty, id, user) = (ty.to_string(), id.to_string(), user.to_string());
        std::thread::Builder::new()
            .name(format!("task-{ty}-{id}"))
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() } as u32;
                let pstart = proc_start_ticks(&format!("/proc/self/task/{tid}/stat")).unwrap_or(0);
                let upid = Upid {
                    node: me.node.clone(),
                    pid: tid,
                    pstart,
                    starttime: now_epoch(),
                    ty: ty.clone(),
                    id,
                    user,
                };
                let task = Arc::new(Task {
                    upid_str: upid.to_string(),
                    upid,
                    state: Mutex::new(TaskState {
                        lines: Vec::new(),
                        status: TaskStatus::Running,
                    }),
                });
                me.list
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Arc::clone(&task));
                let _ = tx.send(task.upid_str.clone());
                let ctx = TaskCtx {
                    task: Arc::clone(&task),
                };
                let result = me.run_body(&ty, vmid, &ctx, body);
                let exitstatus = match result {
                    Ok(()) => {
                        ctx.log("TASK OK");
                        "OK".to_string()
                    }
                    Err(e) => {
                        let text = e.to_string();
                        let chain = format!("{e:#}");
                        if chain != text {
                            ctx.log(&chain);
                        }
                        ctx.log(&format!("TASK ERROR: {text}"));
                        text
                    }
                };
                let mut st = task.lock();
                st.status = TaskStatus::Stopped {
                    exitstatus,
                    endtime: now_epoch(),
                };
                me.archive(&task, &st);
            })
            .context("starting a worker thread")?;
        rx.recv_timeout(Duration::from_secs(10))
            .context("the worker thread did not start")
    }

    fn run_body<F>(&self, ty: &str, vmid: Option<u32>, ctx: &TaskCtx, body: F) -> Result<()>
    where
        F: FnOnce(&TaskCtx) -> Result<()>,
    {
        if let Some(delay) = self.faults.task_delay(ty) {
            ctx.log(&format!(
                "pve-lab fault: delaying {ty} by {} ms",
                delay.as_millis()
            ));
            std::thread::sleep(delay);
        }
        if let Some(text) = self.faults.take_task_failure(ty) {
            anyhow::bail!("{text}");
        }
        let lock = vmid.map(|v| (v, self.vm_lock(v)));
        let _guard = match &lock {
            Some((vmid, m)) => {
                let deadline = Instant::now() + VM_LOCK_TIMEOUT;
                loop {
                    match m.try_lock() {
                        Ok(g) => break Some(g),
                        Err(std::sync::TryLockError::Poisoned(p)) => break Some(p.into_inner()),
                        Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(std::sync::TryLockError::WouldBlock) => anyhow::bail!(
                            "can't lock file '/run/lock/lxc/pve-config-{vmid}.lock' - got timeout"
                        ),
                    }
                }
            }
            None => None,
        };
        body(ctx)
    }

    /// Waits (bounded) for a task to stop; for the daemon's own sequencing and tests.
    pub fn wait(&self, upid: &str, timeout: Duration) -> Option<TaskStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.get(upid)?.status();
            if st != TaskStatus::Running || Instant::now() >= deadline {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Writes the task log of a vzdump next to its archive, as PVE does (`.log`).
pub fn write_log_file(path: &Path, lines: &[String]) -> Result<()> {
    write_file_atomic(path, (lines.join("\n") + "\n").as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upid_round_trip() {
        let u = Upid {
            node: "pve".into(),
            pid: 0xA1B2C,
            pstart: 0x16E3F4,
            starttime: 0x6650A1B2,
            ty: "vzcreate".into(),
            id: "101".into(),
            user: "root@pam!launch".into(),
        };
        let s = u.to_string();
        assert_eq!(
            s,
            "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:root@pam!launch:"
        );
        assert_eq!(Upid::parse(&s), Some(u));
        assert_eq!(Upid::parse("UPID:pve:1:2:3:x:y:z:"), None);
    }

    #[test]
    fn tasks_run_log_and_fail() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let tasks = Arc::new(Tasks::new(dir.path(), "pve", Arc::clone(&faults)));
        let ok = tasks
            .spawn("vzstart", "101", "root@pam", Some(101), |ctx| {
                ctx.log("hello");
                Ok(())
            })
            .unwrap();
        assert!(Upid::parse(&ok).is_some());
        let st = tasks.wait(&ok, Duration::from_secs(5)).unwrap();
        assert!(matches!(st, TaskStatus::Stopped { ref exitstatus, .. } if exitstatus == "OK"));
        assert_eq!(tasks.get(&ok).unwrap().lines(), vec!["hello", "TASK OK"]);

        faults.arm(crate::faults::Fault::FailTask {
            task_type: "vzstart".into(),
            count: 1,
            exitstatus: "startup for container '101' failed".into(),
        });
        let bad = tasks
            .spawn("vzstart", "101", "root@pam", Some(101), |_| Ok(()))
            .unwrap();
        let st = tasks.wait(&bad, Duration::from_secs(5)).unwrap();
        assert!(
            matches!(st, TaskStatus::Stopped { ref exitstatus, .. } if exitstatus == "startup for container '101' failed")
        );
        // The archive brings finished tasks back after a restart.
        let again = Tasks::new(dir.path(), "pve", faults);
        assert!(again.get(&ok).is_some());
        assert!(again.get(&bad).is_some());
    }
}
