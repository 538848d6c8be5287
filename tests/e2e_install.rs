//! End to end: `launch-tui install` through its real binary against pve-lab.
//!
//! Real: the launch-tui binary, its HTTPS client with a pinned certificate, the lab's API
//! (every request validated against the official PVE 8.4 schema), Debian 12 containers booted
//! with systemd-nspawn on the lab's bridge, Debian's nginx, PostgreSQL and MariaDB inside them,
//! PyPI's vikunja-mcp, the download-and-verify path. Stood in: Proxmox VE itself (pve-lab; its
//! containers are privileged, see crates/pve-lab/README.md) and the Vikunja release (the
//! fixture app, served over loopback, because upstream downloads are unreachable here).
//!
//! One scenario in one test: the lab and the containers are shared, and container tests must not
//! run in parallel on one bridge.

#[path = "support/lab.rs"]
mod lab;

use lab::{fixture_profile, http_get, launch, text, Config, Lab, Releases};
use pve_lab::{read_access_log, Verdict};

fn answers(cfg: &Config, name: &str, body: &str) -> std::path::PathBuf {
    let p = cfg.path().join(format!("{name}.yaml"));
    std::fs::write(&p, body).unwrap();
    p
}

fn record(cfg: &Config, name: &str) -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(cfg.path().join(format!("instances/{name}.yaml"))).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn ip_of(cfg: &Config, name: &str) -> String {
    record(cfg, name)["container"]["ip"]
        .as_str()
        .unwrap()
        .to_string()
}

fn vmid_of(cfg: &Config, name: &str) -> String {
    record(cfg, name)["container"]["vmid"]
        .as_u64()
        .unwrap()
        .to_string()
}

fn install(lab: &Lab, cfg: &Config, name: &str, body: &str) -> std::process::Output {
    let a = answers(cfg, name, body);
    let t = std::time::Instant::now();
    let out = launch(
        lab,
        cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            a.to_str().unwrap(),
        ],
    );
    eprintln!("install {name}: {:.1} s", t.elapsed().as_secs_f64());
    out
}

/// What every successful install must give: the app through nginx at the container's address,
/// the expected version, active units, nginx -t and systemd-analyze verify clean inside, the
/// record private on the host and copied into the container, no secret in the log.
fn assert_installed(lab: &Lab, cfg: &Config, name: &str, version: &str) {
    let ip = ip_of(cfg, name);
    let vmid = vmid_of(cfg, name);
    let (status, body) = http_get(&format!("http://{ip}/"));
    assert_eq!(status, 200, "{name}: GET / through nginx: {body}");
    let (status, info) = http_get(&format!("http://{ip}/api/v1/info"));
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["version"], version, "{name}: version through nginx");

    let units = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "systemctl",
        "is-active",
        "vikunja-api-blue.service",
        "nginx.service",
    ]);
    assert_eq!(
        units.lines().filter(|l| *l == "active").count(),
        2,
        "{name}: units: {units}"
    );
    let nginx_t = lab.pct(&["exec", &vmid, "--", "nginx", "-t"]);
    assert!(
        nginx_t.status.success(),
        "{name}: nginx -t: {}",
        String::from_utf8_lossy(&nginx_t.stderr)
    );
    let verify = lab.pct(&[
        "exec",
        &vmid,
        "--",
        "systemd-analyze",
        "verify",
        "/etc/systemd/system/vikunja-api-blue.service",
    ]);
    assert!(
        verify.status.success(),
        "{name}: systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // Hardened: not root, no new privileges, read-only system.
    let unit = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "systemctl",
        "show",
        "vikunja-api-blue.service",
        "-p",
        "User,NoNewPrivileges,ProtectSystem,PrivateTmp",
    ]);
    for want in [
        "User=vikunja",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
    ] {
        assert!(unit.contains(want), "{name}: unit lacks {want}: {unit}");
    }

    use std::os::unix::fs::PermissionsExt;
    let rec_path = cfg.path().join(format!("instances/{name}.yaml"));
    let mode = std::fs::metadata(&rec_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "instance record mode");
    let inside = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "stat",
        "-c",
        "%a",
        "/etc/launch/instance.yaml",
    ]);
    assert_eq!(inside.trim(), "600");

    // No secret in the operation log.
    let rec = record(cfg, name);
    let secrets: Vec<String> = rec["secrets"]
        .as_mapping()
        .unwrap()
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert!(!secrets.is_empty());
    for entry in std::fs::read_dir(cfg.path().join("log").join(name)).unwrap() {
        let log = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for s in &secrets {
            assert!(!log.contains(s.as_str()), "{name}: a secret is in the log");
        }
    }
}

