//! End to end: an app shipped as a whole directory tree (`kind: release` with
//! `strip_components`), checked by a TCP health check with its version read from a JSON field,
//! through install, status and a blue-green update; and a hostile tree refused with nothing
//! left behind.
//!
//! Real: the launch-tui binary; a Debian 12 container (systemd-nspawn) on the lab's bridge with
//! systemd, Debian's nginx and python3; the release archives (tar.gz made by the host's tar,
//! one with a `..` entry made by the tar crate) downloaded over loopback and checked on the
//! host by launch-tui's download-and-verify path, unpacked by its tree check; HTTP from the
//! host through nginx. Stood in: Proxmox VE (pve-lab), and the vendor's download server (a
//! small HTTP server of the test's own on loopback). The app is a Python script.
//!
//! What an attacker must not achieve: a release archive whose entries climb out of the release
//! directory (`..`) writes nothing anywhere: it is refused on the host before any container
//! exists.
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/lab.rs"]
mod lab;
#[path = "support/www.rs"]
mod www;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use lab::{http_get, launch, text, Config, Lab};
use www::Server;

const NAME: &str = "treedemo";

const APP: &str = r#"#!/usr/bin/python3
"""Tree Demo: answers its version and a file of its own tree, found beside this script."""
import http.server, json, os, sys

HERE = os.path.dirname(os.path.realpath(__file__))
VERSION = open(os.path.join(HERE, "..", "share", "VERSION")).read().strip()
DATA = open(os.path.join(HERE, "..", "share", "data", "greeting.txt")).read().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": VERSION, "greeting": DATA}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

