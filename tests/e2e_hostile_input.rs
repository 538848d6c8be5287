//! End to end: values from outside (answers files, `LAUNCH_*` variables, `reconfigure --set`,
//! the record inside a backup archive) are data, never code or config syntax (issue #11).
//!
//! Real: the launch-tui binary, the lab's API (validated against the official PVE 8.4 schema),
//! a Debian 12 container (systemd-nspawn) with systemd and Debian's nginx, the fixture app's
//! own YAML parser reading the rendered config, HTTP from the host. Stood in: Proxmox VE
//! (pve-lab) and the Vikunja release (fixture v1.0.0 over loopback, which keeps the admin's
//! email as given and answers `GET /api/v1/user`).
//!
//! What an attacker who writes an answer or an archive must not achieve, and is checked here:
//! a command run on the host or in the container (canary files), a line of their own in the
//! app's config or the nginx site, a host file copied into the container, an escape sequence
//! reaching the terminal, a panic, a container created for a refused install, a changed
//! instance after a refused restore.
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use app::{client, create_task, pvesh_get, record};
use lab::{fixture_profile, launch, text, Config, Lab, Releases};

/// A change made to an archive's manifest.
type Edit = dyn Fn(&mut launch::backup::archive::Manifest);

const CANARY: &str = "/tmp/launch-e2e-hostile-canary";

fn base_answers() -> String {
    "public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\n".into()
}

/// Answers with `key` replaced by the YAML line `line` (or added).
fn answers_with(key: &str, line: &str) -> String {
    let mut out: Vec<String> = base_answers()
        .lines()
        .filter(|l| !l.starts_with(&format!("{key}:")))
        .map(str::to_string)
        .collect();
    out.push(line.to_string());
    out.join("\n") + "\n"
}

fn lxc_count(lab: &Lab) -> usize {
    pvesh_get(lab, "/cluster/resources")
        .as_array()
        .map(|a| a.iter().filter(|r| r["type"] == "lxc").count())
        .unwrap_or(0)
}

fn install_args(path: &Path) -> Vec<String> {
    vec![
        "install".into(),
        "vikunja".into(),
        "--yes".into(),
        "--answers".into(),
        path.display().to_string(),
    ]
}

fn run(lab: &Lab, cfg: &Config, args: &[String]) -> std::process::Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    launch(lab, cfg, &a)
}

/// Exit 2, the field named, nothing raw echoed: no control byte but the line ends, a bounded
/// message whatever the value's size.
fn assert_refused(out: &std::process::Output, field: &str, what: &str) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {all}");
    assert!(
        all.contains(field),
        "{what}: the message names `{field}`: {all}"
    );
    let raw = [&out.stdout[..], &out.stderr[..]].concat();
    assert!(
        !raw.iter()
            .any(|b| (*b < 0x20 && *b != b'\n' && *b != b'\t') || *b == 0x7f),
        "{what}: a control byte reached the terminal: {all:?}"
    );
    assert!(
        raw.len() < 16 * 1024,
        "{what}: {} bytes of messages",
        raw.len()
    );
    assert!(!all.contains("panicked"), "{what}: {all}");
}

fn ct_file(lab: &Lab, vmid: &str, path: &str) -> String {
    lab.pct_ok(&["exec", vmid, "--", "cat", path])
}

fn ct_sha(lab: &Lab, vmid: &str, path: &str) -> String {
    lab.pct_ok(&["exec", vmid, "--", "sha256sum", path])
}

