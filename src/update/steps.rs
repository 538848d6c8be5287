//! The steps of an update (and of a rollback, which is the same switch towards the slot an
//! update left behind). Blue is the slot serving now, green the other one:
//!
//! release → snapshot → proxy → hold-writes → safety-copy → green → switch → drain → watch → finish
//!
//! Everything heavy (the release, nginx's Lua site) is ready before writes are held; inside the
//! hold only the data moves and the new version starts on it. Holding and switching are file
//! renames nginx's Lua reads per request: no reload, so keep-alive connections survive, and
//! held writes wait at nginx and go to the new version when the hold lifts.
//!
//! Until `switch`, blue serves and every undo leaves it untouched. `switch` moves nginx to green
//! and proves it; its undo moves nginx back. Each step marks the journal when done, so a run cut
//! off anywhere is finished or undone by `recover` from what the container really looks like.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::journal::Journal;
use super::proxy::Proxy;
use crate::ct::{sh, CtAccess};
use crate::deploy::{self, AppSettings};
use crate::engine::render::timestamp;
use crate::engine::{FnStep, Plan, Reporter};
use crate::instance::{Instance, InstanceStore, Previous, Slot};
use crate::profile::{Component, Profile};
use crate::pve::Client;
use crate::release::ReleaseCache;
use crate::render::{DbContext, Layout};

const TASK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Snapshots taken before updates that are kept (older ones are deleted).
pub const KEEP_SNAPSHOTS: usize = 3;
pub const SNAPSHOT_PREFIX: &str = "launch-pre-update-";
/// If launch-tui dies while writes are held and nobody runs it again, the container lifts the
/// hold itself after this long (blue still serves then: the switch never happened or is whole).
const HOLD_EXPIRY_S: u32 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Update,
    Rollback,
}

#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub hold_started: Option<Instant>,
    pub held: Option<Duration>,
    pub switch: Option<Duration>,
    pub drained: Option<Duration>,
    /// What the hold was spent on, phase by phase.
    pub phases: Vec<(&'static str, Duration)>,
}

impl Metrics {
    fn phase(&mut self, name: &'static str, took: Duration) {
        if self.hold_started.is_some() {
            self.phases.push((name, took));
        }
    }

