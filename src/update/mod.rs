//! `launch-tui update NAME` and `launch-tui rollback NAME`: a blue-green switch behind nginx.
//! The new release starts in the other slot on a copy of the data while writes are held,
//! passes the health gate, and only then gets the traffic; nginx's switch is proven by a request
//! through it. One operation per instance at a time (the instance lock); a journal makes a run
//! that was cut off finishable or undoable by the next command.

pub mod journal;
pub mod proxy;
pub mod report;
pub mod steps;

use std::time::{Duration, Instant};

use anyhow::anyhow;

use crate::connect::connect;
use crate::ct::{CtAccess, Pct};
use crate::engine::render::{operation_log_path, timestamp, OperationViews};
use crate::engine::{execute, FnStep, Plan};
use crate::error::{LaunchError, Result};
use crate::instance::{Instance, InstanceStore};
use crate::oplock::{hostname, lock_instance, InstanceLock};
use crate::profile::{Catalog, Channel, Profile};
use crate::prompt::Prompter;
use crate::release::ReleaseCache;
use crate::render::Layout;
use crate::report::{Outcome, Output};
use crate::site::Site;
use journal::Journal;
use steps::{Ctx, Metrics, Mode};

/// What to update, as plain data (no clap types): the CLI builds it from its flags, the
/// dashboard from its update screen.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    pub name: String,
    /// A specific release instead of the newest the channel allows.
    pub version: Option<String>,
    /// Only report what would be done (`--check`).
    pub check: bool,
    pub channel: Channel,
    /// How long to wait for another operation on the instance to finish.
    pub wait: Duration,
    /// How long to watch the new version's health after the switch; None: the profile's (30 s).
    pub watch: Option<Duration>,
}

/// What to roll back, as plain data.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub name: String,
    /// The whole container back to its pre-update Proxmox snapshot.
    pub snapshot: bool,
    pub wait: Duration,
    pub watch: Option<Duration>,
    /// Confirmed already (`--yes`): nothing is asked.
    pub confirmed: bool,
}

