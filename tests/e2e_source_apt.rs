//! End to end: a profile that builds its app from a source archive (`kind: source`) and adds a
//! signed apt repository of its own (`apt_sources:`), through the real binary against pve-lab.
//!
//! Real: the launch-tui binary; a Debian 12 container (systemd-nspawn) on the lab's bridge with
//! systemd, Debian's nginx and python3; a signed apt repository the test makes on the host
//! (`dpkg-deb` builds a tiny .deb, `apt-ftparchive` writes Packages and Release, `gpg --batch`
//! makes a throwaway ed25519 key and clearsigns InRelease), fetched and verified by the
//! container's own apt (`apt-get update --error-on=any`, the key from the profile in
//! `Signed-By:`); the source archives (tar.gz made by the host's tar) downloaded and checked
//! on the host by launch-tui's download-and-verify path and repacked by its tree check; the
//! build commands run in the container as the app's user; the blue-green update and the
//! rollback.
//! Stood in: Proxmox VE (pve-lab), and the vendor's servers: one small HTTP server of the
//! test's own on the lab bridge's address (the first host of the lab's subnet), which the
//! container reaches for the repository and the host for the archives. The app is a Python
//! script the build makes from a template; its "compiling" is `sed`.
//!
//! Not covered: HTTPS repositories (the same apt code, TLS added by apt), apt sources re-applied
//! on update (they are written at install only), a runtime such as Node.js from a vendor
//! repository.
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/lab.rs"]
mod lab;
#[path = "support/vendor.rs"]
mod vendor;
#[path = "support/www.rs"]
mod www;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lab::{http_get, launch, text, Config, Lab};
use vendor::{bridge_ip, sh, sha256_of, Gpg};
use www::Server;

const NAME: &str = "srcdemo";
const GREETING: &str = "hello from the signed repository";

/// What the vendor serves: the signed repository under `repo/` and the source archives.
struct Vendor {
    www: tempfile::TempDir,
    signer: Gpg,
    stranger: Gpg,
}

/// One source archive: `VERSION`, the app's template and its build script.
fn source_archive(www: &Path, file: &str, version: &str, build_sh: &str) -> PathBuf {
    let work = tempfile::tempdir().unwrap();
    let top = work.path().join(format!("srcdemo-{version}"));
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(top.join("VERSION"), version).unwrap();
    std::fs::write(top.join("build.sh"), build_sh).unwrap();
    std::fs::write(
        top.join("app.py.in"),
        r#"#!/usr/bin/python3
"""Source Demo: answers its version and the greeting its apt package installed."""
import http.server, json, sys

VERSION = "@VERSION@"
GREETING = open("/usr/share/srcdemo-greeting/greeting.txt").read().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": VERSION, "greeting": GREETING}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#,
    )
    .unwrap();
    let out = www.join("src").join(file);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    sh(Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(work.path())
        .arg(format!("srcdemo-{version}")));
    out
}

const GOOD_BUILD: &str = "#!/bin/sh\nset -e\nmkdir -p bin\nsed \"s/@VERSION@/$(cat VERSION)/\" app.py.in > bin/srcdemo\nchmod 0755 bin/srcdemo\necho built bin/srcdemo\n";
const BAD_BUILD: &str = "#!/bin/sh\necho compiling app.c\necho \"app.c:3: error: expected ';' before '}' token\" >&2\nexit 1\n";

impl Vendor {
    fn build() -> Vendor {
        let www = tempfile::tempdir().unwrap();
        let signer = Gpg::new("Launch e2e vendor (throwaway) <vendor@launch.invalid>");
        let stranger = Gpg::new("Launch e2e stranger (throwaway) <stranger@launch.invalid>");
        // The package: one file the app reads.
        let pkg = tempfile::tempdir().unwrap();
        let root = pkg.path().join("srcdemo-greeting");
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/srcdemo-greeting")).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            "Package: srcdemo-greeting\nVersion: 1.0\nArchitecture: all\nMaintainer: Launch tests <tests@launch.invalid>\nDescription: the greeting of Launch's source demo\n",
        )
        .unwrap();
        std::fs::write(
            root.join("usr/share/srcdemo-greeting/greeting.txt"),
            format!("{GREETING}\n"),
        )
        .unwrap();
        let repo = www.path().join("repo");
        vendor::build_deb(&root, &repo.join("pool/main/srcdemo-greeting_1.0_all.deb"));
        vendor::sign_repo(&repo, "stable", &signer);
        source_archive(www.path(), "srcdemo-1.0.0.tar.gz", "1.0.0", GOOD_BUILD);
        source_archive(www.path(), "srcdemo-1.1.0.tar.gz", "1.1.0", GOOD_BUILD);
        source_archive(www.path(), "broken-1.0.0.tar.gz", "1.0.0", BAD_BUILD);
        Vendor {
            www,
            signer,
            stranger,
        }
    }

    fn sha(&self, file: &str) -> String {
        sha256_of(&self.www.path().join("src").join(file))
    }
}

