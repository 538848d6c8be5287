//! One pure builder per endpoint: typed inputs in, the exact wire request out. Nothing here
//! does I/O, so tests can check every request the client can send against PVE's schema.
//! Builders assume validated input (`Client` validates first; see `validate`).

use std::fmt;

use super::auth::Secret;
use super::options::{ContentType, CreateCt, CtConfigUpdate, ResourceType, Vzdump};
use super::upid::Upid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parameters whose values are secrets: redacted in `Debug`, refused by the pvesh
/// transport (they would land in argv).
pub const SECRET_PARAMS: &[&str] = &["password"];

#[derive(Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: Method,
    /// After `/api2/json`, e.g. `/nodes/pve/lxc`.
    pub path: String,
    /// Wire strings: booleans `0`/`1`, indexed keys like `net0`.
    pub params: Vec<(String, String)>,
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        ApiRequest {
            method,
            path: path.into(),
            params: Vec::new(),
        }
    }

    pub fn param(mut self, key: &str, value: impl ToString) -> Self {
        self.params.push((key.to_string(), value.to_string()));
        self
    }

    pub fn opt(self, key: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.param(key, v),
            None => self,
        }
    }

    pub fn flag(self, key: &str, value: bool) -> Self {
        self.param(key, if value { "1" } else { "0" })
    }

    /// Sends `key=1` only when set; PVE's default for these flags is 0.
    pub fn flag_if(self, key: &str, value: bool) -> Self {
        if value {
            self.flag(key, true)
        } else {
            self
        }
    }

    pub fn get_param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_secret(&self) -> Option<&str> {
        self.params
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| SECRET_PARAMS.contains(k))
    }
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| {
                let v = if SECRET_PARAMS.contains(&k.as_str()) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("params", &params)
            .finish()
    }
}

/// Every builder below, by name; the schema test fails when one is missing from its list.
pub const BUILDERS: &[&str] = &[
    "access_ticket",
    "access_permissions",
    "version",
    "cluster_nextid",
    "cluster_resources",
    "nodes",
    "cluster_status",
    "node_bridges",
    "sdn_vnet",
    "node_status",
    "storage_list",
    "aplinfo_list",
    "aplinfo_download",
    "storage_content",
    "lxc_create",
    "lxc_list",
    "lxc_config_get",
    "lxc_config_put",
    "lxc_status_current",
    "lxc_start",
    "lxc_shutdown",
    "lxc_stop",
    "lxc_delete",
    "lxc_resize",
    "snapshot_list",
    "snapshot_create",
    "snapshot_rollback",
    "snapshot_delete",
    "vzdump",
    "lxc_interfaces",
    "task_status",
    "task_log",
];

fn ct_path(node: &str, vmid: u32) -> String {
    format!("/nodes/{node}/lxc/{vmid}")
}

/// `POST /access/ticket`: log in, or renew by passing the current ticket as `password`.
pub fn access_ticket(username: &str, password: &Secret) -> ApiRequest {
    ApiRequest::new(Method::Post, "/access/ticket")
        .param("username", username)
        .param("password", password.expose())
}

/// The caller's effective privileges, per ACL path, or on `path` only (for the pre-flights).
pub fn access_permissions(path: Option<&str>) -> ApiRequest {
    ApiRequest::new(Method::Get, "/access/permissions").opt("path", path)
}

pub fn version() -> ApiRequest {
    ApiRequest::new(Method::Get, "/version")
}

/// Without `vmid`: the next free id. With it: succeeds only if that id is free.
pub fn cluster_nextid(vmid: Option<u32>) -> ApiRequest {
    ApiRequest::new(Method::Get, "/cluster/nextid").opt("vmid", vmid)
}

pub fn cluster_resources(kind: Option<ResourceType>) -> ApiRequest {
    ApiRequest::new(Method::Get, "/cluster/resources").opt("type", kind.map(ResourceType::as_str))
}

pub fn nodes() -> ApiRequest {
    ApiRequest::new(Method::Get, "/nodes")
}

