//! `launch-tui connect`: looks at the node's certificate, pins it (asking, or as given with
//! `--fingerprint`), proves the token works, and saves the connection so that every later
//! command needs no connection flags.

use std::io::IsTerminal;

use serde_json::json;

use super::Outcome;
use crate::cli::{ConnectArgs, Global};
use crate::connect::{auth, connection_path, tls_mode, SavedConnection};
use crate::error::{LaunchError, Result};
use crate::pve::{Auth, Client, Fingerprint, HttpsTransport, PveError, TlsMode};

pub fn run(global: &Global, args: &ConnectArgs) -> Result<Outcome> {
    let site = global.site();
    let g = &site;
    if args.forget {
        let path = connection_path(&g.config);
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(Outcome::new(
                format!("removed the saved connection {}", path.display()),
                json!({ "removed": path }),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Outcome::new(
                "no connection was saved",
                json!({ "removed": null }),
            )),
            Err(e) => Err(LaunchError::Failed(anyhow::anyhow!(
                "cannot remove {}: {e}",
                path.display()
            ))),
        };
    }
    let Some(host) = &g.host else {
        return Err(LaunchError::bad_input(
            "connect",
            "no --host given",
            "launch-tui connect --host https://NODE:8006 --token-file FILE [--fingerprint AB:CD:...]",
        ));
    };
    let Some(token_file) = &g.token_file else {
        return Err(LaunchError::bad_input(
            "connect",
            "no --token-file given: the saved connection names the token's file, never the secret",
            "create an API token on the node (`pveum user token add root@pam launch --privsep 0`), put USER@REALM!TOKENID=SECRET in a file with mode 0600, and pass --token-file FILE",
        ));
    };
    if g.insecure {
        return Err(LaunchError::bad_input(
            "--insecure",
            "a saved connection always checks the node's certificate",
            "leave out --insecure: connect shows the certificate's fingerprint and pins it",
        ));
    }
    let token_file = std::path::absolute(token_file).map_err(|e| {
        LaunchError::bad_input(
            token_file.display().to_string(),
            format!("cannot resolve the path: {e}"),
            "give the token file's full path",
        )
    })?;
    // Reads the token now: a missing file, a wrong mode or a malformed token fail before
    // anything is sent.
    let token_auth = || auth(Some(&token_file));
    token_auth()?;

    let (fingerprint, ca_file) = match tls_mode(g)? {
        TlsMode::CaFile(ca) => (None, Some(std::path::absolute(&ca).unwrap_or(ca))),
        TlsMode::Pinned(given) => {
            let seen = server_fingerprint(host, token_auth()?)?;
            if seen != given {
                return Err(LaunchError::bad_input(
                    format!("--fingerprint {given}"),
                    format!("the node's certificate has another fingerprint: {seen}"),
                    "check the fingerprint on the node (`pvenode cert info`); if they differ, something intercepts the connection",
                ));
            }
            (Some(given), None)
        }
        _ => {
            let seen = server_fingerprint(host, token_auth()?)?;
            (Some(confirm_fingerprint(global.yes, host, seen)?), None)
        }
    };

    let tls = match (&fingerprint, &ca_file) {
        (Some(fp), _) => TlsMode::Pinned(*fp),
        (None, Some(ca)) => TlsMode::CaFile(ca.clone()),
        (None, None) => unreachable!("one way to check the certificate is chosen above"),
    };
    let client = Client::new(Box::new(HttpsTransport::new(host, token_auth()?, tls)?));
    let version = client.version()?;
    let nodes = client.nodes()?;
    let names: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    if let Some(n) = &g.node {
        if !names.contains(&n.as_str()) {
            return Err(LaunchError::bad_input(
                format!("--node {n}"),
                format!(
                    "this cluster has no such node (it has {})",
                    names.join(", ")
                ),
                "give one of the cluster's nodes, or leave out --node",
            ));
        }
    }
    let saved = SavedConnection {
        host: host.clone(),
        fingerprint: fingerprint.map(|f| f.to_string()),
        ca_file,
        token_file,
        node: g.node.clone(),
    };
    let path = saved.save(&g.config)?;
    Ok(Outcome::new(
        format!(
            "connected to Proxmox VE {} at {host} (nodes: {}) and saved it in {}\nevery command now uses it without connection flags, e.g. `launch-tui doctor`",
            version.version,
            names.join(", "),
            path.display()
        ),
        json!({
            "file": path,
            "host": saved.host,
            "fingerprint": saved.fingerprint,
            "ca_file": saved.ca_file,
            "token_file": saved.token_file,
            "node": saved.node,
            "pve_version": version.version,
            "nodes": names,
        }),
    ))
}

/// The SHA-256 fingerprint of the certificate the node presents: a first connection pinned to
/// nothing fails the handshake and tells what it saw (no request is sent).
fn server_fingerprint(host: &str, auth: Auth) -> Result<Fingerprint> {
    let probe = HttpsTransport::new(host, auth, TlsMode::Pinned(Fingerprint([0; 32])))?;
    match Client::new(Box::new(probe)).version() {
        Err(PveError::FingerprintMismatch { actual, .. }) => Ok(actual),
        Err(e) => Err(e.into()),
        Ok(_) => Err(LaunchError::Failed(anyhow::anyhow!(
            "{host} accepted a connection pinned to no certificate; refusing to trust it"
        ))),
    }
}

fn confirm_fingerprint(yes: bool, host: &str, seen: Fingerprint) -> Result<Fingerprint> {
    if yes {
        eprintln!(
            "warning: pinning the certificate {host} presents now without checking it (--yes): {seen}"
        );
        return Ok(seen);
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(LaunchError::bad_input(
            format!("the certificate of {host}"),
            format!("its SHA-256 fingerprint is {seen}; no --fingerprint was given and there is no terminal to confirm it"),
            format!("compare it with `pvenode cert info` on the node, then run again with --fingerprint {seen}"),
        ));
    }
    eprintln!("{host} presents a certificate with the SHA-256 fingerprint\n  {seen}\nCompare it with `pvenode cert info` on the node.");
    let ok = inquire::Confirm::new("Pin this certificate?")
        .with_default(false)
        .prompt()
        .map_err(|e| LaunchError::Failed(anyhow::anyhow!("no answer: {e}")))?;
    if !ok {
        return Err(LaunchError::bad_input(
            format!("the certificate of {host}"),
            "not pinned: nothing was saved",
            "check the fingerprint on the node; if the node uses a CA, pass --ca-file instead",
        ));
    }
    Ok(seen)
}