/// Writes the test profile into CONFIG/profiles/srcdemo/ with these versions (version, archive
/// file, pinned sum), the repository's address and `key` as its signing key.
fn write_profile(cfg: &Config, server: &Server, versions: &[(String, String, String)], key: &str) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/srcdemo");
    let dir = cfg.path().join("profiles").join(NAME);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["srcdemo.service.j2", "site.conf.j2"] {
        std::fs::copy(fixture.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("vendor.asc"), key).unwrap();
    let yaml = std::fs::read_to_string(fixture.join("profile.yaml")).unwrap();
    let start = yaml.find("versions:\n").unwrap();
    let end = yaml.find("\nquestions:").unwrap();
    let mut block = String::from("versions:\n");
    for (v, file, sha) in versions {
        block.push_str(&format!(
            "  - version: {v}\n    source:\n      url: {}/src/{file}\n      sha256: {sha}\n",
            server.base
        ));
    }
    let yaml = format!("{}{}{}", &yaml[..start], block, &yaml[end..]).replace(
        "uri: https://apt.example.org/srcdemo",
        &format!("uri: {}/repo", server.base),
    );
    std::fs::write(dir.join("profile.yaml"), yaml).unwrap();
}

fn install(lab: &Lab, cfg: &Config, extra: &str) -> std::process::Output {
    let answers = cfg.path().join("answers.yaml");
    std::fs::write(
        &answers,
        format!("name: {NAME}\nversion: 1.0.0\npublic_url: http://srcdemo.lab.example\n{extra}"),
    )
    .unwrap();
    let t = Instant::now();
    let out = launch(
        lab,
        cfg,
        &[
            "install",
            NAME,
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    eprintln!("install ({extra:?}): {:.1} s", t.elapsed().as_secs_f64());
    out
}

/// A failed install: exit 1, every `want` in its stderr, no container and no record left.
fn assert_refused(lab: &Lab, cfg: &Config, out: &std::process::Output, want: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("refused as expected:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    for w in want {
        assert!(err.contains(w), "`{w}` missing:\n{}", text(out));
    }
    assert_eq!(
        lab.vmids(),
        Vec::<u32>::new(),
        "no container is left behind"
    );
    assert!(!cfg.path().join(format!("instances/{NAME}.yaml")).exists());
}

/// `status NAME --json`'s object (whatever its exit code: a check may fail on purpose).
fn status_json(lab: &Lab, cfg: &Config, label: &str) -> serde_json::Value {
    let out = launch(lab, cfg, &["status", NAME, "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("status ({label}): {stdout}");
    serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("status --json ({label}): {e}\n{}", text(&out)))
}

fn check<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["instances"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {v:#}"))
}

/// Replaces the profile's `health:` block (up to `unit:`) with `block`.
fn set_health(profile: &Path, block: &str) {
    let text = std::fs::read_to_string(profile).unwrap();
    let start = text.find("    health:\n").unwrap();
    let end = text[start..].find("    unit: ").unwrap() + start;
    std::fs::write(
        profile,
        format!("{}{}{}", &text[..start], block, &text[end..]),
    )
    .unwrap();
}

fn ct(lab: &Lab, vmid: &str, argv: &[&str]) -> String {
    let mut args = vec!["exec", vmid, "--"];
    args.extend_from_slice(argv);
    lab.pct_ok(&args).trim().to_string()
}

#[test]
fn a_source_build_with_a_signed_apt_source_installs_updates_and_refuses_what_is_wrong() {
    let lab = Lab::start();
    let vendor = Vendor::build();
    let server = Server::start(vendor.www.path().to_path_buf(), bridge_ip());
    let cfg = Config {
        dir: tempfile::tempdir().unwrap(),
    };
    let key = vendor.signer.armored_public_key();
    let good = |v: &str| (v.to_string(), format!("srcdemo-{v}.tar.gz"));
    let versions = |list: &[(String, String)]| -> Vec<(String, String, String)> {
        list.iter()
            .map(|(v, f)| (v.clone(), f.clone(), vendor.sha(f)))
            .collect()
    };
    let both = versions(&[good("1.0.0"), good("1.1.0")]);
    let started = Instant::now();

    // 1. Less memory than the build needs: refused before anything is created, --force or not.
    write_profile(&cfg, &server, &both, &key);
    let out = install(&lab, &cfg, "memory_mib: 320\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("below the 384 MiB the build of Source Demo needs"),
        "{}",
        text(&out)
    );
    assert_eq!(lab.vmids(), Vec::<u32>::new());

    // 2. The repository signed by a key other than the profile's: apt refuses it, the install
    // fails naming the source, and the container is removed.
    write_profile(&cfg, &server, &both, &vendor.stranger.armored_public_key());
    let out = install(&lab, &cfg, "");
    assert_refused(
        &lab,
        &cfg,
        &out,
        &[
            "apt source `srcdemo-vendor`",
            &format!("{}/repo", server.base),
        ],
    );

    // 3. A source archive whose sum is not the pinned one: refused on the host, before any
    // container exists.
    let mut wrong_sum = both.clone();
    wrong_sum[0].2 = vendor.sha("srcdemo-1.1.0.tar.gz");
    write_profile(&cfg, &server, &wrong_sum, &key);
    let out = install(&lab, &cfg, "");
    assert_refused(
        &lab,
        &cfg,
        &out,
        &["checksum failed", "srcdemo-1.0.0.tar.gz", "step `fetch`"],
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Creating container"),
        "{}",
        text(&out)
    );

    // 4. A build command that fails: named, with the last lines of its output.
    let broken = vec![(
        "1.0.0".to_string(),
        "broken-1.0.0.tar.gz".to_string(),
        vendor.sha("broken-1.0.0.tar.gz"),
    )];
    write_profile(&cfg, &server, &broken, &key);
    let out = install(&lab, &cfg, "");
    assert_refused(
        &lab,
        &cfg,
        &out,
        &[
            "build command 1 of 2 `sh build.sh` exited 1",
            "app.c:3: error: expected ';' before '}' token",
        ],
    );

    // 5. The real thing.
    write_profile(&cfg, &server, &both, &key);
    let out = install(&lab, &cfg, "");
    assert!(out.status.success(), "{}", text(&out));
    let rec: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(cfg.path().join(format!("instances/{NAME}.yaml"))).unwrap(),
    )
    .unwrap();
    let ip = rec["container"]["ip"].as_str().unwrap().to_string();
    let vmid = rec["container"]["vmid"].as_u64().unwrap().to_string();
    // The package came from the signed repository, through the files Launch wrote.
    assert_eq!(
        ct(
            &lab,
            &vmid,
            &["dpkg-query", "-W", "-f", "${Status}", "srcdemo-greeting"]
        ),
        "install ok installed"
    );
    assert_eq!(
        ct(
            &lab,
            &vmid,
            &[
                "stat",
                "-c",
                "%a %U",
                "/etc/apt/keyrings/launch-srcdemo-vendor.asc"
            ]
        ),
        "644 root"
    );
    let sources = ct(
        &lab,
        &vmid,
        &[
            "cat",
            "/etc/apt/sources.list.d/launch-srcdemo-vendor.sources",
        ],
    );
    assert!(
        sources.contains("Signed-By: /etc/apt/keyrings/launch-srcdemo-vendor.asc"),
        "{sources}"
    );
    // The build ran as the app's user, with HOME inside the release.
    let rel = "/opt/srcdemo/releases/1.0.0";
    assert_eq!(
        ct(
            &lab,
            &vmid,
            &["stat", "-c", "%U", &format!("{rel}/bin/srcdemo")]
        ),
        "srcdemo"
    );
    assert_eq!(
        ct(&lab, &vmid, &["cat", &format!("{rel}/built-by")]),
        "srcdemo"
    );
    assert_eq!(
        ct(&lab, &vmid, &["cat", &format!("{rel}/build-home")]),
        format!("{rel}/.home")
    );
    // The app answers through nginx, with the greeting its package installed.
    let (status, body) = http_get(&format!("http://{ip}/api/version"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["greeting"], GREETING);

    // 5b. Status checks the active slot in the profile's form (HTTP with a JSON match) and
    // reads the running version by the profile's command in the container.
    let v = status_json(&lab, &cfg, "HTTP + JSON");
    let slot = check(&v, "http-slot");
    assert_eq!(slot["status"], "ok", "{v:#}");
    let msg = slot["message"].as_str().unwrap();
    assert!(
        msg.contains("/healthz answers 200 with `greeting` = \"hello from the signed repository\"")
            && msg.contains("(http check)"),
        "{msg}"
    );
    assert_eq!(
        check(&v, "version")["message"],
        "1.0.0 (as recorded)",
        "{v:#}"
    );
    // The same instance with a TCP check, then a command check (passing, then failing): the
    // profile is read again by each status run; no new container.
    let profile = cfg.path().join(format!("profiles/{NAME}/profile.yaml"));
    let original = std::fs::read_to_string(&profile).unwrap();
    set_health(&profile, "    health:\n      tcp: true\n");
    let v = status_json(&lab, &cfg, "TCP");
    let slot = check(&v, "http-slot");
    assert_eq!(slot["status"], "ok", "{v:#}");
    assert_eq!(
        slot["message"],
        "127.0.0.1:8420 (tcp) answers a connection in the container (tcp check)"
    );
    assert_eq!(check(&v, "http-nginx")["status"], "ok", "{v:#}");
    set_health(
        &profile,
        "    health:\n      command: [python3, -c, 'import sys, urllib.request; urllib.request.urlopen(\"http://127.0.0.1:\" + sys.argv[1] + \"/healthz\")', '{port}']\n",
    );
    let v = status_json(&lab, &cfg, "command");
    let slot = check(&v, "http-slot");
    assert_eq!(slot["status"], "ok", "{v:#}");
    assert!(
        slot["message"]
            .as_str()
            .unwrap()
            .contains(" 8420` (as srcdemo) answers exit 0 in the container (command check)"),
        "{v:#}"
    );
    set_health(
        &profile,
        "    health:\n      command: [test, -f, /nonexistent]\n",
    );
    let v = status_json(&lab, &cfg, "failing command");
    let slot = check(&v, "http-slot");
    assert_eq!(slot["status"], "fail", "{v:#}");
    assert!(
        slot["message"].as_str().unwrap().contains(
            "`test -f /nonexistent` (as srcdemo) in the container: exit 1, expected exit 0"
        ),
        "{v:#}"
    );
    std::fs::write(&profile, original).unwrap();

    // 6. An update to the next version builds beside the running one, then switches.
    let t = Instant::now();
    let out = launch(
        &lab,
        &cfg,
        &["update", NAME, "--version", "1.1.0", "--watch", "3"],
    );
    eprintln!("update: {:.1} s", t.elapsed().as_secs_f64());
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    let built = log
        .find("build command 2 of 2")
        .expect("the update built 1.1.0");
    let held = log.find("Holding writes").expect("the update held writes");
    // The gate checked the new slot's JSON answer and read its version by the command.
    assert!(
        log.contains("is healthy (http check) and reports 1.1.0, read by command"),
        "{log}"
    );
    assert!(
        built < held,
        "the build ran before writes were held:\n{log}"
    );
    let (status, body) = http_get(&format!("http://{ip}/api/version"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], "1.1.0");
    assert_eq!(
        ct(
            &lab,
            &vmid,
            &[
                "stat",
                "-c",
                "%U",
                "/opt/srcdemo/releases/1.1.0/bin/srcdemo"
            ]
        ),
        "srcdemo"
    );
    // The release it replaced is still there, complete, for a rollback.
    ct(
        &lab,
        &vmid,
        &["test", "-f", "/opt/srcdemo/releases/1.0.0/.launch-complete"],
    );

    // 7. A rollback finds the release it goes back to complete (its mark) and builds nothing.
    let out = launch(&lab, &cfg, &["rollback", NAME, "--yes", "--watch", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("1.0.0 is already in the container"), "{log}");
    assert!(!log.contains("build command"), "{log}");
    let (status, body) = http_get(&format!("http://{ip}/api/version"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], "1.0.0");
    eprintln!("whole scenario: {:.1} s", started.elapsed().as_secs_f64());
}
