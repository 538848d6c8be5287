//! A component's health check and its running version, probed inside the container in the form
//! the profile's `health` gives: HTTP (status, body, JSON field), TCP, or a command run as the
//! component's user. Install, update, rollback, restore, reconfigure and status all ask here,
//! so a check means the same everywhere.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::ct::CtAccess;
use crate::profile::types::shown_argv;
use crate::profile::{Component, HealthCheck};

/// One component on one port (a slot's) in one container: what is probed.
pub struct Target<'a> {
    pub ct: &'a dyn CtAccess,
    pub vmid: u32,
    pub component: &'a Component,
    pub port: u16,
}

/// One probe's result: whether it passed, and what it found, in words (`200`, `no connection`,
/// `exit 1: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub healthy: bool,
    pub got: String,
}

impl Target<'_> {
    /// What is checked, for messages: the URL, `127.0.0.1:PORT (tcp)`, or the command.
    pub fn what(&self) -> String {
        match self.component.health.check() {
            HealthCheck::Http { path, .. } => format!("http://127.0.0.1:{}{path}", self.port),
            HealthCheck::Tcp => format!("127.0.0.1:{} (tcp)", self.port),
            HealthCheck::Command(argv) => format!(
                "`{}` (as {})",
                shown_argv(&with_port(argv, self.port)),
                self.component.user
            ),
        }
    }

    /// What a healthy answer is, after "answers": `200`, `200 with "ok" in its body`.
    pub fn expected(&self) -> String {
        match self.component.health.check() {
            HealthCheck::Http {
                status, body, json, ..
            } => match (body, json) {
                (Some(b), _) => format!("{status} with {b:?} in its body"),
                (None, Some(j)) => format!("{status} with `{}` = {}", j.field, j.equals),
                (None, None) => status.to_string(),
            },
            HealthCheck::Tcp => "a connection".into(),
            HealthCheck::Command(_) => "exit 0".into(),
        }
    }

    fn timeout(&self) -> u32 {
        self.component.health.timeout_s.max(1)
    }
}

/// `{port}` in a profile's argv is the slot's port: a command can tell the slots apart.
pub fn with_port(argv: &[String], port: u16) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect()
}

/// Runs a profile's argv in the container as `user`, stopped after `secs`.
fn run_as(
    ct: &dyn CtAccess,
    vmid: u32,
    user: &str,
    argv: &[String],
    secs: u32,
) -> Result<crate::ct::ExecOutput> {
    let secs = secs.to_string();
    let mut full: Vec<&str> = vec![
        "timeout",
        "-k",
        "2",
        &secs,
        "/usr/sbin/runuser",
        "-u",
        user,
        "--",
    ];
    full.extend(argv.iter().map(String::as_str));
    ct.exec(vmid, &full)
}

/// The HTTP status `url` answers inside the container (5 s timeout), as curl prints it:
/// `000` when nothing answers.
pub fn http_status(ct: &dyn CtAccess, vmid: u32, url: &str) -> Result<String> {
    let out = ct.exec(
        vmid,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "5",
            "-w",
            "%{http_code}",
            url,
        ],
    )?;
    Ok(out.stdout.trim().to_string())
}

/// `000` (curl's "nothing answered") in words.
fn code_in_words(code: &str) -> String {
    if code.is_empty() || code == "000" {
        "no connection".into()
    } else {
        code.to_string()
    }
}

