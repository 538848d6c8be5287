//! Booting, stopping and entering containers: systemd-nspawn started detached inside the
//! container's netns, its init found through /proc, commands run with `nsenter -t INIT -a`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::cmd::{self, tool};
use super::state::RunState;
use super::{CtRuntimeStatus, Runtime, RuntimeError, StartSpec};

/// How long `start` waits for systemd inside to report running/degraded.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-vmid operations wait this long for each other (a snapshot or vzdump of a big disk
/// can take a while).
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Runtime {
    pub(crate) fn lock_ct(&self, vmid: u32) -> Result<cmd::FileLock> {
        super::validate_vmid(vmid)?;
        cmd::FileLock::acquire(&self.lock_path(vmid), LOCK_TIMEOUT, &format!("CT {vmid}"))
    }

    pub(crate) fn existing_image(&self, vmid: u32) -> Result<PathBuf, RuntimeError> {
        super::validate_vmid(vmid)?;
        let img = self.image_path(vmid);
        if img.is_file() {
            Ok(img)
        } else {
            Err(RuntimeError::NoSuchCt { vmid })
        }
    }

    pub(crate) fn live_run_state(&self, vmid: u32) -> Option<RunState> {
        self.read_run_state(vmid).filter(RunState::alive)
    }

    /// The mounted rootfs of a running container.
    pub(crate) fn live_mountpoint(&self, vmid: u32) -> Option<PathBuf> {
        self.live_run_state(vmid)
            .map(|st| st.mountpoint)
            .filter(|mp| cmd::is_mountpoint(mp))
    }

    /// Cleans what a container that is no longer running left: its mount, netns, veth,
    /// cgroups and run record. Caller holds the vmid lock.
    pub(crate) fn reap(&self, vmid: u32) -> Result<()> {
        let st = self.read_run_state(vmid);
        if st.as_ref().is_some_and(RunState::alive) {
            return Ok(());
        }
        let mp = st
            .as_ref()
            .map(|s| s.mountpoint.clone())
            .unwrap_or_else(|| self.mountpoint(vmid));
        cmd::umount(&mp)?;
        let _ = std::fs::remove_dir(&mp);
        self.ct_net_down(vmid);
        let cgroups = st.map(|s| s.cgroups).unwrap_or_default();
        for cg in cgroups.iter().rev() {
            remove_cgroup(cg);
        }
        self.remove_run_state(vmid);
        Ok(())
    }

    pub(crate) fn ct_start(&self, spec: &StartSpec, log: &mut dyn FnMut(&str)) -> Result<()> {
        let vmid = spec.vmid;
        self.net.validate()?;
        validate_hostname(&spec.hostname)?;
        let _lock = self.lock_ct(vmid)?;
        let img = self.existing_image(vmid)?;
        if self.live_run_state(vmid).is_some() {
            return Err(RuntimeError::AlreadyRunning { vmid }.into());
        }
        self.reap(vmid)?;
        let started = Instant::now();
        let res = self.boot(spec, &img, log);
        if let Err(e) = res {
            // Leave nothing half-started behind; the error says what went wrong.
            let _ = self.stop_locked(vmid);
            let _ = self.reap(vmid);
            return Err(e);
        }
        log(&format!(
            "CT {vmid} is up after {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    fn boot(&self, spec: &StartSpec, img: &Path, log: &mut dyn FnMut(&str)) -> Result<()> {
        let vmid = spec.vmid;
        let mp = self.mountpoint(vmid);
        self.apply_pending_grow(vmid)?;
        log(&format!("mounting {}", img.display()));
        super::image::mount_loop(img, &mp, false)?;
        prepare_rootfs(&mp, spec)
            .context("writing the container's hostname, hosts, resolv.conf and credentials")?;
        let (ns, veth) = self.ct_net_up(spec)?;
        let cgroups = self.make_cgroups(vmid, spec)?;
        let ct_dir = self.ct_dir(vmid);
        std::fs::create_dir_all(&ct_dir)
            .with_context(|| format!("creating {}", ct_dir.display()))?;
        let console = self.console_log_path(vmid);
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&console)
            .with_context(|| format!("creating {}", console.display()))?;

        // The launcher shell joins the cgroups, starts nspawn in a new session with its
        // output in console.log, prints its pid and exits: nspawn is then nobody's child
        // but init's, so it outlives whoever called start (a CLI run, a test).
        let script = r#"log=$1; shift; n=$1; shift
i=0
while [ "$i" -lt "$n" ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; i=$((i+1)); done
setsid "$@" </dev/null >>"$log" 2>&1 &
echo $!"#;
        let nsenter = cmd::find_tool("nsenter").unwrap_or_else(|| "nsenter".into());
        let nspawn = cmd::find_tool("systemd-nspawn").ok_or(RuntimeError::ToolMissing {
            tool: "systemd-nspawn",
            package: "systemd-container",
        })?;
        let mut c = tool("sh");
        c.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&console)
            .arg(cgroups.len().to_string())
            .args(&cgroups)
            .arg(&nsenter)
            .arg(format!("--net=/run/netns/{ns}"))
            .arg("--")
            .arg(&nspawn)
            .arg("-D")
            .arg(&mp)
            .args([
                "--register=no",
                "--keep-unit",
                "-M",
                &self.machine_name(vmid),
                &format!("--hostname={}", spec.hostname),
                "--console=read-only",
                "--resolv-conf=off",
                "--timezone=off",
                "--link-journal=no",
                "--settings=no",
                // nspawn drops it when it does not make the network namespace itself; a PVE
                // container holds it over its own network (DHCP clients need it).
                "--capability=CAP_NET_ADMIN",
            ])
            .args(init_args(spec.confined, spec.dhcp)?)
            .env("PATH", DEFAULT_PATH);
        let out = cmd::run(&mut c)?;
        let pid: i32 = cmd::stdout_str(&out).trim().parse().with_context(|| {
            format!(
                "the nspawn launcher printed no pid: {:?}",
                cmd::stdout_str(&out)
            )
        })?;
        let pid_start = cmd::proc_start_time(pid).ok_or_else(|| RuntimeError::BootFailed {
            vmid,
            reason: "systemd-nspawn exited right away".into(),
            console: self.console_tail(vmid),
        })?;
        let st = RunState {
            pid,
            pid_start,
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            netns: ns,
            veth,
            mountpoint: mp,
            cgroups,
        };
        self.write_run_state(vmid, &st)?;
        log(&format!(
            "systemd-nspawn started (pid {pid}); waiting for systemd inside"
        ));
        self.wait_ready(&st, vmid, log)
    }

    fn wait_ready(&self, st: &RunState, vmid: u32, log: &mut dyn FnMut(&str)) -> Result<()> {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if !st.alive() {
                return Err(RuntimeError::BootFailed {
                    vmid,
                    reason: "systemd-nspawn exited during boot".into(),
                    console: self.console_tail(vmid),
                }
                .into());
            }
            if let Some(init) = find_init(st.pid) {
                let mut c = nsenter_cmd(
                    init,
                    &st.cgroups,
                    &["systemctl".into(), "is-system-running".into()],
                );
                c.stdin(Stdio::null());
                if let Ok(out) = c.output() {
                    last = cmd::stdout_str(&out).trim().to_string();
                    match last.as_str() {
                        "running" => return Ok(()),
                        "degraded" => {
                            let mut f = nsenter_cmd(
                                init,
                                &st.cgroups,
                                &[
                                    "systemctl".into(),
                                    "--failed".into(),
                                    "--no-legend".into(),
                                    "--plain".into(),
                                ],
                            );
                            if let Ok(o) = f.stdin(Stdio::null()).output() {
                                log(&format!(
                                    "CT {vmid} is degraded; failed units:\n{}",
                                    cmd::stdout_str(&o).trim_end()
                                ));
                            }
                            return Ok(());
                        }
                        _ => {}
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(RuntimeError::BootTimeout {
            vmid,
            secs: BOOT_TIMEOUT.as_secs(),
            state: if last.is_empty() {
                "unknown".into()
            } else {
                last
            },
            console: self.console_tail(vmid),
        }
        .into())
    }

    pub(crate) fn console_tail(&self, vmid: u32) -> String {
        let text = std::fs::read(self.console_log_path(vmid)).unwrap_or_default();
        cmd::tail(&String::from_utf8_lossy(&text), 15)
    }

    /// Per-container cgroups under the caller's own ones. cgroup v1 memory and cpu limits
    /// work here without systemd on the host, so `memory` and `cores` are enforced; the
    /// name=systemd and unified hierarchies give each nspawn its own place, so two
    /// containers never share the cgroup that nspawn sets up for its payload.
    fn make_cgroups(&self, vmid: u32, spec: &StartSpec) -> Result<Vec<PathBuf>> {
        let name = self.machine_name(vmid);
        let mut made = Vec::new();
        for (hier, dir) in own_cgroup_dirs() {
            let cg = dir.join(&name);
            if cg.exists() {
                remove_cgroup(&cg);
            }
            std::fs::create_dir(&cg)
                .with_context(|| format!("creating cgroup {}", cg.display()))?;
            made.push(cg.clone());
            match hier.as_str() {
                "memory" if spec.memory_mib > 0 => {
                    let bytes = (spec.memory_mib * 1024 * 1024).to_string();
                    std::fs::write(cg.join("memory.limit_in_bytes"), &bytes).with_context(
                        || format!("setting memory.limit_in_bytes={bytes} in {}", cg.display()),
                    )?;
                }
                "cpu" if spec.cores > 0 => {
                    let quota = (u64::from(spec.cores) * 100_000).to_string();
                    std::fs::write(cg.join("cpu.cfs_period_us"), "100000")
                        .and_then(|_| std::fs::write(cg.join("cpu.cfs_quota_us"), &quota))
                        .with_context(|| {
                            format!("setting cpu.cfs_quota_us={quota} in {}", cg.display())
                        })?;
                }
                _ => {}
            }
        }
        Ok(made)
    }

    pub(crate) fn stop_locked(&self, vmid: u32) -> Result<()> {
        if let Some(st) = self.live_run_state(vmid) {
            // SIGKILL to the container's init ends its whole pid namespace; nspawn then exits
            // by itself. Killing nspawn first would orphan the container.
            if let Some(init) = find_init(st.pid) {
                cmd::send_signal(init, libc::SIGKILL);
            }
            if !wait_dead(&st, Duration::from_secs(10)) {
                cmd::send_signal(st.pid, libc::SIGKILL);
                if !wait_dead(&st, Duration::from_secs(5)) {
                    anyhow::bail!(
                        "CT {vmid}: systemd-nspawn (pid {}) survived SIGKILL for 5 s\nhelp: look at `ps -o pid,stat,cmd -p {}` (a process stuck in D state waits for I/O)",
                        st.pid,
                        st.pid
                    );
                }
            }
        }
        self.reap(vmid)
    }

    pub(crate) fn ct_stop(&self, vmid: u32) -> Result<()> {
        let _lock = self.lock_ct(vmid)?;
        self.existing_image(vmid)?;
        self.stop_locked(vmid)
    }

    pub(crate) fn ct_shutdown(&self, vmid: u32, timeout: Duration) -> Result<()> {
        let _lock = self.lock_ct(vmid)?;
        self.existing_image(vmid)?;
        if let Some(st) = self.live_run_state(vmid) {
            // nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: a clean
            // poweroff, after which nspawn exits.
            cmd::send_signal(st.pid, libc::SIGTERM);
            if !wait_dead(&st, timeout) {
                return self.stop_locked(vmid);
            }
        }
        self.reap(vmid)
    }

    pub(crate) fn ct_kill_init(&self, vmid: u32) -> Result<()> {
        self.existing_image(vmid)?;
        let st = self
            .live_run_state(vmid)
            .ok_or(RuntimeError::NotRunning { vmid })?;
        let init = find_init(st.pid).ok_or(RuntimeError::NotRunning { vmid })?;
        cmd::send_signal(init, libc::SIGKILL);
        if !wait_dead(&st, Duration::from_secs(10)) {
            anyhow::bail!(
                "CT {vmid}: nspawn (pid {}) still runs 10 s after its init was killed",
                st.pid
            );
        }
        Ok(())
    }

    pub(crate) fn ct_destroy(&self, vmid: u32) -> Result<()> {
        let _lock = self.lock_ct(vmid)?;
        self.existing_image(vmid)?;
        if self.live_run_state(vmid).is_some() {
            return Err(RuntimeError::Running {
                vmid,
                action: "destroy",
            }
            .into());
        }
        self.reap(vmid)?;
        for dir in [self.image_dir(vmid), self.ct_dir(vmid)] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        Ok(())
    }

    pub(crate) fn ct_status(&self, vmid: u32) -> Result<CtRuntimeStatus> {
        let img = self.existing_image(vmid)?;
        let image_len = std::fs::metadata(&img).map(|m| m.len()).unwrap_or(0);
        let Some(st) = self.live_run_state(vmid) else {
            return Ok(CtRuntimeStatus {
                disk_total: image_len,
                ..CtRuntimeStatus::default()
            });
        };
        let init = find_init(st.pid);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (disk_used, disk_total) = statvfs_usage(&st.mountpoint).unwrap_or((0, image_len));
        let (netin, netout) = self.ct_net_counters(vmid);
        let mem_bytes = st
            .cgroups
            .iter()
            .find(|cg| cg.join("memory.usage_in_bytes").exists())
            .map(|cg| cgroup_mem(cg))
            .unwrap_or(0);
        Ok(CtRuntimeStatus {
            running: true,
            init_pid: init,
            uptime_s: now.saturating_sub(st.started_unix),
            mem_bytes,
            disk_used,
            disk_total,
            netin,
            netout,
        })
    }

    /// The init pid and cgroups of a running container, for attaching to it.
    fn attach_target(&self, vmid: u32) -> Result<(i32, Vec<PathBuf>), RuntimeError> {
        self.existing_image(vmid)?;
        let st = self
            .live_run_state(vmid)
            .ok_or(RuntimeError::NotRunning { vmid })?;
        let init = find_init(st.pid).ok_or(RuntimeError::NotRunning { vmid })?;
        Ok((init, st.cgroups))
    }

    pub(crate) fn ct_exec(
        &self,
        vmid: u32,
        argv: &[String],
        env: &[(String, String)],
    ) -> Result<ExitStatus> {
        let (init, cgs) = self.attach_target(vmid)?;
        let mut c = nsenter_cmd(init, &cgs, argv);
        c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c.stdin(Stdio::inherit());
        let mut child = c.spawn().map_err(|e| cmd::spawn_error(&c, e))?;
        child
            .wait()
            .with_context(|| format!("waiting for `{}` in CT {vmid}", argv.join(" ")))
    }

    pub(crate) fn ct_exec_capture(&self, vmid: u32, argv: &[String]) -> Result<Output> {
        let (init, cgs) = self.attach_target(vmid)?;
        let mut c = nsenter_cmd(init, &cgs, argv);
        c.stdin(Stdio::null());
        c.output().map_err(|e| cmd::spawn_error(&c, e).into())
    }

    pub(crate) fn ct_push(
        &self,
        vmid: u32,
        src: &Path,
        dst: &str,
        perms: Option<u32>,
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<()> {
        let (init, cgs) = self.attach_target(vmid)?;
        validate_ct_path(dst)?;
        let file = std::fs::File::open(src)
            .with_context(|| format!("failed to open {} for reading", src.display()))?;
        if let Some(mode) = perms.filter(|m| *m > 0o7777) {
            return Err(RuntimeError::InvalidSpec {
                field: "perms",
                value: format!("{mode:o}"),
                help: "permissions are at most 7777 (octal)",
            }
            .into());
        }
        let owner = format!("{}:{}", user.unwrap_or(""), group.unwrap_or(""));
        // As pct's `create_file` and `copy` do (pve-container, src/PVE/CLI/pct.pm): inside the
        // container's namespaces, a new file is created with mode 0 and an existing one is
        // opened with O_TRUNC — in place, no temp file and rename; mode and owner are set before
        // the data is copied; and the copy's result is not checked, so a full disk leaves a
        // truncated file and no error.
        let script = r#"dst=$1; owner=$2; mode=$3
if (umask 777; set -C; : > "$dst") 2>/dev/null; then
    [ -n "$mode" ] || mode=644
else
    : > "$dst" 2>/dev/null || { echo "failed to create file: $dst" >&2; exit 1; }
fi
if [ -n "$mode" ]; then chmod "$mode" "$dst" || exit 1; fi
if [ "$owner" != ":" ]; then
    chown "$owner" "$dst" || { echo "failed to change file owner: $owner" >&2; exit 1; }
fi
cat > "$dst" 2>/dev/null
exit 0"#;
        let argv: Vec<String> = vec![
            "/bin/sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            dst.into(),
            owner,
            perms.map(|m| format!("{m:o}")).unwrap_or_default(),
        ];
        let mut c = nsenter_cmd(init, &cgs, &argv);
        c.stdin(Stdio::from(file))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = c.output().map_err(|e| cmd::spawn_error(&c, e))?;
        if !out.status.success() {
            anyhow::bail!(
                "pushing {} to CT {vmid}:{dst} failed: {}",
                src.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    pub(crate) fn ct_pull(
        &self,
        vmid: u32,
        src: &str,
        dst: &Path,
        perms: Option<u32>,
    ) -> Result<()> {
        let (init, cgs) = self.attach_target(vmid)?;
        validate_ct_path(src)?;
        let mut stat = nsenter_cmd(
            init,
            &cgs,
            &[
                "stat".into(),
                "-L".into(),
                "-c".into(),
                "%a %F".into(),
                "--".into(),
                src.into(),
            ],
        );
        let out = stat
            .stdin(Stdio::null())
            .output()
            .map_err(|e| cmd::spawn_error(&stat, e))?;
        if !out.status.success() {
            anyhow::bail!(
                "pulling {src} from CT {vmid} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let info = cmd::stdout_str(&out);
        let (mode_s, kind) = info.trim().split_once(' ').unwrap_or((info.trim(), ""));
        if !kind.starts_with("regular") {
            anyhow::bail!("pulling {src} from CT {vmid}: it is a {kind}, not a regular file\nhelp: pull one file at a time");
        }
        let mode = match perms {
            Some(p) => p,
            None => u32::from_str_radix(mode_s, 8).unwrap_or(0o644),
        };
        let dst = if dst.is_dir() {
            dst.join(Path::new(src).file_name().unwrap_or_default())
        } else {
            dst.to_path_buf()
        };
        let dir = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.pve-lab-pull.{}",
            dst.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(mode & 0o777)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut cat = nsenter_cmd(init, &cgs, &["cat".into(), "--".into(), src.into()]);
        cat.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::piped());
        let res = (|| -> Result<()> {
            let out = cat.output().map_err(|e| cmd::spawn_error(&cat, e))?;
            if !out.status.success() {
                anyhow::bail!(
                    "pulling {src} from CT {vmid} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            // The umask may have narrowed the mode given at creation.
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .with_context(|| format!("setting mode {mode:o} on {}", tmp.display()))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", tmp.display()))?;
            std::fs::rename(&tmp, &dst)
                .with_context(|| format!("renaming {} to {}", tmp.display(), dst.display()))
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }

    pub(crate) fn ct_running_vmids(&self) -> Vec<u32> {
        self.known_vmids()
            .into_iter()
            .filter(|v| self.live_run_state(*v).is_some())
            .collect()
    }

    pub(crate) fn ct_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let machine_pre = format!("{}-", self.net.prefix);
        let mut pids = Vec::new();
        for vmid in self.known_vmids() {
            if let Some(st) = self.live_run_state(vmid) {
                pids.push(st.pid);
                found.push(format!("process {} (systemd-nspawn of CT {vmid})", st.pid));
            }
            if let Some(st) = self.read_run_state(vmid) {
                for cg in st.cgroups.iter().filter(|cg| cg.exists()) {
                    found.push(format!("cgroup {}", cg.display()));
                }
            }
        }
        // Independent of our records: any nspawn whose machine name is one of this lab's.
        for pid in cmd::all_pids() {
            if pids.contains(&pid) {
                continue;
            }
            let argv = cmd::proc_cmdline(pid);
            let is_nspawn = argv
                .first()
                .is_some_and(|a| a.ends_with("systemd-nspawn") || a.ends_with("nsenter"));
            let ours = argv.windows(2).any(|w| {
                w[0] == "-M"
                    && w[1]
                        .strip_prefix(&machine_pre)
                        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            });
            if is_nspawn && ours && cmd::proc_start_time(pid).is_some() {
                found.push(format!("process {pid} ({})", argv.join(" ")));
            }
        }
        for ns in self.lab_netns() {
            found.push(format!("netns {ns}"));
        }
        for link in self.lab_links() {
            found.push(format!("link {link}"));
        }
        if super::net::nft_table_exists(&self.net.prefix) {
            found.push(format!("nft table ip {}", self.net.prefix));
        }
        let state = self
            .state_dir
            .canonicalize()
            .unwrap_or_else(|_| self.state_dir.clone());
        for (src, mp, _) in cmd::mounts() {
            if mp.starts_with(&state) || Path::new(&src).starts_with(&state) {
                found.push(format!("mount {} on {}", src, mp.display()));
            }
        }
        for (dev, backing) in loop_devices() {
            if backing.starts_with(&state) {
                found.push(format!("loop device {dev} backed by {}", backing.display()));
            }
        }
        for (_, dir) in own_cgroup_dirs() {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let ours = n
                        .strip_prefix(&machine_pre)
                        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
                    let line = format!("cgroup {}", e.path().display());
                    if ours && e.path().is_dir() && !found.contains(&line) {
                        found.push(line);
                    }
                }
            }
        }
        found
    }
}

/// `nsenter -t INIT -a -- ARGV` with a clean environment (PATH and HOME as a login would
/// have them); callers add the variables they want to keep. The process first joins the
/// container's memory and cpu cgroups (as lxc-attach joins the CT's cgroup), so what runs
/// through exec counts against the container's limits.
fn nsenter_cmd(init: i32, cgroups: &[PathBuf], argv: &[String]) -> Command {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let mut c = tool("nsenter");
    c.arg("-t")
        .arg(init.to_string())
        .arg("-a")
        .arg("--")
        .args(argv)
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("HOME", "/root")
        .env("container", "lxc");
    let procs: Vec<std::ffi::CString> = cgroups
        .iter()
        .filter(|cg| {
            cg.join("memory.limit_in_bytes").exists() || cg.join("cpu.cfs_quota_us").exists()
        })
        .filter_map(|cg| {
            std::ffi::CString::new(cg.join("cgroup.procs").as_os_str().as_bytes()).ok()
        })
        .collect();
    if !procs.is_empty() {
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // syscalls (open, write, close) on paths prepared before the fork.
        unsafe {
            c.pre_exec(move || {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // "0" means the writing process itself.
                    let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                    let err = std::io::Error::last_os_error();
                    libc::close(fd);
                    if n != 1 {
                        return Err(err);
                    }
                }
                Ok(())
            });
        }
    }
    c
}

/// The container's PID 1 seen from the host: the descendant of the outer nspawn whose
/// innermost pid (last NSpid entry) is 1.
pub(crate) fn find_init(nspawn_pid: i32) -> Option<i32> {
    let pids = cmd::all_pids();
    let mut frontier = vec![nspawn_pid];
    // Bounded: the tree below nspawn is a few levels deep before init is found.
    for _ in 0..6 {
        let mut next = Vec::new();
        for p in pids.iter().copied() {
            if cmd::proc_ppid(p).is_some_and(|pp| frontier.contains(&pp)) {
                if is_ns_init(p) {
                    return Some(p);
                }
                next.push(p);
            }
        }
        if next.is_empty() {
            return None;
        }
        frontier = next;
    }
    None
}

fn is_ns_init(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            let ids: Vec<&str> = v.split_whitespace().collect();
            ids.len() >= 2 && ids.last() == Some(&"1")
        })
        .unwrap_or(false)
}

fn wait_dead(st: &RunState, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !st.alive() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// This process's own cgroup directory in each hierarchy the runtime uses, keyed by
/// hierarchy ("memory", "cpu", "name=systemd", "unified").
fn own_cgroup_dirs() -> Vec<(String, PathBuf)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts = cmd::mounts();
    let mut out = Vec::new();
    for line in own.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let hier = if ctrls.is_empty() {
            "unified".to_string()
        } else {
            ctrls.to_string()
        };
        let wanted = ["memory", "cpu", "name=systemd", "unified"];
        // "cpu,cpuacct" when co-mounted: it counts as the cpu hierarchy.
        let key = wanted
            .iter()
            .find(|w| hier.split(',').any(|c| c == **w))
            .map(|w| w.to_string());
        let Some(key) = key else { continue };
        let mount = mounts.iter().find(|(_, mp, fstype)| {
            if key == "unified" {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup" && mount_has_controllers(mp, &hier)
            }
        });
        if let Some((_, mp, _)) = mount {
            out.push((key, mp.join(path.trim_start_matches('/'))));
        }
    }
    out
}

fn mount_has_controllers(mp: &Path, hier: &str) -> bool {
    // /proc/mounts options are not kept by cmd::mounts; the mount point names the
    // controllers on Debian-style layouts (/sys/fs/cgroup/memory, /sys/fs/cgroup/cpu,cpuacct,
    // /sys/fs/cgroup/systemd for name=systemd).
    let name = mp
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if hier == "name=systemd" {
        return name == "systemd";
    }
    name.split(',').collect::<Vec<_>>() == hier.split(',').collect::<Vec<_>>()
}

fn remove_cgroup(cg: &Path) {
    // A cgroup can only be removed once empty; the container's processes leave it as they
    // are reaped. Sub-cgroups made inside (by nspawn) go first.
    for _ in 0..50 {
        let mut subdirs: Vec<PathBuf> = Vec::new();
        collect_dirs(cg, &mut subdirs, 0);
        subdirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for d in &subdirs {
            let _ = std::fs::remove_dir(d);
        }
        if std::fs::remove_dir(cg).is_ok() || !cg.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 8 {
        return;
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(e.path());
                collect_dirs(&e.path(), out, depth + 1);
            }
        }
    }
}

fn cgroup_mem(cg: &Path) -> u64 {
    let read = |f: &str| std::fs::read_to_string(cg.join(f)).unwrap_or_default();
    let usage: u64 = read("memory.usage_in_bytes").trim().parse().unwrap_or(0);
    // Like `free`, leave out page cache the kernel can drop at once.
    let inactive_file: u64 = read("memory.stat")
        .lines()
        .find_map(|l| l.strip_prefix("total_inactive_file "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    usage.saturating_sub(inactive_file)
}

fn statvfs_usage(mp: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(mp.as_os_str().as_bytes()).ok()?;
    // SAFETY: zeroed is a valid statvfs; c is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let f = st.f_frsize as u64;
    let total = st.f_blocks as u64 * f;
    let used = (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * f;
    Some((used, total))
}

/// Loop devices and their backing files, from sysfs.
fn loop_devices() -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("loop") {
                return None;
            }
            let back = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            let back = back.trim().trim_end_matches(" (deleted)").to_string();
            Some((format!("/dev/{name}"), PathBuf::from(back)))
        })
        .collect()
}

fn validate_hostname(h: &str) -> Result<(), RuntimeError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !h.is_empty() && h.len() <= 253 && h.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSpec {
            field: "hostname",
            value: h.to_string(),
            help: "use a DNS name: letters, digits and '-', labels joined by '.', e.g. vikunja or app1.lab",
        })
    }
}

fn validate_ct_path(p: &str) -> Result<(), RuntimeError> {
    if p.starts_with('/') && !p.contains('\0') && !p.ends_with('/') {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSpec {
            field: "path",
            value: p.to_string(),
            help: "give an absolute file path inside the container, e.g. /etc/app/config.yaml",
        })
    }
}

/// Writes a file into the container's rootfs from the host without following symlinks the
/// container may have planted (in the target or any parent directory).
fn write_in_root(
    root: &Path,
    rel: &str,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let rel = Path::new(rel);
    let mut cur = root.to_path_buf();
    let comps: Vec<Component> = rel.components().collect();
    let Some((last, parents)) = comps.split_last() else {
        anyhow::bail!("empty path");
    };
    for c in parents {
        let Component::Normal(n) = c else {
            anyhow::bail!("unexpected path component in {}", rel.display());
        };
        cur.push(n);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => anyhow::bail!("{} in the container is not a directory", cur.display()),
            Err(_) => {
                std::fs::create_dir(&cur).with_context(|| format!("creating {}", cur.display()))?;
                std::fs::set_permissions(
                    &cur,
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                )?;
            }
        }
    }
    let Component::Normal(name) = last else {
        anyhow::bail!("unexpected file name in {}", rel.display());
    };
    let target = cur.join(name);
    let tmp = cur.join(format!(".{}.pve-lab.tmp", name.to_string_lossy()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", tmp.display()))?;
    }
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    // rename replaces a symlink itself, never its target.
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))
}

