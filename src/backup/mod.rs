//! `launch-tui backup`, `backups` and `restore` (issue #7): verified, portable archives of an
//! instance (database dump, config, files, and the record that a faithful restore needs), and
//! restores into the same instance or into a new container.

pub mod archive;
pub mod report;
pub mod restore;
pub mod take;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ct::{CtAccess, Pct};
use crate::engine::render::{operation_log_path, OperationViews};
use crate::engine::{execute, FnStep, Plan};
use crate::error::{LaunchError, Result};
use crate::instance::{check_instance_name, Instance, InstanceStore};
use crate::oplock::{lock_instance, state_dir, InstanceLock};
use crate::profile::{Catalog, LoadedProfile};
use crate::report::{Outcome, Output};
use crate::site::Site;
pub use archive::Compression;

pub use take::BackupArchive;

/// Where an instance's archives go unless `--to` says otherwise.
pub fn default_dir(name: &str) -> PathBuf {
    state_dir().join("backups").join(name)
}

use take::mib;

struct BackupCtx {
    ct: Box<dyn CtAccess>,
    inst: Instance,
    loaded: LoadedProfile,
    dir: PathBuf,
    compression: Compression,
    lock: Option<InstanceLock>,
    locked: Option<LaunchError>,
    result: Option<BackupArchive>,
}

/// A backup to take, as plain data (no clap types).
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub name: String,
    /// The directory for the archive; None: `default_dir(name)`.
    pub to: Option<PathBuf>,
    pub compression: Compression,
}

/// An instance's backups to list, or one archive to verify.
#[derive(Debug, Clone)]
pub struct BackupsRequest {
    pub name: String,
    pub verify: Option<PathBuf>,
}

/// An archive to restore into its instance, or into a new one.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub name: String,
    pub archive: PathBuf,
    /// Install a new instance with this name from the archive's record, then restore into it.
    pub to_new: Option<String>,
    /// Safety backups (one is taken before each restore) to keep; older ones are removed.
    pub keep_safety_backups: usize,
}

pub fn backup(g: &Site, a: &BackupRequest, out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    let store = InstanceStore::new(&g.config);
    let inst = store.load(&a.name)?;
    let loaded = Catalog::new(&g.config).load(&inst.profile)?;
    let dir = a.to.clone().unwrap_or_else(|| default_dir(&a.name));
    let vmid = inst.container.vmid;
    let log_path = operation_log_path(&a.name, "backup");
    let plan = Plan::new("backup", Some(a.name.clone()))
        .step(FnStep::new(
            "lock",
            format!("Locking {}", a.name),
            |c: &mut BackupCtx, _| {
                match lock_instance(
                    &c.inst.name,
                    "backup",
                    Duration::ZERO,
                    Box::new(Pct::find()?),
                    c.inst.container.vmid,
                ) {
                    Ok(l) => c.lock = Some(l),
                    Err(e @ LaunchError::Locked(_)) => {
                        let t = e.to_string();
                        c.locked = Some(e);
                        anyhow::bail!("{t}");
                    }
                    Err(e) => {
                        return Err(take::explain(
                            anyhow::anyhow!("cannot lock the instance: {e}"),
                            c.inst.container.vmid,
                            &c.dir,
                            "nothing was written",
                        ))
                    }
                }
                Ok(())
            },
        ))
        .step(FnStep::new(
            "backup",
            format!(
                "Backing up {} (database, config, files) from CT {vmid}",
                a.name
            ),
            |c: &mut BackupCtx, rep| {
                let r = take::take(
                    c.ct.as_ref(),
                    &c.inst,
                    &c.loaded,
                    &c.dir,
                    c.compression,
                    "backup",
                    rep,
                )?;
                c.result = Some(r);
                Ok(())
            },
        ));
    let mut ctx = BackupCtx {
        ct: Box::new(Pct::find()?),
        inst,
        loaded,
        dir,
        compression: a.compression,
        lock: None,
        locked: None,
        result: None,
    };
    // Ctrl+C stops the streaming child; the step then fails and removes the partial archive.
    crate::engine::handle_interrupts();
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    let r = execute(plan, &mut ctx, &mut views.all(), false);
    drop(ctx.lock.take());
    if let Err(e) = r {
        if let Some(l) = ctx.locked.take() {
            return Err(l);
        }
        return Err(LaunchError::Failed(anyhow::anyhow!(
            "backup of {} failed: {}\n  log: {}",
            a.name,
            e.error
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": "),
            log_path.display()
        )));
    }
    let r = ctx.result.expect("backup step ran");
    Ok(Outcome::of(&report::BackupReport {
        instance: a.name.clone(),
        archive: r.path,
        size: r.size,
        entries: r.entries,
        verified: true,
    }))
}