const UNIT: &str = "# Written by launch-tui from profile treedemo (slot {{ slot }}).
[Unit]
Description=Tree Demo ({{ instance }}, slot {{ slot }})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={{ user }}
Group={{ user }}
WorkingDirectory={{ data_dir }}
ExecStart={{ release_dir ~ \"/bin/treedemo\" }} {{ port }}
Restart=on-failure
RestartSec=1s
TimeoutStopSec={{ drain_s }}
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
ReadWritePaths={{ data_dir }}

[Install]
WantedBy=multi-user.target
";

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// `treedemo-VERSION.tar.gz`: bin/treedemo, share/VERSION, share/data/greeting.txt and a
/// relative link share/current -> data/greeting.txt, under one top directory.
fn tree_archive(www: &Path, version: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let top = work.path().join(format!("treedemo-{version}"));
    std::fs::create_dir_all(top.join("bin")).unwrap();
    std::fs::create_dir_all(top.join("share/data")).unwrap();
    std::fs::write(top.join("bin/treedemo"), APP).unwrap();
    std::fs::write(top.join("share/VERSION"), format!("{version}\n")).unwrap();
    std::fs::write(
        top.join("share/data/greeting.txt"),
        format!("hello from the tree of {version}\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink("data/greeting.txt", top.join("share/current")).unwrap();
    let file = format!("treedemo-{version}.tar.gz");
    let st = Command::new("tar")
        .args(["--owner=0", "--group=0", "--mode=u+rwX,go+rX", "-czf"])
        .arg(www.join(&file))
        .arg("-C")
        .arg(work.path())
        .arg(format!("treedemo-{version}"))
        .status()
        .unwrap();
    assert!(st.success());
    file
}

/// An archive with a valid layout plus one entry that climbs out: `treedemo-6.6.6/../../evil`.
fn hostile_archive(www: &Path) -> String {
    let file = "treedemo-6.6.6.tar.gz".to_string();
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(www.join(&file)).unwrap(),
        flate2::Compression::default(),
    );
    let mut b = tar::Builder::new(gz);
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`: the raw name field, as a hostile tool would write it.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add("treedemo-6.6.6/bin/treedemo", APP.as_bytes(), 0o755);
    add("treedemo-6.6.6/share/VERSION", b"6.6.6\n", 0o644);
    add("treedemo-6.6.6/../../evil", b"pwned\n", 0o644);
    b.into_inner().unwrap().finish().unwrap();
    file
}

fn write_profile(cfg: &Config, base: &str, versions: &[(&str, &str, String)]) {
    let dir = cfg.path().join("profiles").join(NAME);
    std::fs::create_dir_all(&dir).unwrap();
    let site = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/srcdemo/site.conf.j2"),
    )
    .unwrap()
    .replace("profile srcdemo", "profile treedemo");
    std::fs::write(dir.join("site.conf.j2"), site).unwrap();
    std::fs::write(dir.join("treedemo.service.j2"), UNIT).unwrap();
    let mut yaml = String::from(
        "format: 2\nname: treedemo\ntitle: Tree Demo\ndescription: An app shipped as a directory tree, for Launch's tests.\n\
         resources:\n  minimum: { cores: 1, memory_mib: 256, disk_gib: 2 }\n  default: { cores: 1, memory_mib: 512, disk_gib: 2 }\n  update_free_mib: 256\n\
         os:\n  default: debian-12\n  supported: [debian-12]\nversions:\n",
    );
    for (version, file, sha) in versions {
        yaml.push_str(&format!(
            "  - version: {version}\n    artifacts:\n      amd64:\n        url: {base}/{file}\n        sha256: {sha}\n        format: tar.gz\n        binary: bin/treedemo\n"
        ));
    }
    yaml.push_str(
        "questions:\n  - key: public_url\n    prompt: Public URL\n    kind: url\n    default: http://treedemo.lab.example\n\
         roles:\n  public_url: public_url\n\
         databases:\n  default: none\n  supported: [none]\n\
         packages: [python3]\n\
         components:\n  - name: web\n    description: The demo app\n    install: { kind: release, binary: bin/treedemo, strip_components: 1 }\n    user: treedemo\n    port: 8430\n    green_port: 8431\n    location: /\n\
         \x20   health:\n      tcp: true\n      version: { path: /, field: version }\n    unit: treedemo.service.j2\n    drain_s: 2\n\
         nginx:\n  site: site.conf.j2\n\
         backup:\n  paths: []\n\
         update:\n  watch_s: 3\n  keep_releases: 2\n",
    );
    std::fs::write(dir.join("profile.yaml"), yaml).unwrap();
}

fn record(cfg: &Config) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(
        &std::fs::read_to_string(cfg.path().join(format!("instances/{NAME}.yaml"))).unwrap(),
    )
    .unwrap()
}

fn install(lab: &Lab, cfg: &Config, version: &str) -> std::process::Output {
    let answers = cfg.path().join("answers.yaml");
    std::fs::write(
        &answers,
        format!("name: {NAME}\nversion: {version}\npublic_url: http://treedemo.lab.example\n"),
    )
    .unwrap();
    launch(
        lab,
        cfg,
        &[
            "install",
            NAME,
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    )
}

fn served(ip: &str) -> serde_json::Value {
    let (s, body) = http_get(&format!("http://{ip}/"));
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_whole_tree_release_installs_updates_and_a_hostile_one_changes_nothing() {
    let lab = Lab::start();
    let www = tempfile::tempdir().unwrap();
    let v1 = tree_archive(www.path(), "1.0.0");
    let v2 = tree_archive(www.path(), "1.1.0");
    let bad = hostile_archive(www.path());
    let server = Server::start(www.path().to_path_buf(), Ipv4Addr::LOCALHOST);
    let cfg = Config {
        dir: tempfile::tempdir().unwrap(),
    };
    let sha = |f: &str| sha256_of(&www.path().join(f));
    write_profile(
        &cfg,
        &server.base,
        &[
            ("1.0.0", &v1, sha(&v1)),
            ("1.1.0", &v2, sha(&v2)),
            ("6.6.6", &bad, sha(&bad)),
        ],
    );
    let out = launch(&lab, &cfg, &["profiles", "lint", NAME]);
    assert!(out.status.success(), "lint: {}", text(&out));

    // 1. The hostile tree: its sum is the pinned one, so the tree check reads it on the host and
    //    refuses the entry that climbs out, before any container exists.
    let out = install(&lab, &cfg, "6.6.6");
    eprintln!("install of the hostile tree:\n{}", text(&out));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("../../evil"), "{}", text(&out));
    assert!(text(&out).contains("step `fetch`"), "{}", text(&out));
    assert!(!text(&out).contains("Creating container"), "{}", text(&out));
    assert!(
        lab.vmids().is_empty(),
        "a container was left: {:?}",
        lab.vmids()
    );
    assert!(!cfg.path().join(format!("instances/{NAME}.yaml")).exists());

    // 2. Install the tree: every file in place, the link kept, the app serving through nginx,
    //    healthy by its TCP check.
    let out = install(&lab, &cfg, "1.0.0");
    eprintln!("install:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = record(&cfg);
    let ip = r["container"]["ip"].as_str().unwrap().to_string();
    let vmid = r["container"]["vmid"].as_u64().unwrap().to_string();
    let v = served(&ip);
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["greeting"], "hello from the tree of 1.0.0");
    let rel = format!("/opt/{NAME}/releases/1.0.0");
    let listing = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "sh",
        "-c",
        &format!("cd {rel} && find . | sort && readlink share/current && cat share/current"),
    ]);
    for want in [
        "./bin/treedemo",
        "./share/VERSION",
        "./share/data/greeting.txt",
        "data/greeting.txt",
        "hello from the tree of 1.0.0",
    ] {
        assert!(listing.lines().any(|l| l == want), "{want} in:\n{listing}");
    }
    assert!(
        !listing.contains("treedemo-1.0.0"),
        "the top directory was stripped:\n{listing}"
    );
    let out = launch(&lab, &cfg, &["status", NAME, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let status: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let checks = status["instances"][0]["checks"].as_array().unwrap();
    let slot = checks
        .iter()
        .find(|c| c["id"] == "http-slot")
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        slot["message"].as_str().unwrap().contains("(tcp)"),
        "the slot is checked over TCP: {slot}"
    );

    // 3. A blue-green update to the next tree; the version is read from the JSON field.
    let out = launch(&lab, &cfg, &["update", NAME, "--version", "1.1.0", "--yes"]);
    eprintln!("update:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = served(&ip);
    assert_eq!(v["version"], "1.1.0");
    assert_eq!(v["greeting"], "hello from the tree of 1.1.0");
    assert_eq!(record(&cfg)["app_version"], "1.1.0");
    let kept = lab.pct_ok(&["exec", &vmid, "--", "ls", &format!("/opt/{NAME}/releases")]);
    assert!(
        kept.lines().any(|l| l == "1.0.0") && kept.lines().any(|l| l == "1.1.0"),
        "both releases kept for a rollback: {kept}"
    );
    // Nothing of the hostile archive reached the host's or the container's filesystem root.
    let evil = lab.pct(&[
        "exec",
        &vmid,
        "--",
        "sh",
        "-c",
        "ls /evil /opt/evil /opt/treedemo/evil",
    ]);
    assert!(!evil.status.success(), "{}", text(&evil));
}
