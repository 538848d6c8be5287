//! Restoring an archive into an installed instance. The archive is checked completely before
//! anything is touched; then a safety backup of the current state is taken, the archive
//! streams into a staging directory in the container (checked again on the way), and the
//! database, files and config are swapped in while the app is stopped. Each swap keeps the old
//! state beside it until the app answers its health check, so a failure puts everything back.
//! A journal (like an update's) lets the next `restore`, `status` or `update` finish or undo a
//! restore that was cut off (SIGKILL, power loss): the app is never left stopped.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::archive::{self, EntryKind, Manifest};
use super::take::{self, q};
use crate::ct::{sh, CtAccess};
use crate::database::RestoreSpot;
use crate::deploy::{self, AppSettings};
use crate::engine::{FnStep, Plan, Reporter};
use crate::error::{InvalidValue, LaunchError};
use crate::instance::{Instance, InstanceStore};
use crate::oplock::{lock_instance, InstanceLock};
use crate::profile::{LoadedProfile, Profile};
use crate::render::{DbContext, Layout};

/// Settings that describe the target's own container and database, never taken from an
/// archive (a restore into a new container keeps what its install chose).
const TARGET_SETTINGS: &[&str] = &[
    "database", "db_host", "db_port", "db_user", "db_name", "tls", "os",
];

pub struct RestoreCtx {
    pub ct: Box<dyn CtAccess>,
    pub store: InstanceStore,
    pub loaded: LoadedProfile,
    pub inst: Instance,
    pub archive: PathBuf,
    pub backup_dir: PathBuf,
    /// Take a safety backup first (not for a container made for this restore).
    pub safety: bool,
    pub manifest: Option<Manifest>,
    /// Why the restore was refused before anything changed (exit 2 or 3).
    pub refusal: Option<LaunchError>,
    pub lock: Option<InstanceLock>,
    pub safety_archive: Option<PathBuf>,
    /// The record as it was before, for the undo of the config step.
    pub old_record: Option<Instance>,
    /// Written once the instance is locked, marked after each step, removed at the end.
    pub journal: Option<RestoreJournal>,
}

/// The journal of a running restore: finding one means it was cut off, and `recover` finishes
/// it (the restored app had answered its health check) or undoes it from the container's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreJournal {
    pub operation: String,
    pub instance: String,
    pub archive: String,
    pub started: String,
    pub pid: u32,
    pub host: String,
    #[serde(default)]
    pub safety_backup: Option<String>,
    /// The instance record before the restore (what an undo renders the config from again).
    pub record: Instance,
    #[serde(default)]
    pub steps_done: Vec<String>,
}

impl RestoreJournal {
    pub fn path(instance: &str) -> PathBuf {
        crate::oplock::state_dir()
            .join("journal")
            .join(format!("{instance}.restore.json"))
    }

    pub fn load(instance: &str) -> Result<Option<RestoreJournal>> {
        let p = Self::path(instance);
        match std::fs::read_to_string(&p) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "the restore journal {} is damaged; move it aside and run `launch-tui status {instance}`",
                    p.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// Saved 0600: the record holds the instance's secrets.
    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::fsutil::write_atomic(&Self::path(&self.instance), text.as_bytes(), 0o600)
    }

    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(Self::path(&self.instance)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context("cannot remove the restore journal")
            }
            _ => Ok(()),
        }
    }
}

/// Marks the journal after a step (a step cut off before its mark is undone from the state).
fn mark(c: &mut RestoreCtx, step: &str) -> Result<()> {
    if let Some(j) = c.journal.as_mut() {
        if !j.steps_done.iter().any(|s| s == step) {
            j.steps_done.push(step.to_string());
        }
        j.save()?;
    }
    Ok(())
}

type StepFn = fn(&mut RestoreCtx, &Reporter) -> Result<()>;

/// A step whose undo also runs when the step itself fails half-way (the engine undoes only
/// completed steps); the undos look at what is on disk, so this is safe wherever it stopped.
fn undoable(
    name: &'static str,
    title: impl Into<String>,
    run: StepFn,
    undo: StepFn,
) -> FnStep<RestoreCtx> {
    FnStep::new(name, title, move |c: &mut RestoreCtx, rep| {
        if let Err(e) = run(c, rep) {
            if let Err(u) = undo(c, rep) {
                rep.warn(format!("undoing the failed {name} step: {u:#}"));
            }
            return Err(e);
        }
        mark(c, name)
    })
    .with_undo(undo)
}

/// A step that marks the journal when it is done.
fn step(name: &'static str, title: impl Into<String>, run: StepFn) -> FnStep<RestoreCtx> {
    FnStep::new(name, title, move |c: &mut RestoreCtx, rep| {
        run(c, rep)?;
        mark(c, name)
    })
}

