use super::*;
use crate::instance::{Container, Instance, Slot};

fn instance() -> Instance {
    Instance {
        name: "vikunja".into(),
        profile: "vikunja".into(),
        app_version: "v1.0.0".into(),
        container: Container {
            node: "pve".into(),
            vmid: 100,
            hostname: "vikunja".into(),
            ip: None,
            storage: "local".into(),
        },
        active_slot: Slot::Blue,
        releases: vec![],
        previous: None,
        components: Default::default(),
        settings: Default::default(),
        secrets: [("service_secret".to_string(), "s".to_string())]
            .into_iter()
            .collect(),
        created: "2026-01-01T00:00:00Z".into(),
        updated: "2026-01-01T00:00:00Z".into(),
    }
}

fn manifest(entries: Vec<EntryRecord>) -> Manifest {
    Manifest {
        format: FORMAT,
        hash: Some("blake3".into()),
        created: "2026-01-01T00:00:00Z".into(),
        tool: "test".into(),
        reason: "test".into(),
        instance: instance(),
        profile: ProfileRef {
            name: "vikunja".into(),
            format: 1,
            sha256: "0".into(),
        },
        app_version: "v1.0.0".into(),
        slot: Slot::Blue,
        database: DatabaseDump {
            kind: "sqlite".into(),
            entry: "db/vikunja.db".into(),
            name: None,
        },
        entries,
    }
}

fn good(dir: &Path, c: Compression) -> PathBuf {
    good_with(dir, c, u64::MAX)
}

fn good_with(dir: &Path, c: Compression, in_place_min: u64) -> PathBuf {
    let tmp = dir.join(format!("good.{}", extension(c)));
    let mut w = ArchiveWriter::create(&tmp, c).unwrap();
    w.in_place_min = in_place_min;
    w.add_dir("db", 0o700, ("root", "root")).unwrap();
    w.add_file(
        "db/vikunja.db",
        0o640,
        ("vikunja", "vikunja"),
        5,
        &b"hello"[..],
    )
    .unwrap();
    w.add_dir("data/files", 0o750, ("vikunja", "vikunja"))
        .unwrap();
    let big = vec![7u8; 300_000];
    w.add_file(
        "data/files/1",
        0o640,
        ("vikunja", "vikunja"),
        big.len() as u64,
        &big[..],
    )
    .unwrap();
    w.add_link("data/files/latest", "1", false, 0o777, ("root", "root"))
        .unwrap();
    w.finish(manifest(vec![])).unwrap();
    tmp
}

