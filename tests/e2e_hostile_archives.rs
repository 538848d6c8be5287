//! End to end: hostile backup archives and a restore killed at every step (issue #11), through
//! the real binary against pve-lab, on one installed instance (systemd-nspawn container, nginx,
//! the fixture Vikunja on SQLite).
//!
//! The corpus is built here from a real backup of the instance, each case consistent with its
//! manifest (sizes, blake3, kinds and link targets all listed), so only the path, link, type,
//! size and header checks can refuse it: a config entry the profile does not restore (a setuid
//! binary, a cron file), a chain of links through a link to `.` that reaches `/etc/shadow`, the
//! database entry as a symlink, a hard link out of `data/`, a device node, a fifo, 1 GiB GNU
//! long-name and PAX headers, and a 20 GiB entry. `restore` and `backups --verify` refuse each
//! with exit 2; the instance stays as it was (files, database, config, `/etc/shadow`), no canary
//! appears in the container or on the host, and the header bombs are refused within a memory
//! bound (peak RSS of launch-tui measured with wait4). Then `restore` is killed with SIGKILL
//! after each of its steps (the engine's LAUNCH_TEST_KILL_AFTER hook) and the next `status`,
//! `restore` or `update --check` finishes or undoes it: the app serves, no data is lost.
//!
//! Stood in: Proxmox VE (pve-lab) and the Vikunja release (crates/fixture-app).

#[path = "support/lab.rs"]
mod lab;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lab::{
    fixture_profile, http_get, http_put_bytes, http_put_json, install_with, launch, launch_env,
    text, Config, Lab, Releases,
};

/// What no hostile entry may ever write anywhere: it is in every entry's content.
const CANARY: &str = "CANARY-HOSTILE-7f3a";
/// The data memory launch-tui may use to refuse these archives (the reader's caps: 64 KiB PAX,
/// 4 KiB names, 16 MiB manifest, zstd window 32 MiB; a reader that believed a 1 GiB header
/// needed more than 1 GiB).
const MEMORY_BOUND: u64 = 256 << 20;
/// blake3 of 20 GiB of zero bytes (`truncate -s 20G z && b3sum z`): the 20 GiB entry is
/// consistent with its manifest without hashing 20 GiB in the test.
const ZERO_20G_BLAKE3: &str = "5d3f54e3e19c7c93fdb315497dfdb7ae5ef9e0671959e608350099b3fbf6f757";

const GIB: u64 = 1 << 30;

/// One entry of a crafted archive.
#[derive(Clone)]
struct Entry {
    path: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<String>,
    mode: u32,
}

impl Entry {
    fn file(path: &str, data: &[u8], mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            link: None,
            mode,
        }
    }
    fn link(path: &str, target: &str, hard: bool) -> Entry {
        Entry {
            path: path.into(),
            kind: if hard {
                tar::EntryType::Link
            } else {
                tar::EntryType::Symlink
            },
            data: Vec::new(),
            link: Some(target.into()),
            mode: 0o777,
        }
    }
    fn special(path: &str, kind: tar::EntryType) -> Entry {
        Entry {
            path: path.into(),
            kind,
            data: Vec::new(),
            link: None,
            mode: 0o644,
        }
    }

    /// Its record in the manifest, as launch-tui writes them.
    fn record(&self) -> serde_json::Value {
        let kind = match self.kind {
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Directory => "dir",
            _ => "file",
        };
        let mut r = serde_json::json!({ "path": self.path, "kind": kind, "mode": self.mode });
        if kind == "file" {
            r["size"] = self.data.len().into();
            r["blake3"] = blake3::hash(&self.data).to_hex().to_string().into();
        }
        if let Some(l) = &self.link {
            r["link"] = l.clone().into();
        }
        r
    }

    /// Its tar header, the name written byte for byte (the tar crate's setters refuse some).
    fn header(&self) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(self.kind);
        h.set_mode(self.mode);
        h.set_size(self.data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        if self.kind == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        let b = h.as_old_mut();
        b.name[..self.path.len()].copy_from_slice(self.path.as_bytes());
        if let Some(l) = &self.link {
            b.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        h
    }
}

