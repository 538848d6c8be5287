//! `launch-tui status NAME|--all`: checks each instance's container, units, HTTP health (through
//! nginx and on the active slot), version, database, disk, memory, TLS certificate and the age
//! of its last backup, concurrently and each with its own time limit, and says for every
//! problem the exact command that fixes it. `--notify` (the daily timer, see [`health`]) also
//! reports an unhealthy result to a webhook or as a GitHub issue.
//!
//! `--json` prints one object (this schema is stable; fields are only ever added):
//!
//! ```json
//! {"instances": [{"name": "tasks", "profile": "tasks", "vmid": 105, "node": "pve",
//!                 "ip": "10.0.0.5", "healthy": true,
//!                 "checks": [{"id": "container", "status": "ok", "message": "running, up 3h 02m"},
//!                            {"id": "unit:tasks-api-blue.service", "status": "fail",
//!                             "message": "...", "fix": "pct exec 105 -- systemctl restart ..."}]}],
//!  "result": "ok"}
//! ```
//!
//! `status` is `ok`, `warn` or `fail`; `fix` is present on every `warn` and `fail`. `ip` may be
//! null. An instance is healthy when none of its checks failed (warnings do not change the exit
//! code). Check ids: `container`, `memory`, `disk`, `update-disk`, `unit:UNIT`, `http-nginx`,
//! `http-slot`, `version`, `update`, `database`, `service-KIND`, `tls`, `backup`, `operation`,
//! `profile`. With `--notify`
//! the object also has `"notify": {"sent": bool, "message": "..."}`. The exit code is 0 when
//! every instance is healthy and 4 otherwise; then the object is printed with `"result":
//! "unhealthy"`, followed by the usual error line (`{"result":"error","exit_code":4,...}`).

pub mod health;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::ct::{CtAccess, ExecOutput, Pct};
use crate::engine::{FnStep, Plan, Reporter};
use crate::error::{LaunchError, Result};
use crate::instance::{Instance, InstanceStore};
use crate::profile::{Catalog, Channel, Component, Profile};
use crate::pve::{Client, CtStatus};
use crate::render::Layout;
use crate::report::{Outcome, Output};
use crate::site::Site;

/// Limit on commands run inside the container (`timeout` there, so nothing lingers).
const CT_TIMEOUT_S: u32 = 10;
/// Limit on HTTP requests from the host.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a check may take in all before it is reported as hanging (covers `pct` itself).
const CT_CHECK_LIMIT: Duration = Duration::from_secs(25);
const HTTP_CHECK_LIMIT: Duration = Duration::from_secs(8);
const API_CHECK_LIMIT: Duration = Duration::from_secs(15);

const DISK_WARN_FREE_PCT: u64 = 20;
const DISK_FAIL_FREE_PCT: u64 = 10;
const MEM_WARN_PCT: u64 = 80;
/// A certificate with less than this left is renewed now, not on the day it expires.
const TLS_WARN_DAYS: i64 = 14;
/// The newest backup may be this old before status asks for a new one.
const BACKUP_WARN_DAYS: i64 = 7;

pub use crate::engine::check::{Check, Level};

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub profile: String,
    pub vmid: u32,
    pub node: String,
    pub ip: Option<String>,
    pub healthy: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub instances: Vec<InstanceStatus>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.instances.iter().all(|i| i.healthy)
    }
}

/// Which instances to check and what to do with the report, as plain data (no clap types).
#[derive(Debug, Clone, Default)]
pub struct StatusRequest {
    /// One instance; None with `all`: every instance.
    pub name: Option<String>,
    pub all: bool,
    /// Also write Prometheus textfile metrics to this file.
    pub prometheus: Option<PathBuf>,
    /// When unhealthy, send the report as `CONFIG/notify.yaml` says (and log every run).
    pub notify: bool,
}

pub fn run(g: &Site, a: &StatusRequest, out: &Output) -> Result<Outcome> {
    let store = InstanceStore::new(&g.config);
    // An update or rollback that was cut off (kill, power loss) is finished or undone first,
    // when no process runs it any more; its progress goes to stderr, never into --json.
    let names: Vec<String> = match (&a.name, a.all) {
        (Some(n), _) => vec![n.clone()],
        (None, true) => store.list()?.into_iter().map(|i| i.name).collect(),
        (None, false) => Vec::new(),
    };
    let quiet = Output {
        json: false,
        color: out.color,
        verbose: out.verbose,
    };
    for n in names {
        if let Some(what) = crate::update::recover_unfinished(g, &quiet, &n)? {
            quiet.note(format!("{n}: {what}"));
        }
        if let Some(what) = crate::backup::recover_unfinished(g, &quiet, &n)? {
            quiet.note(format!("{n}: {what}"));
        }
    }
    let instances = match (&a.name, a.all) {
        (Some(n), _) => vec![store.load(n)?],
        (None, true) => store.list()?,
        (None, false) => {
            return Err(LaunchError::bad_input(
                "status",
                "no instance given",
                "name one (`launch-tui status NAME`) or check every instance with `launch-tui status --all`",
            ))
        }
    };
    if instances.is_empty() {
        return Ok(Outcome::new(
            "No instances yet. Install one with `launch-tui install APP` (`launch-tui profiles list` lists the apps).",
            json!({ "instances": [] }),
        ));
    }
    let conn = crate::connect::connect(g)?;
    if let Some(w) = conn.warning {
        quiet.warn(w);
    }
    let client = Arc::new(conn.client);
    // Without `pct` (e.g. run away from the node) the in-container checks say so one by one.
    let ct: std::result::Result<Arc<dyn CtAccess>, String> = Pct::find()
        .map(|p| Arc::new(p) as Arc<dyn CtAccess>)
        .map_err(|e| format!("{e:#}"));
    let catalog = Catalog::new(&g.config);
    let targets = instances
        .into_iter()
        .map(|inst| {
            let profile = catalog
                .load(&inst.profile)
                .map(|l| l.profile)
                .map_err(|e| e.to_string());
            (inst, profile)
        })
        .collect();
    let run = StatusRun {
        client,
        ct,
        targets,
        store,
        prometheus: a.prometheus.clone(),
        report: None,
        error: None,
    };
    // The plain and `--json` views print the whole report at the end (their output is a
    // stable interface); live views such as the dashboard show `Event::Check` as it comes.
    let handle = crate::engine::spawn(plan(), run, false);
    for _event in handle.events.iter() {}
    let (run, result) = handle
        .join
        .join()
        .map_err(|_| LaunchError::Failed(anyhow::anyhow!("the status checks crashed")))?;
    if let Err(e) = result {
        return Err(run.error.unwrap_or(LaunchError::Failed(e.error)));
    }
    let Some(report) = run.report else {
        return Err(LaunchError::Failed(anyhow::anyhow!(
            "the status checks ended without a report"
        )));
    };
    let mut data = serde_json::to_value(&report)
        .map_err(|e| LaunchError::Failed(anyhow::anyhow!("cannot encode the status: {e}")))?;
    let bad: Vec<String> = report
        .instances
        .iter()
        .filter(|i| !i.healthy)
        .map(|i| {
            let failed: Vec<&str> = i
                .checks
                .iter()
                .filter(|c| c.status == Level::Fail)
                .map(|c| c.id.as_str())
                .collect();
            format!("{} ({})", i.name, failed.join(", "))
        })
        .collect();
    if a.notify {
        let n = notify(g, &report, &data, &bad);
        quiet.note(format!("notify: {}", n.message));
        if let serde_json::Value::Object(m) = &mut data {
            m.insert("notify".into(), n.to_json());
        }
    }
    let mut text = render_text(&report, out.color);
    // Seen by the last `self-update --check`: status itself never goes to the network for it.
    if let Some(note) = crate::selfupdate::newer_release_note() {
        text.push_str(&format!("\n\n{note}"));
        if let serde_json::Value::Object(m) = &mut data {
            m.insert("launch_update".into(), note.into());
        }
    }
    if report.healthy() {
        return Ok(Outcome::new(text, data));
    }
    // The checks reach the user, and then the command fails.
    if let serde_json::Value::Object(m) = &mut data {
        m.insert("result".into(), "unhealthy".into());
    }
    Ok(
        Outcome::new(text, data).failing(LaunchError::Unhealthy(format!(
            "{} instance(s) unhealthy: {}\n  help: run the `fix:` commands shown above",
            bad.len(),
            bad.join("; ")
        ))),
    )
}

/// What the status plan works on: the instances with their profiles, how to reach them, and,
/// once the checks are done, the report.
pub struct StatusRun {
    pub client: Arc<Client>,
    /// Without `pct` (e.g. run away from the node) the in-container checks say so one by one.
    pub ct: std::result::Result<Arc<dyn CtAccess>, String>,
    pub targets: Vec<(Instance, std::result::Result<Profile, String>)>,
    pub store: InstanceStore,
    /// Also write the report here in Prometheus' textfile format.
    pub prometheus: Option<std::path::PathBuf>,
    pub report: Option<Report>,
    /// The error a step stopped on, with its exit code, for the front end to return.
    pub error: Option<LaunchError>,
}

