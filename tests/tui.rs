//! The TUI's screens, drawn by the real drawing code into ratatui's `TestBackend` at 80x24 and
//! 120x40 and compared with insta snapshots; and its keys, driven through the same `App` the
//! terminal loop drives. The model is built by hand here (no lab): what the workers would
//! report, and what the engine's events would say mid-update and after a failed, undone one.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use launch::engine::{Event, Level, StepInfo};
use launch::oplock::Holder;
use launch::status::Check;
use launch::tui::app::{Action, App, Dialog, Effect, OpKind, Screen};
use launch::tui::model::{OpState, PastOp, Row};
use launch::tui::view;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn healthy_checks(vmid: u32) -> Vec<Check> {
    vec![
        Check::ok("container", "running, up 3h 02m"),
        Check::ok("memory", "112 MiB of 1024 MiB (11 %)"),
        Check::ok("disk", "6.1 GiB free of 8 GiB (76 %)"),
        Check::ok("unit:vikunja-api-blue.service", "active (running)"),
        Check::ok("http-nginx", "200 from http://10.0.0.5/api/v1/info"),
        Check::ok("version", "v1.0.0, as recorded"),
        Check::warn(
            "update",
            "v2.0.0 is available",
            format!("launch-tui update vikunja  (CT {vmid})"),
        ),
    ]
}

fn row(name: &str, vmid: u32) -> Row {
    Row {
        name: name.into(),
        app: "vikunja".into(),
        version: "v1.0.0".into(),
        update: None,
        vmid,
        node: "pve".into(),
        url: format!("https://{name}.example.com"),
        checks: Some(vec![
            Check::ok("container", "running, up 3h 02m"),
            Check::ok("http-nginx", "200 through nginx"),
        ]),
        backup_age: "2h".into(),
        lock: None,
        history: vec![PastOp {
            operation: "install".into(),
            when: "20261204T091500Z".into(),
            result: "ok".into(),
        }],
    }
}

fn five() -> Vec<Row> {
    let mut tasks = row("tasks", 101);
    tasks.update = Some("v2.0.0".into());
    tasks.checks = Some(healthy_checks(101));
    let mut chat = row("chat", 102);
    chat.app = "librechat".into();
    chat.version = "v0.7.8".into();
    chat.checks = Some(vec![
        Check::ok("container", "running, up 12d 4h"),
        Check::fail(
            "unit:librechat-api-blue.service",
            "failed (exit 1) since 09:12",
            "pct exec 102 -- systemctl restart librechat-api-blue.service",
        ),
        Check::fail(
            "http-nginx",
            "502 from http://10.0.0.6/api/health",
            "pct exec 102 -- journalctl -u librechat-api-blue.service -n 50",
        ),
    ]);
    chat.backup_age = "9d".into();
    let mut wiki = row("wiki", 103);
    wiki.checks = None;
    wiki.backup_age = "none".into();
    let mut team = row("team-tasks", 104);
    team.update = Some("v2.0.0".into());
    team.lock = Some(Holder {
        pid: 4242,
        host: "pve".into(),
        operation: "update".into(),
        since: "2026-12-04T10:00:00Z".into(),
    });
    let mut docs = row("docs", 105);
    docs.checks = Some(vec![Check::warn(
        "disk",
        "1.4 GiB free of 8 GiB (17 %)",
        "pct resize 105 rootfs +4G",
    )]);
    vec![tasks, chat, wiki, team, docs]
}

fn app(rows: Vec<Row>, now: Instant) -> App {
    let mut a = App::new(false, false, now);
    a.set_rows(rows);
    a
}

fn update_steps() -> Vec<StepInfo> {
    [
        ("release", "Placing release v2.0.0 beside v1.0.0"),
        ("safety-backup", "Taking a verified backup of v1.0.0"),
        ("safety-copy", "Keeping a copy of the database and config"),
        ("start-green", "Starting v2.0.0 in the green slot"),
        ("switch", "Switching nginx to green"),
        ("drain", "Letting requests in flight to v1.0.0 finish"),
        ("watch", "Watching v2.0.0's health for 30 s"),
        ("finish", "Stopping v1.0.0 and recording v2.0.0"),
    ]
    .iter()
    .map(|(n, t)| StepInfo {
        name: n.to_string(),
        title: t.to_string(),
    })
    .collect()
}