/// Checks once, each try bounded by the profile's `timeout_s`.
pub fn probe_once(t: &Target) -> Result<Answer> {
    let secs = t.timeout().to_string();
    match t.component.health.check() {
        HealthCheck::Http {
            path,
            status,
            body: None,
            json: None,
        } => {
            let url = format!("http://127.0.0.1:{}{path}", t.port);
            let out = t.ct.exec(
                t.vmid,
                &[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-m",
                    &secs,
                    "-w",
                    "%{http_code}",
                    &url,
                ],
            )?;
            let code = out.stdout.trim().to_string();
            Ok(Answer {
                healthy: code == status.to_string(),
                got: code,
            })
        }
        HealthCheck::Http {
            path,
            status,
            body,
            json,
        } => {
            let url = format!("http://127.0.0.1:{}{path}", t.port);
            let out = t.ct.exec(
                t.vmid,
                &["curl", "-s", "-m", &secs, "-w", "\n%{http_code}", &url],
            )?;
            let (text, code) = out
                .stdout
                .rsplit_once('\n')
                .map_or(("", out.stdout.trim()), |(b, c)| (b, c.trim()));
            if code != status.to_string() {
                return Ok(Answer {
                    healthy: false,
                    got: code.to_string(),
                });
            }
            let mismatch = match (body, json) {
                (Some(b), _) if !text.contains(b) => Some(format!("its body lacks {b:?}")),
                (_, Some(j)) => j.matches(text).err(),
                _ => None,
            };
            Ok(match mismatch {
                None => Answer {
                    healthy: true,
                    got: code.to_string(),
                },
                Some(why) => Answer {
                    healthy: false,
                    got: format!("{code}, but {why}"),
                },
            })
        }
        HealthCheck::Tcp => {
            let port = t.port.to_string();
            let out = t.ct.exec(
                t.vmid,
                &[
                    "timeout",
                    &secs,
                    "bash",
                    "-c",
                    "exec 3<>\"/dev/tcp/127.0.0.1/$1\"",
                    "tcp-check",
                    &port,
                ],
            )?;
            Ok(Answer {
                healthy: out.ok(),
                got: match out.code {
                    0 => "a connection".into(),
                    124 => format!("no connection within {secs} s"),
                    _ => "no connection".into(),
                },
            })
        }
        HealthCheck::Command(argv) => {
            let argv = with_port(argv, t.port);
            let out = run_as(t.ct, t.vmid, t.component.user.as_str(), &argv, t.timeout())?;
            Ok(Answer {
                healthy: out.ok(),
                got: match out.code {
                    0 => "exit 0".into(),
                    124 | 137 => format!("no exit within {secs} s"),
                    c => {
                        let tail = out.tail(2);
                        if tail.is_empty() {
                            format!("exit {c}")
                        } else {
                            format!("exit {c}: {}", crate::escape::shown(&tail))
                        }
                    }
                },
            })
        }
    }
}

/// Probes every `interval` until the check passes, for up to `deadline`. Gives up at once when
/// `unit` keeps failing (restarting), with its journal's last lines.
pub fn wait_healthy(
    t: &Target,
    unit: &str,
    interval: Duration,
    deadline: Duration,
) -> Result<Answer> {
    let end = Instant::now() + deadline;
    loop {
        let last = probe_once(t)?;
        if last.healthy {
            return Ok(last);
        }
        let restarts =
            t.ct.exec(
                t.vmid,
                &["systemctl", "show", "-p", "NRestarts", "--value", unit],
            )?
            .stdout
            .trim()
            .parse::<u32>()
            .unwrap_or(0);
        if restarts >= 2 || Instant::now() >= end {
            let journal =
                t.ct.exec(
                    t.vmid,
                    &[
                        "journalctl",
                        "-u",
                        unit,
                        "-n",
                        "5",
                        "--no-pager",
                        "-o",
                        "cat",
                    ],
                )
                .map(|o| o.stdout.trim().to_string())
                .unwrap_or_default();
            let expected = match t.component.health.check() {
                HealthCheck::Http { .. } => format!("answer {}", t.expected()),
                HealthCheck::Tcp => "accept a connection".into(),
                HealthCheck::Command(_) => "exit 0".into(),
            };
            bail!(
                "{unit} did not become healthy: {} {} (last answer: {}){}\n  help: see `pct exec {} -- journalctl -u {unit}`",
                t.what(),
                if restarts >= 2 {
                    format!("kept failing ({restarts} restarts)")
                } else {
                    format!("did not {expected} within {} s", deadline.as_secs())
                },
                code_in_words(&last.got),
                if journal.is_empty() {
                    String::new()
                } else {
                    format!("\n  its journal ends with:\n    {}", journal.replace('\n', "\n    "))
                },
                t.vmid
            );
        }
        std::thread::sleep(interval);
    }
}

