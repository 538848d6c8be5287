//! The daily health check on the host, opted into at install: `launch-health.service` and
//! `.timer` run `launch-tui status --all --json --notify` once a day. `--notify` logs every run
//! to `/var/log/launch/health.log` and, when an instance is unhealthy, posts the report to a
//! webhook or opens a GitHub issue with `gh`, as `CONFIG/notify.yaml` says.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::site::Site;

pub const SERVICE: &str = "launch-health.service";
pub const TIMER: &str = "launch-health.timer";
/// `gh` and webhooks get this long; the daily run must end even when they hang.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment that changes where launch-tui keeps its state; the timer keeps what install saw.
const PASSED_ENV: &[&str] = &["LAUNCH_STATE_DIR", "LAUNCH_LOG_DIR", "LAUNCH_CACHE_DIR"];

/// Where the units are written (`LAUNCH_SYSTEMD_DIR` overrides, for tests: then nothing is
/// enabled, since that is not the system's directory).
pub fn unit_dir() -> PathBuf {
    std::env::var_os("LAUNCH_SYSTEMD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/systemd/system"))
}

/// The command line the timer runs: this binary with the connection options this run was
/// given. Secrets never appear here; a token stays in its file.
pub fn command_line(exe: &Path, g: &Site) -> Vec<String> {
    let mut cmd = vec![exe.display().to_string()];
    cmd.extend(g.args());
    cmd.extend(
        ["--no-color", "status", "--all", "--json", "--notify"]
            .iter()
            .map(|s| s.to_string()),
    );
    cmd
}

