//! `launch-tui doctor`: can Launch work with this Proxmox VE? Connects the way every other
//! command does and checks what an install needs, printing what to fix. It changes nothing.
//! Besides problems (an install would fail) it names risks found on real hosts: an old `pct`,
//! another node, a token's privileges per path, a loopback resolver, a bridge without address,
//! a cluster, ZFS's rollback rule, DHCP leases.

use serde_json::json;

use super::Outcome;
use crate::connect::connect;
use crate::error::{LaunchError, Result};
use crate::pve::ContentType;
use crate::site::Site;

pub fn run(g: &Site) -> Result<Outcome> {
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

    let mut risks = Vec::new();
    let local_pvesh = conn.description.starts_with("local pvesh");
    if version.version.starts_with("8.0.") {
        risks.push(format!(
            "Proxmox VE {}: its pct (pve-container before 5.0.9) has no `exec --keep-env`; Launch then clears the container command's environment with `env -i`",
            version.version
        ));
    }
    if local_pvesh {
        match c.local_node()? {
            Some(local) => lines.push(format!("local node: {local}")),
            None => risks.push("the cluster status names no local node".into()),
        }
    }
    let nodes = c.nodes()?;
    if nodes.len() > 1 {
        risks.push(format!(
            "a cluster of {} nodes ({}): Launch manages the containers on {node}, where it runs; one migrated away is reported by `status` and is managed again once migrated back",
            nodes.len(),
            nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    for s in rootdir
        .iter()
        .filter(|s| s.kind.as_deref() == Some("zfspool"))
    {
        risks.push(format!(
            "storage {} is ZFS: it rolls a container back only to its newest snapshot, so `rollback --snapshot` needs Launch's pre-update snapshot to be the newest (Launch says which ones are in the way)",
            s.storage
        ));
    }
    risks.push(
        "containers get their address by DHCP unless you give `ip:`: Launch follows a changed lease (status records it), but bookmarks and DNS do not; a reservation or a static IP avoids it".into(),
    );
    let storage = rootdir.first().map(|s| s.storage.clone());
    let template_storage = tmpl.first().map(|s| s.storage.clone());
    if let (Some(storage), Some(template_storage)) = (&storage, &template_storage) {
        let need = crate::install::privileges_for(&crate::install::Placement {
            vmid: next,
            storage,
            template_storage,
            bridge: "vmbr0",
            zone: "localnetwork",
            vlan: None,
            node: &node,
        });
        let missing = crate::install::missing_privileges(c, &need)?;
        let mut paths: Vec<&str> = need.iter().map(|(p, _)| p.as_str()).collect();
        paths.dedup();
        for path in paths {
            let lacking: Vec<&str> = missing
                .iter()
                .filter(|(p, _)| p == path)
                .map(|(_, w)| *w)
                .collect();
            if lacking.is_empty() {
                lines.push(format!("privileges on {path}: all an install needs"));
            } else {
                problems.push(format!(
                    "privileges on {path}: lacking {} (pveum acl modify {path} --tokens USER@REALM!TOKENID --roles ROLE)",
                    lacking.join(", ")
                ));
            }
        }
    }
    if local_pvesh {
        risks.extend(resolver_risks(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ));
    }
    let bridges = c.bridges(&node)?;
    match bridges.iter().find(|(b, _)| b == "vmbr0") {
        Some((b, Some(cidr))) => lines.push(format!("bridge {b}: this node is {cidr} on it")),
        Some((b, None)) => risks.push(format!(
            "this node has no IPv4 address on {b}: the install's final check (a request from this node to the container) cannot reach a container there"
        )),
        None => risks.push(format!(
            "no bridge vmbr0 on {node} (bridges: {}): give the install `bridge:`",
            bridges.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
    for r in &risks {
        lines.push(format!("risk: {r}"));
    }
    let ok = problems.is_empty();
    for p in &problems {
        lines.push(format!("problem: {p}"));
    }
    let data = json!({
        "transport": conn.description, "version": version.version, "node": node,
        "next_id": next, "problems": problems, "risks": risks, "ok": ok,
    });
    if ok {
        Ok(Outcome::new(lines.join("\n"), data))
    } else {
        Err(LaunchError::Failed(anyhow::anyhow!("{}", lines.join("\n"))))
    }
}

/// PVE copies the node's first three nameservers into a container that has no `dns` of its own
/// (pve-container's LXC/Setup/Base.pm): a loopback one (a local stub resolver) then answers
/// nothing inside the container.
fn resolver_risks(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|w| w.split_whitespace().next())
        .filter_map(|w| w.parse::<std::net::IpAddr>().ok())
        .take(3)
        .filter(|ip| ip.is_loopback())
        .map(|ip| format!("this node resolves through {ip}, a loopback address: containers without their own `dns` get it copied and cannot resolve names; set `dns: 1.1.1.1` (or your resolver) in the install answers"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::resolver_risks;

    #[test]
    fn loopback_resolvers_among_the_first_three_are_risks() {
        assert!(resolver_risks("nameserver 10.0.0.1\nnameserver 1.1.1.1\n").is_empty());
        let r = resolver_risks("search lan\nnameserver 127.0.0.53\noptions edns0\n");
        assert_eq!(r.len(), 1);
        assert!(
            r[0].contains("127.0.0.53") && r[0].contains("dns:"),
            "{r:?}"
        );
        // Only the first three count, as PVE copies only those.
        let r = resolver_risks(
            "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver ::1\n",
        );
        assert!(r.is_empty(), "{r:?}");
    }
}
