//! `launch-tui doctor`: can Launch work with this Proxmox VE? Connects the way every other
//! command does and checks what an install needs, printing what to fix. It changes nothing.

use serde_json::json;

use super::Outcome;
use crate::cli::Global;
use crate::connect::connect;
use crate::error::{LaunchError, Result};
use crate::pve::ContentType;

pub fn run(g: &Global) -> Result<Outcome> {
    let conn = connect(g)?;
    if let Some(w) = conn.warning {
        eprintln!("{w}");
    }
    let c = &conn.client;
    let version = c.version()?;
    let mut lines = vec![format!("connected: {}", conn.description)];
    let mut problems = Vec::new();
    match version.major() {
        Some(8) | Some(9) => lines.push(format!("Proxmox VE {}: supported", version.version)),
        Some(n) if n > 9 => lines.push(format!(
            "Proxmox VE {}: newer than Launch knows (8 and 9); it will try",
            version.version
        )),
        _ => problems.push(format!(
            "Proxmox VE {} is not supported: Launch needs 8.x or 9.x",
            version.version
        )),
    }
    let node = crate::connect::pick_node(c, g)?;
    lines.push(format!("node: {node}"));
    let status = c.node_status(&node)?;
    if let Some(m) = &status.memory {
        lines.push(format!(
            "memory: {} MiB free of {} MiB",
            m.free.unwrap_or(0) / 1024 / 1024,
            m.total.unwrap_or(0) / 1024 / 1024
        ));
    }
    let rootdir = c.storages(&node, &[ContentType::Rootdir])?;
    if rootdir.is_empty() {
        problems.push("no storage holds container root disks (content `rootdir`): add one in Datacenter → Storage".into());
    }
    for s in &rootdir {
        lines.push(format!(
            "storage {} ({}): {} GiB free",
            s.storage,
            s.kind.as_deref().unwrap_or("?"),
            s.avail.unwrap_or(0) / 1024 / 1024 / 1024
        ));
    }
    let tmpl = c.storages(&node, &[ContentType::Vztmpl])?;
    if tmpl.is_empty() {
        problems.push(
            "no storage holds container templates (content `vztmpl`): enable it on `local`".into(),
        );
    }
    let appliances = c.appliances(&node)?;
    let debian: Vec<&str> = appliances
        .iter()
        .map(|a| a.template.as_str())
        .filter(|t| t.starts_with("debian-12-standard") || t.starts_with("debian-13-standard"))
        .collect();
    if debian.is_empty() {
        problems.push(
            "the appliance index offers no Debian 12/13 template: run `pveam update` on the node"
                .into(),
        );
    } else {
        lines.push(format!("templates offered: {}", debian.join(", ")));
    }
    let next = c.next_id()?;
    lines.push(format!("next free CT ID: {next}"));
    let ok = problems.is_empty();
    for p in &problems {
        lines.push(format!("problem: {p}"));
    }
    let data = json!({
        "transport": conn.description, "version": version.version, "node": node,
        "next_id": next, "problems": problems, "ok": ok,
    });
    if ok {
        Ok(Outcome::new(lines.join("\n"), data))
    } else {
        Err(LaunchError::Failed(anyhow::anyhow!("{}", lines.join("\n"))))
    }
}
