//! The local transport for root on a PVE node: runs `pvesh get|create|set|delete PATH
//! --output-format json [--key value]...`. pvesh needs no credentials, and secrets are
//! refused rather than put in argv, where every local user could read them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::error::PveError;
use super::requests::{ApiRequest, Method};
use super::Transport;

/// What a finished command left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs a program to completion; tests feed canned output through it.
pub trait CommandRunner: Send + Sync {
    fn run(&self, program: &str, args: &[String]) -> std::io::Result<CommandOutput>;
}

/// Runs the real program, with stdin closed so nothing can prompt.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, program: &str, args: &[String]) -> std::io::Result<CommandOutput> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        Ok(CommandOutput {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

pub struct PveshTransport {
    program: String,
    runner: Box<dyn CommandRunner>,
}

impl std::fmt::Debug for PveshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PveshTransport({})", self.program)
    }
}

impl Default for PveshTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl PveshTransport {
    /// `pvesh` from `PATH`.
    pub fn new() -> Self {
        PveshTransport {
            program: "pvesh".into(),
            runner: Box::new(SystemRunner),
        }
    }

    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into().to_string_lossy().into_owned();
        self
    }

    pub fn with_runner(mut self, runner: Box<dyn CommandRunner>) -> Self {
        self.runner = runner;
        self
    }

    /// The argv (after the program) for `req`.
    pub fn args_for(req: &ApiRequest) -> Result<Vec<String>, PveError> {
        if let Some(p) = req.has_secret() {
            return Err(PveError::SecretOnCommandLine {
                param: p.to_string(),
            });
        }
        let verb = match req.method {
            Method::Get => "get",
            Method::Post => "create",
            Method::Put => "set",
            Method::Delete => "delete",
        };
        let mut args = vec![
            verb.to_string(),
            req.path.clone(),
            "--output-format".to_string(),
            "json".to_string(),
        ];
        for (k, v) in &req.params {
            // pvesh declares string options as mandatory-argument (`=s`), so a value
            // starting with `-` is still taken as the value, never as an option.
            args.push(format!("--{k}"));
            args.push(v.clone());
        }
        Ok(args)
    }
}

impl Transport for PveshTransport {
    fn call(&self, req: &ApiRequest) -> Result<Value, PveError> {
        let args = Self::args_for(req)?;
        let out =
            self.runner
                .run(&self.program, &args)
                .map_err(|e| PveError::PveshUnavailable {
                    program: self.program.clone(),
                    reason: e.to_string(),
                })?;
        if out.code == Some(0) {
            return parse_stdout(req, &String::from_utf8_lossy(&out.stdout));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(parse_failure(req, &stderr, out.code))
    }
}

/// pvesh prints the JSON result; for worker tasks it first runs the task in the
/// foreground and prints its log, so the UPID is then the last line.
fn parse_stdout(req: &ApiRequest, stdout: &str) -> Result<Value, PveError> {
    let t = stdout.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    if let Ok(v) = serde_json::from_str(t) {
        return Ok(v);
    }
    let last = t
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    serde_json::from_str(last).map_err(|e| PveError::Decode {
        method: req.method,
        path: req.path.clone(),
        reason: format!("pvesh printed no JSON ({e}); its last line was `{last}`"),
    })
}

static CODE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{3}) (.*)$").expect("static regex is valid"));
static PARAM_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9][A-Za-z0-9_.\-\[\]]*): (.*)$").expect("static regex is valid")
});
static NO_HANDLER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^no '\w+' handler( defined)? for").expect("static regex is valid")
});

