//! End to end: `backup`, `backups`, `restore` and `uninstall --keep-data` through the real
//! binary against pve-lab, on a real installed instance (systemd-nspawn container, nginx, the
//! fixture Vikunja on SQLite): a round trip with row and file-hash equality, every refusal
//! with the target untouched, a full container disk during a backup (the lab's fill-disk
//! fault) and a full host disk (a tiny tmpfs), then keep-data and a restore into a new container.
//! Stood in: Proxmox VE (pve-lab) and the Vikunja release (crates/fixture-app).

#[path = "support/lab.rs"]
mod lab;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use lab::{
    fixture_profile, http_get, http_get_bytes, http_put_bytes, http_put_json, install_with, launch,
    text, workspace_bin, Config, Lab, Releases,
};
use sha2::Digest;

/// What a restore must bring back: every task row, and each attachment's bytes by id.
#[derive(Debug, PartialEq)]
struct AppState {
    tasks: serde_json::Value,
    attachments: BTreeMap<i64, Option<String>>,
    files: String,
}

struct App {
    ip: String,
    vmid: String,
    /// (task id, attachment id) of every attachment ever made.
    made: Vec<(i64, i64)>,
}

impl App {
    fn add_task(&self, title: &str) -> i64 {
        let (s, v) = http_put_json(
            &format!("http://{}/api/v1/tasks", self.ip),
            &serde_json::json!({ "title": title }),
        );
        assert!(s == 200 || s == 201, "create task: {s} {v}");
        v["id"].as_i64().unwrap()
    }

    fn attach(&mut self, task: i64, name: &str, data: Vec<u8>) {
        let (s, v) = http_put_bytes(
            &format!(
                "http://{}/api/v1/tasks/{task}/attachments?name={name}",
                self.ip
            ),
            data,
        );
        assert_eq!(s, 201, "upload: {v}");
        self.made.push((task, v["id"].as_i64().unwrap()));
    }

    fn state(&self, lab: &Lab) -> AppState {
        let (s, body) = http_get(&format!("http://{}/api/v1/tasks", self.ip));
        assert_eq!(s, 200, "{body}");
        let mut attachments = BTreeMap::new();
        for (t, a) in &self.made {
            let (s, b) = http_get_bytes(&format!(
                "http://{}/api/v1/tasks/{t}/attachments/{a}",
                self.ip
            ));
            attachments.insert(
                *a,
                (s == 200).then(|| hex::encode(sha2::Sha256::digest(&b))),
            );
        }
        let files = lab.pct_ok(&[
            "exec",
            &self.vmid,
            "--",
            "sh",
            "-c",
            "cd /var/lib/vikunja/blue/files && sha256sum * | sort",
        ]);
        AppState {
            tasks: serde_json::from_str(&body).unwrap(),
            attachments,
            files,
        }
    }
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    // xorshift: incompressible enough, and no extra dependency.
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn archives(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        !n.starts_with('.')
    });
    v.sort();
    v
}

/// Everything in a backup directory, hidden files included (a partial archive would show).
fn all_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

type Extra<'a> = (tar::EntryType, &'a str, &'a [u8], Option<&'a str>);

/// A copy of `src` rebuilt entry by entry: the manifest edited (or left out), extra entries
/// appended with their names written byte for byte (the tar crate refuses `..` itself).
fn rebuild(
    src: &Path,
    dst: &Path,
    keep_manifest: bool,
    edit: impl FnOnce(&mut serde_json::Value),
    extra: &[Extra],
) {
    let plain = zstd::decode_all(std::fs::File::open(src).unwrap()).unwrap();
    let mut ar = tar::Archive::new(&plain[..]);
    let mut out = tar::Builder::new(Vec::new());
    let mut edit = Some(edit);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut h = e.header().clone();
        if path == "manifest.json" {
            if !keep_manifest {
                continue;
            }
            let mut m: serde_json::Value = serde_json::from_slice(&data).unwrap();
            (edit.take().unwrap())(&mut m);
            for (k, n, d, l) in extra {
                let kind = match *k {
                    tar::EntryType::Symlink => "symlink",
                    tar::EntryType::Directory => "dir",
                    _ => "file",
                };
                let mut r = serde_json::json!({
                    "path": n, "kind": kind, "size": d.len(), "mode": 0o644, "link": l,
                });
                // Only files are hashed (a hash on a link or directory is refused itself).
                if kind == "file" {
                    r["blake3"] = blake3::hash(d).to_hex().to_string().into();
                }
                m["entries"].as_array_mut().unwrap().push(r);
            }
            data = serde_json::to_vec(&m).unwrap();
            h.set_size(data.len() as u64);
            h.set_cksum();
        }
        out.append_data(&mut h, &path, &data[..]).unwrap();
    }
    for (k, n, d, l) in extra {
        let mut h = tar::Header::new_old();
        h.set_entry_type(*k);
        h.set_mode(0o644);
        h.set_size(d.len() as u64);
        let old = h.as_old_mut();
        old.name[..n.len()].copy_from_slice(n.as_bytes());
        if let Some(l) = l {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        out.append(&h, *d).unwrap();
    }
    let tar = out.into_inner().unwrap();
    std::fs::write(dst, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
}

/// Each file entry's data hashed: path → (sha256, blake3), in hex.
fn file_sums(src: &Path) -> BTreeMap<String, (String, String)> {
    let plain = zstd::decode_all(std::fs::File::open(src).unwrap()).unwrap();
    let mut ar = tar::Archive::new(&plain[..]);
    let mut sums = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        sums.insert(
            path,
            (
                hex::encode(sha2::Sha256::digest(&data)),
                blake3::hash(&data).to_hex().to_string(),
            ),
        );
    }
    sums
}

