//! Everything the TUI waits on, each on its own thread, reporting to the loop as a `Msg`: the
//! instance records, the status checks, the locks (also those of other processes and hosts),
//! log files, the keyboard, and the operations. An operation is the real command run as a child
//! with `--json`: its stdout is the engine's events, one per line, then the report; cancelling
//! is SIGINT to that child alone (the engine stops between steps and undoes), so a run on one
//! instance never disturbs a run on another, or the TUI.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{self, Event as TermEvent, KeyEvent, KeyEventKind};

use super::app::OpKind;
use super::model::{human_age, PastOp, Row};
use crate::engine::render::log_root;
use crate::engine::{Event, Level};
use crate::instance::{Instance, InstanceStore};
use crate::oplock::{state_dir, Holder};
use crate::profile::{Catalog, Channel};
use crate::site::Site;
use crate::status::Check;

pub enum Msg {
    Key(KeyEvent),
    Resize,
    Rows(Result<Vec<Row>, String>),
    Checks(String, Vec<Check>),
    /// One check of an instance, the moment it returned (the full list follows as `Checks`).
    Check(String, Check),
    Locks(BTreeMap<String, Holder>),
    Log(String, Vec<String>),
    Op(String, OpMsg),
    Profiles(Vec<crate::profile::Profile>),
    Facts(Result<crate::install::settings::NodeFacts, String>),
    UpdateProfile(String, Box<Result<crate::profile::Profile, String>>),
    UpdateCheck(String, Result<serde_json::Value, String>),
    Reconfigure(
        String,
        Box<Result<(Instance, crate::profile::Profile), String>>,
    ),
    Drift(String, Result<Vec<String>, String>),
    Backups(String, Result<serde_json::Value, String>),
}

pub enum OpMsg {
    Event(Event),
    Line(Level, String),
    Exited {
        result: Option<serde_json::Value>,
        code: Option<i32>,
    },
}

