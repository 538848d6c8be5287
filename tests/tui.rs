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
        arriving: Vec::new(),
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
        report: None,
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

/// The vikunja profile with the releases the test rows speak of (v1.0.0, v2.0.0) and an
/// unstable build.
fn profile_with_releases() -> launch::profile::Profile {
    let mut p = vikunja();
    let base = p.versions[0].clone();
    let rel = |v: &str, unstable: bool| {
        let mut r = base.clone();
        r.version = v.into();
        if unstable {
            r.channel = launch::profile::Channel::Unstable;
            r.commit = Some("4f1c2a9e7b3d5c6a".into());
        }
        r
    };
    p.versions = vec![
        rel("v1.0.0", false),
        rel("v2.0.0", false),
        rel("v2.1.0-rc.1", true),
    ];
    p.versions[1].requires.insert("mcp".into(), "0.10.0".into());
    p
}

#[test]
fn update_screen_shows_the_versions_and_the_check_then_asks() {
    let mut a = app(five(), Instant::now());
    assert_eq!(
        press(&mut a, &[KeyCode::Char('u')]),
        [Effect::LoadUpdate {
            instance: "tasks".into()
        }]
    );
    assert_eq!(a.screen, Screen::Update);
    snap("update_screen_loading", &a);
    a.set_update_profile("tasks", Ok(profile_with_releases()));
    a.set_update_check(
        "tasks",
        Ok(serde_json::json!({
            "result": "ok", "instance": "tasks", "recorded": "v1.0.0", "running": "v1.0.0",
            "newest": "v2.0.0", "target": "v2.0.0", "update_available": true,
            "upstream": {"latest": "v2.1.0"}, "pending_operation": null
        })),
    );
    snap("update_screen", &a);
    // The cursor starts on the newest stable release; Enter asks, naming both versions.
    press(&mut a, &[KeyCode::Enter]);
    snap("confirm_update", &a);
    assert!(
        press(&mut a, &[KeyCode::Char('n')]).is_empty(),
        "no is the default"
    );
    assert_eq!(a.screen, Screen::Update);
    press(&mut a, &[KeyCode::Enter]);
    let effects = press(&mut a, &[KeyCode::Char('y')]);
    assert_eq!(
        effects,
        [Effect::Run {
            instance: "tasks".into(),
            operation: "update".into(),
            args: ["update", "tasks", "--version", "v2.0.0"]
                .map(String::from)
                .to_vec(),
        }]
    );
    assert_eq!(a.screen, Screen::Operation("tasks".into()));
}

#[test]
fn update_screen_takes_an_unstable_build_on_its_channel_and_refuses_the_current() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Char('u')]);
    a.set_update_profile("tasks", Ok(profile_with_releases()));
    // The current release: nothing to do.
    press(&mut a, &[KeyCode::Down, KeyCode::Enter]);
    assert!(
        matches!(&a.dialog, Some(Dialog::Notice(t)) if t.contains("runs v1.0.0 already")),
        "{:?}",
        a.dialog
    );
    press(&mut a, &[KeyCode::Esc]);
    press(&mut a, &[KeyCode::Up, KeyCode::Up, KeyCode::Enter]);
    let effects = press(&mut a, &[KeyCode::Char('y')]);
    assert_eq!(
        effects,
        [Effect::Run {
            instance: "tasks".into(),
            operation: "update".into(),
            args: [
                "update",
                "tasks",
                "--version",
                "v2.1.0-rc.1",
                "--channel",
                "unstable"
            ]
            .map(String::from)
            .to_vec(),
        }]
    );
}

fn tasks_record() -> launch::instance::Instance {
    serde_yaml_ng::from_str(
        r#"
name: tasks
profile: vikunja
app_version: v1.0.0
container: { node: pve, vmid: 101, hostname: tasks, ip: 10.0.0.5, storage: local-lvm }
active_slot: blue
releases: [v1.0.0]
settings:
  public_url: https://tasks.example.com
  admin_email: admin@example.com
  mcp: "false"
  timezone: Etc/UTC
  max_upload_mib: "20"
  registration: "false"
  database: sqlite
secrets: {}
created: 2026-12-04T09:00:00Z
updated: 2026-12-04T09:00:00Z
"#,
    )
    .unwrap()
}

fn reconfigure_open() -> App {
    let mut a = app(five(), Instant::now());
    assert_eq!(
        press(&mut a, &[KeyCode::Char('c')]),
        [Effect::LoadReconfigure {
            instance: "tasks".into()
        }]
    );
    a.set_reconfigure("tasks", Ok((tasks_record(), vikunja())));
    a
}

