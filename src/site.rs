//! Where an operation runs: Launch's configuration directory and how to reach Proxmox VE.
//! Plain data, no clap: the command line builds it from its global flags, the dashboard keeps
//! the one it was started with, and an operation never sees how either was typed.

use std::path::{Path, PathBuf};

/// How to reach Proxmox VE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS to the API (token or ticket auth).
    Https,
    /// The local `pvesh` (root on the node).
    Pvesh,
}

impl Transport {
    /// The value `--transport` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Https => "https",
            Transport::Pvesh => "pvesh",
        }
    }
}

/// The configuration directory and the connection settings every operation starts from; the
/// connection saved by `launch-tui connect` fills what these leave open (`connect::with_saved`).
#[derive(Debug, Clone)]
pub struct Site {
    /// Launch's configuration directory (instances, profile overrides, the saved connection).
    pub config: PathBuf,
    /// The API's address, `https://NODE:8006`.
    pub host: Option<String>,
    /// None: pvesh on a node, HTTPS when `host` is given.
    pub transport: Option<Transport>,
    pub node: Option<String>,
    /// The 0600 file holding the API token (never the token itself).
    pub token_file: Option<PathBuf>,
    /// The node certificate's pinned SHA-256 fingerprint.
    pub fingerprint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
}

pub const DEFAULT_CONFIG: &str = "/etc/launch";

impl Site {
    /// The default configuration directory, and nothing else set: pvesh on this node.
    pub fn local() -> Self {
        Site::with_config(DEFAULT_CONFIG)
    }

    pub fn with_config(config: impl Into<PathBuf>) -> Self {
        Site {
            config: config.into(),
            host: None,
            transport: None,
            node: None,
            token_file: None,
            fingerprint: None,
            ca_file: None,
            insecure: false,
        }
    }

    /// The global flags that give another launch-tui process (the dashboard's workers, the
    /// daily health timer) this same context: a flag and its value as separate arguments,
    /// `--config` only when it is not the default. Never a secret: a token stays in its file.
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(k.to_string());
                a.push(v);
            }
        };
        if self.config != Path::new(DEFAULT_CONFIG) {
            opt("--config", Some(self.config.display().to_string()));
        }
        opt("--host", self.host.clone());
        opt(
            "--transport",
            self.transport.map(|t| t.as_str().to_string()),
        );
        opt("--node", self.node.clone());
        opt(
            "--token-file",
            self.token_file.as_ref().map(|p| p.display().to_string()),
        );
        opt("--fingerprint", self.fingerprint.clone());
        opt(
            "--ca-file",
            self.ca_file.as_ref().map(|p| p.display().to_string()),
        );
        if self.insecure {
            a.push("--insecure".into());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_name_every_setting_once_and_the_default_config_not_at_all() {
        assert!(Site::local().args().is_empty());
        let mut c = Site::with_config("/srv/launch conf");
        c.host = Some("https://pve:8006".into());
        c.transport = Some(Transport::Https);
        c.token_file = Some("/root/tok".into());
        c.insecure = true;
        assert_eq!(
            c.args(),
            [
                "--config",
                "/srv/launch conf",
                "--host",
                "https://pve:8006",
                "--transport",
                "https",
                "--token-file",
                "/root/tok",
                "--insecure"
            ]
        );
    }
}
