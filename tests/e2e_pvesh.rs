//! End to end over `--transport pvesh`, the default on a real node, on a two-node cluster
//! (pve-lab's `pve` and a config-only `pve2`): install (with a root password), update, status,
//! a migration to pve2 and back, and uninstall through the lab's `pvesh`, which runs workers in the
//! foreground and answers with pve-manager's output and exit codes.
//!
//! Every e2e file runs over pvesh unless it prefers HTTPS (e2e_update and e2e_reconfigure do,
//! so CI covers both transports); `LAUNCH_E2E_TRANSPORT=https|pvesh` runs all over one. This
//! file adds what only a node's own pvesh meets: another node refused, a migration, the root
//! password kept off every argv.

#[path = "support/lab.rs"]
mod lab;

use std::os::unix::fs::PermissionsExt;

use lab::{fixture_profile, http_get, launch_via, text, Config, Lab, Releases, Transport};
use pve_lab::read_access_log;

const ROOT_PASSWORD: &str = "Rt-e2e-pass:7f3K";

/// A `pct` and a `pvesh` in front of the lab's that append every argv they get to a file, so
/// the test can prove what reached a process's command line.
fn recording_path(lab: &Lab, dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let record = dir.join("argv.log");
    for tool in ["pct", "pvesh"] {
        let script = dir.join(tool);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '{tool} %s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                record.display(),
                lab.path().join("bin").join(tool).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (format!("{}:{}", dir.display(), lab.path_env()), record)
}

fn version_at(ip: &str) -> String {
    let (status, info) = http_get(&format!("http://{ip}/api/v1/info"));
    assert_eq!(status, 200, "{info}");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    v["version"].as_str().unwrap().to_string()
}

/// Whether `password` matches root's hash in the container's /etc/shadow (checked on the host
/// with libc's crypt through perl, which knows Debian's yescrypt).
fn root_password_matches(lab: &Lab, vmid: &str, password: &str) -> bool {
    let shadow = lab.pct_ok(&["exec", vmid, "--", "cat", "/etc/shadow"]);
    let hash = shadow
        .lines()
        .find_map(|l| l.strip_prefix("root:"))
        .and_then(|rest| rest.split(':').next())
        .unwrap()
        .to_string();
    assert!(hash.starts_with('$'), "root has no password hash: {hash}");
    let out = std::process::Command::new("perl")
        .args([
            "-e",
            "print crypt($ENV{PW}, $ENV{HASH}) eq $ENV{HASH} ? 1 : 0",
        ])
        .env("PW", password)
        .env("HASH", &hash)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout) == "1"
}