/// A raw tar entry, with the name written byte for byte (the tar crate's own setters refuse
/// `..` and absolute paths, which is what these tests need to craft).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    data: &[u8],
    link: Option<&str>,
) {
    let mut h = tar::Header::new_old();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        old.linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn sha(d: &[u8]) -> String {
    hex::encode(Sha256::digest(d))
}

fn b3(d: &[u8]) -> String {
    blake3::hash(d).to_hex().to_string()
}

fn file_rec(path: &str, d: &[u8]) -> EntryRecord {
    EntryRecord {
        path: path.into(),
        kind: EntryKind::File,
        size: d.len() as u64,
        sha256: None,
        blake3: Some(b3(d)),
        mode: 0o644,
        link: None,
    }
}

/// An archive with a valid manifest listing `records`, then `entries` as given.
fn crafted(
    dir: &Path,
    with_manifest: bool,
    records: Vec<EntryRecord>,
    entries: &[(tar::EntryType, &str, &[u8], Option<&str>)],
) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    let db = b"db!";
    let mut recs = vec![file_rec("db/vikunja.db", db)];
    recs.extend(records);
    if with_manifest {
        let json = serde_json::to_vec(&manifest(recs)).unwrap();
        raw_entry(&mut b, tar::EntryType::Regular, MANIFEST, &json, None);
    }
    raw_entry(&mut b, tar::EntryType::Regular, "db/vikunja.db", db, None);
    for (k, n, d, l) in entries {
        raw_entry(&mut b, *k, n, d, *l);
    }
    let tar = b.into_inner().unwrap();
    let p = dir.join("crafted.tar.zst");
    std::fs::write(&p, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    p
}

fn refused(p: &Path) -> String {
    let e = walk(p, |_, _| Ok(())).unwrap_err();
    assert!(is_archive_problem(&e), "{e:#}");
    format!("{e:#}")
}

#[test]
fn round_trip_both_compressions_manifest_first() {
    let d = tempfile::tempdir().unwrap();
    for c in [Compression::Zstd, Compression::Gzip] {
        let p = good(d.path(), c);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut seen = Vec::new();
        let m = walk(&p, |e, r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            seen.push((e.record.path.clone(), v.len(), e.owner.0.clone()));
            Ok(())
        })
        .unwrap();
        assert_eq!(m.entries.len(), 5);
        assert_eq!(seen[1], ("db/vikunja.db".into(), 5, "vikunja".into()));
        assert_eq!(read_manifest(&p).unwrap(), m);
        // Only the archive is left, compact (small archives keep no reserved head).
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(std::fs::metadata(&p).unwrap().len() < 64 << 10);
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn large_zstd_archives_keep_their_head_as_a_skippable_frame() {
    let d = tempfile::tempdir().unwrap();
    let p = good_with(d.path(), Compression::Zstd, 0);
    assert!(std::fs::metadata(&p).unwrap().len() > HEAD);
    let m = walk(&p, |_, _| Ok(())).unwrap();
    assert_eq!(m.entries.len(), 5);
    assert_eq!(read_manifest(&p).unwrap(), m);
    // The zstd tool reads it as well (skippable frames are part of the format).
    if let Ok(out) = std::process::Command::new("zstd")
        .arg("-t")
        .arg(&p)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn flipped_byte_and_truncation_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = good(d.path(), Compression::Zstd);
    let orig = std::fs::read(&p).unwrap();
    // In the compressed bytes (bit rot).
    let mut b = orig.clone();
    let i = b.len() * 2 / 3;
    b[i] ^= 0x20;
    std::fs::write(&p, &b).unwrap();
    refused(&p);
    // In the data, with valid compression: the entry's hash (blake3) catches it.
    let mut plain = zstd::decode_all(&orig[..]).unwrap();
    let at = plain.windows(5).position(|w| w == b"hello").unwrap();
    plain[at] = b'j';
    std::fs::write(&p, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
    assert!(refused(&p).contains("does not match its blake3"));
    // Truncated.
    std::fs::write(&p, &orig[..orig.len() / 2]).unwrap();
    refused(&p);
}

#[test]
fn missing_manifest_and_unlisted_entries_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = crafted(d.path(), false, vec![], &[]);
    assert!(refused(&p).contains("does not start with manifest.json"));
    let p = crafted(
        d.path(),
        true,
        vec![],
        &[(tar::EntryType::Regular, "data/extra", b"x", None)],
    );
    assert!(refused(&p).contains("not in the manifest"));
    let p = crafted(d.path(), true, vec![file_rec("data/gone", b"x")], &[]);
    assert!(refused(&p).contains("missing from the archive"));
    let p = crafted(d.path(), true, vec![], &[]);
    walk(&p, |_, _| Ok(())).unwrap();
}

#[test]
fn escaping_paths_links_and_devices_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = crafted(
        d.path(),
        true,
        vec![],
        &[(tar::EntryType::Regular, "data/../../etc/evil", b"x", None)],
    );
    assert!(refused(&p).contains("contains `..`"));
    let p = crafted(
        d.path(),
        true,
        vec![],
        &[(tar::EntryType::Regular, "/etc/evil", b"x", None)],
    );
    assert!(refused(&p).contains("absolute path"));
    let link = EntryRecord {
        path: "data/out".into(),
        kind: EntryKind::Symlink,
        size: 0,
        sha256: None,
        blake3: None,
        mode: 0o777,
        link: Some("/etc".into()),
    };
    let p = crafted(
        d.path(),
        true,
        vec![link.clone(), file_rec("data/out/passwd", b"x")],
        &[
            (tar::EntryType::Symlink, "data/out", b"", Some("/etc")),
            (tar::EntryType::Regular, "data/out/passwd", b"x", None),
        ],
    );
    assert!(refused(&p).contains("points to the absolute path"));
    let rel = EntryRecord {
        link: Some("../../etc".into()),
        ..link
    };
    let p = crafted(
        d.path(),
        true,
        vec![rel],
        &[(tar::EntryType::Symlink, "data/out", b"", Some("../../etc"))],
    );
    assert!(refused(&p).contains("points outside"));
    let p = crafted(
        d.path(),
        true,
        vec![],
        &[(tar::EntryType::Char, "data/null", b"", None)],
    );
    assert!(refused(&p).contains("device file"));
}

#[test]
fn a_file_through_an_inside_symlink_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let link = EntryRecord {
        path: "data/alias".into(),
        kind: EntryKind::Symlink,
        size: 0,
        sha256: None,
        blake3: None,
        mode: 0o777,
        link: Some("files".into()),
    };
    let p = crafted(
        d.path(),
        true,
        vec![link, file_rec("data/alias/x", b"x")],
        &[
            (tar::EntryType::Symlink, "data/alias", b"", Some("files")),
            (tar::EntryType::Regular, "data/alias/x", b"x", None),
        ],
    );
    assert!(refused(&p).contains("goes through the symlink"));
}

