//! Everything that can go wrong talking to PVE, as users should read it: PVE's own message,
//! its per-parameter errors one per line, and a `help:` line. No variant ever holds a
//! secret (tokens, passwords and tickets stay in `auth`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::requests::Method;
use super::tls::Fingerprint;
use super::upid::Upid;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PveError {
    #[error("cannot reach the Proxmox VE API at {url}: {reason}\nhelp: check the host name and port (PVE listens on 8006) and that pveproxy runs on the node (`systemctl status pveproxy`)")]
    Connect { url: String, reason: String },

    #[error("no answer from {url} within {} s\nhelp: the node may be overloaded or a firewall drops the traffic; try again, or check `systemctl status pveproxy` on the node", .after.as_secs())]
    Timeout { url: String, after: Duration },

    #[error("the TLS certificate of {host} is not trusted (SHA-256 fingerprint {fingerprint})\nhelp: if this is your node's certificate, pin it: --fingerprint {fingerprint}\n      (on the node, `pvenode cert info` lists the fingerprints of its certificates)")]
    UnknownCertificate {
        host: String,
        fingerprint: Fingerprint,
    },

    #[error("the TLS certificate of {host} does not match the pinned fingerprint\n  pinned: {expected}\n  server: {actual}\nhelp: if the node's certificate was renewed on purpose, pin the new one (`pvenode cert info` on the node shows it); otherwise something is intercepting the connection")]
    FingerprintMismatch {
        host: String,
        expected: Fingerprint,
        actual: Fingerprint,
    },

    #[error("cannot set up TLS: {reason}\nhelp: {help}")]
    TlsSetup { reason: String, help: String },

    #[error("invalid PVE host `{value}`: {problem}\nhelp: give the node's name or address, optionally with a port, e.g. `pve.lan` or `192.168.1.2:8006`")]
    InvalidHost { value: String, problem: String },

    #[error("PVE rejected {method} {path}: {message}{}", fmt_param_errors(.errors))]
    BadRequest {
        method: Method,
        path: String,
        message: String,
        /// Parameter name → PVE's message (may hold several lines).
        errors: BTreeMap<String, String>,
    },

    #[error("authentication failed for {method} {path}: {message}\nhelp: check the API token (USER@REALM!TOKENID=SECRET) and that it is not expired (`pveum user token list USER`)")]
    Unauthorized {
        method: Method,
        path: String,
        message: String,
    },

    #[error("login as {username} failed: {message}\nhelp: check the user name (with its realm, e.g. root@pam) and the password; accounts with two-factor login need an API token instead")]
    LoginFailed { username: String, message: String },

    #[error("permission denied for {method} {path}: {message}{}", fmt_missing(.missing))]
    Forbidden {
        method: Method,
        path: String,
        message: String,
        missing: Option<MissingPrivilege>,
    },

    #[error("{method} {path} is not implemented by this node: {message}\nhelp: the node may run an older Proxmox VE; Launch needs PVE 8 or 9 (`pveversion` on the node)")]
    NotImplemented {
        method: Method,
        path: String,
        message: String,
    },

    #[error("the cluster node that serves {method} {path} is unreachable (HTTP {status}: {message})\nhelp: check that the node is online (`pvecm status`) and retry")]
    NodeUnreachable {
        status: u16,
        method: Method,
        path: String,
        message: String,
    },

    #[error("{method} {path} failed (HTTP {status}): {message}")]
    Api {
        status: u16,
        method: Method,
        path: String,
        message: String,
    },

    #[error("cannot decode PVE's answer to {method} {path}: {reason}\nhelp: this PVE version answers differently than Launch expects; please report it with the output of `pveversion -v`")]
    Decode {
        method: Method,
        path: String,
        reason: String,
    },

    #[error("task {upid} failed: {exitstatus}{}", fmt_tail(.log_tail))]
    TaskFailed {
        // Boxed: a UPID is large and errors travel in every `Result`.
        upid: Box<Upid>,
        exitstatus: String,
        /// The last lines of the task log.
        log_tail: Vec<String>,
    },

    #[error("task {upid} is still running after {} s\nhelp: it keeps running on the node; follow it in the web UI (Tasks) or with `pvenode task status {upid}`", .waited.as_secs())]
    TaskTimeout { upid: Box<Upid>, waited: Duration },

    #[error("invalid {what} `{value}`: {problem}\nhelp: {help}")]
    InvalidInput {
        what: &'static str,
        value: String,
        problem: String,
        help: String,
    },

    #[error("invalid task id `{value}`: {problem}\nhelp: copy the whole UPID as PVE printed it, including the trailing colon")]
    InvalidUpid { value: String, problem: String },

    #[error("invalid certificate fingerprint `{value}`: {problem}\nhelp: give the SHA-256 fingerprint as PVE shows it, e.g. AB:CD:...:EF (32 bytes; colons optional)")]
    InvalidFingerprint { value: String, problem: String },

    #[error("invalid API token{}: {problem}\nhelp: a token looks like USER@REALM!TOKENID=SECRET, e.g. launch@pve!launch=<uuid>; create one with `pveum user token add launch@pve launch`", fmt_token_id(.id))]
    InvalidToken { id: Option<String>, problem: String },

    #[error("cannot read the API token file {}: {reason}\nhelp: check the path; the file holds one line USER@REALM!TOKENID=SECRET", .path.display())]
    TokenFile { path: PathBuf, reason: String },

    #[error("refusing to read the API token from {}: group or others may read it (mode {mode:04o})\nhelp: chmod 600 {}", .path.display(), .path.display())]
    TokenFileMode { path: PathBuf, mode: u32 },

    #[error("cannot run {program}: {reason}\nhelp: the pvesh transport works only as root on a Proxmox VE node; elsewhere use the HTTPS API with an API token")]
    PveshUnavailable { program: String, reason: String },

    #[error("refusing to pass `{param}` to pvesh: it would be visible in the process list\nhelp: leave the root password unset and use SSH keys, or use the HTTPS API")]
    SecretOnCommandLine { param: String },
}