impl RestoreCtx {
    fn vmid(&self) -> u32 {
        self.inst.container.vmid
    }
    fn p(&self) -> String {
        self.loaded.profile.name.to_string()
    }
    fn data_dir(&self) -> String {
        Layout::data_dir(&self.p(), self.inst.active_slot)
    }
    fn stage(&self) -> String {
        take::stage_dir(&self.p(), "restore")
    }
    fn main_unit(&self) -> String {
        Layout::unit_name(
            &self.p(),
            self.loaded.profile.components[0].name.as_str(),
            Some(self.inst.active_slot),
        )
    }
    fn manifest(&self) -> &Manifest {
        self.manifest.as_ref().expect("verified first")
    }
    fn sh(&self, script: &str) -> Result<()> {
        sh(self.ct.as_ref(), self.vmid(), script).map(|_| ())
    }
}

pub fn plan(ctx: &RestoreCtx) -> Plan<RestoreCtx> {
    let name = ctx.inst.name.clone();
    let mut plan = Plan::new("restore", Some(name.clone()))
        .step(FnStep::new(
            "read-manifest",
            format!("Reading the manifest of {}", ctx.archive.display()),
            read_manifest,
        ))
        .step(FnStep::new(
            "check",
            "Checking the archive fits the instance",
            check,
        ))
        .step(FnStep::new(
            "verify-archive",
            format!("Verifying {}", ctx.archive.display()),
            verify_archive,
        ))
        .step(FnStep::new(
            "lock",
            format!("Locking {name}"),
            |c: &mut RestoreCtx, _| {
                match lock_instance(
                    &c.inst.name,
                    "restore",
                    Duration::ZERO,
                    Box::new(crate::ct::Pct::find()?),
                    c.vmid(),
                ) {
                    Ok(l) => c.lock = Some(l),
                    Err(e) => {
                        let text = e.to_string();
                        c.refusal = Some(e);
                        bail!("{text}")
                    }
                }
                let j = RestoreJournal {
                    operation: "restore".into(),
                    instance: c.inst.name.clone(),
                    archive: c.archive.display().to_string(),
                    started: crate::engine::render::timestamp(),
                    pid: std::process::id(),
                    host: crate::oplock::hostname(),
                    safety_backup: None,
                    record: c.inst.clone(),
                    steps_done: Vec::new(),
                };
                j.save()?;
                c.journal = Some(j);
                Ok(())
            },
        ));
    if ctx.safety {
        plan = plan.step(step(
            "safety-backup",
            format!("Taking a safety backup of {name} (a restore can itself be undone)"),
            |c: &mut RestoreCtx, rep| {
                let a = take::take(
                    c.ct.as_ref(),
                    &c.inst,
                    &c.loaded,
                    &c.backup_dir,
                    crate::backup::archive::Compression::Zstd,
                    &format!("{SAFETY_REASON} {}", c.archive.display()),
                    rep,
                )?;
                rep.info(format!("safety backup: {}", a.path.display()));
                if let Some(j) = c.journal.as_mut() {
                    j.safety_backup = Some(a.path.display().to_string());
                }
                c.safety_archive = Some(a.path);
                Ok(())
            },
        ));
    }
    plan.step(
        step("stage", "Streaming the archive into the container", stage)
            .with_undo(|c: &mut RestoreCtx, _| c.sh(&format!("rm -rf {}", q(&c.stage())))),
    )
    .step(
        step("stop-app", "Stopping the app", |c: &mut RestoreCtx, rep| {
            c.sh(&format!("systemctl stop {}", c.main_unit()))?;
            rep.info(format!("{} stopped", c.main_unit()));
            Ok(())
        })
        .with_undo(|c: &mut RestoreCtx, _| c.sh(&format!("systemctl start {}", c.main_unit()))),
    )
    .step(undoable(
        "database",
        "Restoring the database",
        database,
        database_undo,
    ))
    .step(undoable(
        "services",
        "Restoring the services' data",
        services,
        services_undo,
    ))
    .step(undoable(
        "files",
        "Restoring the app's files",
        files,
        files_undo,
    ))
    .step(undoable(
        "config",
        "Restoring the config and the record",
        config,
        config_undo,
    ))
    .step(step(
        "start-app",
        "Starting the app and checking its health",
        start_app,
    ))
    .step(FnStep::new(
        "cleanup",
        "Removing the previous state",
        cleanup,
    ))
}

/// The reason written into a safety backup's manifest (how pruning recognises them).
pub const SAFETY_REASON: &str = "safety backup before restoring";

fn archive_refusal(c: &mut RestoreCtx, e: anyhow::Error) -> anyhow::Error {
    if !archive::is_archive_problem(&e) {
        return e;
    }
    let text = format!("{e:#}");
    c.refusal = Some(LaunchError::bad_input(
        c.archive.display().to_string(),
        format!("refused, nothing was changed: {text}"),
        format!(
            "use another archive (`launch-tui backups {}` lists them with their verification state)",
            c.inst.name
        ),
    ));
    anyhow::anyhow!("{text}")
}

/// The manifest alone (the archive's first entry, capped): everything that can be decided
/// from it is, before the whole archive is read.
fn read_manifest(c: &mut RestoreCtx, _: &Reporter) -> Result<()> {
    match archive::read_manifest(&c.archive) {
        Ok(m) => {
            c.manifest = Some(m);
            Ok(())
        }
        Err(e) => Err(archive_refusal(c, e)),
    }
}

