//! The typed client: validates inputs, builds the request with `requests`, sends it through
//! any `Transport`, and decodes the answer. `wait_task` follows a worker task to its end.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::clock::{Clock, SystemClock};
use super::error::PveError;
use super::model::*;
use super::options::{ContentType, CreateCt, CtConfigUpdate, ResourceType, Vzdump};
use super::requests::{self, ApiRequest};
use super::upid::Upid;
use super::{validate, Transport};

const POLL_FIRST: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(2);
const LOG_PAGE: u64 = 500;
const LOG_TAIL: usize = 10;
/// Transient failures (a proxied node hiccups) tolerated in a row while waiting.
const POLL_RETRIES: u32 = 3;

pub struct Client {
    transport: Box<dyn Transport>,
    clock: Arc<dyn Clock>,
}

/// Reported on every poll of a running task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskProgress {
    pub upid: Upid,
    pub elapsed: Duration,
    pub running: bool,
    /// Log lines that appeared since the last report.
    pub new_lines: Vec<String>,
}

/// A task that ended with `OK` or `WARNINGS: N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskOutcome {
    pub exitstatus: String,
    pub warnings: u32,
    /// The log's `WARN:` lines, for the caller to surface.
    pub warning_lines: Vec<String>,
    pub log: Vec<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("pve::Client")
    }
}

impl Client {
    pub fn new(transport: Box<dyn Transport>) -> Self {
        Client {
            transport,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock `wait_task` measures and sleeps with.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends a request as built, returning PVE's `data`.
    pub fn call(&self, req: &ApiRequest) -> Result<Value, PveError> {
        self.transport.call(req)
    }

    fn typed<T: DeserializeOwned>(&self, req: &ApiRequest) -> Result<T, PveError> {
        let v = self.transport.call(req)?;
        serde_json::from_value(v).map_err(|e| PveError::Decode {
            method: req.method,
            path: req.path.clone(),
            reason: e.to_string(),
        })
    }

    fn upid(&self, req: &ApiRequest) -> Result<Upid, PveError> {
        self.typed(req)
    }

    pub fn version(&self) -> Result<VersionInfo, PveError> {
        self.typed(&requests::version())
    }

    /// The cluster's next free CT/VM id.
    pub fn next_id(&self) -> Result<u32, PveError> {
        let req = requests::cluster_nextid(None);
        let v = self.transport.call(&req)?;
        super::de::value_to_u64(&v)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| PveError::Decode {
                method: req.method,
                path: req.path,
                reason: format!("expected an id (number or numeric string), got {v}"),
            })
    }

    /// Whether `vmid` is free in the cluster. PVE answers a taken id with 400 and
    /// `vmid: VM 100 already exists`; that becomes `Ok(false)`, other errors stay errors.
    pub fn vmid_available(&self, vmid: u32) -> Result<bool, PveError> {
        validate::vmid(vmid)?;
        match self.transport.call(&requests::cluster_nextid(Some(vmid))) {
            Ok(_) => Ok(true),
            Err(PveError::BadRequest { errors, .. })
                if errors
                    .get("vmid")
                    .is_some_and(|m| m.contains("already exists")) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub fn cluster_resources(
        &self,
        kind: Option<ResourceType>,
    ) -> Result<Vec<ClusterResource>, PveError> {
        self.typed(&requests::cluster_resources(kind))
    }

    /// The caller's privileges: ACL path → privilege → propagate flag. A privilege is granted
    /// on a path when its key is present, whatever the flag (0 for roles from pools and ACLs
    /// that do not propagate); the flag only says whether paths below inherit it.
    pub fn permissions(
        &self,
        path: Option<&str>,
    ) -> Result<
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>,
        PveError,
    > {
        self.typed(&requests::access_permissions(path))
    }

    pub fn nodes(&self) -> Result<Vec<NodeInfo>, PveError> {
        self.typed(&requests::nodes())
    }

    /// The node's bridges: name → its IPv4 address with prefix, if the node has one there.
    pub fn bridges(&self, node: &str) -> Result<Vec<(String, Option<String>)>, PveError> {
        validate::node(node)?;
        let rows = self.call(&requests::node_bridges(node))?;
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let iface = r["iface"].as_str()?.to_string();
                Some((iface, r["cidr"].as_str().map(str::to_string)))
            })
            .collect())
    }