/// `src` as launch-tui wrote archives before BLAKE3 (format 1): no `hash` in the manifest,
/// each file's sha256 instead of its blake3, the entries as they are.
fn as_format1(src: &Path, dst: &Path) {
    let sums = file_sums(src);
    rebuild(
        src,
        dst,
        true,
        |m| {
            m["format"] = 1.into();
            m.as_object_mut().unwrap().remove("hash");
            for e in m["entries"].as_array_mut().unwrap() {
                let path = e["path"].as_str().unwrap().to_string();
                let e = e.as_object_mut().unwrap();
                if e.remove("blake3").is_some() {
                    e.insert("sha256".into(), sums[&path].0.clone().into());
                }
            }
        },
        &[],
    );
}

/// Edits the first file entry's record in a manifest.
fn first_file(m: &mut serde_json::Value) -> &mut serde_json::Map<String, serde_json::Value> {
    m["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["kind"] == "file")
        .unwrap()
        .as_object_mut()
        .unwrap()
}

fn pve_lab(lab: &Lab, args: &[&str]) {
    let out = Command::new(workspace_bin("pve-lab"))
        .arg("--state")
        .arg(lab.path())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "pve-lab {args:?}: {}", text(&out));
}

#[test]
fn backup_restore_refusals_disk_full_and_keep_data() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let rec = install_with(
        &lab,
        &cfg,
        "answers.yaml",
        "public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\n",
    );
    let mut app = App {
        ip: rec["container"]["ip"].as_str().unwrap().to_string(),
        vmid: rec["container"]["vmid"].as_u64().unwrap().to_string(),
        made: Vec::new(),
    };
    let backups = cfg.path().join("state/backups/vikunja");

    // 1. Data: tasks, a compressible and an incompressible attachment.
    let t1 = app.add_task("buy milk");
    let t2 = app.add_task("write the report");
    app.attach(t1, "notes.txt", b"some text, ".repeat(20_000));
    app.attach(t2, "photo.bin", random_bytes(300_000, 7));
    let at_backup = app.state(&lab);

    // 2. Backup: one archive, 0600, named NAME-TIMESTAMP-VERSION.tar.zst, listed as verified.
    let out = launch(&lab, &cfg, &["backup", "vikunja"]);
    eprintln!("backup:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list = archives(&backups);
    assert_eq!(list.len(), 1, "{list:?}");
    let good = list[0].clone();
    let name = good.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        regex::Regex::new(r"^vikunja-\d{8}T\d{6}Z-v1\.0\.0\.tar\.zst$")
            .unwrap()
            .is_match(&name),
        "{name}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&good).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = launch(&lab, &cfg, &["backups", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&name) && stdout.contains("verified 20"),
        "{stdout}"
    );
    let out = launch(
        &lab,
        &cfg,
        &["backups", "vikunja", "--verify", good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The archive opens with the standard tools too.
    let out = Command::new("tar")
        .args(["-I", "zstd", "-tf"])
        .arg(&good)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(listing.starts_with("manifest.json\n"), "{listing}");
    assert!(listing.contains("db/vikunja.db") && listing.contains("data/files/"));

    // 3. Change the data after the backup.
    let t3 = app.add_task("after the backup");
    app.attach(t3, "late.bin", random_bytes(50_000, 9));
    let changed = app.state(&lab);
    assert_ne!(changed, at_backup);

    // 4. Refused archives: exit 2, a clear reason, the instance untouched, no safety backup.
    let bad = cfg.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let orig = std::fs::read(&good).unwrap();
    let flipped = bad.join("flipped.tar.zst");
    let mut b = orig.clone();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    std::fs::write(&flipped, &b).unwrap();
    let truncated = bad.join("truncated.tar.zst");
    std::fs::write(&truncated, &orig[..orig.len() * 2 / 3]).unwrap();
    let no_manifest = bad.join("no-manifest.tar.zst");
    rebuild(&good, &no_manifest, false, |_| {}, &[]);
    let dotdot = bad.join("dotdot.tar.zst");
    rebuild(
        &good,
        &dotdot,
        true,
        |_| {},
        &[(
            tar::EntryType::Regular,
            "data/../../../etc/evil",
            b"x",
            None,
        )],
    );
    let absolute = bad.join("absolute.tar.zst");
    rebuild(
        &good,
        &absolute,
        true,
        |_| {},
        &[(tar::EntryType::Regular, "/etc/evil", b"x", None)],
    );
    let through_link = bad.join("symlink.tar.zst");
    rebuild(
        &good,
        &through_link,
        true,
        |_| {},
        &[
            (
                tar::EntryType::Symlink,
                "data/files/evil",
                b"",
                Some("/etc"),
            ),
            (
                tar::EntryType::Regular,
                "data/files/evil/cron.d/x",
                b"x",
                None,
            ),
        ],
    );
    let other_version = bad.join("v2.tar.zst");
    rebuild(
        &good,
        &other_version,
        true,
        |m| m["app_version"] = "v2.0.0".into(),
        &[],
    );
    // Hostile hash fields (the manifest decides which hash is checked, so it is checked first).
    let unknown_hash = bad.join("unknown-hash.tar.zst");
    rebuild(
        &good,
        &unknown_hash,
        true,
        |m| m["hash"] = "md5\u{1b}]0;pwned\u{7}".into(),
        &[],
    );
    let no_hash = bad.join("no-hash.tar.zst");
    rebuild(
        &good,
        &no_hash,
        true,
        |m| {
            first_file(m).remove("blake3");
        },
        &[],
    );
    let short_hash = bad.join("short-hash.tar.zst");
    rebuild(
        &good,
        &short_hash,
        true,
        |m| {
            first_file(m).insert("blake3".into(), "0123".into());
        },
        &[],
    );
    let sums = file_sums(&good);
    let mixed = bad.join("mixed.tar.zst");
    rebuild(
        &good,
        &mixed,
        true,
        |m| {
            let e = first_file(m);
            let path = e["path"].as_str().unwrap().to_string();
            e.remove("blake3");
            e.insert("sha256".into(), sums[&path].0.clone().into());
        },
        &[],
    );
    let format1 = bad.join("format1.tar.zst");
    as_format1(&good, &format1);
    let before = all_files(&backups);
    for (archive, expect) in [
        (
            &unknown_hash,
            "names the hash `md5\\x1b]0;pwned\\x07`, which launch-tui does not know",
        ),
        (&no_hash, "has no blake3 in manifest.json"),
        (
            &short_hash,
            "has the blake3 `0123`, which is not 64 lowercase hex digits",
        ),
        (&mixed, "one archive uses one algorithm"),
        (&flipped, "damaged"),
        (&truncated, "damaged"),
        (&no_manifest, "does not start with manifest.json"),
        (&dotdot, "contains `..`"),
        (&absolute, "absolute path"),
        (&through_link, "points to the absolute path `/etc`"),
        (&other_version, "launch-tui update vikunja --version v2.0.0"),
    ] {
        let out = launch(
            &lab,
            &cfg,
            &["restore", "vikunja", archive.to_str().unwrap()],
        );
        eprintln!("restore {}:\n{}", archive.display(), text(&out));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{expect}: {stderr}");
        assert!(stderr.contains("nothing was changed"), "{stderr}");
        assert_eq!(
            app.state(&lab),
            changed,
            "{} touched the instance",
            archive.display()
        );
        assert_eq!(all_files(&backups), before);
    }
    for archive in [&flipped, &unknown_hash, &mixed] {
        let out = launch(
            &lab,
            &cfg,
            &["backups", "vikunja", "--verify", archive.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
    // An archive of format 1 (sha256) is still verified.
    let out = launch(
        &lab,
        &cfg,
        &["backups", "vikunja", "--verify", format1.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified: format 1, ")
            && String::from_utf8_lossy(&out.stdout).contains("(sha256 and size of each)"),
        "{}",
        text(&out)
    );

    // 5. The round trip: the backup's rows and files exactly, a safety backup of the rest;
    // from the format 1 (sha256) copy of the backup, restored as archives of that format
    // always were (the safety backup taken on the way is of format 2, blake3).
    let out = launch(
        &lab,
        &cfg,
        &["restore", "vikunja", format1.to_str().unwrap()],
    );
    eprintln!("restore:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(app.state(&lab), {
        let mut s = at_backup;
        // The attachment made after the backup is gone, as it must be.
        s.attachments.insert(app.made[2].1, None);
        s
    });
    let list = archives(&backups);
    assert_eq!(list.len(), 2, "the safety backup: {list:?}");
    let safety = list.iter().find(|p| **p != good).unwrap().clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains(safety.to_str().unwrap()));
    // ... and the safety backup undoes the restore.
    let out = launch(
        &lab,
        &cfg,
        &["restore", "vikunja", safety.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(app.state(&lab), changed);

    // 6. Disk full during a backup: the container's (the lab's fault), then the host's.
    let before = all_files(&backups);
    pve_lab(&lab, &["fault", "fill-disk", &app.vmid]);
    let out = launch(&lab, &cfg, &["backup", "vikunja"]);
    eprintln!("backup on a full disk:\n{}", text(&out));
    pve_lab(&lab, &["fault", "clear-disk", &app.vmid]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("disk is full"), "{stderr}");
    assert!(
        stderr.contains("partial archive was removed") || stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert_eq!(all_files(&backups), before, "no partial archive left");
    let staged = lab.pct_ok(&["exec", &app.vmid, "--", "ls", "-a", "/var/lib/vikunja"]);
    assert!(!staged.contains(".launch-backup"), "{staged}");
    let tiny = cfg.path().join("tiny");
    std::fs::create_dir_all(&tiny).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&tiny)
        .status()
        .unwrap();
    assert!(mount.success());
    let out = launch(
        &lab,
        &cfg,
        &["backup", "vikunja", "--to", tiny.to_str().unwrap()],
    );
    let left = all_files(&tiny);
    let _ = Command::new("umount").arg(&tiny).status();
    eprintln!("backup to a full host disk:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("disk is full"));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(app.state(&lab), changed, "the app kept serving");

    // 7. Uninstall keeping the data, then the same name back from it in a new container.
    let out = launch(
        &lab,
        &cfg,
        &["uninstall", "vikunja", "--keep-data", "--yes"],
    );
    eprintln!("uninstall --keep-data:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kept = archives(&backups)
        .into_iter()
        .find(|p| stdout.contains(p.to_str().unwrap()))
        .unwrap_or_else(|| panic!("the kept archive is named: {stdout}"));
    assert!(stdout.contains("--to-new vikunja"), "{stdout}");
    assert!(!cfg.path().join("instances/vikunja.yaml").exists());
    let out = launch(
        &lab,
        &cfg,
        &[
            "restore",
            "vikunja",
            kept.to_str().unwrap(),
            "--to-new",
            "vikunja",
        ],
    );
    eprintln!("restore --to-new:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rec: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(cfg.path().join("instances/vikunja.yaml")).unwrap(),
    )
    .unwrap();
    app.ip = rec["container"]["ip"].as_str().unwrap().to_string();
    app.vmid = rec["container"]["vmid"].as_u64().unwrap().to_string();
    assert_eq!(
        app.state(&lab),
        changed,
        "the data is back in the new container"
    );
    // The record took the archive's secrets, which match the restored accounts and tokens.
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let login = http
        .post(format!("http://{}/api/v1/login", app.ip))
        .json(&serde_json::json!({
            "username": "admin",
            "password": rec["secrets"]["admin_password"].as_str().unwrap(),
        }))
        .send()
        .unwrap();
    assert_eq!(
        login.status().as_u16(),
        200,
        "admin login with the kept password"
    );
    let user = http
        .get(format!("http://{}/api/v1/user", app.ip))
        .bearer_auth(rec["secrets"]["mcp_token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(
        user.status().as_u16(),
        200,
        "the MCP token from the archive"
    );
}