/// An update of `name` that has reached `watch`, as its events said, started 42 s ago.
fn mid_update(name: &str, now: Instant) -> OpState {
    let mut op = OpState::new(name, "update", now - Duration::from_secs(42));
    op.apply(&Event::PlanStarted {
        operation: "update".into(),
        target: Some(name.into()),
        steps: update_steps(),
    });
    for (i, s) in update_steps().iter().enumerate().take(6) {
        op.apply(&Event::StepStarted {
            index: i,
            name: s.name.clone(),
            title: s.title.clone(),
        });
        op.apply(&Event::Log {
            index: Some(i),
            level: Level::Info,
            line: format!("{}: ok", s.name),
        });
        op.apply(&Event::StepDone {
            index: i,
            name: s.name.clone(),
            elapsed_ms: 1200 + i as u64 * 300,
        });
    }
    op.apply(&Event::StepStarted {
        index: 6,
        name: "watch".into(),
        title: "Watching v2.0.0's health for 30 s".into(),
    });
    op.apply(&Event::Log {
        index: Some(6),
        level: Level::Warn,
        line: "one health probe took 2.1 s".into(),
    });
    op
}

fn failed_update(name: &str, now: Instant) -> OpState {
    let mut op = OpState::new(name, "update", now - Duration::from_secs(80));
    op.apply(&Event::PlanStarted {
        operation: "update".into(),
        target: Some(name.into()),
        steps: update_steps(),
    });
    for (i, s) in update_steps().iter().enumerate().take(3) {
        op.apply(&Event::StepStarted {
            index: i,
            name: s.name.clone(),
            title: s.title.clone(),
        });
        op.apply(&Event::StepDone {
            index: i,
            name: s.name.clone(),
            elapsed_ms: 900,
        });
    }
    op.apply(&Event::StepStarted {
        index: 3,
        name: "start-green".into(),
        title: "Starting v2.0.0 in the green slot".into(),
    });
    op.apply(&Event::StepFailed {
        index: 3,
        name: "start-green".into(),
        error: "v2.0.0 did not answer on port 3457 within 60 s".into(),
    });
    op.apply(&Event::RollingBack {
        reason: "step `start-green` failed".into(),
    });
    for i in (0..3).rev() {
        op.apply(&Event::UndoStep {
            index: i,
            name: update_steps()[i].name.clone(),
            ok: true,
            error: None,
        });
    }
    op.apply(&Event::Finished {
        ok: false,
        elapsed_ms: 71_500,
    });
    op.finish(
        Some(&serde_json::json!({
            "result": "error", "exit_code": 1,
            "error": "update of tasks to v2.0.0 failed: step `start-green` failed\n  v1.0.0 still serves: everything the update changed was undone"
        })),
        Some(1),
    );
    op
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    t.backend().to_string()
}

fn snap(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(app, w, h));
    }
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Feeds keys through the App as the loop does; returns the effects.
fn press(app: &mut App, keys: &[KeyCode]) -> Vec<Effect> {
    let mut effects = Vec::new();
    for k in keys {
        if let Some(a) = app.handle_key(key(*k)) {
            effects.extend(app.update(a));
        }
    }
    effects
}

#[test]
fn dashboard_before_the_records_are_read() {
    let a = App::new(false, false, Instant::now());
    snap("dashboard_loading", &a);
}

#[test]
fn dashboard_with_no_instances() {
    snap("dashboard_0", &app(vec![], Instant::now()));
}

#[test]
fn dashboard_with_one_instance() {
    let mut r = row("vikunja", 100);
    r.checks = Some(healthy_checks(100));
    r.update = Some("v2.0.0".into());
    snap("dashboard_1", &app(vec![r], Instant::now()));
}

#[test]
fn dashboard_with_five_one_unhealthy_one_updating() {
    let now = Instant::now();
    let mut a = app(five(), now);
    a.ops.insert("tasks".into(), mid_update("tasks", now));
    snap("dashboard_5", &a);
    // The unhealthy one, selected: its failing checks with their fixes below the table.
    press(&mut a, &[KeyCode::Down]);
    snap("dashboard_5_unhealthy_selected", &a);
}