/// The good archive taken apart: its manifest and its entries.
fn take_apart(good: &Path) -> (serde_json::Value, Vec<Entry>) {
    let plain = zstd::decode_all(std::fs::File::open(good).unwrap()).unwrap();
    let mut ar = tar::Archive::new(&plain[..]);
    let mut manifest = serde_json::Value::Null;
    let mut entries = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if path == "manifest.json" {
            manifest = serde_json::from_slice(&data).unwrap();
            continue;
        }
        entries.push(Entry {
            path,
            kind: e.header().entry_type(),
            link: e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned()),
            mode: e.header().mode().unwrap(),
            data,
        });
    }
    (manifest, entries)
}

/// A zstd archive made of frames (zstd reads concatenated frames as one stream): a frame
/// compressed once can be repeated, so a 1 GiB header or a 20 GiB entry costs little to make.
struct Frames(Vec<u8>);

impl Frames {
    fn new() -> Frames {
        Frames(Vec::new())
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend(zstd::encode_all(b, 3).unwrap());
    }
    /// `n` bytes of `byte`, in repeated 64 MiB frames.
    fn repeat(&mut self, byte: u8, n: u64) {
        let chunk = 64u64 << 20;
        let frame = zstd::encode_all(&vec![byte; chunk as usize][..], 3).unwrap();
        for _ in 0..n / chunk {
            self.0.extend_from_slice(&frame);
        }
        let rest = n % chunk;
        if rest > 0 {
            self.bytes(&vec![byte; rest as usize]);
        }
    }
    fn write(self, dst: &Path) {
        std::fs::write(dst, self.0).unwrap();
    }
}

fn pad(n: u64) -> usize {
    ((512 - n % 512) % 512) as usize
}

/// The manifest's tar header and data.
fn manifest_block(m: &serde_json::Value) -> Vec<u8> {
    let json = serde_json::to_vec(m).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("manifest.json").unwrap();
    h.set_mode(0o600);
    h.set_size(json.len() as u64);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&json);
    out.resize(out.len() + pad(json.len() as u64), 0);
    out
}

fn entry_block(e: &Entry) -> Vec<u8> {
    let mut out = e.header().as_bytes().to_vec();
    out.extend_from_slice(&e.data);
    out.resize(out.len() + pad(e.data.len() as u64), 0);
    out
}

/// An archive of the good one's entries minus `drop`, plus `extra`, with a manifest that lists
/// exactly what it holds.
fn consistent(good: &Path, dst: &Path, drop: &[&str], extra: &[Entry]) {
    let (mut m, entries) = take_apart(good);
    let mut all: Vec<Entry> = entries
        .into_iter()
        .filter(|e| !drop.contains(&e.path.as_str()))
        .collect();
    all.extend(extra.iter().cloned());
    m["entries"] = all.iter().map(Entry::record).collect();
    let mut f = Frames::new();
    let mut plain = manifest_block(&m);
    for e in &all {
        plain.extend(entry_block(e));
    }
    plain.extend_from_slice(&[0; 1024]);
    f.bytes(&plain);
    f.write(dst);
}

/// The good archive with one extension header of `size` bytes before its first entry (a long
/// name or PAX record made of `a`s): 1 GiB of header in well under a MiB of archive.
fn header_bomb(good: &Path, dst: &Path, kind: tar::EntryType, size: u64) {
    let (m, entries) = take_apart(good);
    let mut f = Frames::new();
    let mut head = manifest_block(&m);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path("././@LongLink").unwrap();
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    head.extend_from_slice(h.as_bytes());
    let prefix = if kind == tar::EntryType::XHeader {
        format!("{size} path=").into_bytes()
    } else {
        Vec::new()
    };
    head.extend_from_slice(&prefix);
    f.bytes(&head);
    f.repeat(b'a', size - prefix.len() as u64 - 1);
    let mut tail = vec![if prefix.is_empty() { 0 } else { b'\n' }];
    tail.resize(1 + pad(size), 0);
    for e in &entries {
        tail.extend(entry_block(e));
    }
    tail.extend_from_slice(&[0; 1024]);
    f.bytes(&tail);
    f.write(dst);
}