/// The version the component reports, read as its profile says (an HTTP answer's field or
/// header, or a command's output), inside the container. `None` when the profile has no probe;
/// a probe that finds no version is an error (the profile promised one).
pub fn running_version(t: &Target) -> Result<Option<String>> {
    match read_version(t)? {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => bail!("{e}"),
    }
}

/// Like [`running_version`], telling apart a probe that could not be read (the outer error:
/// no answer, the command failed) from an answer without a version (the inner one: the
/// profile's probe may be wrong).
pub fn read_version(t: &Target) -> Result<Option<std::result::Result<String, String>>> {
    let Some(v) = &t.component.health.version else {
        return Ok(None);
    };
    let read = match &v.command {
        Some(argv) => {
            let argv = with_port(argv, t.port);
            let out = run_as(t.ct, t.vmid, t.component.user.as_str(), &argv, t.timeout())?;
            if !out.ok() {
                bail!(
                    "the version command `{}` failed in CT {} (exit {}): {}",
                    shown_argv(&argv),
                    t.vmid,
                    out.code,
                    crate::escape::shown(&out.tail(2))
                );
            }
            v.extract_output(&out.stdout)
        }
        None => {
            let url = format!("http://127.0.0.1:{}{}", t.port, v.http_path());
            let (headers, body) = probe_http(t.ct, t.vmid, &url)?;
            v.extract(&headers, &body)
        }
    };
    Ok(Some(read.map_err(|e| format!("{e} ({})", v.describe()))))
}

/// GETs `url` inside the container; its header lines and body.
fn probe_http(ct: &dyn CtAccess, vmid: u32, url: &str) -> Result<(String, String)> {
    let out = ct.exec(vmid, &["curl", "-fsS", "-i", "-m", "5", url])?;
    if !out.ok() {
        bail!(
            "the app's version probe {url} did not answer: {}",
            out.tail(2)
        );
    }
    let text = out.stdout.replace("\r\n", "\n");
    Ok(match text.split_once("\n\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (text, String::new()),
    })
}

/// The check made through nginx, as users reach the app: an HTTP check's path and status; for
/// a TCP or command check, the component's location answering anything but a gateway error
/// (nginx reached the app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThroughNginx {
    pub path: String,
    pub status: Option<u16>,
}

impl ThroughNginx {
    pub fn of(component: &Component) -> Self {
        match component.health.check() {
            HealthCheck::Http { path, status, .. } => ThroughNginx {
                path: path.to_string(),
                status: Some(status),
            },
            _ => ThroughNginx {
                path: component.location.clone(),
                status: None,
            },
        }
    }

    /// Whether `code` (curl's `%{http_code}` or a status) passes.
    pub fn accepts(&self, code: &str) -> bool {
        match self.status {
            Some(s) => code == s.to_string(),
            None => code.parse::<u16>().is_ok_and(|c| (100..500).contains(&c)),
        }
    }