fn verify_archive(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    match archive::walk(&c.archive, |_, _| Ok(())) {
        Ok(m) => {
            rep.info(format!(
                "{} entries verified ({} and size of each), format {}, {} {} from {}",
                m.entries.len(),
                m.hash_algorithm().name(),
                m.format,
                m.profile.name,
                m.app_version,
                m.created
            ));
            if Some(&m) != c.manifest.as_ref() {
                bail!("the archive changed while it was being read");
            }
            Ok(())
        }
        Err(e) => Err(archive_refusal(c, e)),
    }
}

fn refuse(c: &mut RestoreCtx, problem: String, help: String) -> Result<()> {
    c.refusal = Some(LaunchError::bad_input(
        c.archive.display().to_string(),
        format!("{problem}; nothing was changed"),
        help,
    ));
    bail!("{problem}")
}

fn check(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let m = c.manifest().clone();
    let name = c.inst.name.clone();
    if m.profile.name != c.inst.profile {
        return refuse(
            c,
            format!(
                "the archive holds a {} instance, `{name}` is {}",
                m.profile.name, c.inst.profile
            ),
            "restore it into an instance of the same app, or into a new one with --to-new NAME2"
                .into(),
        );
    }
    let kind = DbContext::for_instance(&c.inst).kind;
    if m.database.kind != kind {
        return refuse(
            c,
            format!(
                "the archive holds a {} database, `{name}` uses {kind}",
                m.database.kind
            ),
            format!(
                "restore it into a new instance instead: `launch-tui restore {} {} --to-new NAME2`",
                m.instance.name,
                c.archive.display()
            ),
        );
    }
    if m.app_version != c.inst.app_version {
        return refuse(
            c,
            format!(
                "the archive is of {} {}, `{name}` runs {}; a restore needs the same version",
                m.profile.name, m.app_version, c.inst.app_version
            ),
            format!(
                "move the instance to that version first: `launch-tui update {name} --version {v}`, then run this restore again; or restore into a new container: `launch-tui restore {name} {a} --to-new {name}-restored`",
                v = m.app_version,
                a = c.archive.display()
            ),
        );
    }
    let problems = archive_record_problems(&c.loaded.profile, &m.instance);
    if !problems.is_empty() {
        c.refusal = Some(LaunchError::InvalidValues(problems));
        bail!("the archive's record holds values install would refuse; nothing was changed");
    }
    if let Err(problem) = check_contents(&m, &c.loaded) {
        return refuse(
            c,
            problem,
            format!(
                "use another archive (`launch-tui backups {name}`); an archive made by `launch-tui backup` never holds this"
            ),
        );
    }
    let need = archive::declared_size(&m).saturating_add(SPACE_MARGIN);
    let free = free_space(c)?;
    if need > free {
        return refuse(
            c,
            format!(
                "the archive declares {} of files; CT {} has {} free in /var/lib/{} (a restore needs {} with room to work)",
                take::mib(archive::declared_size(&m)),
                c.vmid(),
                take::mib(free),
                c.p(),
                take::mib(need)
            ),
            format!(
                "grow the container's disk (`pct resize {} rootfs +NG`) or free space in it, then run the restore again",
                c.vmid()
            ),
        );
    }
    rep.info(format!(
        "{} of files to restore, {} free in CT {}",
        take::mib(archive::declared_size(&m)),
        take::mib(free),
        c.vmid()
    ));
    if m.instance.name != name {
        rep.info(format!(
            "the archive was taken of `{}`; restoring it into `{name}`",
            m.instance.name
        ));
    }
    Ok(())
}

/// Room a restore needs besides the archive's files (the database's own work, logs).
const SPACE_MARGIN: u64 = 64 << 20;

/// Free bytes where the restore stages (the filesystem of `/var/lib/PROFILE`).
fn free_space(c: &RestoreCtx) -> Result<u64> {
    let out = sh(
        c.ct.as_ref(),
        c.vmid(),
        &format!(
            "mkdir -p {d} && df -P -B1 {d} | awk 'NR==2 {{print $4}}'",
            d = q(&format!("/var/lib/{}", c.p()))
        ),
    )?;
    out.stdout.trim().parse().with_context(|| {
        format!(
            "cannot read the free space in CT {} (df said `{}`)",
            c.vmid(),
            out.stdout.trim()
        )
    })
}

/// What an archive may hold for this profile, beyond the archive's own consistency: config
/// entries only at the paths the profile lists (and their parent directories), and the app's
/// file trees (`data/PATH`) as directories, not links. `backups --verify` runs it too.
pub fn check_contents(m: &Manifest, loaded: &LoadedProfile) -> std::result::Result<(), String> {
    let listed: Vec<&str> = loaded
        .profile
        .backup
        .config
        .iter()
        .map(|c| c.path())
        .collect();
    let roots: Vec<String> = take::data_paths(loaded)
        .map_err(|e| format!("{e:#}"))?
        .iter()
        .map(|p| format!("data/{p}"))
        .collect();
    for e in &m.entries {
        if let Some(abs) = e.path.strip_prefix("config") {
            let ok = match e.kind {
                EntryKind::File => listed.contains(&abs),
                EntryKind::Dir => {
                    abs.is_empty()
                        || listed
                            .iter()
                            .any(|l| l.starts_with(abs) && l[abs.len()..].starts_with('/'))
                }
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "the archive holds `{}` ({:?}), which is not one of the config files the {} profile restores ({})",
                    e.path,
                    e.kind,
                    loaded.profile.name,
                    listed.join(", ")
                ));
            }
        }
        if roots.contains(&e.path) && e.kind != EntryKind::Dir {
            return Err(format!(
                "`{}` is a {:?}; the app's files are restored as a directory",
                e.path, e.kind
            ));
        }
    }
    Ok(())
}

