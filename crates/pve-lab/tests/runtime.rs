//! The lab runtime against the real machine: a Debian template built with debootstrap, real
//! ext4 images, systemd-nspawn containers on a bridge with NAT, and the `pct` shim.
//! Needs root and network access to Debian's mirror; fails loudly when either is missing.
//! Network names: prefix `plabr`, 10.77.1.0/24 (other suites use other prefixes).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pve_lab::runtime::{LabNet, Runtime, RuntimeError, StartSpec, TEMPLATES};

/// The container tests share one lab network, and the scenario ends by checking that
/// nothing of the lab is left: they must not overlap.
static LAB: Mutex<()> = Mutex::new(());

const CACHE: &str = "/var/cache/pve-lab";

fn net() -> LabNet {
    LabNet {
        prefix: "plabr".into(),
        subnet: Ipv4Addr::new(10, 77, 1, 0),
        prefix_len: 24,
    }
}

fn require_root_and_tools() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the runtime tests boot real containers and need root (euid is {euid}); run them as root (CI does)"
    );
    let missing = Runtime::missing_host_packages();
    if !missing.is_empty() {
        eprintln!("installing missing host packages: {}", missing.join(" "));
        Runtime::install_host_packages(&missing)
            .unwrap_or_else(|e| panic!("could not install host packages {missing:?}: {e:#}"));
    }
    let still = Runtime::missing_host_packages();
    assert!(
        still.is_empty(),
        "host packages still missing after install: {still:?}"
    );
}

/// A runtime with a fixed state dir, cleaned of whatever an interrupted earlier run left.
fn fresh_runtime(name: &str, vmids: &[u32]) -> Runtime {
    let dir = PathBuf::from("/var/tmp/pve-lab-tests").join(name);
    let rt = Runtime::new(dir.clone(), PathBuf::from(CACHE), net());
    for vmid in rt.running_vmids() {
        rt.stop(vmid)
            .expect("stopping a container left by an earlier run");
    }
    for &vmid in vmids {
        if rt.exists(vmid) {
            rt.destroy(vmid)
                .expect("destroying a container left by an earlier run");
        }
    }
    rt.network_down().expect("network_down before the test");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clearing the old state dir");
    }
    std::fs::create_dir_all(&dir).expect("creating the state dir");
    rt.network_up().expect("network_up");
    rt
}

fn log_to_stderr() -> impl FnMut(&str) {
    |line: &str| eprintln!("  | {line}")
}

fn sh(rt: &Runtime, vmid: u32, script: &str) -> std::process::Output {
    rt.exec_capture(vmid, &["sh".into(), "-c".into(), script.into()])
        .unwrap_or_else(|e| panic!("exec `{script}` in CT {vmid}: {e:#}"))
}

fn sh_ok(rt: &Runtime, vmid: u32, script: &str) -> String {
    let out = sh(rt, vmid, script);
    assert!(
        out.status.success(),
        "`{script}` in CT {vmid} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spec(vmid: u32, hostname: &str, ip: Option<(Ipv4Addr, u8)>) -> StartSpec {
    StartSpec {
        vmid,
        hostname: hostname.into(),
        ip,
        gw: ip.map(|_| Ipv4Addr::new(10, 77, 1, 1)),
        memory_mib: 1024,
        cores: 2,
        ..StartSpec::default()
    }
}

/// GET / on the container's port 80 with a bounded retry; returns the status line.
fn http_get(ip: Ipv4Addr) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last_err = String::new();
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&(ip, 80).into(), Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let req = format!("GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n");
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut buf = String::new();
                    if s.read_to_string(&mut buf).is_ok() {
                        return buf.lines().next().unwrap_or_default().to_string();
                    }
                }
            }
            Err(e) => last_err = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("no HTTP answer from {ip}:80 within 20 s (last error: {last_err})");
}