#[test]
fn newer_format_is_refused_with_help() {
    let d = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut m = serde_json::to_value(manifest(vec![])).unwrap();
    m["format"] = (FORMAT + 1).into();
    m["tool"] = "launch-tui 9.0.0\u{1b}[2J".into();
    let json = serde_json::to_vec(&m).unwrap();
    raw_entry(&mut b, tar::EntryType::Regular, MANIFEST, &json, None);
    let p = d.path().join("f3.tar.zst");
    std::fs::write(
        &p,
        zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    let t = refused(&p);
    assert!(
        t.contains(&format!("format is {}, newer", FORMAT + 1))
            && t.contains("`launch-tui 9.0.0\\x1b[2J`")
            && t.contains("help: update launch-tui (`launch-tui self-update`)"),
        "{t}"
    );
    // Format 0 (and anything else below 1) is no launch-tui's.
    let mut b = tar::Builder::new(Vec::new());
    m["format"] = 0.into();
    raw_entry(
        &mut b,
        tar::EntryType::Regular,
        MANIFEST,
        &serde_json::to_vec(&m).unwrap(),
        None,
    );
    std::fs::write(
        &p,
        zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    let t = refused(&p);
    assert!(t.contains("format is 0, which no launch-tui writes"), "{t}");
}

#[test]
fn a_failed_write_leaves_no_partial_files() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            buf[..n].fill(1);
            Ok(n)
        }
    }
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join(".x.tar.zst.partial");
    let mut w = ArchiveWriter::create(&tmp, Compression::Zstd).unwrap();
    assert!(tmp.exists());
    assert!(w
        .add_file("data/f", 0o600, ("root", "root"), 1 << 20, Failing(4096))
        .is_err());
    drop(w);
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn names_carry_time_and_version() {
    let t = time::macros::datetime!(2026-11-27 16:05:09 UTC);
    let n = file_name("vikunja-2", t, "v2.5.0-rc1", Compression::Zstd);
    assert_eq!(n, "vikunja-2-20261127T160509Z-v2.5.0-rc1.tar.zst");
    let p = parse_file_name("vikunja-2", &n).unwrap();
    assert_eq!(p.created, t);
    assert_eq!(p.version, "v2.5.0-rc1");
    // Another instance's archive whose name starts the same is not ours.
    assert!(parse_file_name("vikunja", &n).is_none());
    assert!(parse_file_name("vikunja-2", ".vikunja-2-x.tar.zst.partial").is_none());
}

#[test]
fn link_targets() {
    check_link_target("data/files/a", "b", false).unwrap();
    check_link_target("data/files/a", "../x", false).unwrap();
    assert!(check_link_target("data/a", "../../x", false).is_err());
    assert!(check_link_target("data/a", "../config/x", false).is_err());
    assert!(check_link_target("data/a", "/x", false).is_err());
    check_link_target("data/a", "data/b", true).unwrap();
    assert!(check_link_target("data/a", "../b", true).is_err());
}

fn link_rec(path: &str, target: &str, hard: bool) -> EntryRecord {
    EntryRecord {
        path: path.into(),
        kind: if hard {
            EntryKind::Hardlink
        } else {
            EntryKind::Symlink
        },
        size: 0,
        sha256: None,
        blake3: None,
        mode: 0o777,
        link: Some(target.into()),
    }
}

