//! Container endpoints: create/restore, power tasks, config (digest, delete, read-only options),
//! resize, snapshots, vzdump, interfaces and status, with PVE's error texts and locks. Config
//! files are the source of truth; the runtime does the real work inside tasks.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ApiError, ApiResult, Call, Lab, Reply};
use crate::auth::{check_privs, Forbidden, Identity};
use crate::fsutil::{now_epoch, write_file_atomic};
use crate::model::{self, CtConfig, Section, NODE};
use crate::runtime::StartSpec;
use crate::tasks::TaskCtx;

const MIB: u64 = 1024 * 1024;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Create parameters that are not container options.
const CREATE_ONLY: &[&str] = &[
    "node",
    "vmid",
    "ostemplate",
    "storage",
    "password",
    "ssh-public-keys",
    "start",
    "restore",
    "force",
    "unique",
    "pool",
    "ignore-unpack-errors",
    "bwlimit",
];

fn no_conf(vmid: u32) -> ApiError {
    ApiError::server(format!(
        "Configuration file '{}' does not exist",
        model::conf_display(vmid)
    ))
}

pub(super) fn load(lab: &Lab, vmid: u32) -> Result<CtConfig, ApiError> {
    model::load_conf(&lab.state, vmid)?.ok_or_else(|| no_conf(vmid))
}

fn check_lock(cfg: &CtConfig) -> Result<(), ApiError> {
    match cfg.lock() {
        Some(l) => Err(ApiError::server(format!("CT is locked ({l})"))),
        None => Ok(()),
    }
}

/// Read-modify-write of a config under the node's config lock.
fn update_conf<T>(
    lab: &Lab,
    vmid: u32,
    f: impl FnOnce(&mut CtConfig) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let _g = lab.conf_lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut cfg = model::load_conf(&lab.state, vmid)?.ok_or_else(|| {
        anyhow!(
            "Configuration file '{}' does not exist",
            model::conf_display(vmid)
        )
    })?;
    let out = f(&mut cfg)?;
    model::save_conf(&lab.state, vmid, &cfg)?;
    Ok(out)
}

fn set_lock(lab: &Lab, vmid: u32, lock: Option<&str>) -> anyhow::Result<()> {
    update_conf(lab, vmid, |cfg| {
        match lock {
            Some(l) => {
                if let Some(old) = cfg.lock() {
                    bail!("CT is locked ({old})");
                }
                cfg.current.opts.insert("lock".into(), l.into());
            }
            None => {
                cfg.current.opts.remove("lock");
            }
        }
        Ok(())
    })
}

fn is_running(lab: &Lab, vmid: u32) -> bool {
    lab.rt.status(vmid).map(|s| s.running).unwrap_or(false)
}