#[test]
fn install_end_to_end() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));

    // 1. Bad answers: every problem listed at once, exit 2, nothing created.
    let before = lab.vmids();
    let out = install(
        &lab,
        &cfg,
        "bad",
        "public_url: https://bad_domain!.example\nadmin_email: admin@example.com\nmemory_mib: 64\nip: 10.1.0.5/24\ngateway: 10.2.0.1\ndatabase: external-postgres\ndb_host: 127.0.0.1\ndb_port: 1\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for field in ["public_url", "memory_mib", "ip", "db_host"] {
        assert!(
            err.contains(&format!("- {field} = ")),
            "{field} not reported:\n{err}"
        );
    }
    assert!(err.contains("nothing was changed"));
    assert_eq!(
        lab.vmids(),
        before,
        "no container may be created for bad answers"
    );

    // 2. SQLite, the default path.
    let out = install(&lab, &cfg, "vikunja", "public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\n");
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is running in CT"));
    assert_installed(&lab, &cfg, "vikunja", "v1.0.0");

    // 3. A taken CT ID is refused before anything is created.
    let vmid = vmid_of(&cfg, "vikunja");
    let before = lab.vmids();
    let out = install(&lab, &cfg, "taken", &format!("name: taken\nvmid: {vmid}\npublic_url: http://t.lab.example\nadmin_email: a@lab.example\n"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("CT/VM ID {vmid} is already in use")));
    assert_eq!(lab.vmids(), before);

    // 4. A second instance beside the first; both serve.
    let out = install(&lab, &cfg, "vikunja-2", "name: vikunja-2\npublic_url: http://tasks2.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v2.0.0\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_installed(&lab, &cfg, "vikunja-2", "v2.0.0");
    assert_ne!(ip_of(&cfg, "vikunja"), ip_of(&cfg, "vikunja-2"));
    assert_eq!(
        http_get(&format!("http://{}/health", ip_of(&cfg, "vikunja"))).0,
        200
    );

    // 5a. A release whose sum does not match: refused on the host before any container
    //     exists (the `fetch` step runs first), nothing created, the log kept.
    let bad_cfg = Config::new(&fixture_profile(&rel, Some(("v1.0.0", &"0".repeat(64)))));
    let before = lab.vmids();
    let out = install(&lab, &bad_cfg, "broken", "name: broken\npublic_url: http://broken.lab.example\nadmin_email: a@lab.example\nmcp: false\nversion: v1.0.0\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("step `fetch`"), "{err}");
    assert!(err.contains("checksum failed"), "{err}");
    assert!(
        !err.contains("Creating container"),
        "no container may be created for a release that fails its sum:\n{err}"
    );
    assert_eq!(lab.vmids(), before, "nothing was created");
    assert!(!bad_cfg.path().join("instances/broken.yaml").exists());
    assert_eq!(
        std::fs::read_dir(bad_cfg.path().join("log/broken"))
            .unwrap()
            .count(),
        1,
        "the log is kept"
    );

    // 5b. A failure after the container exists (the release's archive checks out but lacks
    //     the binary the profile names): the container is removed, the message names the
    //     step, the log is kept.
    let profile = fixture_profile(&rel, None).replace(
        "binary: vikunja-v1.0.0-linux-amd64",
        "binary: vikunja-v1.0.0-not-in-the-archive",
    );
    let bad_cfg = Config::new(&profile);
    let out = install(&lab, &bad_cfg, "broken", "name: broken\npublic_url: http://broken.lab.example\nadmin_email: a@lab.example\nmcp: false\nversion: v1.0.0\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Creating container"), "{err}");
    assert!(err.contains("step `release`"), "{err}");
    assert!(err.contains("not-in-the-archive"), "{err}");
    assert!(err.contains("was removed"), "{err}");
    assert_eq!(lab.vmids(), before, "the half-made container must be gone");
    let logs: Vec<_> = std::fs::read_dir(bad_cfg.path().join("log/broken"))
        .unwrap()
        .collect();
    assert_eq!(logs.len(), 1, "the log is kept");
    assert!(!bad_cfg.path().join("instances/broken.yaml").exists());

    // 6. Local PostgreSQL and local MariaDB in the container.
    for db in ["postgres", "mariadb"] {
        let name = format!("vk-{db}");
        let out = install(&lab, &cfg, &name, &format!("name: {name}\npublic_url: http://{db}.lab.example\nadmin_email: admin@lab.example\nmcp: false\ndatabase: {db}\nversion: v1.0.0\n"));
        assert!(out.status.success(), "{}", text(&out));
        assert_installed(&lab, &cfg, &name, "v1.0.0");
        // The app really writes to that server: a task created through nginx is in its table.
        let ip = ip_of(&cfg, &name);
        let c = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .unwrap();
        let r = c
            .put(format!("http://{ip}/api/v1/tasks"))
            .json(&serde_json::json!({"title": "stored in the server"}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "create task: {}", r.status());
        let vmid = vmid_of(&cfg, &name);
        let query = if db == "postgres" {
            vec![
                "exec",
                &vmid,
                "--",
                "runuser",
                "-u",
                "postgres",
                "--",
                "psql",
                "-tA",
                "-d",
                "vikunja",
                "-c",
                "SELECT title FROM tasks",
            ]
        } else {
            vec![
                "exec",
                &vmid,
                "--",
                "mariadb",
                "-N",
                "-e",
                "SELECT title FROM vikunja.tasks",
            ]
        };
        let rows = lab.pct_ok(&query);
        assert!(rows.contains("stored in the server"), "{db}: {rows}");
    }

    // 7. The MCP server (PyPI's vikunja-mcp, pinned, in a venv in the container) answers an MCP
    //    `initialize` through nginx at /mcp, with the API token the install minted for it.
    let out = install(&lab, &cfg, "vk-mcp", "name: vk-mcp\npublic_url: http://mcp.lab.example\nadmin_email: admin@lab.example\nmcp: true\nversion: v1.0.0\n");
    assert!(out.status.success(), "{}", text(&out));
    assert_installed(&lab, &cfg, "vk-mcp", "v1.0.0");
    let ip = ip_of(&cfg, "vk-mcp");
    let c = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let r = c
        .post(format!("http://{ip}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                       "clientInfo": {"name": "launch-e2e", "version": "1"}}
        }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().unwrap();
    assert!(body.contains(r#""serverInfo":{"name":"vikunja""#), "{body}");
    let vmid = vmid_of(&cfg, "vk-mcp");
    let env = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "stat",
        "-c",
        "%a",
        "/etc/vikunja/mcp.env",
    ]);
    assert_eq!(env.trim(), "600");
    let token = record(&cfg, "vk-mcp")["secrets"]["mcp_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        token.starts_with("tk_"),
        "the MCP server got an API token minted by the app"
    );

    // 8. Uninstall: refused without confirmation (no terminal, no --yes), then with --yes the
    //    container is destroyed through the API, the record removed, the logs kept.
    let vmid2: u32 = vmid_of(&cfg, "vikunja-2").parse().unwrap();
    let out = launch(&lab, &cfg, &["uninstall", "vikunja-2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        lab.vmids().contains(&vmid2),
        "nothing removed without confirmation"
    );
    let out = launch(&lab, &cfg, &["uninstall", "vikunja-2", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!lab.vmids().contains(&vmid2), "the container is gone");
    assert!(!cfg.path().join("instances/vikunja-2.yaml").exists());
    assert!(
        cfg.path().join("log/vikunja-2").read_dir().unwrap().count() >= 2,
        "logs kept"
    );
    assert_eq!(
        http_get(&format!("http://{}/health", ip_of(&cfg, "vikunja"))).0,
        200,
        "the other instance is untouched"
    );

    // 9. Every request launch-tui sent was valid under the official schema.
    let log = read_access_log(lab.path());
    assert!(log.len() > 20, "the lab saw the install's requests");
    let rejected: Vec<_> = log
        .iter()
        .filter(|e| e.verdict != Verdict::Ok && e.stage == "schema")
        .collect();
    assert!(
        rejected.is_empty(),
        "invalid requests were sent: {rejected:#?}"
    );
}