fn wait_stopped(rt: &Runtime, vmid: u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while rt.status(vmid).expect("status").running {
        assert!(
            Instant::now() < deadline,
            "CT {vmid} still running 15 s after its init was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn df_percent(rt: &Runtime, vmid: u32) -> u32 {
    let out = sh_ok(rt, vmid, "df --output=pcent / | tail -n 1");
    out.trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("df printed {out:?}"))
}

/// Looks at the host with its own tools, not through the runtime, for anything named like
/// this lab's or living under its state dir.
fn independent_leftovers(state_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let run = |args: &[&str]| -> String {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .expect("running a host tool");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for l in run(&["ip", "netns", "list"]).lines() {
        if l.starts_with("plabr-") {
            found.push(format!("ip netns: {l}"));
        }
    }
    for l in run(&["ip", "-o", "link"]).lines() {
        if l.split(':')
            .nth(1)
            .is_some_and(|n| n.trim().starts_with("plabr"))
        {
            found.push(format!("ip link: {l}"));
        }
    }
    for l in run(&["nft", "list", "tables"]).lines() {
        if l.trim() == "table ip plabr" {
            found.push(format!("nft: {l}"));
        }
    }
    let state = state_dir.to_string_lossy().into_owned();
    for l in std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
    {
        if l.contains(&state) {
            found.push(format!("mount: {l}"));
        }
    }
    for l in run(&["losetup", "-l", "-n"]).lines() {
        if l.contains(&state) {
            found.push(format!("loop: {l}"));
        }
    }
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" plabr-") || cmdline.contains(&state) {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    found
}

#[test]
fn container_lifecycle_scenario() {
    let _serial = LAB.lock().unwrap_or_else(|p| p.into_inner());
    require_root_and_tools();
    let (ct, restored) = (901, 903);
    let rt = fresh_runtime("runtime-scenario", &[ct, restored]);
    let mut log = log_to_stderr();
    let t = &TEMPLATES[0];

    // Template: built once per machine, then cached.
    let was_cached = rt.template_cached(t);
    let t0 = Instant::now();
    let template = rt.ensure_template(t, &mut log).expect("ensure_template");
    if was_cached {
        let first = rt
            .template_build_info(t)
            .map(|i| format!("{:.0} s", i.build_secs))
            .unwrap_or_else(|| "not recorded".into());
        eprintln!(
            "MEASURED template {}: cached (first build on this machine took {first})",
            t.name
        );
    } else {
        eprintln!(
            "MEASURED template {} build (first run): {:.1} s",
            t.name,
            t0.elapsed().as_secs_f64()
        );
    }
    assert!(rt.template_cached(t));
    let t1 = Instant::now();
    rt.ensure_template(t, &mut log)
        .expect("ensure_template again");
    assert!(
        t1.elapsed() < Duration::from_secs(1),
        "a cached template must not be rebuilt"
    );

    // Create (4 GiB) and boot with a static address.
    let t0 = Instant::now();
    rt.create(ct, &template, 4.0, &mut log).expect("create");
    let created = t0.elapsed();
    let ip = Ipv4Addr::new(10, 77, 1, 100);
    rt.start(&spec(ct, "rt-scenario", Some((ip, 24))), &mut log)
        .expect("start");
    eprintln!(
        "MEASURED create (4 GiB, cached template): {:.1} s, create+start to running: {:.1} s",
        created.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert!(rt.exists(ct));
    assert_eq!(rt.running_vmids(), vec![ct]);

    let state = sh(&rt, ct, "systemctl is-system-running");
    let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
    if state != "running" {
        eprintln!(
            "failed units:\n{}",
            sh_ok(&rt, ct, "systemctl --failed --no-legend --plain || true")
        );
    }
    assert_eq!(state, "running", "systemd inside the container");
    assert_eq!(sh_ok(&rt, ct, "hostname").trim(), "rt-scenario");

    let st = rt.status(ct).expect("status");
    assert!(st.running && st.init_pid.is_some(), "{st:?}");
    assert!(
        st.disk_total > 3 << 30 && st.disk_used > 100 << 20,
        "{st:?}"
    );
    assert!(
        st.mem_bytes > 1 << 20 && st.mem_bytes < 1 << 30,
        "memory accounted in the CT's cgroup: {st:?}"
    );
    let addrs = rt.ipv4_addresses(ct).expect("ipv4_addresses");
    let eth0 = addrs
        .iter()
        .find(|(n, _, _)| n == "eth0")
        .expect("eth0 inside");
    assert_eq!(eth0.2, vec![(ip, 24)]);
    assert!(addrs
        .iter()
        .any(|(n, _, a)| n == "lo" && a.contains(&(Ipv4Addr::LOCALHOST, 8))));

    // A fresh machine identity, not the template's; memory limits hold for exec'd commands.
    let id = sh_ok(
        &rt,
        ct,
        "cat /etc/machine-id; readlink /var/lib/dbus/machine-id",
    );
    let mut lines = id.lines();
    let machine_id = lines.next().unwrap_or_default();
    assert!(
        machine_id.len() == 32 && machine_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id:?}"
    );
    assert_eq!(lines.next(), Some("/etc/machine-id"), "{id:?}");
    let hog = sh(&rt, ct, "head -c 1400M /dev/zero | tail -n 1 >/dev/null");
    assert!(
        !hog.status.success(),
        "buffering 1.4 GiB in a CT limited to 1 GiB must fail (OOM): {:?}",
        hog.status
    );

    // Exit codes and environment pass through exec.
    let code = rt
        .exec(
            ct,
            &[
                "sh".into(),
                "-c".into(),
                "test \"$GREETING\" = hi && exit 7".into(),
            ],
            &[("GREETING".into(), "hi".into())],
        )
        .expect("exec");
    assert_eq!(code.code(), Some(7));

    // Packages through the NAT, and the host reaching the container's nginx.
    let t0 = Instant::now();
    sh_ok(
        &rt,
        ct,
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && apt-get install -y -q nginx >/dev/null",
    );
    eprintln!(
        "MEASURED apt-get update + install nginx inside: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let status_line = http_get(ip);
    assert!(
        status_line.contains(" 200 "),
        "GET http://{ip}/ answered {status_line:?}"
    );
    let st = rt.status(ct).expect("status");
    assert!(st.netin > 1 << 20, "the downloads count as netin: {st:?}");

    // push with perms and owner, then pull it back.
    let host_dir = tempfile::tempdir().expect("tempdir");
    let src = host_dir.path().join("secret.conf");
    std::fs::write(&src, "token = not-a-real-secret\n").unwrap();
    rt.push(
        ct,
        &src,
        "/etc/app-secret.conf",
        Some(0o640),
        Some("root"),
        Some("www-data"),
    )
    .expect("push");
    assert_eq!(
        sh_ok(&rt, ct, "stat -c '%a %U %G' /etc/app-secret.conf").trim(),
        "640 root www-data"
    );
    let back = host_dir.path().join("back.conf");
    rt.pull(ct, "/etc/app-secret.conf", &back, None)
        .expect("pull");
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "token = not-a-real-secret\n"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&back).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let e = rt
        .push(ct, &src, "/etc/x", None, Some("nosuchuser"), None)
        .unwrap_err();
    assert!(format!("{e:#}").contains("nosuchuser"), "{e:#}");

    // Grow while running: online where the host allows it, else at the next start
    // (checked after the restart below).
    rt.resize(ct, 5.0).expect("resize while running");
    if !rt.fs_grow_pending(ct) {
        assert!(rt.status(ct).unwrap().disk_total > (4 << 30) + (800 << 20));
    } else {
        eprintln!("NOTE online ext4 grow refused here (no CAP_SYS_RESOURCE); it happens at the next start");
    }
    let e = rt.resize(ct, 2.0).unwrap_err();
    assert!(
        e.to_string().contains("shrink") && e.to_string().contains("help:"),
        "{e}"
    );

    // Snapshot while running; change; stop; roll back; the change is gone.
    sh_ok(&rt, ct, "echo original > /etc/rt-marker && sync");
    rt.snapshot(ct, "before_change")
        .expect("snapshot while running");
    sh_ok(&rt, ct, "echo changed > /etc/rt-marker");
    let e = rt.rollback(ct, "before_change").unwrap_err();
    assert!(
        matches!(e.downcast_ref(), Some(RuntimeError::Running { .. })),
        "{e:#}"
    );
    rt.stop(ct).expect("stop");
    assert!(!rt.status(ct).unwrap().running);
    rt.rollback(ct, "before_change").expect("rollback");
    rt.start(&spec(ct, "rt-scenario", Some((ip, 24))), &mut log)
        .expect("start after rollback");
    assert_eq!(sh_ok(&rt, ct, "cat /etc/rt-marker").trim(), "original");
    assert!(
        http_get(ip).contains(" 200 "),
        "nginx is back after rollback"
    );
    assert!(!rt.fs_grow_pending(ct));
    let size_kib: u64 = sh_ok(&rt, ct, "df --output=size -k / | tail -n 1")
        .trim()
        .parse()
        .unwrap();
    assert!(
        size_kib > 4_800_000,
        "the filesystem has grown to 5 GiB: {size_kib} KiB"
    );
    rt.delete_snapshot(ct, "before_change")
        .expect("delete_snapshot");
    let e = rt.delete_snapshot(ct, "before_change").unwrap_err();
    assert!(
        matches!(e.downcast_ref(), Some(RuntimeError::NoSuchSnapshot { .. })),
        "{e:#}"
    );

    // Disk full fault.
    rt.fill_disk(ct).expect("fill_disk");
    assert_eq!(df_percent(&rt, ct), 100);
    assert!(
        !sh(&rt, ct, "echo x > /root/more").status.success(),
        "writing on a full disk must fail"
    );
    rt.clear_fill(ct).expect("clear_fill");
    assert!(df_percent(&rt, ct) < 50);

    // Backup while running, restore as another CT that boots without network config.
    let archive = host_dir.path().join("vzdump-lxc-901.tar.zst");
    rt.vzdump_with_config(ct, &archive, "hostname: rt-scenario\n", &mut log)
        .expect("vzdump");
    assert!(std::fs::metadata(&archive).unwrap().len() > 50 << 20);
    rt.create(restored, &archive, 4.0, &mut log)
        .expect("restore from the vzdump archive");
    rt.start(&spec(restored, "rt-restored", None), &mut log)
        .expect("start without network");
    assert_eq!(
        sh_ok(&rt, restored, "cat /etc/rt-marker").trim(),
        "original"
    );
    assert_eq!(
        sh_ok(&rt, restored, "cat /etc/vzdump/pct.conf").trim(),
        "hostname: rt-scenario"
    );
    let addrs = rt.ipv4_addresses(restored).unwrap();
    assert!(
        addrs.iter().any(|(n, _, a)| n == "eth0" && a.is_empty()),
        "{addrs:?}"
    );
    let t0 = Instant::now();
    rt.shutdown(restored, Duration::from_secs(30))
        .expect("clean shutdown");
    eprintln!(
        "MEASURED clean shutdown: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "the shutdown was clean, not the hard stop after the timeout"
    );
    rt.destroy(restored).expect("destroy the restored CT");

    // Crash fault, then cleanup.
    rt.kill_init(ct).expect("kill_init");
    wait_stopped(&rt, ct);
    let e = rt.exec_capture(ct, &["true".into()]).unwrap_err();
    assert!(
        matches!(e.downcast_ref(), Some(RuntimeError::NotRunning { .. })),
        "{e:#}"
    );
    rt.destroy(ct).expect("destroy");
    assert!(!rt.exists(ct));
    rt.network_down().expect("network_down");
    let left = rt.leftovers();
    assert!(left.is_empty(), "leftovers(): {left:#?}");
    let left = independent_leftovers(rt.state_dir());
    assert!(left.is_empty(), "found by the host's own tools: {left:#?}");
}

#[test]
fn bad_input_is_refused_with_help() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(dir.path().into(), dir.path().join("cache"), net());
    let tpl = dir.path().join("t.tar.zst");
    std::fs::write(&tpl, b"").unwrap();
    let mut log = |_: &str| {};
    let msg = |e: anyhow::Error| format!("{e:#}");

    let e = msg(rt.create(5, &tpl, 4.0, &mut log).unwrap_err());
    assert!(e.contains("VMID 5") && e.contains("help:"), "{e}");
    let e = msg(rt.create(200, &tpl, 0.0, &mut log).unwrap_err());
    assert!(e.contains("disk size 0") && e.contains("help:"), "{e}");
    let e = msg(rt
        .create(200, &dir.path().join("none.tar.zst"), 4.0, &mut log)
        .unwrap_err());
    assert!(e.contains("none.tar.zst") && e.contains("help:"), "{e}");
    let e = msg(rt.snapshot(200, "1bad").unwrap_err());
    assert!(e.contains("'1bad'") && e.contains("help:"), "{e}");
    let e = msg(rt.start(&spec(200, "ok", None), &mut log).unwrap_err());
    assert!(e.contains("CT 200 does not exist"), "{e}");
    let e = msg(rt
        .start(&spec(200, "bad_host", None), &mut log)
        .unwrap_err());
    assert!(e.contains("'bad_host'") && e.contains("help:"), "{e}");
    let e = msg(rt.exec_capture(200, &["true".into()]).unwrap_err());
    assert!(e.contains("CT 200 does not exist"), "{e}");
    assert!(!rt.exists(200));

    let bad = Runtime::new(
        dir.path().into(),
        dir.path().into(),
        LabNet {
            prefix: "toolongprefix".into(),
            ..net()
        },
    );
    let e = msg(bad.network_up().unwrap_err());
    assert!(e.contains("toolongprefix") && e.contains("help:"), "{e}");
    let bad = Runtime::new(
        dir.path().into(),
        dir.path().into(),
        LabNet {
            subnet: Ipv4Addr::new(10, 77, 1, 5),
            ..net()
        },
    );
    let e = msg(bad.network_up().unwrap_err());
    assert!(e.contains("10.77.1.5/24") && e.contains("help:"), "{e}");
}

/// Runs the real `pve-lab --state DIR pct ARGS...`; returns (exit code, stdout, stderr).
fn pct(state: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pve-lab"))
        .arg("--state")
        .arg(state)
        .arg("pct")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running pve-lab pct");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pct_shim_through_the_binary() {
    let _serial = LAB.lock().unwrap_or_else(|p| p.into_inner());
    require_root_and_tools();
    let ct = 902;
    let rt = fresh_runtime("runtime-pct", &[ct]);
    let state = rt.state_dir().to_path_buf();
    let mut log = log_to_stderr();
    let template = rt
        .ensure_template(&TEMPLATES[0], &mut log)
        .expect("ensure_template");
    rt.create(ct, &template, 2.0, &mut log).expect("create");

    // Errors as the real pct words them, exit code 255.
    let (code, out, err) = pct(&state, &["status", "902"], &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, "status: stopped\n"),
        "stderr: {err}"
    );
    let (code, _, err) = pct(&state, &["exec", "902", "--", "true"], &[]);
    assert_eq!(code, 255);
    assert!(err.contains("CT 902 not running"), "{err}");
    let (code, _, err) = pct(&state, &["status", "999"], &[]);
    assert_eq!(code, 255);
    assert!(
        err.contains("Configuration file 'nodes/") && err.contains("/lxc/999.conf' does not exist"),
        "{err}"
    );
    let (code, _, err) = pct(
        &state,
        &["push", "902", "/nonexistent", "/root/x", "--perms", "999"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("'999'"), "{err}");

    rt.start(
        &spec(ct, "rt-pct", Some((Ipv4Addr::new(10, 77, 1, 102), 24))),
        &mut log,
    )
    .expect("start");
    let (code, out, err) = pct(&state, &["status", "902"], &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, "status: running\n"),
        "stderr: {err}"
    );

    // stdout, stderr and the exit code pass through.
    let (code, out, err) = pct(
        &state,
        &[
            "exec",
            "902",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        &[],
    );
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (code, out, _) = pct(&state, &["exec", "902", "--", "hostname"], &[]);
    assert_eq!((code, out.as_str()), (0, "rt-pct\n"));
    let (code, _, err) = pct(&state, &["exec", "902", "--", "/no/such/cmd"], &[]);
    assert_eq!(code, 127, "{err}");

    // enter: a login shell inside, here reading its commands from a pipe.
    let mut enter = Command::new(env!("CARGO_BIN_EXE_pve-lab"))
        .arg("--state")
        .arg(&state)
        .args(["pct", "enter", "902"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pve-lab pct enter");
    enter
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"echo \"in $(hostname) as $(id -un)\"; exit 5\n")
        .expect("writing to pct enter");
    let out = enter.wait_with_output().expect("pct enter");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in rt-pct as root\n");

    // --keep-env 1 (the default) passes the caller's environment; 0 starts clean.
    let probe = ["sh", "-c", "echo ${PCT_PROBE:-unset}"];
    let run = |keep: Option<&str>| {
        let mut args = vec!["exec", "902"];
        if let Some(k) = keep {
            args.extend(["--keep-env", k]);
        }
        args.push("--");
        args.extend(probe);
        let (code, out, err) = pct(&state, &args, &[("PCT_PROBE", "kept")]);
        assert_eq!(code, 0, "pct exec --keep-env {keep:?}: {err}");
        out
    };
    assert_eq!(run(None), "kept\n");
    assert_eq!(run(Some("1")), "kept\n");
    assert_eq!(run(Some("0")), "unset\n");

    // push/pull with perms and owner resolved inside the container.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.env");
    std::fs::write(&src, "KEY=value\n").unwrap();
    let src_s = src.to_string_lossy().into_owned();
    let (code, _, err) = pct(
        &state,
        &[
            "push",
            "902",
            &src_s,
            "/root/app.env",
            "--perms",
            "0640",
            "--user",
            "nobody",
            "--group",
            "nogroup",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = pct(
        &state,
        &[
            "exec",
            "902",
            "--",
            "stat",
            "-c",
            "%a %U %G",
            "/root/app.env",
        ],
        &[],
    );
    assert_eq!(out, "640 nobody nogroup\n");
    let back = dir.path().join("back.env");
    let back_s = back.to_string_lossy().into_owned();
    let (code, _, err) = pct(&state, &["pull", "902", "/root/app.env", &back_s], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "KEY=value\n");
    let (code, _, err) = pct(&state, &["pull", "902", "/root/missing.env", &back_s], &[]);
    assert_eq!(code, 255);
    assert!(err.contains("/root/missing.env"), "{err}");

    // push writes in place as pct's create_file does (an existing file keeps its inode and is
    // truncated), and errors inside pct's worker are printed while pct still exits 0.
    let stat = |path: &str| {
        let (_, out, _) = pct(
            &state,
            &["exec", "902", "--", "stat", "-c", "%i %s", path],
            &[],
        );
        out.trim().to_string()
    };
    let inode = stat("/root/app.env").split(' ').next().unwrap().to_string();
    std::fs::write(&src, "K=v\n").unwrap();
    let (code, _, err) = pct(&state, &["push", "902", &src_s, "/root/app.env"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stat("/root/app.env"),
        format!("{inode} 4"),
        "not written in place"
    );
    let (code, _, err) = pct(
        &state,
        &["push", "902", &src_s, "/root/x.env", "--user", "nosuchuser"],
        &[],
    );
    assert_eq!(code, 0, "pct exits 0 after its worker failed");
    assert!(err.contains("nosuchuser"), "{err}");
    // A full disk: the file is left truncated, nothing is printed, and pct exits 0.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 4 << 20]).unwrap();
    let big_s = big.to_string_lossy().into_owned();
    rt.fill_disk(ct).expect("fill_disk");
    let (code, _, err) = pct(&state, &["push", "902", &big_s, "/root/app.env"], &[]);
    rt.clear_fill(ct).expect("clear_fill");
    assert_eq!((code, err.as_str()), (0, ""));
    let size: u64 = stat("/root/app.env")
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        size < 4 << 20,
        "a full disk must leave the file short: {size} bytes"
    );

    // A crashed container is cleaned up by network_down (what `pve-lab down` relies on).
    rt.kill_init(ct).expect("kill_init");
    wait_stopped(&rt, ct);
    let (code, out, _) = pct(&state, &["status", "902"], &[]);
    assert_eq!((code, out.as_str()), (0, "status: stopped\n"));
    rt.network_down().expect("network_down");
    let left = rt.leftovers();
    assert!(left.is_empty(), "leftovers(): {left:#?}");
    let left = independent_leftovers(&state);
    assert!(left.is_empty(), "found by the host's own tools: {left:#?}");
    rt.destroy(ct).expect("destroy");
    assert!(!rt.exists(ct));
}
