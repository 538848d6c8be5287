//! End to end: a service beside the database (issue #12's `services:`), Redis, through the
//! whole lifecycle of an instance that uses it: install (Debian's Redis set up with its own
//! password, loopback only) → writes into Redis through the app and nginx → status checks it →
//! update under load (0 failed) keeps them → backup (a background save of Redis, in the
//! archive) → the data broken → restore brings every key back → reconfigure turns Redis off
//! and on again → uninstall --keep-data → restore --to-new: a new container with Redis set up
//! again and every key back.
//!
//! Real: the launch-tui binary, the lab's API (validated against the official PVE 8.4 schema),
//! a Debian 12 container (systemd-nspawn) with Debian's redis-server, nginx and systemd, redis-cli
//! inside it, HTTP from the host through nginx (`launch-load` for the load). Stood in: Proxmox VE
//! (pve-lab) and the Vikunja releases (crates/fixture-app, which keeps its key-value store in
//! Redis as Vikunja's `keyvalue.type: redis` does, and shows it at /api/v1/kv/KEY, a route real
//! Vikunja does not have).
//!
//! What an attacker must not achieve: read the Redis password from argv, logs or a world-readable
//! file, or reach Redis from outside the container.
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;

use app::{client, install, record};
use lab::{fixture_profile, launch, text, Config, Lab, Releases};
use load::{assert_no_failures, Load};

fn put_kv(ip: &str, key: &str, value: &str) {
    let r = client()
        .put(format!("http://{ip}/api/v1/kv/{key}"))
        .body(value.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "PUT {key}: {}", r.text().unwrap());
}

fn get_kv(ip: &str, key: &str) -> Option<String> {
    let r = client()
        .get(format!("http://{ip}/api/v1/kv/{key}"))
        .send()
        .unwrap();
    match r.status().as_u16() {
        200 => Some(
            r.json::<serde_json::Value>().unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string(),
        ),
        404 => None,
        s => panic!("GET {key}: {s} {}", r.text().unwrap()),
    }
}

