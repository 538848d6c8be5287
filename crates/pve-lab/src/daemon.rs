//! The lab's life: `up` (host packages, TLS identity, tokens, wrapper scripts, then the daemon
//! in the background and a readiness wait), the `--foreground` server itself, `status`, and
//! `down` (daemon, containers, network; then a check that nothing of the lab remains).

use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::api::{Lab, LabSettings, PveVersion};
use crate::client::{read_daemon_info, write_daemon_info, DaemonInfo, LabClient};
use crate::fsutil::{now_epoch, pid_alive, write_file_atomic};
use crate::runtime::{LabNet, Runtime};

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub state: PathBuf,
    pub port: u16,
    pub cache: PathBuf,
    /// `8`, `8.0` or `9`.
    pub pve: String,
    pub schema: Option<PathBuf>,
    pub foreground: bool,
    pub yes: bool,
    pub prefix: String,
    pub subnet: String,
    pub auth_fail_delay_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(
        "--pve {0} is not a PVE version the lab knows\nhelp: use --pve 8, --pve 8.0 or --pve 9"
    )]
    BadPve(String),
    #[error(
        "--subnet '{0}' is not an IPv4 network\nhelp: use a /16../28 network such as 10.77.0.0/24"
    )]
    BadSubnet(String),
    #[error("--prefix '{0}' is not usable for host interface names\nhelp: use 1-6 characters a-z/0-9 starting with a letter, e.g. plab0")]
    BadPrefix(String),
    #[error("host packages missing: {0}\nhelp: rerun with --yes to let pve-lab install them, or run `apt-get install -y {0}`")]
    PackagesMissing(String),
    #[error("the pve-lab daemon did not answer on 127.0.0.1:{port} within {secs} s\nlast lines of {log}:\n{tail}\nhelp: read {log}; `pve-lab down` cleans up")]
    NotReady {
        port: u16,
        secs: u64,
        log: String,
        tail: String,
    },
}

/// `10.77.0.0/24` -> the network as `LabNet` wants it.
pub fn parse_net(prefix: &str, subnet: &str) -> Result<LabNet> {
    let ok_prefix = !prefix.is_empty()
        && prefix.len() <= 6
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok_prefix {
        return Err(UpError::BadPrefix(prefix.to_string()).into());
    }
    let bad = || UpError::BadSubnet(subnet.to_string());
    let (addr, len) = subnet.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(16..=28).contains(&len) {
        return Err(bad().into());
    }
    let mask = u32::MAX << (32 - len);
    Ok(LabNet {
        prefix: prefix.to_string(),
        subnet: Ipv4Addr::from(u32::from(addr) & mask),
        prefix_len: len,
    })
}

fn pve_of(s: &str) -> Result<PveVersion> {
    PveVersion::from_arg(s).ok_or_else(|| UpError::BadPve(s.to_string()).into())
}

/// Asks a yes/no question on the terminal (not stdin, which may be a pipe).
fn ask_tty(question: &str) -> Result<bool> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask on")?;
    let mut w = &tty;
    write!(w, "{question} [y/N] ")?;
    w.flush()?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn ensure_host_packages(yes: bool) -> Result<()> {
    let missing = Runtime::missing_host_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    let go = yes
        || ask_tty(&format!(
            "pve-lab needs these host packages: {list}. Install them with apt-get now?"
        ))
        .unwrap_or(false);
    if !go {
        return Err(UpError::PackagesMissing(list).into());
    }
    eprintln!("pve-lab: installing {list} ...");
    Runtime::install_host_packages(&missing)
}

/// Files every client of the lab needs; idempotent.
fn prepare_state(state: &Path, exe: &Path) -> Result<crate::tls::NodeCert> {
    std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    let cert = crate::tls::ensure_node_cert(state)?;
    crate::auth::ensure_token(state, crate::auth::ROOT_TOKEN_NAME, None)?;
    crate::auth::ensure_root_password(state)?;
    let bin = state.join("bin");
    for tool in ["pct", "pvesh"] {
        let script = format!(
            "#!/bin/sh\n# pve-lab's {tool}: talks to the lab in {state}\nexec '{exe}' --state '{state}' {tool} \"$@\"\n",
            state = state.display(),
            exe = exe.display()
        );
        write_file_atomic(&bin.join(tool), script.as_bytes(), 0o755)?;
    }
    std::fs::create_dir_all(crate::model::template_dir(state))?;
    std::fs::create_dir_all(crate::model::dump_dir(state))?;
    std::fs::create_dir_all(crate::model::conf_dir(state))?;
    Ok(cert)
}

