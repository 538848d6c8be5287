//! End to end: `launch-tui update` and `rollback` through the real binary against pve-lab, under
//! load.
//!
//! Real: the launch-tui binary, the lab's API (every request validated against the official PVE
//! 8.4 schema), a Debian 12 container booted with systemd-nspawn, systemd and Debian's nginx in
//! it (reloads, the upstream switch, the write hold), SQLite, Proxmox-style snapshots of the
//! container's disk (on the lab's `local-zfs`, with PVE's ZFS rule: rollback only to the newest
//! snapshot), HTTP from the host to the container through nginx (`launch-load`, 4
//! workers, bounded). Stood in: Proxmox VE (pve-lab) and the Vikunja releases: the fixture app
//! v1.0.0, v2.0.0 (a schema migration on start) and v3.0.0 (starts, but its health check
//! answers 500), served over loopback through the same download-and-verify path.
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app::{assert_rows, create_task, created_ids, install, pvesh_get, record, version_at};
use lab::{fixture_profile, http_get, launch, text, Config, Lab, Releases};
use load::{assert_no_failures, Load};

#[test]
fn update_end_to_end() {
    // Over the HTTPS API (token, pinned fingerprint): CI's HTTPS half of the e2e suite.
    lab::prefer_transport(lab::Transport::Https);
    let lab = Lab::start();
    let rel = Releases::start();
    // The health gate's deadline is the profile's (60 s by default, like Kamal's); a shorter
    // one here keeps the broken release's test quick and proves the override works.
    let profile = fixture_profile(&rel, None).replacen(
        "      path: /health\n      expect_status: 200\n",
        "      path: /health\n      expect_status: 200\n      deadline_s: 15\n",
        1,
    );
    assert!(profile.contains("deadline_s: 15"));
    let cfg = Config::new(&profile);
    // On the lab's ZFS storage, where PVE rolls back only to the newest snapshot.
    let (ip, vmid) = install(&lab, &cfg, "storage: local-zfs\n");
    let rootfs = pvesh_get(&lab, &format!("/nodes/pve/lxc/{vmid}/config"))["rootfs"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        rootfs.starts_with(&format!("local-zfs:subvol-{vmid}-disk-0")),
        "{rootfs}"
    );
    let before: Vec<i64> = (0..20)
        .map(|i| create_task(&ip, &format!("before-{i}")))
        .collect();

    // 1. --check: reports the newest stable release, changes nothing.
    let out = launch(&lab, &cfg, &["update", "vikunja", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("update available: v1.0.0 → v2.0.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("upstream's newest release is v2.1.0, newer than the v2.0.0"),
        "{stdout}"
    );
    assert_eq!(version_at(&ip), "v1.0.0");

    // Bad input changes nothing: an unknown version, an unstable one without the channel.
    let out = launch(&lab, &cfg, &["update", "vikunja", "--version", "v9.9.9"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("v1.0.0, v2.0.0, v3.0.0"),
        "{}",
        text(&out)
    );
    let out = launch(&lab, &cfg, &["update", "vikunja", "--version", "v3.0.0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--channel unstable"), "{}", text(&out));

    // 2. v1 → v2 under load, with a second update started while the first runs.
    let load = Load::start(&ip);
    let bin = env!("CARGO_BIN_EXE_launch-tui");
    let mut first = Command::new(bin)
        .env("PATH", lab.path_env())
        .env("NO_COLOR", "1")
        .env("LAUNCH_CONFIG", cfg.path())
        .env("LAUNCH_LOG_DIR", cfg.path().join("log"))
        .env("LAUNCH_CACHE_DIR", cfg.path().join("cache"))
        .env("LAUNCH_STATE_DIR", cfg.path().join("state"))
        .args(["--host", &format!("https://127.0.0.1:{}", lab.port)])
        .args(["--fingerprint", &lab.fingerprint()])
        .arg("--token-file")
        .arg(lab.path().join("token"))
        .args(["update", "vikunja", "--watch", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = cfg.path().join("state/locks/vikunja.lock");
    let end = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains(&format!("\"pid\":{}", first.id()))
    {
        assert!(Instant::now() < end, "the first update never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = launch(&lab, &cfg, &["update", "vikunja"]);
    eprintln!("second update:\n{}", text(&second));
    assert_eq!(second.status.code(), Some(3), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("pid {}", first.id())) && err.contains("`update`"),
        "the second update must name the holder: {err}"
    );
    let _ = first.stdin.take();
    let t = Instant::now();
    let status = first.wait().unwrap();
    let mut so = String::new();
    let mut se = String::new();
    use std::io::Read;
    first
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut so)
        .unwrap();
    first
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut se)
        .unwrap();
    eprintln!(
        "update v1 → v2 ({:.1} s after the second one gave up):\n{so}\n{se}",
        t.elapsed().as_secs_f64()
    );
    let summary = load.stop();
    assert!(status.success(), "update failed:\n{so}\n{se}");
    assert!(so.contains("v1.0.0 → v2.0.0"), "{so}");
    assert!(
        so.contains("writes held:") && so.contains("switch:"),
        "{so}"
    );
    // Data first: every row the load was told was written must be on v2.
    assert_rows(
        &ip,
        &created_ids(&summary),
        "rows written during the update",
    );
    assert_no_failures("update v1 → v2", &summary);
    assert_eq!(version_at(&ip), "v2.0.0");
    assert_eq!(
        record(&cfg, "vikunja")["app_version"].as_str(),
        Some("v2.0.0")
    );
    assert_eq!(
        record(&cfg, "vikunja")["active_slot"].as_str(),
        Some("green")
    );
    // Rows written on v1 (before and during the update) are readable on v2.
    assert_rows(&ip, &before, "rows written before the update");
    let during = created_ids(&summary);
    assert!(!during.is_empty(), "the load wrote nothing: {summary}");
    assert_rows(&ip, &during, "rows written during the update");
    // v2's migration ran on its copy: old rows became priority 1.
    let (_, body) = http_get(&format!("http://{ip}/api/v1/tasks/{}", before[0]));
    assert!(body.contains("\"priority\":1"), "{body}");
    // Proven switch and no leftovers: the hold is gone, blue is stopped, one journal-free state.
    let out = lab.pct(&["exec", &vmid, "--", "sh", "-c",
        "ls /etc/nginx/launch/; systemctl is-active vikunja-api-blue.service vikunja-api-green.service; true"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(!listing.contains("hold"), "{listing}");
    assert!(listing.contains("inactive\nactive"), "{listing}");
    assert!(!cfg.path().join("state/journal/vikunja.json").exists());
    // A Proxmox snapshot was taken before the update.
    let snaps = pvesh_get(&lab, &format!("/nodes/pve/lxc/{vmid}/snapshot")).to_string();
    assert!(snaps.contains("launch-pre-update-"), "{snaps}");

    // 3. Nothing to do now.
    let out = launch(&lab, &cfg, &["update", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));

    // 4. v2 → v3-broken under load: the health gate refuses it, v2 keeps serving, exit 1.
    let on_v2 = create_task(&ip, "written-on-v2");
    let load = Load::start(&ip);
    let out = launch(
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
            "3",
        ],
    );
    let summary = load.stop();
    eprintln!("update to v3 (broken):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("v2.0.0 still serves"), "{err}");
    assert!(err.contains("log:"), "{err}");
    assert_no_failures("update to v3-broken", &summary);
    assert_eq!(version_at(&ip), "v2.0.0");
    assert_eq!(
        record(&cfg, "vikunja")["app_version"].as_str(),
        Some("v2.0.0")
    );
    assert_rows(
        &ip,
        &created_ids(&summary),
        "rows written during the failed update",
    );
    assert!(!cfg.path().join("state/journal/vikunja.json").exists());

    // 5. rollback to v1: needs confirmation; then v1 serves on its pre-update data.
    let out = launch(&lab, &cfg, &["rollback", "vikunja"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(version_at(&ip), "v2.0.0");
    let out = launch(
        &lab,
        &cfg,
        &["rollback", "vikunja", "--yes", "--watch", "2"],
    );
    eprintln!("rollback:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(version_at(&ip), "v1.0.0");
    assert_eq!(
        record(&cfg, "vikunja")["active_slot"].as_str(),
        Some("blue")
    );
    // The documented data behaviour: rows from before the update are there; a row written on
    // v2 is not (its data stays in the green slot's directory until the next update).
    assert_rows(
        &ip,
        &before,
        "rows written before the update, after rollback",
    );
    let (status, _) = http_get(&format!("http://{ip}/api/v1/tasks/{on_v2}"));
    assert_eq!(status, 404, "a row written on v2 is not in v1's data");
    let kept = lab.pct(&[
        "exec",
        &vmid,
        "--",
        "test",
        "-s",
        "/var/lib/vikunja/green/vikunja.db",
    ]);
    assert!(
        kept.status.success(),
        "v2's data must stay on disk after the rollback"
    );
    // Nothing left to roll back to.
    let out = launch(&lab, &cfg, &["rollback", "vikunja", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // 6a. An admin's own snapshot, newer than Launch's: on ZFS the rollback is refused before
    //     anything changes (exit 2), naming the snapshot in the way and the command to delete
    //     it. PVE itself would fail the rollback task with "is not most recent snapshot".
    let pvesh = |args: &[&str]| {
        let mut full = vec!["pvesh"];
        full.extend_from_slice(args);
        lab.pve_lab_ok(&full);
    };
    let snaps = format!("/nodes/pve/lxc/{vmid}/snapshot");
    // Launch's newest snapshot was taken before the v3 attempt, seconds ago (times count in
    // seconds), so this one is newer.
    pvesh(&["create", &snaps, "--snapname", "admin-manual"]);
    let out = launch(&lab, &cfg, &["rollback", "vikunja", "--snapshot", "--yes"]);
    eprintln!(
        "rollback --snapshot with a newer snapshot on ZFS:\n{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("ZFS storage local-zfs"), "{msg}");
    assert!(msg.contains("admin-manual"), "{msg}");
    assert!(
        msg.contains(&format!("pct delsnapshot {vmid} admin-manual")),
        "{msg}"
    );
    assert_eq!(version_at(&ip), "v1.0.0", "nothing changed");
    assert!(pve_lab::read_access_log(lab.path())
        .iter()
        .all(|e| !e.path.ends_with("/rollback")));
    pvesh(&["delete", &format!("{snaps}/admin-manual")]);

    // 6. rollback --snapshot: the whole container back to the newest pre-update snapshot, the
    // one taken before the attempt at v3: v2 with everything written on it until then.
    let out = launch(&lab, &cfg, &["rollback", "vikunja", "--snapshot", "--yes"]);
    eprintln!("rollback --snapshot:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(version_at(&ip), "v2.0.0");
    assert_eq!(
        record(&cfg, "vikunja")["app_version"].as_str(),
        Some("v2.0.0")
    );
    assert_rows(
        &ip,
        &before,
        "rows written before the update, after the snapshot rollback",
    );
    assert_rows(&ip, &[on_v2], "the row written on v2 before the v3 attempt");
}