/// Copies `src` to `dst` with its manifest changed by `edit`: entries and their sums as they
/// were, so only the checks of the record's values can refuse it.
fn rewrite_archive(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut launch::backup::archive::Manifest),
) {
    use launch::backup::archive::{walk, ArchiveWriter, EntryKind};
    let mut entries: Vec<(
        launch::backup::archive::EntryRecord,
        (String, String),
        Vec<u8>,
    )> = Vec::new();
    let mut manifest = walk(src, |e, data| {
        let mut buf = Vec::new();
        data.read_to_end(&mut buf)?;
        entries.push((e.record.clone(), e.owner.clone(), buf));
        Ok(())
    })
    .unwrap();
    edit(&mut manifest);
    let compression = if src.to_string_lossy().ends_with(".zst") {
        launch::backup::archive::Compression::Zstd
    } else {
        launch::backup::archive::Compression::Gzip
    };
    let mut w = ArchiveWriter::create(dst, compression).unwrap();
    for (rec, owner, data) in entries {
        let owner = (owner.0.as_str(), owner.1.as_str());
        match rec.kind {
            EntryKind::Dir => w.add_dir(&rec.path, rec.mode, owner).unwrap(),
            EntryKind::File => w
                .add_file(&rec.path, rec.mode, owner, data.len() as u64, &data[..])
                .unwrap(),
            EntryKind::Symlink | EntryKind::Hardlink => w
                .add_link(
                    &rec.path,
                    rec.link.as_deref().unwrap(),
                    rec.kind == EntryKind::Hardlink,
                    rec.mode,
                    owner,
                )
                .unwrap(),
        }
    }
    w.finish(manifest).unwrap();
}