/// Property string to a map, through the schema crate's parser.
fn prop_map(value: &str, default_key: Option<&str>) -> BTreeMap<String, String> {
    pve_schema::split_property_string(value, default_key)
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

/// Renders a property string as PVE prints it: the default key (or `name`) first, then sorted.
fn prop_string(map: &BTreeMap<String, String>, first: &str) -> String {
    let mut parts = Vec::new();
    if let Some(v) = map.get(first) {
        parts.push(if first == "volume" {
            v.clone()
        } else {
            format!("{first}={v}")
        });
    }
    for (k, v) in map {
        if k != first {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(",")
}

fn is_net_key(k: &str) -> bool {
    k.strip_prefix("net")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn is_mp_key(k: &str) -> bool {
    k.strip_prefix("mp")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "on" | "yes" | "true")
}

/// PVE::LXC::check_ct_modify_config_perm: which privilege each option needs, plus the
/// root@pam-only options (feature flags, hook scripts, devices, bind mounts).
fn check_option_perms(
    state: &Path,
    who: &Identity,
    vmid: u32,
    keys: &BTreeMap<String, String>,
    deleted: &[String],
    unprivileged: bool,
) -> Result<(), ApiError> {
    if who.is_root_pam() {
        return Ok(());
    }
    let vm = format!("/vms/{vmid}");
    let root_only = |what: &str| -> ApiError {
        ApiError::Forbidden(Forbidden(format!("{what} is only allowed for root@pam")))
    };
    let all: Vec<(&str, Option<&str>)> = keys
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .chain(deleted.iter().map(|k| (k.as_str(), None)))
        .collect();
    for (k, v) in all {
        match k {
            "cores" | "cpulimit" | "cpuunits" => check_privs(who, &vm, &["VM.Config.CPU"], false)?,
            "memory" | "swap" => check_privs(who, &vm, &["VM.Config.Memory"], false)?,
            "hostname" | "nameserver" | "searchdomain" => {
                check_privs(who, &vm, &["VM.Config.Network"], false)?
            }
            "features" => {
                if !unprivileged {
                    return Err(root_only("changing feature flags for privileged container"));
                }
                let flags = v.map(|v| prop_map(v, None)).unwrap_or_default();
                if flags.iter().any(|(f, val)| f != "nesting" && truthy(val)) {
                    return Err(root_only("changing feature flags (except nesting)"));
                }
                check_privs(who, &vm, &["VM.Config.Options"], false)?;
                if flags.get("nesting").is_some_and(|n| truthy(n)) {
                    check_privs(who, &vm, &["VM.Allocate"], false)?;
                }
            }
            "hookscript" => return Err(root_only("changing the hookscript")),
            k if k.starts_with("dev") && k[3..].chars().all(|c| c.is_ascii_digit()) => {
                return Err(root_only("configuring device passthrough"))
            }
            k if k == "rootfs" || is_mp_key(k) || k.starts_with("unused") => {
                check_privs(who, &vm, &["VM.Config.Disk"], false)?;
                if let Some(v) = v {
                    let vol = prop_map(v, Some("volume"));
                    if vol.get("volume").is_some_and(|p| p.starts_with('/')) {
                        return Err(root_only("using bind or device mount points"));
                    }
                }
            }
            k if is_net_key(k) => {
                check_privs(who, &vm, &["VM.Config.Network"], false)?;
                if let Some(v) = v {
                    let net = prop_map(v, None);
                    let bridge = net.get("bridge").map(String::as_str).unwrap_or("vmbr0");
                    let zone = super::sdn::bridge_acl_path(
                        state,
                        bridge,
                        net.get("tag").map(String::as_str),
                    );
                    check_privs(who, &zone, &["SDN.Use"], false)?;
                }
            }
            _ => check_privs(who, &vm, &["VM.Config.Options"], false)?,
        }
    }
    Ok(())
}

/// Completes a `netN` value as PVE does on create: a generated MAC when none was given.
fn complete_net(value: &str, old: Option<&str>) -> String {
    let mut map = prop_map(value, None);
    if !map.contains_key("hwaddr") {
        let old_mac = old.and_then(|o| prop_map(o, None).get("hwaddr").cloned());
        map.insert(
            "hwaddr".into(),
            old_mac.unwrap_or_else(model::random_hwaddr),
        );
    }
    map.entry("type".into()).or_insert_with(|| "veth".into());
    prop_string(&map, "name")
}

#[derive(Default, Serialize, Deserialize)]
struct CreateSecrets {
    root_password_hash: Option<String>,
    ssh_public_keys: Option<String>,
}

fn secrets_path(state: &Path, vmid: u32) -> PathBuf {
    model::conf_dir(state).join(format!("{vmid}.secrets.json"))
}

/// SHA-512 crypt of the password, with the password on stdin (never in argv).
fn hash_password(pw: &str) -> anyhow::Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running openssl passwd (help: apt-get install openssl)")?;
    child
        .stdin
        .take()
        .context("openssl stdin")?
        .write_all(format!("{pw}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "openssl passwd failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Size in GiB of the `rootfs` line of a config.
fn rootfs_size_gib(cfg: &Section) -> Option<f64> {
    let r = prop_map(cfg.get("rootfs")?, Some("volume"));
    model::parse_disk_size_gib(r.get("size")?)
}

pub fn create(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let who = call.who()?.clone();
    let restore = call.flag("restore");
    let force = call.flag("force");
    let existing = model::load_conf(&lab.state, vmid)?;
    if super::cluster::peer_vmids(&lab.state).contains(&vmid) {
        let peer = super::cluster::peer(&lab.state).unwrap_or_default();
        return Err(ApiError::server(format!(
            "CT {vmid} already exists on node '{peer}'"
        )));
    }
    if existing.is_some() && !(restore && force) {
        return Err(ApiError::server(format!(
            "CT {vmid} already exists on node '{NODE}'"
        )));
    }
    if let Some(cfg) = &existing {
        check_lock(cfg)?;
        if is_running(lab, vmid) {
            return Err(ApiError::server(format!(
                "unable to restore CT {vmid} - CT is running"
            )));
        }
        check_privs(&who, &format!("/vms/{vmid}"), &["VM.Backup"], false)?;
    } else {
        check_privs(&who, &format!("/vms/{vmid}"), &["VM.Allocate"], false)?;
    }

    let storage = call.get("storage").unwrap_or("local").to_string();
    lookup_storage(&storage)?;

    // The archive: a template (vztmpl) or, for restore, a backup.
    let ostemplate = call.get("ostemplate").unwrap_or("");
    let vol = model::parse_volid(ostemplate)
        .ok_or_else(|| ApiError::server(format!("unable to parse volume ID '{ostemplate}'")))?;
    let tstore = lookup_storage(&vol.storage)?;
    let wanted_kind = if restore { "backup" } else { "vztmpl" };
    let file = match vol.name.split_once('/') {
        Some((kind, f)) if tstore.id == "local" && kind == wanted_kind && !f.contains('/') => {
            f.to_string()
        }
        _ if tstore.kind == "lvmthin" => {
            return Err(ApiError::server(format!(
                "unable to parse lvm volume name '{}'",
                vol.name
            )))
        }
        _ => {
            return Err(ApiError::server(format!(
                "unable to parse directory volume name '{}'",
                vol.name
            )))
        }
    };
    check_privs(
        &who,
        &format!("/storage/{}", tstore.id),
        &["Datastore.AllocateSpace", "Datastore.Audit"],
        true,
    )?;
    let archive = if restore {
        model::dump_dir(&lab.state).join(&file)
    } else {
        model::template_dir(&lab.state).join(&file)
    };

    // rootfs: `STORAGE:SIZE_GIB` allocates; a bare number means `<storage>:N`.
    let rootfs = call
        .get("rootfs")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{storage}:4"));
    let mut rootfs_map = prop_map(&rootfs, Some("volume"));
    let volume = rootfs_map.remove("volume").unwrap_or_default();
    let (root_store, size_gib) = match volume.split_once(':') {
        Some((s, n)) => (s.to_string(), n.parse::<f64>().ok()),
        None => (storage.clone(), volume.parse::<f64>().ok()),
    };
    let rs = lookup_storage(&root_store)?;
    if !rs.supports("rootdir") {
        return Err(ApiError::server(format!(
            "storage '{root_store}' does not support container directories"
        )));
    }
    let Some(size_gib) = size_gib.filter(|s| *s > 0.0 && s.is_finite()) else {
        return Err(ApiError::server(format!(
            "unable to parse rootfs volume '{volume}' - expected '{root_store}:SIZE_IN_GiB' for a new volume"
        )));
    };
    check_privs(
        &who,
        &format!("/storage/{root_store}"),
        &["Datastore.AllocateSpace"],
        false,
    )?;

    // Options that go into the config.
    let mut opts: BTreeMap<String, String> = call
        .params
        .iter()
        .filter(|(k, _)| !CREATE_ONLY.contains(&k.as_str()) && k.as_str() != "rootfs")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let unprivileged = match opts.get("unprivileged") {
        Some(v) => truthy(v),
        None => lab.pve.default_unprivileged(),
    };
    if !unprivileged && lab.pve == super::PveVersion::V9 {
        check_privs(&who, "/", &["Sys.Modify"], false)?;
    }
    let mut checked = opts.clone();
    checked.insert("rootfs".into(), rootfs.clone());
    check_option_perms(&lab.state, &who, vmid, &checked, &[], unprivileged)?;

    let net_keys: Vec<String> = opts.keys().filter(|k| is_net_key(k)).cloned().collect();
    for k in net_keys {
        let v = complete_net(&opts[&k], None);
        opts.insert(k, v);
    }
    let description = opts.remove("description");
    if unprivileged {
        opts.insert("unprivileged".into(), "1".into());
    } else {
        opts.remove("unprivileged");
    }
    opts.entry("arch".into()).or_insert_with(|| "amd64".into());
    if file.starts_with("debian") {
        opts.entry("ostype".into())
            .or_insert_with(|| "debian".into());
    }
    opts.insert("lock".into(), "create".into());
    rootfs_map.insert("size".into(), model::format_disk_size(size_gib));
    rootfs_map.insert("volume".into(), model::rootfs_volume_on(&root_store, vmid));
    let final_rootfs = prop_string(&rootfs_map, "volume");

    let secrets = CreateSecrets {
        root_password_hash: call.get("password").map(hash_password).transpose()?,
        ssh_public_keys: call.get("ssh-public-keys").map(str::to_string),
    };

    {
        let _g = lab.conf_lock.lock().unwrap_or_else(|p| p.into_inner());
        let now = model::load_conf(&lab.state, vmid)?;
        if now.is_some() && existing.is_none() {
            return Err(ApiError::server(format!(
                "CT {vmid} already exists on node '{NODE}'"
            )));
        }
        let cfg = CtConfig {
            current: Section { description, opts },
            snapshots: BTreeMap::new(),
        };
        model::save_conf(&lab.state, vmid, &cfg)?;
    }
    if secrets.root_password_hash.is_some() || secrets.ssh_public_keys.is_some() {
        write_file_atomic(
            &secrets_path(&lab.state, vmid),
            &serde_json::to_vec(&secrets).map_err(anyhow::Error::from)?,
            0o600,
        )?;
    }

    let start = call.flag("start");
    let lab2 = Arc::clone(lab);
    let replacing = existing.is_some();
    // unique=1 gives a restored copy its own MAC addresses, as PVE does.
    let unique = call.flag("unique");
    let ty = if restore { "vzrestore" } else { "vzcreate" };
    let upid = lab.tasks.spawn(
        ty,
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| {
            let result = (|| -> anyhow::Result<()> {
                if !archive.exists() {
                    bail!("volume '{}:{}' does not exist", vol.storage, vol.name);
                }
                if replacing {
                    ctx.log(&format!("destroying old volumes of CT {vmid}"));
                    lab2.rt
                        .destroy(vmid)
                        .context("removing the old container")?;
                }
                ctx.log(&format!("extracting archive '{}'", archive.display()));
                lab2.rt
                    .create(vmid, &archive, size_gib, &mut |l| ctx.log(l))?;
                let restored = if restore {
                    read_backup_conf(&archive)
                } else {
                    None
                };
                update_conf(&lab2, vmid, |cfg| {
                    if let Some(old) = restored {
                        for (k, v) in old.opts {
                            if k == "lock" || k == "parent" || k == "rootfs" {
                                continue;
                            }
                            let v = if unique && is_net_key(&k) {
                                let mut net = prop_map(&v, None);
                                net.insert("hwaddr".into(), model::random_hwaddr());
                                prop_string(&net, "name")
                            } else {
                                v
                            };
                            cfg.current.opts.entry(k).or_insert(v);
                        }
                        if cfg.current.description.is_none() {
                            cfg.current.description = old.description;
                        }
                    }
                    cfg.current
                        .opts
                        .insert("rootfs".into(), final_rootfs.clone());
                    cfg.current.opts.remove("lock");
                    Ok(())
                })?;
                ctx.log(&format!("CT {vmid} created: {}", final_rootfs));
                if start {
                    ctx.log(&format!("starting CT {vmid}"));
                    start_ct(&lab2, vmid, ctx)?;
                }
                Ok(())
            })();
            if let Err(e) = result {
                if !replacing {
                    let _ = lab2.rt.destroy(vmid);
                    let _ = model::remove_conf(&lab2.state, vmid);
                    let _ = std::fs::remove_file(secrets_path(&lab2.state, vmid));
                } else {
                    let _ = set_lock(&lab2, vmid, None);
                }
                let verb = if restore { "restore" } else { "create" };
                return Err(anyhow!("unable to {verb} CT {vmid} - {e:#}"));
            }
            Ok(())
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

fn lookup_storage(id: &str) -> Result<&'static model::Storage, ApiError> {
    model::storage(id).ok_or_else(|| ApiError::server(format!("storage '{id}' does not exist")))
}

/// Path of a file next to a backup archive (`<archive><suffix>`).
fn sidecar(archive: &Path, suffix: &str) -> PathBuf {
    let mut s = archive.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn read_backup_conf(archive: &Path) -> Option<Section> {
    let text = std::fs::read_to_string(sidecar(archive, ".pct.conf")).ok()?;
    CtConfig::parse(&text).ok().map(|c| c.current)
}

/// Boots a container from its config; shared by start, create/rollback with start=1, reboot
/// and onboot.
pub(crate) fn start_ct(lab: &Lab, vmid: u32, ctx: &TaskCtx) -> anyhow::Result<()> {
    let cfg = model::load_conf(&lab.state, vmid)?.ok_or_else(|| {
        anyhow!(
            "Configuration file '{}' does not exist",
            model::conf_display(vmid)
        )
    })?;
    let spec = start_spec(lab, vmid, &cfg.current)?;
    if let Some((ip, len)) = spec.ip {
        ctx.log(&format!("eth0: {ip}/{len}"));
    }
    lab.rt
        .start(&spec, &mut |l| ctx.log(l))
        .with_context(|| format!("startup for container '{vmid}' failed"))?;
    // Password and keys are applied once, as PVE does at create time.
    let _ = std::fs::remove_file(secrets_path(&lab.state, vmid));
    Ok(())
}

fn start_spec(lab: &Lab, vmid: u32, cur: &Section) -> anyhow::Result<StartSpec> {
    let mut spec = StartSpec {
        vmid,
        hostname: cur
            .get("hostname")
            .map(str::to_string)
            .unwrap_or_else(|| format!("CT{vmid}")),
        memory_mib: cur
            .get("memory")
            .and_then(|m| m.parse().ok())
            .unwrap_or(512),
        cores: cur
            .get("cores")
            .and_then(|m| m.parse().ok())
            .unwrap_or(crate::hostinfo::cpuinfo().cpus as u32),
        nameserver: cur.get("nameserver").map(str::to_string),
        searchdomain: cur.get("searchdomain").map(str::to_string),
        confined: cur
            .get("features")
            .and_then(|f| prop_map(f, None).get("nesting").cloned())
            .as_deref()
            != Some("1"),
        ..StartSpec::default()
    };
    if let Some(net0) = cur.get("net0") {
        let net = prop_map(net0, None);
        if let Some(b) = net.get("bridge") {
            // A vnet of a simple zone is a bridge on the node: the lab's bridge carries it.
            if b != "vmbr0" && !super::sdn::vnets(&lab.state).contains_key(b) {
                bail!("bridge '{b}' does not exist");
            }
        }
        spec.hwaddr = net.get("hwaddr").cloned();
        spec.mtu = net.get("mtu").and_then(|m| m.parse().ok());
        match net.get("ip").map(String::as_str) {
            Some("dhcp") => {
                // The container asks the lab's DHCP server; its MAC's reservation answers.
                let mac = spec
                    .hwaddr
                    .clone()
                    .with_context(|| format!("net0 of CT {vmid} has no hwaddr"))?;
                lab.rt
                    .dhcp_reserve_for(vmid, &mac, model::lease(&lab.state, &lab.net, vmid)?)?;
                spec.dhcp = true;
            }
            Some("manual") | None => {}
            Some(cidr) => {
                let (a, l) = cidr
                    .split_once('/')
                    .with_context(|| format!("net0: ip '{cidr}' is not an IPv4 CIDR"))?;
                let ip: Ipv4Addr = a.parse().with_context(|| format!("net0: bad ip '{a}'"))?;
                let len: u8 = l
                    .parse()
                    .with_context(|| format!("net0: bad prefix '{l}'"))?;
                spec.ip = Some((ip, len));
                spec.gw = net.get("gw").and_then(|g| g.parse().ok());
            }
        }
    }
    if let Ok(bytes) = std::fs::read(secrets_path(&lab.state, vmid)) {
        if let Ok(s) = serde_json::from_slice::<CreateSecrets>(&bytes) {
            spec.root_password_hash = s.root_password_hash;
            spec.ssh_public_keys = s.ssh_public_keys;
        }
    }
    Ok(spec)
}

pub fn power(lab: &Arc<Lab>, call: &Call, ty: &'static str) -> ApiResult {
    let vmid = call.vmid()?;
    let cfg = load(lab, vmid)?;
    if call.flag("skiplock") {
        if !call.who()?.is_root_pam() {
            return Err(ApiError::Forbidden(Forbidden(
                "Only root may use this option.".into(),
            )));
        }
    } else {
        check_lock(&cfg)?;
    }
    let running = is_running(lab, vmid);
    match ty {
        "vzstart" if running => return Err(ApiError::server(format!("CT {vmid} already running"))),
        "vzstart" if cfg.current.get("template").is_some_and(truthy) => {
            return Err(ApiError::server(format!("CT {vmid} is a template")));
        }
        "vzstart" => {}
        _ if !running => return Err(ApiError::server(format!("CT {vmid} not running"))),
        _ => {}
    }
    let timeout = Duration::from_secs(call.u64("timeout")?.unwrap_or(60));
    let lab2 = Arc::clone(lab);
    let upid = lab.tasks.spawn(
        ty,
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| match ty {
            "vzstart" => start_ct(&lab2, vmid, ctx),
            "vzstop" => lab2.rt.stop(vmid),
            "vzshutdown" => lab2.rt.shutdown(vmid, timeout),
            _ => {
                lab2.rt.shutdown(vmid, timeout)?;
                start_ct(&lab2, vmid, ctx)
            }
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

/// A row of `/nodes/{node}/lxc` (and the base of status/current and cluster resources).
pub(crate) fn status_row(lab: &Lab, vmid: u32) -> anyhow::Result<Value> {
    let cfg = model::load_conf(&lab.state, vmid)?.ok_or_else(|| {
        anyhow!(
            "Configuration file '{}' does not exist",
            model::conf_display(vmid)
        )
    })?;
    let cur = &cfg.current;
    let st = lab.rt.status(vmid).unwrap_or_default();
    let mem_mib: u64 = cur
        .get("memory")
        .and_then(|m| m.parse().ok())
        .unwrap_or(512);
    let swap_mib: u64 = cur.get("swap").and_then(|m| m.parse().ok()).unwrap_or(512);
    let cpus: u64 = cur
        .get("cores")
        .and_then(|m| m.parse().ok())
        .unwrap_or(crate::hostinfo::cpuinfo().cpus);
    let maxdisk = rootfs_size_gib(cur)
        .map(|g| (g * GIB) as u64)
        .unwrap_or(st.disk_total);
    let mut row = json!({
        "vmid": vmid,
        "name": cur.get("hostname").map(str::to_string).unwrap_or_else(|| format!("CT{vmid}")),
        "status": if st.running { "running" } else { "stopped" },
        "type": "lxc",
        "cpus": cpus,
        "cpu": 0,
        "maxmem": mem_mib * MIB,
        "maxswap": swap_mib * MIB,
        "maxdisk": maxdisk,
        "mem": st.mem_bytes,
        "swap": 0,
        "disk": st.disk_used,
        "uptime": st.uptime_s,
        "netin": st.netin,
        "netout": st.netout,
        "diskread": 0,
        "diskwrite": 0,
    });
    if let Some(pid) = st.init_pid {
        row["pid"] = json!(pid);
    }
    if let Some(tags) = cur.get("tags") {
        row["tags"] = json!(tags);
    }
    if let Some(lock) = cur.get("lock") {
        row["lock"] = json!(lock);
    }
    if cur.get("template").is_some_and(truthy) {
        row["template"] = json!(1);
    }
    Ok(row)
}

pub fn list(lab: &Lab, call: &Call) -> ApiResult {
    let who = call.who()?;
    let rows = model::list_vmids(&lab.state)
        .into_iter()
        .filter(|v| check_privs(who, &format!("/vms/{v}"), &["VM.Audit"], false).is_ok())
        .filter_map(|v| status_row(lab, v).ok())
        .collect();
    Ok(Reply::data(Value::Array(rows)))
}

pub fn index(lab: &Lab, call: &Call) -> ApiResult {
    load(lab, call.vmid()?)?;
    let dirs = [
        "config",
        "status",
        "vncproxy",
        "termproxy",
        "vncwebsocket",
        "spiceproxy",
        "migrate",
        "clone",
        "rrd",
        "rrddata",
        "firewall",
        "snapshot",
        "resize",
        "interfaces",
        "pending",
    ];
    Ok(Reply::data(Value::Array(
        dirs.iter().map(|d| json!({ "subdir": d })).collect(),
    )))
}

pub fn status_index(lab: &Lab, call: &Call) -> ApiResult {
    load(lab, call.vmid()?)?;
    let dirs = [
        "current", "start", "stop", "shutdown", "reboot", "suspend", "resume",
    ];
    Ok(Reply::data(Value::Array(
        dirs.iter().map(|d| json!({ "subdir": d })).collect(),
    )))
}

pub fn status_current(lab: &Lab, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    load(lab, vmid)?;
    let mut row = status_row(lab, vmid)?;
    row["ha"] = json!({ "managed": 0 });
    Ok(Reply::data(row))
}

pub fn interfaces(lab: &Lab, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    load(lab, vmid)?;
    if !is_running(lab, vmid) {
        return Err(ApiError::server(format!("CT {vmid} not running")));
    }
    let ifaces = lab.rt.ipv4_addresses(vmid)?;
    let rows = ifaces
        .into_iter()
        .map(|(name, hwaddr, addrs)| {
            let mut row = json!({
                "name": name,
                "hwaddr": hwaddr,
                "ip-addresses": addrs.iter().map(|(ip, len)| json!({
                    "ip-address": ip.to_string(), "ip-address-type": "inet", "prefix": len,
                })).collect::<Vec<_>>(),
            });
            if let Some((ip, len)) = addrs.first() {
                row["inet"] = json!(format!("{ip}/{len}"));
            }
            row
        })
        .collect();
    Ok(Reply::data(Value::Array(rows)))
}

/// Config values typed as the schema's return declares them (integers and booleans as numbers).
fn typed_config(lab: &Lab, sec: &Section) -> serde_json::Map<String, Value> {
    let props = lab
        .schema
        .endpoint("GET", "/nodes/{node}/lxc/{vmid}/config")
        .and_then(|ep| ep.returns.get("properties").cloned())
        .unwrap_or(Value::Null);
    let mut out = serde_json::Map::new();
    for (k, v) in &sec.opts {
        let ty = props
            .get(k.as_str())
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value = match ty {
            "integer" | "boolean" => v
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(if truthy(v) { 1 } else { 0 })),
            "number" => v
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(v.clone())),
            _ => Value::from(v.clone()),
        };
        out.insert(k.clone(), value);
    }
    if let Some(d) = &sec.description {
        out.insert("description".into(), json!(d));
    }
    out
}

pub fn config_get(lab: &Lab, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let cfg = load(lab, vmid)?;
    let mut out = match call.get("snapshot") {
        Some(name) => {
            let sec = cfg
                .snapshots
                .get(name)
                .ok_or_else(|| ApiError::server(format!("snapshot '{name}' does not exist")))?;
            typed_config(lab, sec)
        }
        None => typed_config(lab, &cfg.current),
    };
    out.insert("digest".into(), json!(cfg.digest()));
    Ok(Reply::data(Value::Object(out)))
}

pub fn pending(lab: &Lab, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let cfg = load(lab, vmid)?;
    let typed = typed_config(lab, &cfg.current);
    Ok(Reply::data(Value::Array(
        typed
            .into_iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect(),
    )))
}

pub fn config_put(lab: &Lab, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let who = call.who()?.clone();
    let cfg = load(lab, vmid)?;
    if call.get("unprivileged").is_some() {
        return Err(ApiError::server(
            "unable to modify read-only option: 'unprivileged'",
        ));
    }
    let deleted: Vec<String> = call
        .get("delete")
        .map(|d| {
            d.split([',', ';', ' ', '\t', '\n', '\0'])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let skip = ["node", "vmid", "delete", "digest", "revert"];
    let set: BTreeMap<String, String> = call
        .params
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut errors = BTreeMap::new();
    for d in &deleted {
        if set.contains_key(d) {
            errors.insert(
                d.clone(),
                "you can't change and delete the same option at the same time".to_string(),
            );
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let unprivileged = cfg.current.get("unprivileged").is_some_and(truthy);
    check_option_perms(&lab.state, &who, vmid, &set, &deleted, unprivileged)?;
    let digest = call.get("digest").map(str::to_string);

    let _g = lab.conf_lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut cfg = load(lab, vmid)?;
    if let Some(d) = &digest {
        if *d != cfg.digest() {
            return Err(ApiError::server(
                "detected modified configuration - file changed by other user? Try again.",
            ));
        }
    }
    check_lock(&cfg)?;
    for d in &deleted {
        match d.as_str() {
            "rootfs" => {
                return Err(ApiError::server(
                    "unable to delete required option 'rootfs'",
                ))
            }
            "unprivileged" => {
                return Err(ApiError::server(
                    "unable to modify read-only option: 'unprivileged'",
                ))
            }
            "description" => cfg.current.description = None,
            k => {
                cfg.current.opts.remove(k);
            }
        }
    }
    for (k, v) in set {
        match k.as_str() {
            "description" => cfg.current.description = Some(v),
            "rootfs" => {
                let cur = prop_map(cfg.current.get("rootfs").unwrap_or(""), Some("volume"));
                let mut new = prop_map(&v, Some("volume"));
                if new.get("volume") != cur.get("volume") {
                    return Err(ApiError::server(format!(
                        "unable to modify rootfs - changing the volume to '{}' is not supported; use the resize endpoint to grow it",
                        new.get("volume").map(String::as_str).unwrap_or("")
                    )));
                }
                // The size is the volume's; only the resize endpoint changes it.
                if let Some(size) = cur.get("size") {
                    new.insert("size".into(), size.clone());
                }
                cfg.current.opts.insert(k, prop_string(&new, "volume"));
            }
            k2 if is_net_key(k2) => {
                let old = cfg.current.get(k2).map(str::to_string);
                let value = complete_net(&v, old.as_deref());
                cfg.current.opts.insert(k, value);
            }
            _ => {
                cfg.current.opts.insert(k, v);
            }
        }
    }
    model::save_conf(&lab.state, vmid, &cfg)?;
    Ok(Reply::null())
}

pub fn resize(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let cfg = load(lab, vmid)?;
    check_lock(&cfg)?;
    if let Some(d) = call.get("digest") {
        if d != cfg.digest() {
            return Err(ApiError::server(
                "detected modified configuration - file changed by other user? Try again.",
            ));
        }
    }
    let disk = call.get("disk").unwrap_or("");
    if disk != "rootfs" {
        return Err(ApiError::server(format!(
            "unable to resize '{disk}' - pve-lab containers have only a rootfs"
        )));
    }
    let size = call.get("size").unwrap_or("");
    let (relative, amount) = match size.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, size),
    };
    let amount_gib = model::parse_disk_size_gib(amount)
        .ok_or_else(|| ApiError::param("size", "value does not match the regex pattern"))?;
    let current = rootfs_size_gib(&cfg.current).unwrap_or(0.0);
    let new = if relative {
        current + amount_gib
    } else {
        amount_gib
    };
    // pve-container's API2/LXC.pm resize_vm, before it forks its worker.
    if new + 1e-9 < current {
        return Err(ApiError::server("unable to shrink disk size"));
    }
    if (new - current).abs() < 1e-9 {
        return Err(ApiError::server("disk is already at specified size"));
    }
    let lab2 = Arc::clone(lab);
    let upid = lab.tasks.spawn(
        "resize",
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| {
            ctx.log(&format!(
                "resizing rootfs of CT {vmid} to {}",
                model::format_disk_size(new)
            ));
            lab2.rt.resize(vmid, new)?;
            if lab2.rt.fs_grow_pending(vmid) {
                // PVE `warn`s in its worker when the online resize2fs fails: a line in the log
                // and still `TASK OK` (a plain warn does not count towards `WARNINGS: N`).
                ctx.log(&format!(
                    "Failed to update the container's filesystem: command 'resize2fs' of CT {vmid}'s root disk failed: Operation not permitted"
                ));
            }
            update_conf(&lab2, vmid, |cfg| {
                let mut r = prop_map(cfg.current.get("rootfs").unwrap_or(""), Some("volume"));
                r.insert("size".into(), model::format_disk_size(new));
                cfg.current
                    .opts
                    .insert("rootfs".into(), prop_string(&r, "volume"));
                Ok(())
            })
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

pub fn destroy(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let cfg = load(lab, vmid)?;
    if cfg.current.get("protection").is_some_and(truthy) {
        return Err(ApiError::server(format!(
            "can't remove CT {vmid} - protection mode enabled"
        )));
    }
    check_lock(&cfg)?;
    let force = call.flag("force");
    if is_running(lab, vmid) && !force {
        return Err(ApiError::server(format!(
            "unable to destroy CT {vmid} - container is running"
        )));
    }
    let lab2 = Arc::clone(lab);
    let upid = lab.tasks.spawn(
        "vzdestroy",
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| {
            if is_running(&lab2, vmid) {
                ctx.log(&format!("stopping CT {vmid}"));
                lab2.rt.stop(vmid)?;
            }
            set_lock(&lab2, vmid, Some("destroyed"))?;
            lab2.rt.destroy(vmid).inspect_err(|_| {
                let _ = set_lock(&lab2, vmid, None);
            })?;
            ctx.log(&format!(
                "Logical volume \"vm-{vmid}-disk-0\" successfully removed."
            ));
            model::remove_conf(&lab2.state, vmid)?;
            model::release_lease(&lab2.state, vmid)?;
            lab2.rt.dhcp_release_for(vmid)?;
            let _ = std::fs::remove_file(secrets_path(&lab2.state, vmid));
            Ok(())
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

pub fn snapshot_list(lab: &Lab, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let cfg = load(lab, vmid)?;
    let mut rows: Vec<Value> = cfg
        .snapshot_order()
        .into_iter()
        .filter_map(|name| {
            let s = cfg.snapshots.get(&name)?;
            let mut row = json!({
                "name": name,
                "description": s.description.clone().unwrap_or_default(),
                "snaptime": s.get("snaptime").and_then(|t| t.parse::<u64>().ok()).unwrap_or(0),
            });
            if let Some(p) = s.get("parent") {
                row["parent"] = json!(p);
            }
            Some(row)
        })
        .collect();
    let mut current = json!({
        "name": "current",
        "description": "You are here!",
        "running": if is_running(lab, vmid) { 1 } else { 0 },
    });
    if let Some(p) = cfg.current.get("parent") {
        current["parent"] = json!(p);
    }
    rows.push(current);
    Ok(Reply::data(Value::Array(rows)))
}

fn snapshot_of<'a>(cfg: &'a CtConfig, name: &str) -> Result<&'a Section, ApiError> {
    cfg.snapshots
        .get(name)
        .ok_or_else(|| ApiError::server(format!("snapshot '{name}' does not exist")))
}

pub fn snapshot_index(lab: &Lab, call: &Call) -> ApiResult {
    let cfg = load(lab, call.vmid()?)?;
    snapshot_of(&cfg, call.get("snapname").unwrap_or(""))?;
    Ok(Reply::data(
        json!([{"rollback": "rollback"}, {"config": "config"}]),
    ))
}

pub fn snapshot_config(lab: &Lab, call: &Call) -> ApiResult {
    let cfg = load(lab, call.vmid()?)?;
    let sec = snapshot_of(&cfg, call.get("snapname").unwrap_or(""))?;
    Ok(Reply::data(Value::Object(typed_config(lab, sec))))
}

pub fn snapshot_create(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let name = call.get("snapname").unwrap_or("").to_string();
    let cfg = load(lab, vmid)?;
    check_lock(&cfg)?;
    if name == "current" || name == "vzdump" {
        return Err(ApiError::server(format!(
            "unable to use snapshot name '{name}' (reserved name)"
        )));
    }
    if cfg.snapshots.contains_key(&name) {
        return Err(ApiError::server(format!(
            "snapshot name '{name}' already used"
        )));
    }
    let description = call.get("description").map(str::to_string);
    let lab2 = Arc::clone(lab);
    let upid = lab.tasks.spawn(
        "vzsnapshot",
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| {
            set_lock(&lab2, vmid, Some("snapshot"))?;
            ctx.log(&format!("create snapshot '{name}'"));
            if let Err(e) = lab2.rt.snapshot(vmid, &name) {
                let _ = set_lock(&lab2, vmid, None);
                return Err(e.context(format!("snapshot '{name}' of CT {vmid} failed")));
            }
            update_conf(&lab2, vmid, |cfg| {
                cfg.current.opts.remove("lock");
                let mut snap = cfg.current.clone();
                snap.description = description;
                snap.opts.insert("snaptime".into(), now_epoch().to_string());
                cfg.snapshots.insert(name.clone(), snap);
                cfg.current.opts.insert("parent".into(), name.clone());
                Ok(())
            })
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

pub fn snapshot_rollback(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let name = call.get("snapname").unwrap_or("").to_string();
    let cfg = load(lab, vmid)?;
    snapshot_of(&cfg, &name)?;
    check_lock(&cfg)?;
    let start = call.flag("start");
    let blocker = zfs_rollback_blocker(&cfg, &name);
    let lab2 = Arc::clone(lab);
    let upid = lab.tasks.spawn(
        "vzrollback",
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| {
            // pve-storage's ZFSPoolPlugin (`volume_rollback_is_possible`): `zfs rollback`
            // without -r, so any newer snapshot blocks it, checked before the CT is touched.
            if let Some(e) = blocker {
                bail!(e);
            }
            if is_running(&lab2, vmid) {
                ctx.log(&format!("stopping CT {vmid}"));
                lab2.rt.stop(vmid)?;
            }
            set_lock(&lab2, vmid, Some("rollback"))?;
            if let Err(e) = lab2.rt.rollback(vmid, &name) {
                let _ = set_lock(&lab2, vmid, None);
                return Err(e.context(format!("rollback of CT {vmid} to '{name}' failed")));
            }
            update_conf(&lab2, vmid, |cfg| {
                let snap = cfg
                    .snapshots
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| anyhow!("snapshot '{name}' does not exist"))?;
                let mut cur = snap;
                cur.opts.remove("snaptime");
                cur.opts.remove("lock");
                cur.opts.insert("parent".into(), name.clone());
                cur.description = cfg.current.description.clone();
                cfg.current = cur;
                Ok(())
            })?;
            ctx.log(&format!("rolled back CT {vmid} to snapshot '{name}'"));
            if start {
                ctx.log(&format!("starting CT {vmid}"));
                start_ct(&lab2, vmid, ctx)?;
            }
            Ok(())
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

/// On a zfspool rootfs, the error PVE gives for a rollback to `name` when a newer snapshot
/// exists (snapshots ordered by creation, as `zfs list -s creation` does).
fn zfs_rollback_blocker(cfg: &CtConfig, name: &str) -> Option<String> {
    let rootfs = prop_map(cfg.current.get("rootfs")?, Some("volume"));
    let volid = rootfs.get("volume")?.clone();
    let store = volid.split_once(':')?.0;
    if model::storage(store)?.kind != "zfspool" {
        return None;
    }
    let order = cfg.snapshot_order();
    let pos = order.iter().position(|n| n == name)?;
    (pos + 1 < order.len())
        .then(|| format!("can't rollback, '{name}' is not most recent snapshot on '{volid}'"))
}

pub fn snapshot_delete(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let vmid = call.vmid()?;
    let name = call.get("snapname").unwrap_or("").to_string();
    let cfg = load(lab, vmid)?;
    snapshot_of(&cfg, &name)?;
    if !call.flag("force") {
        check_lock(&cfg)?;
    }
    let lab2 = Arc::clone(lab);
    let upid = lab.tasks.spawn(
        "vzdelsnapshot",
        &vmid.to_string(),
        &call.user(),
        Some(vmid),
        move |ctx| {
            ctx.log(&format!("delete snapshot '{name}'"));
            lab2.rt
                .delete_snapshot(vmid, &name)
                .with_context(|| format!("deleting snapshot '{name}' of CT {vmid}"))?;
            update_conf(&lab2, vmid, |cfg| {
                let parent = cfg
                    .snapshots
                    .remove(&name)
                    .and_then(|s| s.opts.get("parent").cloned());
                let fix = |sec: &mut Section| {
                    if sec.get("parent") == Some(name.as_str()) {
                        match &parent {
                            Some(p) => sec.opts.insert("parent".into(), p.clone()),
                            None => sec.opts.remove("parent"),
                        };
                    }
                };
                fix(&mut cfg.current);
                for sec in cfg.snapshots.values_mut() {
                    fix(sec);
                }
                Ok(())
            })
        },
    )?;
    Ok(Reply::data(json!(upid)))
}

fn backup_name(vmid: u32) -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]_[month]_[day]-[hour]_[minute]_[second]");
    let stamp = now
        .format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    format!("vzdump-lxc-{vmid}-{stamp}.tar.zst")
}

pub fn vzdump(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    let who = call.who()?.clone();
    for root_only in ["dumpdir", "tmpdir", "script", "job-id"] {
        if call.get(root_only).is_some() && !who.is_root_pam() {
            return Err(ApiError::Forbidden(Forbidden(format!(
                "Only root may set the '{root_only}' option"
            ))));
        }
    }
    if call.flag("stdout") {
        return Err(ApiError::server(
            "pve-lab cannot stream a backup to stdout; write it to a storage instead",
        ));
    }
    if call.get("dumpdir").is_some() {
        return Err(ApiError::server(
            "pve-lab writes backups only to a storage; drop 'dumpdir' and pass storage=local",
        ));
    }
    let exclude: Vec<u32> = call
        .get("exclude")
        .map(|e| {
            e.split([',', ';', ' ', '\0'])
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let vmids: Vec<u32> = if call.flag("all") {
        model::list_vmids(&lab.state)
            .into_iter()
            .filter(|v| !exclude.contains(v))
            .collect()
    } else {
        call.get("vmid")
            .unwrap_or("")
            .split([',', ';', ' ', '\0'])
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u32>().map_err(|_| {
                    ApiError::param(
                        "vmid",
                        format!("value '{s}' does not look like a valid VM ID"),
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    if vmids.is_empty() {
        return Err(ApiError::param(
            "vmid",
            "property is missing and it is not optional",
        ));
    }
    let storage = call.get("storage").unwrap_or("local").to_string();
    let s = lookup_storage(&storage)?;
    if !s.supports("backup") {
        return Err(ApiError::server(format!(
            "storage '{storage}' does not support vzdump backups"
        )));
    }
    check_privs(
        &who,
        &format!("/storage/{storage}"),
        &["Datastore.AllocateSpace"],
        false,
    )?;
    for vmid in &vmids {
        check_privs(&who, &format!("/vms/{vmid}"), &["VM.Backup"], false)?;
        load(lab, *vmid)?;
    }
    let notes_template = call.get("notes-template").map(str::to_string);
    let protected = call.flag("protected");
    let mode = call.get("mode").unwrap_or("snapshot").to_string();
    let (id, lock_vmid) = match vmids.as_slice() {
        [one] => (one.to_string(), Some(*one)),
        _ => (String::new(), None),
    };
    let lab2 = Arc::clone(lab);
    let upid = lab
        .tasks
        .spawn("vzdump", &id, &call.user(), lock_vmid, move |ctx| {
            ctx.log(&format!(
                "INFO: starting new backup job: vzdump {} --storage {storage} --mode {mode} --compress zstd",
                vmids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
            ));
            let mut failed = Vec::new();
            for vmid in &vmids {
                if let Err(e) = backup_one(&lab2, *vmid, notes_template.as_deref(), protected, ctx) {
                    ctx.log(&format!("ERROR: Backup of VM {vmid} failed - {e:#}"));
                    failed.push(*vmid);
                }
            }
            if !failed.is_empty() {
                bail!("job errors");
            }
            ctx.log("INFO: Backup job finished successfully");
            Ok(())
        })?;
    Ok(Reply::data(json!(upid)))
}

fn backup_one(
    lab: &Lab,
    vmid: u32,
    notes_template: Option<&str>,
    protected: bool,
    ctx: &TaskCtx,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    ctx.log(&format!("INFO: Starting Backup of VM {vmid} (lxc)"));
    let cfg = model::load_conf(&lab.state, vmid)?.ok_or_else(|| {
        anyhow!(
            "Configuration file '{}' does not exist",
            model::conf_display(vmid)
        )
    })?;
    let dir = model::dump_dir(&lab.state);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = dir.join(backup_name(vmid));
    ctx.log(&format!(
        "INFO: CT Name: {}",
        cfg.current.get("hostname").unwrap_or("")
    ));
    ctx.log(&format!(
        "INFO: creating vzdump archive '{}'",
        out.display()
    ));
    set_lock(lab, vmid, Some("backup"))?;
    let result = lab
        .rt
        .vzdump(vmid, &out, &mut |l| ctx.log(&format!("INFO: {l}")));
    let _ = set_lock(lab, vmid, None);
    result?;
    // The config travels with the archive, as PVE stores etc/vzdump/pct.conf inside it.
    let mut saved = cfg.clone();
    saved.current.opts.remove("lock");
    saved.snapshots.clear();
    write_file_atomic(
        &sidecar(&out, ".pct.conf"),
        saved.render().as_bytes(),
        0o640,
    )?;
    if let Some(t) = notes_template {
        let notes = t
            .replace("{{guestname}}", cfg.current.get("hostname").unwrap_or(""))
            .replace("{{vmid}}", &vmid.to_string())
            .replace("{{node}}", NODE)
            .replace("{{cluster}}", "")
            .replace("\\n", "\n");
        write_file_atomic(&sidecar(&out, ".notes"), notes.as_bytes(), 0o644)?;
    }
    if protected {
        write_file_atomic(&sidecar(&out, ".protected"), b"", 0o644)?;
    }
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    ctx.log(&format!(
        "INFO: archive file size: {:.2}MB",
        size as f64 / MIB as f64
    ));
    ctx.log(&format!(
        "INFO: Finished Backup of VM {vmid} ({:.0}s)",
        started.elapsed().as_secs_f64()
    ));
    let log_path = out.to_string_lossy().replace(".tar.zst", ".log");
    crate::tasks::write_log_file(Path::new(&log_path), &ctx.lines())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prop_strings_render_like_pve() {
        let m = BTreeMap::from([
            ("name".to_string(), "eth0".to_string()),
            ("ip".to_string(), "dhcp".to_string()),
            ("bridge".to_string(), "vmbr0".to_string()),
        ]);
        assert_eq!(prop_string(&m, "name"), "name=eth0,bridge=vmbr0,ip=dhcp");
        let r = BTreeMap::from([
            ("volume".to_string(), "local-lvm:vm-101-disk-0".to_string()),
            ("size".to_string(), "8G".to_string()),
        ]);
        assert_eq!(prop_string(&r, "volume"), "local-lvm:vm-101-disk-0,size=8G");
    }

    #[test]
    fn backup_names() {
        let n = backup_name(101);
        assert!(n.starts_with("vzdump-lxc-101-"));
        assert!(n.ends_with(".tar.zst"));
        assert_eq!(super::super::node::backup_vmid(&n), Some(101));
    }
}
