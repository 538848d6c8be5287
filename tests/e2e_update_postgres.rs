//! End to end: `update` and `rollback` of an instance on a server database (a local
//! PostgreSQL in the container), under load. Both slots share the database: the new version
//! migrates it after a `pg_dump` taken while writes are held, and `rollback` restores that dump.
//!
//! Real: the launch-tui binary, the lab's API (validated against the official PVE 8.4 schema), a
//! Debian 12 container (systemd-nspawn) with Debian's PostgreSQL 15, nginx and systemd, pg_dump
//! and psql, HTTP from the host through nginx (`launch-load`). Stood in: Proxmox VE (pve-lab)
//! and the Vikunja releases (fixture v1.0.0, and v2.0.0 which adds a column on start).
//!
//! At the end, `status` on this instance (issue #6): the database server stopped, then the
//! container's disk filled with the lab's fault; each is reported with its fix.
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;

use app::{assert_rows, create_task, created_ids, install, record, version_at};
use lab::{fixture_profile, launch, text, Config, Lab, Releases};
use load::{assert_no_failures, Load};

#[test]
fn update_and_rollback_on_postgres() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, vmid) = install(&lab, &cfg, "database: postgres\n");
    let before: Vec<i64> = (0..10)
        .map(|i| create_task(&ip, &format!("pg-{i}")))
        .collect();

    let load = Load::start(&ip);
    let out = launch(&lab, &cfg, &["update", "vikunja", "--watch", "3"]);
    let summary = load.stop();
    eprintln!("update on postgres:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let during: Vec<i64> = created_ids(&summary);
    assert_rows(&ip, &before, "rows written before the update");
    assert_rows(&ip, &during, "rows written during the update");
    assert_no_failures("update on postgres", &summary);
    assert_eq!(version_at(&ip), "v2.0.0");
    // The pre-update dump is recorded and private.
    let dump = record(&cfg, "vikunja")["previous"]["dump"]
        .as_str()
        .expect("the record names the pre-update dump")
        .to_string();
    let mode = lab.pct_ok(&["exec", &vmid, "--", "stat", "-c", "%a", &dump]);
    assert_eq!(mode.trim(), "600", "{dump}");

    // Rollback restores the dump: v1 runs on the schema it knows, with the rows from before.
    let out = launch(
        &lab,
        &cfg,
        &["rollback", "vikunja", "--yes", "--watch", "2"],
    );
    eprintln!("rollback on postgres:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(version_at(&ip), "v1.0.0");
    assert_rows(
        &ip,
        &before,
        "rows written before the update, after rollback",
    );
    let after = create_task(&ip, "after-rollback");
    assert_rows(&ip, &[after], "a row written after the rollback");

    // status: the database server stopped → exit 4, the database named, the command to fix it.
    lab.pct_ok(&["exec", &vmid, "--", "systemctl", "stop", "postgresql"]);
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    eprintln!("status (postgres stopped):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("FAIL") && l.contains("database"))
        .unwrap_or_else(|| panic!("no database failure: {stdout}"));
    assert!(line.contains("postgresql.service"), "{line}");
    assert!(
        stdout.contains(&format!(
            "pct exec {vmid} -- systemctl restart postgresql.service"
        )),
        "{stdout}"
    );
    lab.pct_ok(&["exec", &vmid, "--", "systemctl", "start", "postgresql"]);

    // status: the disk filled (the lab's fault) → the disk check names it, with what to free.
    let fill = std::process::Command::new(lab::workspace_bin("pve-lab"))
        .arg("--state")
        .arg(lab.path())
        .args(["fault", "fill-disk", &vmid])
        .output()
        .unwrap();
    assert!(
        fill.status.success(),
        "{}",
        String::from_utf8_lossy(&fill.stderr)
    );
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    eprintln!("status (disk full):\n{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains(" disk ") && (l.contains("FAIL") || l.contains("WARN")))
        .unwrap_or_else(|| panic!("no disk problem reported: {stdout}"));
    assert!(line.contains("free"), "{line}");
    assert!(stdout.contains("largest paths"), "{stdout}");
    assert!(
        stdout.contains(&format!("pct resize {vmid} rootfs")),
        "{stdout}"
    );
}