/// The node's bridges (as configured in /etc/network/interfaces).
pub fn node_bridges(node: &str) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("/nodes/{node}/network")).param("type", "any_bridge")
}

/// An SDN vnet's definition (its zone).
pub fn sdn_vnet(vnet: &str) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("/cluster/sdn/vnets/{vnet}"))
}

/// The cluster's members; the node answering is marked `local: 1`.
pub fn cluster_status() -> ApiRequest {
    ApiRequest::new(Method::Get, "/cluster/status")
}

pub fn node_status(node: &str) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("/nodes/{node}/status"))
}

/// Storages on `node`; an empty `content` means all of them.
pub fn storage_list(node: &str, content: &[ContentType]) -> ApiRequest {
    let content = (!content.is_empty()).then(|| {
        content
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    ApiRequest::new(Method::Get, format!("/nodes/{node}/storage")).opt("content", content)
}

pub fn aplinfo_list(node: &str) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("/nodes/{node}/aplinfo"))
}

/// Download an appliance template (a name from `aplinfo_list`) to `storage`.
pub fn aplinfo_download(node: &str, storage: &str, template: &str) -> ApiRequest {
    ApiRequest::new(Method::Post, format!("/nodes/{node}/aplinfo"))
        .param("storage", storage)
        .param("template", template)
}

pub fn storage_content(node: &str, storage: &str, content: Option<ContentType>) -> ApiRequest {
    ApiRequest::new(
        Method::Get,
        format!("/nodes/{node}/storage/{storage}/content"),
    )
    .opt("content", content.map(ContentType::as_str))
}

/// Always sends `unprivileged=1`: PVE 8 would otherwise create a privileged CT.
pub fn lxc_create(node: &str, ct: &CreateCt) -> ApiRequest {
    let tags = (!ct.tags.is_empty()).then(|| ct.tags.join(";"));
    let nameserver = (!ct.nameserver.is_empty()).then(|| ct.nameserver.join(" "));
    ApiRequest::new(Method::Post, format!("/nodes/{node}/lxc"))
        .param("vmid", ct.vmid)
        .param("ostemplate", &ct.ostemplate)
        .param("hostname", &ct.hostname)
        .flag("unprivileged", true)
        .param("cores", ct.cores)
        .param("memory", ct.memory)
        .param("swap", ct.swap)
        .param("rootfs", &ct.rootfs)
        .param("net0", &ct.net0)
        .param("features", ct.features)
        .opt("tags", tags)
        .opt("description", ct.description.as_deref())
        .flag("onboot", ct.onboot)
        .flag("start", ct.start)
        .opt("nameserver", nameserver)
        .opt("searchdomain", ct.searchdomain.as_deref())
        .opt("ssh-public-keys", ct.ssh_public_keys.as_deref())
        .opt("password", ct.password.as_ref().map(Secret::expose))
        .opt("timezone", ct.timezone.as_deref())
}

pub fn lxc_list(node: &str) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("/nodes/{node}/lxc"))
}

pub fn lxc_config_get(node: &str, vmid: u32) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("{}/config", ct_path(node, vmid)))
}

pub fn lxc_config_put(node: &str, vmid: u32, u: &CtConfigUpdate) -> ApiRequest {
    let mut r = ApiRequest::new(Method::Put, format!("{}/config", ct_path(node, vmid)))
        .opt("digest", u.digest.as_deref())
        .opt("hostname", u.hostname.as_deref())
        .opt("cores", u.cores)
        .opt("memory", u.memory)
        .opt("swap", u.swap)
        .opt("onboot", u.onboot.map(u8::from))
        .opt("tags", u.tags.as_ref().map(|t| t.join(";")))
        .opt("description", u.description.as_deref());
    for (i, n) in &u.net {
        r = r.param(&format!("net{i}"), n);
    }
    r.opt("features", u.features)
        .opt("nameserver", u.nameserver.as_ref().map(|n| n.join(" ")))
        .opt("searchdomain", u.searchdomain.as_deref())
        .opt("timezone", u.timezone.as_deref())
        .opt("delete", (!u.delete.is_empty()).then(|| u.delete.join(",")))
}