/// One word of an `ExecStart=` line: quoted when it has to be, `%` doubled (systemd would
/// expand it as a specifier).
fn systemd_word(s: &str) -> String {
    let s = s.replace('%', "%%");
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@".contains(c))
    {
        return s;
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The service: one run of the check. It runs as root because `pct` needs it. An unhealthy
/// result exits 4 and leaves the unit failed on purpose: `systemctl --failed` shows it too.
pub fn service_unit(cmd: &[String], env: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Written by launch-tui install (health_check: true). Remove both launch-health units\n\
         # to stop the daily check; CONFIG/notify.yaml says where problems are sent.\n\
         [Unit]\n\
         Description=Launch: daily health check of every instance\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n",
    );
    for (k, v) in env {
        out.push_str(&format!(
            "Environment={}\n",
            systemd_word(&format!("{k}={v}"))
        ));
    }
    let exec: Vec<String> = cmd.iter().map(|w| systemd_word(w)).collect();
    out.push_str(&format!("ExecStart={}\n", exec.join(" ")));
    out.push_str("TimeoutStartSec=10min\nStandardOutput=journal\nStandardError=journal\n");
    out
}

/// Daily, at a random moment in the first hour so many hosts do not all check at midnight;
/// `Persistent=true` runs a check missed while the host was off at the next boot.
pub fn timer_unit() -> String {
    "# Written by launch-tui install (health_check: true).\n\
     [Unit]\n\
     Description=Launch: daily health check of every instance\n\
     \n\
     [Timer]\n\
     OnCalendar=daily\n\
     Persistent=true\n\
     RandomizedDelaySec=1h\n\
     \n\
     [Install]\n\
     WantedBy=timers.target\n"
        .to_string()
}

/// Runs the real `systemd-analyze verify` on the written units; its complaints, if any.
pub fn verify_units(paths: &[PathBuf]) -> anyhow::Result<()> {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(paths)
        .output()
        .context("cannot run systemd-analyze (help: apt-get install systemd)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("Unknown") {
        bail!(
            "systemd-analyze verify refused the units: {}",
            stderr.trim()
        );
    }
    Ok(())
}

/// What setting up the timer did: `enabled` is false when the units could only be written.
pub struct TimerSetup {
    pub units: Vec<PathBuf>,
    pub enabled: bool,
    pub message: String,
}

/// Writes the two units, verifies them, and enables the timer when this host runs systemd.
pub fn install_timer(g: &Site) -> anyhow::Result<TimerSetup> {
    let exe = std::env::current_exe().context("cannot find launch-tui's own path")?;
    let env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let dir = unit_dir();
    let service = dir.join(SERVICE);
    let timer = dir.join(TIMER);
    crate::fsutil::write_atomic(
        &service,
        service_unit(&command_line(&exe, g), &env).as_bytes(),
        0o644,
    )?;
    crate::fsutil::write_atomic(&timer, timer_unit().as_bytes(), 0o644)?;
    let units = vec![service.clone(), timer.clone()];
    if let Err(e) = verify_units(&units) {
        // A unit systemd refuses is worse than none: take them away again.
        let _ = std::fs::remove_file(&service);
        let _ = std::fs::remove_file(&timer);
        return Err(e);
    }
    let enable = format!("systemctl daemon-reload && systemctl enable --now {TIMER}");
    if std::env::var_os("LAUNCH_SYSTEMD_DIR").is_some() {
        return Ok(TimerSetup {
            message: format!(
                "wrote and verified {} and {TIMER} in {} (LAUNCH_SYSTEMD_DIR: not enabled)",
                SERVICE,
                dir.display()
            ),
            units,
            enabled: false,
        });
    }
    // systemd's own test for "booted with systemd" (sd_booted).
    if !Path::new("/run/systemd/system").exists() {
        return Ok(TimerSetup {
            message: format!(
                "wrote and verified {} and {TIMER}, but systemd is not running on this host, so the daily check is not enabled: run `{enable}` once it is",
                service.display()
            ),
            units,
            enabled: false,
        });
    }
    for argv in [&["daemon-reload"][..], &["enable", "--now", TIMER][..]] {
        let out = Command::new("systemctl")
            .args(argv)
            .output()
            .context("cannot run systemctl")?;
        if !out.status.success() {
            bail!(
                "`systemctl {}` failed: {}\n  help: run `{enable}` by hand",
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(TimerSetup {
        message: format!(
            "the daily health check is enabled ({TIMER}; `systemctl list-timers {TIMER}`, log in /var/log/launch/health.log)"
        ),
        units,
        enabled: true,
    })
}

/// `CONFIG/notify.yaml`: where an unhealthy result is sent. Mode 0600: webhook URLs often
/// carry a token.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// POST the JSON report here.
    pub webhook: Option<String>,
    /// `owner/name`: open an issue there with `gh issue create` (when `gh` is installed).
    pub github_repo: Option<String>,
}

pub fn notify_config_path(config_dir: &Path) -> PathBuf {
    config_dir.join("notify.yaml")
}

/// What `--notify` did, for the user, the JSON and the health log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    pub sent: bool,
    pub message: String,
}

impl Notified {
    pub fn to_json(&self) -> Value {
        json!({ "sent": self.sent, "message": self.message })
    }
}

/// Reads the notify config; `Ok(None)` when there is none. A file others can read still works,
/// with a note to fix its mode (refusing would only hide problems, the URL is exposed already).
pub fn load_notify_config(
    config_dir: &Path,
) -> std::result::Result<Option<(NotifyConfig, Option<String>)>, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = notify_config_path(config_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let cfg: NotifyConfig = serde_yaml_ng::from_str(&text).map_err(|e| {
        format!(
            "{} is not valid: {e} (it takes `webhook: URL` and/or `github_repo: owner/name`)",
            path.display()
        )
    })?;
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    let note = (mode & 0o077 != 0).then(|| {
        format!(
            "{} is mode {mode:o} and may hold a token: chmod 600 {}",
            path.display(),
            path.display()
        )
    });
    Ok(Some((cfg, note)))
}

/// A URL without its path, query and credentials: enough to say where, without the token.
fn redacted(url: &url::Url) -> String {
    match url.port() {
        Some(p) => format!("{}://{}:{p}", url.scheme(), url.host_str().unwrap_or("?")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?")),
    }
}

pub fn post_webhook(url: &str, body: &Value) -> std::result::Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("the webhook is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the webhook must be an http:// or https:// URL, not {}:",
            parsed.scheme()
        ));
    }
    let at = redacted(&parsed);
    let client = reqwest::blocking::Client::builder()
        .timeout(SEND_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    match client.post(parsed).json(body).send() {
        Ok(r) if r.status().is_success() => Ok(format!(
            "posted the report to the webhook at {at} ({})",
            r.status()
        )),
        Ok(r) => {
            let status = r.status();
            let text: String = r.text().unwrap_or_default().chars().take(200).collect();
            Err(format!(
                "the webhook at {at} answered {status}{}",
                if text.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", text.trim())
                }
            ))
        }
        // reqwest's errors name the full URL, token and all.
        Err(e) if e.is_timeout() => Err(format!(
            "the webhook at {at} did not answer within {} s",
            SEND_TIMEOUT.as_secs()
        )),
        Err(e) => Err(format!(
            "cannot reach the webhook at {at}: {}",
            error_chain(&e.without_url())
        )),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

/// `gh issue create` with the text report as the issue's body; the issue's URL on success.
pub fn open_issue(
    gh: &Path,
    repo: &str,
    title: &str,
    body: &str,
) -> std::result::Result<String, String> {
    let mut child = Command::new("timeout")
        .arg(SEND_TIMEOUT.as_secs().to_string())
        .arg(gh)
        .args(["issue", "create", "--repo", repo, "--title", title])
        .args(["--body-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", gh.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{} did not finish: {e}", gh.display()))?;
    if out.status.code() == Some(124) {
        return Err(format!(
            "`gh issue create` did not finish within {} s",
            SEND_TIMEOUT.as_secs()
        ));
    }
    if !out.status.success() {
        return Err(format!(
            "`gh issue create --repo {repo}` failed: {} (help: `gh auth status` as root)",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(format!("opened a GitHub issue in {repo}: {url}"))
}

/// `gh` from PATH, if installed.
pub fn find_gh() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("gh"))
        .find(|p| p.is_file())
}

/// Sends an unhealthy report everywhere `cfg` says. Failures are messages, never panics or
/// errors: the check itself has already done its job.
pub fn send(
    cfg: &NotifyConfig,
    body: &Value,
    title: &str,
    text: &str,
    gh: Option<&Path>,
) -> Notified {
    let mut said = Vec::new();
    let mut sent = false;
    if let Some(url) = &cfg.webhook {
        match post_webhook(url, body) {
            Ok(m) => {
                sent = true;
                said.push(m);
            }
            Err(e) => said.push(format!("not sent: {e}")),
        }
    }
    if let Some(repo) = &cfg.github_repo {
        match gh {
            None => said.push(format!(
                "no GitHub issue: github_repo is {repo} but `gh` is not installed (apt-get install gh, then `gh auth login` as root)"
            )),
            Some(gh) => match open_issue(gh, repo, title, text) {
                Ok(m) => {
                    sent = true;
                    said.push(m);
                }
                Err(e) => said.push(format!("no GitHub issue: {e}")),
            },
        }
    }
    if cfg.webhook.is_none() && cfg.github_repo.is_none() {
        said.push("notify.yaml names neither a webhook nor a github_repo: nothing sent".into());
    }
    Notified {
        sent,
        message: said.join("; "),
    }
}

/// `--notify`: nothing to do when healthy; otherwise send as configured and say what happened.
pub fn notify(config_dir: &Path, healthy: bool, body: &Value, title: &str, text: &str) -> Notified {
    if healthy {
        return Notified {
            sent: false,
            message: "every instance is healthy: nothing to send".into(),
        };
    }
    let path = notify_config_path(config_dir);
    match load_notify_config(config_dir) {
        Ok(None) => Notified {
            sent: false,
            message: format!(
                "unhealthy, but no notification is configured: write {} (mode 0600) with `webhook: URL` or `github_repo: owner/name`",
                path.display()
            ),
        },
        Err(e) => Notified {
            sent: false,
            message: format!("not sent: {e}"),
        },
        Ok(Some((cfg, note))) => {
            let mut n = send(&cfg, body, title, text, find_gh().as_deref());
            if let Some(note) = note {
                n.message.push_str(&format!("; warning: {note}"));
            }
            n
        }
    }
}

/// One JSON line per run in `LOG/health.log` (the journal gets stdout and stderr anyway).
pub fn append_log(record: &Value) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = crate::engine::render::log_root();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("health.log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{record}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn global(args: &[&str]) -> Site {
        let mut argv = vec!["launch-tui"];
        argv.extend_from_slice(args);
        argv.push("list");
        crate::cli::Cli::try_parse_from(argv).unwrap().global.site()
    }

    #[test]
    fn units_render_and_systemd_accepts_them() {
        let g = global(&[
            "--host",
            "https://pve.example:8006",
            "--token-file",
            "/root/launch token",
            "--fingerprint",
            "AB:CD",
        ]);
        let cmd = command_line(Path::new("/usr/local/bin/launch-tui"), &g);
        let env = vec![(
            "LAUNCH_STATE_DIR".to_string(),
            "/srv/launch%state".to_string(),
        )];
        let service = service_unit(&cmd, &env);
        insta::assert_snapshot!("health_service", service);
        insta::assert_snapshot!("health_timer", timer_unit());

        // The real systemd-analyze, with an ExecStart that exists here.
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("launch-tui");
        std::fs::copy("/bin/true", &exe).unwrap();
        let s = d.path().join(SERVICE);
        let t = d.path().join(TIMER);
        std::fs::write(&s, service_unit(&command_line(&exe, &g), &env)).unwrap();
        std::fs::write(&t, timer_unit()).unwrap();
        verify_units(&[s, t]).unwrap();
    }

    #[test]
    fn default_config_is_not_repeated_and_odd_words_are_quoted() {
        let cmd = command_line(Path::new("/usr/bin/launch-tui"), &global(&[]));
        assert_eq!(
            cmd.join(" "),
            "/usr/bin/launch-tui --no-color status --all --json --notify"
        );
        assert_eq!(systemd_word("a b\"c%"), "\"a b\\\"c%%\"");
        assert_eq!(systemd_word("/x/y-z.1"), "/x/y-z.1");
    }

    #[test]
    fn notify_config_reads_and_notes_a_readable_file() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load_notify_config(d.path()), Ok(None));
        let p = notify_config_path(d.path());
        std::fs::write(&p, "webhook: https://hooks.example/T0KEN\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (cfg, note) = load_notify_config(d.path()).unwrap().unwrap();
        assert_eq!(cfg.webhook.as_deref(), Some("https://hooks.example/T0KEN"));
        assert_eq!(note, None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, note) = load_notify_config(d.path()).unwrap().unwrap();
        assert!(note.unwrap().contains("chmod 600"));
        std::fs::write(&p, "webhok: x\n").unwrap();
        let e = load_notify_config(d.path()).unwrap_err();
        assert!(e.contains("webhok") && e.contains("github_repo"), "{e}");
    }

    #[test]
    fn healthy_sends_nothing_and_unconfigured_says_how() {
        let d = tempfile::tempdir().unwrap();
        let n = notify(d.path(), true, &json!({}), "t", "x");
        assert!(!n.sent);
        let n = notify(d.path(), false, &json!({}), "t", "x");
        assert!(!n.sent);
        assert!(n.message.contains("notify.yaml (mode 0600)"), "{n:?}");
    }

    #[test]
    fn unreachable_webhook_and_missing_gh_are_reported_not_raised() {
        // A loopback port nothing listens on: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = NotifyConfig {
            webhook: Some(format!("http://127.0.0.1:{port}/hook?token=s3cret")),
            github_repo: Some("acme/ops".into()),
        };
        let n = send(&cfg, &json!({"result": "unhealthy"}), "t", "x", None);
        assert!(!n.sent, "{n:?}");
        assert!(
            n.message.contains(&format!(
                "not sent: cannot reach the webhook at http://127.0.0.1:{port}"
            )),
            "{n:?}"
        );
        assert!(!n.message.contains("s3cret"), "the token leaked: {n:?}");
        assert!(n.message.contains("`gh` is not installed"), "{n:?}");
        let n = send(
            &NotifyConfig {
                webhook: Some("ftp://x".into()),
                github_repo: None,
            },
            &json!({}),
            "t",
            "x",
            None,
        );
        assert!(n.message.contains("http:// or https://"), "{n:?}");
    }

    #[test]
    fn gh_opens_an_issue_with_the_report() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        // A stand-in for gh that records its arguments and body, and prints an issue URL.
        let gh = d.path().join("gh");
        let log = d.path().join("gh.log");
        std::fs::write(
            &gh,
            format!(
                "#!/bin/sh\necho \"$@\" > {log}\ncat >> {log}\necho https://github.com/acme/ops/issues/7\n",
                log = log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = NotifyConfig {
            webhook: None,
            github_repo: Some("acme/ops".into()),
        };
        let n = send(
            &cfg,
            &json!({}),
            "launch: v unhealthy",
            "FAIL  disk",
            Some(&gh),
        );
        assert!(n.sent, "{n:?}");
        assert_eq!(
            n.message,
            "opened a GitHub issue in acme/ops: https://github.com/acme/ops/issues/7"
        );
        let got = std::fs::read_to_string(&log).unwrap();
        assert!(
            got.starts_with(
                "issue create --repo acme/ops --title launch: v unhealthy --body-file -\n"
            ),
            "{got}"
        );
        assert!(got.contains("FAIL  disk"), "{got}");

        std::fs::write(&gh, "#!/bin/sh\necho 'not logged in' >&2\nexit 1\n").unwrap();
        let n = send(&cfg, &json!({}), "t", "x", Some(&gh));
        assert!(!n.sent);
        assert!(n.message.contains("not logged in"), "{n:?}");
    }
}
