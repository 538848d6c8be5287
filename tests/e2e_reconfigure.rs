//! End to end: `launch-tui reconfigure` through the real binary against pve-lab.
//!
//! Real: the launch-tui binary, the lab's API (validated against the official PVE 8.4 schema;
//! the memory change goes through it), a Debian 12 container (systemd-nspawn) with systemd,
//! Debian's nginx (`nginx -t` refusing a key that does not match its certificate, TLS on 443),
//! SQLite and Debian's PostgreSQL 15 (installed by the move), HTTP from the host. Stood in:
//! Proxmox VE (pve-lab) and the Vikunja release (fixture v1.0.0 over loopback, whose `dump` and
//! `restore` behave like Vikunja's).
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;

use app::{assert_rows, client, create_task, install, pvesh_get, record};
use lab::{fixture_profile, http_get, launch, text, Config, Lab, Releases};

fn ct_sha(lab: &Lab, vmid: &str, path: &str) -> String {
    lab.pct_ok(&["exec", vmid, "--", "sha256sum", path])
}

fn pem_pair(dir: &std::path::Path, name: &str) -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["todo.lab.example".into()]).unwrap();
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn reconfigure_end_to_end() {
    // Over the HTTPS API (token, pinned fingerprint): CI's HTTPS half of the e2e suite.
    lab::prefer_transport(lab::Transport::Https);
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, vmid) = install(&lab, &cfg, "");
    let rows: Vec<i64> = (0..20)
        .map(|i| create_task(&ip, &format!("row-{i}")))
        .collect();
    let config = "/etc/vikunja/config.yml";

    // 1. Without --set (no terminal): the settings, and no drift.
    let out = launch(&lab, &cfg, &["reconfigure", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("public_url") && stdout.contains("no drift"),
        "{stdout}"
    );
    // A hand edit in the container is reported as drift.
    lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "sh",
        "-c",
        &format!("echo '# edited by hand' >> {config}"),
    ]);
    let out = launch(&lab, &cfg, &["reconfigure", "vikunja"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("drift: {config} differs")),
        "{stdout}"
    );

    // 2. Invalid values change nothing: exit 2, every problem named, the files untouched.
    let before = ct_sha(&lab, &vmid, config);
    let out = launch(
        &lab,
        &cfg,
        &[
            "reconfigure",
            "vikunja",
            "--set",
            "max_upload_mib=lots",
            "--set",
            "port=8080",
            "--set",
            "public_url=tasks",
        ],
    );
    eprintln!("invalid:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 invalid value(s); nothing was changed"),
        "{err}"
    );
    assert!(
        err.contains("max_upload_mib") && err.contains("ports are the profile's"),
        "{err}"
    );
    assert_eq!(ct_sha(&lab, &vmid, config), before);

    // 3. The public URL: app config and nginx follow; the old name is redirected for good.
    let out = launch(
        &lab,
        &cfg,
        &[
            "reconfigure",
            "vikunja",
            "--set",
            "public_url=http://todo.lab.example",
        ],
    );
    eprintln!("public_url:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("did not answer for"), "{stdout}");
    let (_, info) = http_get(&format!("http://{ip}/api/v1/info"));
    assert!(
        info.contains("\"frontend_url\":\"http://todo.lab.example/\""),
        "{info}"
    );
    let r = client()
        .get(format!("http://{ip}/api/v1/info"))
        .header("Host", "todo.lab.example")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client()
        .get(format!("http://{ip}/tasks/1"))
        .header("Host", "tasks.lab.example")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 301);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "http://todo.lab.example/tasks/1"
    );
    assert_eq!(
        record(&cfg, "vikunja")["settings"]["public_url"].as_str(),
        Some("http://todo.lab.example")
    );
    let out = launch(&lab, &cfg, &["reconfigure", "vikunja"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no drift"),
        "{}",
        text(&out)
    );

    // 4. A certificate whose key does not match: refused before anything changes (exit 2).
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, _) = pem_pair(dir.path(), "a");
    let (cert_b, key_b) = pem_pair(dir.path(), "b");
    let site = ct_sha(&lab, &vmid, "/etc/nginx/sites-available/vikunja.conf");
    let out = launch(
        &lab,
        &cfg,
        &[
            "reconfigure",
            "vikunja",
            "--set",
            &format!("tls_cert={cert_a}"),
            "--set",
            &format!("tls_key={key_b}"),
        ],
    );
    eprintln!("bad certificate:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not belong to the certificate"),
        "{}",
        text(&out)
    );
    assert_eq!(
        ct_sha(&lab, &vmid, "/etc/nginx/sites-available/vikunja.conf"),
        site
    );
    assert_eq!(
        http_get(&format!("http://{ip}/api/v1/info")).0,
        200,
        "still serves"
    );
    assert!(record(&cfg, "vikunja")["settings"]["tls"].is_null());
    // A matching pair: HTTPS on 443.
    let out = launch(
        &lab,
        &cfg,
        &[
            "reconfigure",
            "vikunja",
            "--set",
            &format!("tls_cert={cert_b}"),
            "--set",
            &format!("tls_key={key_b}"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = client()
        .get(format!("https://{ip}/api/v1/info"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mode = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "stat",
        "-c",
        "%a",
        "/etc/vikunja/tls/key.pem",
    ]);
    assert_eq!(mode.trim(), "600");

    // 5. Memory, through the API: visible in the container's config.
    let out = launch(
        &lab,
        &cfg,
        &["reconfigure", "vikunja", "--set", "memory_mib=1536"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restart: none needed"),
        "{}",
        text(&out)
    );
    let conf = pvesh_get(&lab, &format!("/nodes/pve/lxc/{vmid}/config"));
    assert_eq!(
        conf["memory"].to_string().trim_matches('"'),
        "1536",
        "{conf}"
    );

    // 6. SQLite → PostgreSQL through the app's own dump and restore: every row is kept.
    let out = launch(
        &lab,
        &cfg,
        &["reconfigure", "vikunja", "--set", "database=postgres"],
    );
    eprintln!("sqlite → postgres:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_rows(&ip, &rows, "rows after the move to PostgreSQL");
    assert_eq!(
        record(&cfg, "vikunja")["settings"]["database"].as_str(),
        Some("postgres")
    );
    let conf = lab.pct_ok(&["exec", &vmid, "--", "cat", config]);
    assert!(conf.contains("type: postgres"), "{conf}");
    let after = create_task(&ip, "on-postgres");
    assert_rows(&ip, &[after], "a row written on PostgreSQL");
    let count = lab.pct_ok(&[
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
        "SELECT count(*) FROM tasks",
    ]);
    assert_eq!(count.trim(), (rows.len() + 1).to_string());

    // 7. nginx's public HTTP port: a port the app uses inside is refused; a free one moves
    //    nginx, and status follows it.
    let out = launch(
        &lab,
        &cfg,
        &["reconfigure", "vikunja", "--set", "http_port=3457"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("used inside the container"),
        "{}",
        text(&out)
    );
    let out = launch(
        &lab,
        &cfg,
        &["reconfigure", "vikunja", "--set", "http_port=8080"],
    );
    eprintln!("http_port:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(http_get(&format!("http://{ip}:8080/api/v1/info")).0, 200);
    assert_eq!(
        http_get(&format!("http://{ip}/api/v1/info")).0,
        0,
        "port 80 is closed now"
    );
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("http://{ip}:8080/health answers 200")),
        "{}",
        text(&out)
    );
}
