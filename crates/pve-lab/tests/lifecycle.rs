//! The acceptance scenario, driven only through the HTTPS API and the `pct` wrapper, as
//! launch-tui will: template download, create (ip=dhcp), start, systemd running, nginx
//! installed and reachable from the host, snapshot / change / rollback, an injected start
//! failure, stop, destroy, `pve-lab down`, then an independent check that nothing of the lab
//! is left (processes, links, namespaces, nft table, mounts). Needs root; CI runs as root.

mod lab_harness;

use std::process::Command;
use std::time::{Duration, Instant};

use lab_harness::{stderr, stdout, Lab, PREFIX, TEMPLATE};
use pve_lab::{read_access_log, Verdict};

const VMID: &str = "120";

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn full_container_lifecycle_through_api_and_pct() {
    let mut lab = Lab::start(0);
    let state = lab.path().to_path_buf();

    // Template download (builds it with debootstrap on the very first run on a machine).
    let built = !std::path::Path::new(lab_harness::CACHE)
        .join("template/cache")
        .join(TEMPLATE)
        .exists();
    let t0 = Instant::now();
    lab.task_ok(
        "POST",
        "/nodes/pve/aplinfo",
        &[("storage", "local"), ("template", TEMPLATE)],
        Duration::from_secs(1200),
    );
    let download = t0.elapsed();

    // Create with DHCP networking and start.
    let tpl = format!("local:vztmpl/{TEMPLATE}");
    let t1 = Instant::now();
    lab.task_ok(
        "POST",
        "/nodes/pve/lxc",
        &[
            ("vmid", VMID),
            ("ostemplate", &tpl),
            ("hostname", "lifecycle"),
            ("rootfs", "local-lvm:4"),
            ("memory", "1024"),
            ("cores", "2"),
            ("net0", "name=eth0,bridge=vmbr0,ip=dhcp"),
            ("unprivileged", "1"),
            ("features", "nesting=1"),
            ("password", "lab-secret-1"),
        ],
        Duration::from_secs(300),
    );
    let create = t1.elapsed();
    let t2 = Instant::now();
    lab.task_ok(
        "POST",
        &format!("/nodes/pve/lxc/{VMID}/status/start"),
        &[],
        Duration::from_secs(120),
    );
    let start = t2.elapsed();

    let out = lab.tool(
        "pct",
        &[
            "exec",
            VMID,
            "--",
            "systemctl",
            "is-system-running",
            "--wait",
        ],
    );
    assert_eq!(stdout(&out).trim(), "running", "stderr: {}", stderr(&out));
    assert!(out.status.success());
    let out = lab.tool("pct", &["status", VMID]);
    assert_eq!(stdout(&out).trim(), "status: running");

    // ip=dhcp: the address arrives after boot, as on PVE; wait for it as launch-tui does.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab
        .ok("GET", &format!("/nodes/pve/lxc/{VMID}/interfaces"), &[])
        .as_array()
        .is_none_or(|a| {
            !a.iter()
                .any(|i| i["name"] == "eth0" && !i["inet"].is_null())
        })
    {
        assert!(Instant::now() < deadline, "no DHCP address within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    // nginx inside, reached from the host on the CT's address (from the API, as launch-tui does).
    let t3 = Instant::now();
    let out = lab.tool(
        "pct",
        &[
            "exec",
            VMID,
            "--",
            "sh",
            "-c",
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx",
        ],
    );
    assert!(
        out.status.success(),
        "apt-get install nginx failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let apt = t3.elapsed();
    let ifaces = lab.ok("GET", &format!("/nodes/pve/lxc/{VMID}/interfaces"), &[]);
    let ip = ifaces
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .and_then(|i| i["ip-addresses"][0]["ip-address"].as_str())
        .expect("eth0 address")
        .to_string();
    assert!(ip.starts_with("10.77.2."), "{ip}");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    let get = || {
        http.get(format!("http://{ip}/"))
            .send()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(get().unwrap(), 200);

    // Snapshot, change a file, roll back (and start again), file restored.
    let marker = state.join("marker");
    std::fs::write(&marker, "before\n").unwrap();
    let out = lab.tool(
        "pct",
        &[
            "push",
            VMID,
            marker.to_str().unwrap(),
            "/root/marker",
            "--perms",
            "0640",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    lab.task_ok(
        "POST",
        &format!("/nodes/pve/lxc/{VMID}/snapshot"),
        &[
            ("snapname", "before_change"),
            ("description", "lifecycle test"),
        ],
        Duration::from_secs(120),
    );
    std::fs::write(&marker, "after\n").unwrap();
    let out = lab.tool(
        "pct",
        &["push", VMID, marker.to_str().unwrap(), "/root/marker"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lab.tool("pct", &["exec", VMID, "--", "cat", "/root/marker"]);
    assert_eq!(stdout(&out), "after\n");
    let snaps = lab.ok("GET", &format!("/nodes/pve/lxc/{VMID}/snapshot"), &[]);
    assert_eq!(snaps[0]["name"], "before_change", "{snaps}");
    assert_eq!(snaps[1]["name"], "current");
    lab.task_ok(
        "POST",
        &format!("/nodes/pve/lxc/{VMID}/snapshot/before_change/rollback"),
        &[("start", "1")],
        Duration::from_secs(180),
    );
    let out = lab.tool("pct", &["exec", VMID, "--", "cat", "/root/marker"]);
    assert_eq!(
        stdout(&out),
        "before\n",
        "rollback restores the file: {}",
        stderr(&out)
    );
    let out = lab.tool(
        "pct",
        &["exec", VMID, "--", "stat", "-c", "%a", "/root/marker"],
    );
    assert_eq!(stdout(&out).trim(), "640");
    assert_eq!(get().unwrap(), 200, "nginx serves again after the rollback");

    // A backup lands in local storage under PVE's name.
    lab.task_ok(
        "POST",
        "/nodes/pve/vzdump",
        &[("vmid", VMID), ("storage", "local"), ("mode", "snapshot")],
        Duration::from_secs(300),
    );
    let backups = lab.ok(
        "GET",
        "/nodes/pve/storage/local/content",
        &[("content", "backup")],
    );
    let volid = backups[0]["volid"].as_str().unwrap_or("");
    assert!(
        volid.starts_with(&format!("local:backup/vzdump-lxc-{VMID}-"))
            && volid.ends_with(".tar.zst"),
        "{backups}"
    );

    // Restore the backup as a new container with its own MAC; it carries the config and files.
    lab.task_ok(
        "POST",
        "/nodes/pve/lxc",
        &[
            ("vmid", "121"),
            ("ostemplate", volid),
            ("restore", "1"),
            ("unique", "1"),
            ("rootfs", "local-lvm:4"),
        ],
        Duration::from_secs(300),
    );
    let cfg = lab.ok("GET", "/nodes/pve/lxc/121/config", &[]);
    assert_eq!(cfg["hostname"], "lifecycle", "{cfg}");
    let orig = lab.ok("GET", &format!("/nodes/pve/lxc/{VMID}/config"), &[]);
    assert_ne!(cfg["net0"], orig["net0"], "unique=1 gives a new MAC");
    lab.task_ok(
        "POST",
        "/nodes/pve/lxc/121/status/start",
        &[],
        Duration::from_secs(120),
    );
    let out = lab.tool("pct", &["exec", "121", "--", "cat", "/root/marker"]);
    assert_eq!(stdout(&out), "before\n", "{}", stderr(&out));
    let status = stdout(&lab.cmd(&["status"]));
    assert!(
        status.contains(&format!("CT {VMID}: lifecycle running")),
        "{status}"
    );
    assert!(status.contains("CT 121: lifecycle running"), "{status}");
    // Pruning the backup removes the archive and what lies beside it.
    lab.task_ok(
        "DELETE",
        &format!("/nodes/pve/storage/local/content/{volid}"),
        &[],
        Duration::from_secs(60),
    );
    let backups = lab.ok(
        "GET",
        "/nodes/pve/storage/local/content",
        &[("content", "backup")],
    );
    assert_eq!(backups, serde_json::json!([]));
    let dump = std::fs::read_dir(state.join("storage/local/dump"))
        .unwrap()
        .count();
    assert_eq!(dump, 0, "archive, .log and .pct.conf are gone");
    lab.task_ok(
        "DELETE",
        "/nodes/pve/lxc/121",
        &[("force", "1")],
        Duration::from_secs(120),
    );

    // An injected start failure surfaces as the task's exit status; the next start works.
    lab.task_ok(
        "POST",
        &format!("/nodes/pve/lxc/{VMID}/status/stop"),
        &[],
        Duration::from_secs(60),
    );
    let text = format!("startup for container '{VMID}' failed");
    let out = lab.cmd(&[
        "fault",
        "fail-task",
        "--type",
        "vzstart",
        "--exitstatus",
        &text,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let upid = lab.ok("POST", &format!("/nodes/pve/lxc/{VMID}/status/start"), &[]);
    let st = lab.wait_task(upid.as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(st["exitstatus"], text.as_str());
    let cur = lab.ok("GET", &format!("/nodes/pve/lxc/{VMID}/status/current"), &[]);
    assert_eq!(cur["status"], "stopped");
    lab.task_ok(
        "POST",
        &format!("/nodes/pve/lxc/{VMID}/status/start"),
        &[],
        Duration::from_secs(120),
    );
    lab.task_ok(
        "POST",
        &format!("/nodes/pve/lxc/{VMID}/status/stop"),
        &[],
        Duration::from_secs(60),
    );

    lab.task_ok(
        "DELETE",
        &format!("/nodes/pve/lxc/{VMID}"),
        &[("purge", "1")],
        Duration::from_secs(120),
    );
    assert!(!state
        .join(format!("images/{VMID}/vm-{VMID}-disk-0.raw"))
        .exists());
    assert!(!state.join(format!("lxc/{VMID}.conf")).exists());

    // Nothing the scenario sent was refused by the schema or permissions.
    let log = read_access_log(&state);
    let rejected: Vec<_> = log
        .iter()
        .filter(|e| e.verdict == Verdict::Rejected)
        .collect();
    assert!(rejected.is_empty(), "{rejected:#?}");
    assert!(!std::fs::read_to_string(state.join("access.jsonl"))
        .unwrap()
        .contains("lab-secret-1"));

    let out = lab.down();
    assert!(
        out.status.success(),
        "down: {}{}",
        stdout(&out),
        stderr(&out)
    );

    // Independent checks, not through the runtime.
    let state_s = state.display().to_string();
    let ps = sh("ps", &["-eo", "pid,stat,args"]);
    let procs: Vec<&str> = ps
        .lines()
        .filter(|l| l.contains(&state_s) || l.contains(&format!("{PREFIX}-")))
        .collect();
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let links = sh("ip", &["-br", "link"]);
    assert!(!links.contains(PREFIX), "links left:\n{links}");
    let netns = sh("ip", &["netns", "list"]);
    assert!(!netns.contains(PREFIX), "namespaces left:\n{netns}");
    let tables = sh("nft", &["list", "tables"]);
    assert!(!tables.contains(PREFIX), "nft tables left:\n{tables}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&state_s), "mounts left:\n{mounts}");

    eprintln!(
        "timings: template download {:.1} s ({}), create {:.1} s, start {:.1} s, apt-get install nginx {:.1} s",
        download.as_secs_f64(),
        if built { "built with debootstrap" } else { "from the shared cache" },
        create.as_secs_f64(),
        start.as_secs_f64(),
        apt.as_secs_f64()
    );
}