#[test]
fn details_show_every_check_with_its_fix_and_the_last_operations() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Down, KeyCode::Enter]);
    assert_eq!(a.screen, Screen::Details);
    snap("details", &a);
}

#[test]
fn help_overlay() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Char('?')]);
    assert_eq!(a.dialog, Some(Dialog::Help));
    snap("help", &a);
    press(&mut a, &[KeyCode::Char('x')]);
    assert_eq!(a.dialog, None, "any key closes the help");
}

#[test]
fn filter_narrows_the_table() {
    let mut a = app(five(), Instant::now());
    press(
        &mut a,
        &[
            KeyCode::Char('/'),
            KeyCode::Char('t'),
            KeyCode::Char('a'),
            KeyCode::Char('s'),
        ],
    );
    let names: Vec<&str> = a.visible().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["tasks", "team-tasks"]);
    snap("filter", &a);
    press(&mut a, &[KeyCode::Esc]);
    assert_eq!(a.visible().len(), 5);
}

#[test]
fn uninstall_needs_the_name_typed_out() {
    let mut a = app(five(), Instant::now());
    // `docs` is the last row.
    press(&mut a, &[KeyCode::Char('G'), KeyCode::Char('x')]);
    for c in "doc".chars() {
        press(&mut a, &[KeyCode::Char(c)]);
    }
    snap("confirm_uninstall", &a);
    // A wrong name starts nothing, and the dialog stays.
    press(&mut a, &[KeyCode::Char('z')]);
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty());
    assert!(matches!(a.dialog, Some(Dialog::TypeName { .. })));
    press(
        &mut a,
        &[KeyCode::Backspace, KeyCode::Char('s'), KeyCode::Tab],
    );
    let effects = press(&mut a, &[KeyCode::Enter]);
    assert_eq!(
        effects,
        [Effect::Start {
            op: OpKind::Uninstall,
            instance: "docs".into(),
            keep_data: true
        }]
    );
    assert_eq!(a.screen, Screen::Operation("docs".into()));
}

#[test]
fn update_asks_first_and_names_both_versions() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Char('u')]);
    snap("confirm_update", &a);
    assert!(
        press(&mut a, &[KeyCode::Char('n')]).is_empty(),
        "no is the default"
    );
    press(&mut a, &[KeyCode::Char('u')]);
    let effects = press(&mut a, &[KeyCode::Char('y')]);
    assert_eq!(
        effects,
        [Effect::Start {
            op: OpKind::Update,
            instance: "tasks".into(),
            keep_data: false
        }]
    );
}

#[test]
fn a_locked_instance_says_who_holds_it() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Down, KeyCode::Down, KeyCode::Down]);
    press(&mut a, &[KeyCode::Char('b')]);
    match &a.dialog {
        Some(Dialog::Notice(t)) => assert!(t.contains("pid 4242"), "{t}"),
        d => panic!("expected a notice, got {d:?}"),
    }
}

#[test]
fn operation_screen_mid_update() {
    let now = Instant::now();
    let mut a = app(five(), now);
    a.ops.insert("tasks".into(), mid_update("tasks", now));
    a.screen = Screen::Operation("tasks".into());
    snap("operation_mid_update", &a);
    // Esc asks; yes cancels through the run (the loop sends SIGINT to it).
    press(&mut a, &[KeyCode::Esc]);
    snap("operation_cancel_asked", &a);
    let effects = press(&mut a, &[KeyCode::Char('y')]);
    assert_eq!(effects, [Effect::Cancel("tasks".into())]);
    assert!(a.ops["tasks"].cancel_requested);
    // Quitting while it runs is refused with a note.
    press(&mut a, &[KeyCode::Char('q')]);
    assert!(!a.quit);
    assert!(matches!(a.dialog, Some(Dialog::Notice(_))));
}

#[test]
fn operation_screen_failed_with_undo() {
    let now = Instant::now();
    let mut a = app(five(), now);
    a.ops.insert("tasks".into(), failed_update("tasks", now));
    a.screen = Screen::Operation("tasks".into());
    snap("operation_failed_undone", &a);
    // Finished: Esc goes back and refreshes.
    let effects = press(&mut a, &[KeyCode::Esc]);
    assert_eq!(effects, [Effect::RefreshStatus]);
    assert_eq!(a.screen, Screen::Dashboard);
}