/// Status as a plan: every instance checked at once, each check sent as an event the moment it
/// returns; then what the checks found is recorded (a moved address, the Prometheus file).
/// `Finished` carries the report.
pub fn plan() -> Plan<StatusRun> {
    Plan::new("status", None)
        .step(FnStep::new(
            "check",
            "Checking the instances",
            |run: &mut StatusRun, rep: &Reporter| {
                run.report = Some(check_all(run, rep));
                Ok(())
            },
        ))
        .step(FnStep::new(
            "record",
            "Recording what the checks found",
            |run: &mut StatusRun, _rep: &Reporter| {
                let Some(report) = &run.report else {
                    return Ok(());
                };
                if let Err(e) = record(&run.store, run.prometheus.as_deref(), report) {
                    let text = e.to_string();
                    run.error = Some(e);
                    anyhow::bail!(text);
                }
                Ok(())
            },
        ))
        .with_report(|run: &StatusRun| {
            run.report
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok())
        })
}

/// Each instance on its own thread; a check reaches `rep` as soon as it returns.
fn check_all(run: &StatusRun, rep: &Reporter) -> Report {
    let instances = std::thread::scope(|s| {
        let handles: Vec<_> = run
            .targets
            .iter()
            .map(|(inst, profile)| {
                let client = run.client.clone();
                let ct = run.ct.clone();
                let (inst, profile) = (inst.clone(), profile.clone());
                let rep = rep.clone();
                s.spawn(move || {
                    let name = inst.name.clone();
                    check_instance_live(client, ct, inst, profile, &|c| rep.check(&name, c))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| InstanceStatus {
                    name: "?".into(),
                    profile: "?".into(),
                    vmid: 0,
                    node: String::new(),
                    ip: None,
                    healthy: false,
                    checks: vec![Check::fail(
                        "internal",
                        "the checks of this instance crashed",
                        "run it again with -v and report the output",
                    )],
                })
            })
            .collect()
    });
    Report { instances }
}

/// A container that moved to another address (DHCP) is recorded where it is now; the report
/// goes to the Prometheus file when one is asked for.
fn record(store: &InstanceStore, prometheus_file: Option<&Path>, report: &Report) -> Result<()> {
    for i in &report.instances {
        if i.checks.iter().any(|c| c.id == "address") {
            if let Ok(mut rec) = store.load(&i.name) {
                rec.container.ip = i.ip.clone();
                store.save(&rec)?;
            }
        }
    }
    if let Some(path) = prometheus_file {
        crate::fsutil::write_atomic(path, prometheus(report).as_bytes(), 0o644)?;
    }
    Ok(())
}

/// `--notify`: sends an unhealthy report as `notify.yaml` says and logs every run to
/// `health.log` (with what was sent), so a quiet day is on record too.
fn notify(g: &Site, report: &Report, data: &serde_json::Value, bad: &[String]) -> health::Notified {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let now = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut body = data.clone();
    if let serde_json::Value::Object(m) = &mut body {
        let result = if report.healthy() { "ok" } else { "unhealthy" };
        m.insert("result".into(), result.into());
        m.insert("host".into(), host.clone().into());
        m.insert("time".into(), now.clone().into());
    }
    let title = format!("launch on {host}: {} unhealthy", bad.join("; "));
    let text = format!(
        "`launch-tui status --all` on {host} at {now} found {} unhealthy instance(s). Each problem line is followed by the command that fixes it.\n\n```\n{}\n```\n",
        bad.len(),
        render_text(report, false)
    );
    let n = health::notify(&g.config, report.healthy(), &body, &title, &text);
    if let serde_json::Value::Object(m) = &mut body {
        m.insert("notify".into(), n.to_json());
    }
    if let Err(e) = health::append_log(&body) {
        Output::stderr().warn(format!("the health log was not written: {e:#}"));
    }
    n
}

/// A check running on its own thread, reported as hanging if it outlives its limit. Plain
/// threads rather than scoped ones: a scope would wait for a hung `pct exec` forever.
struct Pending {
    id: String,
    limit: Duration,
    what: String,
    rx: mpsc::Receiver<Vec<Check>>,
}

fn spawn_check(
    id: impl Into<String>,
    limit: Duration,
    what: impl Into<String>,
    f: impl FnOnce() -> Vec<Check> + Send + 'static,
) -> Pending {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    Pending {
        id: id.into(),
        limit,
        what: what.into(),
        rx,
    }
}

/// The pending checks' results, in the order they were started (the report's order, stable
/// from run to run); each goes to `on_check` the moment it returns (or is given up on).
fn collect(
    pending: Vec<Pending>,
    start: Instant,
    vmid: u32,
    on_check: &dyn Fn(&Check),
) -> Vec<Check> {
    let mut results: Vec<Option<Vec<Check>>> = pending.iter().map(|_| None).collect();
    let mut open: Vec<usize> = (0..pending.len()).collect();
    let settle = |i: usize, checks: Vec<Check>, results: &mut Vec<Option<Vec<Check>>>| {
        for c in &checks {
            on_check(c);
        }
        results[i] = Some(checks);
    };
    while !open.is_empty() {
        let mut progressed = false;
        open.retain(|&i| {
            let p = &pending[i];
            match p.rx.try_recv() {
                Ok(checks) => {
                    settle(i, checks, &mut results);
                    progressed = true;
                    false
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    settle(
                        i,
                        vec![Check::fail(
                            p.id.clone(),
                            format!("{} crashed", p.what),
                            "run it again with -v and report the output",
                        )],
                        &mut results,
                    );
                    progressed = true;
                    false
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() >= start + p.limit => {
                    settle(i, vec![hanging(p, vmid)], &mut results);
                    progressed = true;
                    false
                }
                Err(mpsc::TryRecvError::Empty) => true,
            }
        });
        if !progressed && !open.is_empty() {
            // Nothing new: wait on the first open check (up to its limit) or for a short
            // while, whichever is sooner, and look at all of them again.
            let p = &pending[open[0]];
            let left = (start + p.limit).saturating_duration_since(Instant::now());
            match p.rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(checks) => {
                    let i = open.remove(0);
                    settle(i, checks, &mut results);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {}
            }
        }
    }
    results.into_iter().flatten().flatten().collect()
}

fn hanging(p: &Pending, vmid: u32) -> Check {
    Check::fail(
        p.id.clone(),
        format!(
            "{} did not answer within {} s (hanging)",
            p.what,
            p.limit.as_secs()
        ),
        format!("pct exec {vmid} -- systemctl list-jobs  (look for stuck jobs; `pct reboot {vmid}` if the container is stuck)"),
    )
}

/// An instance's checks as they are found: each one goes to `on_check` when it is added.
struct Found<'a> {
    checks: Vec<Check>,
    on_check: &'a dyn Fn(&Check),
}

impl Found<'_> {
    fn push(&mut self, c: Check) {
        (self.on_check)(&c);
        self.checks.push(c);
    }

    fn extend(&mut self, cs: impl IntoIterator<Item = Check>) {
        for c in cs {
            self.push(c);
        }
    }
}

/// The main component's unit in the active slot, then the enabled extra components' units.
fn component_units(inst: &Instance, profile: &Profile) -> Vec<(Component, String)> {
    let p = profile.name.as_str();
    profile
        .components
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            *i == 0
                || match &c.when {
                    None => true,
                    Some(k) => inst.settings.get(k.as_str()).map(String::as_str) == Some("true"),
                }
        })
        .map(|(i, c)| {
            let slot = (i == 0).then_some(inst.active_slot);
            (c.clone(), Layout::unit_name(p, c.name.as_str(), slot))
        })
        .collect()
}

/// An update or rollback still in its journal: running now (its lock is held), or one that
/// could not be finished.
fn operation_check(name: &str) -> Check {
    match crate::backup::restore::RestoreJournal::load(name) {
        Ok(None) => {}
        Ok(Some(j)) => {
            return Check::warn(
                "operation",
                format!(
                    "a restore from {} started {} by pid {} on {} has not finished",
                    j.archive, j.started, j.pid, j.host
                ),
                format!(
                "wait for it; if it no longer runs: launch-tui status {name} finishes or undoes it"
            ),
            )
        }
        Err(e) => {
            return Check::warn(
                "operation",
                format!("{e:#}"),
                format!("move the journal aside and run launch-tui status {name}"),
            )
        }
    }
    match crate::update::journal::Journal::load(name) {
        Ok(None) => Check::ok("operation", "no unfinished operation"),
        Ok(Some(j)) => Check::warn(
            "operation",
            format!(
                "an {} ({} → {}) started {} by pid {} on {} has not finished",
                j.operation, j.from_version, j.to_version, j.started, j.pid, j.host
            ),
            format!(
                "wait for it; if it no longer runs: launch-tui {} {name}",
                j.operation
            ),
        ),
        Err(e) => Check::warn(
            "operation",
            format!("{e:#}"),
            format!("move the journal aside and run launch-tui status {name}"),
        ),
    }
}

