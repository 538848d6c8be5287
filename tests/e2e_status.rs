//! End to end: `launch-tui status` through its real binary against pve-lab, on a real
//! installed instance (systemd-nspawn container, nginx, the fixture app): healthy, an old
//! backup, a stopped app unit (and `--notify` posting it to a webhook of the test's own on
//! loopback, then a webhook that fails), and a stopped container, each with the exit code and
//! the fix it must print; the container started without `nesting` (the lab drops
//! CAP_SYS_ADMIN as PVE's AppArmor denies mounts: the hardened unit fails 226/NAMESPACE) and
//! the fix status prints for it; a new DHCP lease after a restart (the lab's dnsmasq moves
//! its reservations) that status follows and records; then a second instance installed with a self-signed certificate that
//! expires in 5 days (the TLS warning) and the daily health check opted in (its units written
//! and verified by `systemd-analyze verify`; this machine's systemd is not PID 1).

#[path = "support/lab.rs"]
mod lab;

use std::sync::{Arc, Mutex};

use lab::{
    fixture_profile, http_get, launch, launch_env, text, workspace_bin, Config, Lab, Releases,
};

/// A webhook receiver on loopback: `/hook` records each body and answers 200, `/broken`
/// answers 500.
struct Webhook {
    port: u16,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Webhook {
    fn start() -> Webhook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |body: String| {
                    let seen = seen.clone();
                    async move {
                        let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                        seen.lock().unwrap().push(v);
                        "ok"
                    }
                }),
            )
            .route(
                "/broken",
                axum::routing::post(|| async {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom")
                }),
            );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Webhook {
            port,
            bodies,
            _runtime: runtime,
        }
    }
}

fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn record(cfg: &Config, name: &str) -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(cfg.path().join(format!("instances/{name}.yaml"))).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The status object from `--json` stdout: its first line (an error line may follow).
fn status_json(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let _: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}\n{}", text(out)));
    }
    let first = stdout.lines().next().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    // Every status object, healthy or not, validates against the documented schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("docs/status.schema.json compiles");
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "status --json does not match docs/status.schema.json: {errors:#?}\n{v:#}"
    );
    v
}