/// `v2.10.1` sorts after `v2.9.0`: numbers compare as numbers.
pub fn version_key(v: &str) -> Vec<u64> {
    v.trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Components that must move with the app: every installed extra component must be at least
/// the version the target release `requires`. Checked before anything changes.
pub fn check_requires(profile: &Profile, inst: &Instance, target: &str) -> Result<()> {
    let Some(rel) = profile.release(target) else {
        return Ok(());
    };
    let problems: Vec<crate::error::InvalidValue> = rel
        .requires
        .iter()
        .filter_map(|(comp, min)| {
            let have = inst.components.get(comp)?;
            (version_key(have) < version_key(min)).then(|| crate::error::InvalidValue {
                field: format!("{comp} (installed with {})", inst.name),
                value: have.clone(),
                problem: format!("{} {target} needs {comp} {min} or newer", profile.title),
                help: format!(
                    "choose a release that works with {comp} {have} (--version; see `launch-tui profiles show {}`), or update {comp} first",
                    profile.name
                ),
            })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LaunchError::InvalidValues(problems))
    }
}

fn open(g: &Site, name: &str) -> Result<(Profile, Instance)> {
    let inst = InstanceStore::new(&g.config).load(name)?;
    let profile = Catalog::new(&g.config).load(&inst.profile)?.profile;
    Ok((profile, inst))
}

fn pct() -> Result<Box<dyn CtAccess>> {
    Ok(Box::new(Pct::find()?))
}

/// What upstream announces as its newest release (None when the profile names no source).
fn upstream_latest(profile: &Profile) -> Option<std::result::Result<String, String>> {
    let up = profile.upstream.as_ref()?;
    let got = (|| -> anyhow::Result<String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .user_agent(concat!("launch-tui/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let v: serde_json::Value = http
            .get(up.latest.as_str())
            .send()?
            .error_for_status()?
            .json()?;
        v[&up.field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no `{}` in its answer", up.field))
    })();
    Some(got.map_err(|e| format!("{} did not answer: {e:#}", up.latest.as_str())))
}

/// The newest release the profile allows on `channel` (stable only, or stable and unstable).
fn newest(profile: &Profile, channel: Channel) -> Option<String> {
    profile
        .versions
        .iter()
        .filter(|r| channel == Channel::Unstable || r.channel == Channel::Stable)
        .map(|r| r.version.clone())
        .max_by_key(|v| version_key(v))
}

fn ctx(
    g: &Site,
    profile: Profile,
    inst: Instance,
    journal: Journal,
    mode: Mode,
    watch: Duration,
    client: Option<crate::pve::Client>,
) -> Result<Ctx> {
    let loaded = Catalog::new(&g.config).load(profile.name.as_str())?;
    let store = InstanceStore::new(&g.config);
    Ok(Ctx {
        ct: pct()?,
        client,
        loaded,
        profile,
        inst,
        store,
        releases: ReleaseCache::new(crate::install::cache_dir().join("releases")),
        journal,
        mode,
        watch,
        metrics: Metrics::default(),
    })
}

/// Runs a one-step "recover" plan for an unfinished operation found in the journal (the caller
/// holds the instance lock, so its process is gone). Returns what was done.
fn recover_locked(
    g: &Site,
    out: &Output,
    profile: Profile,
    inst: Instance,
    journal: Journal,
) -> Result<String> {
    let name = inst.name.clone();
    let client = connect(g).ok().map(|c| c.client);
    let mode = if journal.operation == "rollback" {
        Mode::Rollback
    } else {
        Mode::Update
    };
    let mut c = ctx(g, profile, inst, journal, mode, Duration::ZERO, client)?;
    let log_path = operation_log_path(&name, "recover");
    let done = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let said = done.clone();
    let plan = Plan::new("recover", Some(name.clone())).step(FnStep::new(
        "recover",
        "Finishing or undoing the interrupted operation",
        move |c: &mut Ctx, rep| {
            let what = steps::recover(c, rep)?;
            rep.info(what.clone());
            *said.lock().unwrap() = what;
            Ok(())
        },
    ));
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    execute(plan, &mut c, &mut views.all(), true).map_err(|e| {
        LaunchError::Failed(anyhow!(
            "could not finish or undo the interrupted operation on {name}: {e}\n  help: the journal stays in {}; see the log {} and run the command again",
            Journal::path(&name).display(),
            log_path.display()
        ))
    })?;
    let what = done.lock().unwrap().clone();
    Ok(what)
}

/// For `status`: finishes or undoes an operation that was cut off, when no process runs it any
/// more. Returns what was done, or None when there was nothing to do (or it still runs).
pub fn recover_unfinished(g: &Site, out: &Output, name: &str) -> Result<Option<String>> {
    if Journal::load(name)?.is_none() {
        return Ok(None);
    }
    let (profile, inst) = open(g, name)?;
    let vmid = inst.container.vmid;
    let _lock = match lock_instance(name, "recover", Duration::ZERO, pct()?, vmid) {
        Ok(l) => l,
        Err(LaunchError::Locked(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Read again under the lock: the holder may have just finished.
    let Some(journal) = Journal::load(name)? else {
        return Ok(None);
    };
    recover_locked(g, out, profile, inst, journal).map(Some)
}

fn lock(out: &Output, name: &str, op: &str, wait: Duration, vmid: u32) -> Result<InstanceLock> {
    let l = lock_instance(name, op, wait, pct()?, vmid)?;
    if let Some(h) = &l.took_over {
        out.warn(format!(
            "took over the lock left by `{}` (pid {} on {}, since {}), which is no longer running",
            h.operation, h.pid, h.host, h.since
        ));
    }
    Ok(l)
}

/// The room an update needs in the container, and what it has.
pub struct DiskRoom {
    /// MiB free where the releases, data and dumps live (`/var/lib`'s filesystem).
    pub avail: u64,
    /// The data copy for the new slot, a dump of the same size and room for the release; at
    /// least the profile's `update_free_mib` (a source build with its package cache).
    pub need: u64,
    pub data_mib: u64,
}

/// Measures [`DiskRoom`] in the container (`df` and `du`, read-only): the update's preflight
/// and `status` ask the same question. With `du_limit_s`, `du` (slow on a data directory of many
/// files) gets that long; past it the data's size counts as 0 and only the profile's minimum
/// is asked for (status stays quick; the update itself measures without a limit).
pub fn disk_room(
    ct: &dyn CtAccess,
    profile: &Profile,
    inst: &Instance,
    du_limit_s: Option<u32>,
) -> anyhow::Result<DiskRoom> {
    let data = Layout::data_dir(profile.name.as_str(), inst.active_slot);
    let du = match du_limit_s {
        Some(s) => format!("timeout {s} du -sk {data}"),
        None => format!("du -sk {data}"),
    };
    let out = crate::ct::sh(
        ct,
        inst.container.vmid,
        &format!("df -Pk /var/lib | tail -1; {du} 2>/dev/null | cut -f1"),
    )?;
    let mut lines = out.stdout.lines();
    let avail_kib: u64 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("cannot read `df -Pk /var/lib`: {}", out.stdout.trim()))?;
    let data_kib: u64 = lines
        .next()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let data_mib = data_kib.div_ceil(1024);
    Ok(DiskRoom {
        avail: avail_kib / 1024,
        need: (data_mib * 2 + 256).max(profile.resources.update_free_mib),
        data_mib,
    })
}

/// Enough free disk in the container for the data copy, a dump and the new release (at least
/// the profile's minimum), checked before anything changes.
fn preflight_disk(ct: &dyn CtAccess, profile: &Profile, inst: &Instance) -> Result<String> {
    let vmid = inst.container.vmid;
    let DiskRoom {
        avail,
        need,
        data_mib,
    } = disk_room(ct, profile, inst, None).map_err(LaunchError::Failed)?;
    if avail < need {
        let big = crate::ct::sh(
            ct,
            vmid,
            "du -xk --max-depth=3 / 2>/dev/null | sort -rn | sed -n '2,7p'",
        )
        .map(|o| o.stdout)
        .unwrap_or_default();
        let largest: Vec<String> = big
            .lines()
            .filter_map(|l| {
                let (k, path) = l.split_once('\t')?;
                Some(format!(
                    "    {:>6} MiB  {path}",
                    k.trim().parse::<u64>().ok()? / 1024
                ))
            })
            .collect();
        return Err(LaunchError::Failed(anyhow!(
            "CT {vmid} has {avail} MiB free; the update needs {need} MiB (a copy of the {data_mib} MiB of data, a dump, the new release; at least the profile's {} MiB). Nothing was changed.\n  largest paths in the container:\n{}\n  help: free space in the container, or grow its disk: `pct resize {vmid} rootfs +{}G`",
            profile.resources.update_free_mib,
            largest.join("\n"),
            (need - avail).div_ceil(1024).max(1)
        )));
    }
    Ok(format!("{avail} MiB free, {need} MiB needed"))
}

/// The person's yes, asked through `ask` (the front end's way of asking; None when nobody can
/// be asked, e.g. no terminal) unless the request says it is confirmed already.
fn confirm(
    confirmed: bool,
    ask: Option<&mut dyn Prompter>,
    what: &str,
    question: &str,
) -> Result<()> {
    if confirmed {
        return Ok(());
    }
    let Some(ask) = ask else {
        return Err(LaunchError::bad_input(
            what,
            "this needs confirmation and there is no terminal to ask on",
            "read the warning above, then pass --yes to confirm",
        ));
    };
    let ok = ask.confirm("confirm", question, false).unwrap_or(false);
    if !ok {
        return Err(LaunchError::bad_input(
            what,
            "not confirmed; nothing was changed",
            "pass --yes to confirm",
        ));
    }
    Ok(())
}

fn new_journal(
    op: &str,
    inst: &Instance,
    to_version: &str,
    to_slot: crate::instance::Slot,
) -> Journal {
    Journal {
        operation: op.into(),
        instance: inst.name.clone(),
        from_version: inst.app_version.clone(),
        to_version: to_version.into(),
        from_slot: inst.active_slot,
        to_slot,
        new_release: false,
        started: timestamp(),
        pid: std::process::id(),
        host: hostname(),
        snapshot: None,
        backup: None,
        dump: None,
        db_loaded: false,
        previous_dump: None,
        steps_done: Vec::new(),
    }
}

/// Runs an update or rollback plan and turns its end into an outcome.
fn switch_plan(
    out: &Output,
    c: &mut Ctx,
    name: &str,
    op: &str,
) -> Result<(Duration, std::path::PathBuf)> {
    let log_path = operation_log_path(name, op);
    let plan = steps::plan(c);
    crate::engine::handle_interrupts();
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    let t = Instant::now();
    match execute(plan, c, &mut views.all(), false) {
        Ok(()) => Ok((t.elapsed(), log_path)),
        Err(e) => {
            let clean = e.undo_failures.is_empty();
            if clean {
                let _ = c.journal.remove();
            }
            Err(LaunchError::Failed(anyhow!(
                "{op} of {name} to {} failed: {e}\n  {}\n  log: {}",
                c.journal.to_version,
                if clean {
                    format!(
                        "{} still serves: everything the {op} changed was undone",
                        c.journal.from_version
                    )
                } else {
                    format!(
                        "not everything could be undone; the next `launch-tui status {name}` or `launch-tui {op} {name}` finishes the cleanup (journal: {})",
                        Journal::path(name).display()
                    )
                },
                log_path.display()
            )))
        }
    }
}

pub fn run(g: &Site, a: &UpdateRequest, out: &Output) -> Result<Outcome> {
    // A restore that was cut off is finished or undone first (it takes the lock itself), so
    // what follows reads the record it left.
    if let Some(what) = crate::backup::recover_unfinished(g, out, &a.name)? {
        out.note(what);
    }
    let (profile, inst) = open(g, &a.name)?;
    if let Some(v) = &a.version {
        let Some(rel) = profile.release(v) else {
            let known: Vec<&str> = profile
                .versions
                .iter()
                .map(|r| r.version.as_str())
                .collect();
            return Err(LaunchError::bad_input(
                format!("--version {v}"),
                format!("profile `{}` offers no such release", profile.name),
                format!("choose one of: {}", known.join(", ")),
            ));
        };
        if rel.channel == Channel::Unstable && a.channel == Channel::Stable {
            return Err(LaunchError::bad_input(
                format!("--version {v}"),
                "this is an unstable build",
                "add --channel unstable to take it",
            ));
        }
    }
    let Some(newest) = newest(&profile, a.channel) else {
        return Err(LaunchError::bad_input(
            format!("--channel {:?}", a.channel).to_lowercase(),
            format!(
                "profile `{}` offers no release on this channel",
                profile.name
            ),
            "use --channel stable",
        ));
    };
    let target = a.version.clone().unwrap_or(newest.clone());
    check_requires(&profile, &inst, &target)?;
    let ct = pct()?;
    let vmid = inst.container.vmid;
    let probed = crate::health::running_version(&crate::health::Target {
        ct: ct.as_ref(),
        vmid,
        component: &profile.components[0],
        port: crate::deploy::slot_port(&profile.components[0], inst.active_slot),
    });
    // Why the running version is unknown, in words: no probe in the profile, a probe whose
    // answer lacks the field, or an app that did not answer.
    let unknown = match &probed {
        Ok(Some(_)) => String::new(),
        Ok(None) => "unknown (the profile has no version probe)".to_string(),
        Err(e) => format!("unknown ({e:#})"),
    };
    let running = probed.ok().flatten();
    let pending = Journal::load(&a.name).map_err(LaunchError::Failed)?;
    if a.check {
        let upstream = upstream_latest(&profile);
        let upstream_newer =
            matches!(&upstream, Some(Ok(v)) if version_key(v) > version_key(&newest));
        let report = report::CheckReport {
            instance: a.name.clone(),
            recorded: inst.app_version.clone(),
            running,
            running_unknown: unknown,
            channel: format!("{:?}", a.channel).to_lowercase(),
            update_available: version_key(&target) > version_key(&inst.app_version),
            commit: profile.release(&target).and_then(|r| r.commit.clone()),
            newest,
            target,
            asked_version: a.version.clone(),
            upstream_newer,
            upstream: upstream.map(|u| match u {
                Ok(v) => report::Upstream {
                    latest: Some(v),
                    error: None,
                },
                Err(e) => report::Upstream {
                    latest: None,
                    error: Some(e),
                },
            }),
            pending_operation: pending.as_ref().map(|j| report::PendingOperation {
                operation: j.operation.clone(),
                from: j.from_version.clone(),
                to: j.to_version.clone(),
                started: j.started.clone(),
            }),
        };
        return Ok(Outcome::of(&report));
    }
    if pending.is_none() && target == inst.app_version {
        return Ok(Outcome::of(&report::NothingToDo {
            instance: a.name.clone(),
            version: target,
            updated: Some(false),
            recovered: None,
        }));
    }
    if pending.is_none() && version_key(&target) < version_key(&inst.app_version) {
        return Err(LaunchError::bad_input(
            format!("--version {target}"),
            format!("{target} is older than the running {}", inst.app_version),
            format!("go back with `launch-tui rollback {}`", a.name),
        ));
    }
    let _lock = lock(out, &a.name, "update", a.wait, vmid)?;
    let (profile, inst) = if let Some(j) = Journal::load(&a.name)? {
        let what = recover_locked(g, out, profile, inst, j)?;
        out.note(what.clone());
        let again = open(g, &a.name)?;
        if again.1.app_version == target {
            return Ok(Outcome::of(&report::NothingToDo {
                instance: a.name.clone(),
                version: target,
                updated: None,
                recovered: Some(what),
            }));
        }
        again
    } else {
        (profile, inst)
    };
    if version_key(&target) < version_key(&inst.app_version) {
        return Err(LaunchError::bad_input(
            format!("--version {target}"),
            format!("{target} is older than the running {}", inst.app_version),
            format!("go back with `launch-tui rollback {}`", a.name),
        ));
    }
    let disk = preflight_disk(ct.as_ref(), &profile, &inst)?;
    let conn = connect(g)?;
    if let Some(w) = conn.warning {
        out.warn(w);
    }
    let watch = a.watch.unwrap_or(Duration::from_secs(u64::from(
        profile.update.watch_s.unwrap_or(30),
    )));
    let journal = new_journal("update", &inst, &target, inst.active_slot.other());
    journal.save().map_err(LaunchError::Failed)?;
    let from = inst.app_version.clone();
    let mut c = ctx(
        g,
        profile,
        inst,
        journal,
        Mode::Update,
        watch,
        Some(conn.client),
    )?;
    let (took, log) = switch_plan(out, &mut c, &a.name, "update")?;
    let ms = |d: Duration| d.as_millis() as u64;
    Ok(Outcome::of(&report::UpdateReport {
        instance: a.name.clone(),
        from,
        to: target,
        updated: true,
        elapsed_ms: ms(took),
        writes_held_ms: ms(c.metrics.held.unwrap_or_default()),
        switch_ms: ms(c.metrics.switch.unwrap_or_default()),
        drain_ms: c.metrics.drained.map(ms),
        hold_phases_ms: c
            .metrics
            .phases
            .iter()
            .map(|(n, d)| report::HoldPhase {
                phase: n.to_string(),
                ms: ms(*d),
            })
            .collect(),
        snapshot: c.journal.snapshot.clone(),
        disk,
        log,
    }))
}

/// Rolls `a.name` back; the confirmation it needs (unless `a.confirmed`) is asked through `ask`.
pub fn rollback(
    g: &Site,
    a: &RollbackRequest,
    mut ask: Option<&mut dyn Prompter>,
    out: &Output,
) -> Result<Outcome> {
    if let Some(what) = crate::backup::recover_unfinished(g, out, &a.name)? {
        out.note(what);
    }
    let (profile, inst) = open(g, &a.name)?;
    if a.snapshot {
        return rollback_snapshot(g, a, ask, out, InstanceStore::new(&g.config), inst);
    }
    let vmid = inst.container.vmid;
    let _lock = lock(out, &a.name, "rollback", a.wait, vmid)?;
    let (profile, inst) = if let Some(j) = Journal::load(&a.name)? {
        let what = recover_locked(g, out, profile, inst, j)?;
        out.note(what);
        open(g, &a.name)?
    } else {
        (profile, inst)
    };
    let Some(prev) = inst.previous.clone() else {
        return Err(LaunchError::bad_input(
            format!("rollback {}", a.name),
            format!(
                "{} has no previous release to go back to (not updated since it was installed or restored, or already rolled back)",
                a.name
            ),
            format!(
                "`launch-tui rollback {} --snapshot` returns the whole container to the last pre-update snapshot",
                a.name
            ),
        ));
    };
    let data_now = Layout::data_dir(profile.name.as_str(), inst.active_slot);
    out.note(format!(
        "Rolling {name} back from {now} to {old} runs {old} on its data as it was at {until}, when the update switched away from it.\n  Writes made since then (on {now}) are not in it; they stay on disk in {data_now} (CT {vmid}) until the next update.",
        name = a.name,
        now = inst.app_version,
        old = prev.version,
        until = prev.until,
    ));
    confirm(
        a.confirmed,
        ask.take(),
        &format!("rollback {}", a.name),
        &format!("Roll {} back to {}?", a.name, prev.version),
    )?;
    let watch = a.watch.unwrap_or(Duration::from_secs(u64::from(
        profile.update.watch_s.unwrap_or(30),
    )));
    let mut journal = new_journal("rollback", &inst, &prev.version, prev.slot);
    journal.dump = prev.dump.clone();
    journal.save().map_err(LaunchError::Failed)?;
    let from = inst.app_version.clone();
    let client = connect(g).ok().map(|c| c.client);
    let mut c = ctx(g, profile, inst, journal, Mode::Rollback, watch, client)?;
    let (took, log) = switch_plan(out, &mut c, &a.name, "rollback")?;
    Ok(Outcome::of(&report::RollbackReport {
        instance: a.name.clone(),
        from,
        to: prev.version,
        data_as_of: prev.until,
        kept_data: data_now.to_string(),
        switch_ms: c.metrics.switch.map(|d| d.as_millis() as u64),
        elapsed_ms: took.as_millis() as u64,
        log,
    }))
}

/// The storage of CT `vmid`'s root disk when it is a ZFS pool (`zfspool`), else None.
fn zfs_rootfs_storage(
    client: &crate::pve::Client,
    node: &str,
    vmid: u32,
) -> Result<Option<String>> {
    let cfg = client.ct_config(node, vmid)?;
    let Some(store) = cfg
        .rootfs
        .as_deref()
        .and_then(|r| r.split(',').next())
        .and_then(|v| v.split_once(':'))
        .map(|(s, _)| s.to_string())
    else {
        return Ok(None);
    };
    let kind = client
        .storages(node, &[crate::pve::ContentType::Rootdir])?
        .into_iter()
        .find(|s| s.storage == store)
        .and_then(|s| s.kind);
    Ok((kind.as_deref() == Some("zfspool")).then_some(store))
}

/// `rollback --snapshot`: the whole container back to the newest pre-update snapshot, through
/// the API; the record becomes the one the container held then.
fn rollback_snapshot(
    g: &Site,
    a: &RollbackRequest,
    ask: Option<&mut dyn Prompter>,
    out: &Output,
    store: InstanceStore,
    inst: Instance,
) -> Result<Outcome> {
    let conn = connect(g)?;
    let client = conn.client;
    let node = inst.container.node.clone();
    let vmid = inst.container.vmid;
    let mut all: Vec<_> = client
        .snapshots(&node, vmid)?
        .into_iter()
        .filter(|s| !s.is_current())
        .collect();
    // By creation time, as PVE and ZFS order them (names sort the same only by convention).
    all.sort_by(|x, y| (x.snaptime, &x.name).cmp(&(y.snaptime, &y.name)));
    let Some(pos) = all
        .iter()
        .rposition(|s| s.name.starts_with(steps::SNAPSHOT_PREFIX))
    else {
        return Err(LaunchError::bad_input(
            format!("rollback {} --snapshot", a.name),
            format!("CT {vmid} has no pre-update snapshot"),
            "updates take one when the storage supports snapshots; restore a backup instead",
        ));
    };
    let snap = all[pos].clone();
    let newer: Vec<&str> = all[pos + 1..].iter().map(|s| s.name.as_str()).collect();
    if !newer.is_empty() {
        if let Some(store) = zfs_rootfs_storage(&client, &node, vmid)? {
            // ZFS rolls a dataset back only to its newest snapshot (PVE runs `zfs rollback`
            // without -r): refuse here, before anything changes, rather than fail in the task.
            return Err(LaunchError::bad_input(
                format!("rollback {} --snapshot", a.name),
                format!(
                    "CT {vmid}'s disk is on the ZFS storage {store}, which rolls back only to the newest snapshot, and {} {} newer than {}",
                    newer.join(", "),
                    if newer.len() == 1 { "is" } else { "are" },
                    snap.name
                ),
                format!(
                    "delete the newer snapshot(s) first if you no longer need them ({}), then run this again; or restore a backup (`launch-tui backups {}`)",
                    newer
                        .iter()
                        .map(|n| format!("pct delsnapshot {vmid} {n}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                    a.name
                ),
            ));
        }
    }
    out.note(format!(
        "Rolling CT {vmid} back to snapshot {} ({}): everything written in the container since then is lost.",
        snap.name,
        snap.description.as_deref().unwrap_or("").trim()
    ));
    confirm(
        a.confirmed,
        ask,
        &format!("rollback {} --snapshot", a.name),
        &format!("Roll CT {vmid} back to {}?", snap.name),
    )?;
    let host_lock = crate::oplock::lock_host(&a.name, "rollback", a.wait)?;
    let log_path = operation_log_path(&a.name, "rollback");
    let snap_name = snap.name.clone();
    let nginx_check = match Catalog::new(&g.config).load(&inst.profile) {
        Ok(l) => crate::health::ThroughNginx::of(&l.profile.components[0]),
        Err(_) => crate::health::ThroughNginx {
            path: "/".into(),
            status: Some(200),
        },
    };
    struct SnapCtx {
        client: crate::pve::Client,
        ct: Box<dyn CtAccess>,
        store: InstanceStore,
        node: String,
        vmid: u32,
        name: String,
        record: Option<Instance>,
    }
    let plan = Plan::new("rollback", Some(a.name.clone()))
        .step(FnStep::new(
            "rollback-snapshot",
            format!("Rolling CT {vmid} back to {snap_name}"),
            move |c: &mut SnapCtx, rep| {
                let upid = c
                    .client
                    .rollback_snapshot(&c.node, c.vmid, &snap_name, true)?;
                c.client
                    .wait_task(&upid, Duration::from_secs(600), &mut |_| {})?;
                rep.info(format!("CT {} is back at {snap_name}", c.vmid));
                Ok(())
            },
        ))
        .step(FnStep::new(
            "record",
            "Reading the record the container held then",
            |c: &mut SnapCtx, rep| {
                let end = Instant::now() + Duration::from_secs(60);
                let text = loop {
                    let out = c.ct.exec(c.vmid, &["cat", "/etc/launch/instance.yaml"]);
                    match out {
                        Ok(o) if o.ok() => break o.stdout,
                        _ if Instant::now() > end => {
                            anyhow::bail!("the container does not answer after the rollback")
                        }
                        _ => std::thread::sleep(Duration::from_millis(500)),
                    }
                };
                let mut rec: Instance = serde_yaml_ng::from_str(&text)?;
                rec.name = c.name.clone();
                c.store.save(&rec)?;
                let _ = c.ct.exec(c.vmid, &["rm", "-f", crate::oplock::CT_LOCK]);
                rep.info(format!("recorded {} {}", rec.name, rec.app_version));
                c.record = Some(rec);
                Ok(())
            },
        ))
        .step(FnStep::new(
            "verify",
            "Checking the app through nginx",
            move |c: &mut SnapCtx, rep| {
                let _ =
                    c.ct.exec(c.vmid, &["systemctl", "is-system-running", "--wait"]);
                // The profile's own health check, through nginx.
                nginx_check.wait(
                    c.ct.as_ref(),
                    c.vmid,
                    &crate::deploy::local_url(
                        &c.record
                            .as_ref()
                            .map(|r| r.settings.clone())
                            .unwrap_or_default(),
                    ),
                    Duration::from_secs(60),
                )?;
                rep.info("the app answers through nginx");
                Ok(())
            },
        ));
    let mut c = SnapCtx {
        client,
        ct: pct()?,
        store,
        node,
        vmid,
        name: a.name.clone(),
        record: None,
    };
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    execute(plan, &mut c, &mut views.all(), true).map_err(|e| {
        LaunchError::Failed(anyhow!(
            "rollback of {} to {} failed: {e}\n  log: {}",
            a.name,
            snap.name,
            log_path.display()
        ))
    })?;
    drop(host_lock);
    let _ = Journal::load(&a.name).ok().flatten().map(|j| j.remove());
    Ok(Outcome::of(&report::SnapshotRollbackReport {
        instance: a.name.clone(),
        vmid,
        snapshot: snap.name,
        version: c.record.map(|r| r.app_version).unwrap_or_default(),
        log: log_path,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_key("v2.10.0") > version_key("v2.9.1"));
        assert!(version_key("v1.0.0") < version_key("v2.0.0"));
        assert_eq!(version_key("v2.5.0"), vec![2, 5, 0]);
    }

    #[test]
    fn a_component_too_old_for_the_target_is_refused() {
        let mut profile = Catalog::new(std::path::Path::new("/nonexistent"))
            .load("vikunja")
            .unwrap()
            .profile;
        profile.versions[0]
            .requires
            .insert("mcp".into(), "0.11.0".into());
        let target = profile.versions[0].version.clone();
        let mut inst: Instance = serde_yaml_ng::from_str(
            "name: vikunja\nprofile: vikunja\napp_version: v2.4.0\ncontainer: {node: pve, vmid: 100, hostname: vikunja, storage: local-lvm}\ncreated: x\nupdated: x\n",
        )
        .unwrap();
        // Not installed: nothing to move together.
        check_requires(&profile, &inst, &target).unwrap();
        inst.components.insert("mcp".into(), "0.10.3".into());
        let err = check_requires(&profile, &inst, &target).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
        let msg = err.to_string();
        assert!(msg.contains("needs mcp 0.11.0 or newer"), "{msg}");
        assert!(msg.contains("\"0.10.3\""), "{msg}");
        inst.components.insert("mcp".into(), "0.11.2".into());
        check_requires(&profile, &inst, &target).unwrap();
    }
}