fn reconfigure_focus(a: &mut App, key: &str) {
    for _ in 0..100 {
        let f = a.reconfigure.as_ref().unwrap();
        if f.fields[f.focus].key == key {
            return;
        }
        press(a, &[KeyCode::Tab]);
    }
    panic!("no field {key}");
}

fn clear_field(a: &mut App) {
    for _ in 0..100 {
        press(a, &[KeyCode::Backspace]);
    }
}

#[test]
fn reconfigure_form_shows_the_settings_and_the_drift() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Char('c')]);
    assert_eq!(a.screen, Screen::Reconfigure);
    snap("reconfigure_reading", &a);
    a.set_reconfigure("tasks", Ok((tasks_record(), vikunja())));
    a.set_drift(
        "tasks",
        Ok(vec![
            "/etc/nginx/sites-available/vikunja.conf differs from what the record renders (edited by hand?)".into(),
        ]),
    );
    snap("reconfigure_form", &a);
    let f = a.reconfigure.as_ref().unwrap();
    let keys: Vec<&str> = f.fields.iter().map(|f| f.key.as_str()).collect();
    assert!(
        keys.contains(&"public_url") && keys.contains(&"memory_mib"),
        "{keys:?}"
    );
    assert!(
        !keys.contains(&"admin_email"),
        "set once at install: {keys:?}"
    );
    assert_eq!(f.fields[0].value, "https://tasks.example.com");
    // Nothing changed: Enter says so and starts nothing.
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty());
    assert!(a.reconfigure.as_ref().unwrap().summary.is_none());
}

#[test]
fn reconfigure_form_checks_with_reconfigures_own_checks_then_confirms() {
    let mut a = reconfigure_open();
    a.set_drift("tasks", Ok(vec![]));
    reconfigure_focus(&mut a, "public_url");
    clear_field(&mut a);
    type_in(&mut a, "not a url");
    reconfigure_focus(&mut a, "max_upload_mib");
    clear_field(&mut a);
    type_in(&mut a, "lots");
    reconfigure_focus(&mut a, "memory_mib");
    type_in(&mut a, "64");
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty(), "refused");
    snap("reconfigure_errors", &a);
    let f = a.reconfigure.as_ref().unwrap();
    for k in ["public_url", "max_upload_mib", "memory_mib"] {
        assert!(f.errors.contains_key(k), "{k}: {:?}", f.errors);
    }
    assert!(f.summary.is_none());

    reconfigure_focus(&mut a, "public_url");
    clear_field(&mut a);
    type_in(&mut a, "http://todo.example.com");
    reconfigure_focus(&mut a, "max_upload_mib");
    clear_field(&mut a);
    type_in(&mut a, "50");
    reconfigure_focus(&mut a, "memory_mib");
    clear_field(&mut a);
    press(&mut a, &[KeyCode::Enter]);
    snap("reconfigure_summary", &a);
    // Any other key: back to the form, values kept; then Enter and y apply.
    press(&mut a, &[KeyCode::Char('n')]);
    assert!(a.reconfigure.as_ref().unwrap().summary.is_none());
    press(&mut a, &[KeyCode::Enter]);
    let effects = press(&mut a, &[KeyCode::Char('y')]);
    assert_eq!(
        effects,
        [Effect::Run {
            instance: "tasks".into(),
            operation: "reconfigure".into(),
            args: [
                "reconfigure",
                "tasks",
                "--set",
                "max_upload_mib=50",
                "--set",
                "public_url=http://todo.example.com"
            ]
            .map(String::from)
            .to_vec(),
        }]
    );
    assert_eq!(a.screen, Screen::Operation("tasks".into()));
}

fn backups_json() -> serde_json::Value {
    serde_json::json!({
        "result": "ok", "instance": "tasks", "dir": "/var/lib/launch/backups/tasks",
        "backups": [
            {"archive": "/var/lib/launch/backups/tasks/tasks-v1.0.0-20261201T020000Z.tar.zst",
             "created": "2026-12-01 02:00:00", "version": "v1.0.0", "size": 3145728,
             "state": "changed since verified", "reason": "backup"},
            {"archive": "/var/lib/launch/backups/tasks/tasks-v1.0.0-20261203T020000Z.tar.zst",
             "created": "2026-12-03 02:00:00", "version": "v1.0.0", "size": 3250585,
             "state": "not verified", "reason": "safety before restore"},
            {"archive": "/var/lib/launch/backups/tasks/tasks-v1.0.0-20261204T020000Z.tar.zst",
             "created": "2026-12-04 02:00:00", "version": "v1.0.0", "size": 3355443,
             "state": "verified 2026-12-04T02:00:41Z", "reason": "backup"}
        ]
    })
}