#[test]
fn operation_screen_done_shows_the_reports_figures() {
    let now = Instant::now();
    let mut op = mid_update("tasks", now);
    for i in 6..8 {
        op.apply(&Event::StepDone {
            index: i,
            name: "x".into(),
            elapsed_ms: 500,
        });
    }
    op.apply(&Event::Finished {
        ok: true,
        elapsed_ms: 47_200,
    });
    op.finish(
        Some(
            &serde_json::json!({"result": "ok", "instance": "tasks", "from": "v1.0.0",
            "to": "v2.0.0", "writes_held_ms": 38, "switch_ms": 12, "updated": true}),
        ),
        Some(0),
    );
    let mut a = app(five(), now);
    a.ops.insert("tasks".into(), op);
    a.screen = Screen::Operation("tasks".into());
    snap("operation_done", &a);
}

#[test]
fn logs_screen_scrolls_and_follows() {
    let mut a = app(five(), Instant::now());
    let effects = press(&mut a, &[KeyCode::Char('l')]);
    assert_eq!(
        effects,
        [Effect::ReadLog {
            instance: "tasks".into()
        }]
    );
    a.logs.lines = (0..60)
        .map(|i| format!("2026-12-04T10:00:{i:02}Z step watch: probe {i} answered 200"))
        .collect();
    snap("logs", &a);
    press(&mut a, &[KeyCode::Up, KeyCode::Up, KeyCode::Up]);
    assert!(!a.logs.follow);
    assert_eq!(a.logs.scroll, 3);
    press(&mut a, &[KeyCode::Char('f')]);
    assert!(a.logs.follow);
    assert_eq!(a.logs.scroll, 0);
}

#[test]
fn read_only_hides_every_action_that_changes_something() {
    let mut a = App::new(true, false, Instant::now());
    a.set_rows(five());
    for k in ['u', 'r', 'b', 'x'] {
        assert!(press(&mut a, &[KeyCode::Char(k)]).is_empty());
        assert_eq!(a.dialog, None, "{k} must do nothing in --read-only");
    }
    let screen = render(&a, 120, 40);
    assert!(!screen.contains("uninstall"), "{screen}");
    assert!(screen.contains("[read-only]"), "{screen}");
}

#[test]
fn checks_fill_in_as_they_arrive() {
    let mut a = app(vec![row("a", 1), row("b", 2)], Instant::now());
    for r in &mut a.rows {
        r.checks = None;
    }
    assert!(render(&a, 120, 40).contains("checking 2"));
    a.set_checks(
        "b",
        vec![Check::fail("container", "stopped", "pct start 2")],
    );
    let s = render(&a, 120, 40);
    assert!(s.contains("checking 1") && s.contains("1 failed"), "{s}");
    // New records (after an operation) keep what the checks said.
    a.set_rows(vec![row("a", 1), {
        let mut b = row("b", 2);
        b.checks = None;
        b
    }]);
    assert!(a.rows[1].checks.is_some());
}

#[test]
fn ctrl_c_quits_like_q() {
    let mut a = app(vec![], Instant::now());
    let act = a.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(act, Some(Action::Quit));
    a.update(Action::Quit);
    assert!(a.quit);
}

fn vikunja() -> launch::profile::Profile {
    launch::profile::Catalog::new(std::path::Path::new("/nonexistent"))
        .load("vikunja")
        .unwrap()
        .profile
}

fn node_facts() -> launch::install::settings::NodeFacts {
    launch::install::settings::NodeFacts {
        node: "pve".into(),
        next_id: 105,
        taken_ids: vec![100, 101],
        taken_hostnames: vec![],
        rootdir_storages: vec![("local-lvm".into(), 100 << 30)],
        template_storages: vec!["local".into()],
        free_memory_mib: 8192,
        templates: vec!["debian-12-standard_12.7-1_amd64.tar.zst".into()],
        bridges: vec!["vmbr0".into()],
    }
}

fn focus_on(a: &mut App, key: &str) {
    for _ in 0..100 {
        let f = a.form.as_ref().unwrap();
        if f.fields[f.focus].key == key {
            return;
        }
        press(a, &[KeyCode::Tab]);
    }
    panic!("no field {key}");
}