    /// The SDN zone whose ACL path PVE checks for a NIC on `bridge` (pve-guest-common's
    /// `check_vnet_access`): `localnetwork` for a plain bridge; a vnet's own zone, read from
    /// `/cluster/sdn/vnets/{vnet}` (needs SDN.Audit) or, failing that, from the caller's own
    /// ACL paths (`/sdn/zones/<zone>/<vnet>`, where a token holding only SDN.Use has it).
    pub fn bridge_zone(&self, node: &str, bridge: &str) -> Result<String, PveError> {
        validate::node(node)?;
        let rows = self.call(&requests::node_bridges(node))?;
        let is_vnet = rows
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["iface"] == bridge && r["type"] == "vnet");
        if !is_vnet {
            return Ok("localnetwork".into());
        }
        if let Ok(v) = self.call(&requests::sdn_vnet(bridge)) {
            if let Some(z) = v["zone"].as_str() {
                return Ok(z.to_string());
            }
        }
        let perms = self.permissions(None)?;
        Ok(perms
            .keys()
            .find_map(|p| {
                let rest = p.strip_prefix("/sdn/zones/")?;
                let (zone, tail) = rest.split_once('/')?;
                (tail == bridge || tail.starts_with(&format!("{bridge}/")))
                    .then(|| zone.to_string())
            })
            .unwrap_or_else(|| "localnetwork".into()))
    }

    /// The name of the node answering (`/cluster/status`'s entry with `local: 1`).
    pub fn local_node(&self) -> Result<Option<String>, PveError> {
        let rows = self.call(&requests::cluster_status())?;
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["type"] == "node")
            .find(|r| r["local"].as_u64() == Some(1) || r["local"] == "1")
            .and_then(|r| r["name"].as_str().map(str::to_string)))
    }

    pub fn node_status(&self, node: &str) -> Result<NodeStatus, PveError> {
        validate::node(node)?;
        self.typed(&requests::node_status(node))
    }

    /// Storages on `node` holding any of `content` (all when empty).
    pub fn storages(
        &self,
        node: &str,
        content: &[ContentType],
    ) -> Result<Vec<StorageInfo>, PveError> {
        validate::node(node)?;
        self.typed(&requests::storage_list(node, content))
    }

    /// The appliance (template) index the node knows.
    pub fn appliances(&self, node: &str) -> Result<Vec<Appliance>, PveError> {
        validate::node(node)?;
        self.typed(&requests::aplinfo_list(node))
    }

    /// Starts downloading `template` (a name from `appliances`) to `storage`.
    pub fn download_appliance(
        &self,
        node: &str,
        storage: &str,
        template: &str,
    ) -> Result<Upid, PveError> {
        validate::node(node)?;
        validate::storage(storage)?;
        validate::plain("template name", template, 255)?;
        self.upid(&requests::aplinfo_download(node, storage, template))
    }

    pub fn storage_content(
        &self,
        node: &str,
        storage: &str,
        content: Option<ContentType>,
    ) -> Result<Vec<StorageItem>, PveError> {
        validate::node(node)?;
        validate::storage(storage)?;
        self.typed(&requests::storage_content(node, storage, content))
    }

    /// Creates an unprivileged CT; returns the `vzcreate` task.
    pub fn create_ct(&self, node: &str, ct: &CreateCt) -> Result<Upid, PveError> {
        validate::node(node)?;
        ct.validate()?;
        let res = self.upid(&requests::lxc_create(node, ct));
        match &ct.password {
            Some(p) => res.map_err(|e| e.scrub(p.expose())),
            None => res,
        }
    }

    pub fn cts(&self, node: &str) -> Result<Vec<CtSummary>, PveError> {
        validate::node(node)?;
        self.typed(&requests::lxc_list(node))
    }

    pub fn ct_config(&self, node: &str, vmid: u32) -> Result<CtConfig, PveError> {
        self.check_ct(node, vmid)?;
        self.typed(&requests::lxc_config_get(node, vmid))
    }

    /// Applies `update` synchronously (PVE answers `null`).
    pub fn update_ct_config(
        &self,
        node: &str,
        vmid: u32,
        update: &CtConfigUpdate,
    ) -> Result<(), PveError> {
        self.check_ct(node, vmid)?;
        update.validate()?;
        self.transport
            .call(&requests::lxc_config_put(node, vmid, update))
            .map(drop)
    }

    pub fn ct_status(&self, node: &str, vmid: u32) -> Result<CtStatus, PveError> {
        self.check_ct(node, vmid)?;
        self.typed(&requests::lxc_status_current(node, vmid))
    }

    pub fn start_ct(&self, node: &str, vmid: u32) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        self.upid(&requests::lxc_start(node, vmid))
    }

    /// `timeout` in seconds; with `force_stop` the CT is killed when it passes.
    pub fn shutdown_ct(
        &self,
        node: &str,
        vmid: u32,
        timeout: Option<u32>,
        force_stop: bool,
    ) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        self.upid(&requests::lxc_shutdown(node, vmid, timeout, force_stop))
    }

    pub fn stop_ct(&self, node: &str, vmid: u32) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        self.upid(&requests::lxc_stop(node, vmid))
    }

    pub fn delete_ct(
        &self,
        node: &str,
        vmid: u32,
        purge: bool,
        force: bool,
    ) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        self.upid(&requests::lxc_delete(node, vmid, purge, force))
    }

    /// Includes PVE's `current` pseudo-snapshot (see `Snapshot::is_current`).
    pub fn snapshots(&self, node: &str, vmid: u32) -> Result<Vec<Snapshot>, PveError> {
        self.check_ct(node, vmid)?;
        self.typed(&requests::snapshot_list(node, vmid))
    }

    pub fn create_snapshot(
        &self,
        node: &str,
        vmid: u32,
        name: &str,
        description: Option<&str>,
    ) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        validate::snapname(name)?;
        if let Some(d) = description {
            validate::text("snapshot description", d, 8192)?;
        }
        self.upid(&requests::snapshot_create(node, vmid, name, description))
    }

    pub fn rollback_snapshot(
        &self,
        node: &str,
        vmid: u32,
        name: &str,
        start: bool,
    ) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        validate::snapname(name)?;
        self.upid(&requests::snapshot_rollback(node, vmid, name, start))
    }

    /// Grows the container's root disk to `size_gib`.
    pub fn resize_ct(&self, node: &str, vmid: u32, size_gib: u32) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        self.upid(&requests::lxc_resize(node, vmid, size_gib))
    }

    pub fn delete_snapshot(
        &self,
        node: &str,
        vmid: u32,
        name: &str,
        force: bool,
    ) -> Result<Upid, PveError> {
        self.check_ct(node, vmid)?;
        validate::snapname(name)?;
        self.upid(&requests::snapshot_delete(node, vmid, name, force))
    }

    pub fn vzdump(&self, node: &str, backup: &Vzdump) -> Result<Upid, PveError> {
        validate::node(node)?;
        backup.validate()?;
        self.upid(&requests::vzdump(node, backup))
    }

    /// Interfaces and addresses as the running CT sees them.
    pub fn ct_interfaces(&self, node: &str, vmid: u32) -> Result<Vec<CtInterface>, PveError> {
        self.check_ct(node, vmid)?;
        self.typed(&requests::lxc_interfaces(node, vmid))
    }

    pub fn task_status(&self, upid: &Upid) -> Result<TaskStatus, PveError> {
        self.typed(&requests::task_status(upid))
    }

    /// Up to `limit` log lines starting at line `start` (0-based).
    pub fn task_log(
        &self,
        upid: &Upid,
        start: u64,
        limit: u64,
    ) -> Result<Vec<TaskLogLine>, PveError> {
        self.typed(&requests::task_log(upid, start, limit))
    }

    fn check_ct(&self, node: &str, vmid: u32) -> Result<(), PveError> {
        validate::node(node)?;
        validate::vmid(vmid)
    }

    /// Polls the task until it stops or `timeout` passes, backing off from 200 ms to 2 s.
    /// `OK` and `WARNINGS: N` succeed; anything else is `TaskFailed` with the log's tail.
    pub fn wait_task(
        &self,
        upid: &Upid,
        timeout: Duration,
        on_progress: &mut dyn FnMut(&TaskProgress),
    ) -> Result<TaskOutcome, PveError> {
        let started = self.clock.now();
        let mut delay = POLL_FIRST;
        let mut log: Vec<String> = Vec::new();
        let mut failures = 0u32;
        // Bounds the loop even if a clock never advances.
        let max_polls = timeout.as_millis() / POLL_FIRST.as_millis() + 2;
        for _ in 0..max_polls {
            match self.poll_once(upid, &mut log) {
                Ok((status, new_lines)) => {
                    failures = 0;
                    let elapsed = self.clock.now().saturating_duration_since(started);
                    on_progress(&TaskProgress {
                        upid: upid.clone(),
                        elapsed,
                        running: status.is_running(),
                        new_lines,
                    });
                    if !status.is_running() {
                        return finish(upid, status, log);
                    }
                }
                Err(e) if e.is_retryable() && failures < POLL_RETRIES => failures += 1,
                Err(e) => return Err(e),
            }
            let elapsed = self.clock.now().saturating_duration_since(started);
            if elapsed >= timeout {
                break;
            }
            self.clock.sleep(delay.min(timeout - elapsed));
            delay = (delay * 2).min(POLL_MAX);
        }
        Err(PveError::TaskTimeout {
            upid: Box::new(upid.clone()),
            waited: self.clock.now().saturating_duration_since(started),
        })
    }

    /// One status read plus any new log lines (appended to `log`, also returned).
    fn poll_once(
        &self,
        upid: &Upid,
        log: &mut Vec<String>,
    ) -> Result<(TaskStatus, Vec<String>), PveError> {
        let status = self.task_status(upid)?;
        let before = log.len();
        // Bounded: a page per iteration, at most 200 pages (100k lines) per poll.
        for _ in 0..200 {
            let page = self.task_log(upid, log.len() as u64, LOG_PAGE)?;
            let got = page.len() as u64;
            // PVE answers an empty log file with a single placeholder line (for ExtJS).
            let placeholder =
                log.is_empty() && got == 1 && page[0].n == 1 && page[0].t == "no content";
            if !placeholder {
                log.extend(page.into_iter().map(|l| l.t));
            }
            if got < LOG_PAGE {
                break;
            }
        }
        Ok((status, log[before..].to_vec()))
    }
}

fn finish(upid: &Upid, status: TaskStatus, log: Vec<String>) -> Result<TaskOutcome, PveError> {
    let exitstatus = status
        .exitstatus
        .unwrap_or_else(|| "unexpected status".to_string());
    let warnings = if exitstatus == "OK" {
        Some(0)
    } else {
        exitstatus
            .strip_prefix("WARNINGS:")
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    match warnings {
        Some(warnings) => Ok(TaskOutcome {
            warning_lines: log
                .iter()
                .filter(|l| l.starts_with("WARN:"))
                .cloned()
                .collect(),
            exitstatus,
            warnings,
            log,
        }),
        None => Err(PveError::TaskFailed {
            upid: Box::new(upid.clone()),
            exitstatus,
            log_tail: log[log.len().saturating_sub(LOG_TAIL)..].to_vec(),
        }),
    }
}