fn stage(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let vmid = c.vmid();
    let stage = c.stage();
    c.sh(&format!(
        "rm -rf {s} && mkdir -p {root} && mkdir -m 0700 {s}",
        s = q(&stage),
        root = q(&format!("/var/lib/{}", c.p()))
    ))?;
    // Owners and modes are never the archive's: everything is staged as root without
    // setuid/setgid/sticky bits; the steps below give each file its owner from the profile.
    let mut child = c.ct.spawn(
        vmid,
        &["tar", "-x", "--no-same-owner", "-C", &stage, "-f", "-"],
        true,
    )?;
    let stdin = child
        .stdin()
        .context("no input pipe to tar in the container")?;
    let mut out = tar::Builder::new(BufWriter::with_capacity(1 << 20, stdin));
    let mut bytes = 0u64;
    let mut last = 0u64;
    // The archive is read again and checked again: it could have changed since the first
    // pass. Nothing staged is used unless this whole pass succeeds.
    let walked = archive::walk(&c.archive, |e, data| {
        let r = e.record;
        let mut h = tar::Header::new_gnu();
        h.set_mode(r.mode & 0o777);
        h.set_uid(0);
        h.set_gid(0);
        let _ = h.set_username("root");
        let _ = h.set_groupname("root");
        let _ = &e.owner;
        match r.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                out.append_data(&mut h, &r.path, std::io::empty())?;
            }
            EntryKind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(r.size);
                out.append_data(&mut h, &r.path, data)?;
                bytes += r.size;
                if bytes - last >= 64 << 20 {
                    last = bytes;
                    rep.progress(bytes, None, Some(format!("{} MiB", bytes >> 20)));
                }
            }
            EntryKind::Symlink | EntryKind::Hardlink => {
                h.set_entry_type(if r.kind == EntryKind::Symlink {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_size(0);
                out.append_link(&mut h, &r.path, r.link.as_deref().unwrap_or_default())?;
            }
        }
        Ok(())
    });
    let finished = walked.and_then(|m| {
        let mut w = out.into_inner()?;
        w.flush()?;
        drop(w);
        Ok(m)
    });
    match finished {
        Ok(m) => {
            child.finish()?;
            if Some(&m) != c.manifest.as_ref() {
                bail!("the archive changed while it was being restored");
            }
        }
        Err(e) => {
            child.kill();
            let _ = c.sh(&format!("rm -rf {}", q(&stage)));
            return Err(e);
        }
    }
    rep.info(format!("{} staged in {stage}", take::mib(bytes)));
    Ok(())
}

fn user(c: &RestoreCtx) -> String {
    c.loaded.profile.components[0].user.to_string()
}

/// Where this restore's dump is staged and the database goes.
fn spot<'a>(
    c: &'a RestoreCtx,
    dump: &'a str,
    data_dir: &'a str,
    user: &'a str,
    source_db: &'a str,
) -> RestoreSpot<'a> {
    RestoreSpot {
        dump,
        data_dir,
        sqlite_file: c.loaded.profile.backup.sqlite_file.as_deref(),
        user,
        source_db,
    }
}

fn database(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let m = c.manifest().clone();
    let db = DbContext::for_instance(&c.inst);
    let adapter = db.adapter();
    let dump = format!("{}/{}", c.stage(), m.database.entry);
    let (data_dir, u) = (c.data_dir(), user(c));
    let source = if adapter.is_server() {
        m.database.source(&m.instance)?
    } else {
        String::new()
    };
    let Some(restore) = adapter.restore(&db, &spot(c, &dump, &data_dir, &u, &source))? else {
        rep.info("a files-only app: no database to restore");
        return Ok(());
    };
    take::ensure_tools(c.ct.as_ref(), c.vmid(), &db, rep)?;
    if let Some((path, text)) = &restore.secret {
        c.ct.write(c.vmid(), path, text.as_bytes(), 0o600, None)?;
    }
    let r = c.sh(&restore.script);
    if let Some((path, _)) = &restore.secret {
        let _ = c.ct.exec(c.vmid(), &["rm", "-f", path]);
    }
    r?;
    if restore.in_place {
        rep.warn(format!(
            "the {} database was restored in place: if a later step fails, put the previous state back from the safety backup{}",
            db.kind,
            c.safety_archive
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        ));
    }
    rep.info(format!(
        "{} database restored from {}",
        db.kind, m.database.entry
    ));
    Ok(())
}