/// Turns pvesh's stderr into the error the HTTP API would have given. PVE exceptions print
/// as `400 Parameter verification failed.` followed by `param: message` lines and a
/// usage block; a plain `die` prints just its message (HTTP would say 500).
fn parse_failure(req: &ApiRequest, stderr: &str, code: Option<i32>) -> PveError {
    let mut lines = stderr
        .lines()
        .map(str::trim_end)
        .skip_while(|l| l.trim().is_empty());
    let first = lines.next().unwrap_or_default().trim();
    if first.is_empty() {
        return PveError::Api {
            status: 500,
            method: req.method,
            path: req.path.clone(),
            message: match code {
                Some(c) => format!("pvesh exited with status {c} and printed nothing on stderr"),
                None => "pvesh was killed by a signal".into(),
            },
        };
    }
    if NO_HANDLER.is_match(first) {
        return PveError::NotImplemented {
            method: req.method,
            path: req.path.clone(),
            message: first.to_string(),
        };
    }
    let (status, message) = match CODE_LINE.captures(first) {
        Some(c) => (c[1].parse::<u16>().unwrap_or(500), c[2].to_string()),
        None => (500, first.to_string()),
    };
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut last_key: Option<String> = None;
    for line in lines {
        if line.trim().is_empty() || line.starts_with("USAGE:") || line.starts_with("pvesh ") {
            break;
        }
        match PARAM_LINE.captures(line) {
            // `net0.ip: ...` continues the message of `net0`, as PVE joins them with \n.
            Some(c)
                if !last_key
                    .as_ref()
                    .is_some_and(|k| c[1].starts_with(&format!("{k}."))) =>
            {
                errors.insert(c[1].to_string(), c[2].to_string());
                last_key = Some(c[1].to_string());
            }
            _ => {
                if let Some(e) = last_key.as_ref().and_then(|k| errors.get_mut(k)) {
                    e.push('\n');
                    e.push_str(line.trim());
                }
            }
        }
    }
    PveError::from_status(status, req.method, &req.path, &message, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pve::requests;
    use std::sync::Mutex;

    struct Canned {
        out: CommandOutput,
        seen: std::sync::Arc<Mutex<Vec<Vec<String>>>>,
    }

    impl CommandRunner for Canned {
        fn run(&self, program: &str, args: &[String]) -> std::io::Result<CommandOutput> {
            let mut argv = vec![program.to_string()];
            argv.extend(args.iter().cloned());
            self.seen.lock().unwrap().push(argv);
            Ok(self.out.clone())
        }
    }

    fn transport(
        code: i32,
        stdout: &str,
        stderr: &str,
    ) -> (PveshTransport, std::sync::Arc<Mutex<Vec<Vec<String>>>>) {
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let t = PveshTransport::new()
            .with_program("/usr/bin/pvesh")
            .with_runner(Box::new(Canned {
                out: CommandOutput {
                    code: Some(code),
                    stdout: stdout.as_bytes().to_vec(),
                    stderr: stderr.as_bytes().to_vec(),
                },
                seen: seen.clone(),
            }));
        (t, seen)
    }

    #[test]
    fn argv_and_json_result() {
        let (t, seen) = transport(0, "[{\"node\":\"pve\",\"status\":\"online\"}]\n", "");
        let v = t
            .call(&requests::lxc_shutdown("pve", 101, Some(30), true))
            .unwrap();
        assert_eq!(v[0]["node"], "pve");
        assert_eq!(
            seen.lock().unwrap()[0],
            [
                "/usr/bin/pvesh",
                "create",
                "/nodes/pve/lxc/101/status/shutdown",
                "--output-format",
                "json",
                "--timeout",
                "30",
                "--forceStop",
                "1"
            ]
        );
    }

    #[test]
    fn task_output_before_the_upid_is_skipped() {
        let out = "extracting archive '/var/lib/vz/template/cache/debian.tar.zst'\nTASK OK\n\"UPID:pve:00001234:00ABCDEF:66000000:vzcreate:101:root@pam:\"\n";
        let (t, _) = transport(0, out, "");
        let v = t.call(&requests::lxc_start("pve", 101)).unwrap();
        assert_eq!(
            v,
            "UPID:pve:00001234:00ABCDEF:66000000:vzcreate:101:root@pam:"
        );
        let (t, _) = transport(0, "", "");
        assert_eq!(
            t.call(&requests::lxc_stop("pve", 101)).unwrap(),
            Value::Null
        );
        let (t, _) = transport(0, "no json here\n", "");
        let e = t.call(&requests::version()).unwrap_err();
        assert!(e.to_string().contains("no json here"), "{e}");
    }

    #[test]
    fn parameter_errors_are_parsed() {
        let stderr = "400 Parameter verification failed.\nnet0: invalid format - format error\nnet0.ip: invalid format - value does not look like a valid ipv4 network configuration\nvmid: VM 100 already exists\n\npvesh create <api_path> [OPTIONS] [FORMAT_OPTIONS]\n";
        let (t, _) = transport(255, "", stderr);
        let e = t.call(&requests::version()).unwrap_err();
        match &e {
            PveError::BadRequest {
                message, errors, ..
            } => {
                assert_eq!(message, "Parameter verification failed.");
                assert_eq!(errors.len(), 2, "{errors:?}");
                assert!(errors["net0"].contains("net0.ip: invalid format"));
                assert_eq!(errors["vmid"], "VM 100 already exists");
            }
            other => panic!("wrong error {other:?}"),
        }
        let text = e.to_string();
        assert!(text.contains("\n  vmid: VM 100 already exists"), "{text}");
        assert!(!text.contains("pvesh create <api_path>"), "{text}");
    }

    #[test]
    fn plain_die_and_missing_handler() {
        let (t, _) = transport(255, "", "CT 101 already exists on node 'pve'\n");
        let e = t.call(&requests::lxc_start("pve", 101)).unwrap_err();
        assert!(
            matches!(&e, PveError::Api { status: 500, message, .. } if message == "CT 101 already exists on node 'pve'"),
            "{e:?}"
        );
        let (t, _) = transport(1, "", "No 'get' handler defined for '/nodes/pve/foo'\n");
        let e = t.call(&requests::version()).unwrap_err();
        assert!(matches!(e, PveError::NotImplemented { .. }), "{e:?}");
        let (t, _) = transport(2, "", "");
        let e = t.call(&requests::version()).unwrap_err();
        assert!(e.to_string().contains("status 2"), "{e}");
    }

    #[test]
    fn secrets_never_reach_argv() {
        let (t, seen) = transport(0, "null", "");
        let req = requests::access_ticket("root@pam", &crate::pve::Secret::new("hunter22"));
        let e = t.call(&req).unwrap_err();
        assert!(matches!(e, PveError::SecretOnCommandLine { .. }), "{e:?}");
        assert!(!e.to_string().contains("hunter22"));
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn real_process_runs_and_missing_program_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-pvesh");
        // A stand-in program: the point is the real spawn/pipe/exit-code path.
        std::fs::write(
            &script,
            "#!/bin/sh\nprintf '{\"argc\":%s,\"verb\":\"%s\"}\\n' \"$#\" \"$1\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = PveshTransport::new().with_program(&script);
        let v = t.call(&requests::cluster_nextid(Some(105))).unwrap();
        assert_eq!(v, serde_json::json!({"argc": 6, "verb": "get"}));

        let t = PveshTransport::new().with_program(dir.path().join("nope"));
        let e = t.call(&requests::version()).unwrap_err();
        assert!(
            e.to_string().contains("nope") && e.to_string().contains("help:"),
            "{e}"
        );
    }
}