pub fn check_instance(
    client: Arc<Client>,
    ct: std::result::Result<Arc<dyn CtAccess>, String>,
    inst: Instance,
    profile: std::result::Result<Profile, String>,
) -> InstanceStatus {
    check_instance_live(client, ct, inst, profile, &|_| {})
}

/// `check_instance`, handing each check to `on_check` the moment it is known (the report's
/// fixes may still be related to each other afterwards: a 502 points at the dead unit).
pub fn check_instance_live(
    client: Arc<Client>,
    ct: std::result::Result<Arc<dyn CtAccess>, String>,
    inst: Instance,
    profile: std::result::Result<Profile, String>,
    on_check: &dyn Fn(&Check),
) -> InstanceStatus {
    let mut inst = inst;
    let vmid = inst.container.vmid;
    let node = inst.container.node.clone();
    let mut checks = Found {
        checks: Vec::new(),
        on_check,
    };
    let start = Instant::now();
    checks.push(operation_check(&inst.name));
    checks.push(backup_check(
        &crate::oplock::state_dir().join("backups").join(&inst.name),
        &inst.name,
        OffsetDateTime::now_utc(),
    ));
    let status_call = {
        let client = client.clone();
        let node = node.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(client.ct_status(&node, vmid));
        });
        rx.recv_timeout(API_CHECK_LIMIT)
    };
    let running = match status_call {
        Err(_) => {
            checks.push(Check::fail(
                "container",
                format!(
                    "the API did not report CT {vmid}'s status within {} s",
                    API_CHECK_LIMIT.as_secs()
                ),
                format!("pct status {vmid}  (and `systemctl status pveproxy pvedaemon` on {node})"),
            ));
            false
        }
        Ok(Err(e)) => {
            checks.push(missing_ct_check(&client, &node, vmid, &inst.name, &e));
            false
        }
        Ok(Ok(st)) => {
            checks.extend(container_checks(&st, vmid));
            if st.status == "running" {
                checks.extend(address_check(&client, &node, &mut inst));
            }
            st.status == "running"
        }
    };
    let profile = match profile {
        Ok(p) => Some(p),
        Err(e) => {
            checks.push(Check::fail(
                "profile",
                format!("cannot load profile `{}`: {e}", inst.profile),
                "launch-tui profiles list  (restore the profile override, or remove the broken one)",
            ));
            None
        }
    };
    if running {
        let mut pending = Vec::new();
        let ct = match ct {
            Ok(ct) => Some(ct),
            Err(e) => {
                checks.push(Check::fail(
                    "pct",
                    format!("cannot look inside the container: {e}"),
                    "run launch-tui on the Proxmox VE node as root",
                ));
                None
            }
        };
        let mut units = vec![];
        if let Some(p) = &profile {
            units = component_units(&inst, p);
        }
        if let Some(ct) = &ct {
            for unit in units
                .iter()
                .map(|(_, u)| u.clone())
                .chain(["nginx.service".to_string()])
            {
                let ct = ct.clone();
                pending.push(spawn_check(
                    format!("unit:{unit}"),
                    CT_CHECK_LIMIT,
                    format!("`systemctl show {unit}` in CT {vmid}"),
                    move || vec![unit_check(ct.as_ref(), vmid, &unit)],
                ));
            }
            let ct2 = ct.clone();
            pending.push(spawn_check(
                "disk",
                CT_CHECK_LIMIT,
                format!("`df -P /` in CT {vmid}"),
                move || vec![disk_check(ct2.as_ref(), vmid)],
            ));
            if let Some(p) = &profile {
                let (ct3, p, i) = (ct.clone(), p.clone(), inst.clone());
                pending.push(spawn_check(
                    "update-disk",
                    CT_CHECK_LIMIT,
                    format!("`df` and `du` in CT {vmid}"),
                    move || vec![update_disk_check(ct3.as_ref(), &p, &i)],
                ));
            }
        }
        if let Some(p) = &profile {
            let main = p.components[0].clone();
            let main_unit = units.first().map(|(_, u)| u.clone()).unwrap_or_default();
            if crate::acme::enabled(&inst.settings) {
                if let Some(ct) = &ct {
                    let ct = ct.clone();
                    let p = p.name.to_string();
                    pending.push(spawn_check(
                        "acme",
                        CT_CHECK_LIMIT,
                        format!("the ACME renewal result in CT {vmid}"),
                        move || vec![crate::acme::status_check(ct.as_ref(), vmid, &p)],
                    ));
                }
            }
            // nginx's address: the IP, with the port when it is not 80.
            let ip = inst.container.ip.clone().map(|ip| {
                crate::deploy::public_base(&ip, &inst.settings)
                    .trim_start_matches("http://")
                    .to_string()
            });
            {
                let main = main.clone();
                let main_unit = main_unit.clone();
                pending.push(spawn_check(
                    "http-nginx",
                    HTTP_CHECK_LIMIT,
                    "the health check through nginx",
                    move || vec![nginx_http_check(ip.as_deref(), &main, vmid, &main_unit)],
                ));
            }
            if let Some(ct) = &ct {
                let ct_slot = ct.clone();
                let main_slot = main.clone();
                let unit_slot = main_unit.clone();
                let port = match (inst.active_slot, main.green_port) {
                    (crate::instance::Slot::Green, Some(g)) => g.get(),
                    _ => main.port.get(),
                };
                pending.push(spawn_check(
                    "http-slot",
                    CT_CHECK_LIMIT,
                    format!("the health check on the active slot in CT {vmid}"),
                    move || {
                        vec![slot_http_check(
                            ct_slot.as_ref(),
                            vmid,
                            port,
                            &main_slot,
                            &unit_slot,
                        )]
                    },
                ));
                let ct_db = ct.clone();
                let db = inst.settings.get("database").cloned().unwrap_or_default();
                let data = Layout::data_dir(p.name.as_str(), inst.active_slot);
                // The profile names its SQLite file (backup.sqlite_file); `NAME.db` is the
                // format-1 convention for profiles that name none.
                let file = match &p.backup.sqlite_file {
                    Some(f) => format!("{data}/{f}"),
                    None => format!("{data}/{}.db", p.name),
                };
                let user = main.user.to_string();
                let name = inst.name.clone();
                pending.push(spawn_check(
                    "database",
                    CT_CHECK_LIMIT,
                    format!("the database check in CT {vmid}"),
                    move || {
                        vec![database_check(
                            ct_db.as_ref(),
                            vmid,
                            &db,
                            &file,
                            &user,
                            &name,
                        )]
                    },
                ));
                for a in crate::service::enabled(p, &inst.settings) {
                    let ct = ct.clone();
                    let id = format!("service-{}", a.kind().label());
                    pending.push(spawn_check(
                        id.clone(),
                        CT_CHECK_LIMIT,
                        format!("the {} check in CT {vmid}", a.title()),
                        move || vec![service_check(ct.as_ref(), vmid, a, &id)],
                    ));
                }
            }
            if inst.settings.get("tls").map(String::as_str) != Some("true") {
                checks.push(Check::ok("tls", "no TLS: nginx serves HTTP only"));
            } else if let Some(ct) = &ct {
                let ct = ct.clone();
                let cert = format!("/etc/{}/tls/cert.pem", p.name);
                let name = inst.name.clone();
                pending.push(spawn_check(
                    "tls",
                    CT_CHECK_LIMIT,
                    format!("`openssl x509` in CT {vmid}"),
                    move || vec![tls_check(ct.as_ref(), vmid, &cert, &name)],
                ));
            }
            // nginx's address: the IP, with the port when it is not 80.
            let ip = inst.container.ip.clone().map(|ip| {
                crate::deploy::public_base(&ip, &inst.settings)
                    .trim_start_matches("http://")
                    .to_string()
            });
            let recorded = inst.app_version.clone();
            let name = inst.name.clone();
            let ct_version = ct.clone();
            let port = crate::deploy::slot_port(&main, inst.active_slot);
            pending.push(spawn_check(
                "version",
                CT_CHECK_LIMIT,
                "the version probe",
                move || {
                    version_check(
                        ct_version.as_deref(),
                        port,
                        ip.as_deref(),
                        &main,
                        &recorded,
                        vmid,
                        &main_unit,
                        &name,
                    )
                },
            ));
            checks.push(update_check(p, &inst));
        }
        let found = collect(pending, start, vmid, on_check);
        checks.checks.extend(found);
        relate_http_fixes(&mut checks.checks, vmid);
    }
    let checks = checks.checks;
    let healthy = checks.iter().all(|c| c.status != Level::Fail);
    InstanceStatus {
        name: inst.name,
        profile: inst.profile,
        vmid,
        node,
        ip: inst.container.ip,
        healthy,
        checks,
    }
}

