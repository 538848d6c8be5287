//! Turns the global options into a Proxmox VE client: HTTPS when `--host` is given (token from
//! a 0600 file or `LAUNCH_PVE_TOKEN`, or a ticket login from `LAUNCH_PVE_USER` and
//! `LAUNCH_PVE_PASSWORD`), else the connection saved by `launch-tui connect` in
//! `CONFIG/connection.yaml`, else the local `pvesh` as root on the node, like the helper scripts.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LaunchError;
use crate::pve::{
    ApiToken, Auth, Client, Fingerprint, HttpsTransport, PveshTransport, Secret, TlsMode,
    TOKEN_ENV_VAR,
};
use crate::site::Site;
use crate::site::Transport;

pub const USER_ENV_VAR: &str = "LAUNCH_PVE_USER";
pub const PASSWORD_ENV_VAR: &str = "LAUNCH_PVE_PASSWORD";

/// A connected client and a sentence saying how, for `doctor` and logs.
pub struct Connection {
    pub client: Client,
    pub description: String,
    /// Printed on every run (e.g. `--insecure`).
    pub warning: Option<&'static str>,
}

fn find_on_path(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(cmd))
            .find(|p| p.is_file())
    })
}

/// The file `launch-tui connect` writes in the configuration directory.
pub const CONNECTION_FILE: &str = "connection.yaml";

/// How to reach a Proxmox VE node, saved by `launch-tui connect`: never the secret itself,
/// only the path of the 0600 token file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedConnection {
    /// `https://NODE:8006`.
    pub host: String,
    /// The pinned SHA-256 fingerprint of the node's certificate (`AB:CD:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Or a CA file to trust instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The file holding `USER@REALM!TOKENID=SECRET` (mode 0600).
    pub token_file: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

pub fn connection_path(config: &Path) -> PathBuf {
    config.join(CONNECTION_FILE)
}

impl SavedConnection {
    /// The saved connection, if `connect` wrote one.
    pub fn load(config: &Path) -> Result<Option<SavedConnection>, LaunchError> {
        use std::os::unix::fs::PermissionsExt;
        let path = connection_path(config);
        let meta =
            match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(LaunchError::bad_input(
                    path.display().to_string(),
                    format!("cannot read it: {e}"),
                    "fix its permissions, or save the connection again with `launch-tui connect`",
                )),
            };
        // Whoever can change this file can point Launch at another node.
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(LaunchError::bad_input(
                path.display().to_string(),
                format!(
                    "others can change it (mode {:o})",
                    meta.permissions().mode() & 0o777
                ),
                format!("chmod 600 {}", path.display()),
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            LaunchError::bad_input(
                path.display().to_string(),
                format!("cannot read it: {e}"),
                "fix its permissions, or save the connection again with `launch-tui connect`",
            )
        })?;
        serde_yaml_ng::from_str(&text).map(Some).map_err(|e| {
            LaunchError::bad_input(
                path.display().to_string(),
                format!("not a saved connection: {e}"),
                "save it again with `launch-tui connect --host URL --token-file FILE`",
            )
        })
    }

    pub fn save(&self, config: &Path) -> Result<PathBuf, LaunchError> {
        let path = connection_path(config);
        let text = serde_yaml_ng::to_string(self).map_err(|e| {
            LaunchError::Failed(anyhow::anyhow!("cannot write the connection: {e}"))
        })?;
        let text = format!(
            "# Written by `launch-tui connect`: how every command reaches Proxmox VE when no\n\
             # --host is given. The token itself stays in token_file (mode 0600).\n{text}"
        );
        crate::fsutil::write_atomic(&path, text.as_bytes(), 0o600).map_err(LaunchError::Failed)?;
        Ok(path)
    }
}

/// The global options with the saved connection filled in where the command line and the
/// environment say nothing: a `--host` (or `--transport pvesh`) given now wins over the file.
pub fn with_saved(g: &Site) -> Result<Cow<'_, Site>, LaunchError> {
    if g.host.is_some() || g.transport == Some(Transport::Pvesh) {
        return Ok(Cow::Borrowed(g));
    }
    let Some(saved) = SavedConnection::load(&g.config)? else {
        return Ok(Cow::Borrowed(g));
    };
    let mut merged = g.clone();
    merged.host = Some(saved.host);
    if merged.token_file.is_none() {
        merged.token_file = Some(saved.token_file);
    }
    if merged.fingerprint.is_none() && merged.ca_file.is_none() && !merged.insecure {
        merged.fingerprint = saved.fingerprint;
        merged.ca_file = saved.ca_file;
    }
    if merged.node.is_none() {
        merged.node = saved.node;
    }
    Ok(Cow::Owned(merged))
}