    /// `data copy 120 ms, start 800 ms, ...`
    pub fn phases_text(&self) -> String {
        self.phases
            .iter()
            .map(|(n, d)| format!("{n} {} ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub struct Ctx {
    pub ct: Box<dyn CtAccess>,
    pub client: Option<Client>,
    /// The profile as loaded (its source goes into the safety backup's manifest).
    pub loaded: crate::profile::LoadedProfile,
    pub profile: Profile,
    pub inst: Instance,
    pub store: InstanceStore,
    pub releases: ReleaseCache,
    pub journal: Journal,
    pub mode: Mode,
    pub watch: Duration,
    pub metrics: Metrics,
}

impl Ctx {
    fn vmid(&self) -> u32 {
        self.inst.container.vmid
    }
    fn main(&self) -> &Component {
        &self.profile.components[0]
    }
    fn proxy(&self) -> Proxy<'_> {
        Proxy {
            ct: self.ct.as_ref(),
            vmid: self.vmid(),
            profile: self.profile.name.as_str(),
            http_port: deploy::http_port(&self.inst.settings),
        }
    }
    fn from(&self) -> Slot {
        self.journal.from_slot
    }
    fn to(&self) -> Slot {
        self.journal.to_slot
    }
    fn port(&self, slot: Slot) -> u16 {
        deploy::slot_port(self.main(), slot)
    }
    fn unit(&self, slot: Slot) -> String {
        Layout::unit_name(
            self.profile.name.as_str(),
            self.main().name.as_str(),
            Some(slot),
        )
    }
    fn data_dir(&self, slot: Slot) -> String {
        Layout::data_dir(self.profile.name.as_str(), slot)
    }
    fn server_db(&self) -> bool {
        DbContext::for_instance(&self.inst).adapter().is_server()
    }
    /// Each slot runs on its own database (see `Adapter::slot_databases`).
    fn separate_db(&self) -> bool {
        crate::database::separate_slots(&self.inst.settings)
    }
    fn db(&self, slot: Slot) -> DbContext {
        DbContext::for_slot(&self.inst, slot)
    }
}

/// A step that marks the journal when it is done.
fn step(
    name: &'static str,
    title: impl Into<String>,
    mut run: impl FnMut(&mut Ctx, &Reporter) -> Result<()> + Send + 'static,
) -> FnStep<Ctx> {
    FnStep::new(name, title, move |c: &mut Ctx, rep| {
        run(c, rep)?;
        // `finish` ends the journal: nothing to mark after it.
        if name == "finish" {
            return Ok(());
        }
        c.journal.mark(name)
    })
}

type StepFn = fn(&mut Ctx, &Reporter) -> Result<()>;

/// A step whose undo also runs when the step itself fails half-way (the engine undoes only
/// completed steps), so a failed green slot or switch never stays behind.
fn undoable(
    name: &'static str,
    title: impl Into<String>,
    run: StepFn,
    undo: StepFn,
) -> FnStep<Ctx> {
    step(name, title, move |c: &mut Ctx, rep| {
        let result = run(c, rep);
        if result.is_err() {
            if let Err(e) = undo(c, rep) {
                rep.warn(format!("cleaning up after `{name}` failed too: {e:#}"));
            }
        }
        result
    })
    .with_undo(undo)
}

pub fn plan(c: &Ctx) -> Plan<Ctx> {
    let (from, to) = (&c.journal.from_version, &c.journal.to_version);
    let mut plan = Plan::new(
        match c.mode {
            Mode::Update => "update",
            Mode::Rollback => "rollback",
        },
        Some(c.inst.name.clone()),
    )
    .step(step(
        "release",
        format!("Placing release {to} beside {from}"),
        release,
    ));
    if c.mode == Mode::Update {
        plan = plan.step(step(
            "safety-backup",
            format!("Taking a verified backup of {from}"),
            safety_backup,
        ));
    }
    if c.mode == Mode::Update
        && c.separate_db()
        && c.inst
            .previous
            .as_ref()
            .is_some_and(|p| p.slot == c.journal.to_slot)
    {
        plan = plan.step(step(
            "keep-previous",
            format!(
                "Keeping the {} slot's database (what rollback went back to)",
                c.journal.to_slot.as_str()
            ),
            keep_previous,
        ));
    }
    if c.mode == Mode::Update && c.client.is_some() {
        plan = plan.step(step(
            "snapshot",
            "Taking a Proxmox snapshot of the container",
            snapshot,
        ));
    }
    plan = plan
        .step(step(
            "proxy",
            "Making sure nginx switches and holds without a reload",
            proxy_site,
        ))
        .step(undoable(
            "hold-writes",
            "Holding writes (reads keep flowing)",
            hold,
            release_hold,
        ))
        .step(step(
            "safety-copy",
            "Keeping a copy of the database and config",
            safety_copy,
        ))
        .step(undoable(
            "green",
            format!("Starting {to} in the {} slot", c.journal.to_slot.as_str()),
            green,
            undo_green,
        ))
        .step(undoable(
            "switch",
            format!("Switching nginx to {to} and proving it"),
            switch,
            switch_back,
        ))
        .step(step(
            "drain",
            format!("Letting requests in flight to {from} finish, then lifting the hold"),
            drain,
        ))
        .step(step(
            "watch",
            format!("Watching {to}'s health for {} s", c.watch.as_secs()),
            watch,
        ))
        .step(step(
            "finish",
            format!("Stopping {from} and recording {to}"),
            finish,
        ));
    plan
}

fn release(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let to = c.journal.to_version.clone();
    if deploy::release_ready(c.ct.as_ref(), c.vmid(), &c.profile, &to)? {
        rep.info(format!(
            "{to} is already in the container ({})",
            Layout::release_dir(c.profile.name.as_str(), &to)
        ));
        return Ok(());
    }
    if c.mode == Mode::Update {
        c.journal.new_release = true;
        c.journal.save()?;
    }
    deploy::install_release(c.ct.as_ref(), c.vmid(), &c.releases, &c.profile, &to, rep)
}

/// A full backup archive (database, config, files) while the old version still serves, in the
/// instance's backup directory: the way back if everything else fails.
fn safety_backup(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let dir = crate::backup::default_dir(&c.inst.name);
    let archive = crate::backup::take::take(
        c.ct.as_ref(),
        &c.inst,
        &c.loaded,
        &dir,
        crate::backup::archive::Compression::Zstd,
        "update",
        rep,
    )?;
    rep.info(format!(
        "safety backup {} ({})",
        archive.path.display(),
        crate::backup::take::mib(archive.size)
    ));
    c.journal.backup = Some(archive.path.display().to_string());
    c.journal.save()?;
    Ok(())
}

/// Whether the container's root disk can take a snapshot (PVE: not on plain dir/NFS storages
/// with raw images).
fn supports_snapshots(client: &Client, node: &str, storage: &str) -> bool {
    client
        .storages(node, &[])
        .ok()
        .and_then(|list| list.into_iter().find(|s| s.storage == storage))
        .and_then(|s| s.kind)
        .is_some_and(|k| {
            matches!(
                k.as_str(),
                "lvmthin" | "zfspool" | "rbd" | "btrfs" | "cephfs"
            )
        })
}

fn snapshot(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let Some(client) = &c.client else {
        return Ok(());
    };
    let node = c.inst.container.node.clone();
    let vmid = c.vmid();
    if !supports_snapshots(client, &node, &c.inst.container.storage) {
        rep.warn(format!(
            "storage `{}` cannot snapshot containers: relying on the data copy and dump only",
            c.inst.container.storage
        ));
        return Ok(());
    }
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default();
    let name = format!("{SNAPSHOT_PREFIX}{stamp}");
    let desc = format!(
        "launch-tui: {} {} before the update to {}",
        c.inst.name, c.journal.from_version, c.journal.to_version
    );
    let upid = client.create_snapshot(&node, vmid, &name, Some(&desc))?;
    client.wait_task(&upid, TASK_TIMEOUT, &mut |_| {})?;
    rep.info(format!("snapshot {name} of CT {vmid}"));
    c.journal.snapshot = Some(name);
    c.journal.save()?;
    Ok(())
}

/// Re-renders the nginx site (the Lua switch and hold) and makes sure Debian's Lua module is
/// in the container, before anything is held: an instance installed before gets them here, with
/// the one proven reload this needs; an up-to-date one changes nothing.
fn proxy_site(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let main = c.main().clone();
    let app = AppSettings::of_instance(&c.profile, &c.inst);
    let rc = app.render_context(&main, c.from(), &c.journal.from_version);
    let site = crate::render::nginx_site(&c.profile, &rc)?;
    if c.proxy().ensure_lua_site(&site, main.drain_s)? {
        rep.info("nginx: site with the Lua switch and hold written, reloaded and proven");
    } else {
        rep.info("nginx already switches and holds without a reload");
    }
    Ok(())
}

fn hold(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let drain = c.main().drain_s;
    let vmid = c.vmid();
    let p = c.profile.name.to_string();
    let proxy = c.proxy();
    let t = Instant::now();
    proxy.hold_on()?;
    proxy.prove_hold(true)?;
    c.metrics.hold_started = Some(t);
    // The container lifts a hold left by a dead launch-tui by itself.
    let hold_file = Layout::hold_file(&p);
    let _ = c.ct.exec(
        vmid,
        &[
            "systemctl",
            "stop",
            &format!("launch-hold-expiry-{p}.timer"),
        ],
    );
    sh(
        c.ct.as_ref(),
        vmid,
        &format!(
            "systemd-run --quiet --unit launch-hold-expiry-{p} --on-active={HOLD_EXPIRY_S} /bin/rm -f {hold_file}"
        ),
    )?;
    let max = c.profile.update.hold_max_wait_s();
    rep.info(format!(
        "writes are held at nginx (they wait up to {max} s, then get 503 with Retry-After); reads keep flowing"
    ));
    c.metrics.phase("hold set and proven", t.elapsed());
    // Writes nginx let through before the hold are still running; once they are answered,
    // nothing writes to the data any more.
    let limit = Duration::from_secs(u64::from(drain) + 3);
    match c.proxy().wait_writes_done(limit)? {
        Some(d) => {
            c.metrics.phase("writes in flight", d);
            rep.info(format!(
                "writes accepted before the hold finished ({} ms)",
                d.as_millis()
            ))
        }
        None => bail!(
            "writes accepted before the hold are still running after {} s\n  help: try again when long uploads are done, or raise drain_s in the profile",
            limit.as_secs()
        ),
    }
    Ok(())
}

fn cancel_hold_expiry(c: &Ctx) {
    let _ = c.ct.exec(
        c.vmid(),
        &[
            "systemctl",
            "stop",
            &format!("launch-hold-expiry-{}.timer", c.profile.name),
        ],
    );
}

fn release_hold(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let proxy = c.proxy();
    if proxy.hold_present()? {
        proxy.hold_off()?;
        proxy.prove_hold(false)?;
    }
    cancel_hold_expiry(c);
    if let Some(t) = c.metrics.hold_started.take() {
        c.metrics.held = Some(t.elapsed());
    }
    rep.info("writes flow again");
    Ok(())
}

/// Server databases: a dump taken while writes are held is the way back. A file database
/// (SQLite) needs none: green runs on a copy and blue's data dir stays as it was.
fn safety_copy(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let t = Instant::now();
    let r = safety_copy_inner(c, rep);
    c.metrics.phase("database dump", t.elapsed());
    r
}

fn safety_copy_inner(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    if !c.server_db() {
        rep.info(format!(
            "the {} slot's data ({}) stays untouched as the pre-update copy",
            c.from().as_str(),
            c.data_dir(c.from())
        ));
        return Ok(());
    }
    if c.mode == Mode::Rollback {
        return Ok(());
    }
    let dir = format!("/var/backups/launch/{}", c.inst.name);
    let stamp = timestamp().replace(':', "");
    let db = c.db(c.from());
    let adapter = db.adapter();
    let file = format!(
        "{dir}/pre-update-{}-{stamp}.{}",
        c.journal.from_version,
        adapter.dump_ext()
    );
    let dump = adapter.update_dump(&db, &file);
    let out = db_client(c, &db, &format!("umask 077; mkdir -p {dir} && {dump}"));
    out.context("the pre-update database dump failed")?;
    rep.info(format!("database dumped to {file} (in the container)"));
    c.journal.dump = Some(file);
    c.journal.save()?;
    Ok(())
}

/// Renders and starts `slot` running `version`, then waits for the health gate.
fn start_slot(c: &Ctx, slot: Slot, version: &str, rep: &Reporter) -> Result<()> {
    let vmid = c.vmid();
    let main = c.main().clone();
    let app = AppSettings::of_instance(&c.profile, &c.inst);
    let rc = app.render_context(&main, slot, version);
    let unit =
        deploy::write_component_files(c.ct.as_ref(), vmid, &c.profile, &main, &rc, Some(slot))?;
    sh(
        c.ct.as_ref(),
        vmid,
        &format!("systemctl daemon-reload && systemctl reset-failed {unit} 2>/dev/null; systemctl restart {unit}"),
    )?;
    let port = c.port(slot);
    let t = Instant::now();
    let target = crate::health::Target {
        ct: c.ct.as_ref(),
        vmid,
        component: &main,
        port,
    };
    crate::health::wait_healthy(
        &target,
        &unit,
        Duration::from_secs(u64::from(main.health.interval_s.max(1))),
        Duration::from_secs(u64::from(main.health.deadline_s)),
    )?;
    let reported = crate::health::running_version(&target)?;
    if let Some(running) = &reported {
        if running != version {
            bail!("{unit} answers, but reports version {running}, not {version}");
        }
    }
    rep.info(match reported {
        Some(v) => format!(
            "{unit} is healthy ({} check) and reports {v}, read by {} ({} ms)",
            main.health.kind(),
            main.health.version.as_ref().map_or("", |p| p.kind()),
            t.elapsed().as_millis()
        ),
        None => format!(
            "{unit} is healthy ({} ms; the profile has no version probe, so the version is the release's)",
            t.elapsed().as_millis()
        ),
    });
    Ok(())
}

fn green(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let (from, to) = (c.data_dir(c.from()), c.data_dir(c.to()));
    let user = c.main().user.to_string();
    match c.mode {
        Mode::Update => {
            // Writes are held and nothing is in flight: a plain copy is consistent. The new
            // version migrates its own copy; blue's stays as it was.
            let t = Instant::now();
            // Test hook: a slow data move, to prove what a hold longer than its maximum does.
            let slow = std::env::var("LAUNCH_TEST_SLOW_COPY_S")
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .map(|n| format!("sleep {n}; "))
                .unwrap_or_default();
            sh(
                c.ct.as_ref(),
                c.vmid(),
                // The slot's previous data (what `rollback` goes back to) is set aside, not
                // deleted, until this update has succeeded.
                // An empty `.previous` with a marker says there was nothing to keep.
                &format!("{slow}if [ ! -d {to}.previous ]; then if [ -d {to} ]; then mv {to} {to}.previous; else mkdir -p {to}.previous && touch {to}.previous/.launch-empty; fi; fi; rm -rf {to} && cp -a --reflink=auto {from} {to} && chown -R {user}:{user} {to}"),
            )?;
            c.metrics.phase("data copy", t.elapsed());
            rep.info(format!(
                "copied {from} to {to} ({} ms)",
                t.elapsed().as_millis()
            ));
            if c.separate_db() {
                let t = Instant::now();
                load_slot_database(c, rep)?;
                c.metrics.phase("database copy", t.elapsed());
            }
        }
        Mode::Rollback => {
            if !c.ct.exec(c.vmid(), &["test", "-d", &to])?.ok() {
                bail!("{to} is gone: there is no pre-update data to roll back to\n  help: roll the whole container back with `launch-tui rollback {} --snapshot`, or restore a backup", c.inst.name);
            }
            if c.separate_db() {
                // The old slot's database is as it was at the switch; what was written since
                // is kept in a dump before traffic goes back.
                let v = c.journal.from_version.clone();
                let file = keep_aside(c, c.from(), "rolled-back", &v)?;
                rep.warn(format!(
                    "what {v} wrote since the update is kept in {file} (in the container); {} goes back to its own database, untouched since the switch",
                    c.journal.to_version
                ));
            } else if let Some(dump) = c.journal.dump.clone() {
                restore_dump(c, &dump, rep)?;
            }
        }
    }
    let to_version = c.journal.to_version.clone();
    let t = Instant::now();
    start_slot(c, c.to(), &to_version, rep)?;
    c.metrics
        .phase("new version started and healthy", t.elapsed());
    Ok(())
}

/// Runs a database client script in the container with the instance's credentials: `{conn}`
/// becomes the adapter's connection options; the password goes through a private file, never
/// argv.
fn db_client(c: &Ctx, db: &DbContext, script: &str) -> Result<crate::ct::ExecOutput> {
    const PW: &str = "/run/launch-dbpw";
    let client = db
        .adapter()
        .client(db)
        .with_context(|| format!("a {} database has no client", db.kind))?;
    let (env, script) = (client.password_env, script.replace("{conn}", &client.conn));
    c.ct.write(c.vmid(), PW, db.password.as_bytes(), 0o600, None)?;
    // Tools that read their credentials from a file of their own (MongoDB's `--config`).
    let file = db.adapter().client_secret(db);
    if let Some((path, text)) = &file {
        c.ct.write(c.vmid(), path, text.as_bytes(), 0o600, None)?;
    }
    let out = sh(
        c.ct.as_ref(),
        c.vmid(),
        &format!("{env}=\"$(cat {PW})\"; export {env}; rm -f {PW}; {script}"),
    );
    let _ = c.ct.exec(c.vmid(), &["rm", "-f", PW]);
    if let Some((path, _)) = &file {
        let _ = c.ct.exec(c.vmid(), &["rm", "-f", path]);
    }
    out
}

/// Rollback with one database for both slots: the pre-update dump goes back into it.
fn restore_dump(c: &Ctx, dump: &str, rep: &Reporter) -> Result<()> {
    let db = c.db(c.to());
    let load = db.adapter().update_load(&db, dump, &db.name);
    db_client(c, &db, &load).context("restoring the pre-update database dump failed")?;
    rep.info(format!("database restored from {dump}"));
    Ok(())
}

/// Each slot its own database: the new slot's is emptied and loaded from the pre-update dump,
/// taken while writes were held, so it is the serving slot's data as of now; the serving
/// slot's database is not touched.
fn load_slot_database(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let (src, dst) = (c.db(c.from()), c.db(c.to()));
    let dump = c
        .journal
        .dump
        .clone()
        .context("no pre-update dump to give the new slot its own database")?;
    c.journal.db_loaded = true;
    c.journal.save()?;
    let t = Instant::now();
    let load = dst.adapter().update_load(&dst, &dump, &src.name);
    db_client(c, &dst, &load).with_context(|| {
        format!(
            "loading the pre-update dump into {} (the {} slot's own database) failed\n  help: the database user needs readWrite on {} as well as on {}; on an external server, grant it (docs/profiles.md, \"Databases\")",
            dst.name,
            c.to().as_str(),
            dst.name,
            src.name
        )
    })?;
    rep.info(format!(
        "database {} loaded from the pre-update dump as {}, the {} slot's own ({} ms); {} stays as it was",
        src.name,
        dst.name,
        c.to().as_str(),
        t.elapsed().as_millis(),
        src.name
    ));
    Ok(())
}

/// Dumps `slot`'s database into the instance's backup directory in the container, named
/// `LABEL-VERSION-STAMP`; returns the file.
fn keep_aside(c: &Ctx, slot: Slot, label: &str, version: &str) -> Result<String> {
    let db = c.db(slot);
    let adapter = db.adapter();
    let dir = format!("/var/backups/launch/{}", c.inst.name);
    let stamp = timestamp().replace(':', "");
    let file = format!("{dir}/{label}-{version}-{stamp}.{}", adapter.dump_ext());
    let dump = adapter.update_dump(&db, &file);
    db_client(c, &db, &format!("umask 077; mkdir -p {dir} && {dump}"))
        .with_context(|| format!("dumping database {} to {file} failed", db.name))?;
    Ok(file)
}

/// Before the update empties the new slot's database for its copy: that database is what
/// `rollback` went back to, so it is dumped first and loaded back if the update is undone.
fn keep_previous(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let version = c
        .inst
        .previous
        .as_ref()
        .map(|p| p.version.clone())
        .unwrap_or_default();
    let file = keep_aside(c, c.to(), "previous", &version)?;
    rep.info(format!(
        "database {} ({version}, what rollback went back to) dumped to {file}",
        c.db(c.to()).name
    ));
    c.journal.previous_dump = Some(file);
    c.journal.save()?;
    Ok(())
}

fn undo_green(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let unit = c.unit(c.to());
    let _ = c.ct.exec(c.vmid(), &["systemctl", "stop", &unit]);
    let _ =
        c.ct.exec(c.vmid(), &["systemctl", "disable", "--quiet", &unit]);
    if c.mode == Mode::Update {
        let to = c.data_dir(c.to());
        let copied =
            c.ct.exec(c.vmid(), &["test", "-d", &format!("{to}.previous")])?
                .ok();
        if !copied {
            // Cut off before the copy began: the slot still holds its own data.
        } else if c.journal.steps_done.iter().any(|s| s == "switch") {
            // It served after the switch: what it holds may matter to someone.
            let aside = format!("{to}.failed-{}", timestamp().replace(':', ""));
            sh(c.ct.as_ref(), c.vmid(), &format!("mv {to} {aside}"))?;
            rep.warn(format!(
                "writes made on {} after the switch are kept aside in {aside}",
                c.journal.to_version
            ));
        } else {
            sh(c.ct.as_ref(), c.vmid(), &format!("rm -rf {to}"))?;
        }
        if c.journal.db_loaded {
            let name = c.db(c.to()).name;
            if c.journal.steps_done.iter().any(|s| s == "switch") {
                let v = c.journal.to_version.clone();
                let file = keep_aside(c, c.to(), "failed", &v)?;
                rep.warn(format!(
                    "writes made on {v} after the switch are kept in {file} (a dump of {name}, in the container)"
                ));
            }
            if let Some(prev) = c.journal.previous_dump.clone() {
                let db = c.db(c.to());
                let load = db.adapter().update_load(&db, &prev, &db.name);
                db_client(c, &db, &load)
                    .with_context(|| format!("loading {prev} back into {name} failed"))?;
                rep.info(format!(
                    "database {name} is back as it was before this update (from {prev})"
                ));
            }
        }
        // What the slot held before this update comes back, so `rollback` still can.
        sh(
            c.ct.as_ref(),
            c.vmid(),
            &format!("if [ -e {to}.previous/.launch-empty ]; then rm -rf {to}.previous; elif [ -d {to}.previous ]; then rm -rf {to} && mv {to}.previous {to}; fi"),
        )?;
        match c.inst.previous.clone().filter(|p| p.slot == c.to()) {
            Some(prev) => {
                let main = c.main().clone();
                let app = AppSettings::of_instance(&c.profile, &c.inst);
                let rc = app.render_context(&main, prev.slot, &prev.version);
                deploy::write_component_files(
                    c.ct.as_ref(),
                    c.vmid(),
                    &c.profile,
                    &main,
                    &rc,
                    Some(prev.slot),
                )?;
                sh(c.ct.as_ref(), c.vmid(), "systemctl daemon-reload")?;
            }
            None => {
                sh(
                    c.ct.as_ref(),
                    c.vmid(),
                    &format!("rm -f /etc/systemd/system/{unit} && systemctl daemon-reload"),
                )?;
            }
        }
        if c.journal.new_release {
            let dir = Layout::release_dir(c.profile.name.as_str(), &c.journal.to_version);
            sh(c.ct.as_ref(), c.vmid(), &format!("rm -rf {dir}"))?;
        }
    }
    rep.info(format!(
        "{unit} stopped and removed; {} untouched",
        c.unit(c.from())
    ));
    Ok(())
}

/// Points nginx at the new slot while writes are still held: an atomic rename of the file the
/// site's Lua reads per request, no reload, so no connection is closed. A read already on its
/// way to the old slot finishes there: harmless while nothing writes anywhere.
fn switch(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let port = c.port(c.to());
    let proxy = c.proxy();
    let t = Instant::now();
    proxy.set_upstream(port)?;
    proxy.prove_upstream(port)?;
    let switch = t.elapsed();
    c.metrics.switch = Some(switch);
    c.metrics.phase("switch", switch);
    rep.info(format!(
        "nginx sends requests to 127.0.0.1:{port} ({}): proven {} ms after the switch, without a reload",
        c.journal.to_version,
        switch.as_millis()
    ));
    Ok(())
}

fn switch_back(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let from = c.from();
    let unit = c.unit(from);
    let active =
        c.ct.exec(c.vmid(), &["systemctl", "is-active", "--quiet", &unit])?
            .ok();
    if !active {
        let v = c.journal.from_version.clone();
        start_slot(c, from, &v, rep)?;
    }
    let port = c.port(from);
    let proxy = c.proxy();
    proxy.set_upstream(port)?;
    proxy.prove_upstream(port)?;
    proxy.hold_off()?;
    rep.warn(format!(
        "switched back: {} serves again",
        c.journal.from_version
    ));
    Ok(())
}

/// Lifts the write hold: the writes nginx held go on, to the new slot. No reload happened, so
/// there are no old workers to wait for; a read still running on the old slot ends there.
fn drain(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let proxy = c.proxy();
    let t = Instant::now();
    proxy.hold_off()?;
    proxy.prove_hold(false)?;
    c.metrics.phase("hold lifted and proven", t.elapsed());
    cancel_hold_expiry(c);
    if let Some(h) = c.metrics.hold_started.take() {
        c.metrics.held = Some(h.elapsed());
    }
    if let Some(h) = c.metrics.held {
        rep.info(format!(
            "writes flow again, to {}; they were held for {} ms ({})",
            c.journal.to_version,
            h.as_millis(),
            c.metrics.phases_text()
        ));
    }
    Ok(())
}

fn watch(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let main = c.main().clone();
    let port = c.port(c.to());
    let target = crate::health::Target {
        ct: c.ct.as_ref(),
        vmid: c.vmid(),
        component: &main,
        port,
    };
    let nginx_check = crate::health::ThroughNginx::of(&main);
    let through = format!(
        "{}{}",
        deploy::local_url(&c.inst.settings),
        nginx_check.path
    );
    let end = Instant::now() + c.watch;
    let mut failures = 0;
    let mut checks = 0;
    while Instant::now() < end {
        for direct in [true, false] {
            let (what, passed, got) = if direct {
                let a = crate::health::probe_once(&target)?;
                (target.what(), a.healthy, a.got)
            } else {
                let code = deploy::http_status(c.ct.as_ref(), c.vmid(), &through)?;
                (through.clone(), nginx_check.accepts(&code), code)
            };
            checks += 1;
            if passed {
                failures = 0;
            } else {
                failures += 1;
                rep.warn(format!("{what} answered {got}"));
                // Two failures in a row: not a blip.
                if failures >= 2 {
                    bail!(
                        "{} failed its health check after the switch ({what} answered {got})",
                        c.journal.to_version
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    rep.info(format!("{checks} health checks passed"));
    Ok(())
}

/// The record after a switch to `to` (shared by `finish` and `recover`).
pub fn switched_record(
    inst: &Instance,
    profile: &Profile,
    j: &Journal,
    switched_at: String,
) -> Instance {
    let mut next = inst.clone();
    next.app_version = j.to_version.clone();
    next.active_slot = j.to_slot;
    next.updated = timestamp();
    match j.operation.as_str() {
        "rollback" => {
            next.previous = None;
        }
        _ => {
            next.previous = Some(Previous {
                version: j.from_version.clone(),
                slot: j.from_slot,
                until: switched_at,
                dump: j.dump.clone(),
            });
            next.releases.retain(|r| r != &j.to_version);
            next.releases.push(j.to_version.clone());
            let keep = profile.update.keep_releases.unwrap_or(3).max(2) as usize;
            while next.releases.len() > keep {
                next.releases.remove(0);
            }
        }
    }
    next
}

/// Stops the old slot, makes the new one the one that starts on boot, writes the record on the
/// host and in the container, prunes old releases and snapshots, and ends the journal.
pub fn commit(
    ct: &dyn CtAccess,
    client: Option<&Client>,
    profile: &Profile,
    store: &InstanceStore,
    inst: &mut Instance,
    j: &Journal,
    rep: &Reporter,
) -> Result<()> {
    let vmid = inst.container.vmid;
    let p = profile.name.as_str();
    let comp = profile.components[0].name.as_str();
    let old = Layout::unit_name(p, comp, Some(j.from_slot));
    let new = Layout::unit_name(p, comp, Some(j.to_slot));
    sh(
        ct,
        vmid,
        &format!("systemctl enable --quiet {new} && systemctl disable --quiet --now {old}"),
    )?;
    rep.info(format!("{old} stopped; {new} starts on boot"));
    let set_aside = format!("{}.previous", Layout::data_dir(p, j.to_slot));
    sh(ct, vmid, &format!("rm -rf {set_aside}"))?;
    if let Some(prev) = &j.previous_dump {
        // The slot it was kept for now holds the version that was serving.
        sh(ct, vmid, &format!("rm -f {}", crate::database::q(prev)))?;
    }
    prune_update_dumps(ct, vmid, inst, j, rep);
    let next = switched_record(inst, profile, j, timestamp());
    store.save(&next)?;
    let text = serde_yaml_ng::to_string(&next)?;
    ct.write(
        vmid,
        "/etc/launch/instance.yaml",
        text.as_bytes(),
        0o600,
        None,
    )?;
    // Releases no longer listed (and not run by either slot) go.
    let keep: Vec<String> = next
        .releases
        .iter()
        .chain(std::iter::once(&j.from_version))
        .map(|v| Layout::release_dir(p, v))
        .collect();
    let list = ct.exec(
        vmid,
        &[
            "/bin/sh",
            "-c",
            &format!("ls -d {}/releases/* 2>/dev/null", Layout::app_dir(p)),
        ],
    )?;
    for dir in list.stdout.lines().map(str::trim).filter(|d| !d.is_empty()) {
        if !keep.iter().any(|k| k == dir) {
            sh(ct, vmid, &format!("rm -rf {dir}"))?;
            rep.info(format!("removed the old release {dir}"));
        }
    }
    if let Some(client) = client {
        prune_snapshots(client, &next, rep);
    }
    *inst = next;
    j.remove()?;
    Ok(())
}

/// Pre-update dumps of earlier updates go: only the one this operation took stays (what
/// `rollback` loads, or the last safety net after a rollback); each update also left a full
/// backup on the host. Dumps kept aside on purpose (`rolled-back-`, `failed-`) stay.
fn prune_update_dumps(ct: &dyn CtAccess, vmid: u32, inst: &Instance, j: &Journal, rep: &Reporter) {
    let dir = format!("/var/backups/launch/{}", inst.name);
    let Ok(list) = ct.exec(
        vmid,
        &[
            "/bin/sh",
            "-c",
            &format!("ls -d {dir}/pre-update-* 2>/dev/null"),
        ],
    ) else {
        return;
    };
    let keep: Vec<&str> = j
        .dump
        .iter()
        .chain(inst.previous.as_ref().and_then(|p| p.dump.as_ref()))
        .map(String::as_str)
        .collect();
    for f in list.stdout.lines().map(str::trim).filter(|f| !f.is_empty()) {
        if !keep.contains(&f) && ct.exec(vmid, &["rm", "-f", f]).is_ok_and(|o| o.ok()) {
            rep.info(format!("removed the earlier pre-update dump {f}"));
        }
    }
}

fn prune_snapshots(client: &Client, inst: &Instance, rep: &Reporter) {
    let node = &inst.container.node;
    let vmid = inst.container.vmid;
    let Ok(list) = client.snapshots(node, vmid) else {
        return;
    };
    let mut ours: Vec<String> = list
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with(SNAPSHOT_PREFIX))
        .collect();
    ours.sort();
    while ours.len() > KEEP_SNAPSHOTS {
        let name = ours.remove(0);
        match client
            .delete_snapshot(node, vmid, &name, false)
            .map_err(anyhow::Error::from)
            .and_then(|u| {
                client
                    .wait_task(&u, TASK_TIMEOUT, &mut |_| {})
                    .map_err(Into::into)
            }) {
            Ok(_) => rep.info(format!("deleted the old snapshot {name}")),
            Err(e) => rep.warn(format!("could not delete the old snapshot {name}: {e:#}")),
        }
    }
}

fn finish(c: &mut Ctx, rep: &Reporter) -> Result<()> {
    let j = c.journal.clone();
    let mut inst = c.inst.clone();
    commit(
        c.ct.as_ref(),
        c.client.as_ref(),
        &c.profile,
        &c.store,
        &mut inst,
        &j,
        rep,
    )?;
    c.inst = inst;
    Ok(())
}

/// Finishes or undoes an operation that was cut off, from the container's real state: if nginx
/// already names the new slot and it is healthy, the switch is completed; otherwise the old
/// slot is made to serve again and the new one removed. Returns what was done.
pub fn recover(c: &mut Ctx, rep: &Reporter) -> Result<String> {
    let j = c.journal.clone();
    let to_port = c.port(j.to_slot);
    let upstream = c.proxy().upstream_port()?;
    rep.warn(format!(
        "found an unfinished {} of {} ({} → {}, started {} by pid {} on {})",
        j.operation, j.instance, j.from_version, j.to_version, j.started, j.pid, j.host
    ));
    if upstream == Some(to_port) {
        let unit = c.unit(j.to_slot);
        let healthy = {
            let active =
                c.ct.exec(c.vmid(), &["systemctl", "is-active", "--quiet", &unit])?
                    .ok();
            if !active {
                let _ = c.ct.exec(c.vmid(), &["systemctl", "start", &unit]);
            }
            let main = c.main().clone();
            crate::health::wait_healthy(
                &crate::health::Target {
                    ct: c.ct.as_ref(),
                    vmid: c.vmid(),
                    component: &main,
                    port: to_port,
                },
                &unit,
                Duration::from_secs(1),
                Duration::from_secs(u64::from(main.health.deadline_s)),
            )
            .is_ok()
        };
        if healthy {
            let proxy = c.proxy();
            proxy.hold_off()?;
            proxy.prove_upstream(to_port)?;
            cancel_hold_expiry(c);
            finish(c, rep)?;
            return Ok(format!(
                "finished the interrupted {}: {} serves",
                j.operation, j.to_version
            ));
        }
        rep.warn(format!("{} is not healthy: undoing instead", j.to_version));
    }
    // Undo: the old slot serves (started again if needed, nginx pointed back, hold lifted),
    // then the new one goes.
    c.journal.steps_done.retain(|s| s != "switch");
    switch_back(c, rep)?;
    cancel_hold_expiry(c);
    undo_green(c, rep)?;
    c.journal.remove()?;
    Ok(format!(
        "undid the interrupted {}: {} serves as before",
        j.operation, j.from_version
    ))
}