fn type_in(a: &mut App, text: &str) {
    for c in text.chars() {
        press(a, &[KeyCode::Char(c)]);
    }
}

#[test]
fn install_form_checks_as_you_type_with_the_answers_resolver() {
    let mut a = app(vec![row("tasks", 101)], Instant::now());
    assert_eq!(press(&mut a, &[KeyCode::Char('i')]), [Effect::LoadProfiles]);
    // One profile: straight to its form, and the node's facts are asked for.
    assert_eq!(a.set_profiles(vec![vikunja()]), [Effect::LoadFacts]);
    assert_eq!(a.screen, Screen::Install);
    snap("install_form_reading_node", &a);
    a.form.as_mut().unwrap().set_facts(Ok(node_facts()));
    focus_on(&mut a, "public_url");
    type_in(&mut a, "not a url");
    let f = a.form.as_ref().unwrap();
    assert!(f.errors.contains_key("public_url"), "{:?}", f.errors);
    assert!(
        !f.errors.contains_key("admin_email"),
        "an untouched empty field is not an error yet"
    );
    snap("install_form_errors", &a);
    // Enter: every problem shows, the focus goes to the first.
    press(&mut a, &[KeyCode::Enter]);
    let f = a.form.as_ref().unwrap();
    assert!(f.summary.is_none());
    assert!(f.errors.contains_key("admin_email"), "{:?}", f.errors);
    snap("install_form_submitted", &a);
    // Fixed: the summary (the wizard's own), then y installs with exactly these answers.
    focus_on(&mut a, "public_url");
    for _ in 0.."not a url".len() {
        press(&mut a, &[KeyCode::Backspace]);
    }
    type_in(&mut a, "https://tasks.example.com");
    focus_on(&mut a, "admin_email");
    type_in(&mut a, "admin@example.com");
    focus_on(&mut a, "name");
    type_in(&mut a, "tasks2");
    press(&mut a, &[KeyCode::Enter]);
    assert!(a.form.as_ref().unwrap().errors.is_empty());
    assert!(a.form.as_ref().unwrap().summary.is_some());
    snap("install_summary", &a);
    let effects = press(&mut a, &[KeyCode::Char('y')]);
    match &effects[..] {
        [Effect::Install {
            profile,
            instance,
            answers,
        }] => {
            assert_eq!((profile.as_str(), instance.as_str()), ("vikunja", "tasks2"));
            assert_eq!(answers["public_url"], "https://tasks.example.com");
            assert_eq!(answers["admin_email"], "admin@example.com");
        }
        e => panic!("expected an install, got {e:?}"),
    }
    assert_eq!(a.screen, Screen::Operation("tasks2".into()));
}

#[test]
fn install_form_advanced_keeps_what_was_typed() {
    let mut a = app(vec![], Instant::now());
    press(&mut a, &[KeyCode::Char('i')]);
    a.set_profiles(vec![vikunja()]);
    a.form.as_mut().unwrap().set_facts(Ok(node_facts()));
    focus_on(&mut a, "public_url");
    type_in(&mut a, "https://t.example.com");
    press(&mut a, &[KeyCode::F(2)]);
    let f = a.form.as_ref().unwrap();
    assert!(f.fields.iter().any(|f| f.key == "memory_mib"));
    assert_eq!(f.fields[f.focus].key, "public_url");
    assert_eq!(f.answers()["public_url"], "https://t.example.com");
    // Below the profile's minimum: the resolver says so, inline.
    focus_on(&mut a, "memory_mib");
    type_in(&mut a, "16");
    assert!(a.form.as_ref().unwrap().errors.contains_key("memory_mib"));
    snap("install_form_advanced", &a);
    // Esc leaves the form; nothing was started.
    assert!(press(&mut a, &[KeyCode::Esc]).is_empty());
    assert_eq!(a.screen, Screen::Dashboard);
}

#[test]
fn no_colour_codes_when_output_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("launch-tui")
        .unwrap()
        .env_remove("NO_COLOR")
        .args(["--config", dir.path().to_str().unwrap(), "status", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("error:"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "colour codes in piped output: {text:?}"
    );
}

#[test]
fn no_arguments_without_a_terminal_explains_instead_of_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("launch-tui")
        .unwrap()
        .args(["--config", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no terminal to run the dashboard on"), "{err}");
}