const NEWEST: &str = "/var/lib/launch/backups/tasks/tasks-v1.0.0-20261204T020000Z.tar.zst";

#[test]
fn backups_screen_lists_the_archives_with_their_verification() {
    let mut a = app(five(), Instant::now());
    assert_eq!(
        press(&mut a, &[KeyCode::Char('B')]),
        [Effect::LoadBackups {
            instance: "tasks".into()
        }]
    );
    assert_eq!(a.screen, Screen::Backups);
    a.set_backups("tasks", Ok(backups_json()));
    snap("backups", &a);
    assert_eq!(
        a.backups.as_ref().unwrap().chosen().unwrap().archive,
        NEWEST,
        "newest first"
    );
    // v re-checks the chosen archive, as a run; Esc after it comes back here.
    let effects = press(&mut a, &[KeyCode::Char('v')]);
    assert_eq!(
        effects,
        [Effect::Run {
            instance: "tasks".into(),
            operation: "verify".into(),
            args: ["backups", "tasks", "--verify", NEWEST]
                .map(String::from)
                .to_vec(),
        }]
    );
    a.ops.get_mut("tasks").unwrap().finish(
        Some(&serde_json::json!({"result": "ok", "verified": true, "entries": 12})),
        Some(0),
    );
    let effects = press(&mut a, &[KeyCode::Esc]);
    assert_eq!(a.screen, Screen::Backups);
    assert!(effects.contains(&Effect::LoadBackups {
        instance: "tasks".into()
    }));
}

#[test]
fn backups_screen_restores_after_asking() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Char('B')]);
    a.set_backups("tasks", Ok(backups_json()));
    press(&mut a, &[KeyCode::Enter]);
    snap("confirm_restore", &a);
    assert!(
        press(&mut a, &[KeyCode::Esc]).is_empty(),
        "no is the default"
    );
    press(&mut a, &[KeyCode::Char('r')]);
    let effects = press(&mut a, &[KeyCode::Char('y')]);
    assert_eq!(
        effects,
        [Effect::Run {
            instance: "tasks".into(),
            operation: "restore".into(),
            args: ["restore", "tasks", NEWEST].map(String::from).to_vec(),
        }]
    );
    // Esc after it: back to the list (read again: a safety backup was added).
    a.ops
        .get_mut("tasks")
        .unwrap()
        .finish(Some(&serde_json::json!({"result": "ok"})), Some(0));
    let effects = press(&mut a, &[KeyCode::Esc]);
    assert_eq!(a.screen, Screen::Backups);
    assert!(effects.contains(&Effect::LoadBackups {
        instance: "tasks".into()
    }));
    // Read again with the safety backup on top: the cursor stays on the restored archive.
    let mut list = backups_json();
    list["backups"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "archive": "/var/lib/launch/backups/tasks/tasks-v1.0.0-20261205T090000Z.tar.zst",
            "created": "2026-12-05 09:00:00", "version": "v1.0.0", "size": 3355443,
            "state": "verified 2026-12-05T09:00:30Z", "reason": "safety before restore"
        }));
    a.set_backups("tasks", Ok(list));
    assert_eq!(a.backups.as_ref().unwrap().selected, 1);
    assert_eq!(
        a.backups.as_ref().unwrap().chosen().unwrap().archive,
        NEWEST
    );
}

#[test]
fn operation_logs_name_their_operation_and_time() {
    use launch::tui::workers::split_log_stem;
    assert_eq!(
        split_log_stem("restore-2026-12-05T084207.67298525Z"),
        ("restore", "2026-12-05 08:42:07".to_string())
    );
    assert_eq!(
        split_log_stem("self-update-2026-01-31T235959Z"),
        ("self-update", "2026-01-31 23:59:59".to_string())
    );
    assert_eq!(split_log_stem("odd"), ("odd", String::new()));
}

#[test]
fn restore_to_a_new_instance_checks_the_name() {
    let mut a = app(five(), Instant::now());
    press(&mut a, &[KeyCode::Char('B')]);
    a.set_backups("tasks", Ok(backups_json()));
    press(&mut a, &[KeyCode::Char('n')]);
    type_in(&mut a, "chat");
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty());
    snap("restore_new_name_taken", &a);
    for _ in 0..4 {
        press(&mut a, &[KeyCode::Backspace]);
    }
    type_in(&mut a, "Bad Name");
    assert!(press(&mut a, &[KeyCode::Enter]).is_empty());
    match &a.dialog {
        Some(Dialog::NewName { error: Some(e), .. }) => assert!(e.contains("Bad Name"), "{e}"),
        d => panic!("expected the name refused, got {d:?}"),
    }
    for _ in 0..8 {
        press(&mut a, &[KeyCode::Backspace]);
    }
    type_in(&mut a, "tasks-copy");
    let effects = press(&mut a, &[KeyCode::Enter]);
    assert_eq!(
        effects,
        [Effect::Run {
            instance: "tasks".into(),
            operation: "restore to new".into(),
            args: ["restore", "tasks", NEWEST, "--to-new", "tasks-copy"]
                .map(String::from)
                .to_vec(),
        }]
    );
}

