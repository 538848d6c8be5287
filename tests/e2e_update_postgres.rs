//! End to end: `update` and `rollback` of an instance on a server database (a local
//! PostgreSQL in the container), under load. Both slots share the database: the new version
//! migrates it after a `pg_dump` taken while writes are held, and `rollback` restores that dump.
//!
//! Real: the launch-tui binary, the lab's API (validated against the official PVE 8.4 schema), a
//! Debian 12 container (systemd-nspawn) with Debian's PostgreSQL 15, nginx and systemd, pg_dump
//! and psql, HTTP from the host through nginx (`launch-load`). Stood in: Proxmox VE (pve-lab)
//! and the Vikunja releases (fixture v1.0.0, and v2.0.0 which adds a column on start).
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;

use std::time::Duration;

use lab::{fixture_profile, http_get, launch, text, Config, Lab, Releases};
use load::{assert_no_failures, Load};

fn record(cfg: &Config) -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(cfg.path().join("instances/vikunja.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn version_at(ip: &str) -> String {
    let (status, body) = http_get(&format!("http://{ip}/api/v1/info"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["version"].as_str().unwrap().to_string()
}

fn create_task(ip: &str, title: &str) -> i64 {
    let c = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = c
        .put(format!("http://{ip}/api/v1/tasks"))
        .header("Content-Type", "application/json")
        .body(format!("{{\"title\":\"{title}\"}}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json::<serde_json::Value>().unwrap()["id"]
        .as_i64()
        .unwrap()
}

fn assert_rows(ip: &str, ids: &[i64], what: &str) {
    for id in ids {
        let (status, body) = http_get(&format!("http://{ip}/api/v1/tasks/{id}"));
        assert_eq!(status, 200, "{what}: task {id}: {body}");
    }
}

#[test]
fn update_and_rollback_on_postgres() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let answers = cfg.path().join("answers.yaml");
    std::fs::write(
        &answers,
        "public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\ndatabase: postgres\n",
    )
    .unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let ip = record(&cfg)["container"]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let vmid = record(&cfg)["container"]["vmid"]
        .as_u64()
        .unwrap()
        .to_string();
    let before: Vec<i64> = (0..10)
        .map(|i| create_task(&ip, &format!("pg-{i}")))
        .collect();

    let load = Load::start(&ip);
    let out = launch(&lab, &cfg, &["update", "vikunja", "--watch", "3"]);
    let summary = load.stop();
    eprintln!("update on postgres:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let during: Vec<i64> = summary["created_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_rows(&ip, &before, "rows written before the update");
    assert_rows(&ip, &during, "rows written during the update");
    assert_no_failures("update on postgres", &summary);
    assert_eq!(version_at(&ip), "v2.0.0");
    // The pre-update dump is recorded and private.
    let dump = record(&cfg)["previous"]["dump"]
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
}