fn read_in_root(root: &Path, rel: &str) -> Option<(String, std::fs::Metadata)> {
    let p = root.join(rel);
    let m = std::fs::symlink_metadata(&p).ok()?;
    if !m.is_file() {
        return None;
    }
    Some((std::fs::read_to_string(&p).ok()?, m))
}

const PVE_BEGIN: &str = "# --- BEGIN PVE ---";
const PVE_END: &str = "# --- END PVE ---";

/// Replaces (or appends) the section between PVE's markers, keeping what the admin wrote.
fn with_pve_section(existing: &str, section: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for l in existing.lines() {
        if l.trim() == PVE_BEGIN {
            inside = true;
            continue;
        }
        if l.trim() == PVE_END {
            inside = false;
            continue;
        }
        if !inside {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str(PVE_BEGIN);
    out.push('\n');
    out.push_str(section);
    out.push_str(PVE_END);
    out.push('\n');
    out
}

/// What PVE writes into a container's rootfs before each start: hostname, hosts entry,
/// resolver, and the credentials given at create time.
/// How nspawn starts the container's init: booted as usual with `nesting=1`; without it,
/// through Landlock (see `nesting.rs`), as PVE's AppArmor profile confines such a container.
fn init_args(confined: bool, dhcp: bool) -> Result<Vec<String>> {
    // systemd in a container reads its "kernel command line" from its own arguments: a DHCP
    // container's networkd is started that way (no symlink written into the CT's /etc).
    let wants = dhcp.then(|| "systemd.wants=systemd-networkd.service".to_string());
    if !confined {
        return Ok(["-b".to_string()].into_iter().chain(wants).collect());
    }
    // The daemon is the pve-lab binary, which has the `__nesting0-init` entry point.
    let exe = std::env::current_exe().context("finding pve-lab's own binary")?;
    let init = "/run/pve-lab/init";
    Ok(vec![
        "--kill-signal=SIGRTMIN+3".into(),
        // nspawn's own syscall allow-list predates Landlock.
        "--system-call-filter=landlock_create_ruleset landlock_restrict_self".into(),
        format!("--bind-ro={}:{init}", exe.display()),
        // systemd cannot mount its API filesystems under Landlock: nspawn mounts what it does
        // not already (as LXC does for a PVE container).
        "--tmpfs=/run/lock".into(),
        init.into(),
        super::nesting::INIT_ARG.into(),
        "/lib/systemd/systemd".into(),
    ]
    .into_iter()
    .chain(wants)
    .collect())
}

fn prepare_rootfs(root: &Path, spec: &StartSpec) -> Result<()> {
    let host = &spec.hostname;
    write_in_root(
        root,
        "etc/hostname",
        format!("{host}\n").as_bytes(),
        0o644,
        Some((0, 0)),
    )?;
    let short = host.split('.').next().unwrap_or(host);
    let fqdn = match (&spec.searchdomain, host.contains('.')) {
        (Some(d), false) => format!(
            "{host}.{} {short}",
            d.split([',', ';', ' ']).next().unwrap_or(d)
        ),
        (_, true) => format!("{host} {short}"),
        _ => host.to_string(),
    };
    let hosts = read_in_root(root, "etc/hosts")
        .map(|(t, _)| t)
        .unwrap_or_else(|| {
            "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n".into()
        });
    write_in_root(
        root,
        "etc/hosts",
        with_pve_section(&hosts, &format!("127.0.1.1 {fqdn}\n")).as_bytes(),
        0o644,
        Some((0, 0)),
    )?;
    let mut resolv = String::new();
    let (host_search, host_servers) = host_resolv_conf();
    match &spec.searchdomain {
        Some(d) => resolv.push_str(&format!(
            "search {}\n",
            d.split([',', ';'])
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        )),
        None => {
            if let Some(d) = host_search {
                resolv.push_str(&format!("search {d}\n"));
            }
        }
    }
    let servers: Vec<String> = match &spec.nameserver {
        Some(ns) => ns
            .split([',', ';', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => host_servers,
    };
    for s in servers {
        resolv.push_str(&format!("nameserver {s}\n"));
    }
    write_in_root(
        root,
        "etc/resolv.conf",
        with_pve_section("", &resolv).as_bytes(),
        0o644,
        Some((0, 0)),
    )?;
    trust_host_extra_cas(root)?;
    // `ip=dhcp`: systemd-networkd asks the lab's DHCP server (PVE writes ifupdown's
    // `iface eth0 inet dhcp`; the lab's minbase template has networkd, not ifupdown). A
    // static address is set from outside, and networkd must leave it alone.
    let network = if spec.dhcp {
        "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n"
    } else {
        "[Match]\nName=eth0\n\n[Link]\nUnmanaged=yes\n"
    };
    write_in_root(
        root,
        "etc/systemd/network/80-pve-lab-eth0.network",
        network.as_bytes(),
        0o644,
        Some((0, 0)),
    )?;
    // PVE's DHCP client (ifupdown's dhclient) has no sandbox and works without nesting;
    // networkd, the lab's stand-in for it, would fail 226/NAMESPACE in a confined CT, so its
    // mount-namespace options are switched off there (an empty drop-in otherwise).
    let unsandboxed = if spec.confined {
        "[Service]\nProtectSystem=no\nProtectHome=no\nProtectProc=default\nProtectClock=no\nProtectControlGroups=no\nProtectKernelLogs=no\nProtectKernelModules=no\n"
    } else {
        ""
    };
    write_in_root(
        root,
        "etc/systemd/system/systemd-networkd.service.d/pve-lab.conf",
        unsandboxed.as_bytes(),
        0o644,
        Some((0, 0)),
    )?;
    if let Some(keys) = &spec.ssh_public_keys {
        let mut text = keys.trim_end().to_string();
        text.push('\n');
        write_in_root(
            root,
            "root/.ssh/authorized_keys",
            text.as_bytes(),
            0o600,
            Some((0, 0)),
        )?;
    }
    if let Some(hash) = &spec.root_password_hash {
        if hash.contains([':', '\n']) {
            return Err(RuntimeError::InvalidSpec {
                field: "root_password_hash",
                value: "(hidden)".into(),
                help: "give a crypt(3) hash such as the output of `openssl passwd -6`; it cannot contain ':' or newlines",
            }
            .into());
        }
        let (shadow, meta) =
            read_in_root(root, "etc/shadow").context("the container has no regular /etc/shadow")?;
        let mut found = false;
        let updated: Vec<String> = shadow
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(':').collect();
                if f.first() == Some(&"root") && f.len() > 1 {
                    found = true;
                    f[1] = hash;
                    f.join(":")
                } else {
                    l.to_string()
                }
            })
            .collect();
        if !found {
            anyhow::bail!("the container's /etc/shadow has no root entry");
        }
        let mut text = updated.join("\n");
        text.push('\n');
        write_in_root(
            root,
            "etc/shadow",
            text.as_bytes(),
            meta.mode() & 0o7777,
            Some((meta.uid(), meta.gid())),
        )?;
    }
    Ok(())
}

/// The CAs this host trusts beyond Debian's bundle (`/usr/local/share/ca-certificates`), made
/// trusted inside the container too. Where the lab's machine reaches the package registries
/// through a TLS-inspecting egress proxy, HTTPS from a container (pip from PyPI) fails without
/// them; a real Proxmox VE node has no such proxy, so this is the lab's own concern. Added to
/// the container's bundle only when missing, so repeated starts change nothing.
fn trust_host_extra_cas(root: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir("/usr/local/share/ca-certificates") else {
        return Ok(());
    };
    let bundle_rel = "etc/ssl/certs/ca-certificates.crt";
    let Some((mut bundle, meta)) = read_in_root(root, bundle_rel) else {
        return Ok(());
    };
    let mut changed = false;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "crt") {
            continue;
        }
        let Ok(pem) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        write_in_root(
            root,
            &format!("usr/local/share/ca-certificates/{name}"),
            pem.as_bytes(),
            0o644,
            Some((0, 0)),
        )?;
        if !bundle.contains(pem.trim()) {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(pem.trim());
            bundle.push('\n');
            changed = true;
        }
    }
    if changed {
        write_in_root(
            root,
            bundle_rel,
            bundle.as_bytes(),
            meta.mode() & 0o7777,
            Some((0, 0)),
        )?;
    }
    Ok(())
}