#[test]
fn install_update_uninstall_over_pvesh() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let rec_dir = tempfile::tempdir().unwrap();
    let (path, argv_log) = recording_path(&lab, rec_dir.path());
    let env = [("PATH", path.as_str())];
    let run = |args: &[&str]| launch_via(&lab, &cfg, Transport::Pvesh, args, &env);

    let answers = cfg.path().join("answers.yaml");
    std::fs::write(
        &answers,
        format!("public_url: http://pvesh.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\nroot_password: \"{ROOT_PASSWORD}\"\n"),
    )
    .unwrap();

    // The lab is a two-node cluster: `pve` (this node) and `pve2`, which holds configs only.
    let pve_lab = |args: &[&str]| {
        lab.pve_lab_ok(args);
    };
    pve_lab(&["node", "add", "pve2"]);

    // 0. Through the local pvesh, another node of the cluster is refused before anything is
    //    created: pvesh would proxy the create there, but pct reaches only this node's
    //    containers.
    let out = run(&[
        "--node",
        "pve2",
        "install",
        "vikunja",
        "--yes",
        "--answers",
        answers.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("this is node `pve`"), "{}", text(&out));
    assert!(lab.vmids().is_empty());
    assert!(
        !read_access_log(lab.path())
            .iter()
            .any(|e| e.method == "POST" && e.path.starts_with("/nodes/pve2/")),
        "a request reached pve2"
    );

    // doctor over pvesh: the local node, an install's privileges per path, the bridge.
    let out = run(&["doctor"]);
    assert!(out.status.success(), "{}", text(&out));
    for want in [
        "local node: pve",
        "privileges on /vms/",
        "privileges on /sdn/zones/localnetwork/vmbr0: all an install needs",
        "bridge vmbr0: this node is ",
        "risk: a cluster of 2 nodes (pve, pve2): Launch manages the containers on pve",
        "risk: storage local-zfs is ZFS",
    ] {
        assert!(
            text(&out).contains(want),
            "doctor lacks `{want}`:\n{}",
            text(&out)
        );
    }
    // doctor over HTTPS with a privilege-separated token: a privilege granted on its path only
    // (answered with flag 0) counts; one granted nowhere is named with its path.
    let out = std::process::Command::new(lab::workspace_bin("pve-lab"))
        .arg("--state")
        .arg(lab.path())
        .args([
            "token",
            "add",
            "scoped",
            "--privs",
            "Sys.Audit,Datastore.Audit,Datastore.AllocateTemplate,VM.Audit,VM.Allocate,VM.PowerMgmt,VM.Config.CPU,VM.Config.Memory,VM.Config.Disk,VM.Config.Network,VM.Config.Options",
            "--acl-here",
            "/storage/local-lvm=Datastore.AllocateSpace",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_launch-tui"))
        .env("NO_COLOR", "1")
        .env("LAUNCH_CONFIG", cfg.path())
        .env_remove("LAUNCH_PVE_TOKEN")
        .args(["--host", &format!("https://127.0.0.1:{}", lab.port)])
        .args(["--fingerprint", &lab.fingerprint()])
        // Over HTTPS a cluster's node must be named: the API may be any member's.
        .args(["--node", "pve"])
        .arg("--token-file")
        .arg(lab.path().join("token-scoped"))
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("privileges on /sdn/zones/localnetwork/vmbr0: lacking SDN.Use"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("privileges on /storage/local-lvm: all an install needs"),
        "{}",
        text(&out)
    );

    // An SDN vnet: a NIC on it needs SDN.Use on its own zone's path, not on localnetwork's.
    // A token holding SDN.Use only there (so it cannot read the vnet's zone) and lacking one
    // unrelated privilege is refused before anything is created, for that privilege alone.
    pve_lab(&["sdn", "vnet", "vnet1", "--zone", "zone1"]);
    pve_lab(&[
        "token",
        "add",
        "vnetuser",
        "--privs",
        "Sys.Audit,Datastore.Audit,Datastore.AllocateTemplate,Datastore.AllocateSpace,VM.Audit,VM.Allocate,VM.PowerMgmt,VM.Config.CPU,VM.Config.Memory,VM.Config.Disk,VM.Config.Network",
        "--acl",
        "/sdn/zones/zone1/vnet1=SDN.Use",
    ]);
    let vnet_answers = cfg.path().join("vnet-answers.yaml");
    std::fs::write(
        &vnet_answers,
        "public_url: http://vnet.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\nbridge: vnet1\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_launch-tui"))
        .env("NO_COLOR", "1")
        .env("LAUNCH_CONFIG", cfg.path())
        .env("LAUNCH_STATE_DIR", cfg.path().join("state"))
        .env("LAUNCH_LOG_DIR", cfg.path().join("log"))
        .env("LAUNCH_CACHE_DIR", cfg.path().join("cache"))
        .env("PATH", lab.path_env())
        .env_remove("LAUNCH_PVE_TOKEN")
        .args(["--host", &format!("https://127.0.0.1:{}", lab.port)])
        .args(["--fingerprint", &lab.fingerprint(), "--node", "pve"])
        .arg("--token-file")
        .arg(lab.path().join("token-vnetuser"))
        .args(["install", "vikunja", "--yes", "--answers"])
        .arg(&vnet_answers)
        .output()
        .unwrap();
    eprintln!("install on a vnet with a scoped token:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("VM.Config.Options on /vms/"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("SDN.Use"), "{}", text(&out));
    assert!(lab.vmids().is_empty());

    // 1. Install with a root password: the CT is created without one, then chpasswd reads it
    //    on stdin through pct exec.
    //    This node cannot open connections to its containers meanwhile (a VLAN or firewall
    //    between them): the install checks the app inside the CT and only reports that.
    pve_lab(&["fault", "block-host"]);
    let out = run(&[
        "install",
        "vikunja",
        "--yes",
        "--answers",
        answers.to_str().unwrap(),
    ]);
    pve_lab(&["fault", "unblock-host"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("this node cannot reach http://"),
        "{}",
        text(&out)
    );
    let record: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(cfg.path().join("instances/vikunja.yaml")).unwrap(),
    )
    .unwrap();
    let ip = record["container"]["ip"].as_str().unwrap().to_string();
    let vmid = record["container"]["vmid"].as_u64().unwrap().to_string();
    assert_eq!(version_at(&ip), "v1.0.0");
    assert!(
        root_password_matches(&lab, &vmid, ROOT_PASSWORD),
        "root's password in the CT is not the one asked for"
    );
    assert!(!root_password_matches(&lab, &vmid, "something-else"));

    // It went through pvesh (no request reached the API under launch-tui's own token) and the
    // password is in no argv, no launch-tui log, no API request.
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(argv.contains("pvesh create /nodes/pve/lxc "), "{argv}");
    assert!(argv.contains("pct exec"), "{argv}");
    assert!(
        !argv.contains(ROOT_PASSWORD),
        "the password reached an argv"
    );
    assert!(!argv.contains("--password"), "{argv}");
    let mut logs = String::new();
    for entry in std::fs::read_dir(cfg.path().join("log/vikunja")).unwrap() {
        logs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(!logs.contains(ROOT_PASSWORD), "the password is in the log");
    assert!(logs.contains("root password set"), "the step is logged");
    let log = read_access_log(lab.path());
    let creates: Vec<_> = log
        .iter()
        .filter(|e| e.method == "POST" && e.path == "/nodes/pve/lxc")
        .collect();
    assert_eq!(creates.len(), 1, "{log:#?}");
    assert!(
        !creates[0].params.contains_key("password"),
        "the create request carried a password"
    );

    // 2. Update v1 → v2 (snapshot, stop/start of the slots) over pvesh.
    let out = run(&["update", "vikunja", "--version", "v2.0.0"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(version_at(&ip), "v2.0.0");

    // 3. Growing the disk: to its current size is a no-op (PVE would refuse the resize); to a
    //    larger one either grows the filesystem or says that it could not (PVE's resize task
    //    ends OK even when its online resize2fs failed).
    let out = run(&["reconfigure", "vikunja", "--set", "disk_gib=4"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already 4 GiB"), "{}", text(&out));
    let out = run(&["reconfigure", "vikunja", "--set", "disk_gib=5"]);
    assert!(out.status.success(), "{}", text(&out));
    let size_kib: u64 = lab
        .pct_ok(&["exec", &vmid, "--", "df", "--output=size", "-k", "/"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        size_kib > 4_800_000 || text(&out).contains("its filesystem was not grown"),
        "the disk grew to 5 GiB, the filesystem is {size_kib} KiB, and nothing said so:\n{}",
        text(&out)
    );

    // 4. Status reads the CT and the app through pvesh.
    let out = run(&["status", "vikunja"]);
    assert!(out.status.success(), "{}", text(&out));

    // 4b. An admin migrates the CT to pve2 (restart mode). Status says where it went and how
    //     to bring it back, not that it is gone (which would advise a restore).
    let pvesh = |args: &[&str]| {
        let mut full = vec!["pvesh"];
        full.extend_from_slice(args);
        pve_lab(&full);
    };
    pvesh(&[
        "create",
        &format!("/nodes/pve/lxc/{vmid}/migrate"),
        "--target",
        "pve2",
        "--restart",
        "1",
    ]);
    assert!(!lab.vmids().contains(&vmid.parse().unwrap()));
    let out = run(&["status", "vikunja"]);
    eprintln!("status after a migration:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(&format!("CT {vmid} is on node pve2 now")), "{t}");
    assert!(!t.contains("restore it"), "{t}");
    assert!(
        t.contains(&format!("fix: pct migrate {vmid} pve --restart")),
        "{t}"
    );
    // The fix as printed (its API form, on pve2): back, running, healthy.
    pvesh(&[
        "create",
        &format!("/nodes/pve2/lxc/{vmid}/migrate"),
        "--target",
        "pve",
        "--restart",
        "1",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http_get(&format!("http://{ip}/health")).0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not come back after the migration back"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = run(&["status", "vikunja"]);
    assert!(out.status.success(), "{}", text(&out));

    // 5. Uninstall stops and destroys the CT through pvesh.
    let out = run(&["uninstall", "vikunja", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let vmid: u32 = vmid.parse().unwrap();
    assert!(!lab.vmids().contains(&vmid), "the container is gone");
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(
        argv.contains(&format!("pvesh delete /nodes/pve/lxc/{vmid} ")),
        "{argv}"
    );
}