/// The good archive plus a 20 GiB file of zeros under data/files, listed in its manifest.
fn huge_entry(good: &Path, dst: &Path) {
    let (mut m, entries) = take_apart(good);
    let size = 20 * GIB;
    let mut recs: Vec<serde_json::Value> = entries.iter().map(Entry::record).collect();
    recs.push(serde_json::json!({
        "path": "data/files/huge", "kind": "file", "mode": 0o644, "size": size,
        "blake3": ZERO_20G_BLAKE3,
    }));
    m["entries"] = recs.into();
    let mut f = Frames::new();
    let mut head = manifest_block(&m);
    for e in &entries {
        head.extend(entry_block(e));
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("data/files/huge").unwrap();
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    head.extend_from_slice(h.as_bytes());
    f.bytes(&head);
    f.repeat(0, size);
    f.bytes(&[0; 1024]);
    f.write(dst);
}

/// Runs launch-tui (no `pct` needed) with its data memory (heap and private writable
/// mappings, RLIMIT_DATA) limited to `limit` bytes: past it an allocation fails and the
/// process aborts, so an exit 2 proves the archive was refused within the bound. (wait4's
/// peak RSS cannot be used here: a child's maxrss starts at the test process's size.)
fn launch_limited(cfg: &Config, args: &[&str], limit: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_launch-tui"));
    cmd.env("NO_COLOR", "1")
        .env("LAUNCH_CONFIG", cfg.path())
        .env("LAUNCH_LOG_DIR", cfg.path().join("log"))
        .env("LAUNCH_CACHE_DIR", cfg.path().join("cache"))
        .env("LAUNCH_STATE_DIR", cfg.path().join("state"))
        .args(args)
        .stdin(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

struct Instance {
    ip: String,
    vmid: String,
}

impl Instance {
    fn sh(&self, lab: &Lab, script: &str) -> String {
        lab.pct_ok(&["exec", &self.vmid, "--", "sh", "-c", script])
    }

    fn add_task(&self, title: &str) -> i64 {
        let (s, v) = http_put_json(
            &format!("http://{}/api/v1/tasks", self.ip),
            &serde_json::json!({ "title": title }),
        );
        assert!(s == 200 || s == 201, "create task: {s} {v}");
        v["id"].as_i64().unwrap()
    }

    /// Everything a restore may change, and what a hostile archive may aim at: the tasks as
    /// the app serves them, the files and database on disk, the config, `/etc/shadow` and its
    /// owner, the cron and local binary directories.
    fn fingerprint(&self, lab: &Lab) -> String {
        let (s, body) = http_get(&format!("http://{}/api/v1/tasks", self.ip));
        assert_eq!(s, 200, "the app serves: {body}");
        let tasks: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut titles: Vec<String> = tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap_or_default().to_string())
            .collect();
        titles.sort();
        let disk = self.sh(
            lab,
            "cd /var/lib/vikunja/blue && (sha256sum files/* | sort); \
             sqlite3 -readonly vikunja.db .dump | sha256sum; \
             sha256sum /etc/vikunja/config.yml /etc/shadow /etc/passwd; \
             stat -c '%U:%G %a %n' /etc/shadow /etc/passwd; \
             ls -a /etc/cron.d /usr/local/bin /var/lib/vikunja /var/lib/vikunja/blue | grep -v -e '-wal$' -e '-shm$'",
        );
        format!("{}\n{disk}", titles.join("\n"))
    }

    /// Files written since the marker that hold the canary, and anything named like a hostile
    /// entry, anywhere in the container.
    fn canaries(&self, lab: &Lab) -> String {
        self.sh(
            lab,
            &format!(
                "find / -xdev -newer /root/.launch-e2e-marker -type f -print0 2>/dev/null | xargs -0 -r grep -lsF {CANARY}; \
                 find / -xdev -name 'launch-evil*' 2>/dev/null; true"
            ),
        )
    }
}

/// Host files under `dir` (except `skip`) that hold the canary.
fn host_canaries(dir: &Path, skip: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d == skip {
            continue;
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let data = std::fs::read(&p).unwrap_or_default();
                if data.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()) {
                    found.push(p);
                }
            }
        }
    }
    found
}

fn archives(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    v.sort();
    v
}

const KILL_STEPS: &[&str] = &[
    "safety-backup",
    "stage",
    "stop-app",
    "database",
    "files",
    "config",
    "start-app",
    "cleanup",
];