#[test]
fn hostile_input_changes_nothing() {
    let _ = std::fs::remove_file(CANARY);
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let dir = cfg.path().to_path_buf();

    // 1. Hostile answers: each refused with exit 2 before anything is created.
    let shadow_like = dir.join("not-pem.txt");
    std::fs::write(&shadow_like, "root:$6$x:19000:0:99999:7:::\n").unwrap();
    let big_keys = format!(
        "ssh_public_keys: \"{}\"",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA x\\n".repeat(3000)
    );
    let megabyte = format!(
        "public_url: \"http://a.example/{}\"",
        "x".repeat(600 * 1024)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "admin_email",
            format!("admin_email: \"x'$(touch {CANARY})'@lab.example\""),
            "shell in the admin email",
        ),
        (
            "public_url",
            "public_url: \"http://tasks.lab.example\\n  enableregistration: true\"".into(),
            "YAML injection through an escaped newline",
        ),
        (
            "public_url",
            "public_url: \"http://tasks.lab.example/\\e]0;pwned\\a\\e[2J\"".into(),
            "terminal escape sequences",
        ),
        ("public_url", megabyte, "a 600 KiB value"),
        (
            "public_url",
            "public_url: \"http://tasks.lab.example/$host\"".into(),
            "an nginx variable",
        ),
        ("bridge", "bridge: \"vmbr0,tag=5\"".into(), "a bridge with ,"),
        ("bridge", "bridge: vmbr7".into(), "a bridge the node lacks"),
        (
            "bridge",
            "bridge: \"vmbr\u{0433}0\"".into(),
            "a Cyrillic look-alike bridge",
        ),
        (
            "template_storage",
            "template_storage: \"local/../../etc\"".into(),
            "a storage path",
        ),
        ("root_password", "root_password: abc".into(), "a short root password"),
        (
            "ssh_public_keys",
            "ssh_public_keys: \"not a key at all\"".into(),
            "a non-key",
        ),
        (
            "ssh_public_keys",
            "ssh_public_keys: \"ssh-ed25519 AAAA\\0 x\"".into(),
            "a NUL in the keys",
        ),
        ("ssh_public_keys", big_keys, "more than 64 KiB of keys"),
        ("max_upload_mib", "max_upload_mib: \"+20\"".into(), "+20"),
        ("cores", "cores: \" 2 \"".into(), "a padded number"),
        ("memory_mib", "memory_mib: \"0x10\"".into(), "a hex number"),
        (
            "tls_cert",
            format!(
                "tls_cert: {}\ntls_key: {}",
                shadow_like.display(),
                shadow_like.display()
            ),
            "a host file that is no PEM",
        ),
        (
            "db_user",
            "database: external-postgres\ndb_host: 127.0.0.1\ndb_user: \"launch\\n  type: sqlite\"\ndb_password: x".into(),
            "YAML injection through the database user",
        ),
    ];
    for (i, (field, line, what)) in cases.iter().enumerate() {
        let key = line.split(':').next().unwrap();
        let path = dir.join(format!("hostile-{i}.yaml"));
        std::fs::write(&path, answers_with(key, line)).unwrap();
        let out = run(&lab, &cfg, &install_args(&path));
        assert_refused(&out, field, what);
    }
    // Deeply nested YAML is refused before it is parsed.
    let deep = dir.join("deep.yaml");
    std::fs::write(&deep, format!("public_url: {}", "[".repeat(100_000))).unwrap();
    let out = run(&lab, &cfg, &install_args(&deep));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nested"), "{}", text(&out));
    // A `LAUNCH_*` answer that is not UTF-8: exit 2, no panic.
    let ok = dir.join("ok.yaml");
    std::fs::write(&ok, base_answers()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_launch-tui"))
        .env("PATH", lab.path_env())
        .env("NO_COLOR", "1")
        .env("LAUNCH_CONFIG", cfg.path())
        .env("LAUNCH_LOG_DIR", cfg.path().join("log"))
        .env("LAUNCH_CACHE_DIR", cfg.path().join("cache"))
        .env("LAUNCH_STATE_DIR", cfg.path().join("state"))
        .env(
            "LAUNCH_TIMEZONE",
            std::ffi::OsStr::from_bytes(b"Europe/\xff\xfe"),
        )
        .env(
            "LAUNCH_UNRELATED_JUNK",
            std::ffi::OsStr::from_bytes(b"\xff"),
        )
        .args(["--host", &format!("https://127.0.0.1:{}", lab.port)])
        .args(["--fingerprint", &lab.fingerprint()])
        .arg("--token-file")
        .arg(lab.path().join("token"))
        .args(install_args(&ok))
        .output()
        .unwrap();
    assert_refused(&out, "LAUNCH_TIMEZONE", "a non-UTF-8 variable");
    assert_eq!(lxc_count(&lab), 0, "a refused install created a container");
    assert!(
        !Path::new(CANARY).exists(),
        "the canary was written on the host"
    );

    // 2. A legitimate apostrophe installs, and the app holds exactly that address; the
    //    rendered config parses back to the values given.
    let path = dir.join("obrien.yaml");
    std::fs::write(
        &path,
        answers_with("admin_email", "admin_email: o'brien@lab.example"),
    )
    .unwrap();
    let out = run(&lab, &cfg, &install_args(&path));
    assert!(out.status.success(), "install: {}", text(&out));
    let rec = record(&cfg, "vikunja");
    let ip = rec["container"]["ip"].as_str().unwrap().to_string();
    let vmid = rec["container"]["vmid"].as_u64().unwrap().to_string();
    let pw = rec["secrets"]["admin_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        pw.len(),
        24,
        "the admin password is made to its exact length"
    );
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    let login: serde_json::Value = client()
        .post(format!("http://{ip}/api/v1/login"))
        .json(&serde_json::json!({ "username": "admin", "password": pw }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let jwt = login["token"]
        .as_str()
        .expect("a session token")
        .to_string();
    let user: serde_json::Value = client()
        .get(format!("http://{ip}/api/v1/user"))
        .bearer_auth(&jwt)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(user["email"], "o'brien@lab.example");
    let config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&ct_file(&lab, &vmid, "/etc/vikunja/config.yml")).unwrap();
    assert_eq!(config["service"]["publicurl"], "http://tasks.lab.example");
    assert_eq!(config["service"]["enableregistration"], false);
    assert!(
        lab.pct(&["exec", &vmid, "--", "test", "-e", CANARY])
            .status
            .code()
            != Some(0)
    );
    let id = create_task(&ip, "kept through every refusal");

    // 3. Hostile `reconfigure --set`: refused, the files as they were.
    let site = "/etc/nginx/sites-available/vikunja.conf";
    let config_path = "/etc/vikunja/config.yml";
    let before = (ct_sha(&lab, &vmid, site), ct_sha(&lab, &vmid, config_path));
    for (set, field) in [
        (
            "public_url=http://tasks.lab.example\n}\nserver { listen 80; return 200 pwned; }",
            "public_url",
        ),
        ("memory_mib=18446744073709551615", "memory_mib"),
        ("swap_mib=18446744073709551615", "swap_mib"),
        ("max_upload_mib=+20", "max_upload_mib"),
        ("timezone=Europe/Berlin\u{1b}[2J", "timezone"),
    ] {
        let out = launch(&lab, &cfg, &["reconfigure", "vikunja", "--set", set]);
        assert_refused(&out, field, set);
    }
    assert_eq!(
        (ct_sha(&lab, &vmid, site), ct_sha(&lab, &vmid, config_path)),
        before
    );

    // 4. Hostile records inside manifest-consistent archives: refused by restore and by
    //    restore --to-new, nothing changed, nothing created.
    let out = launch(&lab, &cfg, &["--json", "backup", "vikunja"]);
    assert!(out.status.success(), "backup: {}", text(&out));
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("archive").is_some())
        .expect("the backup's result");
    let good = PathBuf::from(last["archive"].as_str().unwrap());
    let db = "/var/lib/vikunja/blue/vikunja.db";
    let before = (
        ct_sha(&lab, &vmid, site),
        ct_sha(&lab, &vmid, config_path),
        ct_sha(&lab, &vmid, db),
    );
    let hostile: Vec<(&str, Box<Edit>)> = vec![
        (
            "admin_email",
            Box::new(|m| {
                m.instance.settings.insert(
                    "admin_email".into(),
                    format!("x'$(touch {CANARY})'@lab.example"),
                );
            }),
        ),
        (
            "public_url",
            Box::new(|m| {
                m.instance.settings.insert(
                    "public_url".into(),
                    "http://a.example\n  enableregistration: true".into(),
                );
            }),
        ),
        (
            "old_hosts",
            Box::new(|m| {
                m.instance.settings.insert(
                    "old_hosts".into(),
                    "a.example;\n}\nserver { return 200 pwned; }".into(),
                );
            }),
        ),
        (
            "service_secret",
            Box::new(|m| {
                m.instance
                    .secrets
                    .insert("service_secret".into(), "x\"\nfiles: {}".into());
            }),
        ),
    ];
    for (i, (field, edit)) in hostile.into_iter().enumerate() {
        let bad = dir.join(format!(
            "hostile-{i}.tar.{}",
            if good.to_string_lossy().ends_with(".zst") {
                "zst"
            } else {
                "gz"
            }
        ));
        rewrite_archive(&good, &bad, edit);
        let out = launch(
            &lab,
            &cfg,
            &["restore", "vikunja", bad.to_str().unwrap(), "--yes"],
        );
        assert_refused(&out, field, "restore of a hostile record");
        let out = launch(
            &lab,
            &cfg,
            &[
                "restore",
                "vikunja",
                bad.to_str().unwrap(),
                "--to-new",
                "copy",
                "--yes",
            ],
        );
        assert_refused(&out, field, "restore --to-new of a hostile record");
    }
    // A profile name that is a path: looked up in the catalog only.
    let bad = dir.join("hostile-profile.tar.gz");
    rewrite_archive(&good, &bad, |m| m.profile.name = "../../../tmp/evil".into());
    let out = launch(
        &lab,
        &cfg,
        &[
            "restore",
            "vikunja",
            bad.to_str().unwrap(),
            "--to-new",
            "copy",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        (
            ct_sha(&lab, &vmid, site),
            ct_sha(&lab, &vmid, config_path),
            ct_sha(&lab, &vmid, db),
        ),
        before,
        "a refused restore changed the instance"
    );
    assert_eq!(lxc_count(&lab), 1, "a refused --to-new created a container");
    assert!(!Path::new(CANARY).exists());
    assert!(
        lab.pct(&["exec", &vmid, "--", "test", "-e", CANARY])
            .status
            .code()
            != Some(0)
    );
    app::assert_rows(&ip, &[id], "after the refusals");
}
