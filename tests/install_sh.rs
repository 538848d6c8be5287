//! install.sh, run under dash as users run it (`sh -c "$(curl ...)"`), against signed dists
//! made by the real scripts/release.sh (fake binaries, a throwaway minisign key) and served by a
//! local HTTPS server with a test CA: it installs, upgrades, and refuses every bad download,
//! a non-root user, an unsupported architecture and a host without Proxmox VE, leaving nothing
//! installed. The last test runs it in a fresh pve-lab container (Debian without Rust).

#[path = "support/dist.rs"]
mod dist;
#[path = "support/https_server.rs"]
mod https_server;
#[path = "support/lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use dist::{Dists, Mirror, Tamper};
use https_server::HttpsServer;

const NEW: &str = "0.2.0";
const OLD: &str = "0.0.9";

struct Fixture {
    dists: Arc<Dists>,
    server: HttpsServer,
    ca: PathBuf,
}

fn mirrors() -> Vec<Mirror> {
    let m = |name, tamper| Mirror {
        name,
        latest: NEW,
        tamper,
    };
    vec![
        m("good", Tamper::None),
        m("badsum", Tamper::Checksum),
        m("badsig", Tamper::Signature),
        m("truncated", Tamper::Truncate),
        m("truncscript", Tamper::TruncateScript),
    ]
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dists = Arc::new(Dists::build(&[NEW, OLD]));
        let server = dist::serve(dists.clone(), mirrors(), std::net::Ipv4Addr::LOCALHOST);
        let ca = dist::write_ca(&server, dists.dir.path());
        Fixture { dists, server, ca }
    })
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `dash -c "$(cat install.sh)"` with the installer's settings pointed at the test mirror.
/// `script` is the install.sh to run (a served copy), `env` adds or overrides settings.
fn install(script: &[u8], bin: &Path, mirror: &str, env: &[(&str, &str)]) -> Output {
    let f = fixture();
    let mut cmd = Command::new("dash");
    cmd.arg("-c")
        .arg(String::from_utf8_lossy(script).into_owned())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("LAUNCH_DOWNLOAD_URL", dist::base_url(&f.server, mirror))
        .env("LAUNCH_CA_FILE", &f.ca)
        .env("LAUNCH_INSTALL_DIR", bin)
        .env("LAUNCH_NOT_PVE", "1")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn served_script(mirror: &str) -> Vec<u8> {
    let f = fixture();
    let c = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(f.server.pki.ca_pem.as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let r = c
        .get(format!(
            "{}/latest/download/install.sh",
            dist::base_url(&f.server, mirror)
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.bytes().unwrap().to_vec()
}

fn version_of(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_nothing_installed(bin: &Path, out: &Output, says: &str) {
    assert!(!out.status.success(), "{}", text(out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "expected {says:?}:\n{}", text(out));
    assert!(err.contains("nothing was installed"), "{}", text(out));
    let left: Vec<_> = std::fs::read_dir(bin)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        bin.display()
    );
}

#[test]
fn installs_then_a_rerun_upgrades_keeping_the_previous() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let script = served_script("good");
    // First a pinned older release, checked with openssl and fetched with wget...
    let out = install(
        &script,
        &bin,
        "good",
        &[
            ("LAUNCH_VERSION", OLD),
            ("LAUNCH_VERIFIER", "openssl"),
            ("LAUNCH_DOWNLOADER", "wget"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature ok (openssl)"), "{err}");
    assert!(
        err.contains(&format!("installed launch-tui {OLD}")),
        "{err}"
    );
    assert!(err.contains("no terminal"), "{err}");
    assert_eq!(
        version_of(&bin.join("launch-tui")),
        format!("launch-tui {OLD}")
    );
    assert!(!bin.join("launch-tui.previous").exists());

    // ...then the served install.sh again (pinned to its own release, the newest), with
    // minisign and curl: an upgrade in place, the old binary kept.
    let out = install(
        &script,
        &bin,
        "good",
        &[
            ("LAUNCH_VERIFIER", "minisign"),
            ("LAUNCH_DOWNLOADER", "curl"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature ok (minisign)"));
    assert_eq!(
        version_of(&bin.join("launch-tui")),
        format!("launch-tui {NEW}")
    );
    assert_eq!(
        version_of(&bin.join("launch-tui.previous")),
        format!("launch-tui {OLD}")
    );
    // Nothing staged is left beside them.
    let mut names: Vec<String> = std::fs::read_dir(&bin)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["launch-tui", "launch-tui.previous"]);
}

#[test]
fn the_served_script_is_stamped_with_its_release_and_key() {
    let f = fixture();
    let script = String::from_utf8(served_script("good")).unwrap();
    assert!(script.contains(&format!("\nDEFAULT_VERSION='{NEW}'\n")));
    assert!(script.contains(&format!("\nRELEASE_PUBKEY='{}'\n", f.dists.pubkey)));
    // And the repository's copy carries the project's key (the one the binary embeds).
    let repo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh")).unwrap();
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/keys/launch-release.pub"
    ))
    .unwrap();
    let key = key.lines().nth(1).unwrap();
    assert!(repo.contains(&format!("\nRELEASE_PUBKEY='{key}'\n")));
}

#[test]
fn refuses_a_checksum_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let out = install(&served_script("good"), &bin, "badsum", &[]);
    assert_nothing_installed(
        &bin,
        &out,
        "checksum mismatch for launch-tui-x86_64-linux.tar.gz",
    );
}

#[test]
fn refuses_a_bad_signature_with_either_verifier() {
    for verifier in ["openssl", "minisign"] {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        let out = install(
            &served_script("good"),
            &bin,
            "badsig",
            &[("LAUNCH_VERIFIER", verifier)],
        );
        assert_nothing_installed(&bin, &out, "bad signature: SHA256SUMS is not signed");
    }
    // Signed by another key: the dist is fine, but install.sh embeds another key.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let repo_script = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh")).unwrap();
    let out = install(
        &repo_script,
        &bin,
        "good",
        &[("LAUNCH_VERIFIER", "openssl")],
    );
    assert_nothing_installed(&bin, &out, "signed with another key");
}

#[test]
fn refuses_a_truncated_download_and_a_truncated_script_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let out = install(&served_script("good"), &bin, "truncated", &[]);
    assert_nothing_installed(&bin, &out, "checksum mismatch");

    // Half of install.sh: `main "$@"` is on the last line, so nothing runs at all.
    let half = served_script("truncscript");
    let out = install(&half, &bin, "good", &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("launch-install:"),
        "{}",
        text(&out)
    );
    assert!(!bin.exists());
}

#[test]
fn refuses_a_missing_release() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let out = install(
        &served_script("good"),
        &bin,
        "good",
        &[("LAUNCH_VERSION", "7.7.7")],
    );
    assert_nothing_installed(&bin, &out, "download failed: https://");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/download/v7.7.7/SHA256SUMS"));
}

#[test]
fn refuses_a_non_root_user() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let f = fixture();
    let script = String::from_utf8(served_script("good")).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "dash",
            "-c",
        ])
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("LAUNCH_DOWNLOAD_URL", dist::base_url(&f.server, "good"))
        .env("LAUNCH_INSTALL_DIR", &bin)
        .env("LAUNCH_NOT_PVE", "1")
        .output()
        .unwrap();
    assert_nothing_installed(&bin, &out, "must be installed as root");
}

#[test]
fn refuses_an_unsupported_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let out = install(
        &served_script("good"),
        &bin,
        "good",
        &[("LAUNCH_ARCH", "aarch64")],
    );
    assert_nothing_installed(&bin, &out, "unsupported architecture: aarch64");
}