/// Reads keys and resizes; polls so that it notices the end of the TUI within 250 ms.
pub fn input(tx: Sender<Msg>, stop: Arc<std::sync::atomic::AtomicBool>) {
    std::thread::spawn(move || {
        use std::sync::atomic::Ordering;
        while !stop.load(Ordering::SeqCst) {
            match event::poll(Duration::from_millis(250)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let msg = match event::read() {
                Ok(TermEvent::Key(k)) if k.kind == KeyEventKind::Press => Msg::Key(k),
                Ok(TermEvent::Resize(..)) => Msg::Resize,
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
}

fn newest_stable(
    catalog: &Catalog,
    cache: &mut BTreeMap<String, Option<crate::profile::Profile>>,
    inst: &Instance,
) -> Option<String> {
    let p = cache
        .entry(inst.profile.clone())
        .or_insert_with(|| catalog.load(&inst.profile).ok().map(|l| l.profile))
        .as_ref()?;
    p.versions
        .iter()
        .filter(|r| r.channel == Channel::Stable)
        .map(|r| r.version.clone())
        .max_by_key(|v| crate::update::version_key(v))
        .filter(|v| crate::update::version_key(v) > crate::update::version_key(&inst.app_version))
}

/// The instance's public URL: the answer to its profile's `roles.public_url` question.
fn public_url(
    catalog: &Catalog,
    cache: &mut BTreeMap<String, Option<crate::profile::Profile>>,
    inst: &Instance,
) -> Option<String> {
    let p = cache
        .entry(inst.profile.clone())
        .or_insert_with(|| catalog.load(&inst.profile).ok().map(|l| l.profile))
        .as_ref()?;
    p.role_value(crate::profile::Role::PublicUrl, &inst.settings)
        .map(str::to_string)
}

fn backup_age(name: &str) -> String {
    let dir = crate::backup::default_dir(name);
    let now = time::OffsetDateTime::now_utc();
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| crate::status::parse_backup_time(name, &e.file_name().to_string_lossy()))
        .max()
        .map(|t| human_age((now - t).try_into().unwrap_or_default()))
        .unwrap_or_else(|| "none".into())
}

/// `OP-TIMESTAMP` (`restore-2026-12-05T084207.672985Z`): the operation and its time, shown as
/// `2026-12-05 08:42:07`. The operation's own name may hold dashes; the time starts at the
/// first dash followed by a date.
pub fn split_log_stem(stem: &str) -> (&str, String) {
    let b = stem.as_bytes();
    let at = (0..b.len()).find(|&i| {
        b[i] == b'-'
            && b.len() > i + 11
            && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
            && b[i + 5] == b'-'
            && b[i + 8] == b'-'
            && b[i + 11] == b'T'
    });
    let Some(at) = at else {
        return (stem, String::new());
    };
    let stamp = &stem[at + 1..];
    let when = match (
        stamp.get(..10),
        stamp.get(11..13),
        stamp.get(13..15),
        stamp.get(15..17),
    ) {
        (Some(d), Some(h), Some(m), Some(s)) => format!("{d} {h}:{m}:{s}"),
        _ => stamp.to_string(),
    };
    (&stem[..at], when)
}

/// The newest operation logs of an instance, newest first: `OP-TIMESTAMP.log`.
fn log_files(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log_root().join(name))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    // The timestamp follows the operation's name, so sort on it, not on the whole name.
    let stamp = |p: &Path| {
        p.file_stem()
            .map(|s| split_log_stem(&s.to_string_lossy()).1)
            .unwrap_or_default()
    };
    files.sort_by_key(|p| std::cmp::Reverse(stamp(p)));
    files
}

fn history(name: &str) -> Vec<PastOp> {
    log_files(name)
        .into_iter()
        .take(5)
        .map(|p| {
            let stem = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let (op, when) = split_log_stem(&stem);
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let result = match text.lines().rev().find(|l| l.contains(" finished ok=")) {
                Some(l) if l.contains("ok=true") => "ok".to_string(),
                Some(_) => "failed".to_string(),
                None => "unfinished".to_string(),
            };
            PastOp {
                operation: op.to_string(),
                when,
                result,
            }
        })
        .collect()
}

/// The dashboard's rows from the records on disk (no network: the checks come later).
pub fn load_rows(config: PathBuf, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let rows = InstanceStore::new(&config)
            .list()
            .map_err(|e| e.to_string())
            .map(|list| {
                let catalog = Catalog::new(&config);
                // One parse per profile, however many instances use it.
                let mut profiles = BTreeMap::new();
                list.into_iter()
                    .map(|i| Row {
                        update: newest_stable(&catalog, &mut profiles, &i),
                        url: public_url(&catalog, &mut profiles, &i)
                            .or_else(|| i.container.ip.as_ref().map(|ip| format!("http://{ip}")))
                            .unwrap_or_else(|| "-".into()),
                        backup_age: backup_age(&i.name),
                        history: history(&i.name),
                        name: i.name,
                        app: i.profile,
                        version: i.app_version,
                        vmid: i.container.vmid,
                        node: i.container.node,
                        checks: None,
                        arriving: Vec::new(),
                        lock: None,
                    })
                    .collect()
            });
        let _ = tx.send(Msg::Rows(rows));
    });
}

/// Runs every instance's checks (the same as `status`), each instance reporting on its own.
pub fn check_all(g: Site, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let Ok(list) = InstanceStore::new(&g.config).list() else {
            return;
        };
        let client = match crate::connect::connect(&g) {
            Ok(c) => Arc::new(c.client),
            Err(e) => {
                for i in list {
                    let c = Check::fail(
                        "connection",
                        format!("cannot reach Proxmox VE: {e}"),
                        "launch-tui doctor",
                    );
                    let _ = tx.send(Msg::Checks(i.name, vec![c]));
                }
                return;
            }
        };
        let ct: Result<Arc<dyn crate::ct::CtAccess>, String> = crate::ct::Pct::find()
            .map(|p| Arc::new(p) as Arc<dyn crate::ct::CtAccess>)
            .map_err(|e| format!("{e:#}"));
        let catalog = Catalog::new(&g.config);
        for inst in list {
            let profile = catalog
                .load(&inst.profile)
                .map(|l| l.profile)
                .map_err(|e| e.to_string());
            let (client, ct, tx) = (client.clone(), ct.clone(), tx.clone());
            std::thread::spawn(move || {
                let name = inst.name.clone();
                let each = |c: &Check| {
                    let _ = tx.send(Msg::Check(name.clone(), c.clone()));
                };
                let s = crate::status::check_instance_live(client, ct, inst, profile, &each);
                let _ = tx.send(Msg::Checks(name, s.checks));
            });
        }
    });
}