#[test]
fn hostile_archives_are_refused_and_a_killed_restore_recovers() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let rec = install_with(
        &lab,
        &cfg,
        "answers.yaml",
        "public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\n",
    );
    let app = Instance {
        ip: rec["container"]["ip"].as_str().unwrap().to_string(),
        vmid: rec["container"]["vmid"].as_u64().unwrap().to_string(),
    };
    let backups = cfg.path().join("state/backups/vikunja");
    let journal = cfg.path().join("state/journal/vikunja.restore.json");

    // A task and an attachment, then the good backup everything below is made from.
    let t = app.add_task("kept");
    let (s, v) = http_put_bytes(
        &format!("http://{}/api/v1/tasks/{t}/attachments?name=a.bin", app.ip),
        b"attachment bytes ".repeat(1000),
    );
    assert_eq!(s, 201, "upload: {v}");
    let out = launch(&lab, &cfg, &["backup", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let good = archives(&backups).pop().unwrap();
    let archived = app.fingerprint(&lab);
    app.add_task("after the backup");

    // 1. The corpus.
    let bad = cfg.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let canary =
        |what: &str| format!("#!/bin/sh\n# {CANARY} {what}\ntouch /{CANARY}\n").into_bytes();
    let (_, good_entries) = take_apart(&good);
    let db = good_entries
        .iter()
        .find(|e| e.path == "db/vikunja.db")
        .unwrap()
        .clone();
    let mut cases: Vec<(&str, PathBuf, &str)> = Vec::new();
    let mut add = |name: &'static str, expect: &'static str, build: &dyn Fn(&Path)| {
        let p = bad.join(format!("{name}.tar.zst"));
        build(&p);
        cases.push((name, p, expect));
    };
    add("setuid-config", "not one of the config files", &|p| {
        consistent(
            &good,
            p,
            &[],
            &[Entry::file(
                "config/usr/local/bin/launch-evil",
                &canary("setuid"),
                0o4755,
            )],
        )
    });
    add("cron-config", "not one of the config files", &|p| {
        consistent(
            &good,
            p,
            &[],
            &[Entry::file(
                "config/etc/cron.d/launch-evil",
                format!("* * * * * root echo {CANARY} > /launch-evil\n").as_bytes(),
                0o644,
            )],
        )
    });
    add("dot-chain", "resolves outside data/", &|p| {
        consistent(
            &good,
            p,
            &[],
            &[
                Entry::link("data/files/d", ".", false),
                Entry::link("data/files/e", "d/d/d/../../../..", false),
                Entry::link("data/files/launch-evil", "e/etc/shadow", false),
            ],
        )
    });
    add("database-symlink", "not a plain file", &|p| {
        let mut real = db.clone();
        real.path = "db/real.db".into();
        consistent(
            &good,
            p,
            &["db/vikunja.db"],
            &[real, Entry::link("db/vikunja.db", "real.db", false)],
        )
    });
    add("hardlink-escape", "points outside data/", &|p| {
        consistent(
            &good,
            p,
            &[],
            &[Entry::link(
                "data/files/launch-evil",
                "config/etc/vikunja/config.yml",
                true,
            )],
        )
    });
    add("device", "device file", &|p| {
        consistent(
            &good,
            p,
            &[],
            &[Entry::special(
                "data/files/launch-evil",
                tar::EntryType::Char,
            )],
        )
    });
    add("fifo", "of a kind backups never hold", &|p| {
        consistent(
            &good,
            p,
            &[],
            &[Entry::special(
                "data/files/launch-evil",
                tar::EntryType::Fifo,
            )],
        )
    });
    add("longname-bomb", "GNU long name of 1073741824 bytes", &|p| {
        header_bomb(&good, p, tar::EntryType::GNULongName, GIB)
    });
    add(
        "pax-bomb",
        "PAX extended header of 1073741824 bytes",
        &|p| header_bomb(&good, p, tar::EntryType::XHeader, GIB),
    );
    add("20gib-entry", "would fill its disk", &|p| {
        huge_entry(&good, p)
    });
    for (name, p, _) in &cases {
        eprintln!("{name}: {} bytes", std::fs::metadata(p).unwrap().len());
    }

    // 2. Each refused by `restore` and by `backups --verify`, exit 2, nothing changed.
    app.sh(&lab, "touch /root/.launch-e2e-marker");
    let before = app.fingerprint(&lab);
    let listed = archives(&backups);
    for (name, p, expect) in &cases {
        for verify in [false, true] {
            let args: Vec<&str> = if verify {
                vec!["backups", "vikunja", "--verify", p.to_str().unwrap()]
            } else {
                vec!["restore", "vikunja", p.to_str().unwrap()]
            };
            let out = launch(&lab, &cfg, &args);
            eprintln!("{name} ({}):\n{}", args[0], text(&out));
            assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let expect = if *name == "20gib-entry" && !verify {
                "free in /var/lib/vikunja"
            } else {
                expect
            };
            assert!(stderr.contains(expect), "{name}: {expect}: {stderr}");
            assert_eq!(app.fingerprint(&lab), before, "{name} changed the instance");
            assert_eq!(app.canaries(&lab), "", "{name} wrote a canary in the CT");
            assert_eq!(
                host_canaries(cfg.path(), &bad),
                Vec::<PathBuf>::new(),
                "{name} wrote a canary on the host"
            );
            assert_eq!(archives(&backups), listed, "{name}: no safety backup");
            assert!(!journal.exists(), "{name} left a journal");
        }
    }

    // The reader's memory whatever the archive says: `backups --verify` for an instance that
    // is not installed, with launch-tui's data memory limited. (The 20 GiB entry is left out:
    // without a container it would fill, it is hashed whole, which takes long.)
    for (name, p, _) in cases.iter().filter(|c| c.0 != "20gib-entry") {
        let out = launch_limited(
            &cfg,
            &["backups", "not-installed", "--verify", p.to_str().unwrap()],
            MEMORY_BOUND,
        );
        eprintln!("{name} within {} MiB:\n{}", MEMORY_BOUND >> 20, text(&out));
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
    }

    // 3. Restore killed after each step; the next command finishes or undoes it.
    for (i, step) in KILL_STEPS.iter().enumerate() {
        app.add_task(&format!("before the kill at {step}"));
        let before = app.fingerprint(&lab);
        let out = launch_env(
            &lab,
            &cfg,
            &["restore", "vikunja", good.to_str().unwrap()],
            &[("LAUNCH_TEST_KILL_AFTER", step)],
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(9),
            "restore was to be killed after {step}: {}",
            text(&out)
        );
        if *step != "cleanup" {
            assert!(journal.exists(), "a kill after {step} leaves the journal");
        }
        let next: &[&str] = match i % 3 {
            0 => &["status", "vikunja"],
            1 => &["restore", "vikunja", good.to_str().unwrap()],
            _ => &["update", "vikunja", "--check"],
        };
        let out = launch(&lab, &cfg, next);
        eprintln!("killed after {step}; then {next:?}:\n{}", text(&out));
        assert!(
            !journal.exists(),
            "{next:?} after a kill at {step} left the journal"
        );
        if next[0] == "restore" {
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        }
        let now = app.fingerprint(&lab);
        // The restored state once the restored app had passed its health check (or when the
        // next command is a restore); the state before the killed restore otherwise: never
        // a mix, and nothing of either lost.
        let finished = next[0] == "restore" || matches!(*step, "start-app" | "cleanup");
        assert_eq!(
            &now,
            if finished { &archived } else { &before },
            "after a kill at {step} and {next:?}"
        );
        let left = app.sh(
            &lab,
            "ls -a /var/lib/vikunja /var/lib/vikunja/blue /etc/vikunja",
        );
        assert!(
            !left.contains(".launch-restore") && !left.contains("launch-old"),
            "after a kill at {step} and {next:?}: {left}"
        );
    }

    // 4. Safety backups are pruned: the newest N stay (here 2), the user's own backup too.
    let out = launch(
        &lab,
        &cfg,
        &[
            "restore",
            "vikunja",
            good.to_str().unwrap(),
            "--keep-safety-backups",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let left = archives(&backups);
    assert!(left.contains(&good), "{left:?}");
    assert_eq!(left.len(), 3, "the backup and 2 safety backups: {left:?}");
    assert_eq!(app.fingerprint(&lab), archived);
}
