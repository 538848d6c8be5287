//! The nginx side of a blue-green switch, inside the container. nginx's reload can exit 0 and
//! keep serving the old config (an apply-time error only reaches its error log), so every change
//! here is proven by a request through nginx, never by exit codes alone.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::ct::{sh, CtAccess};
use crate::render::{self, Layout};

/// `worker_shutdown_timeout` lives in nginx's main context; Debian's nginx.conf includes
/// `modules-enabled/*.conf` there.
const SHUTDOWN_CONF: &str = "/etc/nginx/modules-enabled/90-launch-shutdown.conf";

pub struct Proxy<'a> {
    pub ct: &'a dyn CtAccess,
    pub vmid: u32,
    pub profile: &'a str,
    /// The port nginx serves HTTP on (what the probes go to).
    pub http_port: u16,
}

impl Proxy<'_> {
    /// Writes a file atomically in the container (temp name, then rename).
    fn put(&self, path: &str, text: &str) -> Result<()> {
        let tmp = format!("{path}.launch-new");
        self.ct
            .write(self.vmid, &tmp, text.as_bytes(), 0o644, None)?;
        sh(self.ct, self.vmid, &format!("mv -f {tmp} {path}"))?;
        Ok(())
    }

    /// `nginx -t`, then reload.
    pub fn reload(&self) -> Result<()> {
        let out = self.ct.exec(
            self.vmid,
            &[
                "/bin/sh",
                "-c",
                "nginx -t -q 2>&1 && systemctl reload nginx 2>&1",
            ],
        )?;
        if !out.ok() {
            bail!(
                "nginx rejected the new configuration, so it keeps the old one:\n{}",
                out.tail(6)
            );
        }
        Ok(())
    }

    /// nginx's worker processes now (read from /proc: a minimal Debian has no procps).
    fn worker_pids(&self) -> Result<Vec<u32>> {
        let out = self.ct.exec(
            self.vmid,
            &[
                "/bin/sh",
                "-c",
                "grep -ls 'nginx: worker proces[s]' /proc/[0-9]*/cmdline; true",
            ],
        )?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| {
                l.strip_prefix("/proc/")?
                    .strip_suffix("/cmdline")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// `nginx -t`, then reload (or start), and return only when every worker from before has
    /// exited: a reload returns as soon as the master got the signal, and until the old workers
    /// let go, a new connection can still meet the old configuration (the default site, the
    /// old upstream). In-flight requests get `worker_shutdown_timeout`, so `limit` bounds it.
    pub fn reload_proven(&self, limit: Duration) -> Result<Duration> {
        let t = Instant::now();
        let before = self.worker_pids()?;
        let out = self.ct.exec(
            self.vmid,
            &[
                "/bin/sh",
                "-c",
                "nginx -t -q 2>&1 && systemctl reload-or-restart nginx 2>&1",
            ],
        )?;
        if !out.ok() {
            bail!(
                "nginx rejected the new configuration, so it keeps the old one:\n{}",
                out.tail(6)
            );
        }
        if before.is_empty() {
            return Ok(t.elapsed());
        }
        let pids: Vec<String> = before.iter().map(u32::to_string).collect();
        let script = format!(
            "for p in {}; do grep -qs 'nginx: worker' /proc/$p/cmdline && echo $p; done; true",
            pids.join(" ")
        );
        loop {
            let left = self.ct.exec(self.vmid, &["/bin/sh", "-c", &script])?;
            if left.stdout.trim().is_empty() {
                return Ok(t.elapsed());
            }
            if t.elapsed() > limit {
                bail!(
                    "nginx's workers from before the reload ({}) still run {} s later\n  help: see `pct exec {} -- tail /var/log/nginx/error.log`",
                    left.stdout.split_whitespace().collect::<Vec<_>>().join(", "),
                    limit.as_secs(),
                    self.vmid
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Makes old workers stop after `drain_s` (else a WebSocket keeps one, and its slot, alive).
    pub fn ensure_shutdown_timeout(&self, drain_s: u32) -> Result<bool> {
        let want = format!(
            "# Written by launch-tui: old workers finish in-flight requests for at most this long.\nworker_shutdown_timeout {drain_s}s;\n"
        );
        let have = self.ct.exec(self.vmid, &["cat", SHUTDOWN_CONF])?;
        if have.ok() && have.stdout == want {
            return Ok(false);
        }
        self.put(SHUTDOWN_CONF, &want)?;
        Ok(true)
    }

    /// Points the active upstream at `port` (not yet reloaded).
    pub fn set_upstream(&self, port: u16) -> Result<()> {
        self.put(
            &Layout::upstream_include(self.profile),
            &render::nginx_upstream(&Layout::upstream_name(self.profile), port),
        )
    }

    /// The port the upstream include names now.
    pub fn upstream_port(&self) -> Result<Option<u16>> {
        let out = self
            .ct
            .exec(self.vmid, &["cat", &Layout::upstream_include(self.profile)])?;
        Ok(out.stdout.lines().find_map(|l| {
            l.trim()
                .strip_prefix("server 127.0.0.1:")
                .and_then(|r| r.trim_end_matches(';').parse().ok())
        }))
    }

    pub fn hold_on(&self) -> Result<()> {
        self.put(&Layout::hold_file(self.profile), &render::nginx_hold(5))
    }

    pub fn hold_off(&self) -> Result<()> {
        sh(
            self.ct,
            self.vmid,
            &format!("rm -f {}", Layout::hold_file(self.profile)),
        )?;
        Ok(())
    }

    pub fn hold_present(&self) -> Result<bool> {
        Ok(self
            .ct
            .exec(self.vmid, &["test", "-e", &Layout::hold_file(self.profile)])?
            .ok())
    }

    /// A probe through nginx: the upstream port that answered, and whether writes are held.
    /// A POST meets the write hold (answered by nginx itself); a GET reaches the upstream.
    fn probe(&self, method: &str) -> Result<(Option<u16>, bool)> {
        let out = self.ct.exec(
            self.vmid,
            &[
                "curl",
                "-s",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-D",
                "-",
                "-X",
                method,
                "-H",
                "X-Launch-Probe: 1",
                &format!("http://127.0.0.1:{}/.launch-probe", self.http_port),
            ],
        )?;
        let mut port = None;
        let mut held = false;
        for line in out.stdout.lines() {
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("x-launch-upstream:") {
                port = v.trim().rsplit(':').next().and_then(|p| p.parse().ok());
            }
            if lower.starts_with("x-launch-hold:") {
                held = true;
            }
        }
        Ok((port, held))
    }

    /// Polls through nginx until the hold is in the state wanted.
    pub fn prove_hold(&self, on: bool) -> Result<Duration> {
        let t = Instant::now();
        loop {
            let (_, held) = self.probe("POST")?;
            if held == on {
                return Ok(t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!(
                    "nginx still {} writes 10 s after the reload: it did not apply the new configuration\n  help: see `pct exec {} -- tail /var/log/nginx/error.log`",
                    if on { "lets through" } else { "holds" },
                    self.vmid
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls through nginx until requests reach `port`: the proof of a switch.
    pub fn prove_upstream(&self, port: u16) -> Result<Duration> {
        let t = Instant::now();
        loop {
            let (got, _) = self.probe("GET")?;
            if got == Some(port) {
                return Ok(t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!(
                    "nginx does not send requests to 127.0.0.1:{port} 10 s after the reload (they reach {}): it did not apply the new configuration\n  help: see `pct exec {} -- tail /var/log/nginx/error.log`",
                    got.map(|p| format!("127.0.0.1:{p}")).unwrap_or_else(|| "nothing".into()),
                    self.vmid
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until nginx's old workers (from before the last reload) have finished their
    /// in-flight requests, up to `limit`; returns how long that took, or None on timeout.
    pub fn wait_old_workers(&self, limit: Duration) -> Result<Option<Duration>> {
        let t = Instant::now();
        loop {
            // /proc directly: a minimal Debian has no procps (pgrep).
            let out = self.ct.exec(
                self.vmid,
                &[
                    "/bin/sh",
                    "-c",
                    "grep -ls 'worker process is shutting dow[n]' /proc/[0-9]*/cmdline; true",
                ],
            )?;
            if out.stdout.trim().is_empty() {
                return Ok(Some(t.elapsed()));
            }
            if t.elapsed() > limit {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