pub fn connect(g: &Site) -> Result<Connection, LaunchError> {
    let g = &*with_saved(g)?;
    let kind = match (g.transport, &g.host) {
        (Some(k), _) => k,
        (None, Some(_)) => Transport::Https,
        (None, None) => Transport::Pvesh,
    };
    match kind {
        Transport::Pvesh => {
            let Some(pvesh) = find_on_path("pvesh") else {
                return Err(LaunchError::bad_input(
                    "Proxmox VE",
                    "this machine is not a Proxmox VE node (no `pvesh` on PATH) and no --host was given",
                    "run launch-tui as root on the Proxmox VE host, or save the API's address once: launch-tui connect --host https://NODE:8006 --token-file FILE",
                ));
            };
            Ok(Connection {
                description: format!("local pvesh ({})", pvesh.display()),
                client: Client::new(Box::new(PveshTransport::new().with_program(pvesh))),
                warning: None,
            })
        }
        Transport::Https => {
            let Some(host) = &g.host else {
                return Err(LaunchError::bad_input(
                    "--transport https",
                    "no API address given",
                    "add --host https://NODE:8006 (or set LAUNCH_HOST)",
                ));
            };
            let auth = auth(g.token_file.as_deref())?;
            let tls = tls_mode(g)?;
            let warning = tls.warning();
            let transport = HttpsTransport::new(host, auth, tls)?;
            Ok(Connection {
                description: format!("HTTPS API at {}", transport.base_url()),
                client: Client::new(Box::new(transport)),
                warning,
            })
        }
    }
}

pub fn auth(token_file: Option<&Path>) -> Result<Auth, LaunchError> {
    if let Some(f) = token_file {
        return Ok(Auth::Token(ApiToken::from_file(f)?));
    }
    if let Some(t) = ApiToken::from_env(TOKEN_ENV_VAR)? {
        return Ok(Auth::Token(t));
    }
    match (
        std::env::var(USER_ENV_VAR).ok(),
        std::env::var(PASSWORD_ENV_VAR).ok(),
    ) {
        (Some(username), Some(password)) => Ok(Auth::Ticket {
            username,
            password: Secret::new(password),
        }),
        _ => Err(LaunchError::bad_input(
            "credentials",
            "no API token or login given",
            format!("pass --token-file FILE (a 0600 file holding USER@REALM!TOKENID=SECRET), or set {TOKEN_ENV_VAR}, or set {USER_ENV_VAR} and {PASSWORD_ENV_VAR}"),
        )),
    }
}

pub fn tls_mode(g: &Site) -> Result<TlsMode, LaunchError> {
    let chosen = [g.fingerprint.is_some(), g.ca_file.is_some(), g.insecure]
        .iter()
        .filter(|x| **x)
        .count();
    if chosen > 1 {
        return Err(LaunchError::bad_input(
            "--fingerprint / --ca-file / --insecure",
            "more than one way to check the certificate was given",
            "choose one: pin the fingerprint (usual for Proxmox VE's self-signed certificate), or give the cluster CA file",
        ));
    }
    if let Some(fp) = &g.fingerprint {
        let parsed: Fingerprint = fp.parse().map_err(|e| {
            LaunchError::bad_input(
                format!("--fingerprint {fp}"),
                format!("{e}"),
                "copy the SHA-256 fingerprint from `pvenode cert info` on the node (AB:CD:... 32 bytes)",
            )
        })?;
        return Ok(TlsMode::Pinned(parsed));
    }
    if let Some(ca) = &g.ca_file {
        if !ca.exists() {
            return Err(LaunchError::bad_input(
                ca.display().to_string(),
                "the CA file does not exist",
                "copy /etc/pve/pve-root-ca.pem from the node, or pin the fingerprint instead",
            ));
        }
        return Ok(TlsMode::CaFile(ca.clone()));
    }
    if g.insecure {
        return Ok(TlsMode::Insecure);
    }
    Ok(TlsMode::SystemRoots)
}

/// The node to work on: `--node`, or the cluster's only node. Through the local pvesh it must be
/// this node: `pct exec`/`push` reach only containers running here (pvesh itself would proxy
/// API calls to another node, so the install would create a CT it then cannot enter).
pub fn pick_node(client: &Client, g: &Site) -> Result<String, LaunchError> {
    let g = &*with_saved(g)?;
    let local_pvesh = matches!(
        (g.transport, &g.host),
        (Some(Transport::Pvesh), _) | (None, None)
    );
    if let Some(n) = &g.node {
        if local_pvesh {
            check_local_node(client, n)?;
        }
        return Ok(n.clone());
    }
    let nodes = client.nodes()?;
    if local_pvesh && nodes.len() > 1 {
        if let Some(local) = client.local_node()? {
            return Ok(local);
        }
    }
    match nodes.as_slice() {
        [one] => Ok(one.node.clone()),
        _ => Err(LaunchError::bad_input(
            "--node",
            format!(
                "this cluster has {} nodes: {}",
                nodes.len(),
                nodes
                    .iter()
                    .map(|n| n.node.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "choose the node with --node NAME (or LAUNCH_NODE)",
        )),
    }
}

fn check_local_node(client: &Client, node: &str) -> Result<(), LaunchError> {
    match client.local_node()? {
        Some(local) if local != node => Err(LaunchError::bad_input(
            format!("--node {node}"),
            format!("this is node `{local}`: containers on `{node}` can be entered only from there (pct works on the local node only)"),
            format!("run launch-tui on `{node}` itself, or drop --node to work on `{local}`"),
        )),
        _ => Ok(()),
    }
}
