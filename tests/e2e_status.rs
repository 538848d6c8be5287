//! End to end: `launch-tui status` through its real binary against pve-lab, on a real
//! installed instance (systemd-nspawn container, nginx, the fixture app): healthy, a stopped
//! app unit, and a stopped container, each with the exit code and the fix it must print.

#[path = "support/lab.rs"]
mod lab;

use lab::{fixture_profile, http_get, launch, text, workspace_bin, Config, Lab, Releases};

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
    serde_json::from_str(first).unwrap()
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

    // 5. Bad input: no instance named, an unknown instance.
    let out = launch(&lab, &cfg, &["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("launch-tui status --all"));
    let out = launch(&lab, &cfg, &["status", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("installed instances: vikunja"));
}
