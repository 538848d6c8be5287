//! The TUI (`launch-tui` on a terminal, `launch-tui tui`): a dashboard of every instance and a
//! screen for each operation, in the style of k9s and gitui. One loop owns the state: keys and
//! workers' reports arrive as messages on one channel, each becomes an `Action` or a change of
//! the model, and the screen is redrawn only when something changed (so an idle dashboard
//! costs nothing but a wake-up a second for the clock).

pub mod app;
pub mod form;
pub mod manage;
pub mod model;
pub mod view;
pub mod workers;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use serde_json::json;

use crate::cli::TuiArgs;
use crate::error::{LaunchError, Result};
use crate::report::Outcome;
use crate::site::Site;
use app::{App, Effect, Screen};
use workers::{Msg, OpMsg, Running};

/// How often the clock on the screen (elapsed times) moves.
const TICK: Duration = Duration::from_secs(1);
/// How often the checks run again on their own.
const STATUS_EVERY: Duration = Duration::from_secs(60);
const LOCKS_EVERY: Duration = Duration::from_secs(2);

/// Puts the terminal back however the TUI ends: on return, on `?`, and on a panic (the hook
/// ratatui installs in `init` restores it before the panic message is printed).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

pub fn run(g: &Site, a: &TuiArgs, out: &crate::report::Output) -> Result<Outcome> {
    let color = out.color;
    let mut terminal = ratatui::try_init().map_err(|e| {
        LaunchError::Failed(anyhow::anyhow!(
            "cannot open the terminal for the dashboard: {e}\n  help: use the commands instead (`launch-tui list`, `launch-tui status --all`)"
        ))
    })?;
    let _guard = TerminalGuard;
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    workers::input(tx.clone(), stop.clone());
    workers::load_rows(g.config.clone(), tx.clone());
    workers::check_all(g.clone(), tx.clone());
    workers::poll_locks(tx.clone(), LOCKS_EVERY);
    let mut app = App::new(a.read_only, color, Instant::now());
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut last_status = Instant::now();
    let mut dirty = true;
    let mut next_tick = Instant::now() + TICK;
    let draw_log = std::env::var_os("LAUNCH_TUI_FRAME_LOG");
    // Test hook: this key makes the TUI panic, to prove the terminal is restored after one.
    let panic_key = std::env::var("LAUNCH_TEST_PANIC_KEY")
        .ok()
        .and_then(|s| s.chars().next());
    let t0 = Instant::now();
    // Keys handled so far: the frame log says which frame answers which key.
    let mut keys_seen: u64 = 0;
    loop {
        if dirty {
            app.now = Instant::now();
            terminal
                .draw(|f| view::draw(f, &app))
                .map_err(|e| LaunchError::Failed(anyhow::anyhow!("cannot draw: {e}")))?;
            if let Some(path) = &draw_log {
                // Benchmark hook (scripts/bench-tui.sh): when each frame was on the screen.
                frame_log(path, t0.elapsed(), &app, keys_seen);
            }
        }
        if app.quit {
            break;
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let Some(msg) = msg else {
            next_tick = Instant::now() + TICK;
            // Only what shows a clock needs the tick.
            dirty =
                matches!(app.screen, Screen::Operation(_)) && app.ops.values().any(|o| o.running());
            if last_status.elapsed() >= STATUS_EVERY && running.is_empty() {
                last_status = Instant::now();
                workers::check_all(g.clone(), tx.clone());
            }
            if app.screen == Screen::Logs && app.logs.follow {
                workers::read_log(app.logs.instance.clone(), tx.clone());
            }
            continue;
        };
        dirty = true;
        let effects = match msg {
            Msg::Key(k) if panic_key.is_some_and(|c| k.code == KeyCode::Char(c)) => {
                panic!("test hook: LAUNCH_TEST_PANIC_KEY pressed")
            }
            Msg::Key(k) => {
                keys_seen += 1;
                match app.handle_key(k) {
                    Some(action) => app.update(action),
                    None => Vec::new(),
                }
            }
            Msg::Resize => Vec::new(),
            Msg::Profiles(p) => app.set_profiles(p),
            Msg::Facts(f) => {
                if let Some(form) = app.form.as_mut() {
                    form.set_facts(f);
                }
                Vec::new()
            }
            Msg::UpdateProfile(name, p) => {
                app.set_update_profile(&name, *p);
                Vec::new()
            }
            Msg::UpdateCheck(name, c) => {
                app.set_update_check(&name, c);
                Vec::new()
            }
            Msg::Reconfigure(name, r) => {
                app.set_reconfigure(&name, *r);
                Vec::new()
            }
            Msg::Drift(name, d) => {
                app.set_drift(&name, d);
                Vec::new()
            }
            Msg::Backups(name, v) => {
                app.set_backups(&name, v);
                Vec::new()
            }
            Msg::Rows(Ok(rows)) => {
                app.set_rows(rows);
                Vec::new()
            }
            Msg::Rows(Err(e)) => {
                app.load_error = Some(e);
                Vec::new()
            }
            Msg::Checks(name, checks) => {
                app.set_checks(&name, checks);
                Vec::new()
            }
            Msg::Check(name, check) => {
                app.check_arrived(&name, check);
                Vec::new()
            }
            Msg::Locks(l) => {
                dirty = app.rows.iter().any(|r| r.lock.as_ref() != l.get(&r.name));
                app.set_locks(&l);
                Vec::new()
            }
            Msg::Log(instance, lines) => {
                if app.logs.instance == instance {
                    dirty = app.logs.lines != lines;
                    app.logs.lines = lines;
                }
                Vec::new()
            }
            Msg::Op(name, m) => match m {
                OpMsg::Event(e) => {
                    app.op_event(&name, &e);
                    Vec::new()
                }
                OpMsg::Line(level, line) => {
                    if let Some(op) = app.ops.get_mut(&name) {
                        op.push_log(level, line);
                    }
                    Vec::new()
                }
                OpMsg::Exited { result, code } => {
                    running.remove(&name);
                    if let Some(op) = app.ops.get_mut(&name) {
                        op.finish(result.as_ref(), code);
                    }
                    // Its lock went with it; the poller shows any other holder again.
                    if let Some(r) = app.rows.iter_mut().find(|r| r.name == name) {
                        r.lock = None;
                    }
                    // The records changed (version, gone after an uninstall): read them again.
                    vec![Effect::RefreshStatus]
                }
            },
        };
        for e in effects {
            match e {
                Effect::Start {
                    op,
                    instance,
                    keep_data,
                } => match workers::start_op(g, op, &instance, keep_data, tx.clone()) {
                    Ok(r) => {
                        running.insert(instance, r);
                    }
                    Err(err) => {
                        if let Some(o) = app.ops.get_mut(&instance) {
                            o.push_log(crate::engine::Level::Warn, format!("cannot start: {err}"));
                            o.finish(None, None);
                        }
                    }
                },
                Effect::Run {
                    instance,
                    operation: _,
                    args,
                } => match workers::start_run(g, args, &instance, tx.clone()) {
                    Ok(r) => {
                        running.insert(instance, r);
                    }
                    Err(err) => {
                        if let Some(o) = app.ops.get_mut(&instance) {
                            o.push_log(crate::engine::Level::Warn, format!("cannot start: {err}"));
                            o.finish(None, None);
                        }
                    }
                },
                Effect::LoadUpdate { instance } => {
                    workers::load_update(g.clone(), instance, tx.clone())
                }
                Effect::LoadReconfigure { instance } => {
                    workers::load_reconfigure(g.clone(), instance, tx.clone())
                }
                Effect::LoadBackups { instance } => {
                    workers::load_backups(g.clone(), instance, tx.clone())
                }
                Effect::Cancel(instance) => {
                    if let Some(r) = running.get(&instance) {
                        r.cancel();
                    }
                }
                Effect::RefreshStatus => {
                    last_status = Instant::now();
                    workers::load_rows(g.config.clone(), tx.clone());
                    workers::check_all(g.clone(), tx.clone());
                }
                Effect::ReadLog { instance } => workers::read_log(instance, tx.clone()),
                Effect::LoadProfiles => workers::load_profiles(g.config.clone(), tx.clone()),
                Effect::LoadFacts => workers::load_facts(g.clone(), tx.clone()),
                Effect::Install {
                    profile,
                    instance,
                    answers,
                } => match workers::start_install(g, &profile, &instance, &answers, tx.clone()) {
                    Ok(r) => {
                        running.insert(instance, r);
                    }
                    Err(err) => {
                        if let Some(o) = app.ops.get_mut(&instance) {
                            o.push_log(crate::engine::Level::Warn, format!("cannot start: {err}"));
                            o.finish(None, None);
                        }
                    }
                },
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    drop(_guard);
    Ok(Outcome::new(String::new(), json!({})))
}

fn frame_log(path: &std::ffi::OsStr, at: Duration, app: &App, keys: u64) {
    use std::io::Write;
    let checked = app.rows.iter().filter(|r| r.checks.is_some()).count();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(
            f,
            "{} {} rows={} checked={} keys={} running={}",
            epoch.as_micros(),
            at.as_micros(),
            app.rows.len(),
            checked,
            keys,
            app.ops.values().filter(|o| o.running()).count()
        );
    }
}
