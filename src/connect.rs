//! Turns the global options into a Proxmox VE client: HTTPS when `--host` is given (token from
//! a 0600 file or `LAUNCH_PVE_TOKEN`, or a ticket login from `LAUNCH_PVE_USER` and
//! `LAUNCH_PVE_PASSWORD`), else the local `pvesh` as root on the node, like the helper scripts.

use std::path::{Path, PathBuf};

use crate::cli::{Global, TransportKind};
use crate::error::LaunchError;
use crate::pve::{
    ApiToken, Auth, Client, Fingerprint, HttpsTransport, PveshTransport, Secret, TlsMode,
    TOKEN_ENV_VAR,
};

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

pub fn connect(g: &Global) -> Result<Connection, LaunchError> {
    let kind = match (g.transport, &g.host) {
        (Some(k), _) => k,
        (None, Some(_)) => TransportKind::Https,
        (None, None) => TransportKind::Pvesh,
    };
    match kind {
        TransportKind::Pvesh => {
            let Some(pvesh) = find_on_path("pvesh") else {
                return Err(LaunchError::bad_input(
                    "Proxmox VE",
                    "this machine is not a Proxmox VE node (no `pvesh` on PATH) and no --host was given",
                    "run launch-tui as root on the Proxmox VE host, or point it at the API: --host https://NODE:8006 --token-file FILE --fingerprint AB:CD:...",
                ));
            };
            Ok(Connection {
                description: format!("local pvesh ({})", pvesh.display()),
                client: Client::new(Box::new(PveshTransport::new().with_program(pvesh))),
                warning: None,
            })
        }
        TransportKind::Https => {
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

fn auth(token_file: Option<&Path>) -> Result<Auth, LaunchError> {
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

fn tls_mode(g: &Global) -> Result<TlsMode, LaunchError> {
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
pub fn pick_node(client: &Client, g: &Global) -> Result<String, LaunchError> {
    let local_pvesh = matches!(
        (g.transport, &g.host),
        (Some(TransportKind::Pvesh), _) | (None, None)
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