fn instructions(state: &Path, port: u16, fingerprint: &str) -> String {
    format!(
        "pve-lab is up: a PVE {} node 'pve' on https://127.0.0.1:{port}\n\n\
         Point launch-tui at it:\n  launch-tui --host https://127.0.0.1:{port} --fingerprint {fingerprint} --token-file {token}\n\
         and give it the lab's pct/pvesh:\n  export PATH={bin}:$PATH\n\n\
         Ticket login: root@pam, password in {pw}\nStop everything: pve-lab --state {st} down",
        read_daemon_info(state).map(|i| i.pve).unwrap_or(8),
        token = crate::auth::token_file(state, crate::auth::ROOT_TOKEN_NAME).display(),
        bin = state.join("bin").display(),
        pw = crate::auth::password_file(state).display(),
        st = state.display(),
    )
}

fn daemon_alive(state: &Path) -> Option<DaemonInfo> {
    let info = read_daemon_info(state)?;
    let alive = pid_alive(info.pid)
        && std::fs::read(format!("/proc/{}/cmdline", info.pid))
            .map(|c| String::from_utf8_lossy(&c).contains("pve-lab"))
            .unwrap_or(false);
    alive.then_some(info)
}

fn api_answers(state: &Path, port: u16) -> bool {
    LabClient::new(state, port, Duration::from_secs(3))
        .and_then(|c| c.call("GET", "/api2/json/version", &[]))
        .map(|r| r.status == 200)
        .unwrap_or(false)
}

