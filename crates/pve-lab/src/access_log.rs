//! STATE/access.jsonl: one line per API request with its verdict, so tests (the lab's and
//! launch-tui's) can assert that no request a real PVE would refuse was ever sent.
//! Secret parameter values are redacted before they reach the file.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Authenticated, schema-valid and permitted; the handler ran (it may still have failed).
    Ok,
    /// Refused before any handler: authentication, schema validation or permissions.
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessEntry {
    pub ts: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub status: u16,
    pub verdict: Verdict,
    /// Which stage decided a rejection: `auth`, `schema`, `permission`; `handler` otherwise.
    #[serde(default)]
    pub stage: String,
    /// The reason phrase sent with a non-200 status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Per-parameter errors of a 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, String>>,
    /// `user@realm!tokenid` (never the secret) or `user@realm` for tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_id: Option<String>,
    /// The fault that answered or altered this request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// Parameter names whose values never go to the log.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "password"
        || k == "new-password"
        || k == "otp"
        || k == "tfa-challenge"
        || k.ends_with("password")
        || k.contains("secret")
}

pub fn redact(params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    params
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) {
                "<redacted>".to_string()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

pub fn access_log_path(state: &Path) -> PathBuf {
    state.join("access.jsonl")
}

/// Appends entries; one mutex so concurrent requests never interleave lines.
pub struct AccessLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl AccessLog {
    pub fn new(state: &Path) -> AccessLog {
        AccessLog {
            path: access_log_path(state),
            lock: Mutex::new(()),
        }
    }

    pub fn append(&self, entry: &AccessEntry) {
        let Ok(mut line) = serde_json::to_string(entry) else {
            return;
        };
        line.push('\n');
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path);
        match file {
            Ok(mut f) => {
                if let Err(e) = f.write_all(line.as_bytes()) {
                    eprintln!("pve-lab: cannot write {}: {e}", self.path.display());
                }
            }
            Err(e) => eprintln!("pve-lab: cannot open {}: {e}", self.path.display()),
        }
    }
}

/// Every entry of STATE/access.jsonl, oldest first; lines that do not parse are skipped.
pub fn read_access_log(state: &Path) -> Vec<AccessEntry> {
    std::fs::read_to_string(access_log_path(state))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let log = AccessLog::new(dir.path());
        let params = BTreeMap::from([
            ("password".to_string(), "hunter22".to_string()),
            ("hostname".to_string(), "ct1".to_string()),
        ]);
        log.append(&AccessEntry {
            ts: "t".into(),
            method: "POST".into(),
            path: "/nodes/pve/lxc".into(),
            params: redact(&params),
            status: 200,
            verdict: Verdict::Ok,
            stage: "handler".into(),
            message: None,
            errors: None,
            auth_id: Some("root@pam!launch".into()),
            fault: None,
        });
        let raw = std::fs::read_to_string(access_log_path(dir.path())).unwrap();
        assert!(!raw.contains("hunter22"));
        let entries = read_access_log(dir.path());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].params["hostname"], "ct1");
        assert_eq!(entries[0].verdict, Verdict::Ok);
    }
}
