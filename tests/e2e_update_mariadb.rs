//! End to end: `update` and `rollback` of an instance on MariaDB in the container, under load:
//! the same scenario as on PostgreSQL (`support/server_db.rs`), with `mariadb-dump` as the way
//! back.
//!
//! Real: the launch-tui binary, the lab's API (validated against the official PVE 8.4 schema), a
//! Debian 12 container (systemd-nspawn) with Debian's MariaDB, nginx and systemd,
//! `mariadb-dump` and `mariadb`, HTTP from the host through nginx (`launch-load`). Stood in:
//! Proxmox VE (pve-lab) and the Vikunja releases (fixture v1.0.0, and v2.0.0 which adds a column
//! on start).
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
use lab::{fixture_profile, Config, Lab, Releases};

#[test]
fn update_and_rollback_on_mariadb() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, vmid) = install(&lab, &cfg, "database: mariadb\n");
    server_db::update_and_rollback(&lab, &cfg, &ip, &vmid, "mariadb");
}
