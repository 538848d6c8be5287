//! Restoring an archive into an installed instance. The archive is checked completely before
//! anything is touched; then a safety backup of the current state is taken, the archive
//! streams into a staging directory in the container (checked again on the way), and the
//! database, files and config are swapped in while the app is stopped. Each swap keeps the old
//! state beside it until the app answers its health check, so a failure puts everything back.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::archive::{self, EntryKind, Manifest};
use super::take::{self, q};
use crate::ct::{sh, CtAccess};
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
            "verify-archive",
            format!("Verifying {}", ctx.archive.display()),
            verify_archive,
        ))
        .step(FnStep::new(
            "check",
            "Checking the archive fits the instance",
            check,
        ))
        .step(FnStep::new(
            "lock",
            format!("Locking {name}"),
            |c: &mut RestoreCtx, _| match lock_instance(
                &c.inst.name,
                "restore",
                Duration::ZERO,
                Box::new(crate::ct::Pct::find()?),
                c.vmid(),
            ) {
                Ok(l) => {
                    c.lock = Some(l);
                    Ok(())
                }
                Err(e) => {
                    let text = e.to_string();
                    c.refusal = Some(e);
                    bail!("{text}")
                }
            },
        ));
    if ctx.safety {
        plan = plan.step(FnStep::new(
            "safety-backup",
            format!("Taking a safety backup of {name} (a restore can itself be undone)"),
            |c: &mut RestoreCtx, rep| {
                let a = take::take(
                    c.ct.as_ref(),
                    &c.inst,
                    &c.loaded,
                    &c.backup_dir,
                    crate::cli::Compression::Zstd,
                    &format!("safety backup before restoring {}", c.archive.display()),
                    rep,
                )?;
                rep.info(format!("safety backup: {}", a.path.display()));
                c.safety_archive = Some(a.path);
                Ok(())
            },
        ));
    }
    plan.step(
        FnStep::new("stage", "Streaming the archive into the container", stage)
            .with_undo(|c: &mut RestoreCtx, _| c.sh(&format!("rm -rf {}", q(&c.stage())))),
    )
    .step(
        FnStep::new("stop-app", "Stopping the app", |c: &mut RestoreCtx, rep| {
            c.sh(&format!("systemctl stop {}", c.main_unit()))?;
            rep.info(format!("{} stopped", c.main_unit()));
            Ok(())
        })
        .with_undo(|c: &mut RestoreCtx, _| c.sh(&format!("systemctl start {}", c.main_unit()))),
    )
    .step(FnStep::new("database", "Restoring the database", database).with_undo(database_undo))
    .step(FnStep::new("files", "Restoring the app's files", files).with_undo(files_undo))
    .step(
        FnStep::new("config", "Restoring the config and the record", config).with_undo(config_undo),
    )
    .step(FnStep::new(
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

fn verify_archive(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    match archive::walk(&c.archive, |_, _| Ok(())) {
        Ok(m) => {
            rep.info(format!(
                "{} entries verified (sha256 and size of each), format {}, {} {} from {}",
                m.entries.len(),
                m.format,
                m.profile.name,
                m.app_version,
                m.created
            ));
            c.manifest = Some(m);
            Ok(())
        }
        Err(e) if archive::is_archive_problem(&e) => {
            let text = format!("{e:#}");
            c.refusal = Some(LaunchError::bad_input(
                c.archive.display().to_string(),
                format!("refused, nothing was changed: {text}"),
                format!(
                    "use another archive (`launch-tui backups {}` lists them with their verification state)",
                    c.inst.name
                ),
            ));
            bail!("{text}")
        }
        Err(e) => Err(e),
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
    if m.instance.name != name {
        rep.info(format!(
            "the archive was taken of `{}`; restoring it into `{name}`",
            m.instance.name
        ));
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
    let mut child =
        c.ct.spawn(vmid, &["tar", "-x", "-C", &stage, "-f", "-"], true)?;
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
        h.set_mode(r.mode & 0o7777);
        let _ = h.set_username(&e.owner.0);
        let _ = h.set_groupname(&e.owner.1);
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

fn database(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let m = c.manifest().clone();
    let db = DbContext::for_instance(&c.inst);
    let s = c.stage();
    let dump = format!("{s}/{}", m.database.entry);
    match db.kind.as_str() {
        "sqlite" => {
            let file = c
                .loaded
                .profile
                .backup
                .sqlite_file
                .clone()
                .context("the profile names no backup.sqlite_file")?;
            let f = format!("{}/{file}", c.data_dir());
            c.sh(&format!(
                "set -e\nF={f}\nfor x in '' -wal -shm -journal; do rm -f \"$F.launch-old$x\"; if [ -e \"$F$x\" ]; then mv \"$F$x\" \"$F.launch-old$x\"; fi; done\nmv {dump} \"$F\"\nchown {u}:{u} \"$F\"\nchmod 0640 \"$F\"\n",
                f = q(&f),
                dump = q(&dump),
                u = user(c)
            ))?;
        }
        "postgres" => {
            let n = &db.name;
            c.sh(&format!(
                "set -e\nrunuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d postgres -c 'DROP DATABASE IF EXISTS {n}_launch_old' -c 'ALTER DATABASE {n} RENAME TO {n}_launch_old' -c 'CREATE DATABASE {n} OWNER {u}'\n{{ echo 'SET ROLE {u};'; cat {dump}; }} | runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d {n} >/dev/null\n",
                u = db.user,
                dump = q(&dump)
            ))?;
        }
        "mariadb" => {
            let n = &db.name;
            c.sh(&format!(
                "set -e\nmariadb -e 'DROP DATABASE IF EXISTS `{n}`; CREATE DATABASE `{n}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'\nmariadb {n} < {dump}\n",
                dump = q(&dump)
            ))?;
            rep.warn(format!(
                "MariaDB is restored in place: if a later step fails, put the previous state back from the safety backup{}",
                c.safety_archive
                    .as_ref()
                    .map(|p| format!(" ({})", p.display()))
                    .unwrap_or_default()
            ));
        }
        "external-postgres" | "external-mariadb" => {
            take::ensure_tools(c.ct.as_ref(), c.vmid(), &db.kind, rep)?;
            let (path, text, cmd) = if db.kind == "external-postgres" {
                let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
                (
                    take::PGPASS,
                    format!(
                        "{}:{}:{}:{}:{}\n",
                        esc(&db.host),
                        db.port,
                        esc(&db.name),
                        esc(&db.user),
                        esc(&db.password)
                    ),
                    format!(
                        "PGPASSFILE={} psql -v ON_ERROR_STOP=1 -q -h {} -p {} -U {} -d {} -f {} >/dev/null",
                        take::PGPASS,
                        q(&db.host),
                        db.port,
                        q(&db.user),
                        q(&db.name),
                        q(&dump)
                    ),
                )
            } else {
                (
                    take::MYCNF,
                    format!(
                        "[client]\nhost={}\nport={}\nuser={}\npassword=\"{}\"\n",
                        db.host,
                        db.port,
                        db.user,
                        db.password.replace('\\', "\\\\").replace('"', "\\\"")
                    ),
                    format!(
                        "mariadb --defaults-extra-file={} {} < {}",
                        take::MYCNF,
                        q(&db.name),
                        q(&dump)
                    ),
                )
            };
            c.ct.write(c.vmid(), path, text.as_bytes(), 0o600, None)?;
            let r = c.sh(&cmd);
            let _ = c.ct.exec(c.vmid(), &["rm", "-f", path]);
            r?;
            rep.warn("the external database was restored in place: if a later step fails, put the previous state back from the safety backup");
        }
        other => bail!("database kind `{other}` cannot be restored"),
    }
    rep.info(format!(
        "{} database restored from {}",
        db.kind, m.database.entry
    ));
    Ok(())
}

fn database_undo(c: &mut RestoreCtx, _: &Reporter) -> Result<()> {
    let db = DbContext::for_instance(&c.inst);
    match db.kind.as_str() {
        "sqlite" => {
            let file = c
                .loaded
                .profile
                .backup
                .sqlite_file
                .clone()
                .unwrap_or_default();
            let f = format!("{}/{file}", c.data_dir());
            c.sh(&format!(
                "F={f}\nrm -f \"$F\"\nfor x in '' -wal -shm -journal; do if [ -e \"$F.launch-old$x\" ]; then mv \"$F.launch-old$x\" \"$F$x\"; fi; done\n",
                f = q(&f)
            ))
        }
        "postgres" => {
            let n = &db.name;
            c.sh(&format!(
                "runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d postgres -c 'DROP DATABASE IF EXISTS {n}' -c 'ALTER DATABASE {n}_launch_old RENAME TO {n}'"
            ))
        }
        _ => Ok(()),
    }
}

fn files(c: &mut RestoreCtx, rep: &Reporter) -> Result<()> {
    let paths = take::data_paths(&c.loaded)?;
    let s = c.stage();
    let mut script = format!("set -e\nD={}\nS={}\n", q(&c.data_dir()), q(&s));
    for p in &paths {
        script.push_str(&format!(
            "rm -rf \"$D\"/{p}.launch-old\nif [ -e \"$D\"/{p} ]; then mv \"$D\"/{p} \"$D\"/{p}.launch-old; fi\nmkdir -p \"$(dirname \"$D\"/{p})\"\nif [ -e \"$S/data/\"{p} ]; then mv \"$S/data/\"{p} \"$D\"/{p}; else mkdir \"$D\"/{p}; fi\nchown -R {u}:{u} \"$D\"/{p}\n",
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

fn taken_secret(profile: &Profile, key: &str) -> bool {
    key != "db_password"
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
        .flat_map(|comp| comp.files.iter().map(|f| f.path.clone()))
        .collect();
    let s = c.stage();
    // Files Launch renders come from the restored record below; the others go back as they were.
    for e in m.entries.iter().filter(|e| e.kind == EntryKind::File) {
        let Some(abs) = e.path.strip_prefix("config") else {
            continue;
        };
        if rendered.iter().any(|r| r == abs) {
            continue;
        }
        c.sh(&format!(
            "mkdir -p \"$(dirname {a})\" && cp -p {src} {a}",
            a = q(abs),
            src = q(&format!("{s}/{}", e.path))
        ))?;
        rep.info(format!("restored {abs}"));
    }
    let merged = merged_record(&c.loaded.profile, &c.inst, &m.instance);
    c.old_record = Some(c.inst.clone());
    render_all(c, &merged)?;
    c.inst = merged;
    let settings = AppSettings::of_instance(&c.loaded.profile, &c.inst);
    let written: Vec<String> = std::iter::once(settings.main_component())
        .chain(settings.extra_components())
        .flat_map(|comp| comp.files.iter().map(|f| f.path.clone()))
        .collect();
    rep.info(format!(
        "config rendered from the restored record ({})",
        written.join(", ")
    ));
    Ok(())
}

fn config_undo(c: &mut RestoreCtx, _: &Reporter) -> Result<()> {
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
    let url = format!("http://127.0.0.1:{port}{}", main.health.path);
    deploy::wait_healthy(
        c.ct.as_ref(),
        vmid,
        &unit,
        &url,
        main.health.expect_status,
        Duration::from_secs(1),
        Duration::from_secs(main.health.deadline_s as u64),
    )?;
    if let Some(v) = deploy::running_version(c.ct.as_ref(), vmid, main, port)? {
        if v != c.inst.app_version {
            bail!(
                "the app reports version {v} after the restore, expected {}",
                c.inst.app_version
            );
        }
    }
    rep.info(format!("{url} answers {}", main.health.expect_status));
    for comp in settings.extra_components() {
        let unit = Layout::unit_name(&c.p(), comp.name.as_str(), None);
        c.sh(&format!("systemctl restart {unit}"))?;
        deploy::wait_healthy(
            c.ct.as_ref(),
            vmid,
            &unit,
            &format!("http://127.0.0.1:{}{}", comp.port.get(), comp.health.path),
            comp.health.expect_status,
            Duration::from_secs(1),
            Duration::from_secs(comp.health.deadline_s as u64),
        )?;
        rep.info(format!("{unit} restarted"));
    }
    // Through nginx, as users reach it.
    let code = crate::deploy::http_status(
        c.ct.as_ref(),
        vmid,
        &format!(
            "{}{}",
            crate::deploy::local_url(&c.inst.settings),
            main.health.path
        ),
    )?;
    if code != main.health.expect_status.to_string() {
        bail!(
            "nginx answers {} for {}, expected {}",
            code,
            main.health.path,
            main.health.expect_status
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
    if let Some(f) = &c.loaded.profile.backup.sqlite_file {
        script.push_str(&format!(
            "rm -f \"$D\"/{f}.launch-old \"$D\"/{f}.launch-old-wal \"$D\"/{f}.launch-old-shm \"$D\"/{f}.launch-old-journal\n",
            f = q(f)
        ));
    }
    if db.kind == "postgres" {
        script.push_str(&format!(
            "runuser -u postgres -- psql -q -d postgres -c 'DROP DATABASE IF EXISTS {}_launch_old'\n",
            db.name
        ));
    }
    if let Err(e) = c.sh(&script) {
        rep.warn(format!("could not remove the previous state: {e:#}"));
    }
    Ok(())
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
