//! The `pvesh` command of a Proxmox host, for the lab: `pvesh get|create|set|delete PATH
//! [--output-format json|json-pretty|text] [--KEY VALUE]...`, sent to the lab's HTTPS API with
//! the root token and pinned certificate. It answers as pve-manager's `pvesh` does on the CLI:
//! - a call that starts a worker runs it in the foreground (pve-common's RESTEnvironment
//!   `fork_worker` in CLI mode): the task's log, the worker's stderr included, goes to stdout as
//!   it is written; a task error's message (or `Task finished with N warning(s)!`) to stderr;
//!   then the UPID is printed and pvesh exits 0 whatever the outcome, so the caller must read
//!   the task's status;
//! - a handler error (a PVE exception) exits 255: the message (`400 Parameter verification
//!   failed.` then `param: message` lines), then for parameter errors the usage;
//! - a path with no handler exits 1 (`No 'get' handler defined for '/x'`).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::client::LabClient;

#[derive(Debug, PartialEq)]
struct Invocation {
    method: &'static str,
    path: String,
    format: String,
    params: Vec<(String, String)>,
}

const USAGE: &str = "USAGE: pvesh get|create|set|delete <api_path> [--output-format json|json-pretty|text] [--<param> <value>]...";

fn parse(args: &[String]) -> Result<Invocation, String> {
    let (cmd, rest) = args.split_first().ok_or_else(|| USAGE.to_string())?;
    let method = match cmd.as_str() {
        "get" => "GET",
        "create" => "POST",
        "set" => "PUT",
        "delete" => "DELETE",
        "ls" | "usage" | "help" => {
            return Err(format!("pvesh {cmd} is not supported by pve-lab\n{USAGE}"))
        }
        other => return Err(format!("unknown command 'pvesh {other}'\n{USAGE}")),
    };
    let (path, opts) = rest
        .split_first()
        .ok_or_else(|| format!("missing <api_path>\n{USAGE}"))?;
    let mut format = "text".to_string();
    let mut params = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let arg = &opts[i];
        let Some(key) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!("unexpected argument '{arg}'\n{USAGE}"));
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match opts.get(i + 1) {
                // A flag with no value, like pvesh's booleans, means 1.
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    (key.to_string(), v.clone())
                }
                _ => (key.to_string(), "1".to_string()),
            },
        };
        i += 1;
        match key.as_str() {
            "output-format" => format = value,
            "noproxy" | "quiet" | "human-readable" | "noborder" | "noheader" => {}
            _ => params.push((key, value)),
        }
    }
    if !["json", "json-pretty", "text"].contains(&format.as_str()) {
        return Err(format!(
            "value '{format}' does not have a value in the enumeration 'json, json-pretty, text'"
        ));
    }
    let path = if path.starts_with('/') {
        path.clone()
    } else {
        format!("/{path}")
    };
    Ok(Invocation {
        method,
        path,
        format,
        params,
    })
}

/// Runs `pvesh ARGS...` against the lab in `state`; returns the exit code.
pub fn main(state: &Path, args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let inv = match parse(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return 255;
        }
    };
    let client = match LabClient::from_state(state, Duration::from_secs(300)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return 255;
        }
    };
    let resp = match client.call(inv.method, &format!("/api2/json{}", inv.path), &inv.params) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e:#}");
            return 255;
        }
    };
    if resp.status == 501 {
        eprintln!(
            "No '{}' handler defined for '{}'",
            args[0].as_str(),
            inv.path
        );
        return 1;
    }
    if resp.status != 200 {
        let mut err = std::io::stderr().lock();
        if resp.status == 500 {
            let _ = writeln!(err, "{}", resp.reason);
        } else {
            let _ = writeln!(err, "{} {}", resp.status, resp.reason);
        }
        if let Some(errors) = resp.body.get("errors").and_then(Value::as_object) {
            for (k, v) in errors {
                let _ = writeln!(err, "{k}: {}", v.as_str().unwrap_or("").trim_end());
            }
            let _ = writeln!(
                err,
                "\npvesh {} <api_path> [OPTIONS] [FORMAT_OPTIONS]",
                args[0].as_str()
            );
        }
        return 255;
    }
    let data = resp.body.get("data").cloned().unwrap_or(Value::Null);
    if inv.method != "GET" {
        if let Some(upid) = data.as_str().filter(|d| d.starts_with("UPID:")) {
            if let Err(e) = follow_task(&client, upid) {
                eprintln!("{e:#}");
                return 255;
            }
        }
    }
    let out = match (inv.format.as_str(), &data) {
        ("json", d) => d.to_string(),
        ("text", Value::String(s)) => s.clone(),
        ("text", Value::Null) => return 0,
        (_, d) => serde_json::to_string_pretty(d).unwrap_or_default(),
    };
    println!("{out}");
    0
}

/// Waits for a worker as pvesh's foreground mode does, copying its log to stdout as it grows.
fn follow_task(client: &LabClient, upid: &str) -> anyhow::Result<()> {
    let node = upid.split(':').nth(1).unwrap_or(crate::model::NODE);
    let base = format!("/api2/json/nodes/{node}/tasks/{upid}");
    let mut shown = 0usize;
    let mut out = std::io::stdout().lock();
    loop {
        let status = client.call("GET", &format!("{base}/status"), &[])?;
        let stopped = status.body["data"]["status"] == "stopped";
        let log = client.call(
            "GET",
            &format!("{base}/log"),
            &[
                ("start".to_string(), shown.to_string()),
                ("limit".to_string(), "5000".to_string()),
            ],
        )?;
        for row in log.body["data"].as_array().into_iter().flatten() {
            let line = row["t"].as_str().unwrap_or_default();
            shown += 1;
            // The worker's own stderr is part of its log (stdout here); only the final
            // control line differs, as pve-common's RESTEnvironment `tee_worker` prints it.
            if line == "TASK OK" {
            } else if let Some(err) = line.strip_prefix("TASK ERROR: ") {
                eprintln!("{err}");
            } else if let Some(n) = line.strip_prefix("TASK WARNINGS: ") {
                eprintln!("Task finished with {n} warning(s)!");
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
        if stopped {
            return Ok(());
        }
        // The lab's API has no long poll; a short pause between reads of a running task.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_like_pvesh() {
        let inv = parse(&s(&[
            "create",
            "/nodes/pve/lxc",
            "--vmid",
            "101",
            "--start",
            "--hostname=a",
            "--output-format",
            "json",
        ]))
        .unwrap();
        assert_eq!(inv.method, "POST");
        assert_eq!(inv.format, "json");
        assert_eq!(
            inv.params,
            vec![
                ("vmid".to_string(), "101".to_string()),
                ("start".to_string(), "1".to_string()),
                ("hostname".to_string(), "a".to_string()),
            ]
        );
        assert!(parse(&s(&["frob", "/x"])).is_err());
        assert!(parse(&s(&["get"])).is_err());
        assert!(parse(&s(&["get", "/x", "--output-format", "yaml"])).is_err());
    }
}