fn keyvalue_store(ip: &str) -> String {
    let v: serde_json::Value = client()
        .get(format!("http://{ip}/api/v1/info"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["keyvalue"].as_str().unwrap().to_string()
}

fn assert_keys(ip: &str, keys: &[(String, String)], when: &str) {
    for (k, v) in keys {
        assert_eq!(
            get_kv(ip, k).as_deref(),
            Some(v.as_str()),
            "{when}: key {k}"
        );
    }
}

fn status_line(lab: &Lab, cfg: &Config) -> (i32, String) {
    let out = launch(lab, cfg, &["status", "vikunja"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.contains("service-redis"))
        .unwrap_or_else(|| panic!("no Redis check in status: {}", text(&out)))
        .to_string();
    (out.status.code().unwrap_or(-1), line)
}

#[test]
fn redis_service_lifecycle() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));

    // 1. Install with Redis: the app's key-value store is Redis, with a password of its own.
    let (ip, vmid) = install(&lab, &cfg, "use_redis: true\n");
    let rec = record(&cfg, "vikunja");
    let password = rec["secrets"]["redis_password"]
        .as_str()
        .expect("the record keeps the Redis password")
        .to_string();
    assert_eq!(password.len(), 32);
    assert_eq!(keyvalue_store(&ip), "redis");
    let conf = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "stat",
        "-c",
        "%a %U",
        "/etc/redis/launch.conf",
    ]);
    assert_eq!(conf.trim(), "640 redis", "the password file is private");
    // Without the password Redis refuses; it listens on loopback only.
    let anon = lab.pct(&[
        "exec",
        &vmid,
        "--",
        "redis-cli",
        "-h",
        "127.0.0.1",
        "get",
        "x",
    ]);
    assert!(
        text(&anon).contains("NOAUTH"),
        "Redis answers without a password: {}",
        text(&anon)
    );
    let from_host = std::net::TcpStream::connect_timeout(
        &format!("{ip}:6379").parse().unwrap(),
        std::time::Duration::from_secs(3),
    );
    assert!(
        from_host.is_err(),
        "Redis answers from outside the container"
    );
    // The password is in no log the install wrote.
    let logs: String = std::fs::read_dir(cfg.path().join("log/vikunja"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        logs.contains("Setting up Redis"),
        "the install's log: {logs}"
    );
    assert!(!logs.contains(&password), "the Redis password is in a log");

    let mut keys: Vec<(String, String)> = (0..20)
        .map(|i| (format!("before-{i}"), format!("value {i} \u{e9}")))
        .collect();
    for (k, v) in &keys {
        put_kv(&ip, k, v);
    }
    let stored = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "sh",
        "-c",
        "REDISCLI_AUTH=$(sed -n 's/^requirepass //p' /etc/redis/launch.conf) redis-cli --no-auth-warning get fixture:before-3",
    ]);
    assert_eq!(stored.trim(), "value 3 \u{e9}", "the app wrote into Redis");

    // 2. status checks Redis; a stopped Redis is a failure with its fix.
    let (code, line) = status_line(&lab, &cfg);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("answers"), "{line}");
    lab.pct_ok(&["exec", &vmid, "--", "systemctl", "stop", "redis-server"]);
    let (code, line) = status_line(&lab, &cfg);
    assert_eq!(code, 4, "{line}");
    assert!(
        line.contains("FAIL") && line.contains("redis-server.service"),
        "{line}"
    );
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    assert!(
        text(&out).contains(&format!(
            "pct exec {vmid} -- systemctl restart redis-server.service"
        )),
        "{}",
        text(&out)
    );
    lab.pct_ok(&["exec", &vmid, "--", "systemctl", "start", "redis-server"]);

    // 3. Update under load: no request fails, the keys stay.
    let load = Load::start(&ip);
    // A 5 s watch after the switch (the profile's is longer): the switch is what this proves;
    // the watch itself is tested in e2e_update.
    let out = launch(
        &lab,
        &cfg,
        &[
            "update",
            "vikunja",
            "--version",
            "v2.0.0",
            "--yes",
            "--watch",
            "5",
        ],
    );
    let summary = load.stop();
    eprintln!("update:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "update: {}", text(&out));
    assert_no_failures("update with Redis", &summary);
    assert_keys(&ip, &keys, "after the update");
    assert_eq!(keyvalue_store(&ip), "redis");

    // 4. Backup: Redis's data is in the archive.
    let out = launch(&lab, &cfg, &["backup", "vikunja", "--json"]);
    assert_eq!(out.status.code(), Some(0), "backup: {}", text(&out));
    assert!(
        !text(&out).contains(&password),
        "the password is in the backup's output"
    );
    let dir = cfg.path().join("state/backups/vikunja");
    let result = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("archive").is_some())
        .expect("the backup's result");
    let archive = std::path::PathBuf::from(result["archive"].as_str().unwrap());
    let listing = std::process::Command::new("tar")
        .arg("-I")
        .arg("zstd")
        .arg("-tf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l == "db/redis.rdb"), "{listing}");

    // 5. Break it: a key overwritten, one added; restore puts them back as they were.
    put_kv(&ip, "before-0", "overwritten");
    put_kv(&ip, "after-backup", "gone after restore");
    let out = launch(
        &lab,
        &cfg,
        &["restore", "vikunja", archive.to_str().unwrap(), "--yes"],
    );
    eprintln!("restore:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "restore: {}", text(&out));
    assert_keys(&ip, &keys, "after restore");
    assert_eq!(
        get_kv(&ip, "after-backup"),
        None,
        "a key made after the backup"
    );
    let old = lab.pct(&[
        "exec",
        &vmid,
        "--",
        "test",
        "-e",
        "/var/lib/redis/dump.rdb.launch-old",
    ]);
    assert!(
        !old.status.success(),
        "the previous data was removed once the restore finished"
    );

    // 6. Reconfigure: Redis off (the app keeps its values in memory, Redis stopped, its data
    // kept), then on again (the same data back).
    let out = launch(
        &lab,
        &cfg,
        &[
            "reconfigure",
            "vikunja",
            "--set",
            "use_redis=false",
            "--yes",
        ],
    );
    eprintln!("reconfigure use_redis=false:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(keyvalue_store(&ip), "memory");
    let active = lab.pct(&[
        "exec",
        &vmid,
        "--",
        "systemctl",
        "is-active",
        "redis-server",
    ]);
    assert!(
        !active.status.success(),
        "Redis still runs: {}",
        text(&active)
    );
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    assert!(!text(&out).contains("service-redis"), "{}", text(&out));
    let out = launch(
        &lab,
        &cfg,
        &["reconfigure", "vikunja", "--set", "use_redis=true", "--yes"],
    );
    eprintln!("reconfigure use_redis=true:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(keyvalue_store(&ip), "redis");
    assert_keys(&ip, &keys, "after Redis was turned off and on");

    // 7. uninstall --keep-data, restore --to-new: Redis set up in the new container, keys back.
    keys.push(("late".into(), "written before uninstall".into()));
    put_kv(&ip, "late", "written before uninstall");
    let out = launch(
        &lab,
        &cfg,
        &["uninstall", "vikunja", "--keep-data", "--yes"],
    );
    eprintln!("uninstall --keep-data:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let kept = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .find(|p| p.ends_with(".tar.zst") && stdout.contains(p.as_str()))
        .unwrap_or_else(|| panic!("the kept archive is named: {stdout}"));
    let out = launch(
        &lab,
        &cfg,
        &["restore", "vikunja", &kept, "--to-new", "vikunja", "--yes"],
    );
    eprintln!("restore --to-new:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rec = record(&cfg, "vikunja");
    let ip2 = rec["container"]["ip"].as_str().unwrap().to_string();
    // The new container's Redis has a password of its own (credentials for a container never come
    // from an archive, as with a database's): the record and the server agree on it.
    let vmid2 = rec["container"]["vmid"].as_u64().unwrap().to_string();
    let conf = lab.pct_ok(&["exec", &vmid2, "--", "cat", "/etc/redis/launch.conf"]);
    let new_password = rec["secrets"]["redis_password"].as_str().unwrap();
    assert!(
        conf.lines()
            .any(|l| l == format!("requirepass {new_password}")),
        "the record's Redis password is the server's"
    );
    assert_eq!(keyvalue_store(&ip2), "redis");
    assert_keys(&ip2, &keys, "after restore --to-new");
    let (code, line) = status_line(&lab, &cfg);
    assert_eq!(code, 0, "{line}");
}