/// An archive whose manifest lists `links` (and the database file), holding them too.
fn with_links(dir: &Path, links: &[(&str, &str, bool)]) -> PathBuf {
    let recs = links.iter().map(|(p, t, h)| link_rec(p, t, *h)).collect();
    let entries: Vec<(tar::EntryType, &str, &[u8], Option<&str>)> = links
        .iter()
        .map(|(p, t, h)| {
            (
                if *h {
                    tar::EntryType::Link
                } else {
                    tar::EntryType::Symlink
                },
                *p,
                &b""[..],
                Some(*t),
            )
        })
        .collect();
    crafted(dir, true, recs, &entries)
}

#[test]
fn links_are_resolved_through_each_other() {
    let d = tempfile::tempdir().unwrap();
    // Each alone stays inside lexically; resolved, `e` climbs from data/files to / (the
    // kernel reads `d/d/d` as data/files, then goes up four times).
    let p = with_links(
        d.path(),
        &[
            ("data/files/d", ".", false),
            ("data/files/e", "d/d/d/../../../..", false),
            ("data/files/f", "e/etc/shadow", false),
        ],
    );
    let t = refused(&p);
    assert!(t.contains("resolves outside data/"), "{t}");
    // A chain through a link to a parent.
    let p = with_links(
        d.path(),
        &[
            ("data/files/up", "..", false),
            ("data/files/x", "up/../etc", false),
        ],
    );
    assert!(refused(&p).contains("resolves outside data/"));
    // A loop.
    let p = with_links(
        d.path(),
        &[("data/a", "b/x", false), ("data/b", "a/x", false)],
    );
    assert!(refused(&p).contains("more than 40 links"));
    // Inside, through other links: fine.
    let p = with_links(
        d.path(),
        &[
            ("data/files/d", ".", false),
            ("data/files/e", "d/d/sub/../1", false),
        ],
    );
    walk(&p, |_, _| Ok(())).unwrap();
}