/// When the app itself is down, nginx answering 502 is a symptom: point its fix at the unit.
fn relate_http_fixes(checks: &mut [Check], vmid: u32) {
    let slot_failed = checks
        .iter()
        .any(|c| c.id == "http-slot" && c.status == Level::Fail);
    let failed_unit = checks
        .iter()
        .find(|c| c.id.starts_with("unit:") && c.status == Level::Fail)
        .map(|c| c.id.trim_start_matches("unit:").to_string());
    if let Some(unit) = failed_unit.filter(|_| slot_failed) {
        for c in checks.iter_mut() {
            if c.id == "http-nginx" && c.status == Level::Fail {
                c.fix = Some(format!("pct exec {vmid} -- systemctl restart {unit}"));
            }
        }
    }
    // When the dead unit's own fix is not a restart (a container without nesting), the checks
    // that only see its effects point at that fix too.
    let unit_fix = checks
        .iter()
        .find(|c| c.id.starts_with("unit:") && c.status == Level::Fail)
        .map(|c| (c.id.trim_start_matches("unit:").to_string(), c.fix.clone()));
    if let Some((unit, Some(fix))) = unit_fix {
        let restart = format!("pct exec {vmid} -- systemctl restart {unit}");
        if fix != restart {
            for c in checks.iter_mut() {
                if c.fix.as_deref() == Some(restart.as_str()) {
                    c.fix = Some(fix.clone());
                }
            }
        }
    }
}

fn human_duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

fn mib(b: u64) -> u64 {
    b / 1024 / 1024
}

/// The container's IPv4 address now, as the API reports it (a DHCP lease can change).
pub fn live_ip(client: &Client, node: &str, vmid: u32) -> Option<String> {
    client
        .ct_interfaces(node, vmid)
        .ok()?
        .into_iter()
        .filter(|i| i.name != "lo")
        .find_map(|i| i.inet)
        .and_then(|inet| inet.split('/').next().map(str::to_string))
}

/// A warning when the container's address is not the recorded one (a new DHCP lease): the
/// checks then use the new address, and `status` records it.
fn address_check(client: &Client, node: &str, inst: &mut Instance) -> Option<Check> {
    let vmid = inst.container.vmid;
    let live = live_ip(client, node, vmid)?;
    let old = inst.container.ip.clone();
    if old.as_deref() == Some(live.as_str()) {
        return None;
    }
    inst.container.ip = Some(live.clone());
    Some(Check::warn(
        "address",
        format!(
            "CT {vmid} is at {live} now, not {} as recorded (a new DHCP lease): Launch follows it and has recorded it, but bookmarks, DNS records and proxies that point at the old address do not",
            old.as_deref().unwrap_or("(none)")
        ),
        format!("give CT {vmid} a fixed address: a reservation of {live} for its MAC on your DHCP server, or a static IP (`pct config {vmid}` shows its net0)"),
    ))
}

/// The container check when `node` cannot report CT `vmid`: moved to another node of the
/// cluster (a migration; `pct` works only on the node that runs it) or really gone.
fn missing_ct_check(
    client: &Client,
    node: &str,
    vmid: u32,
    name: &str,
    e: &crate::pve::PveError,
) -> Check {
    let elsewhere = client
        .cluster_resources(Some(crate::pve::ResourceType::Vm))
        .ok()
        .and_then(|rows| {
            rows.into_iter()
                .find(|r| r.vmid == Some(vmid) && r.kind == "lxc")
                .and_then(|r| r.node)
        })
        .filter(|n| n != node);
    match elsewhere {
        Some(other) => Check::fail(
            "container",
            format!(
                "CT {vmid} is on node {other} now (migrated): Launch manages it from {node}, where it was installed, and `pct` reaches only containers on its own node; nothing is lost"
            ),
            format!("pct migrate {vmid} {node} --restart  (run on {other}; or from the web UI: Migrate to {node})"),
        ),
        None => Check::fail(
            "container",
            format!("cannot read CT {vmid}'s status: {e}"),
            format!("pct status {vmid}  (if the container is gone, restore it: `launch-tui backups {name}`)"),
        ),
    }
}

pub fn container_checks(st: &CtStatus, vmid: u32) -> Vec<Check> {
    if st.status != "running" {
        return vec![Check::fail(
            "container",
            format!("container is {}", st.status),
            format!("pct start {vmid}"),
        )];
    }
    let mut msg = format!("running, up {}", human_duration(st.uptime.unwrap_or(0)));
    if let Some(cpu) = st.cpu {
        msg.push_str(&format!(", cpu {:.0}%", cpu * 100.0));
    }
    if let (Some(d), Some(md)) = (st.disk, st.maxdisk) {
        msg.push_str(&format!(
            ", disk {:.1}/{:.1} GiB",
            d as f64 / (1u64 << 30) as f64,
            md as f64 / (1u64 << 30) as f64
        ));
    }
    let mut out = vec![Check::ok("container", msg)];
    if let (Some(m), Some(mm)) = (st.mem, st.maxmem.filter(|m| *m > 0)) {
        let pct = m * 100 / mm;
        let msg = format!("{} of {} MiB in use ({pct}%)", mib(m), mib(mm));
        out.push(if pct > MEM_WARN_PCT {
            Check::warn(
                "memory",
                format!("{msg}, over {MEM_WARN_PCT}%"),
                format!("pct set {vmid} --memory {}", (mib(mm) * 3 / 2).max(512)),
            )
        } else {
            Check::ok("memory", msg)
        });
    }
    out
}

fn ct_exec(ct: &dyn CtAccess, vmid: u32, argv: &[&str]) -> std::result::Result<ExecOutput, String> {
    let limit = CT_TIMEOUT_S.to_string();
    let mut full = vec!["timeout", limit.as_str()];
    full.extend_from_slice(argv);
    match ct.exec(vmid, &full) {
        // `timeout` exits 124 when it had to stop the command.
        Ok(o) if o.code == 124 => Err(format!(
            "`{}` did not finish within {CT_TIMEOUT_S} s",
            argv.join(" ")
        )),
        Ok(o) => Ok(o),
        Err(e) => Err(format!(
            "cannot run `{}` in CT {vmid}: {e:#}",
            argv.join(" ")
        )),
    }
}

