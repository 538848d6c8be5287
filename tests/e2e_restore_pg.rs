//! End to end: a backup and restore round trip of an instance on a local PostgreSQL
//! (`pg_dump` while serving, the database swapped in on restore), with a gzip archive, through
//! the real binary against pve-lab. Stood in: Proxmox VE (pve-lab) and the Vikunja release
//! (crates/fixture-app); PostgreSQL is Debian's, in the container.

#[path = "support/lab.rs"]
mod lab;

use lab::{
    fixture_profile, http_get, http_get_bytes, http_put_bytes, http_put_json, install_with, launch,
    text, Config, Lab, Releases,
};

fn snapshot(
    lab: &Lab,
    ip: &str,
    vmid: &str,
    attachments: &[(i64, i64)],
) -> (String, Vec<u16>, String) {
    let (s, tasks) = http_get(&format!("http://{ip}/api/v1/tasks"));
    assert_eq!(s, 200, "{tasks}");
    let codes = attachments
        .iter()
        .map(|(t, a)| http_get_bytes(&format!("http://{ip}/api/v1/tasks/{t}/attachments/{a}")).0)
        .collect();
    let files = lab.pct_ok(&[
        "exec",
        vmid,
        "--",
        "sh",
        "-c",
        "cd /var/lib/vikunja/blue/files && sha256sum * | sort",
    ]);
    let rows = lab.pct_ok(&[
        "exec",
        vmid,
        "--",
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-At",
        "-d",
        "vikunja",
        "-c",
        "SELECT id, title FROM tasks ORDER BY id; SELECT id, task_id, file_size FROM attachments ORDER BY id",
    ]);
    (format!("{tasks}\n{rows}"), codes, files)
}

#[test]
fn postgres_round_trip() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let rec = install_with(
        &lab,
        &cfg,
        "answers.yaml",
        "public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\ndatabase: postgres\n",
    );
    let ip = rec["container"]["ip"].as_str().unwrap().to_string();
    let vmid = rec["container"]["vmid"].as_u64().unwrap().to_string();
    let mut made = Vec::new();
    for (i, title) in ["one", "two", "three"].iter().enumerate() {
        let (s, v) = http_put_json(
            &format!("http://{ip}/api/v1/tasks"),
            &serde_json::json!({ "title": title }),
        );
        assert!(s == 200 || s == 201, "{v}");
        let t = v["id"].as_i64().unwrap();
        let body: Vec<u8> = (0..100_000u32)
            .map(|x| (x.wrapping_mul(2654435761) >> (i + 3)) as u8)
            .collect();
        let (s, a) = http_put_bytes(
            &format!("http://{ip}/api/v1/tasks/{t}/attachments?name=f{i}"),
            body,
        );
        assert_eq!(s, 201, "{a}");
        made.push((t, a["id"].as_i64().unwrap()));
    }
    let at_backup = snapshot(&lab, &ip, &vmid, &made);

    let out = launch(&lab, &cfg, &["backup", "vikunja", "--compress", "gzip"]);
    eprintln!("backup:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = cfg.path().join("state/backups/vikunja");
    let archive = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy().ends_with("-v1.0.0.tar.gz")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .expect("a .tar.gz archive");
    // It opens with plain `tar xz`, manifest first, the SQL dump inside.
    let out = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.starts_with("manifest.json\n") && listing.contains("db/postgres.sql"),
        "{listing}"
    );

    // Change everything: a new task and attachment, a renamed task.
    let (s, v) = http_put_json(
        &format!("http://{ip}/api/v1/tasks"),
        &serde_json::json!({ "title": "late" }),
    );
    assert!(s == 200 || s == 201, "{v}");
    let late = v["id"].as_i64().unwrap();
    let (s, a) = http_put_bytes(
        &format!("http://{ip}/api/v1/tasks/{late}/attachments?name=late"),
        vec![1u8; 5000],
    );
    assert_eq!(s, 201, "{a}");
    lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-d",
        "vikunja",
        "-c",
        "UPDATE tasks SET title = 'renamed' WHERE id = 1",
    ]);
    assert_ne!(snapshot(&lab, &ip, &vmid, &made), at_backup);

    let out = launch(
        &lab,
        &cfg,
        &["restore", "vikunja", archive.to_str().unwrap()],
    );
    eprintln!("restore:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(snapshot(&lab, &ip, &vmid, &made), at_backup);
    let (s, _) = http_get_bytes(&format!("http://{ip}/api/v1/tasks/{late}"));
    assert_eq!(s, 404, "the task made after the backup is gone");
    // The previous database was dropped once the restored one answered.
    let dbs = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-At",
        "-c",
        "SELECT datname FROM pg_database ORDER BY 1",
    ]);
    assert!(!dbs.contains("launch_old"), "{dbs}");
}