fn check<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["instances"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {v:#}"))
}

#[test]
fn status_end_to_end() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let answers = cfg.path().join("vikunja-answers.yaml");
    std::fs::write(
        &answers,
        "public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\n",
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
    let vmid = record(&cfg, "vikunja")["container"]["vmid"]
        .as_u64()
        .unwrap()
        .to_string();
    let unit = "vikunja-api-blue.service";

    // 1. Healthy: exit 0, every check OK, the newer stable release mentioned.
    let t = std::time::Instant::now();
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    eprintln!(
        "status (healthy): {:.1} s\n{}",
        t.elapsed().as_secs_f64(),
        text(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("vikunja: HEALTHY"), "{stdout}");
    assert!(
        !stdout.contains("WARN") && !stdout.contains("FAIL"),
        "{stdout}"
    );
    for id in [
        "container",
        "memory",
        "disk",
        "unit:vikunja-api-blue.service",
        "unit:nginx.service",
        "http-nginx",
        "http-slot",
        "version",
        "database",
        "operation",
    ] {
        assert!(
            stdout.contains(&format!("OK    {id}")),
            "{id} not OK:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("v2.0.0 is available"),
        "the newer stable release: {stdout}"
    );
    // No TLS and no backup yet: OK lines, the second one saying how to take a backup.
    assert!(stdout.contains("OK    tls "), "{stdout}");
    assert!(
        stdout.contains("no TLS: nginx serves HTTP only"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no backup yet: take one with `launch-tui backup vikunja`"),
        "{stdout}"
    );

    let out = launch(&lab, &cfg, &["status", "vikunja", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = status_json(&out);
    assert_eq!(v["instances"][0]["healthy"], true, "{v:#}");
    assert_eq!(v["instances"][0]["vmid"].to_string(), vmid);
    assert_eq!(v["result"], "ok");
    assert_eq!(check(&v, "version")["message"], "v1.0.0 (as recorded)");
    assert!(v["instances"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "ok" && c.get("fix").is_none()));

    // 1b. A backup 10 days old: a warning with the command, still healthy (exit 0).
    let backups = cfg.path().join("state/backups/vikunja");
    std::fs::create_dir_all(&backups).unwrap();
    let old = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    let stamp = old
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    let archive = backups.join(format!("vikunja-{stamp}-v1.0.0.tar.zst"));
    std::fs::write(&archive, b"").unwrap();
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("WARN  backup "), "{stdout}");
    assert!(
        stdout.contains("the newest backup is 10d 0h old"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: launch-tui backup vikunja"),
        "{stdout}"
    );
    std::fs::remove_file(&archive).unwrap();

    // 2. The app unit stopped: exit 4, the unit named, its restart command printed; the JSON
    //    object still comes out on stdout.
    lab.pct_ok(&["exec", &vmid, "--", "systemctl", "stop", unit]);
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    eprintln!("status (unit stopped):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let restart = format!("fix: pct exec {vmid} -- systemctl restart {unit}");
    assert!(
        stdout.contains(&format!("FAIL  unit:{unit}")),
        "{}",
        text(&out)
    );
    assert!(stdout.contains(&restart), "{}", text(&out));
    assert!(stdout.contains("last log line: "), "{}", text(&out));
    assert!(stdout.contains("FAIL  http-slot"), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 instance(s) unhealthy: vikunja"),
        "{}",
        text(&out)
    );
    let out = launch(&lab, &cfg, &["status", "vikunja", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let v = status_json(&out);
    assert_eq!(v["instances"][0]["healthy"], false);
    assert_eq!(v["result"], "unhealthy");
    let u = check(&v, &format!("unit:{unit}"));
    assert_eq!(u["status"], "fail");
    assert_eq!(
        u["fix"],
        format!("pct exec {vmid} -- systemctl restart {unit}")
    );
    assert!(u["message"].as_str().unwrap().contains("inactive"), "{u:#}");
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let err: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(err["exit_code"], 4);

    // 2b. `--notify` (what the daily timer runs) posts the unhealthy report to the webhook in
    //     notify.yaml, says so, and logs the run; the token in the URL is never printed.
    let hook = Webhook::start();
    let notify_yaml = cfg.path().join("notify.yaml");
    write_private(
        &notify_yaml,
        &format!(
            "webhook: http://127.0.0.1:{}/hook?token=s3cret\n",
            hook.port
        ),
    );
    let out = launch(&lab, &cfg, &["status", "--all", "--json", "--notify"]);
    eprintln!("status --notify (unit stopped):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "notify: posted the report to the webhook at http://127.0.0.1:{} (200 OK)",
            hook.port
        )),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("s3cret"), "{}", text(&out));
    let v = status_json(&out);
    assert_eq!(v["notify"]["sent"], true, "{v:#}");
    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    let b = &bodies[0];
    assert_eq!(b["result"], "unhealthy", "{b:#}");
    assert_eq!(b["instances"][0]["name"], "vikunja", "{b:#}");
    assert_eq!(b["instances"][0]["healthy"], false, "{b:#}");
    assert!(b["host"].is_string() && b["time"].is_string(), "{b:#}");
    let failed = check(b, &format!("unit:{unit}"));
    assert_eq!(
        failed["fix"],
        format!("pct exec {vmid} -- systemctl restart {unit}")
    );
    let log = std::fs::read_to_string(cfg.path().join("log/health.log")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(line["result"], "unhealthy");
    assert_eq!(line["notify"]["sent"], true);

    // A webhook that fails is reported (what it answered), not a crash; the exit stays 4.
    write_private(
        &notify_yaml,
        &format!("webhook: http://127.0.0.1:{}/broken\n", hook.port),
    );
    let out = launch(&lab, &cfg, &["status", "vikunja", "--json", "--notify"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "notify: not sent: the webhook at http://127.0.0.1:{} answered 500 Internal Server Error: boom",
            hook.port
        )),
        "{}",
        text(&out)
    );
    assert_eq!(status_json(&out)["notify"]["sent"], false);
    std::fs::remove_file(&notify_yaml).unwrap();

    // 3. Started again: healthy.
    lab.pct_ok(&["exec", &vmid, "--", "systemctl", "start", unit]);
    // `systemctl start` returns before the app listens; status must not be asked to paper
    // over that, so wait for the app first (bounded).
    let ip = record(&cfg, "vikunja")["container"]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while http_get(&format!("http://{ip}/health")).0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not come back within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let prom = cfg.path().join("launch.prom");
    let out = launch(
        &lab,
        &cfg,
        &["status", "--all", "--prometheus", prom.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(
        metrics.contains("launch_instance_healthy{instance=\"vikunja\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("launch_check_status{instance=\"vikunja\",check=\"http-nginx\"} 0"),
        "{metrics}"
    );

    // 4. The container stopped through the API: exit 4, "container is stopped", the start
    //    command, and no in-container checks that could only hang or fail on it.
    let stop = std::process::Command::new(workspace_bin("pve-lab"))
        .arg("--state")
        .arg(lab.path())
        .args([
            "pvesh",
            "create",
            &format!("/nodes/pve/lxc/{vmid}/status/stop"),
        ])
        .output()
        .unwrap();
    assert!(stop.status.success(), "stop: {}", text(&stop));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let out = loop {
        let out = launch(&lab, &cfg, &["status", "vikunja"]);
        if String::from_utf8_lossy(&out.stdout).contains("container is stopped")
            || std::time::Instant::now() > deadline
        {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    eprintln!("status (container stopped):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  container"), "{}", text(&out));
    assert!(stdout.contains("container is stopped"), "{}", text(&out));
    assert!(
        stdout.contains(&format!("fix: pct start {vmid}")),
        "{}",
        text(&out)
    );
    assert!(!stdout.contains("unit:"), "{}", text(&out));

    // 4b. Started again without `nesting`: as on PVE (AppArmor denies the mounts), the lab's
    //     strict mode makes the hardened app unit fail with 226/NAMESPACE. Status names the
    //     cause and the fix (nesting back on, then a reboot), not a plain restart.
    let pvesh = |args: &[&str]| {
        let mut full = vec!["pvesh"];
        full.extend_from_slice(args);
        lab.pve_lab_ok(&full);
    };
    let conf = format!("/nodes/pve/lxc/{vmid}/config");
    let start = format!("/nodes/pve/lxc/{vmid}/status/start");
    pvesh(&["set", &conf, "--features", "nesting=0"]);
    pvesh(&["create", &start]);
    let fix = format!("fix: pct set {vmid} --features nesting=1 && pct reboot {vmid}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let out = loop {
        let out = launch(&lab, &cfg, &["status", "vikunja"]);
        if String::from_utf8_lossy(&out.stdout).contains(&fix)
            || std::time::Instant::now() > deadline
        {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    eprintln!("status (nesting off):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("FAIL  unit:{unit}")), "{stdout}");
    assert!(stdout.contains("226/NAMESPACE"), "{stdout}");
    assert!(stdout.contains(&fix), "{stdout}");
    // The checks that only see the effect (nginx answers 502) point at the same fix.
    assert!(
        !stdout.contains(&format!("fix: pct exec {vmid} -- systemctl restart {unit}")),
        "{stdout}"
    );
    // nginx has no sandbox of its own: it still runs, so the cause is the app's unit alone.
    assert!(stdout.contains("OK    unit:nginx.service"), "{stdout}");
    // The fix as printed (through the API): healthy again.
    let stop = format!("/nodes/pve/lxc/{vmid}/status/stop");
    pvesh(&["create", &stop]);
    pvesh(&["set", &conf, "--features", "nesting=1"]);
    pvesh(&["create", &start]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_get(&format!("http://{ip}/health")).0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not come back with nesting=1 within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // 4c. The DHCP server hands out new leases (a router that lost its table) and the CT
    //     restarts: it asks again and gets another address. Status finds it there, says so
    //     (a warning: bookmarks and DNS still point at the old one), checks the app at the
    //     new address, and records it.
    let moved = lab.pve_lab_ok(&["fault", "renumber-dhcp"]);
    let moved: serde_json::Value = serde_json::from_str(&moved).unwrap();
    let new_ip = moved
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["vmid"].as_u64().map(|v| v.to_string()).as_deref() == Some(vmid.as_str()))
        .and_then(|m| m["new"].as_str())
        .unwrap()
        .to_string();
    assert_ne!(new_ip, ip);
    pvesh(&["create", &format!("/nodes/pve/lxc/{vmid}/status/reboot")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_get(&format!("http://{new_ip}/health")).0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not answer at its new address {new_ip} within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    eprintln!("status (new DHCP lease):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("WARN  address"), "{stdout}");
    assert!(
        stdout.contains(&format!("is at {new_ip} now, not {ip} as recorded")),
        "{stdout}"
    );
    assert!(stdout.contains("OK    http-nginx"), "{stdout}");
    assert_eq!(
        record(&cfg, "vikunja")["container"]["ip"].as_str(),
        Some(new_ip.as_str())
    );
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("WARN  address"));

    // 5. Bad input: no instance named, an unknown instance.
    let out = launch(&lab, &cfg, &["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("launch-tui status --all"));
    let out = launch(&lab, &cfg, &["status", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("installed instances: vikunja"));

    // 6. A second instance with TLS, its self-signed certificate valid for 5 more days, and
    //    the daily health check opted in.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["tls.lab.example".to_string()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    let cert = params.self_signed(&key).unwrap();
    let cert_file = cfg.path().join("tls-cert.pem");
    let key_file = cfg.path().join("tls-key.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    write_private(&key_file, &key.serialize_pem());
    let answers = cfg.path().join("tls-answers.yaml");
    std::fs::write(
        &answers,
        format!(
            "name: tls\npublic_url: https://tls.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\ntls_cert: {}\ntls_key: {}\nhealth_check: true\n",
            cert_file.display(),
            key_file.display()
        ),
    )
    .unwrap();
    let units = cfg.path().join("systemd");
    let out = launch_env(
        &lab,
        &cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
        &[("LAUNCH_SYSTEMD_DIR", units.to_str().unwrap())],
    );
    eprintln!("install with TLS and the daily check:\n{}", text(&out));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "daily check: wrote and verified launch-health.service and launch-health.timer"
        ),
        "{}",
        text(&out)
    );
    let service = std::fs::read_to_string(units.join("launch-health.service")).unwrap();
    // The unit connects the way this install did.
    let connection = match lab::transport() {
        lab::Transport::Pvesh => format!("--config {} --transport pvesh", cfg.path().display()),
        lab::Transport::Https => format!(
            "--config {} --host https://127.0.0.1:{}",
            cfg.path().display(),
            lab.port
        ),
    };
    assert!(service.contains(&connection), "{service}");
    assert!(
        service.contains(" --no-color status --all --json --notify\n"),
        "{service}"
    );
    let timer = std::fs::read_to_string(units.join("launch-health.timer")).unwrap();
    assert!(
        timer.contains("OnCalendar=daily\nPersistent=true\nRandomizedDelaySec="),
        "{timer}"
    );
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("launch-health.service"))
        .arg(units.join("launch-health.timer"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));

    let out = launch(&lab, &cfg, &["status", "tls", "--json"]);
    eprintln!("status (certificate expiring):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = status_json(&out);
    let tls = check(&v, "tls");
    assert_eq!(tls["status"], "warn", "{tls:#}");
    let msg = tls["message"].as_str().unwrap();
    assert!(
        msg.contains("/etc/vikunja/tls/cert.pem expires on")
            && msg.contains("day(s) left, under 14): renew it"),
        "{msg}"
    );
    assert_eq!(
        tls["fix"],
        "launch-tui reconfigure tls --set tls_cert=FILE --set tls_key=FILE"
    );
}