/// The privilege a 403 names: `Permission check failed (/vms/101, VM.Allocate)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingPrivilege {
    pub acl_path: String,
    /// Several when PVE accepts any one of them (`A|B`).
    pub privileges: Vec<String>,
}

static PERM_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Permission check failed \(([^,()]+),\s*([^()]+)\)").expect("static regex is valid")
});

impl MissingPrivilege {
    pub fn parse(message: &str) -> Option<Self> {
        let c = PERM_RE.captures(message)?;
        Some(MissingPrivilege {
            acl_path: c[1].trim().to_string(),
            privileges: c[2].split('|').map(|p| p.trim().to_string()).collect(),
        })
    }
}

impl fmt::Display for MissingPrivilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.privileges.join(" or "), self.acl_path)
    }
}

fn fmt_param_errors(errors: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in errors {
        for (i, line) in v.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            if i == 0 {
                out.push_str(&format!("\n  {k}: {line}"));
            } else {
                out.push_str(&format!("\n  {line}"));
            }
        }
    }
    out
}

fn fmt_missing(m: &Option<MissingPrivilege>) -> String {
    match m {
        Some(m) => format!(
            "\n  missing privilege: {m}\nhelp: grant the token a role with {p} on {path}, e.g. `pveum acl modify {path} --roles <ROLE> --tokens 'USER@REALM!TOKENID'` (with privilege separation the user needs it too)",
            p = m.privileges.join(" or "),
            path = m.acl_path
        ),
        None => "\nhelp: the API token lacks a privilege for this call; see `pveum user token permissions USER TOKENID`".into(),
    }
}

fn fmt_tail(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n  last lines of the task log:");
    for l in tail {
        out.push_str("\n    ");
        out.push_str(l);
    }
    out
}

fn fmt_token_id(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" `{id}=...`"),
        None => String::new(),
    }
}

impl PveError {
    /// Worth retrying after a pause: the network or a proxied cluster node failed, or PVE
    /// timed out waiting for a lock.
    pub fn is_retryable(&self) -> bool {
        match self {
            PveError::Connect { .. }
            | PveError::Timeout { .. }
            | PveError::NodeUnreachable { .. } => true,
            PveError::Api {
                status, message, ..
            } => *status >= 500 && message.contains("got timeout"),
            _ => false,
        }
    }

    /// Maps a non-2xx answer to the matching variant. `message` is PVE's status text
    /// (its JSON `message`, or the HTTP reason phrase).
    pub fn from_status(
        status: u16,
        method: Method,
        path: &str,
        message: &str,
        errors: BTreeMap<String, String>,
    ) -> PveError {
        let message = message.trim().to_string();
        let path = path.to_string();
        match status {
            400 => PveError::BadRequest {
                method,
                path,
                message,
                errors,
            },
            401 => PveError::Unauthorized {
                method,
                path,
                message,
            },
            403 => PveError::Forbidden {
                missing: MissingPrivilege::parse(&message),
                method,
                path,
                message,
            },
            501 => PveError::NotImplemented {
                method,
                path,
                message,
            },
            595 | 596 | 599 => PveError::NodeUnreachable {
                status,
                method,
                path,
                message,
            },
            _ => PveError::Api {
                status,
                method,
                path,
                message,
            },
        }
    }

    /// Removes a secret that PVE may have echoed back in a message (e.g. a value in a
    /// parameter error), so it cannot reach the user's terminal or logs.
    pub fn scrub(self, secret: &str) -> PveError {
        if secret.is_empty() {
            return self;
        }
        let clean = |s: String| s.replace(secret, "<redacted>");
        match self {
            PveError::BadRequest {
                method,
                path,
                message,
                errors,
            } => PveError::BadRequest {
                method,
                path,
                message: clean(message),
                errors: errors.into_iter().map(|(k, v)| (k, clean(v))).collect(),
            },
            PveError::Api {
                status,
                method,
                path,
                message,
            } => PveError::Api {
                status,
                method,
                path,
                message: clean(message),
            },
            PveError::TaskFailed {
                upid,
                exitstatus,
                log_tail,
            } => PveError::TaskFailed {
                upid,
                exitstatus: clean(exitstatus),
                log_tail: log_tail.into_iter().map(clean).collect(),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_small_enough_to_return_by_value() {
        // clippy's result_large_err limit; every fallible call in Launch carries this.
        assert!(
            std::mem::size_of::<PveError>() <= 128,
            "{}",
            std::mem::size_of::<PveError>()
        );
    }
}