/// The host's search domain and first three nameservers, copied verbatim as PVE does when a CT
/// has no `nameserver`/`searchdomain` (pve-container's LXC/Setup/Base.pm `lookup_dns_conf`,
/// pve-common's INotify.pm `read_etc_resolv_conf`): a loopback resolver such as 127.0.0.53 is
/// copied too, and then means nothing inside the container.
fn host_resolv_conf() -> (Option<String>, Vec<String>) {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut search = None;
    let mut servers = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search" | "domain") if !line.starts_with(char::is_whitespace) => {
                search = words.next().map(str::to_string);
            }
            Some("nameserver") => {
                if let Some(ip) = words
                    .next()
                    .filter(|w| w.parse::<std::net::IpAddr>().is_ok())
                {
                    if servers.len() < 3 {
                        servers.push(ip.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (search, servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pve_section_replaced_not_duplicated() {
        let a = with_pve_section("127.0.0.1 localhost\n", "127.0.1.1 a\n");
        let b = with_pve_section(&a, "127.0.1.1 b\n");
        assert_eq!(
            b,
            "127.0.0.1 localhost\n# --- BEGIN PVE ---\n127.0.1.1 b\n# --- END PVE ---\n"
        );
    }

    #[test]
    fn hostnames_validated() {
        assert!(validate_hostname("vikunja").is_ok());
        assert!(validate_hostname("app-1.lab").is_ok());
        let e = validate_hostname("bad_name").unwrap_err().to_string();
        assert!(e.contains("bad_name") && e.contains("help:"), "{e}");
        assert!(validate_hostname("-x").is_err());
        assert!(validate_hostname("").is_err());
    }

    #[test]
    fn write_in_root_does_not_follow_planted_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(&victim, root.path().join("etc/hostname")).unwrap();
        write_in_root(root.path(), "etc/hostname", b"ct\n", 0o644, None).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
            "ct\n"
        );
        std::os::unix::fs::symlink(outside.path(), root.path().join("root")).unwrap();
        let e =
            write_in_root(root.path(), "root/.ssh/authorized_keys", b"k", 0o600, None).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        assert!(!outside.path().join(".ssh").exists());
    }
}
