//! Node, cluster, storage, appliance and task endpoints: the host's real figures, the two
//! storages, template download through the runtime, and the task list/status/log.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use super::{lxc, ApiError, ApiResult, Call, Lab, Reply};
use crate::auth::{check_privs, AuthError};
use crate::hostinfo;
use crate::model::{self, NODE, STORAGES};
use crate::tasks::{TaskStatus, Upid};

pub fn ticket(lab: &Lab, call: &Call) -> ApiResult {
    let username = call.get("username").unwrap_or("");
    let password = call.get("password").unwrap_or("");
    match lab.auth.login(username, call.get("realm"), password) {
        Ok(g) => Ok(Reply::data(json!({
            "username": g.username,
            "ticket": g.ticket,
            "CSRFPreventionToken": g.csrf,
            "cap": {},
        }))),
        Err(_) => {
            std::thread::sleep(lab.auth_fail_delay);
            Err(ApiError::Unauthorized(AuthError::Failed))
        }
    }
}

pub fn domains() -> ApiResult {
    Ok(Reply::data(json!([
        {"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
        {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"},
    ])))
}

/// `/access/permissions`: the caller's effective privileges (the lab's are not path-scoped).
/// `GET /access/permissions`: privilege → propagate flag (1/0) per path, a privilege being
/// granted when its key is present, as pve-access-control answers. With `path`, that path only;
/// without, every path PVE lists (top levels, ACL paths, pool members) that holds any.
pub fn permissions(call: &Call) -> ApiResult {
    let who = call.who()?;
    let flags = |path: &str| -> Value {
        let privs: serde_json::Map<String, Value> = who
            .privs
            .at(path)
            .into_iter()
            .map(|(p, propagate)| (p, json!(u8::from(propagate))))
            .collect();
        Value::Object(privs)
    };
    if let Some(path) = call.get("path") {
        return Ok(Reply::data(json!({ path: flags(path) })));
    }
    let paths = match &who.privs {
        crate::auth::Privs::Acl(g) => g.listed_paths(),
        crate::auth::Privs::All => crate::auth::Grants::default().listed_paths(),
    };
    let all: serde_json::Map<String, Value> = paths
        .into_iter()
        .map(|p| {
            let f = flags(&p);
            (p, f)
        })
        .filter(|(_, f)| f.as_object().is_some_and(|o| !o.is_empty()))
        .collect();
    Ok(Reply::data(Value::Object(all)))
}

pub fn version(lab: &Lab) -> ApiResult {
    Ok(Reply::data(json!({
        "version": lab.pve.version(),
        "release": lab.pve.release(),
        "repoid": lab.pve.repoid(),
    })))
}

pub fn nextid(lab: &Lab, call: &Call) -> ApiResult {
    // VMIDs are unique across the cluster.
    let mut used = model::list_vmids(&lab.state);
    used.extend(super::cluster::peer_vmids(&lab.state));
    if let Some(v) = call.get("vmid") {
        let id: u32 = v.parse().map_err(|_| {
            ApiError::param("vmid", format!("type check ('integer') failed - got '{v}'"))
        })?;
        if used.contains(&id) {
            return Err(ApiError::param("vmid", format!("VM {id} already exists")));
        }
        return Ok(Reply::data(json!(id.to_string())));
    }
    let next = (100u32..)
        .find(|id| !used.contains(id))
        .ok_or_else(|| ApiError::server("unable to get any free VMID in range [100, 1000000]"))?;
    Ok(Reply::data(json!(next.to_string())))
}

fn node_row(lab: &Lab) -> Value {
    let mem = hostinfo::memory();
    let cpu = hostinfo::cpuinfo();
    let (total, used, _) = model::fs_usage(&lab.state);
    json!({
        "id": format!("node/{NODE}"), "type": "node", "node": NODE, "status": "online",
        "cpu": hostinfo::cpu_usage(), "maxcpu": cpu.cpus, "mem": mem.used, "maxmem": mem.total,
        "disk": used, "maxdisk": total, "uptime": hostinfo::uptime_s(), "level": "",
        "ssl_fingerprint": lab.fingerprint,
    })
}

pub fn nodes(lab: &Lab) -> ApiResult {
    let mut rows = vec![node_row(lab)];
    rows.extend(super::cluster::node_row(&lab.state));
    Ok(Reply::data(Value::Array(rows)))
}

pub fn node_index() -> ApiResult {
    let dirs = [
        "aplinfo", "lxc", "network", "status", "storage", "tasks", "version", "vzdump",
    ];
    Ok(Reply::data(Value::Array(
        dirs.iter().map(|d| json!({ "name": d })).collect(),
    )))
}

pub fn cluster_status(lab: &Lab) -> ApiResult {
    let mut rows = vec![json!({
        // A standalone node reports nodeid 0; cluster members count from 1.
        "type": "node", "name": NODE, "id": format!("node/{NODE}"),
        "nodeid": u8::from(super::cluster::peer(&lab.state).is_some()),
        "online": 1, "local": 1, "ip": "127.0.0.1", "level": "",
    })];
    rows.extend(super::cluster::status_rows(&lab.state));
    Ok(Reply::data(Value::Array(rows)))
}

/// The file whose text replaces the host's CPU flags in `cpuinfo.flags`.
fn cpu_flags_file(state: &std::path::Path) -> std::path::PathBuf {
    state.join("cpu-flags")
}

/// Makes the node report `flags` (None: the host's own).
pub fn set_cpu_flags(state: &std::path::Path, flags: Option<&str>) -> anyhow::Result<()> {
    let path = cpu_flags_file(state);
    match flags {
        Some(f) => {
            anyhow::ensure!(
                f.split_whitespace()
                    .all(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
                "CPU flags are words of letters, digits and _ (as in /proc/cpuinfo)"
            );
            std::fs::write(&path, f.trim())?;
        }
        None => {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}

pub fn node_status(lab: &Lab) -> ApiResult {
    let mem = hostinfo::memory();
    let mut cpu = hostinfo::cpuinfo();
    if let Ok(f) = std::fs::read_to_string(cpu_flags_file(&lab.state)) {
        cpu.flags = f;
    }
    let un = hostinfo::uname();
    let (total, used, avail) = model::fs_usage(&lab.state);
    Ok(Reply::data(json!({
        "uptime": hostinfo::uptime_s(),
        "cpu": hostinfo::cpu_usage(),
        "wait": 0,
        "idle": 0,
        "loadavg": hostinfo::loadavg(),
        "memory": {"total": mem.total, "used": mem.used, "free": mem.free},
        "swap": {"total": mem.swap_total, "used": mem.swap_used,
                 "free": mem.swap_total.saturating_sub(mem.swap_used)},
        "rootfs": {"total": total, "used": used, "free": total.saturating_sub(used), "avail": avail},
        "ksm": {"shared": 0},
        "cpuinfo": {
            "cpus": cpu.cpus, "cores": cpu.cores, "sockets": cpu.sockets, "model": cpu.model,
            "mhz": cpu.mhz, "hvm": if cpu.flags.contains("vmx") || cpu.flags.contains("svm") { "1" } else { "0" },
            "flags": cpu.flags, "user_hz": 100,
        },
        "pveversion": format!("pve-manager/{}/{}", lab.pve.version(), lab.pve.repoid()),
        "kversion": format!("{} {} {}", un.sysname, un.release, un.version),
        "current-kernel": {"sysname": un.sysname, "release": un.release, "version": un.version, "machine": un.machine},
        "boot-info": {"mode": hostinfo::boot_mode()},
    })))
}

/// The lab's one bridge, shown under the name PVE configs use (`vmbr0`), and the SDN vnets
/// (for `any_bridge` and `vnet`, as pve-manager's API2/Network.pm lists them). The bridge is
/// listed only to callers with SDN.Audit or SDN.Use on it.
pub fn network(lab: &Lab, call: &Call) -> ApiResult {
    let ty = call.get("type");
    let vnets = if ty.is_none_or(|t| t == "any_bridge" || t == "vnet") {
        super::sdn::network_rows(call, &lab.state)
    } else {
        Vec::new()
    };
    let bridge_wanted =
        ty.is_none_or(|t| t == "bridge" || t == "any_bridge" || t == "any_local_bridge");
    let who = call.who()?;
    let bridge_visible = who.is_root_pam()
        || ["SDN.Audit", "SDN.Use"]
            .iter()
            .any(|p| check_privs(who, "/sdn/zones/localnetwork/vmbr0", &[p], false).is_ok());
    if !(bridge_wanted && bridge_visible) {
        return Ok(Reply::data(Value::Array(vnets)));
    }
    let gw = lab.net.gateway();
    let mut rows = vec![json!({
        "iface": "vmbr0", "type": "bridge", "active": 1, "autostart": 1, "method": "static",
        "families": ["inet"], "address": gw.to_string(),
        "cidr": format!("{gw}/{}", lab.net.prefix_len),
        "netmask": lab.net.prefix_len.to_string(), "bridge_ports": "", "bridge_stp": "off",
        "bridge_fd": "0", "priority": 1,
        "comments": format!("pve-lab: host bridge {}", lab.net.bridge()),
    })];
    rows.extend(vnets);
    Ok(Reply::data(Value::Array(rows)))
}

fn storage_path(lab: &Lab, id: &str) -> std::path::PathBuf {
    match id {
        "local" => model::local_dir(&lab.state),
        _ => lab.state.join("images"),
    }
}

fn storage_row(lab: &Lab, s: &model::Storage) -> Value {
    let dir = storage_path(lab, s.id);
    let _ = std::fs::create_dir_all(&dir);
    let (total, used, avail) = model::fs_usage(&dir);
    let frac = if total > 0 {
        used as f64 / total as f64
    } else {
        0.0
    };
    json!({
        "storage": s.id, "type": s.kind, "content": s.content_list(), "active": 1, "enabled": 1,
        "shared": 0, "total": total, "used": used, "avail": avail, "used_fraction": frac,
    })
}

fn lookup_storage(id: &str) -> Result<&'static model::Storage, ApiError> {
    model::storage(id).ok_or_else(|| ApiError::server(format!("storage '{id}' does not exist")))
}

fn may_see_storage(call: &Call, id: &str) -> bool {
    call.who.as_ref().is_some_and(|w| {
        check_privs(
            w,
            &format!("/storage/{id}"),
            &["Datastore.Audit", "Datastore.AllocateSpace"],
            true,
        )
        .is_ok()
    })
}

pub fn storage_config(lab: &Lab) -> ApiResult {
    Ok(Reply::data(Value::Array(
        STORAGES
            .iter()
            .map(|s| {
                let mut v = json!({"storage": s.id, "type": s.kind, "content": s.content_list(), "digest": "0"});
                if s.id == "local" {
                    v["path"] = json!(storage_path(lab, s.id).display().to_string());
                } else {
                    v["thinpool"] = json!("data");
                    v["vgname"] = json!("pve");
                }
                v
            })
            .collect(),
    )))
}

pub fn storage_list(lab: &Lab, call: &Call) -> ApiResult {
    let content: Vec<&str> = call
        .get("content")
        .map(|c| c.split([',', ';', ' ']).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let rows = STORAGES
        .iter()
        .filter(|s| call.get("storage").is_none_or(|id| id == s.id))
        .filter(|s| content.iter().all(|c| s.supports(c)))
        .filter(|s| may_see_storage(call, s.id))
        .map(|s| storage_row(lab, s))
        .collect();
    Ok(Reply::data(Value::Array(rows)))
}

pub fn storage_status(lab: &Lab, call: &Call) -> ApiResult {
    let s = lookup_storage(call.get("storage").unwrap_or(""))?;
    Ok(Reply::data(storage_row(lab, s)))
}

fn ctime(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime().max(0) as u64
}

pub fn storage_content(lab: &Lab, call: &Call) -> ApiResult {
    let s = lookup_storage(call.get("storage").unwrap_or(""))?;
    let want = call.get("content");
    let vmid_filter: Option<u32> = call.get("vmid").and_then(|v| v.parse().ok());
    let mut rows = Vec::new();
    if s.id == "local" {
        if want.is_none_or(|w| w == "vztmpl") {
            for (name, meta) in list_files(&model::template_dir(&lab.state)) {
                if name.ends_with(".tar.zst")
                    || name.ends_with(".tar.gz")
                    || name.ends_with(".tar.xz")
                {
                    rows.push(json!({
                        "volid": format!("local:vztmpl/{name}"), "content": "vztmpl",
                        "format": if name.ends_with(".zst") { "tzst" } else { "tgz" },
                        "size": meta.len(), "ctime": ctime(&meta),
                    }));
                }
            }
        }
        if want.is_none_or(|w| w == "backup") {
            for (name, meta) in list_files(&model::dump_dir(&lab.state)) {
                let Some(vmid) = backup_vmid(&name) else {
                    continue;
                };
                if vmid_filter.is_some_and(|f| f != vmid) {
                    continue;
                }
                let path = model::dump_dir(&lab.state).join(&name);
                let mut row = json!({
                    "volid": format!("local:backup/{name}"), "content": "backup",
                    "format": "tar.zst", "size": meta.len(), "ctime": ctime(&meta),
                    "vmid": vmid, "subtype": "lxc",
                });
                if let Ok(notes) = std::fs::read_to_string(path.with_extension("zst.notes")) {
                    row["notes"] = json!(notes.trim_end());
                }
                if path.with_extension("zst.protected").exists() {
                    row["protected"] = json!(1);
                }
                rows.push(row);
            }
        }
    } else if want.is_none_or(|w| w == "rootdir" || w == "images") {
        for vmid in model::list_vmids(&lab.state) {
            if vmid_filter.is_some_and(|f| f != vmid) {
                continue;
            }
            // Each CT's disk is listed on the storage its rootfs names.
            let volid = model::load_conf(&lab.state, vmid)
                .ok()
                .flatten()
                .and_then(|c| c.current.get("rootfs").map(str::to_string))
                .and_then(|r| r.split(',').next().map(str::to_string))
                .unwrap_or_else(|| model::rootfs_volume(vmid));
            if !volid.starts_with(&format!("{}:", s.id)) {
                continue;
            }
            let img = model::image_path(&lab.state, vmid);
            if let Ok(meta) = std::fs::metadata(&img) {
                rows.push(json!({
                    "volid": volid, "content": "rootdir", "format": if s.kind == "zfspool" { "subvol" } else { "raw" },
                    "size": meta.len(), "ctime": ctime(&meta), "vmid": vmid,
                }));
            }
        }
    }
    Ok(Reply::data(Value::Array(rows)))
}

/// `vzdump-lxc-<vmid>-YYYY_MM_DD-HH_MM_SS.tar.zst` -> vmid.
pub fn backup_vmid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("vzdump-lxc-")?;
    if !name.ends_with(".tar.zst") {
        return None;
    }
    rest.split('-').next()?.parse().ok()
}

fn list_files(dir: &std::path::Path) -> Vec<(String, std::fs::Metadata)> {
    let mut out: Vec<(String, std::fs::Metadata)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    let meta = std::fs::metadata(e.path()).ok()?;
                    meta.is_file().then_some((name, meta))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub fn storage_delete(lab: &Lab, call: &Call) -> ApiResult {
    let storage = call.get("storage").unwrap_or("");
    lookup_storage(storage)?;
    let volume = call.get("volume").unwrap_or("");
    // The path parameter may be the full volid or just the part after `storage:`.
    let name = volume
        .strip_prefix(&format!("{storage}:"))
        .unwrap_or(volume)
        .to_string();
    let path = match name.split_once('/') {
        Some(("backup", file)) if storage == "local" && backup_vmid(file).is_some() => {
            model::dump_dir(&lab.state).join(file)
        }
        Some(("vztmpl", file)) if storage == "local" && !file.contains('/') => {
            model::template_dir(&lab.state).join(file)
        }
        _ => {
            return Err(ApiError::server(format!(
                "unable to parse directory volume name '{name}'"
            )))
        }
    };
    // PVE: Datastore.Allocate on the storage, or for a backup Datastore.AllocateSpace plus
    // VM.Backup on its guest.
    let who = call.who()?;
    let store_path = format!("/storage/{storage}");
    let backup_of = name.strip_prefix("backup/").and_then(backup_vmid);
    let allowed =
        check_privs(who, &store_path, &["Datastore.Allocate"], false).or_else(
            |e| match backup_of {
                Some(vmid) => check_privs(who, &store_path, &["Datastore.AllocateSpace"], false)
                    .and_then(|()| {
                        check_privs(who, &format!("/vms/{vmid}"), &["VM.Backup"], false)
                    }),
                None => Err(e),
            },
        );
    allowed?;
    if !path.exists() {
        return Err(ApiError::server(format!(
            "volume '{storage}:{name}' does not exist"
        )));
    }
    if path.with_extension("zst.protected").exists() {
        return Err(ApiError::server(format!(
            "unable to remove protected volume '{storage}:{name}'"
        )));
    }
    let volid = format!("{storage}:{name}");
    let user = call.user();
    let upid = lab.tasks.spawn(
        "imgdel",
        // PVE's imgdel workers carry no id (a volid's ':' is not allowed in a UPID).
        "",
        &user,
        None,
        move |ctx| {
            ctx.log(&format!("Removing volume {volid}: {}", path.display()));
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            for ext in ["zst.notes", "zst.log", "zst.pct.conf"] {
                let _ = std::fs::remove_file(path.with_extension(ext));
            }
            let log = path.to_string_lossy().replace(".tar.zst", ".log");
            let _ = std::fs::remove_file(log);
            Ok(())
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

/// sha512 of the cached template, computed once per file version.
fn template_sha512(lab: &Lab, t: &crate::runtime::Template) -> Option<String> {
    static CACHE: std::sync::Mutex<Vec<(String, u64, i64, String)>> =
        std::sync::Mutex::new(Vec::new());
    use std::os::unix::fs::MetadataExt;
    let path = model::template_dir(&lab.state).join(t.name);
    let meta = std::fs::metadata(&path).ok()?;
    let key = (t.name.to_string(), meta.len(), meta.mtime());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(hit) = cache
        .iter()
        .find(|c| c.0 == key.0 && c.1 == key.1 && c.2 == key.2)
    {
        return Some(hit.3.clone());
    }
    let mut f = std::fs::File::open(&path).ok()?;
    let mut h = Sha512::new();
    std::io::copy(&mut f, &mut h).ok()?;
    let sum = hex::encode(h.finalize());
    cache.push((key.0, key.1, key.2, sum.clone()));
    Some(sum)
}

pub fn aplinfo(lab: &Lab) -> ApiResult {
    Ok(Reply::data(Value::Array(
        crate::runtime::TEMPLATES
            .iter()
            .map(|t| model::aplinfo_entry(t, template_sha512(lab, t)))
            .collect(),
    )))
}

pub fn aplinfo_download(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let name = call.get("template").unwrap_or("");
    let storage = call.get("storage").unwrap_or("");
    let s = lookup_storage(storage)?;
    let Some(t) = model::template_by_name(name) else {
        return Err(ApiError::param("template", "no such template"));
    };
    if !s.supports("vztmpl") {
        return Err(ApiError::server(format!(
            "storage '{storage}' does not support templates"
        )));
    }
    let lab2 = Arc::clone(lab);
    let t = *t;
    let upid = lab
        .tasks
        .spawn("download", t.name, &call.user(), None, move |ctx| {
            let dest_dir = model::template_dir(&lab2.state);
            let dest = dest_dir.join(t.name);
            std::fs::create_dir_all(&dest_dir)
                .with_context(|| format!("creating {}", dest_dir.display()))?;
            ctx.log(&format!("starting template download of {}", t.name));
            if dest.exists() {
                ctx.log(&format!(
                    "file '{}' already exists - no need to download",
                    dest.display()
                ));
                return Ok(());
            }
            let cached = lab2
                .rt
                .ensure_template(&t, &mut |l| ctx.log(l))
                .with_context(|| format!("unable to get template {}", t.name))?;
            place_file(&cached, &dest)?;
            ctx.log(&format!(
                "download of '{}' to '{}' finished",
                t.name,
                dest.display()
            ));
            Ok(())
        })?;
    Ok(Reply::data(json!(upid)))
}

/// Hard-links the cached template into the storage (same filesystem), else copies it under a
/// temporary name and renames, so the storage never shows half a file.
fn place_file(src: &std::path::Path, dest: &std::path::Path) -> anyhow::Result<()> {
    if std::fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    let tmp = dest.with_extension("tmp-download");
    std::fs::copy(src, &tmp)
        .with_context(|| format!("copying {} to {}", src.display(), tmp.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("renaming to {}", dest.display()))?;
    Ok(())
}

fn task_for(lab: &Lab, call: &Call) -> Result<Arc<crate::tasks::Task>, ApiError> {
    let upid = call.get("upid").unwrap_or("");
    let parsed = Upid::parse(upid)
        .ok_or_else(|| ApiError::server(format!("unable to parse worker upid '{upid}'")))?;
    if parsed.node != NODE {
        return Err(ApiError::server(format!(
            "no such cluster node '{}'",
            parsed.node
        )));
    }
    let task = lab
        .tasks
        .get(upid)
        .ok_or_else(|| ApiError::server(format!("no such task '{upid}'")))?;
    // Your own tasks are always readable; other users' need Sys.Audit on the node.
    let who = call.who()?;
    if task.upid.user != who.auth_id {
        check_privs(who, &format!("/nodes/{NODE}"), &["Sys.Audit"], false)?;
    }
    Ok(task)
}

pub fn task_index(lab: &Lab, call: &Call) -> ApiResult {
    task_for(lab, call)?;
    Ok(Reply::data(json!([{"name": "log"}, {"name": "status"}])))
}

pub fn task_status(lab: &Lab, call: &Call) -> ApiResult {
    Ok(Reply::data(task_for(lab, call)?.status_json()))
}

pub fn task_log(lab: &Lab, call: &Call) -> ApiResult {
    let task = task_for(lab, call)?;
    let start = call.u64("start")?.unwrap_or(0) as usize;
    let limit = call.u64("limit")?.unwrap_or(50) as usize;
    let lines = task.lines();
    let total = lines.len() as u64;
    let rows: Vec<Value> = lines
        .iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(i, t)| json!({"n": i + 1, "t": t}))
        .collect();
    Ok(Reply {
        data: Value::Array(rows),
        total: Some(total),
    })
}

pub fn task_stop(lab: &Lab, call: &Call) -> ApiResult {
    let task = task_for(lab, call)?;
    if task.status() == TaskStatus::Running {
        // Runtime steps cannot be interrupted halfway; the lab refuses instead of pretending.
        return Err(ApiError::server(format!(
            "unable to stop task '{}' - pve-lab cannot interrupt a running worker",
            task.upid_str
        )));
    }
    Ok(Reply::null())
}

pub fn task_list(lab: &Lab, call: &Call) -> ApiResult {
    let who = call.who()?;
    let may_audit = check_privs(who, &format!("/nodes/{NODE}"), &["Sys.Audit"], false).is_ok();
    let start = call.u64("start")?.unwrap_or(0) as usize;
    let limit = call.u64("limit")?.unwrap_or(50) as usize;
    let errors_only = call.flag("errors");
    let source = call.get("source").unwrap_or("archive");
    let mut tasks = lab.tasks.all();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.upid.starttime));
    let rows: Vec<Value> = tasks
        .iter()
        .filter(|t| may_audit || t.upid.user == who.auth_id)
        .filter(|t| call.get("vmid").is_none_or(|v| t.upid.id == v))
        .filter(|t| call.get("typefilter").is_none_or(|v| t.upid.ty == v))
        .filter(|t| call.get("userfilter").is_none_or(|v| t.upid.user.contains(v)))
        .filter(|t| call.get("since").and_then(|s| s.parse::<u64>().ok()).is_none_or(|s| t.upid.starttime >= s))
        .filter(|t| call.get("until").and_then(|s| s.parse::<u64>().ok()).is_none_or(|s| t.upid.starttime <= s))
        .filter(|t| {
            let st = t.status();
            let running = st == TaskStatus::Running;
            match source {
                "active" => running,
                "all" => true,
                _ => !running,
            }
        })
        .filter(|t| {
            !errors_only
                || matches!(t.status(), TaskStatus::Stopped { ref exitstatus, .. } if exitstatus != "OK")
        })
        .filter(|t| {
            call.get("statusfilter").is_none_or(|f| {
                let st = match t.status() {
                    TaskStatus::Running => "running".to_string(),
                    TaskStatus::Stopped { exitstatus, .. } if exitstatus == "OK" => "ok".into(),
                    TaskStatus::Stopped { exitstatus, .. } if exitstatus.starts_with("WARNINGS") => {
                        "warning".into()
                    }
                    TaskStatus::Stopped { .. } => "error".into(),
                };
                f.split([',', ';', ' ']).any(|x| x == st)
            })
        })
        .skip(start)
        .take(limit)
        .map(|t| t.list_json())
        .collect();
    Ok(Reply::data(Value::Array(rows)))
}

/// `/cluster/resources`: node, storages and containers, filtered by what the caller may see.
pub fn resources(lab: &Lab, call: &Call) -> ApiResult {
    let who = call.who()?;
    let ty = call.get("type");
    let mut rows = Vec::new();
    if ty.is_none_or(|t| t == "node") {
        let mut row = node_row(lab);
        if let Some(o) = row.as_object_mut() {
            o.remove("ssl_fingerprint");
        }
        rows.push(row);
    }
    if ty.is_none_or(|t| t == "storage") {
        for s in STORAGES {
            if !may_see_storage(call, s.id) {
                continue;
            }
            let r = storage_row(lab, s);
            rows.push(json!({
                "id": format!("storage/{NODE}/{}", s.id), "type": "storage", "storage": s.id,
                "node": NODE, "status": "available", "plugintype": s.kind,
                "content": s.content_list(), "disk": r["used"], "maxdisk": r["total"], "shared": 0,
            }));
        }
    }
    if ty.is_none_or(|t| t == "vm") {
        for vmid in model::list_vmids(&lab.state) {
            if check_privs(who, &format!("/vms/{vmid}"), &["VM.Audit"], false).is_err() {
                continue;
            }
            if let Ok(mut row) = lxc::status_row(lab, vmid) {
                row["id"] = json!(format!("lxc/{vmid}"));
                row["node"] = json!(NODE);
                row["maxcpu"] = row["cpus"].clone();
                row["template"] = json!(0);
                rows.push(row);
            }
        }
        rows.extend(super::cluster::resource_rows(lab, call));
    }
    Ok(Reply::data(Value::Array(rows)))
}