#[test]
fn links_only_under_data_and_never_the_database() {
    let d = tempfile::tempdir().unwrap();
    let p = with_links(d.path(), &[("config/etc/x", "y", false)]);
    assert!(refused(&p).contains("outside data/"));
    let p = with_links(
        d.path(),
        &[("data/files/h", "config/etc/vikunja/config.yml", true)],
    );
    assert!(refused(&p).contains("points outside data/"));
    let p = with_links(d.path(), &[("data/files/h", "data/files/nothing", true)]);
    assert!(refused(&p).contains("not a file of the archive"));
    // The database entry itself a symlink (within db/).
    let mut b = tar::Builder::new(Vec::new());
    let mut m = manifest(vec![link_rec("db/vikunja.db", "real", false)]);
    m.database.entry = "db/vikunja.db".into();
    let json = serde_json::to_vec(&m).unwrap();
    raw_entry(&mut b, tar::EntryType::Regular, MANIFEST, &json, None);
    raw_entry(
        &mut b,
        tar::EntryType::Symlink,
        "db/vikunja.db",
        b"",
        Some("real"),
    );
    let p = d.path().join("dblink.tar.zst");
    std::fs::write(
        &p,
        zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    let t = refused(&p);
    assert!(
        t.contains("not a plain file") || t.contains("outside data/"),
        "{t}"
    );
    // Something listed below a symlink, even when the symlink comes later.
    let p = crafted(
        d.path(),
        true,
        vec![
            file_rec("data/l/x", b"x"),
            link_rec("data/l", "files", false),
        ],
        &[
            (tar::EntryType::Regular, "data/l/x", b"x", None),
            (tar::EntryType::Symlink, "data/l", b"", Some("files")),
        ],
    );
    assert!(refused(&p).contains("goes through the symlink"));
    let p = crafted(
        d.path(),
        true,
        vec![],
        &[(tar::EntryType::Fifo, "data/fifo", b"", None)],
    );
    refused(&p);
}

/// A tar stream: the manifest, then one extension header declaring `size` bytes, and only
/// 512 bytes of them (a reader that believes the header allocates before it notices).
fn header_bomb(kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let json = serde_json::to_vec(&manifest(vec![file_rec("db/vikunja.db", b"db!")])).unwrap();
    raw_entry(&mut b, tar::EntryType::Regular, MANIFEST, &json, None);
    let mut tar = b.into_inner().unwrap();
    // Without the end-of-archive blocks the builder wrote.
    tar.truncate(tar.len() - 1024);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path("././@LongLink").unwrap();
    h.set_size(size);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(&[b'a'; 512]);
    tar
}

#[test]
fn oversized_headers_are_refused_before_they_are_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bomb.tar.zst");
    for (kind, what) in [
        (tar::EntryType::GNULongName, "GNU long name"),
        (tar::EntryType::GNULongLink, "GNU long link"),
        (tar::EntryType::XHeader, "PAX extended header"),
        (tar::EntryType::XGlobalHeader, "PAX extended header"),
    ] {
        let tar = header_bomb(kind, 1 << 30);
        std::fs::write(&p, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
        let t = refused(&p);
        assert!(t.contains(what) && t.contains("1073741824 bytes"), "{t}");
    }
    // Headers within the caps pass the gate (and are refused, or not, by the usual checks).
    let tar = header_bomb(tar::EntryType::GNULongName, 100);
    std::fs::write(&p, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    assert!(!refused(&p).contains("refused before reading"));
}

#[test]
fn a_pax_size_keeps_the_gate_in_step_with_the_reader() {
    // The tar crate takes an entry's size from a PAX `size` record; the gate must too, or a
    // bomb could hide in what the gate thinks is data.
    let d = tempfile::tempdir().unwrap();
    let data = vec![b'z'; 3000];
    let mut b = tar::Builder::new(Vec::new());
    let m = manifest(vec![
        file_rec("db/vikunja.db", b"db!"),
        file_rec("data/p", &data),
    ]);
    let json = serde_json::to_vec(&m).unwrap();
    raw_entry(&mut b, tar::EntryType::Regular, MANIFEST, &json, None);
    raw_entry(
        &mut b,
        tar::EntryType::Regular,
        "db/vikunja.db",
        b"db!",
        None,
    );
    let record = b"13 size=3000\n";
    let mut x = tar::Header::new_ustar();
    x.set_entry_type(tar::EntryType::XHeader);
    x.set_path("PaxHeaders/p").unwrap();
    x.set_size(record.len() as u64);
    x.set_cksum();
    b.append(&x, &record[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("data/p").unwrap();
    h.set_mode(0o644);
    h.set_size(0); // the PAX record says 3000
    h.set_cksum();
    let mut tar = b.into_inner().unwrap();
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(&data);
    tar.resize(tar.len() + (512 - data.len() % 512) % 512, 0);
    tar.extend_from_slice(&[0; 1024]);
    let p = d.path().join("pax.tar.zst");
    std::fs::write(&p, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    walk(&p, |_, _| Ok(())).unwrap();
}

#[test]
fn declared_size_sums_the_files() {
    let m = manifest(vec![
        file_rec("db/vikunja.db", b"db!"),
        file_rec("data/x", &[0; 5000]),
    ]);
    assert_eq!(declared_size(&m), 4096 + 8192);
}

/// Bytes zstd cannot compress (so it stores them as they are, and a flipped bit in the file
/// still decodes: only the frame's checksum can tell).
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn noisy(dir: &Path, verified: bool, in_place_min: u64) -> (PathBuf, ArchiveWriter) {
    let tmp = dir.join("noisy.tar.zst");
    let mut w = if verified {
        ArchiveWriter::create_verified(&tmp, Compression::Zstd).unwrap()
    } else {
        ArchiveWriter::create(&tmp, Compression::Zstd).unwrap()
    };
    w.in_place_min = in_place_min;
    w.add_dir("db", 0o700, ("root", "root")).unwrap();
    w.add_file("db/vikunja.db", 0o640, ("root", "root"), 5, &b"hello"[..])
        .unwrap();
    let data = noise(3 << 20);
    w.add_file(
        "data/files/noise",
        0o640,
        ("vikunja", "vikunja"),
        data.len() as u64,
        &data[..],
    )
    .unwrap();
    // A long name: its extra GNU header goes through the tar builder, the data by hand.
    let long = format!("data/files/{}", "n".repeat(150));
    w.add_file(&long, 0o640, ("root", "root"), 3, &b"abc"[..])
        .unwrap();
    (tmp, w)
}

#[test]
fn verify_written_proves_the_entries_by_the_frame_checksum() {
    let d = tempfile::tempdir().unwrap();
    let (p, w) = noisy(d.path(), false, u64::MAX);
    let (_, m, _) = w.finish_inner(manifest(vec![])).unwrap();
    assert_eq!(verify_written(&p, &m, Compression::Zstd).unwrap(), m);
    assert_eq!(walk(&p, |_, _| Ok(())).unwrap(), m);
    // tar reads it as well.
    let out = std::process::Command::new("tar")
        .args(["-I", "zstd", "-tf"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&"n".repeat(150)));
    // One bit flipped inside the stored noise: it still decodes, and the checksum refuses it.
    let orig = std::fs::read(&p).unwrap();
    let mut b = orig.clone();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    std::fs::write(&p, &b).unwrap();
    let e = verify_written(&p, &m, Compression::Zstd).unwrap_err();
    assert!(is_archive_problem(&e), "{e:#}");
    refused(&p);
    // A manifest other than the one written is refused.
    std::fs::write(&p, &orig).unwrap();
    let mut other = m.clone();
    other.reason = "other".into();
    verify_written(&p, &other, Compression::Zstd).unwrap_err();
}

#[test]
fn the_read_back_beside_the_writer_verifies_in_place_and_compacted_archives() {
    let mut sizes = Vec::new();
    for in_place_min in [0, u64::MAX] {
        let d = tempfile::tempdir().unwrap();
        let (p, w) = noisy(d.path(), true, in_place_min);
        let (size, m) = w.finish_verified(manifest(vec![])).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
        assert_eq!(m.entries.len(), 4);
        assert_eq!(walk(&p, |_, _| Ok(())).unwrap(), m);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        sizes.push(size);
    }
    // In place, the reserved head stays (a skippable frame); compacted, it is gone.
    assert!(sizes[0] > sizes[1] + HEAD / 2, "{sizes:?}");
}

/// Writes `bytes` through a `Feeding` (in pieces, as a compressor does) while `read_body`
/// follows the file on a thread of its own; `stop_after`: the writer fails after that much.
fn follow_while_writing(bytes: &[u8], stop_after: usize) -> Result<Vec<follow::Seen>> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("body");
    let mut f = create_private(&p).unwrap();
    f.seek(SeekFrom::Start(HEAD)).unwrap();
    let tail = Arc::new(Tail::default());
    let reader = Following::new(File::open(&p).unwrap(), HEAD, tail.clone());
    let t = std::thread::spawn(move || follow::read_body(reader));
    let mut w = Feeding::new(f, HEAD, Some(tail));
    for c in bytes[..stop_after.min(bytes.len())].chunks(100_000) {
        w.write_all(c).unwrap();
    }
    if stop_after >= bytes.len() {
        w.into_file();
    } else {
        drop(w);
    }
    t.join().unwrap()
}

#[test]
fn the_read_back_follows_the_file_and_refuses_damage_and_an_unfinished_write() {
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        tar::EntryType::Regular,
        "data/noise",
        &noise(1 << 20),
        None,
    );
    let tar = b.into_inner().unwrap();
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(&tar).unwrap();
    let z = e.finish().unwrap();
    let seen = follow_while_writing(&z, usize::MAX).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].path.as_str(), seen[0].size),
        ("data/noise", 1 << 20)
    );
    // A bit flipped in the stored noise: only the frame's checksum can tell.
    let mut bad = z.clone();
    let i = bad.len() / 2;
    bad[i] ^= 0x01;
    let e = follow_while_writing(&bad, usize::MAX).unwrap_err();
    assert!(is_archive_problem(&e), "{e:#}");
    // A writer that fails half way: the read-back ends (it does not wait forever) and refuses.
    follow_while_writing(&z, z.len() / 2).unwrap_err();
}

