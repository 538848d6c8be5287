//! DHCP on the lab's bridge, as a router on a PVE node's LAN gives it: Debian's dnsmasq on
//! the bridge hands each `ip=dhcp` container the address reserved for its MAC, and the
//! container asks for it itself (systemd-networkd; PVE's Debian templates use ifupdown's
//! dhclient, which the lab's minbase template lacks). `renumber` moves every reservation, as
//! a router that lost its leases does: a container keeps its address until it asks again (at a
//! restart, or when its lease runs out: 2 minutes here).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::cmd::{self, tool};
use super::Runtime;

/// One reservation: the container's MAC and the address it gets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Reservation {
    mac: String,
    ip: Ipv4Addr,
}

impl Runtime {
    fn dhcp_dir(&self) -> PathBuf {
        self.state_dir.join("dhcp")
    }

    fn dhcp_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dhcp_dir().join("dnsmasq.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // Only a dnsmasq started for this lab's state counts (pids are reused).
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv = String::from_utf8_lossy(&argv);
        let dnsmasq = argv
            .split('\0')
            .next()
            .is_some_and(|a| a.ends_with("dnsmasq"));
        let ours = argv.contains(&self.dhcp_dir().display().to_string());
        (dnsmasq && ours).then_some(pid)
    }

    fn reservations(&self) -> BTreeMap<u32, Reservation> {
        std::fs::read(self.dhcp_dir().join("reservations.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the reservations and dnsmasq's hosts file, then has dnsmasq re-read it.
    fn save_reservations(&self, r: &BTreeMap<u32, Reservation>) -> Result<()> {
        let dir = self.dhcp_dir();
        cmd::write_atomic(
            &dir.join("reservations.json"),
            &serde_json::to_vec_pretty(r)?,
            0o644,
        )?;
        let hosts: String = r
            .values()
            .map(|x| format!("{},{}\n", x.mac, x.ip))
            .collect();
        cmd::write_atomic(&dir.join("hosts"), hosts.as_bytes(), 0o644)?;
        if let Some(pid) = self.dhcp_pid() {
            // SAFETY: a signal to the dnsmasq we started (checked by its command line).
            unsafe { libc::kill(pid, libc::SIGHUP) };
        }
        Ok(())
    }

    /// Every live dnsmasq serving this lab's bridge (`--interface=<bridge>` exactly), whatever
    /// state dir it was started for.
    pub(crate) fn bridge_dnsmasqs(&self) -> Vec<i32> {
        let iface = format!("--interface={}", self.net.bridge());
        cmd::all_pids()
            .into_iter()
            .filter(|&pid| {
                let argv = cmd::proc_cmdline(pid);
                argv.first().is_some_and(|a| a.ends_with("dnsmasq"))
                    && argv.contains(&iface)
                    && cmd::proc_start_time(pid).is_some()
            })
            .collect()
    }

    /// Stops every dnsmasq on the bridge started for another state dir: one left by a lab with
    /// this prefix whose `down` never ran (a killed test) still answers DHCP with its own hosts
    /// file and `--dhcp-authoritative`, so the new containers never get their addresses.
    /// Ours are told by their pid file, so one this lab is starting right now is never hit.
    fn stop_leftover_dnsmasqs(&self) -> Result<()> {
        let our_pid_file = format!(
            "--pid-file={}",
            self.dhcp_dir().join("dnsmasq.pid").display()
        );
        for pid in self.bridge_dnsmasqs() {
            let argv = cmd::proc_cmdline(pid);
            if argv.contains(&our_pid_file) {
                continue;
            }
            let from = argv
                .iter()
                .find_map(|a| a.strip_prefix("--pid-file="))
                .and_then(|f| Path::new(f).parent()?.parent().map(Path::to_path_buf))
                .map(|dir| format!(" in {}", dir.display()))
                .unwrap_or_default();
            stop_process(pid).with_context(|| {
                format!(
                    "stopping the leftover dnsmasq (pid {pid}) on {}",
                    self.net.bridge()
                )
            })?;
            // The runtime has no event channel for this one-off host repair; the daemon's
            // stderr (its log) and `pve-lab down`'s terminal are where it is seen.
            eprintln!(
                "pve-lab: stopped a leftover dnsmasq (pid {pid}) on bridge {} from an earlier lab{from} that was not brought down",
                self.net.bridge()
            );
        }
        Ok(())
    }

    /// Starts dnsmasq on the bridge unless it runs; first stops any other lab's dnsmasq left
    /// on it. Called once the bridge has its address.
    pub(crate) fn dhcp_up(&self) -> Result<()> {
        self.stop_leftover_dnsmasqs()?;
        if self.dhcp_pid().is_some() {
            return Ok(());
        }
        let dir = self.dhcp_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if !dir.join("hosts").exists() {
            self.save_reservations(&self.reservations())?;
        }
        if cmd::find_tool("dnsmasq").is_none() {
            return Err(super::RuntimeError::ToolMissing {
                tool: "dnsmasq",
                package: "dnsmasq-base",
            }
            .into());
        }
        let mask = Ipv4Addr::from(u32::MAX << (32 - u32::from(self.net.prefix_len)));
        let p = |f: &str| dir.join(f).display().to_string();
        cmd::run(tool("dnsmasq").args([
            "--conf-file=/dev/null".to_string(),
            // DHCP only: containers resolve through what PVE writes into resolv.conf.
            "--port=0".into(),
            format!("--interface={}", self.net.bridge()),
            "--bind-interfaces".into(),
            "--except-interface=lo".into(),
            format!("--dhcp-range={},static,{mask},2m", self.net.subnet),
            format!("--dhcp-option=option:router,{}", self.net.gateway()),
            format!("--dhcp-hostsfile={}", p("hosts")),
            format!("--dhcp-leasefile={}", p("leases")),
            format!("--pid-file={}", p("dnsmasq.pid")),
            "--dhcp-authoritative".into(),
            "--log-dhcp".into(),
            format!("--log-facility={}", p("dnsmasq.log")),
            "--user=root".into(),
            "--group=root".into(),
        ]))
        .context("starting dnsmasq, the lab's DHCP server")?;
        Ok(())
    }

    /// Stops the lab's dnsmasq (its reservations stay, as a router's would), and any other
    /// lab's left on the bridge.
    pub(crate) fn dhcp_down(&self) -> Result<()> {
        if let Some(pid) = self.dhcp_pid() {
            if let Some(start) = cmd::proc_start_time(pid) {
                // SAFETY: a signal to the dnsmasq we started (checked by its command line).
                unsafe { libc::kill(pid, libc::SIGTERM) };
                anyhow::ensure!(
                    wait_gone(pid, start, Duration::from_secs(5)),
                    "dnsmasq (pid {pid}) still runs 5 s after SIGTERM"
                );
            }
        }
        let _ = std::fs::remove_file(self.dhcp_dir().join("dnsmasq.pid"));
        self.stop_leftover_dnsmasqs()
    }

    /// Reserves `ip` for CT `vmid`'s MAC, keeping an existing reservation's address.
    pub(crate) fn dhcp_reserve(&self, vmid: u32, mac: &str, ip: Ipv4Addr) -> Result<Ipv4Addr> {
        let mut r = self.reservations();
        let mac = mac.to_ascii_lowercase();
        let ip = match r.get(&vmid) {
            Some(old) => old.ip,
            None => ip,
        };
        r.insert(
            vmid,
            Reservation {
                mac: mac.clone(),
                ip,
            },
        );
        self.save_reservations(&r)?;
        // dnsmasq does not give an address leased to another MAC until that lease ends (a
        // destroyed CT's, when a new one gets its VMID): the lab forgets such a lease, as an
        // admin would clear it on a router.
        self.forget_leases(|l| l.contains(&format!(" {ip} ")) && !l.contains(&mac))?;
        self.dhcp_up()?;
        Ok(ip)
    }

    pub(crate) fn dhcp_release(&self, vmid: u32) -> Result<()> {
        let mut r = self.reservations();
        if let Some(old) = r.remove(&vmid) {
            self.save_reservations(&r)?;
            self.forget_leases(|l| l.contains(&old.mac))?;
        }
        Ok(())
    }

    /// Drops the lease lines `matches` selects; dnsmasq keeps leases in memory, so it is
    /// stopped for the edit and started again.
    fn forget_leases(&self, matches: impl Fn(&str) -> bool) -> Result<()> {
        let path = self.dhcp_dir().join("leases");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        if !text.lines().any(&matches) {
            return Ok(());
        }
        let running = self.dhcp_pid().is_some();
        self.dhcp_down()?;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|l| !matches(l))
            .map(|l| format!("{l}\n"))
            .collect();
        cmd::write_atomic(&path, kept.as_bytes(), 0o644)?;
        if running {
            self.dhcp_up()?;
        }
        Ok(())
    }

    /// Moves every reservation 50 addresses on within .100–.199 of the subnet (the lab's DHCP
    /// pool): the next request of each container gets a new address.
    pub(crate) fn dhcp_renumber(&self) -> Result<Vec<(u32, Ipv4Addr, Ipv4Addr)>> {
        let mut r = self.reservations();
        let base = u32::from(self.net.subnet);
        let mut moved = Vec::new();
        for (vmid, res) in r.iter_mut() {
            let off = u32::from(res.ip).saturating_sub(base + 100) % 100;
            let new = Ipv4Addr::from(base + 100 + (off + 50) % 100);
            moved.push((*vmid, res.ip, new));
            res.ip = new;
        }
        self.save_reservations(&r)?;
        Ok(moved)
    }
}

/// SIGTERM, then SIGKILL if it still runs after 5 s; Ok once the process is gone.
fn stop_process(pid: i32) -> Result<()> {
    // Its start time tells it from a later process that gets the same pid.
    let Some(start) = cmd::proc_start_time(pid) else {
        return Ok(());
    };
    cmd::send_signal(pid, libc::SIGTERM);
    if wait_gone(pid, start, Duration::from_secs(5)) {
        return Ok(());
    }
    cmd::send_signal(pid, libc::SIGKILL);
    anyhow::ensure!(
        wait_gone(pid, start, Duration::from_secs(5)),
        "pid {pid} still runs 5 s after SIGKILL"
    );
    Ok(())
}

/// Whether the process (pid and start time) ended, or became a zombie, within `timeout`.
fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cmd::proc_start_time(pid) != Some(start) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