/// `systemctl show` output as a map.
pub fn parse_show(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub fn unit_check(ct: &dyn CtAccess, vmid: u32, unit: &str) -> Check {
    let id = format!("unit:{unit}");
    let restart = format!("pct exec {vmid} -- systemctl restart {unit}");
    let out = match ct_exec(
        ct,
        vmid,
        &[
            "systemctl",
            "show",
            unit,
            "-p",
            "LoadState,ActiveState,SubState,NRestarts,Result,ExecMainStatus",
        ],
    ) {
        Ok(o) if o.ok() => o,
        Ok(o) => {
            return Check::fail(
                id,
                format!("`systemctl show {unit}` failed: {}", o.tail(3)),
                format!("pct exec {vmid} -- systemctl status {unit}"),
            )
        }
        Err(e) => return Check::fail(id, e, format!("pct exec {vmid} -- systemctl status {unit}")),
    };
    let p = parse_show(&out.stdout);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("?");
    if get("LoadState") == "not-found" {
        return Check::fail(
            id,
            format!("{unit} is not installed in CT {vmid}"),
            format!("pct exec {vmid} -- ls /etc/systemd/system/  (the unit file is missing; restore from a backup: `launch-tui backups NAME`)"),
        );
    }
    let restarts: u64 = get("NRestarts").parse().unwrap_or(0);
    if get("ActiveState") != "active" {
        let last = ct_exec(
            ct,
            vmid,
            &[
                "journalctl",
                "-u",
                unit,
                "-n",
                "1",
                "--no-pager",
                "-o",
                "cat",
            ],
        )
        .map(|o| o.stdout.trim().to_string())
        .unwrap_or_default();
        let mut msg = format!(
            "{unit} is {} ({}), result {}, {restarts} automatic restart(s)",
            get("ActiveState"),
            get("SubState"),
            get("Result")
        );
        if !last.is_empty() {
            msg.push_str(&format!("; last log line: {last}"));
        }
        if get("ExecMainStatus") == "226" {
            // 226/NAMESPACE: systemd could not set up the unit's sandbox (ProtectSystem,
            // PrivateTmp, ...). In a PVE container that means nesting is off: AppArmor then
            // denies the mounts the sandbox needs.
            msg.push_str(&format!(
                "; status 226/NAMESPACE: the unit's sandbox needs its own mount namespace, which CT {vmid} forbids without `features: nesting=1`"
            ));
            return Check::fail(
                id,
                msg,
                format!("pct set {vmid} --features nesting=1 && pct reboot {vmid}"),
            );
        }
        return Check::fail(id, msg, restart);
    }
    if restarts > 0 {
        return Check::warn(
            id,
            format!(
                "{unit} is active ({}), but systemd restarted it {restarts} time(s)",
                get("SubState")
            ),
            format!(
                "pct exec {vmid} -- journalctl -u {unit} -n 50 --no-pager  (find why it crashed)"
            ),
        );
    }
    Check::ok(id, format!("{unit} is active ({})", get("SubState")))
}

/// Free space in percent from `df -P` output: Available / (Used + Available), as df's own
/// Capacity column counts it (the root's reserved blocks are not free to the app).
pub fn parse_df_free_pct(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().nth(1)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let used: u64 = f.get(2)?.parse().ok()?;
    let avail: u64 = f.get(3)?.parse().ok()?;
    let total = used + avail;
    if total == 0 {
        return None;
    }
    Some((avail * 100 / total, avail / 1024))
}

/// Room for the next update: the data copy, a dump, the new release and its build (a source
/// build's package cache, such as npm's), at least the profile's `update_free_mib`. A
/// warning while it is short, so it is fixed before an update is refused for it.
pub fn update_disk_check(ct: &dyn CtAccess, p: &Profile, inst: &Instance) -> Check {
    const ID: &str = "update-disk";
    let vmid = inst.container.vmid;
    match crate::update::disk_room(ct, p, inst, Some(3)) {
        Err(e) => Check::warn(
            ID,
            format!("cannot measure the room for an update: {e:#}"),
            format!("pct exec {vmid} -- df -h /var/lib"),
        ),
        Ok(r) if r.avail >= r.need => Check::ok(
            ID,
            format!("{} MiB free; an update needs {} MiB", r.avail, r.need),
        ),
        Ok(r) => Check::warn(
            ID,
            format!(
                "{} MiB free, but an update needs {} MiB (a copy of the {} MiB of data, a dump, the new release and its build; at least the profile's {} MiB): it would be refused",
                r.avail, r.need, r.data_mib, p.resources.update_free_mib
            ),
            format!(
                "pct resize {vmid} rootfs +{}G  (or free space in the container)",
                (r.need - r.avail).div_ceil(1024).max(1)
            ),
        ),
    }
}

pub fn disk_check(ct: &dyn CtAccess, vmid: u32) -> Check {
    let out = match ct_exec(ct, vmid, &["df", "-P", "/"]) {
        Ok(o) if o.ok() => o,
        Ok(o) => {
            return Check::fail(
                "disk",
                format!("`df -P /` failed: {}", o.tail(3)),
                format!("pct exec {vmid} -- df -h /"),
            )
        }
        Err(e) => return Check::fail("disk", e, format!("pct exec {vmid} -- df -h /")),
    };
    let Some((free, avail_mib)) = parse_df_free_pct(&out.stdout) else {
        return Check::fail(
            "disk",
            format!("cannot read `df -P /` output: {}", out.tail(2)),
            format!("pct exec {vmid} -- df -h /"),
        );
    };
    let msg = format!("{free}% free on / ({avail_mib} MiB)");
    if free >= DISK_WARN_FREE_PCT {
        return Check::ok("disk", msg);
    }
    let largest = ct_exec(
        ct,
        vmid,
        &[
            "sh",
            "-c",
            "du -xh --max-depth=2 / 2>/dev/null | sort -h | tail -5",
        ],
    )
    .map(|o| o.stdout.trim().replace('\n', ", "))
    .unwrap_or_default();
    let fix = format!(
        "pct resize {vmid} rootfs +4G  (or free space; largest paths: {})",
        if largest.is_empty() {
            "unknown".into()
        } else {
            largest
        }
    );
    if free < DISK_FAIL_FREE_PCT {
        Check::fail("disk", format!("{msg}, under {DISK_FAIL_FREE_PCT}%"), fix)
    } else {
        Check::warn("disk", format!("{msg}, under {DISK_WARN_FREE_PCT}%"), fix)
    }
}

/// The command that replaces an instance's certificate.
fn tls_fix(name: &str) -> String {
    format!("launch-tui reconfigure {name} --set tls_cert=FILE --set tls_key=FILE")
}

/// The date in `openssl x509 -enddate -noout` output (`notAfter=Jun  1 12:00:00 2030 GMT`).
pub fn parse_openssl_enddate(text: &str) -> Option<OffsetDateTime> {
    let v = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("notAfter="))?;
    // Days below 10 are padded with a space; one space between fields makes parsing simple.
    let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
    let fmt = time::macros::format_description!(
        "[month repr:short] [day padding:none] [hour]:[minute]:[second] [year] GMT"
    );
    time::PrimitiveDateTime::parse(&v, fmt)
        .ok()
        .map(|t| t.assume_utc())
}

fn day(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    t.format(fmt).unwrap_or_default()
}

/// Warn under 14 days left, fail once expired: browsers refuse the site from that moment.
pub fn tls_expiry_check(
    not_after: OffsetDateTime,
    now: OffsetDateTime,
    cert: &str,
    name: &str,
) -> Check {
    let left = not_after - now;
    let days = left.whole_days();
    if left.is_negative() {
        return Check::fail(
            "tls",
            format!(
                "the certificate {cert} expired on {} ({} day(s) ago): browsers refuse the site",
                day(not_after),
                -days
            ),
            tls_fix(name),
        );
    }
    if days < TLS_WARN_DAYS {
        Check::warn(
            "tls",
            format!(
                "the certificate {cert} expires on {} ({days} day(s) left, under {TLS_WARN_DAYS}): renew it",
                day(not_after)
            ),
            tls_fix(name),
        )
    } else {
        Check::ok(
            "tls",
            format!(
                "the certificate {cert} is valid until {} ({days} day(s) left)",
                day(not_after)
            ),
        )
    }
}

pub fn tls_check(ct: &dyn CtAccess, vmid: u32, cert: &str, name: &str) -> Check {
    let out = match ct_exec(
        ct,
        vmid,
        &["openssl", "x509", "-enddate", "-noout", "-in", cert],
    ) {
        Ok(o) if o.ok() => o,
        Ok(o) => {
            return Check::fail(
                "tls",
                format!("cannot read the certificate {cert}: {}", o.tail(2)),
                tls_fix(name),
            )
        }
        Err(e) => return Check::fail("tls", e, format!("pct exec {vmid} -- ls -l {cert}")),
    };
    match parse_openssl_enddate(&out.stdout) {
        Some(t) => tls_expiry_check(t, OffsetDateTime::now_utc(), cert, name),
        None => Check::fail(
            "tls",
            format!(
                "cannot read the expiry date of {cert} from `{}`",
                out.stdout.trim()
            ),
            format!("pct exec {vmid} -- openssl x509 -noout -dates -in {cert}"),
        ),
    }
}

/// The time in a backup archive's name, `NAME-YYYYMMDDTHHMMSSZ-VERSION.tar.zst` (or
/// `.tar.gz`); `None` for anything else (another instance's archive, a partial file).
pub fn parse_backup_time(name: &str, file: &str) -> Option<OffsetDateTime> {
    crate::backup::archive::parse_file_name(name, file).map(|a| a.created)
}

fn human_age(d: time::Duration) -> String {
    human_duration(d.whole_seconds().max(0) as u64)
}

/// The age of the newest backup in `dir`, by the time in the archives' names (a copied file's
/// mtime says nothing about when the backup was taken). No backup yet is not a problem of the
/// instance (a fresh install has none), so it is an OK line that says how to take one.
pub fn backup_check(dir: &Path, name: &str, now: OffsetDateTime) -> Check {
    let take = format!("launch-tui backup {name}");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::ok("backup", format!("no backup yet: take one with `{take}`"))
        }
        Err(e) => {
            return Check::warn(
                "backup",
                format!("cannot read the backups in {}: {e}", dir.display()),
                format!("ls -ld {}  (then `{take}`)", dir.display()),
            )
        }
    };
    let newest = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            parse_backup_time(name, &file).map(|t| (t, file))
        })
        .max();
    let Some((taken, file)) = newest else {
        return Check::ok(
            "backup",
            format!("no backup yet in {}: take one with `{take}`", dir.display()),
        );
    };
    let age = now - taken;
    let msg = format!("the newest backup is {} old ({file})", human_age(age));
    if age > time::Duration::days(BACKUP_WARN_DAYS) {
        Check::warn(
            "backup",
            format!("{msg}, over {BACKUP_WARN_DAYS} days"),
            take,
        )
    } else {
        Check::ok("backup", msg)
    }
}