pub fn up(opts: &UpOptions) -> Result<()> {
    let net = parse_net(&opts.prefix, &opts.subnet)?;
    pve_of(&opts.pve)?;
    if opts.foreground {
        return foreground(opts, net);
    }
    let exe = std::env::current_exe().context("finding the pve-lab executable")?;
    if let Some(info) = daemon_alive(&opts.state) {
        if api_answers(&opts.state, info.port) {
            let fp = crate::fsutil::read_trimmed(&opts.state.join("fingerprint"))?;
            println!("pve-lab is already running (pid {})", info.pid);
            println!("{}", instructions(&opts.state, info.port, &fp));
            return Ok(());
        }
    }
    ensure_host_packages(opts.yes)?;
    let cert = prepare_state(&opts.state, &exe)?;
    let log_path = opts.state.join("pve-lab.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("--state")
        .arg(&opts.state)
        .args(["up", "--foreground", "--yes"])
        .args(["--port", &opts.port.to_string()])
        .arg("--cache")
        .arg(&opts.cache)
        .args(["--pve", &opts.pve])
        .args(["--prefix", &opts.prefix, "--subnet", &opts.subnet])
        .args(["--auth-fail-delay-ms", &opts.auth_fail_delay_ms.to_string()]);
    if let Some(s) = &opts.schema {
        cmd.arg("--schema").arg(s);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our terminal session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the pve-lab daemon")?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(UpError::NotReady {
                port: opts.port,
                secs: 0,
                log: log_path.display().to_string(),
                tail: format!("(daemon exited: {status})\n{}", tail(&log_path, 15)),
            });
        }
        if api_answers(&opts.state, opts.port) {
            break;
        }
        if Instant::now() > deadline {
            bail!(UpError::NotReady {
                port: opts.port,
                secs: 90,
                log: log_path.display().to_string(),
                tail: tail(&log_path, 15),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "{}",
        instructions(&opts.state, opts.port, &cert.fingerprint)
    );
    Ok(())
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn foreground(opts: &UpOptions, net: LabNet) -> Result<()> {
    let exe = std::env::current_exe().context("finding the pve-lab executable")?;
    if let Some(info) = daemon_alive(&opts.state) {
        if info.pid != std::process::id() as i32 {
            bail!(
                "a pve-lab daemon (pid {}) already serves {}\nhelp: `pve-lab --state {} down` first",
                info.pid,
                opts.state.display(),
                opts.state.display()
            );
        }
    }
    ensure_host_packages(opts.yes)?;
    let cert = prepare_state(&opts.state, &exe)?;
    let pve = pve_of(&opts.pve)?;
    let lab = Lab::new(LabSettings {
        state: opts.state.clone(),
        cache: opts.cache.clone(),
        pve,
        schema_path: opts.schema.clone(),
        net: net.clone(),
        fingerprint: cert.fingerprint.clone(),
        auth_fail_delay: Duration::from_millis(opts.auth_fail_delay_ms),
    })?;
    // Written before the network comes up so `down` can always find what to remove.
    write_daemon_info(
        &opts.state,
        &DaemonInfo {
            pid: std::process::id() as i32,
            port: opts.port,
            pve: if pve == PveVersion::V9 { 9 } else { 8 },
            pve_container: pve.pve_container().to_string(),
            prefix: net.prefix.clone(),
            subnet: format!("{}/{}", net.subnet, net.prefix_len),
            cache: opts.cache.clone(),
            started: now_epoch(),
        },
    )?;
    lab.rt.network_up().context("bringing the lab network up")?;
    let tls = crate::tls::server_config(&cert)?;
    let lab = Arc::new(lab);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    eprintln!(
        "pve-lab: PVE {} API on https://127.0.0.1:{} (fingerprint {})",
        pve.version(),
        opts.port,
        cert.fingerprint
    );
    start_onboot(&lab);
    rt.block_on(async {
        let handle = axum_server::Handle::new();
        let h2 = handle.clone();
        tokio::spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            eprintln!(
                "pve-lab: stopping the API (containers keep running; `pve-lab down` stops them)"
            );
            h2.graceful_shutdown(Some(Duration::from_secs(5)));
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
        crate::api::serve(Arc::clone(&lab), addr, tls, handle).await
    })
}

/// Starts containers with `onboot: 1`, as a PVE node does after boot.
fn start_onboot(lab: &Arc<Lab>) {
    let vmids: Vec<u32> = crate::model::list_vmids(&lab.state)
        .into_iter()
        .filter(|v| {
            crate::model::load_conf(&lab.state, *v)
                .ok()
                .flatten()
                .is_some_and(|c| c.current.get("onboot") == Some("1") && c.lock().is_none())
        })
        .filter(|v| !lab.rt.status(*v).map(|s| s.running).unwrap_or(false))
        .collect();
    if vmids.is_empty() {
        return;
    }
    let lab2 = Arc::clone(lab);
    let _ = lab
        .tasks
        .spawn("startall", "", "root@pam", None, move |ctx| {
            for vmid in vmids {
                ctx.log(&format!("Starting CT {vmid}"));
                if let Err(e) = crate::api::start_container(&lab2, vmid, ctx) {
                    ctx.log(&format!("Starting CT {vmid} failed: {e:#}"));
                }
            }
            Ok(())
        });
}

/// Everything `down` needs to reach the runtime even when the daemon is gone.
fn runtime_for(state: &Path, cache: &Path, prefix: &str, subnet: &str) -> Result<Runtime> {
    let (cache, prefix, subnet) = match read_daemon_info(state) {
        Some(i) => (i.cache, i.prefix, i.subnet),
        None => (cache.to_path_buf(), prefix.to_string(), subnet.to_string()),
    };
    Ok(Runtime::new(
        state.to_path_buf(),
        cache,
        parse_net(&prefix, &subnet)?,
    ))
}

fn stop_daemon(state: &Path) -> Result<Option<i32>> {
    let Some(info) = daemon_alive(state) else {
        return Ok(None);
    };
    // SAFETY: plain kill(2) on the pid we recorded and just verified to be pve-lab.
    unsafe { libc::kill(info.pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(info.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if pid_alive(info.pid) {
        // SAFETY: as above.
        unsafe { libc::kill(info.pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Some(info.pid))
}

pub fn down(state: &Path, cache: &Path, prefix: &str, subnet: &str) -> Result<()> {
    if let Some(pid) = stop_daemon(state)? {
        println!("stopped the pve-lab daemon (pid {pid})");
    }
    let rt = runtime_for(state, cache, prefix, subnet)?;
    for vmid in rt.running_vmids() {
        match rt.stop(vmid) {
            Ok(()) => println!("stopped CT {vmid}"),
            Err(e) => eprintln!("stopping CT {vmid} failed: {e:#}"),
        }
    }
    rt.network_down().context("removing the lab network")?;
    let left = rt.leftovers();
    if !left.is_empty() {
        bail!(
            "pve-lab down left these behind:\n  {}\nhelp: run `pve-lab --state {} down` again; if they stay, remove them by hand",
            left.join("\n  "),
            state.display()
        );
    }
    println!(
        "pve-lab is down: no container, bridge, veth, namespace, nft table, mount or dnsmasq of '{}' remains",
        rt.net().prefix
    );
    Ok(())
}

pub fn status(state: &Path, cache: &Path, prefix: &str, subnet: &str) -> Result<()> {
    match daemon_alive(state) {
        Some(info) => {
            let answering = api_answers(state, info.port);
            println!(
                "daemon: running (pid {}, port {}, PVE {}, API {})",
                info.pid,
                info.port,
                info.pve,
                if answering {
                    "answering"
                } else {
                    "NOT answering"
                }
            );
        }
        None => println!("daemon: not running"),
    }
    let rt = runtime_for(state, cache, prefix, subnet)?;
    println!(
        "network: bridge {} on {}/{}",
        rt.net().bridge(),
        rt.net().gateway(),
        rt.net().prefix_len
    );
    let vmids = crate::model::list_vmids(state);
    if vmids.is_empty() {
        println!("containers: none");
    }
    for vmid in vmids {
        let cfg = crate::model::load_conf(state, vmid)?.unwrap_or_default();
        let st = rt.status(vmid).unwrap_or_default();
        println!(
            "CT {vmid}: {} {}{}",
            cfg.current.get("hostname").unwrap_or("-"),
            if st.running { "running" } else { "stopped" },
            cfg.lock()
                .map(|l| format!(" (locked: {l})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `pve-lab token add NAME --privs ...`
pub fn token_add(
    state: &Path,
    name: &str,
    privs: &[String],
    acl: &[String],
    acl_here: &[String],
) -> Result<()> {
    let privs: Vec<String> = privs
        .iter()
        .flat_map(|p| p.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let mut entries = Vec::new();
    for (spec, propagate) in acl
        .iter()
        .map(|a| (a, true))
        .chain(acl_here.iter().map(|a| (a, false)))
    {
        let (path, list) = spec.split_once('=').with_context(|| {
            format!(
                "ACL '{spec}' is not PATH=PRIVS\nhelp: e.g. --acl /vms/100=VM.Audit,VM.PowerMgmt"
            )
        })?;
        if !path.starts_with('/') {
            bail!("ACL path '{path}' does not start with '/'\nhelp: e.g. /storage/local");
        }
        entries.push(crate::auth::AclEntry {
            path: match path.trim_end_matches('/') {
                "" => "/".to_string(),
                p => p.to_string(),
            },
            privs: list.split(',').map(|p| p.trim().to_string()).collect(),
            propagate,
        });
    }
    let described: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{}={}{}",
                e.path,
                e.privs.join(","),
                if e.propagate { "" } else { " (this path only)" }
            )
        })
        .collect();
    let path = crate::auth::ensure_token_acl(state, name, Some(privs.clone()), entries)?;
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    println!(
        "token root@pam!{name} with {}{} written to {} (mode {mode:o})",
        if privs.is_empty() {
            "no privileges on /".to_string()
        } else {
            format!("/={}", privs.join(","))
        },
        if described.is_empty() {
            String::new()
        } else {
            format!(", {}", described.join(", "))
        },
        path.display()
    );
    Ok(())
}

/// `pve-lab fault ...`: one call to the daemon's `/lab/...` admin endpoint.
pub fn fault(state: &Path, method: &str, what: &str, params: &[(String, String)]) -> Result<()> {
    let client = LabClient::from_state(state, Duration::from_secs(30))?;
    let resp = client.call(method, &format!("/lab/{what}"), params)?;
    if resp.status != 200 {
        bail!("the lab refused: {} {}", resp.status, resp.reason);
    }
    match resp.body.get("data") {
        Some(serde_json::Value::Null) | None => println!("ok"),
        Some(d) => println!("{}", serde_json::to_string_pretty(d)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_and_prefixes() {
        let n = parse_net("plaba", "10.77.2.5/24").unwrap();
        assert_eq!(n.subnet, Ipv4Addr::new(10, 77, 2, 0));
        assert!(parse_net("toolongname", "10.77.2.0/24").is_err());
        assert!(parse_net("p-x", "10.77.2.0/24").is_err());
        assert!(parse_net("plab0", "10.77.2.0").is_err());
        assert!(parse_net("plab0", "10.77.2.0/8").is_err());
        let e = parse_net("plab0", "x/24").unwrap_err().to_string();
        assert!(e.contains("'x/24'") && e.contains("help:"));
    }
}