/// What `backups` shows about one archive's verification.
fn verification_state(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return "unreadable".into();
    };
    let Ok(text) = std::fs::read_to_string(take::verified_marker(path)) else {
        return "not verified".into();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default();
    if v["size"].as_u64() == Some(meta.len()) && v["mtime_ns"].as_str() == Some(mtime.as_str()) {
        format!("verified {}", v["verified"].as_str().unwrap_or("?"))
    } else {
        "changed since verified".into()
    }
}

pub fn backups(g: &Site, a: &BackupsRequest, _out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    let _ = g;
    if let Some(path) = &a.verify {
        return verify(g, &a.name, path);
    }
    let dir = default_dir(&a.name);
    let mut found = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = archive::parse_file_name(&a.name, &file) {
                found.push((n, e.path()));
            }
        }
    }
    found.sort_by_key(|(n, _)| n.created);
    let backups = found
        .iter()
        .map(|(n, path)| report::ListedBackup {
            archive: path.clone(),
            created: n
                .created
                .format(&time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .unwrap_or_default(),
            version: n.version.clone(),
            size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            state: verification_state(path),
            reason: archive::read_manifest(path)
                .map(|m| m.reason)
                .unwrap_or_else(|e| format!("unreadable: {e}")),
        })
        .collect();
    Ok(Outcome::of(&report::BackupsReport {
        instance: a.name.clone(),
        dir,
        backups,
    }))
}

/// What can be decided from the manifest alone, before the whole archive is read: the archive
/// holds only what the profile restores, and (when `name` is installed) fits in its container.
fn verify_contents(g: &Site, name: &str, path: &Path) -> anyhow::Result<()> {
    let m = archive::read_manifest(path)?;
    let store = InstanceStore::new(&g.config);
    let inst = store
        .path_of(name)
        .exists()
        .then(|| store.load(name))
        .transpose()?;
    let profile_name = match &inst {
        Some(i) => i.profile.clone(),
        None => m.profile.name.clone(),
    };
    if profile_name.is_empty()
        || !profile_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(archive::ArchiveProblem(format!(
            "the manifest names the profile `{}`, which is not a profile name",
            profile_name.escape_debug()
        ))
        .into());
    }
    let loaded = Catalog::new(&g.config).load(&profile_name)?;
    restore::check_contents(&m, &loaded).map_err(archive::ArchiveProblem)?;
    if let Some(inst) = inst {
        let vmid = inst.container.vmid;
        let ct = Pct::find()?;
        let out = crate::ct::sh(
            &ct,
            vmid,
            &format!(
                "mkdir -p /var/lib/{p} && df -P -B1 /var/lib/{p} | awk 'NR==2 {{print $4}}'",
                p = loaded.profile.name
            ),
        )?;
        if let Ok(free) = out.stdout.trim().parse::<u64>() {
            let need = archive::declared_size(&m).saturating_add(64 << 20);
            if need > free {
                return Err(archive::ArchiveProblem(format!(
                    "the archive declares {} of files; {name}'s container (CT {vmid}) has {} free: restoring it there would fill its disk",
                    mib(archive::declared_size(&m)),
                    mib(free)
                ))
                .into());
            }
        }
    }
    Ok(())
}