/// Who holds each instance's host lock: a lock file that cannot be locked is held, and says
/// by whom. Polled, because another process can start an operation at any time.
pub fn poll_locks(tx: Sender<Msg>, every: Duration) {
    std::thread::spawn(move || loop {
        let mut held = BTreeMap::new();
        for e in std::fs::read_dir(state_dir().join("locks"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
        {
            let path = e.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".lock"))
                .map(str::to_string)
            else {
                continue;
            };
            let Ok(f) = std::fs::File::open(&path) else {
                continue;
            };
            if fs2::FileExt::try_lock_shared(&f).is_ok() {
                let _ = fs2::FileExt::unlock(&f);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Ok(h) = serde_json::from_str::<Holder>(&text) {
                held.insert(name, h);
            }
        }
        if tx.send(Msg::Locks(held)).is_err() {
            break;
        }
        std::thread::sleep(every);
    });
}

/// The newest operation log of an instance, as lines.
pub fn read_log(instance: String, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let lines = match log_files(&instance).first() {
            Some(p) => {
                let mut v = vec![format!("{}:", p.display())];
                v.extend(
                    std::fs::read_to_string(p)
                        .unwrap_or_default()
                        .lines()
                        .map(str::to_string),
                );
                v
            }
            None => vec![format!(
                "no operation logs in {} yet",
                log_root().join(&instance).display()
            )],
        };
        let _ = tx.send(Msg::Log(instance, lines));
    });
}

/// The global options the child needs to reach the same Proxmox VE and configuration.
fn global_args(g: &Site) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = vec!["--json".into(), "--yes".into(), "--no-color".into()];
    // --config always, so the child never falls back to another default.
    if g.config == std::path::Path::new(crate::site::DEFAULT_CONFIG) {
        a.extend(["--config".into(), g.config.clone().into()]);
    }
    a.extend(g.args().into_iter().map(std::ffi::OsString::from));
    a
}

/// Every profile the catalog offers (the embedded ones and the overrides).
pub fn load_profiles(config: PathBuf, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let c = Catalog::new(&config);
        let profiles = c
            .names()
            .iter()
            .filter_map(|n| c.load(n).ok().map(|l| l.profile))
            .collect();
        let _ = tx.send(Msg::Profiles(profiles));
    });
}

/// What the install form's checks need from the node (as the wizard reads it).
pub fn load_facts(g: Site, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let facts = (|| {
            let conn = crate::connect::connect(&g)?;
            let node = crate::connect::pick_node(&conn.client, &g)?;
            crate::install::facts(&conn.client, &node)
        })()
        .map_err(|e| e.to_string());
        let _ = tx.send(Msg::Facts(facts));
    });
}

/// A running operation: the child to signal for a cancel.
pub struct Running {
    pub child_pid: u32,
    /// The install form's answers file (0600; it may hold passwords), removed with the run.
    pub _answers: Option<tempfile::NamedTempFile>,
}

impl Running {
    /// Asks the run to stop, exactly as Ctrl+C does on the command line: SIGINT to the run's
    /// process group (its own, see `start_op`); the engine stops and undoes what was done.
    pub fn cancel(&self) {
        // SAFETY: kill(2) has no memory-safety preconditions; the group is our own child's.
        unsafe {
            libc::kill(-(self.child_pid as libc::pid_t), libc::SIGINT);
        }
    }
}

pub fn start_op(
    g: &Site,
    op: OpKind,
    instance: &str,
    keep_data: bool,
    tx: Sender<Msg>,
) -> std::io::Result<Running> {
    let mut args: Vec<std::ffi::OsString> = vec![op.verb().into(), instance.into()];
    if keep_data && op == OpKind::Uninstall {
        args.push("--keep-data".into());
    }
    spawn_child(g, args, instance, tx, None)
}

/// Installs from the form's answers: written to a private answers file, then the same
/// unattended install an answers file gets (`install PROFILE --answers FILE --yes`).
pub fn start_install(
    g: &Site,
    profile: &str,
    instance: &str,
    answers: &BTreeMap<String, String>,
    tx: Sender<Msg>,
) -> std::io::Result<Running> {
    use std::io::Write;
    // tempfile creates it with mode 0600.
    let mut file = tempfile::Builder::new()
        .prefix("launch-answers-")
        .suffix(".yaml")
        .tempfile()?;
    let text = serde_yaml_ng::to_string(answers).map_err(std::io::Error::other)?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    let args = vec![
        "install".into(),
        profile.into(),
        "--answers".into(),
        file.path().as_os_str().to_owned(),
    ];
    spawn_child(g, args, instance, tx, Some(file))
}