#[test]
fn read_only_backups_screen_verifies_but_does_not_restore() {
    let mut a = App::new(true, false, Instant::now());
    a.set_rows(five());
    assert!(press(&mut a, &[KeyCode::Char('c')]).is_empty());
    press(&mut a, &[KeyCode::Char('B')]);
    a.set_backups("tasks", Ok(backups_json()));
    assert!(press(
        &mut a,
        &[KeyCode::Enter, KeyCode::Char('r'), KeyCode::Char('n')]
    )
    .is_empty());
    assert!(a.dialog.is_none());
    assert_eq!(press(&mut a, &[KeyCode::Char('v')]).len(), 1);
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
        report: None,
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
fn checks_that_arrive_before_the_records_are_kept() {
    let mut a = App::new(false, false, Instant::now());
    a.set_checks("tasks", healthy_checks(101));
    let mut r = row("tasks", 101);
    r.checks = None;
    a.set_rows(vec![r]);
    assert_eq!(a.rows[0].checks.as_ref().map(Vec::len), Some(7));
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

/// `i` with several apps asks which one, starting on the highlighted instance's app; with
/// nothing highlighted it starts on the first.
#[test]
fn install_picker_starts_on_the_highlighted_instances_app() {
    let catalog = launch::profile::Catalog::new(std::path::Path::new("/nonexistent"));
    let both = vec![
        catalog.load("radicale").unwrap().profile,
        catalog.load("vikunja").unwrap().profile,
    ];
    let mut a = app(vec![row("tasks", 101)], Instant::now());
    a.set_profiles(both.clone());
    match &a.dialog {
        Some(Dialog::ChooseProfile { names, selected }) => {
            assert_eq!(names, &["radicale", "vikunja"]);
            assert_eq!(names[*selected], "vikunja");
        }
        other => panic!("expected the app picker, got {other:?}"),
    }
    assert!(render(&a, 100, 30).contains("> vikunja"));

    let mut empty = app(vec![], Instant::now());
    empty.set_profiles(both);
    assert!(matches!(
        empty.dialog,
        Some(Dialog::ChooseProfile { selected: 0, .. })
    ));
}

/// The dashboard shows each check the moment it returns: a failure marks the instance
/// unhealthy before the other checks are done; the full list replaces what arrived.
#[test]
fn checks_show_as_they_return() {
    let mut r = row("tasks", 101);
    r.checks = None;
    let mut a = app(vec![r], Instant::now());
    assert!(render(&a, 120, 40).contains("… checking"));
    a.check_arrived("tasks", Check::ok("container", "running, up 3h 02m"));
    let screen = render(&a, 120, 40);
    assert!(screen.contains("… checking 1"), "{screen}");
    assert!(screen.contains("running, up 3h 02m"), "{screen}");
    assert!(screen.contains("checks running…"), "{screen}");
    a.check_arrived(
        "tasks",
        Check::fail("http-nginx", "502 through nginx", "launch-tui status tasks"),
    );
    let screen = render(&a, 120, 40);
    assert!(screen.contains("✗ 1 failed"), "{screen}");
    assert!(screen.contains("checks running…"), "{screen}");
    a.set_checks("tasks", healthy_checks(101));
    let screen = render(&a, 120, 40);
    assert!(screen.contains("● healthy"), "{screen}");
    assert!(!screen.contains("checks running…"), "{screen}");
    assert!(a.rows[0].arriving.is_empty());
}

#[test]
fn install_form_advanced_offers_https_with_acme_through_the_same_resolver() {
    let mut a = app(vec![], Instant::now());
    press(&mut a, &[KeyCode::Char('i')]);
    a.set_profiles(vec![vikunja()]);
    a.form.as_mut().unwrap().set_facts(Ok(node_facts()));
    // Default mode keeps to the basics: no TLS fields.
    let keys = |a: &App| -> Vec<String> {
        let f = a.form.as_ref().unwrap();
        f.fields.iter().map(|f| f.key.clone()).collect()
    };
    assert!(!keys(&a)
        .iter()
        .any(|k| k == "tls" || k.starts_with("acme_")));
    press(&mut a, &[KeyCode::F(2)]);
    for k in launch::acme::KEYS
        .iter()
        .chain(&["tls", "tls_cert", "tls_key"])
    {
        assert!(keys(&a).iter().any(|f| f == k), "Advanced lacks {k}");
    }
    let f = a.form.as_ref().unwrap();
    let tls = f.fields.iter().find(|f| f.key == "tls").unwrap();
    assert!(tls.help.as_deref().unwrap().contains("acme"), "{tls:?}");
    focus_on(&mut a, "public_url");
    type_in(&mut a, "https://tasks.example.com");
    focus_on(&mut a, "admin_email");
    type_in(&mut a, "admin@example.com");
    // An ACME setting without tls: acme is refused, inline, as in an answers file.
    focus_on(&mut a, "acme_email");
    type_in(&mut a, "ops@example.com");
    let f = a.form.as_ref().unwrap();
    assert!(
        f.errors
            .get("acme_email")
            .is_some_and(|e| e.contains("without `tls: acme`")),
        "{:?}",
        f.errors
    );
    focus_on(&mut a, "tls");
    type_in(&mut a, "acme");
    assert!(
        a.form.as_ref().unwrap().errors.is_empty(),
        "{:?}",
        a.form.as_ref().unwrap().errors
    );
    // A challenge the resolver does not know is named on its field.
    focus_on(&mut a, "acme_challenge");
    type_in(&mut a, "smoke-signal");
    assert!(a
        .form
        .as_ref()
        .unwrap()
        .errors
        .contains_key("acme_challenge"));
    for _ in 0.."smoke-signal".len() {
        press(&mut a, &[KeyCode::Backspace]);
    }
    type_in(&mut a, "http");
    press(&mut a, &[KeyCode::Enter]);
    let f = a.form.as_ref().unwrap();
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert!(f.summary.is_some());
    match &press(&mut a, &[KeyCode::Char('y')])[..] {
        [Effect::Install { answers, .. }] => {
            assert_eq!(answers["tls"], "acme");
            assert_eq!(answers["acme_email"], "ops@example.com");
            assert_eq!(answers["acme_challenge"], "http");
            assert!(
                !answers.contains_key("acme_directory"),
                "empty means not given"
            );
        }
        e => panic!("expected an install, got {e:?}"),
    }
}

#[test]
fn reconfigure_form_turns_on_acme_and_keeps_the_settings_it_does_not_change() {
    // HTTP now: tls=acme with an email; the check is reconfigure's own.
    let mut a = reconfigure_open();
    a.set_drift("tasks", Ok(vec![]));
    reconfigure_focus(&mut a, "acme_email");
    type_in(&mut a, "ops@example.com");
    press(&mut a, &[KeyCode::Enter]);
    let f = a.reconfigure.as_ref().unwrap();
    assert!(
        f.errors.contains_key("acme_email"),
        "an ACME setting without tls acme: {:?}",
        f.errors
    );
    reconfigure_focus(&mut a, "tls");
    type_in(&mut a, "acme");
    press(&mut a, &[KeyCode::Enter]);
    let f = a.reconfigure.as_ref().unwrap();
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    let summary = f
        .summary
        .as_ref()
        .expect("the change to confirm")
        .join("\n");
    assert!(
        summary.contains("ACME certificate for tasks.example.com"),
        "{summary}"
    );
    assert_eq!(
        f.set_args(),
        ["--set", "acme_email=ops@example.com", "--set", "tls=acme"].map(String::from)
    );

    // Already on ACME with a private CA: a new email keeps the directory and the challenge.
    let mut rec = tasks_record();
    for (k, v) in [
        ("tls", "true"),
        ("acme_email", "old@example.com"),
        ("acme_directory", "https://ca.internal:14000/dir"),
        ("acme_challenge", "http"),
    ] {
        rec.settings.insert(k.into(), v.into());
    }
    let mut f = launch::tui::manage::ReconfigureForm::new(rec, vikunja());
    let tls = f.fields.iter().find(|f| f.key == "tls").unwrap();
    assert_eq!(
        tls.value, "acme",
        "the record's tls: true shown as what it is"
    );
    assert!(f.changes().is_empty(), "nothing typed, nothing sent");
    let email = f.fields.iter().position(|f| f.key == "acme_email").unwrap();
    f.fields[email].value = "new@example.com".into();
    let changes = f.changes();
    assert_eq!(changes["tls"], "acme");
    assert_eq!(changes["acme_email"], "new@example.com");
    assert_eq!(changes["acme_directory"], "https://ca.internal:14000/dir");
    assert_eq!(changes["acme_challenge"], "http");
}