fn http_client() -> std::result::Result<reqwest::blocking::Client, String> {
    // The container is on the node's bridge: a proxy from the environment must not be used.
    reqwest::blocking::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

pub fn nginx_http_check(ip: Option<&str>, main: &Component, vmid: u32, main_unit: &str) -> Check {
    let id = "http-nginx";
    let Some(ip) = ip else {
        return Check::fail(
            id,
            "the instance record has no address for the container",
            format!("pct exec {vmid} -- ip -4 addr show eth0  (then put it under container.ip in the record)"),
        );
    };
    let nginx_check = crate::health::ThroughNginx::of(main);
    let url = format!("http://{ip}{}", nginx_check.path);
    let expect = nginx_check.expected();
    let restart_nginx = format!("pct exec {vmid} -- systemctl restart nginx.service");
    let http = match http_client() {
        Ok(h) => h,
        Err(e) => return Check::fail(id, e, restart_nginx),
    };
    match http.get(&url).send() {
        Ok(r) if nginx_check.accepts(&r.status().as_u16().to_string()) => Check::ok(
            id,
            match nginx_check.status {
                Some(_) => format!("{url} answers {expect} through nginx"),
                None => format!("{url} answers {} through nginx", r.status().as_u16()),
            },
        ),
        Ok(r) => Check::fail(
            id,
            format!(
                "{url} answered {} through nginx, expected {expect}",
                r.status()
            ),
            if r.status().as_u16() == 502 {
                format!("pct exec {vmid} -- systemctl restart {main_unit}")
            } else {
                restart_nginx
            },
        ),
        Err(e) if e.is_timeout() => Check::fail(
            id,
            format!("{url} did not answer within {} s", HTTP_TIMEOUT.as_secs()),
            restart_nginx,
        ),
        Err(e) => Check::fail(id, format!("{url}: {e}"), restart_nginx),
    }
}

/// The profile's health check on the active slot, in the container, in its form (HTTP, TCP or
/// a command); the message names the form.
pub fn slot_http_check(
    ct: &dyn CtAccess,
    vmid: u32,
    port: u16,
    main: &Component,
    main_unit: &str,
) -> Check {
    let id = "http-slot";
    let fix = format!("pct exec {vmid} -- systemctl restart {main_unit}");
    let t = crate::health::Target {
        ct,
        vmid,
        component: main,
        port,
    };
    let (what, expect, kind) = (t.what(), t.expected(), main.health.kind());
    match crate::health::probe_once(&t) {
        Ok(a) if a.healthy => Check::ok(
            id,
            format!("{what} answers {expect} in the container ({kind} check)"),
        ),
        Ok(a) => {
            let got = if a.got.is_empty() || a.got == "000" {
                "no connection".to_string()
            } else {
                a.got
            };
            Check::fail(
                id,
                format!("{what} in the container: {got}, expected {expect} ({kind} check)"),
                fix,
            )
        }
        Err(e) => Check::fail(
            id,
            format!("cannot run the {kind} check in CT {vmid}: {e:#}"),
            fix,
        ),
    }
}

/// The running version against the record. Read in the container on the active slot when
/// launch-tui can look inside (any probe form, through `health::running_version`); otherwise an
/// HTTP probe is read through nginx from here, and a command probe cannot run.
#[allow(clippy::too_many_arguments)]
pub fn version_check(
    ct: Option<&dyn CtAccess>,
    port: u16,
    ip: Option<&str>,
    main: &Component,
    recorded: &str,
    vmid: u32,
    main_unit: &str,
    name: &str,
) -> Vec<Check> {
    let id = "version";
    let Some(probe) = &main.health.version else {
        return vec![Check::ok(
            id,
            format!("{recorded} (recorded; the app has no version probe)"),
        )];
    };
    // Outer error: the probe could not be read (a dead app, already failing the health checks);
    // inner: its answer holds no version (the profile's probe may be wrong).
    type Read = std::result::Result<std::result::Result<String, String>, String>;
    let read: Read = match (ct, &probe.path, ip) {
        (Some(ct), _, _) => crate::health::read_version(&crate::health::Target {
            ct,
            vmid,
            component: main,
            port,
        })
        .map(|r| r.unwrap_or_else(|| Err("no version probe".into())))
        .map_err(|e| format!("{e:#}")),
        (None, Some(path), Some(ip)) => {
            let url = format!("http://{ip}{path}");
            http_client()
                .and_then(|h| {
                    let r = h
                        .get(&url)
                        .send()
                        .and_then(|r| r.error_for_status())
                        .map_err(|e| format!("{url}: {e}"))?;
                    let headers: String = r
                        .headers()
                        .iter()
                        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or_default()))
                        .collect();
                    let body = r.text().map_err(|e| format!("{url}: {e}"))?;
                    Ok((headers, body))
                })
                .map(|(headers, body)| {
                    probe
                        .extract(&headers, &body)
                        .map_err(|e| format!("{e} ({})", probe.describe()))
                })
        }
        _ => {
            return vec![Check::ok(
                id,
                format!(
                    "{recorded} (recorded; {} cannot be read from here)",
                    probe.describe()
                ),
            )]
        }
    };
    match read {
        Ok(Ok(running)) if running == recorded => {
            vec![Check::ok(id, format!("{running} (as recorded)"))]
        }
        Ok(Ok(running)) => vec![Check::warn(
            id,
            format!("the app reports {running}, the instance record says {recorded}"),
            format!("pct exec {vmid} -- systemctl restart {main_unit}  (its unit runs the recorded release; or `launch-tui update {name}`)"),
        )],
        Ok(Err(e)) => vec![Check::warn(
            id,
            e,
            format!("launch-tui profiles show {name}  (the profile's version probe may be wrong)"),
        )],
        // A dead app already fails the health checks; this one only says the version is unknown.
        Err(e) => vec![Check::warn(
            id,
            format!("cannot read the running version: {e}"),
            format!("pct exec {vmid} -- systemctl restart {main_unit}"),
        )],
    }
}

/// A newer stable release is news, not a problem: it does not degrade the instance.
pub fn update_check(profile: &Profile, inst: &Instance) -> Check {
    let current = profile
        .versions
        .iter()
        .position(|r| r.version == inst.app_version);
    let latest = profile.latest(Channel::Stable);
    let newer = match (current, latest) {
        (Some(i), Some(l)) => profile
            .versions
            .iter()
            .position(|r| r.version == l.version)
            .filter(|j| *j > i)
            .map(|_| l.version.clone()),
        _ => None,
    };
    match (newer, current) {
        (Some(v), _) => Check::ok(
            "update",
            format!(
                "{v} is available (running {}): launch-tui update {}",
                inst.app_version, inst.name
            ),
        ),
        (None, Some(_)) => Check::ok(
            "update",
            format!("{} is the newest stable release", inst.app_version),
        ),
        (None, None) => Check::ok(
            "update",
            format!(
                "{} is not listed in profile {} any more",
                inst.app_version, profile.name
            ),
        ),
    }
}

/// A service the app uses: its unit active and the server answering with the app's password.
pub fn service_check(
    ct: &dyn CtAccess,
    vmid: u32,
    a: &dyn crate::service::Adapter,
    id: &str,
) -> Check {
    let unit = a.unit();
    let fix = format!("pct exec {vmid} -- systemctl restart {unit}");
    match ct_exec(ct, vmid, &["systemctl", "is-active", unit]) {
        Ok(o) if o.ok() => {}
        Ok(o) => {
            return Check::fail(
                id,
                format!("{}: {unit} is {}", a.title(), o.stdout.trim()),
                fix,
            )
        }
        Err(e) => return Check::fail(id, e, fix),
    }
    match ct_exec(ct, vmid, &["sh", "-c", &a.ping_script()]) {
        Ok(o) if o.ok() => Check::ok(id, format!("{}: {unit} is active and answers", a.title())),
        Ok(_) => Check::fail(
            id,
            format!(
                "{}: {unit} is active but does not answer with the app's password",
                a.title()
            ),
            format!("pct exec {vmid} -- journalctl -u {unit} -n 50"),
        ),
        Err(e) => Check::fail(id, e, fix),
    }
}

pub fn database_check(
    ct: &dyn CtAccess,
    vmid: u32,
    kind: &str,
    file: &str,
    user: &str,
    name: &str,
) -> Check {
    let id = "database";
    let health = crate::database::by_label(kind)
        .map(|a| a.health())
        .unwrap_or(crate::database::Health::External);
    let server = match health {
        crate::database::Health::Unit(unit) => Some(unit),
        crate::database::Health::File => None,
        crate::database::Health::FilesOnly => {
            return Check::ok(id, format!("{kind}: the app keeps its data in files"))
        }
        crate::database::Health::External => {
            return Check::ok(id, format!("{kind}: not checked from the container"))
        }
    };
    if let Some(unit) = server {
        let fix = format!("pct exec {vmid} -- systemctl restart {unit}");
        return match ct_exec(ct, vmid, &["systemctl", "is-active", unit]) {
            Ok(o) if o.ok() => Check::ok(id, format!("{kind}: {unit} is active")),
            Ok(o) => Check::fail(id, format!("{kind}: {unit} is {}", o.stdout.trim()), fix),
            Err(e) => Check::fail(id, e, fix),
        };
    }
    // Readable by the app's own user, which is what matters, not by root.
    let script = format!(
        "if [ ! -e '{file}' ]; then echo missing; elif runuser -u '{user}' -- test -r '{file}'; then echo readable; else echo unreadable; fi"
    );
    match ct_exec(ct, vmid, &["sh", "-c", &script]).map(|o| o.stdout.trim().to_string()) {
        Ok(s) if s == "readable" => Check::ok(id, format!("{kind}: {file} is readable by {user}")),
        Ok(s) if s == "missing" => Check::fail(
            id,
            format!("{kind}: {file} does not exist"),
            format!("launch-tui backups {name}  (then `launch-tui restore {name} ARCHIVE`)"),
        ),
        Ok(s) => Check::fail(
            id,
            format!("{kind}: {file} is not readable by {user} ({s})"),
            format!("pct exec {vmid} -- chown {user}:{user} {file}"),
        ),
        Err(e) => Check::fail(id, e, format!("pct exec {vmid} -- ls -l {file}")),
    }
}