fn verify(g: &Site, name: &str, path: &Path) -> Result<Outcome> {
    if !path.is_file() {
        return Err(LaunchError::bad_input(
            path.display().to_string(),
            "no such archive",
            format!("list the backups with `launch-tui backups {name}`"),
        ));
    }
    match verify_contents(g, name, path).and_then(|()| archive::walk(path, |_, _| Ok(()))) {
        Ok(m) => {
            let _ = take::mark_verified(path);
            Ok(Outcome::of(&report::VerifyReport {
                archive: path.to_path_buf(),
                verified: true,
                entries: m.entries.len(),
                format: m.format,
                hash: m.hash_algorithm().name().to_string(),
                instance: m.instance.name.clone(),
                profile: m.profile.name.to_string(),
                version: m.app_version.clone(),
                created: m.created.clone(),
                reason: m.reason.clone(),
                size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            }))
        }
        Err(e) => {
            let _ = std::fs::remove_file(take::verified_marker(path));
            if archive::is_archive_problem(&e) {
                Err(LaunchError::bad_input(
                    path.display().to_string(),
                    format!("verification failed: {e:#}"),
                    "do not restore from it; use another backup (`launch-tui backups NAME`)",
                ))
            } else {
                Err(LaunchError::Failed(
                    e.context(format!("cannot verify {}", path.display())),
                ))
            }
        }
    }
}

pub fn restore(g: &Site, a: &RestoreRequest, out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    if let Some(new) = &a.to_new {
        return restore_to_new(g, a, new, out);
    }
    if let Some(what) = recover_unfinished(g, out, &a.name)? {
        out.note(format!("{}: {what}", a.name));
    }
    let store = InstanceStore::new(&g.config);
    let inst = store.load(&a.name)?;
    let loaded = Catalog::new(&g.config).load(&inst.profile)?;
    let ctx = restore::RestoreCtx {
        ct: Box::new(Pct::find()?),
        store,
        loaded,
        inst,
        archive: a.archive.clone(),
        backup_dir: default_dir(&a.name),
        safety: true,
        manifest: None,
        refusal: None,
        lock: None,
        safety_archive: None,
        old_record: None,
        journal: None,
    };
    run_restore(ctx, &a.name, a.keep_safety_backups, out).map(|r| Outcome::of(&r))
}

