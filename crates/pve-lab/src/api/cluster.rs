//! A second, config-only cluster node (`pve-lab node add NAME`): it appears in the cluster's
//! status, node list and resources, holds the configs of containers migrated to it, and runs
//! none of them. This is what launch-tui meets on a real cluster: `--node` naming another node,
//! and a container that an admin migrated away (`pct` reaches only containers on its own node).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::{lxc, ApiError, ApiResult, Call, Lab, Reply};
use crate::auth::check_privs;
use crate::model::{self, CtConfig, NODE};

/// The peer node's name, if the lab has one: a directory under `STATE/nodes/`.
pub fn peer(state: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(state.join("nodes"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Where the peer keeps its containers' configs (`/etc/pve/nodes/NAME/lxc` on PVE).
pub fn peer_conf_dir(state: &Path, peer: &str) -> PathBuf {
    state.join("nodes").join(peer).join("lxc")
}

/// Adds the peer node (idempotent). Node names follow PVE's rule for hostnames.
pub fn add_peer(state: &Path, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name != NODE
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-');
    anyhow::ensure!(
        ok,
        "node name {name:?} is not valid\nhelp: a hostname other than '{NODE}', e.g. pve2"
    );
    if let Some(other) = peer(state).filter(|p| p != name) {
        anyhow::bail!("the lab already has the peer node '{other}'; it models one peer");
    }
    std::fs::create_dir_all(peer_conf_dir(state, name))?;
    Ok(())
}

pub fn peer_vmids(state: &Path) -> Vec<u32> {
    let Some(p) = peer(state) else {
        return Vec::new();
    };
    let mut ids: Vec<u32> = std::fs::read_dir(peer_conf_dir(state, &p))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".conf")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

fn peer_conf(state: &Path, peer: &str, vmid: u32) -> Result<CtConfig, ApiError> {
    let path = peer_conf_dir(state, peer).join(format!("{vmid}.conf"));
    let text = std::fs::read_to_string(&path).map_err(|_| {
        ApiError::server(format!(
            "Configuration file 'nodes/{peer}/lxc/{vmid}.conf' does not exist"
        ))
    })?;
    CtConfig::parse(&text).map_err(|e| ApiError::server(format!("{e:#}")))
}

/// A container on the peer: never running there.
fn peer_row(lab: &Lab, peer: &str, vmid: u32) -> Result<Value, ApiError> {
    let cfg = peer_conf(&lab.state, peer, vmid)?;
    let cur = &cfg.current;
    let mib = |k: &str, d: u64| cur.get(k).and_then(|m| m.parse().ok()).unwrap_or(d) * 1024 * 1024;
    Ok(json!({
        "vmid": vmid, "type": "lxc", "status": "stopped",
        "name": cur.get("hostname").map(str::to_string).unwrap_or_else(|| format!("CT{vmid}")),
        "cpus": cur.get("cores").and_then(|c| c.parse::<u64>().ok()).unwrap_or(1),
        "cpu": 0, "mem": 0, "maxmem": mib("memory", 512), "swap": 0, "maxswap": mib("swap", 512),
        "disk": 0, "maxdisk": 0, "uptime": 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
    }))
}

/// The rows the peer adds to `/cluster/status`, `/nodes` and `/cluster/resources`.
pub fn status_rows(state: &Path) -> Vec<Value> {
    let Some(p) = peer(state) else {
        return Vec::new();
    };
    vec![
        json!({"type": "cluster", "id": "cluster", "name": "pve-lab", "nodes": 2, "quorate": 1, "version": 2}),
        json!({"type": "node", "name": p, "id": format!("node/{p}"), "nodeid": 2, "online": 1, "local": 0, "ip": "127.0.0.2", "level": ""}),
    ]
}

pub fn node_row(state: &Path) -> Option<Value> {
    let p = peer(state)?;
    Some(json!({
        "id": format!("node/{p}"), "type": "node", "node": p, "status": "online", "cpu": 0,
        "maxcpu": 1, "mem": 0, "maxmem": 1u64 << 30, "disk": 0, "maxdisk": 1u64 << 30,
        "uptime": 1, "level": "",
    }))
}

pub fn resource_rows(lab: &Lab, call: &Call) -> Vec<Value> {
    let Some(p) = peer(&lab.state) else {
        return Vec::new();
    };
    let Ok(who) = call.who() else {
        return Vec::new();
    };
    peer_vmids(&lab.state)
        .into_iter()
        .filter(|v| check_privs(who, &format!("/vms/{v}"), &["VM.Audit"], false).is_ok())
        .filter_map(|v| {
            let mut row = peer_row(lab, &p, v).ok()?;
            row["id"] = json!(format!("lxc/{v}"));
            row["node"] = json!(p);
            row["template"] = json!(0);
            row["maxcpu"] = row["cpus"].clone();
            Some(row)
        })
        .collect()
}

/// A call whose `{node}` is the peer. PVE would proxy it there; the lab answers what a node
/// that holds only configs can: its container list and status, configs, and migration back.
pub fn dispatch_peer(lab: &Arc<Lab>, call: &Call, peer: &str) -> ApiResult {
    let vmid = || call.vmid();
    match (call.method.as_str(), call.template.as_str()) {
        ("GET", "/nodes/{node}/lxc") => {
            let who = call.who()?;
            let rows = peer_vmids(&lab.state)
                .into_iter()
                .filter(|v| check_privs(who, &format!("/vms/{v}"), &["VM.Audit"], false).is_ok())
                .filter_map(|v| peer_row(lab, peer, v).ok())
                .collect();
            Ok(Reply::data(Value::Array(rows)))
        }
        ("GET", "/nodes/{node}/lxc/{vmid}/status/current") => {
            Ok(Reply::data(peer_row(lab, peer, vmid()?)?))
        }
        ("GET", "/nodes/{node}/lxc/{vmid}/config") => {
            let cfg = peer_conf(&lab.state, peer, vmid()?)?;
            Ok(Reply::data(json!(cfg.current.opts)))
        }
        ("POST", "/nodes/{node}/lxc/{vmid}/migrate") => migrate(lab, call, peer),
        (m, t) => Err(ApiError::Status {
            code: 501,
            message: format!(
                "Method '{m} {t}' not implemented by pve-lab on node '{peer}': it holds configs only (no container runs there)"
            ),
        }),
    }
}

/// `POST /nodes/{node}/lxc/{vmid}/migrate` (offline or restart mode), between the lab's node
/// and its peer: the config moves; the disk image stays where the runtime keeps it. A running
/// container needs `restart` (pve-container's API2/LXC.pm `migrate_vm`); the peer runs none,
/// so one migrated there stays stopped, and one migrated back is started when `restart` is set
/// and it ran before it left.
pub fn migrate(lab: &Arc<Lab>, call: &Call, from: &str) -> ApiResult {
    let vmid = call.vmid()?;
    let target = call.get("target").unwrap_or("").to_string();
    if target == from {
        return Err(ApiError::param("target", "target is local node."));
    }
    let Some(p) = peer(&lab.state) else {
        return Err(ApiError::server(format!("no such cluster node '{target}'")));
    };
    let (to_peer, src, dst) = if from == NODE && target == p {
        (
            true,
            model::conf_dir(&lab.state),
            peer_conf_dir(&lab.state, &p),
        )
    } else if from == p && target == NODE {
        (
            false,
            peer_conf_dir(&lab.state, &p),
            model::conf_dir(&lab.state),
        )
    } else {
        return Err(ApiError::server(format!("no such cluster node '{target}'")));
    };
    let src_file = src.join(format!("{vmid}.conf"));
    if !src_file.exists() {
        return Err(ApiError::server(format!(
            "Configuration file 'nodes/{from}/lxc/{vmid}.conf' does not exist"
        )));
    }
    let restart = call.flag("restart");
    if call.flag("online") {
        return Err(ApiError::server(
            "lxc live migration is currently not implemented",
        ));
    }
    let running = to_peer && lab.rt.status(vmid).map(|s| s.running).unwrap_or(false);
    if running && !restart {
        return Err(ApiError::server(
            "can't migrate running container without --online or --restart",
        ));
    }
    let lab2 = Arc::clone(lab);
    let target2 = target.clone();
    let upid = lab.tasks.spawn(
        "vzmigrate",
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| {
            if running {
                ctx.log(&format!("shutdown CT {vmid}"));
                lab2.rt
                    .shutdown(vmid, std::time::Duration::from_secs(180))?;
            }
            // Whether it ran when it left: restart mode starts it again on the way back.
            let mark = |dir: &Path| dir.join(format!("{vmid}.was-running"));
            let was_running = mark(&src).exists();
            let _ = std::fs::remove_file(mark(&src));
            if running {
                std::fs::write(mark(&dst), b"")?;
            }
            let text = std::fs::read(&src_file)?;
            let dst_file = dst.join(format!("{vmid}.conf"));
            crate::fsutil::write_file_atomic(&dst_file, &text, 0o640)?;
            std::fs::remove_file(&src_file)?;
            ctx.log(&format!(
                "migration of CT {vmid} to node '{target2}' finished"
            ));
            if !to_peer && restart && was_running {
                ctx.log(&format!("start CT {vmid} on '{target2}'"));
                lxc::start_ct(&lab2, vmid, ctx)?;
            }
            Ok(())
        },
    )?;
    Ok(Reply::data(json!(upid)))
}