    /// Polls `base` (nginx's local URL) + the path every second until it passes, for up to
    /// `deadline`.
    pub fn wait(&self, ct: &dyn CtAccess, vmid: u32, base: &str, deadline: Duration) -> Result<()> {
        let url = format!("{}{}", base.trim_end_matches('/'), self.path);
        let end = Instant::now() + deadline;
        loop {
            let got = http_status(ct, vmid, &url)?;
            if self.accepts(&got) {
                return Ok(());
            }
            if Instant::now() >= end {
                bail!(
                    "nginx did not pass the health check: {url} did not answer {} within {} s (last answer: {})\n  help: see `pct exec {vmid} -- journalctl -u nginx`",
                    self.expected(),
                    deadline.as_secs(),
                    code_in_words(&got)
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// What passes, after "expected": `200`, or `an answer from the app`.
    pub fn expected(&self) -> String {
        match self.status {
            Some(s) => s.to_string(),
            None => "an answer from the app (not 5xx)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::ExecOutput;
    use std::sync::Mutex;

    /// Answers every exec with one output, and keeps the argv it was asked.
    struct Fake {
        out: ExecOutput,
        asked: Mutex<Vec<Vec<String>>>,
    }

    impl CtAccess for Fake {
        fn exec(&self, _vmid: u32, argv: &[&str]) -> Result<ExecOutput> {
            self.asked
                .lock()
                .unwrap()
                .push(argv.iter().map(|s| s.to_string()).collect());
            Ok(self.out.clone())
        }
        fn write(&self, _: u32, _: &str, _: &[u8], _: u32, _: Option<&str>) -> Result<()> {
            unreachable!()
        }
        fn push(
            &self,
            _: u32,
            _: &std::path::Path,
            _: &str,
            _: u32,
            _: Option<&str>,
        ) -> Result<()> {
            unreachable!()
        }
    }

    fn target<'a>(ct: &'a Fake, c: &'a Component, port: u16) -> Target<'a> {
        Target {
            ct,
            vmid: 1,
            component: c,
            port,
        }
    }

    fn fake(code: i32, stdout: &str) -> Fake {
        Fake {
            out: ExecOutput {
                code,
                stdout: stdout.into(),
                stderr: String::new(),
            },
            asked: Mutex::new(Vec::new()),
        }
    }

    fn component(health: &str) -> Component {
        serde_yaml_ng::from_str(&format!(
            "name: web\ndescription: d\ninstall: {{kind: release, binary: app}}\nuser: app\nport: 3000\nlocation: /\nunit: u.j2\nhealth: {health}\n"
        ))
        .unwrap()
    }

    #[test]
    fn http_with_a_json_match_reads_the_body() {
        let c = component("{path: /health, json: {field: checks.db, equals: ok}}");
        let ct = fake(0, "{\"checks\": {\"db\": \"ok\"}}\n200");
        let t = target(&ct, &c, 3000);
        assert!(probe_once(&t).unwrap().healthy);
        let ct = fake(0, "{\"checks\": {\"db\": \"down\"}}\n200");
        let t = Target { ct: &ct, ..t };
        let a = probe_once(&t).unwrap();
        assert!(!a.healthy);
        assert!(a.got.contains("`checks.db` is \"down\""), "{}", a.got);
    }

    #[test]
    fn http_with_a_body_match_and_tcp_and_command() {
        let c = component("{path: /health, body: alive}");
        let ct = fake(0, "i am alive\n200");
        let t = target(&ct, &c, 3000);
        assert!(probe_once(&t).unwrap().healthy);
        let c = component("{tcp: true}");
        let ct = fake(1, "");
        let t = target(&ct, &c, 3001);
        assert!(!probe_once(&t).unwrap().healthy);
        assert!(ct.asked.lock().unwrap()[0].contains(&"3001".to_string()));
        let c = component("{command: [pg_isready, -p, '{port}']}");
        let ct = fake(0, "");
        let t = target(&ct, &c, 3002);
        assert!(probe_once(&t).unwrap().healthy);
        let asked = ct.asked.lock().unwrap()[0].clone();
        assert_eq!(
            asked[4..],
            [
                "/usr/sbin/runuser",
                "-u",
                "app",
                "--",
                "pg_isready",
                "-p",
                "3002"
            ]
        );
    }

    #[test]
    fn the_version_from_a_command_is_trimmed_then_matched() {
        let c =
            component("{path: /, version: {command: [app, --version], pattern: '^app v(\\S+)'}}");
        let ct = fake(0, "app v1.2.3 (linux)\n");
        let t = target(&ct, &c, 3000);
        assert_eq!(running_version(&t).unwrap().as_deref(), Some("1.2.3"));
        let ct = fake(3, "");
        let t = Target { ct: &ct, ..t };
        let e = running_version(&t).unwrap_err().to_string();
        assert!(e.contains("`app --version` failed"), "{e}");
    }

    #[test]
    fn through_nginx_a_tcp_check_wants_the_app_to_answer() {
        let n = ThroughNginx::of(&component("{tcp: true}"));
        assert!(n.accepts("404") && n.accepts("200"));
        assert!(!n.accepts("502") && !n.accepts("000"));
        let n = ThroughNginx::of(&component("{path: /h, expect_status: 401}"));
        assert!(n.accepts("401") && !n.accepts("200"));
    }
}