/// For `status`, `update`, `rollback` and `restore`: finishes or undoes a restore that was cut
/// off, when no process runs it any more. Returns what was done, or None when there was
/// nothing to do (or it still runs).
pub fn recover_unfinished(g: &Site, out: &Output, name: &str) -> Result<Option<String>> {
    check_instance_name(name)?;
    if restore::RestoreJournal::load(name)
        .map_err(LaunchError::Failed)?
        .is_none()
    {
        return Ok(None);
    }
    let store = InstanceStore::new(&g.config);
    let inst = store.load(name)?;
    let vmid = inst.container.vmid;
    let lock = match lock_instance(
        name,
        "recover",
        Duration::ZERO,
        Box::new(Pct::find()?),
        vmid,
    ) {
        Ok(l) => l,
        Err(LaunchError::Locked(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Read again under the lock: the holder may have just finished.
    let Some(journal) = restore::RestoreJournal::load(name).map_err(LaunchError::Failed)? else {
        return Ok(None);
    };
    let loaded = Catalog::new(&g.config).load(&inst.profile)?;
    let mut ctx = restore::RestoreCtx {
        ct: Box::new(Pct::find()?),
        store,
        loaded,
        inst,
        archive: PathBuf::from(&journal.archive),
        backup_dir: default_dir(name),
        safety: false,
        manifest: None,
        refusal: None,
        lock: Some(lock),
        safety_archive: journal.safety_backup.as_ref().map(PathBuf::from),
        old_record: None,
        journal: None,
    };
    let log_path = operation_log_path(name, "recover");
    let done = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let said = done.clone();
    let plan = Plan::new("recover", Some(name.to_string())).step(FnStep::new(
        "recover-restore",
        "Finishing or undoing the interrupted restore",
        move |c: &mut restore::RestoreCtx, rep| {
            let what = restore::recover(c, journal.clone(), rep)?;
            rep.info(what.clone());
            *said.lock().unwrap() = what;
            Ok(())
        },
    ));
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    execute(plan, &mut ctx, &mut views.all(), true).map_err(|e| {
        LaunchError::Failed(anyhow::anyhow!(
            "could not finish or undo the interrupted restore of {name}: {e}\n  help: the journal stays in {}; see the log {} and run the command again",
            restore::RestoreJournal::path(name).display(),
            log_path.display()
        ))
    })?;
    drop(ctx.lock.take());
    let what = done.lock().unwrap().clone();
    Ok(Some(what))
}

/// Removes all but the newest `keep` safety backups of an instance (those a restore took; the
/// user's own backups are never touched), and never `except` (the archive being restored).
pub fn prune_safety_backups(dir: &Path, name: &str, keep: usize, except: &Path) -> Vec<PathBuf> {
    let except = std::fs::canonicalize(except).unwrap_or_else(|_| except.to_path_buf());
    let mut found = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(n) = archive::parse_file_name(name, &file) else {
                continue;
            };
            let is_safety = archive::read_manifest(&e.path())
                .is_ok_and(|m| m.reason.starts_with(restore::SAFETY_REASON));
            if is_safety {
                found.push((n.created, file, e.path()));
            }
        }
    }
    found.sort();
    let excess = found.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for (_, _, p) in found.into_iter().take(excess) {
        if std::fs::canonicalize(&p).is_ok_and(|c| c == except) {
            continue;
        }
        if std::fs::remove_file(&p).is_ok() {
            let _ = std::fs::remove_file(take::verified_marker(&p));
            removed.push(p);
        }
    }
    removed
}

fn run_restore(
    mut ctx: restore::RestoreCtx,
    name: &str,
    keep_safety: usize,
    out: &Output,
) -> Result<report::RestoreReport> {
    let log_path = operation_log_path(name, "restore");
    let plan = restore::plan(&ctx);
    crate::engine::handle_interrupts();
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    let r = execute(plan, &mut ctx, &mut views.all(), false);
    if r.as_ref().is_err_and(|e| e.undo_failures.is_empty()) {
        // Put back as it was: nothing left for a recovery to do.
        if let Some(j) = ctx.journal.take() {
            let _ = j.remove();
        }
    }
    drop(ctx.lock.take());
    let pruned = if ctx.safety {
        prune_safety_backups(&ctx.backup_dir, name, keep_safety, &ctx.archive)
    } else {
        Vec::new()
    };
    for p in &pruned {
        out.note(format!(
            "removed the old safety backup {} (keeping the newest {keep_safety})",
            p.display()
        ));
    }
    if let Err(e) = r {
        if let Some(refusal) = ctx.refusal.take() {
            return Err(refusal);
        }
        let undo = if e.undo_failures.is_empty() {
            "the instance was put back as it was".to_string()
        } else {
            "some steps could not be undone (see above)".to_string()
        };
        let safety = ctx
            .safety_archive
            .as_ref()
            .map(|p| {
                format!(
                    "\n  the state before the restore is in {} (`launch-tui restore {name} {}`)",
                    p.display(),
                    p.display()
                )
            })
            .unwrap_or_default();
        return Err(LaunchError::Failed(anyhow::anyhow!(
            "restore of {name} failed: {e}\n  {undo}{safety}\n  log: {}",
            log_path.display()
        )));
    }
    let m = ctx.manifest.as_ref().expect("verified");
    Ok(report::RestoreReport {
        instance: name.to_string(),
        archive: ctx.archive.clone(),
        version: m.app_version.clone(),
        profile: m.profile.name.to_string(),
        taken: m.created.clone(),
        safety_backup: ctx.safety_archive.clone(),
        log: log_path,
        new_container: None,
    })
}

/// `restore NAME ARCHIVE --to-new NAME2`: install a new instance of the archive's app version
/// with the archive's answers (the install flow, unchanged), then restore into it.
fn restore_to_new(g: &Site, a: &RestoreRequest, new: &str, out: &Output) -> Result<Outcome> {
    let store = InstanceStore::new(&g.config);
    let bad = |problem: String, help: String| {
        LaunchError::bad_input(a.archive.display().to_string(), problem, help)
    };
    if store.path_of(new).exists() {
        return Err(LaunchError::bad_input(
            format!("--to-new {new}"),
            "an instance with this name is already installed; nothing was changed",
            format!(
                "choose another name, or restore into it: `launch-tui restore {new} {}`",
                a.archive.display()
            ),
        ));
    }
    // Verified before anything is created; the TLS certificate and key (if any) come out
    // on the way, for the new install.
    let tls_dir = tempfile::Builder::new()
        .prefix("launch-restore-tls")
        .tempdir()
        .map_err(|e| LaunchError::Failed(e.into()))?;
    let mut tls: BTreeMap<String, PathBuf> = BTreeMap::new();
    let m = archive::walk(&a.archive, |e, data| {
        let p = &e.record.path;
        if e.record.kind == archive::EntryKind::File
            && p.starts_with("config/etc/")
            && (p.ends_with("/tls/cert.pem") || p.ends_with("/tls/key.pem"))
        {
            let file = if p.ends_with("cert.pem") {
                "cert.pem"
            } else {
                "key.pem"
            };
            let dst = tls_dir.path().join(file);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&dst)?;
            std::io::copy(data, &mut f)?;
            tls.insert(file.into(), dst);
        }
        Ok(())
    })
    .map_err(|e| {
        if archive::is_archive_problem(&e) {
            bad(
                format!("refused, nothing was created: {e:#}"),
                format!("use another archive (`launch-tui backups {}`)", a.name),
            )
        } else {
            LaunchError::Failed(e)
        }
    })?;
    if m.instance.name != a.name {
        return Err(bad(
            format!(
                "the archive holds instance `{}`, not `{}`; nothing was created",
                m.instance.name, a.name
            ),
            format!(
                "name the archive's instance: `launch-tui restore {} {} --to-new {new}`",
                m.instance.name,
                a.archive.display()
            ),
        ));
    }
    if m.database.kind.starts_with("external-") {
        return Err(bad(
            format!(
                "the archive's database is {} ({}); a new instance would share it with the original; nothing was created",
                m.database.kind,
                m.instance.settings.get("db_host").cloned().unwrap_or_default()
            ),
            "restore into the existing instance instead (`launch-tui restore NAME ARCHIVE`), or install a new instance on a new database and restore into it".into(),
        ));
    }
    let catalog = Catalog::new(&g.config);
    let loaded = catalog.load(&m.profile.name)?;
    // The answers: the archive's answers to the profile's questions only (no host paths,
    // network identity or credentials for the new container), checked by install's own
    // resolver like any answers file; the record's other values first, like restore does.
    let problems = restore::archive_record_problems(&loaded.profile, &m.instance);
    if !problems.is_empty() {
        return Err(LaunchError::InvalidValues(problems));
    }
    let mut answers: BTreeMap<String, String> = m
        .instance
        .settings
        .iter()
        .filter(|(k, _)| loaded.profile.question(k).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    answers.insert("name".into(), new.to_string());
    answers.insert("version".into(), m.app_version.clone());
    if m.instance.settings.get("tls").map(String::as_str) == Some("true") {
        if let (Some(c), Some(k)) = (tls.get("cert.pem"), tls.get("key.pem")) {
            answers.insert("tls_cert".into(), c.display().to_string());
            answers.insert("tls_key".into(), k.display().to_string());
        }
    }
    // The install operation, then the restore operation: the install gets its request as data
    // (the archive's record), not as command-line flags.
    let req = crate::install::InstallRequest {
        profile: Some(m.profile.name.to_string()),
        answers: Some(answers),
        name: Some(new.to_string()),
        force: false,
        keep_on_failure: false,
        confirmed: true,
    };
    crate::install::run(g, &req, None, out).map_err(|e| {
        LaunchError::Failed(anyhow::anyhow!(
            "restore of {} into a new instance {new} failed while installing it: {e}",
            a.archive.display()
        ))
    })?;
    let store = InstanceStore::new(&g.config);
    let inst = store.load(new)?;
    let ctx = restore::RestoreCtx {
        ct: Box::new(Pct::find()?),
        store,
        loaded,
        inst,
        archive: a.archive.clone(),
        backup_dir: default_dir(new),
        safety: false,
        manifest: None,
        refusal: None,
        lock: None,
        safety_archive: None,
        old_record: None,
        journal: None,
    };
    let vmid = ctx.inst.container.vmid;
    let ip = ctx.inst.container.ip.clone().unwrap_or_default();
    match run_restore(ctx, new, a.keep_safety_backups, out) {
        Ok(mut r) => {
            r.new_container = Some(report::NewContainer { vmid, ip });
            Ok(Outcome::of(&r))
        }
        Err(e) => Err(LaunchError::Failed(anyhow::anyhow!(
            "{e}\n  the new instance {new} (CT {vmid}) was installed but holds no restored data: retry with `launch-tui restore {new} {}` or remove it with `launch-tui uninstall {new} --yes`",
            a.archive.display()
        ))),
    }
}

use std::os::unix::fs::OpenOptionsExt;
