//! The nginx side of a blue-green switch, inside the container. The site's Lua reads the active
//! slot's port and the write hold's flag per request, so switching and holding are atomic file
//! renames with no reload (keep-alive connections survive them). Reloads remain for new site
//! files; nginx's reload can exit 0 and keep serving the old config (an apply-time error only
//! reaches its error log), so every change here is proven by a request through nginx, never by
//! exit codes alone.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::ct::{sh, CtAccess};
use crate::render::{self, Layout};

/// `worker_shutdown_timeout` lives in nginx's main context; Debian's nginx.conf includes
/// `modules-enabled/*.conf` there.
const SHUTDOWN_CONF: &str = "/etc/nginx/modules-enabled/90-launch-shutdown.conf";

/// What a probe through nginx learned from its answer's headers.
#[derive(Default)]
struct Probe {
    /// The upstream port that answered.
    port: Option<u16>,
    /// Writes are held.
    held: bool,
    /// Writes in flight (the site's Lua counts them).
    writes: Option<u64>,
    /// The configuration id of the site that answered.
    config: Option<String>,
}

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
    /// Then a probe must be answered by the new site's configuration id.
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
        if !before.is_empty() {
            self.wait_workers_gone(&before, limit, t)?;
        }
        self.prove_config(t, limit)?;
        Ok(t.elapsed())
    }

    /// Polls through nginx until a request is answered by the site file's configuration (its
    /// `# launch-config:` id in `X-Launch-Config`). A site without an id (written by an older
    /// launch-tui) is proven by its workers alone.
    fn prove_config(&self, t: Instant, limit: Duration) -> Result<()> {
        let site = self
            .ct
            .exec(self.vmid, &["cat", &Layout::nginx_site(self.profile)])?;
        let Some(want) = render::site_config_id(&site.stdout).map(str::to_string) else {
            return Ok(());
        };
        loop {
            let got = self.probe("GET")?.config;
            if got.as_deref() == Some(want.as_str()) {
                return Ok(());
            }
            if t.elapsed() > limit {
                bail!(
                    "nginx does not answer with the new configuration {want} {} s after the reload (it answers {})\n  help: see `pct exec {} -- tail /var/log/nginx/error.log`",
                    limit.as_secs(),
                    got.unwrap_or_else(|| "without one".into()),
                    self.vmid
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_workers_gone(&self, before: &[u32], limit: Duration, t: Instant) -> Result<()> {
        let pids: Vec<String> = before.iter().map(u32::to_string).collect();
        let script = format!(
            "for p in {}; do grep -qs 'nginx: worker' /proc/$p/cmdline && echo $p; done; true",
            pids.join(" ")
        );
        loop {
            let left = self.ct.exec(self.vmid, &["/bin/sh", "-c", &script])?;
            if left.stdout.trim().is_empty() {
                return Ok(());
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

    /// Sets the write hold: from the next request on, nginx holds requests that could write.
    pub fn hold_on(&self) -> Result<()> {
        self.put(
            &Layout::hold_file(self.profile),
            "# Written by launch-tui during an update: while this file exists nginx holds writes.\n",
        )
    }

    /// Lifts the write hold: the writes nginx holds go on, to the slot the upstream file names.
    pub fn hold_off(&self) -> Result<()> {
        sh(
            self.ct,
            self.vmid,
            &format!(
                "rm -f {} {}",
                Layout::hold_file(self.profile),
                Layout::legacy_hold_file(self.profile)
            ),
        )?;
        Ok(())
    }

    /// Installs Debian's nginx Lua module (the site's switch and hold need it) when the
    /// container lacks it: an instance installed by an older launch-tui. Returns whether it did.
    pub fn ensure_lua_module(&self) -> Result<bool> {
        let have = self
            .ct
            .exec(
                self.vmid,
                &[
                    "test",
                    "-e",
                    "/etc/nginx/modules-enabled/50-mod-http-lua.conf",
                ],
            )?
            .ok();
        if !have {
            sh(
                self.ct,
                self.vmid,
                "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends libnginx-mod-http-lua >/dev/null",
            )?;
        }
        Ok(!have)
    }

    /// Makes nginx serve `site` with the Lua switch and hold: installs Debian's Lua module if
    /// the container lacks it (an instance from before), writes the site when it differs, and
    /// reloads, proven. Returns whether anything changed. Run before the hold: an update
    /// itself then needs no reload.
    pub fn ensure_lua_site(&self, site: &str, drain_s: u32) -> Result<bool> {
        let mut changed = self.ensure_lua_module()?;
        changed |= self.ensure_shutdown_timeout(drain_s)?;
        let path = Layout::nginx_site(self.profile);
        let have = self.ct.exec(self.vmid, &["cat", &path])?;
        if !(have.ok() && have.stdout == site) {
            self.put(&path, site)?;
            changed = true;
        }
        if changed {
            self.reload_proven(Duration::from_secs(u64::from(drain_s) + 30))?;
        }
        Ok(changed)
    }

    pub fn hold_present(&self) -> Result<bool> {
        Ok(self
            .ct
            .exec(self.vmid, &["test", "-e", &Layout::hold_file(self.profile)])?
            .ok())
    }

    /// A probe through nginx: the upstream port that answered, whether writes are held, and
    /// how many writes are in flight. A POST meets the write hold (answered at once by nginx
    /// itself, as a probe); a GET reaches the upstream.
    fn probe(&self, method: &str) -> Result<Probe> {
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
        let mut p = Probe::default();
        for line in out.stdout.lines() {
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("x-launch-upstream:") {
                p.port = v.trim().rsplit(':').next().and_then(|p| p.parse().ok());
            }
            if lower.starts_with("x-launch-hold:") {
                p.held = true;
            }
            if let Some(v) = lower.strip_prefix("x-launch-writes:") {
                p.writes = v.trim().parse().ok();
            }
            if let Some(v) = lower.strip_prefix("x-launch-config:") {
                p.config = Some(v.trim().to_string());
            }
        }
        Ok(p)
    }

    /// Polls through nginx until the hold is in the state wanted.
    pub fn prove_hold(&self, on: bool) -> Result<Duration> {
        let t = Instant::now();
        loop {
            let held = self.probe("POST")?.held;
            if held == on {
                return Ok(t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(10) {
                bail!(
                    "nginx still {} writes 10 s after the hold file changed: its Lua hold does not see it\n  help: see `pct exec {} -- tail /var/log/nginx/error.log`",
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
            let got = self.probe("GET")?.port;
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

    /// After the hold is set: waits until the writes nginx let through before it have been
    /// answered (the site's Lua counts them), up to `limit`; None on timeout.
    pub fn wait_writes_done(&self, limit: Duration) -> Result<Option<Duration>> {
        let t = Instant::now();
        loop {
            let writes = self.probe("GET")?.writes;
            match writes {
                Some(0) => return Ok(Some(t.elapsed())),
                Some(_) => {}
                None => bail!(
                    "nginx does not report its writes in flight: the site lacks the Lua hold\n  help: see `pct exec {} -- nginx -T`",
                    self.vmid
                ),
            }
            if t.elapsed() > limit {
                return Ok(None);
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
