//! End to end: an update no client notices. Under keep-alive load (persistent connections, as
//! browsers keep) and per-request-connection load at once, `update` v1 → v2 gives no transport
//! error, no 5xx, and every acknowledged write is readable afterwards: writes wait at nginx
//! during the hold and go on to v2, and the switch needs no reload (nginx's workers are the same
//! before and after). Then a hold that outlasts its maximum (2 s here, a slow data move forced by
//! the `LAUNCH_TEST_SLOW_COPY_S` hook, towards the broken v3 that is rolled back): those writes
//! get 503 with `Retry-After`, nothing acknowledged is lost, v2 keeps serving.
//!
//! Real: the launch-tui binary, the lab's API (every request validated against the official PVE
//! 8.4 schema), a Debian 12 container booted with systemd-nspawn, Debian's nginx with its Lua
//! module (libnginx-mod-http-lua from Debian's mirror) and systemd in it, SQLite, HTTP from the
//! host through nginx (`launch-load`, bounded). Stood in: Proxmox VE (pve-lab) and the Vikunja
//! releases (the fixture app v1.0.0, v2.0.0 with a schema migration, v3.0.0 whose health check
//! answers 500), served over loopback through the same download-and-verify path.
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;

use app::{assert_rows, created_ids, install, record, version_at};
use lab::{fixture_profile, launch, launch_env, text, Config, Lab, Releases};
use load::{assert_no_failures, Load};

/// nginx's worker pids in the container (a reload replaces them all).
fn nginx_workers(lab: &Lab, vmid: &str) -> Vec<String> {
    let out = lab.pct_ok(&[
        "exec",
        vmid,
        "--",
        "/bin/sh",
        "-c",
        "grep -ls 'nginx: worker proces[s]' /proc/[0-9]*/cmdline; true",
    ]);
    let mut pids: Vec<String> = out.lines().map(str::to_string).collect();
    pids.sort();
    pids
}

/// No transport error, no 5xx, no failed request, every acknowledged write readable.
fn assert_unnoticed(what: &str, ip: &str, s: &serde_json::Value) {
    assert_no_failures(what, s);
    assert_eq!(
        s["transport_errors"].as_u64(),
        Some(0),
        "{what}: transport errors: {s}"
    );
    assert_eq!(
        s["by_class"]["5xx"].as_u64().unwrap_or(0),
        0,
        "{what}: 5xx answers: {s}"
    );
    assert_eq!(s["held"].as_u64(), Some(0), "{what}: writes refused: {s}");
    let ids = created_ids(s);
    assert!(!ids.is_empty(), "{what}: the load wrote nothing: {s}");
    assert_rows(ip, &ids, what);
}

#[test]
fn update_unnoticed_under_keep_alive_and_per_request_load() {
    let lab = Lab::start();
    let rel = Releases::start();
    // A short health deadline keeps the broken v3's attempt (inside the hold) quick.
    let profile = fixture_profile(&rel, None).replacen(
        "      path: /health\n      expect_status: 200\n",
        "      path: /health\n      expect_status: 200\n      deadline_s: 5\n",
        1,
    );
    assert!(profile.contains("deadline_s: 5"));
    let cfg = Config::new(&profile);
    let (ip, vmid) = install(&lab, &cfg, "");
    // The first request after install meets the app's site, never nginx's default one.
    assert_eq!(version_at(&ip), "v1.0.0");

    // 1. v1 → v2 under both loads at once (held writes wait up to 30 s at nginx; the clients'
    // timeout is 40 s).
    let workers = nginx_workers(&lab, &vmid);
    assert!(!workers.is_empty());
    let keep = Load::start_with(&ip, &["--keep-alive"]);
    let fresh = Load::start(&ip);
    let out = launch(&lab, &cfg, &["update", "vikunja", "--watch", "2"]);
    let keep = keep.stop();
    let fresh = fresh.stop();
    eprintln!("update v1 → v2:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(so.contains("v1.0.0 → v2.0.0"), "{so}");
    assert!(
        so.contains("hold phases:") && so.contains("data copy"),
        "{so}"
    );
    assert_eq!(version_at(&ip), "v2.0.0");
    assert_unnoticed("keep-alive load through the update", &ip, &keep);
    assert_unnoticed("per-request load through the update", &ip, &fresh);
    assert_eq!(keep["keep_alive"].as_bool(), Some(true));
    // No reload: the workers that served before the update serve after it.
    assert_eq!(nginx_workers(&lab, &vmid), workers, "nginx was reloaded");
    eprintln!(
        "longest write (held writes included): keep-alive {} ms, per-request {} ms; writes that waited over 1 s: {} and {}",
        keep["max_write_ms"], fresh["max_write_ms"], keep["writes_waited"], fresh["writes_waited"]
    );

    // 2. A hold that outlasts its maximum: 2 s, while the data move takes 6 s more (test hook).
    // The profile's new maximum reaches the site in the update's `proxy` step (a proven reload
    // before the hold). The target, v3, fails its health gate: the update rolls back.
    let short = profile.replacen(
        "update:\n  watch_s: 30\n",
        "update:\n  watch_s: 30\n  hold_max_wait_s: 2\n",
        1,
    );
    assert!(short.contains("hold_max_wait_s: 2"));
    std::fs::write(cfg.path().join("profiles/vikunja.yaml"), &short).unwrap();
    // A connection per request here: the `proxy` step's one reload (the new maximum) would
    // close idle keep-alive connections, which part 1 proves an update without it does not.
    let load = Load::start(&ip);
    let out = launch_env(
        &lab,
        &cfg,
        &[
            "update",
            "vikunja",
            "--channel",
            "unstable",
            "--version",
            "v3.0.0",
            "--watch",
            "2",
        ],
        &[("LAUNCH_TEST_SLOW_COPY_S", "6")],
    );
    let s = load.stop();
    eprintln!("update to v3 with a slow data move:\n{}", text(&out));
    // Rolled back: exit 1, v2 serves as before.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("v2.0.0 still serves"),
        "{}",
        text(&out)
    );
    assert_eq!(version_at(&ip), "v2.0.0");
    assert_eq!(
        record(&cfg, "vikunja")["app_version"].as_str(),
        Some("v2.0.0")
    );
    // Writes held past 2 s were answered 503 with Retry-After (launch-load's `held`: only a
    // 503 that carries Retry-After counts there; any other answer is a failure).
    assert!(
        s["held"].as_u64().unwrap_or(0) > 0,
        "no write was answered 503 + Retry-After: {s}"
    );
    assert_no_failures("load through a hold past its maximum", &s);
    assert_eq!(s["transport_errors"].as_u64(), Some(0), "{s}");
    // Nothing acknowledged is lost.
    assert_rows(
        &ip,
        &created_ids(&s),
        "writes acknowledged around the long hold",
    );
    assert!(!cfg.path().join("state/journal/vikunja.json").exists());
    let listing = lab.pct_ok(&["exec", &vmid, "--", "ls", "/etc/nginx/launch/"]);
    assert!(!listing.contains("hold"), "the hold is lifted: {listing}");
}