#[test]
fn refuses_a_host_without_proxmox_unless_told() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let out = install(
        &served_script("good"),
        &bin,
        "good",
        &[("LAUNCH_NOT_PVE", "")],
    );
    assert_nothing_installed(&bin, &out, "does not run Proxmox VE");
    assert!(String::from_utf8_lossy(&out.stderr).contains("LAUNCH_NOT_PVE=1"));
}

#[test]
fn refuses_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let mut cmd = Command::new("dash");
    let out = cmd
        .arg("-c")
        .arg(String::from_utf8(served_script("good")).unwrap())
        .env("LAUNCH_DOWNLOAD_URL", "http://127.0.0.1:9/mirror")
        .env("LAUNCH_INSTALL_DIR", &bin)
        .env("LAUNCH_NOT_PVE", "1")
        .output()
        .unwrap();
    assert_nothing_installed(&bin, &out, "anything but HTTPS");
}

/// On a terminal (a tmux pane of this test's own) with stdin not the terminal, as with
/// `curl ... | sh`, it starts launch-tui on /dev/tty after installing.
#[test]
fn starts_launch_tui_on_the_terminal() {
    use std::time::{Duration, Instant};
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let script = tmp.path().join("install.sh");
    std::fs::write(&script, served_script("good")).unwrap();
    let socket = format!("launch-installsh-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux (apt-get install tmux)");
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .output();
        }
    }
    let _kill = Kill(socket.clone());
    let command = format!(
        "cat '{script}' | env LAUNCH_DOWNLOAD_URL='{url}' LAUNCH_CA_FILE='{ca}' LAUNCH_INSTALL_DIR='{bin}' LAUNCH_NOT_PVE=1 dash; echo \"installer exited with $?\"; sleep 3600",
        script = script.display(),
        url = dist::base_url(&f.server, "good"),
        ca = f.ca.display(),
        bin = bin.display(),
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "i",
        "-x",
        "150",
        "-y",
        "30",
        &command,
    ]);
    let start = Instant::now();
    let screen = loop {
        let screen = tmux(&["capture-pane", "-p", "-J", "-t", "i"]);
        if screen.contains("installer exited with") {
            break screen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the installer did not finish:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(screen.contains("starting launch-tui"), "{screen}");
    assert!(
        screen.contains(&format!("launch-tui {NEW} started on /dev/tty")),
        "{screen}"
    );
    assert!(screen.contains("installer exited with 0"), "{screen}");
}

#[test]
fn shellcheck_is_clean() {
    let out = Command::new("shellcheck")
        .args(["-s", "sh"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .output()
        .expect("shellcheck (apt-get install shellcheck)");
    assert!(out.status.success(), "{}", text(&out));
}

/// In a fresh lab container (Debian 12 minbase with curl and ca-certificates; no Rust, no
/// minisign): the one-liner as a user types it, fetching from the lab bridge's address.
#[test]
fn runs_in_a_fresh_debian_container_with_only_curl() {
    let lab = lab::Lab::start();
    let client = lab_client(&lab);
    let vmid = 910u32;
    create_container(&lab, &client, vmid);

    let gateway = gateway_ip();
    let f = fixture();
    let server = dist::serve(f.dists.clone(), mirrors(), gateway);
    let ca = server.pki.write_ca(lab.path());
    lab.pct_ok(&[
        "push",
        &vmid.to_string(),
        ca.to_str().unwrap(),
        "/root/mirror-ca.pem",
    ]);
    let base = format!("https://{}/good", server.addr);
    // No Rust, no minisign: Debian's base with curl (and openssl, which ca-certificates pulls in).
    let check = lab.pct(&[
        "exec",
        &vmid.to_string(),
        "--",
        "sh",
        "-c",
        "for c in cargo rustc minisign curl openssl; do command -v $c || echo no-$c; done",
    ]);
    let tools = String::from_utf8_lossy(&check.stdout);
    for absent in ["no-cargo", "no-rustc", "no-minisign"] {
        assert!(tools.contains(absent), "{tools}");
    }
    assert!(
        tools.contains("/curl") && tools.contains("/openssl"),
        "{tools}"
    );

    let one_liner = format!(
        "sh -c \"$(curl --cacert /root/mirror-ca.pem -fsSL {base}/latest/download/install.sh)\" \
         && launch-tui --version"
    );
    let out = lab.pct(&[
        "exec",
        &vmid.to_string(),
        "--",
        "env",
        &format!("LAUNCH_DOWNLOAD_URL={base}"),
        "LAUNCH_CA_FILE=/root/mirror-ca.pem",
        "LAUNCH_NOT_PVE=1",
        "sh",
        "-c",
        &one_liner,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature ok (openssl)"), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("launch-tui {NEW}")
    );
}

fn gateway_ip() -> std::net::Ipv4Addr {
    host_ip(1)
}

fn lab_client(lab: &lab::Lab) -> launch::pve::Client {
    use launch::pve::{ApiToken, Auth, Client, HttpsTransport, TlsMode};
    let token = ApiToken::from_file(&lab.path().join("token")).unwrap();
    let transport = HttpsTransport::new(
        &format!("127.0.0.1:{}", lab.port),
        Auth::Token(token),
        TlsMode::Pinned(lab.fingerprint().parse().unwrap()),
    )
    .unwrap();
    Client::new(Box::new(transport))
}

/// A container from the lab's Debian 12 template on the bridge, started, systemd up.
fn create_container(lab: &lab::Lab, client: &launch::pve::Client, vmid: u32) {
    use launch::pve::{CreateCt, Features, IpConfig, NetConfig, RootFs};
    let template = "debian-12-standard_12.7-1_amd64.tar.zst";
    let timeout = std::time::Duration::from_secs(1200);
    let have = client
        .storage_content("pve", "local", None)
        .unwrap()
        .iter()
        .any(|c| c.volid.ends_with(template));
    if !have {
        let upid = client.download_appliance("pve", "local", template).unwrap();
        client.wait_task(&upid, timeout, &mut |_| {}).unwrap();
    }
    let ct = CreateCt {
        vmid,
        ostemplate: format!("local:vztmpl/{template}"),
        hostname: "oneliner".into(),
        cores: 1,
        memory: 512,
        swap: 0,
        rootfs: RootFs {
            storage: "local-lvm".into(),
            size_gib: 2,
        },
        net0: NetConfig {
            name: "eth0".into(),
            bridge: "vmbr0".into(),
            ip: IpConfig::Static {
                cidr: format!("{}/24", host_ip(210)),
                gw: Some(gateway_ip()),
            },
            tag: None,
            mtu: None,
            firewall: false,
        },
        features: Features { nesting: true },
        tags: Vec::new(),
        description: None,
        onboot: false,
        start: true,
        nameserver: Vec::new(),
        searchdomain: None,
        ssh_public_keys: None,
        password: None,
        timezone: None,
    };
    let upid = client.create_ct("pve", &ct).unwrap();
    client.wait_task(&upid, timeout, &mut |_| {}).unwrap();
    // The proof that it booted (whatever the final state, running or degraded).
    lab.pct(&[
        "exec",
        &vmid.to_string(),
        "--",
        "systemctl",
        "is-system-running",
        "--wait",
    ]);
}

fn host_ip(n: u32) -> std::net::Ipv4Addr {
    let subnet = lab::subnet();
    let net: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(net) | n)
}
