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
#[path = "support/server_db.rs"]
mod server_db;

use app::install;
use lab::{fixture_profile, launch, text, Config, Lab, Releases};

#[test]
fn update_and_rollback_on_postgres() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, vmid) = install(&lab, &cfg, "database: postgres\n");
    server_db::update_and_rollback(&lab, &cfg, &ip, &vmid, "postgres");

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