pub fn lxc_status_current(node: &str, vmid: u32) -> ApiRequest {
    ApiRequest::new(
        Method::Get,
        format!("{}/status/current", ct_path(node, vmid)),
    )
}

pub fn lxc_start(node: &str, vmid: u32) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        format!("{}/status/start", ct_path(node, vmid)),
    )
}

/// Clean shutdown; `timeout` in seconds (PVE's default is 60); with `force_stop` PVE kills
/// the CT when the timeout passes instead of failing the task.
pub fn lxc_shutdown(node: &str, vmid: u32, timeout: Option<u32>, force_stop: bool) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        format!("{}/status/shutdown", ct_path(node, vmid)),
    )
    .opt("timeout", timeout)
    .flag_if("forceStop", force_stop)
}

pub fn lxc_stop(node: &str, vmid: u32) -> ApiRequest {
    ApiRequest::new(Method::Post, format!("{}/status/stop", ct_path(node, vmid)))
}

/// `purge` also drops the CT from backup, replication and HA jobs; `force` destroys a
/// running CT.
pub fn lxc_delete(node: &str, vmid: u32, purge: bool, force: bool) -> ApiRequest {
    ApiRequest::new(Method::Delete, ct_path(node, vmid))
        .flag_if("purge", purge)
        .flag_if("force", force)
}

pub fn snapshot_list(node: &str, vmid: u32) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("{}/snapshot", ct_path(node, vmid)))
}

pub fn snapshot_create(node: &str, vmid: u32, name: &str, description: Option<&str>) -> ApiRequest {
    ApiRequest::new(Method::Post, format!("{}/snapshot", ct_path(node, vmid)))
        .param("snapname", name)
        .opt("description", description)
}

pub fn snapshot_rollback(node: &str, vmid: u32, name: &str, start: bool) -> ApiRequest {
    ApiRequest::new(
        Method::Post,
        format!("{}/snapshot/{name}/rollback", ct_path(node, vmid)),
    )
    .flag_if("start", start)
}

/// `PUT .../resize`: grows the root disk to `size_gib` (PVE never shrinks; answers a task).
pub fn lxc_resize(node: &str, vmid: u32, size_gib: u32) -> ApiRequest {
    ApiRequest::new(Method::Put, format!("{}/resize", ct_path(node, vmid)))
        .param("disk", "rootfs")
        .param("size", format!("{size_gib}G"))
}

pub fn snapshot_delete(node: &str, vmid: u32, name: &str, force: bool) -> ApiRequest {
    ApiRequest::new(
        Method::Delete,
        format!("{}/snapshot/{name}", ct_path(node, vmid)),
    )
    .flag_if("force", force)
}

pub fn vzdump(node: &str, v: &Vzdump) -> ApiRequest {
    ApiRequest::new(Method::Post, format!("/nodes/{node}/vzdump"))
        .param("vmid", v.vmid)
        .param("storage", &v.storage)
        .param("mode", v.mode.as_str())
        .param("compress", v.compress.as_str())
        .opt("notes-template", v.notes_template.as_deref())
        .flag_if("protected", v.protected)
}

pub fn lxc_interfaces(node: &str, vmid: u32) -> ApiRequest {
    ApiRequest::new(Method::Get, format!("{}/interfaces", ct_path(node, vmid)))
}

/// Always asks the node named in the UPID, as PVE requires.
pub fn task_status(upid: &Upid) -> ApiRequest {
    ApiRequest::new(
        Method::Get,
        format!("/nodes/{}/tasks/{}/status", upid.node, upid),
    )
}

/// Log lines from line `start` (0-based), at most `limit`.
pub fn task_log(upid: &Upid, start: u64, limit: u64) -> ApiRequest {
    ApiRequest::new(
        Method::Get,
        format!("/nodes/{}/tasks/{}/log", upid.node, upid),
    )
    .param("start", start)
    .param("limit", limit)
}
