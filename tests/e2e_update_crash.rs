//! End to end: crash safety of `launch-tui update`. For every step of the update, launch-tui is
//! killed with SIGKILL right after that step's work (the `LAUNCH_TEST_KILL_AFTER` hook in the
//! engine: a power cut at the worst moment), under load; the app must keep serving, and the next
//! command (`status`, `update` or `rollback`, in turn) must finish or undo the operation with
//! every row written before still there.
//!
//! Real: the launch-tui binary and its SIGKILL, the lab's API (validated against the official PVE
//! 8.4 schema), a Debian 12 container with systemd and nginx (systemd-nspawn), SQLite, HTTP from
//! the host through nginx (`launch-load`). Stood in: Proxmox VE (pve-lab) and the Vikunja
//! releases (fixture v1.0.0 and v2.0.0 with a schema migration, served over loopback).
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

const STEPS: &[&str] = &[
    "release",
    "safety-backup",
    "snapshot",
    "proxy",
    "hold-writes",
    "safety-copy",
    "green",
    "switch",
    "drain",
    "watch",
    "finish",
];

/// launch-tui with the kill hook set.
fn launch_killed(lab: &Lab, cfg: &Config, step: &str) -> std::process::Output {
    std::env::set_var("LAUNCH_TEST_KILL_AFTER", step);
    let out = launch(lab, cfg, &["update", "vikunja", "--watch", "1"]);
    std::env::remove_var("LAUNCH_TEST_KILL_AFTER");
    out
}

#[test]
fn update_survives_kill_at_every_step() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, _vmid) = install(&lab, &cfg, "");
    let journal = cfg.path().join("state/journal/vikunja.json");

    for (i, step) in STEPS.iter().enumerate() {
        assert_eq!(version_at(&ip), "v1.0.0", "before killing at {step}");
        let rows: Vec<i64> = (0..5)
            .map(|n| create_task(&ip, &format!("{step}-{n}")))
            .collect();
        let load = Load::start(&ip);
        let out = launch_killed(&lab, &cfg, step);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(9),
            "the update was to be killed after `{step}`: {}",
            text(&out)
        );
        // Killed: the app still serves, old or new.
        let v = version_at(&ip);
        assert!(
            v == "v1.0.0" || v == "v2.0.0",
            "after a kill at {step}: {v}"
        );
        if *step != "finish" {
            assert!(journal.exists(), "a kill at {step} must leave the journal");
        }
        // The next command finishes or undoes it: status, update and rollback in turn. A
        // rollback then goes on to return to v1 on its pre-update data (writes made on v2 are
        // not in it, by design), so the load is checked before it runs.
        let next = ["status", "update", "rollback"][i % 3];
        let (out, summary) = if next == "rollback" {
            let summary = load.stop();
            (
                launch(
                    &lab,
                    &cfg,
                    &["rollback", "vikunja", "--yes", "--watch", "1"],
                ),
                summary,
            )
        } else {
            let out = match next {
                "status" => launch(&lab, &cfg, &["status", "vikunja"]),
                _ => launch(&lab, &cfg, &["update", "vikunja", "--watch", "1"]),
            };
            (out, load.stop())
        };
        eprintln!("killed after {step}; then `{next}`:\n{}", text(&out));
        let ids: Vec<i64> = created_ids(&summary);
        assert!(
            !journal.exists(),
            "`{next}` after a kill at {step} left the journal:\n{}",
            text(&out)
        );
        let v = version_at(&ip);
        assert!(v == "v1.0.0" || v == "v2.0.0", "after `{next}`: {v}");
        assert_eq!(
            record(&cfg, "vikunja")["app_version"].as_str(),
            Some(v.as_str())
        );
        // Every row written before the update is there; so is every write the load was told
        // succeeded (unless a rollback deliberately went back to the pre-update data).
        assert_rows(
            &ip,
            &rows,
            &format!("rows written before the kill at {step}"),
        );
        if next != "rollback" {
            assert_rows(
                &ip,
                &ids,
                &format!("rows written around the kill at {step}"),
            );
        }
        assert_no_failures(&format!("kill at {step}, then {next}"), &summary);
        // Back to v1 for the next round.
        if v == "v2.0.0" {
            let out = launch(
                &lab,
                &cfg,
                &["rollback", "vikunja", "--yes", "--watch", "1"],
            );
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        }
    }
}