/// An archive whose manifest is `m` as given, then the database dump `db!` (what `crafted`
/// lists), so only the manifest decides.
fn with_manifest_json(dir: &Path, name: &str, m: &serde_json::Value, db: &[u8]) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    let json = serde_json::to_vec(m).unwrap();
    raw_entry(&mut b, tar::EntryType::Regular, MANIFEST, &json, None);
    raw_entry(&mut b, tar::EntryType::Directory, "db", b"", None);
    raw_entry(&mut b, tar::EntryType::Regular, "db/vikunja.db", db, None);
    let p = dir.join(name);
    std::fs::write(
        &p,
        zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    p
}

/// A manifest (as JSON) listing the `db` directory and the dump `db!`, hashed with BLAKE3, as
/// this build writes them.
fn blake3_manifest() -> serde_json::Value {
    let mut dir = file_rec("db", b"");
    dir.kind = EntryKind::Dir;
    dir.size = 0;
    dir.blake3 = None;
    serde_json::to_value(manifest(vec![dir, file_rec("db/vikunja.db", b"db!")])).unwrap()
}

/// The same as format 1 wrote it (before BLAKE3): no `hash` field, each file's sha256.
fn format1_manifest(db: &[u8]) -> serde_json::Value {
    let mut m = blake3_manifest();
    m["format"] = 1.into();
    m.as_object_mut().unwrap().remove("hash");
    let e = &mut m["entries"][1];
    e.as_object_mut().unwrap().remove("blake3");
    e["sha256"] = sha(db).into();
    m
}