pub fn render_text(report: &Report, color: bool) -> String {
    let paint = |level: Level, s: String| -> String {
        if !color {
            return s;
        }
        let code = match level {
            Level::Ok => "32",
            Level::Warn => "33",
            Level::Fail => "1;31",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    };
    let mut out = String::new();
    for i in &report.instances {
        let state = if i.healthy {
            paint(Level::Ok, "HEALTHY".into())
        } else {
            paint(Level::Fail, "UNHEALTHY".into())
        };
        out.push_str(&format!(
            "{}: {state}  (profile {}, CT {} on {}, {})\n",
            i.name,
            i.profile,
            i.vmid,
            i.node,
            i.ip.as_deref().unwrap_or("no address")
        ));
        let width = i.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in &i.checks {
            out.push_str(&format!(
                "  {}  {:<width$}  {}\n",
                paint(c.status, format!("{:<4}", c.status.label())),
                c.id,
                c.message
            ));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("        {:<width$}  fix: {fix}\n", ""));
            }
        }
    }
    out.trim_end().to_string()
}

/// Prometheus textfile-collector format (node_exporter's `--collector.textfile.directory`).
pub fn prometheus(report: &Report) -> String {
    let mut out = String::from(
        "# HELP launch_instance_healthy 1 when no check of the instance failed.\n# TYPE launch_instance_healthy gauge\n",
    );
    for i in &report.instances {
        out.push_str(&format!(
            "launch_instance_healthy{{instance=\"{}\"}} {}\n",
            i.name,
            u8::from(i.healthy)
        ));
    }
    out.push_str(
        "# HELP launch_check_status 0 ok, 1 warn, 2 fail.\n# TYPE launch_check_status gauge\n",
    );
    for i in &report.instances {
        for c in &i.checks {
            out.push_str(&format!(
                "launch_check_status{{instance=\"{}\",check=\"{}\"}} {}\n",
                i.name,
                c.id.replace('"', ""),
                c.status as u8
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_free_percent() {
        let df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 1000 850 100 90% /\n";
        // 100 / (850 + 100)
        assert_eq!(parse_df_free_pct(df), Some((10, 0)));
        assert_eq!(parse_df_free_pct("garbage"), None);
        assert_eq!(parse_df_free_pct("h\n/dev/x 0 0 0 0% /\n"), None);
    }

    #[test]
    fn a_hanging_check_is_reported_by_name_and_the_others_still_arrive() {
        let start = Instant::now();
        let pending = vec![
            spawn_check(
                "slow",
                Duration::from_millis(200),
                "`sleep` in CT 7",
                || {
                    std::thread::sleep(Duration::from_secs(3));
                    vec![Check::ok("slow", "never seen")]
                },
            ),
            spawn_check("fast", Duration::from_millis(200), "echo", || {
                vec![Check::ok("fast", "done")]
            }),
        ];
        let got = collect(pending, start, 7, &|_| {});
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "waited for the hung check"
        );
        assert_eq!(got[0].id, "slow");
        assert_eq!(got[0].status, Level::Fail);
        assert!(
            got[0].message.contains("`sleep` in CT 7 did not answer"),
            "{}",
            got[0].message
        );
        assert!(got[0]
            .fix
            .as_deref()
            .unwrap_or_default()
            .contains("pct exec 7"));
        assert_eq!(got[1], Check::ok("fast", "done"));
    }

    #[test]
    fn each_check_goes_out_when_it_returns_and_the_report_keeps_the_start_order() {
        // `slow` returns only after `fast` has been handed on: if checks were passed on in
        // the order they started, this would wait for `slow`'s limit and call it hanging.
        let (seen_tx, seen_rx) = mpsc::channel::<()>();
        let seen_tx = std::sync::Mutex::new(seen_tx);
        let pending = vec![
            spawn_check("slow", Duration::from_secs(600), "slow", move || {
                let _ = seen_rx.recv();
                vec![Check::ok("slow", "after fast")]
            }),
            spawn_check("fast", Duration::from_secs(600), "fast", || {
                vec![Check::ok("fast", "first")]
            }),
        ];
        let order = std::sync::Mutex::new(Vec::new());
        let got = collect(pending, Instant::now(), 7, &|c| {
            order.lock().unwrap().push(c.id.clone());
            if c.id == "fast" {
                let _ = seen_tx.lock().unwrap().send(());
            }
        });
        assert_eq!(*order.lock().unwrap(), ["fast", "slow"]);
        let ids: Vec<&str> = got.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["slow", "fast"]);
        assert_eq!(got[0].message, "after fast");
    }

    /// A Proxmox VE that reports every container stopped.
    struct Stopped;

    impl crate::pve::Transport for Stopped {
        fn call(
            &self,
            _req: &crate::pve::ApiRequest,
        ) -> std::result::Result<serde_json::Value, crate::pve::PveError> {
            Ok(json!({ "status": "stopped", "mem": 0, "maxmem": 0, "uptime": 0, "cpu": 0 }))
        }
    }

    /// The room for the next update: what the update's preflight measures, a warning with the
    /// resize that fixes it while it is short (a LibreChat build needs its npm cache's room).
    #[test]
    fn update_disk_warns_before_an_update_would_be_refused() {
        struct Df(&'static str);
        impl CtAccess for Df {
            fn exec(&self, _: u32, argv: &[&str]) -> anyhow::Result<ExecOutput> {
                let script = argv.join(" ");
                assert!(script.contains("df -Pk /var/lib"), "{argv:?}");
                // Status bounds `du`, so a data directory of many files cannot slow it.
                assert!(script.contains("timeout 3 du -sk"), "{argv:?}");
                Ok(ExecOutput {
                    code: 0,
                    stdout: self.0.into(),
                    stderr: String::new(),
                })
            }
            fn write(
                &self,
                _: u32,
                _: &str,
                _: &[u8],
                _: u32,
                _: Option<&str>,
            ) -> anyhow::Result<()> {
                unreachable!()
            }
            fn push(
                &self,
                _: u32,
                _: &Path,
                _: &str,
                _: u32,
                _: Option<&str>,
            ) -> anyhow::Result<()> {
                unreachable!()
            }
        }
        let p = crate::profile::Catalog::new(Path::new("/nonexistent"))
            .load("librechat")
            .unwrap()
            .profile;
        assert_eq!(p.resources.update_free_mib, 6144);
        let inst: Instance = serde_json::from_value(json!({
            "name": "chat", "profile": "librechat", "app_version": "v0.8.6",
            "container": { "node": "pve", "vmid": 120, "hostname": "chat", "storage": "local" },
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        // 2 GiB free, 100 MiB of data: short of the profile's 6 GiB.
        let short = Df("/dev/loop0 16000000 13900000 2097152 87% /\n102400\n");
        let c = update_disk_check(&short, &p, &inst);
        assert_eq!(c.status, Level::Warn, "{c:?}");
        assert!(
            c.message
                .contains("2048 MiB free, but an update needs 6144 MiB"),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("pct resize 120 rootfs +4G  (or free space in the container)")
        );
        // 6000 MiB free (more than the minimum), 3 GiB of data: the copy and the dump need more.
        let data = Df("/dev/loop0 16000000 5000000 6144000 40% /\n3145728\n");
        let c = update_disk_check(&data, &p, &inst);
        assert_eq!(c.status, Level::Warn, "{c:?}");
        assert!(
            c.message
                .contains("6000 MiB free, but an update needs 6400 MiB (a copy of the 3072 MiB"),
            "{c:?}"
        );
        let roomy = Df("/dev/loop0 32000000 5000000 20971520 20% /\n102400\n");
        let c = update_disk_check(&roomy, &p, &inst);
        assert_eq!(c.status, Level::Ok, "{c:?}");
        assert_eq!(c.message, "20480 MiB free; an update needs 6144 MiB");
    }

    #[test]
    fn status_runs_as_a_plan_whose_checks_arrive_as_events_before_the_report() {
        use crate::engine::Event;
        let inst = |name: &str, vmid: u32| -> Instance {
            serde_json::from_value(json!({
                "name": name, "profile": "no-such-profile", "app_version": "1.0.0",
                "container": { "node": "pve", "vmid": vmid, "hostname": name, "storage": "local" },
                "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"
            }))
            .unwrap()
        };
        let run = StatusRun {
            client: Arc::new(Client::new(Box::new(Stopped))),
            ct: Err("no pct here".into()),
            targets: vec![
                (inst("alpha", 901), Err("not found".into())),
                (inst("beta", 902), Err("not found".into())),
            ],
            store: InstanceStore::new(Path::new("/nonexistent/launch-status-test")),
            prometheus: None,
            report: None,
            error: None,
        };
        let h = crate::engine::spawn(plan(), run, false);
        let events: Vec<Event> = h.events.iter().collect();
        let (run, result) = h.join.join().unwrap();
        result.unwrap();
        let report = run.report.unwrap();
        // One event per check, each on its own, all before the last event.
        let checks: Vec<(String, Check)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Check { target, check, .. } => Some((target.clone(), check.clone())),
                _ => None,
            })
            .collect();
        let in_report: usize = report.instances.iter().map(|i| i.checks.len()).sum();
        assert!(in_report >= 4, "{report:?}");
        assert_eq!(checks.len(), in_report);
        for i in &report.instances {
            for c in &i.checks {
                assert!(
                    checks.contains(&(i.name.clone(), c.clone())),
                    "{} {c:?} never arrived as an event",
                    i.name
                );
            }
        }
        let last_check = events
            .iter()
            .rposition(|e| matches!(e, Event::Check { .. }))
            .unwrap();
        let Some(Event::Finished {
            ok: true,
            report: Some(data),
            ..
        }) = events.last()
        else {
            panic!("the last event is not Finished with a report: {events:?}");
        };
        assert!(last_check < events.len() - 1);
        assert_eq!(*data, serde_json::to_value(&report).unwrap());
        assert_eq!(data["instances"][0]["name"], "alpha");
        assert_eq!(data["instances"][0]["healthy"], false);
        assert!(report.instances[1]
            .checks
            .iter()
            .any(|c| c.id == "container" && c.status == Level::Fail));
    }

    #[test]
    fn systemctl_show_parses() {
        let p = parse_show("ActiveState=failed\nSubState=failed\nNRestarts=3\nResult=exit-code\n");
        assert_eq!(p["ActiveState"], "failed");
        assert_eq!(p["NRestarts"], "3");
    }

    fn st(status: &str, mem: u64, maxmem: u64) -> CtStatus {
        serde_json::from_value(json!({
            "status": status, "mem": mem, "maxmem": maxmem, "uptime": 3725, "cpu": 0.05
        }))
        .unwrap()
    }

    #[test]
    fn stopped_container_says_how_to_start_it() {
        let c = container_checks(&st("stopped", 0, 0), 105);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, Level::Fail);
        assert_eq!(c[0].message, "container is stopped");
        assert_eq!(c[0].fix.as_deref(), Some("pct start 105"));
    }

    #[test]
    fn memory_warns_over_80_percent() {
        let c = container_checks(&st("running", 900 << 20, 1000 << 20), 105);
        assert!(c[0].message.contains("up 1h 02m"), "{}", c[0].message);
        assert_eq!(c[1].id, "memory");
        assert_eq!(c[1].status, Level::Warn);
        assert_eq!(c[1].fix.as_deref(), Some("pct set 105 --memory 1500"));
        let c = container_checks(&st("running", 500 << 20, 1000 << 20), 105);
        assert_eq!(c[1].status, Level::Ok);
    }

    #[test]
    fn http_fix_points_at_the_dead_unit() {
        let restart = "pct exec 1 -- systemctl restart app-blue.service";
        let mut checks = vec![
            Check::fail("unit:app-blue.service", "dead", restart),
            Check::fail(
                "http-nginx",
                "502",
                "pct exec 1 -- systemctl restart nginx.service",
            ),
            Check::fail("http-slot", "no connection", restart),
        ];
        relate_http_fixes(&mut checks, 1);
        assert_eq!(checks[1].fix.as_deref(), Some(restart));
        // A unit that cannot start without nesting: every effect points at that fix.
        let nesting = "pct set 1 --features nesting=1 && pct reboot 1";
        checks[0].fix = Some(nesting.into());
        relate_http_fixes(&mut checks, 1);
        assert_eq!(checks[1].fix.as_deref(), Some(nesting));
        assert_eq!(checks[2].fix.as_deref(), Some(nesting));
    }

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn openssl_enddate_parses() {
        assert_eq!(
            parse_openssl_enddate("notAfter=Jun  1 12:00:05 2030 GMT\n"),
            Some(at("2030-06-01T12:00:05Z"))
        );
        assert_eq!(
            parse_openssl_enddate("notAfter=Dec 24 00:00:00 2029 GMT"),
            Some(at("2029-12-24T00:00:00Z"))
        );
        assert_eq!(parse_openssl_enddate("notAfter=soon"), None);
        assert_eq!(parse_openssl_enddate("unable to load certificate"), None);
    }

    #[test]
    fn tls_warns_under_14_days_and_fails_once_expired() {
        let now = at("2030-01-01T00:00:00Z");
        let cert = "/etc/vikunja/tls/cert.pem";
        let fix = "launch-tui reconfigure v --set tls_cert=FILE --set tls_key=FILE";
        let c = tls_expiry_check(at("2030-03-01T00:00:00Z"), now, cert, "v");
        assert_eq!(c.status, Level::Ok, "{c:?}");
        assert!(
            c.message
                .contains("valid until 2030-03-01 (59 day(s) left)"),
            "{c:?}"
        );
        let c = tls_expiry_check(at("2030-01-11T00:00:00Z"), now, cert, "v");
        assert_eq!(c.status, Level::Warn);
        assert!(
            c.message
                .contains("expires on 2030-01-11 (10 day(s) left, under 14): renew it"),
            "{c:?}"
        );
        assert_eq!(c.fix.as_deref(), Some(fix));
        let c = tls_expiry_check(at("2029-12-29T00:00:00Z"), now, cert, "v");
        assert_eq!(c.status, Level::Fail);
        assert!(
            c.message.contains("expired on 2029-12-29 (3 day(s) ago)"),
            "{c:?}"
        );
        assert_eq!(c.fix.as_deref(), Some(fix));
    }

    #[test]
    fn backup_names_parse() {
        let t = parse_backup_time("vikunja-2", "vikunja-2-20261127T160509Z-v2.5.0-rc1.tar.zst");
        assert_eq!(t, Some(at("2026-11-27T16:05:09Z")));
        assert!(parse_backup_time("vikunja", "vikunja-20261127T160509Z-v1.tar.gz").is_some());
        // Another instance whose name starts the same, partial files, other suffixes.
        assert_eq!(
            parse_backup_time("vikunja", "vikunja-2-20261127T160509Z-v1.tar.zst"),
            None
        );
        assert_eq!(
            parse_backup_time("vikunja", ".vikunja-20261127T160509Z-v1.tar.zst.partial"),
            None
        );
        assert_eq!(
            parse_backup_time("vikunja", "vikunja-20261127T160509Z-v1.zip"),
            None
        );
        assert_eq!(
            parse_backup_time("vikunja", "vikunja-20261327T160509Z-v1.tar.gz"),
            None
        );
        assert_eq!(
            parse_backup_time("vikunja", "vikunja-20261127T160509Z-.tar.gz"),
            None
        );
    }

    #[test]
    fn backup_age_from_the_newest_archive() {
        let d = tempfile::tempdir().unwrap();
        let now = at("2030-01-20T12:00:00Z");
        let gone = d.path().join("none");
        let c = backup_check(&gone, "v", now);
        assert_eq!(c.status, Level::Ok);
        assert!(c.message.contains("no backup yet"), "{c:?}");
        assert!(c.message.contains("`launch-tui backup v`"), "{c:?}");
        assert_eq!(c.fix, None);

        let dir = d.path().join("v");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        let c = backup_check(&dir, "v", now);
        assert_eq!(c.status, Level::Ok);
        assert!(c.message.contains("no backup yet"), "{c:?}");

        // 9 days old: a warning with the command.
        std::fs::write(dir.join("v-20300111T120000Z-v1.0.0.tar.gz"), "").unwrap();
        let c = backup_check(&dir, "v", now);
        assert_eq!(c.status, Level::Warn, "{c:?}");
        assert!(c.message.contains("9d 0h old"), "{c:?}");
        assert_eq!(c.fix.as_deref(), Some("launch-tui backup v"));

        // A newer one (by its name, whatever the files' times) makes it fresh again.
        std::fs::write(dir.join("v-20300120T090000Z-v1.0.0.tar.zst"), "").unwrap();
        let c = backup_check(&dir, "v", now);
        assert_eq!(c.status, Level::Ok, "{c:?}");
        assert!(
            c.message
                .contains("3h 00m old (v-20300120T090000Z-v1.0.0.tar.zst)"),
            "{c:?}"
        );
    }

    #[test]
    fn json_schema_is_stable() {
        let r = Report {
            instances: vec![InstanceStatus {
                name: "v".into(),
                profile: "vikunja".into(),
                vmid: 105,
                node: "pve".into(),
                ip: None,
                healthy: false,
                checks: vec![
                    Check::ok("container", "running"),
                    Check::fail("disk", "5% free", "pct resize 105 rootfs +4G"),
                ],
            }],
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"instances": [{"name": "v", "profile": "vikunja", "vmid": 105, "node": "pve",
                "ip": null, "healthy": false, "checks": [
                    {"id": "container", "status": "ok", "message": "running"},
                    {"id": "disk", "status": "fail", "message": "5% free", "fix": "pct resize 105 rootfs +4G"}]}]})
        );
        let text = render_text(&r, false);
        assert!(text.contains("FAIL  disk"), "{text}");
        assert!(text.contains("fix: pct resize 105 rootfs +4G"), "{text}");
        let prom = prometheus(&r);
        assert!(
            prom.contains("launch_instance_healthy{instance=\"v\"} 0"),
            "{prom}"
        );
        assert!(prom.contains("launch_check_status{instance=\"v\",check=\"disk\"} 2"));
    }
}