/// Puts the previous database back, from what is on disk: safe to run whether or not the
/// database step ran (or finished), as a recovery does.
fn database_undo(c: &mut RestoreCtx, _: &Reporter) -> Result<()> {
    let db = DbContext::for_instance(&c.inst);
    let (data_dir, u) = (c.data_dir(), user(c));
    match db
        .adapter()
        .restore_undo(&db, &spot(c, "", &data_dir, &u, ""))
    {
        Some(script) => c.sh(&script),
        None => Ok(()),
    }
}

/// Each service the instance uses gets the archive's dump of it; an archive without one (taken
/// before the service was turned on) leaves the service's data as it is.
fn services(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let m = c.manifest().clone();
    let adapters: Vec<_> = crate::service::enabled(&c.loaded.profile, &c.inst.settings).collect();
    for a in adapters {
        let entry = a.dump_entry();
        if !m
            .entries
            .iter()
            .any(|e| e.path == entry && e.kind == EntryKind::File)
        {
            rep.warn(format!(
                "the archive holds no {} data ({entry}): {} keeps what it has",
                a.title(),
                a.title()
            ));
            continue;
        }
        let dump = format!("{}/{entry}", c.stage());
        c.sh(&a.restore_scripts(&dump).restore)
            .with_context(|| format!("restoring {}'s data", a.title()))?;
        rep.info(format!("{} data restored from {entry}", a.title()));
    }
    Ok(())
}

/// Puts each service's previous data back (safe whether or not `services` ran).
fn services_undo(c: &mut RestoreCtx, _: &Reporter) -> Result<()> {
    let adapters: Vec<_> = crate::service::enabled(&c.loaded.profile, &c.inst.settings).collect();
    for a in adapters {
        c.sh(&a.restore_scripts("").undo)?;
    }
    Ok(())
}

fn files(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let paths = take::data_paths(&c.loaded)?;
    let s = c.stage();
    let mut script = format!("set -e\nD={}\nS={}\n", q(&c.data_dir()), q(&s));
    for p in &paths {
        script.push_str(&format!(
            "rm -rf \"$D\"/{p}.launch-old\nif [ -e \"$D\"/{p} ]; then mv \"$D\"/{p} \"$D\"/{p}.launch-old; fi\nmkdir -p \"$(dirname \"$D\"/{p})\"\nif [ -e \"$S/data/\"{p} ]; then mv \"$S/data/\"{p} \"$D\"/{p}; else mkdir \"$D\"/{p}; fi\nchown -R -h {u}:{u} \"$D\"/{p}\n",
            p = q(p),
            u = user(c)
        ));
    }
    c.sh(&script)?;
    rep.info(format!("restored {}", paths.join(", ")));
    Ok(())
}

fn files_undo(c: &mut RestoreCtx, _: &Reporter) -> Result<()> {
    let paths = take::data_paths(&c.loaded)?;
    let mut script = format!("D={}\n", q(&c.data_dir()));
    for p in &paths {
        script.push_str(&format!(
            "if [ -e \"$D\"/{p}.launch-old ]; then rm -rf \"$D\"/{p}; mv \"$D\"/{p}.launch-old \"$D\"/{p}; fi\n",
            p = q(p)
        ));
    }
    c.sh(&script)
}

