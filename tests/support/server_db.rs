//! The update and rollback scenario on a server database (both slots share it; the
//! pre-update dump is the way back), for each database kind's end-to-end test.
#![allow(dead_code)]

use super::app::{assert_rows, create_task, created_ids, record, version_at};
use super::lab::{launch, text, Config, Lab};
use super::load::{assert_no_failures, Load};

/// v1 → v2 under load (zero failed requests, every row kept, the dump private), then rollback
/// (the dump restored: v1 with the rows from before the update).
pub fn update_and_rollback(lab: &Lab, cfg: &Config, ip: &str, vmid: &str, what: &str) {
    let before: Vec<i64> = (0..10)
        .map(|i| create_task(ip, &format!("{what}-{i}")))
        .collect();

    let load = Load::start(ip);
    let out = launch(lab, cfg, &["update", "vikunja", "--watch", "3"]);
    let summary = load.stop();
    eprintln!("update on {what}:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let during: Vec<i64> = created_ids(&summary);
    assert_rows(ip, &before, "rows written before the update");
    assert_rows(ip, &during, "rows written during the update");
    assert_no_failures(&format!("update on {what}"), &summary);
    assert_eq!(version_at(ip), "v2.0.0");
    // The pre-update dump is recorded and private.
    let dump = record(cfg, "vikunja")["previous"]["dump"]
        .as_str()
        .expect("the record names the pre-update dump")
        .to_string();
    let mode = lab.pct_ok(&["exec", vmid, "--", "stat", "-c", "%a", &dump]);
    assert_eq!(mode.trim(), "600", "{dump}");

    // Rollback restores the dump: v1 runs on the schema it knows, with the rows from before.
    let out = launch(lab, cfg, &["rollback", "vikunja", "--yes", "--watch", "2"]);
    eprintln!("rollback on {what}:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(version_at(ip), "v1.0.0");
    assert_rows(
        ip,
        &before,
        "rows written before the update, after rollback",
    );
    let after = create_task(ip, "after-rollback");
    assert_rows(ip, &[after], "a row written after the rollback");
}