#[test]
fn format_1_archives_sha256_still_verify_and_read_as_before() {
    let d = tempfile::tempdir().unwrap();
    let p = with_manifest_json(d.path(), "f1.tar.zst", &format1_manifest(b"db!"), b"db!");
    let m = read_manifest(&p).unwrap();
    assert_eq!((m.format, m.hash_algorithm()), (1, HashAlgorithm::Sha256));
    // What a restore reads: every entry's data, handed over as it is checked.
    let mut got = Vec::new();
    let walked = walk(&p, |e, r| {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        got.push((e.record.path.clone(), v));
        Ok(())
    })
    .unwrap();
    assert_eq!(walked, m);
    assert_eq!(got[1], ("db/vikunja.db".into(), b"db!".to_vec()));
    // Its sha256 is still checked: a changed entry is refused.
    let p = with_manifest_json(
        d.path(),
        "f1-bad.tar.zst",
        &format1_manifest(b"db!"),
        b"dB!",
    );
    let t = refused(&p);
    assert!(
        t.contains("`db/vikunja.db` does not match its sha256"),
        "{t}"
    );
    // A gzip archive of format 1 as well (its entries are always hashed again).
    let plain = zstd::decode_all(&std::fs::read(d.path().join("f1.tar.zst")).unwrap()[..]).unwrap();
    let gz = d.path().join("f1.tar.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&plain).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    assert_eq!(walk(&gz, |_, _| Ok(())).unwrap().format, 1);
}

#[test]
fn new_archives_name_blake3_and_a_damaged_entry_is_refused() {
    let d = tempfile::tempdir().unwrap();
    for c in [Compression::Zstd, Compression::Gzip] {
        let p = good(d.path(), c);
        let m = read_manifest(&p).unwrap();
        assert_eq!(m.format, FORMAT);
        assert_eq!(m.hash.as_deref(), Some("blake3"));
        let rec = m
            .entries
            .iter()
            .find(|e| e.path == "db/vikunja.db")
            .unwrap();
        // b3sum's hex of the data (what `b3sum -c` compares).
        assert_eq!(rec.blake3.as_deref(), Some(b3(b"hello").as_str()));
        assert_eq!(rec.sha256, None);
        // One byte of the data changed, the compression intact: refused by the blake3.
        let mut plain = Vec::new();
        open(&p).unwrap().read_to_end(&mut plain).unwrap();
        let at = plain.windows(5).position(|w| w == b"hello").unwrap();
        plain[at + 4] = b'O';
        let bad = d.path().join(format!("bad.{}", extension(c)));
        std::fs::write(&bad, compress_to_vec(&plain, c).unwrap()).unwrap();
        let t = refused(&bad);
        assert!(
            t.contains("`db/vikunja.db` does not match its blake3"),
            "{t}"
        );
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn hostile_hash_fields_are_refused_from_the_manifest_alone() {
    let d = tempfile::tempdir().unwrap();
    let long = format!("md5\u{1b}[31m{}", "x".repeat(200));
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, Vec<String>)> = vec![
        (
            "unknown algorithm",
            Box::new(move |m| m["hash"] = long.clone().into()),
            vec![
                "names the hash `md5\\x1b[31mxxx".into(),
                "… (208 bytes)`, which launch-tui does not know".into(),
            ],
        ),
        (
            "no algorithm",
            Box::new(|m| {
                m.as_object_mut().unwrap().remove("hash");
            }),
            vec!["of format 2 names no hash algorithm".into()],
        ),
        (
            "format 2 asking for sha256",
            Box::new(|m| {
                m["hash"] = "sha256".into();
                let e = &mut m["entries"][1];
                e["sha256"] = e["blake3"].clone();
                e.as_object_mut().unwrap().remove("blake3");
            }),
            vec!["names the hash `sha256`: since format 2".into()],
        ),
        (
            "missing hash",
            Box::new(|m| {
                m["entries"][1].as_object_mut().unwrap().remove("blake3");
            }),
            vec!["entry `db/vikunja.db` has no blake3".into()],
        ),
        (
            "short hash",
            Box::new(|m| m["entries"][1]["blake3"] = "abc\u{7}".into()),
            vec!["has the blake3 `abc\\x07`, which is not 64 lowercase hex digits".into()],
        ),
        (
            "not hex",
            Box::new(|m| m["entries"][1]["blake3"] = "g".repeat(64).into()),
            vec!["which is not 64 lowercase hex digits".into()],
        ),
        (
            "upper case",
            Box::new(|m| m["entries"][1]["blake3"] = b3(b"db!").to_uppercase().into()),
            vec!["which is not 64 lowercase hex digits".into()],
        ),
        (
            "a sha256 beside the blake3",
            Box::new(|m| m["entries"][1]["sha256"] = sha(b"db!").into()),
            vec![
                "carries a sha256 (`".into(),
                "hashed with blake3: one archive uses one algorithm".into(),
            ],
        ),
        (
            "a sha256 instead of the blake3",
            Box::new(|m| {
                let e = &mut m["entries"][1];
                e.as_object_mut().unwrap().remove("blake3");
                e["sha256"] = sha(b"db!").into();
            }),
            vec!["carries a sha256".into()],
        ),
        (
            "a hashed directory",
            Box::new(|m| m["entries"][0]["blake3"] = b3(b"").into()),
            vec!["entry `db` is a Dir but carries a blake3".into()],
        ),
    ];
    for (what, edit, expect) in cases {
        let mut m = blake3_manifest();
        edit(&mut m);
        let p = with_manifest_json(d.path(), "h.tar.zst", &m, b"db!");
        let e = read_manifest(&p).unwrap_err();
        assert!(is_archive_problem(&e), "{what}: {e:#}");
        let t = refused(&p);
        for x in &expect {
            assert!(t.contains(x.as_str()), "{what}: {x:?} not in {t}");
        }
        assert!(t.contains("\n  help: "), "{what}: {t}");
    }
    // Format 1 with BLAKE3 fields, where its reader checks sha256: refused, not waved through.
    let mut m = format1_manifest(b"db!");
    m["hash"] = "blake3".into();
    let t = refused(&with_manifest_json(d.path(), "h1.tar.zst", &m, b"db!"));
    assert!(
        t.contains("is of format 1 (sha256) but names the hash `blake3`"),
        "{t}"
    );
    let mut m = format1_manifest(b"db!");
    let e = &mut m["entries"][1];
    e.as_object_mut().unwrap().remove("sha256");
    e["blake3"] = b3(b"db!").into();
    let t = refused(&with_manifest_json(d.path(), "h2.tar.zst", &m, b"db!"));
    assert!(
        t.contains("carries a blake3 (`") && t.contains("hashed with sha256"),
        "{t}"
    );
    // The untouched manifests pass.
    walk(
        &with_manifest_json(d.path(), "ok2.tar.zst", &blake3_manifest(), b"db!"),
        |_, _| Ok(()),
    )
    .unwrap();
}

/// The database name a manifest records reaches mongorestore's namespace options: anything
/// but a plain name is the archive's problem (exit 2), before anything is read or restored.
#[test]
fn a_hostile_database_name_is_refused() {
    for bad in ["x'; rm -rf / #", "a.*", "$db$", "chat\nx", &"n".repeat(71)] {
        let mut m = manifest(vec![file_rec("db/vikunja.db", b"db!")]);
        m.database.name = Some(bad.to_string());
        let e = check_links(&m).unwrap_err();
        assert!(is_archive_problem(&e), "{bad:?}: {e:#}");
        assert!(
            format!("{e:#}").contains("names the dumped database"),
            "{e:#}"
        );
    }
    let mut m = manifest(vec![file_rec("db/vikunja.db", b"db!")]);
    m.database.name = Some("librechat_green".into());
    check_links(&m).unwrap();
    assert_eq!(m.database.source(&m.instance).unwrap(), "librechat_green");
}