/// The record after the restore: the target's container, slot and database connection, with
/// the archive's answers to the profile's questions and the profile's secrets (the app's
/// signing secret, the admin's and the MCP server's tokens, which belong to the restored
/// database). Nothing else comes from the archive: no host paths, network identity or
/// credentials for the container. [`archive_record_problems`] has checked every value taken.
pub fn merged_record(profile: &Profile, target: &Instance, from: &Instance) -> Instance {
    let mut r = target.clone();
    for (k, v) in &from.settings {
        if taken_setting(profile, k) {
            r.settings.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &from.secrets {
        if taken_secret(profile, k) {
            r.secrets.insert(k.clone(), v.clone());
        }
    }
    r.updated = crate::engine::render::timestamp();
    r
}

fn taken_setting(profile: &Profile, key: &str) -> bool {
    !TARGET_SETTINGS.contains(&key) && (profile.question(key).is_some() || key == "old_hosts")
}

/// A service's password (`redis_password`) is the target's like the database's: its server in
/// the target container was set up with it.
fn taken_secret(profile: &Profile, key: &str) -> bool {
    key != "db_password"
        && !crate::service::SECRET_KEYS.contains(&key)
        && (profile.secrets.iter().any(|s| s.key.as_str() == key)
            || profile
                .bootstrap
                .as_ref()
                .is_some_and(|b| b.outputs.iter().any(|o| o.as_str() == key)))
}

/// The archive's record is as hostile as an answers file: every value taken from it is checked
/// exactly as install checks answers (all problems at once).
pub fn archive_record_problems(profile: &Profile, from: &Instance) -> Vec<InvalidValue> {
    use crate::install::settings::{check_answer, check_domain, check_value};
    let mut problems = Vec::new();
    let mut bad = |field: &str, value: &str, problem: String| {
        problems.push(InvalidValue {
            field: format!("archive: {field}"),
            value: value.to_string(),
            problem,
            help: "the archive's record was changed or made by hand: use another archive".into(),
        })
    };
    for (k, v) in &from.settings {
        if !taken_setting(profile, k) {
            continue;
        }
        if let Err(e) = check_value(k, v) {
            bad(k, v, e);
        } else if let Some(q) = profile.question(k) {
            if let Err(e) = check_answer(q.kind, v, q.min, q.max, &q.choices) {
                bad(k, v, e);
            }
        } else if let Some(h) = v.split(',').find(|h| check_domain(h).is_err()) {
            bad(
                k,
                v,
                format!("`{}` is not a host name", crate::escape::shown(h)),
            );
        }
    }
    for (k, v) in &from.secrets {
        if taken_secret(profile, k) {
            if let Err(e) = check_value(k, v) {
                bad(k, "(secret)", e);
            }
        }
    }
    problems
}

/// Writes every component's files and units for `inst` and saves its record (host and container).
fn render_all(c: &RestoreCtx, inst: &Instance) -> Result<()> {
    let vmid = c.vmid();
    let settings = AppSettings::of_instance(&c.loaded.profile, inst);
    let main = settings.main_component();
    let rc = settings.render_context(main, inst.active_slot, &inst.app_version);
    deploy::write_component_files(
        c.ct.as_ref(),
        vmid,
        &c.loaded.profile,
        main,
        &rc,
        Some(inst.active_slot),
    )?;
    for comp in settings.extra_components() {
        let rc = settings.render_context(comp, inst.active_slot, &inst.app_version);
        deploy::write_component_files(c.ct.as_ref(), vmid, &c.loaded.profile, comp, &rc, None)?;
    }
    c.sh("systemctl daemon-reload")?;
    c.store.save(inst)?;
    let text = serde_yaml_ng::to_string(inst)?;
    c.sh("mkdir -p /etc/launch && chmod 0700 /etc/launch")?;
    c.ct.write(
        vmid,
        "/etc/launch/instance.yaml",
        text.as_bytes(),
        0o600,
        None,
    )?;
    Ok(())
}

fn config(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let m = c.manifest().clone();
    let rendered: Vec<String> = c
        .loaded
        .profile
        .components
        .iter()
        .flat_map(|comp| {
            comp.files
                .iter()
                .filter(|f| !f.seed)
                .map(|f| f.path.clone())
        })
        .collect();
    let s = c.stage();
    // Files Launch renders come from the restored record below; the others the profile lists
    // go back with the owner and mode the profile gives them. Nothing else is written (the
    // check step refused archives holding anything else).
    for def in c.loaded.profile.backup.config.clone() {
        let abs = def.path().to_string();
        if rendered.contains(&abs) {
            continue;
        }
        let entry = format!("config{abs}");
        if !m
            .entries
            .iter()
            .any(|e| e.kind == EntryKind::File && e.path == entry)
        {
            continue;
        }
        let (u, g) = def.owner();
        // A new file beside the old one, then a rename: never written through a link, and the
        // old one kept for the undo.
        c.sh(&format!(
            "set -e\nA={a}\nT=\"$A.launch-new\"\nmkdir -p \"$(dirname \"$A\")\"\nrm -f \"$T\"\nif [ -L {src} ] || [ ! -f {src} ]; then echo 'the staged file is not a plain file' >&2; exit 3; fi\ninstall -o {u} -g {g} -m {mode:04o} {src} \"$T\"\nif [ -e \"$A\" ] || [ -L \"$A\" ]; then rm -f \"$A.launch-old\"; mv -fT \"$A\" \"$A.launch-old\"; fi\nmv -fT \"$T\" \"$A\"\n",
            a = q(&abs),
            src = q(&format!("{s}/{entry}")),
            u = q(&u),
            g = q(&g),
            mode = def.mode()
        ))?;
        rep.info(format!("restored {abs} ({u}:{g} {:04o})", def.mode()));
    }
    let merged = merged_record(&c.loaded.profile, &c.inst, &m.instance);
    c.old_record = Some(c.inst.clone());
    render_all(c, &merged)?;
    c.inst = merged;
    let settings = AppSettings::of_instance(&c.loaded.profile, &c.inst);
    let written: Vec<String> = std::iter::once(settings.main_component())
        .chain(settings.extra_components())
        .flat_map(|comp| {
            comp.files
                .iter()
                .filter(|f| !f.seed)
                .map(|f| f.path.clone())
        })
        .collect();
    rep.info(format!(
        "config rendered from the restored record ({})",
        written.join(", ")
    ));
    Ok(())
}

/// The profile's non-rendered config files, put back from their `.launch-old` copies.
fn config_files_undo(c: &RestoreCtx) -> Result<()> {
    let mut script = String::new();
    for def in &c.loaded.profile.backup.config {
        script.push_str(&format!(
            "A={a}\nrm -f \"$A.launch-new\"\nif [ -e \"$A.launch-old\" ] || [ -L \"$A.launch-old\" ]; then mv -fT \"$A.launch-old\" \"$A\"; fi\n",
            a = q(def.path())
        ));
    }
    if script.is_empty() {
        return Ok(());
    }
    c.sh(&script)
}

fn config_undo(c: &mut RestoreCtx, _: &Reporter) -> Result<()> {
    config_files_undo(c)?;
    if let Some(old) = c.old_record.take() {
        render_all(c, &old)?;
        c.inst = old;
    }
    Ok(())
}

fn start_app(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let vmid = c.vmid();
    let unit = c.main_unit();
    let settings = AppSettings::of_instance(&c.loaded.profile, &c.inst);
    let main = settings.main_component();
    let port = deploy::slot_port(main, c.inst.active_slot);
    c.sh(&format!("systemctl start {unit}"))?;
    let target = crate::health::Target {
        ct: c.ct.as_ref(),
        vmid,
        component: main,
        port,
    };
    crate::health::wait_healthy(
        &target,
        &unit,
        Duration::from_secs(1),
        Duration::from_secs(main.health.deadline_s as u64),
    )?;
    if let Some(v) = crate::health::running_version(&target)? {
        if v != c.inst.app_version {
            bail!(
                "the app reports version {v} after the restore, expected {}",
                c.inst.app_version
            );
        }
    }
    rep.info(format!("{} answers {}", target.what(), target.expected()));
    for comp in settings.extra_components() {
        let unit = Layout::unit_name(&c.p(), comp.name.as_str(), None);
        c.sh(&format!("systemctl restart {unit}"))?;
        crate::health::wait_healthy(
            &crate::health::Target {
                ct: c.ct.as_ref(),
                vmid,
                component: comp,
                port: comp.port.get(),
            },
            &unit,
            Duration::from_secs(1),
            Duration::from_secs(comp.health.deadline_s as u64),
        )?;
        rep.info(format!("{unit} restarted"));
    }
    // Through nginx, as users reach it.
    let nginx_check = crate::health::ThroughNginx::of(main);
    let code = crate::deploy::http_status(
        c.ct.as_ref(),
        vmid,
        &format!(
            "{}{}",
            crate::deploy::local_url(&c.inst.settings),
            nginx_check.path
        ),
    )?;
    if !nginx_check.accepts(&code) {
        bail!(
            "nginx answers {} for {}, expected {}",
            code,
            nginx_check.path,
            nginx_check.expected()
        );
    }
    Ok(())
}

fn cleanup(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let db = DbContext::for_instance(&c.inst);
    let mut script = format!("D={}\nrm -rf {}\n", q(&c.data_dir()), q(&c.stage()));
    for p in take::data_paths(&c.loaded)? {
        script.push_str(&format!("rm -rf \"$D\"/{}.launch-old\n", q(&p)));
    }
    for def in &c.loaded.profile.backup.config {
        script.push_str(&format!("rm -f {}.launch-old\n", q(def.path())));
    }
    let (data_dir, u) = (c.data_dir(), user(c));
    if let Some(more) = db
        .adapter()
        .restore_cleanup(&db, &spot(c, "", &data_dir, &u, ""))
    {
        script.push_str(&more);
    }
    for a in crate::service::enabled(&c.loaded.profile, &c.inst.settings) {
        script.push_str(&a.restore_scripts("").cleanup);
        script.push('\n');
    }
    if let Err(e) = c.sh(&script) {
        rep.warn(format!("could not remove the previous state: {e:#}"));
    }
    if let Some(j) = c.journal.take() {
        j.remove()?;
    }
    Ok(())
}

/// Finishes or undoes a restore that was cut off, from its journal and the container's state
/// (the caller holds the instance lock, so the process that ran it is gone). Once the restored
/// app had answered its health check, only the cleanup was left; before that, everything is
/// put back as it was (each undo checks what is really there, so a step cut off half-way is
/// undone too) and the app is started. Returns what was done.
pub fn recover(c: &mut RestoreCtx, j: RestoreJournal, rep: &Reporter) -> Result<String> {
    rep.info(format!(
        "found an unfinished restore of {} from {} (started {} by pid {} on {}, done: {})",
        j.instance,
        j.archive,
        j.started,
        j.pid,
        j.host,
        if j.steps_done.is_empty() {
            "nothing".to_string()
        } else {
            j.steps_done.join(", ")
        }
    ));
    c.journal = Some(j.clone());
    if j.steps_done.iter().any(|s| s == "start-app") {
        // The restored app served: keep it, and remove the previous state.
        c.inst = c.store.load(&j.instance)?;
        cleanup(c, rep)?;
        return Ok(format!(
            "finished the interrupted restore of {} from {} (the restored app had passed its health check)",
            j.instance, j.archive
        ));
    }
    c.inst = j.record.clone();
    c.old_record = Some(j.record.clone());
    let db = DbContext::for_instance(&c.inst);
    let kind = db.kind.clone();
    let in_place = db.adapter().restores_in_place() && j.steps_done.iter().any(|s| s == "stop-app");
    config_undo(c, rep)?;
    files_undo(c, rep)?;
    services_undo(c, rep)?;
    database_undo(c, rep)?;
    c.sh(&format!("rm -rf {}", q(&c.stage())))?;
    start_app(c, rep)?;
    if let Some(j) = c.journal.take() {
        j.remove()?;
    }
    let mut what = format!(
        "undid the interrupted restore of {} from {}: it runs as before",
        j.instance, j.archive
    );
    if in_place {
        what.push_str(&format!(
            "\n  its {kind} database may have been restored in place: check it, and if needed restore the safety backup{}",
            j.safety_backup
                .as_ref()
                .map(|p| format!(" (`launch-tui restore {} {p}`)", j.instance))
                .unwrap_or_default()
        ));
    }
    Ok(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{Container, Slot};

    fn inst(name: &str, vmid: u32, kv: &[(&str, &str)], secrets: &[(&str, &str)]) -> Instance {
        Instance {
            name: name.into(),
            profile: "vikunja".into(),
            app_version: "v1.0.0".into(),
            container: Container {
                node: "pve".into(),
                vmid,
                hostname: name.into(),
                ip: Some(format!("10.0.0.{vmid}")),
                storage: "local".into(),
            },
            active_slot: if vmid == 1 { Slot::Blue } else { Slot::Green },
            releases: vec!["v1.0.0".into()],
            previous: None,
            components: Default::default(),
            settings: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created: "c".into(),
            updated: "u".into(),
        }
    }

    fn manifest_with(entries: &[(&str, EntryKind)]) -> Manifest {
        Manifest {
            format: archive::FORMAT,
            hash: Some("blake3".into()),
            created: "c".into(),
            tool: "t".into(),
            reason: "backup".into(),
            instance: inst("old", 1, &[], &[]),
            profile: archive::ProfileRef {
                name: "vikunja".into(),
                format: 1,
                sha256: "0".into(),
            },
            app_version: "v1.0.0".into(),
            slot: Slot::Blue,
            database: archive::DatabaseDump {
                kind: "sqlite".into(),
                entry: "db/vikunja.db".into(),
                name: None,
            },
            entries: entries
                .iter()
                .map(|(p, k)| archive::EntryRecord {
                    path: p.to_string(),
                    kind: *k,
                    size: 0,
                    sha256: None,
                    blake3: None,
                    mode: 0o644,
                    link: None,
                })
                .collect(),
        }
    }

    #[test]
    fn only_the_profiles_config_files_may_be_restored() {
        let loaded = crate::profile::Catalog::new(std::path::Path::new("/nonexistent"))
            .load("vikunja")
            .unwrap();
        let ok = manifest_with(&[
            ("config", EntryKind::Dir),
            ("config/etc", EntryKind::Dir),
            ("config/etc/vikunja", EntryKind::Dir),
            ("config/etc/vikunja/config.yml", EntryKind::File),
            ("config/etc/vikunja/tls/cert.pem", EntryKind::File),
            ("data/files", EntryKind::Dir),
            ("data/files/1", EntryKind::File),
        ]);
        check_contents(&ok, &loaded).unwrap();
        for bad in [
            ("config/etc/cron.d/evil", EntryKind::File),
            ("config/usr/local/bin/evil", EntryKind::File),
            ("config/etc/cron.d", EntryKind::Dir),
            ("config/etc/vikunja/config.yml.d", EntryKind::Dir),
            ("config/etc/vikunja/config.yml", EntryKind::Symlink),
        ] {
            let e = check_contents(&manifest_with(&[bad]), &loaded).unwrap_err();
            assert!(e.contains("not one of the config files"), "{e}");
        }
        let e = check_contents(
            &manifest_with(&[("data/files", EntryKind::Symlink)]),
            &loaded,
        )
        .unwrap_err();
        assert!(e.contains("restored as a directory"), "{e}");
    }

    #[test]
    fn the_record_takes_answers_and_secrets_but_keeps_its_container_and_database() {
        let target = inst(
            "new",
            2,
            &[
                ("database", "postgres"),
                ("public_url", "http://new"),
                ("tls", "true"),
            ],
            &[("db_password", "target-db"), ("service_secret", "fresh")],
        );
        let archived = inst(
            "old",
            1,
            &[
                ("database", "postgres"),
                ("public_url", "http://old"),
                ("timezone", "Europe/Paris"),
            ],
            &[
                ("db_password", "old-db"),
                ("service_secret", "kept"),
                ("mcp_token", "tk_old"),
            ],
        );
        let profile = crate::profile::Catalog::new(std::path::Path::new("/none"))
            .load("vikunja")
            .unwrap()
            .profile;
        let m = merged_record(&profile, &target, &archived);
        assert_eq!(m.name, "new");
        assert_eq!(m.container, target.container);
        assert_eq!(m.active_slot, Slot::Green);
        assert_eq!(m.settings["public_url"], "http://old");
        assert_eq!(m.settings["timezone"], "Europe/Paris");
        assert_eq!(
            m.settings["tls"], "true",
            "the target's own TLS setting stays"
        );
        assert_eq!(m.secrets["db_password"], "target-db");
        assert_eq!(m.secrets["service_secret"], "kept");
        assert_eq!(m.secrets["mcp_token"], "tk_old");
    }
}