/// Runs the command (`--json`, after the global options) to its end and hands back its result
/// object: for what a screen shows before any change (`update --check`, `backups`, the drift).
fn query(g: &Site, args: &[&str]) -> Result<serde_json::Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(global_args(g))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run launch-tui {}: {e}", args.join(" ")))?;
    let result = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .filter(|v| v.get("result").is_some())
        });
    match result {
        Some(v) if v["result"] == "ok" => Ok(v),
        Some(v) => Err(v["error"].as_str().unwrap_or("failed").to_string()),
        None => Err(format!(
            "launch-tui {} gave no result: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The update screen's facts: the profile's releases (from disk, at once), then what
/// `update NAME --check` finds (the running version, upstream; it takes a moment).
pub fn load_update(g: Site, instance: String, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let profile = InstanceStore::new(&g.config)
            .load(&instance)
            .map_err(|e| e.to_string())
            .and_then(|i| {
                Catalog::new(&g.config)
                    .load(&i.profile)
                    .map(|l| l.profile)
                    .map_err(|e| e.to_string())
            });
        let _ = tx.send(Msg::UpdateProfile(instance.clone(), Box::new(profile)));
        let check = query(&g, &["update", &instance, "--check"]);
        let _ = tx.send(Msg::UpdateCheck(instance, check));
    });
}

/// The reconfigure form's record and profile, then the drift `reconfigure NAME` reports (in
/// this order, on one thread, so the drift always finds the form).
pub fn load_reconfigure(g: Site, instance: String, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let loaded = InstanceStore::new(&g.config)
            .load(&instance)
            .map_err(|e| e.to_string())
            .and_then(|i| {
                Catalog::new(&g.config)
                    .load(&i.profile)
                    .map(|l| (i, l.profile))
                    .map_err(|e| e.to_string())
            });
        let ok = loaded.is_ok();
        let _ = tx.send(Msg::Reconfigure(instance.clone(), Box::new(loaded)));
        if ok {
            let drift = query(&g, &["reconfigure", &instance]).map(|v| {
                v["drift"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            });
            let _ = tx.send(Msg::Drift(instance, drift));
        }
    });
}

/// `backups NAME --json`: the archives and their verification state.
pub fn load_backups(g: Site, instance: String, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let v = query(&g, &["backups", &instance]);
        let _ = tx.send(Msg::Backups(instance, v));
    });
}

/// A run with its own arguments (an update to a chosen version, reconfigure's `--set`s, a
/// verify or restore), each an argv element.
pub fn start_run(
    g: &Site,
    args: Vec<String>,
    instance: &str,
    tx: Sender<Msg>,
) -> std::io::Result<Running> {
    spawn_child(
        g,
        args.into_iter().map(Into::into).collect(),
        instance,
        tx,
        None,
    )
}

fn spawn_child(
    g: &Site,
    args: Vec<std::ffi::OsString>,
    instance: &str,
    tx: Sender<Msg>,
    answers: Option<tempfile::NamedTempFile>,
) -> std::io::Result<Running> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(global_args(g)).args(args);
    // Its own process group: the terminal's signals are the TUI's, not the run's.
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = cmd.spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let name = instance.to_string();
    if let Some(err) = stderr {
        let (tx, name) = (tx.clone(), name.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let level = if line.starts_with("warning") || line.starts_with("error") {
                    Level::Warn
                } else {
                    Level::Info
                };
                let _ = tx.send(Msg::Op(name.clone(), OpMsg::Line(level, line)));
            }
        });
    }
    std::thread::spawn(move || {
        let mut result = None;
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                match serde_json::from_str::<Event>(&line) {
                    Ok(e) => {
                        let _ = tx.send(Msg::Op(name.clone(), OpMsg::Event(e)));
                    }
                    Err(_) => match serde_json::from_str::<serde_json::Value>(&line) {
                        Ok(v) if v.get("result").is_some() => result = Some(v),
                        _ => {
                            let _ = tx.send(Msg::Op(name.clone(), OpMsg::Line(Level::Info, line)));
                        }
                    },
                }
            }
        }
        let code = child.wait().ok().and_then(|s| s.code());
        let _ = tx.send(Msg::Op(name, OpMsg::Exited { result, code }));
    });
    Ok(Running {
        child_pid: pid,
        _answers: answers,
    })
}
