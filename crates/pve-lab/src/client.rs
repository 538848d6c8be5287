//! A small client for a running lab, as its own commands (`pvesh`, `fault`, `up`'s readiness
//! wait) use it: the port from STATE/daemon.json, the root token from STATE/token, and the
//! certificate pinned by STATE/fingerprint, exactly as launch-tui is told to connect.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::{read_trimmed, write_file_atomic};

/// What the running daemon tells its commands (STATE/daemon.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: i32,
    pub port: u16,
    pub pve: u8,
    /// The pve-container version the lab stands in for (its `pct` follows it).
    #[serde(default)]
    pub pve_container: String,
    pub prefix: String,
    pub subnet: String,
    pub cache: PathBuf,
    pub started: u64,
}

pub fn daemon_info_path(state: &Path) -> PathBuf {
    state.join("daemon.json")
}

pub fn read_daemon_info(state: &Path) -> Option<DaemonInfo> {
    let bytes = std::fs::read(daemon_info_path(state)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn write_daemon_info(state: &Path, info: &DaemonInfo) -> Result<()> {
    write_file_atomic(
        &daemon_info_path(state),
        &serde_json::to_vec_pretty(info)?,
        0o644,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no pve-lab daemon state in {0}\nhelp: start the lab with `pve-lab --state {0} up`")]
    NotUp(String),
}

pub struct LabClient {
    pub base: String,
    token: String,
    http: reqwest::blocking::Client,
}

/// A lab answer: status, reason phrase (PVE's message) and the JSON body if any.
pub struct LabResponse {
    pub status: u16,
    pub reason: String,
    pub body: serde_json::Value,
}

impl LabClient {
    pub fn from_state(state: &Path, timeout: Duration) -> Result<LabClient> {
        let info = read_daemon_info(state)
            .ok_or_else(|| ClientError::NotUp(state.display().to_string()))?;
        LabClient::new(state, info.port, timeout)
    }

    pub fn new(state: &Path, port: u16, timeout: Duration) -> Result<LabClient> {
        let fingerprint = read_trimmed(&state.join("fingerprint"))?;
        let token = read_trimmed(&crate::auth::token_file(
            state,
            crate::auth::ROOT_TOKEN_NAME,
        ))?;
        Ok(LabClient {
            base: format!("https://127.0.0.1:{port}"),
            token,
            http: crate::tls::pinned_client(&fingerprint, timeout)?,
        })
    }

    /// `path` is absolute on the server (`/api2/json/...` or `/lab/...`). GET/DELETE send the
    /// parameters in the query, POST/PUT as a form body, as PVE clients do.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        params: &[(String, String)],
    ) -> Result<LabResponse> {
        let url = format!("{}{}", self.base, path);
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .with_context(|| format!("HTTP method '{method}'"))?;
        let mut req = self
            .http
            .request(m.clone(), &url)
            .header("Authorization", format!("PVEAPIToken={}", self.token));
        if m == reqwest::Method::GET || m == reqwest::Method::DELETE {
            req = req.query(params);
        } else {
            req = req.form(params);
        }
        let resp = req.send().with_context(|| format!("{method} {url}"))?;
        let status = resp.status().as_u16();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| resp.status().canonical_reason().map(str::to_string))
            .unwrap_or_default();
        let text = resp.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Ok(LabResponse {
            status,
            reason,
            body,
        })
    }
}
