//! SDN vnets (`pve-lab sdn vnet NAME --zone ZONE`): a vnet of a simple zone is a bridge on the
//! node, so the lab's bridge carries it. What PVE does with it and launch-tui depends on: the
//! network list shows it (type `vnet`, filtered by SDN.Audit/SDN.Use on its zone path), the
//! vnet index names its zone, and a container's NIC on it needs SDN.Use on
//! `/sdn/zones/<zone>/<vnet>[/<tag>]` instead of `/sdn/zones/localnetwork/<bridge>`
//! (pve-network's `get_local_vnets`, pve-guest-common's `check_vnet_access`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{ApiError, ApiResult, Call, Reply};
use crate::auth::{check_privs, Identity};

fn vnets_path(state: &Path) -> PathBuf {
    state.join("sdn").join("vnets.json")
}

/// vnet → zone.
pub fn vnets(state: &Path) -> BTreeMap<String, String> {
    std::fs::read(vnets_path(state))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Adds (or moves) a vnet. Names follow PVE's: up to 8 letters and digits, starting with a
/// letter; zones the same.
pub fn add_vnet(state: &Path, vnet: &str, zone: &str) -> anyhow::Result<()> {
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 8
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric())
    };
    anyhow::ensure!(
        id_ok(vnet) && id_ok(zone),
        "vnet {vnet:?} or zone {zone:?} is not a valid SDN id\nhelp: up to 8 letters and digits, starting with a letter"
    );
    let mut v = vnets(state);
    v.insert(vnet.to_string(), zone.to_string());
    crate::fsutil::write_file_atomic(&vnets_path(state), &serde_json::to_vec_pretty(&v)?, 0o644)
}

/// The ACL path PVE checks for a NIC on `bridge` (with its VLAN tag).
pub fn bridge_acl_path(state: &Path, bridge: &str, tag: Option<&str>) -> String {
    let zone = vnets(state)
        .get(bridge)
        .cloned()
        .unwrap_or_else(|| "localnetwork".into());
    let mut p = format!("/sdn/zones/{zone}/{bridge}");
    if let Some(t) = tag {
        p.push('/');
        p.push_str(t);
    }
    p
}

fn may_see(who: &Identity, state: &Path, vnet: &str, privs: &[&str]) -> bool {
    let path = bridge_acl_path(state, vnet, None);
    privs
        .iter()
        .any(|p| check_privs(who, &path, &[p], false).is_ok())
}

/// The rows `/nodes/{node}/network?type=any_bridge|vnet` adds: the vnets the caller may see.
pub fn network_rows(call: &Call, state: &Path) -> Vec<Value> {
    let Ok(who) = call.who() else {
        return Vec::new();
    };
    vnets(state)
        .keys()
        .filter(|v| may_see(who, state, v, &["SDN.Audit", "SDN.Use"]))
        .map(|v| json!({"iface": v, "type": "vnet", "active": "1", "ipam": 0, "vlanaware": 0}))
        .collect()
}

/// `GET /cluster/sdn/vnets`: filtered by SDN.Audit or SDN.Allocate on each vnet's path.
pub fn list(call: &Call, state: &Path) -> ApiResult {
    let who = call.who()?;
    let rows: Vec<Value> = vnets(state)
        .into_iter()
        .filter(|(v, _)| may_see(who, state, v, &["SDN.Audit", "SDN.Allocate"]))
        .map(|(v, z)| json!({"vnet": v, "zone": z, "type": "vnet", "digest": "0"}))
        .collect();
    Ok(Reply::data(Value::Array(rows)))
}

/// `GET /cluster/sdn/vnets/{vnet}`.
pub fn index(call: &Call, state: &Path) -> ApiResult {
    let who = call.who()?;
    let vnet = call.get("vnet").unwrap_or("");
    let all = vnets(state);
    let Some(zone) = all.get(vnet) else {
        return Err(ApiError::server(format!(
            "sdn vnet '{vnet}' does not exist"
        )));
    };
    if !may_see(who, state, vnet, &["SDN.Audit", "SDN.Allocate"]) {
        check_privs(
            who,
            &bridge_acl_path(state, vnet, None),
            &["SDN.Audit"],
            false,
        )?;
    }
    Ok(Reply::data(
        json!({"vnet": vnet, "zone": zone, "type": "vnet", "digest": "0"}),
    ))
}
