//! `/lab/...`: the lab's own admin endpoints (fault injection), outside `/api2/json` so no PVE
//! client can hit them by accident. Same authentication as the API, but only a caller with
//! every privilege (the root token or a root ticket) may use them. All calls are access-logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::json;

use super::params::RawParams;
use super::{authenticate, error_response, respond, ApiError, Lab};
use crate::access_log::{redact, AccessEntry, Verdict};
use crate::auth::Forbidden;
use crate::faults::Fault;
use crate::fsutil::now_rfc3339;

fn bad(param: &str, value: &str, problem: &str, help: &str) -> ApiError {
    ApiError::Status {
        code: 400,
        message: format!("{param} '{value}' {problem} (help: {help})"),
    }
}

fn need<'a>(p: &'a BTreeMap<String, String>, key: &str, help: &str) -> Result<&'a str, ApiError> {
    p.get(key)
        .map(String::as_str)
        .ok_or_else(|| ApiError::Status {
            code: 400,
            message: format!("missing parameter '{key}' (help: {help})"),
        })
}

fn number<T: std::str::FromStr>(
    p: &BTreeMap<String, String>,
    key: &str,
    default: Option<T>,
    help: &str,
) -> Result<T, ApiError> {
    match p.get(key) {
        Some(v) => v.parse().map_err(|_| bad(key, v, "is not a number", help)),
        None => default.ok_or_else(|| ApiError::Status {
            code: 400,
            message: format!("missing parameter '{key}' (help: {help})"),
        }),
    }
}

fn vmid_of(lab: &Lab, p: &BTreeMap<String, String>) -> Result<u32, ApiError> {
    let vmid: u32 = number(p, "vmid", None, "pass the container's VMID, e.g. vmid=101")?;
    if crate::model::load_conf(&lab.state, vmid)?.is_none() {
        return Err(ApiError::server(format!(
            "Configuration file '{}' does not exist",
            crate::model::conf_display(vmid)
        )));
    }
    Ok(vmid)
}

fn handle(
    lab: &Lab,
    method: &str,
    what: &str,
    p: &BTreeMap<String, String>,
) -> Result<serde_json::Value, ApiError> {
    let task_help = "task types are PVE's: vzcreate, vzstart, vzstop, vzshutdown, vzdestroy, vzsnapshot, vzrollback, vzdump, download ...";
    match (method, what) {
        ("GET", "faults") => Ok(serde_json::to_value(lab.faults.list()).unwrap_or_default()),
        ("POST", "fault/fail-task") => {
            let task_type = need(p, "type", task_help)?.to_string();
            let count = number(p, "count", Some(1u32), "count is how many tasks fail")?;
            let exitstatus = need(p, "exitstatus", "the text the failed task reports, e.g. exitstatus='startup for container '101' failed'")?.to_string();
            lab.faults.arm(Fault::FailTask {
                task_type,
                count,
                exitstatus,
            });
            Ok(json!(null))
        }
        ("POST", "fault/delay-task") => {
            let task_type = need(p, "type", task_help)?.to_string();
            let ms = number(
                p,
                "ms",
                None,
                "ms is the delay in milliseconds, e.g. ms=2000",
            )?;
            lab.faults.arm(Fault::DelayTask { task_type, ms });
            Ok(json!(null))
        }
        ("POST", "fault/http") => {
            let status: u16 = number(
                p,
                "status",
                None,
                "status is an HTTP status, e.g. 500 or 596",
            )?;
            if !(400..=599).contains(&status) {
                return Err(bad(
                    "status",
                    &status.to_string(),
                    "is not an error status",
                    "use 400-599, e.g. 500 or 596",
                ));
            }
            let count = number(p, "count", Some(1u32), "count is how many requests fail")?;
            let path_prefix = p.get("path-prefix").cloned();
            if let Some(pp) = &path_prefix {
                if !pp.starts_with('/') {
                    return Err(bad(
                        "path-prefix",
                        pp,
                        "is not an API path",
                        "use a path below /api2/json, e.g. /nodes/pve/lxc",
                    ));
                }
            }
            lab.faults.arm(Fault::Http {
                status,
                count,
                path_prefix,
            });
            Ok(json!(null))
        }
        ("POST", "fault/fill-disk") => {
            let vmid = vmid_of(lab, p)?;
            lab.rt.fill_disk(vmid)?;
            Ok(json!(null))
        }
        ("POST", "fault/clear-disk") => {
            let vmid = vmid_of(lab, p)?;
            lab.rt.clear_fill(vmid)?;
            Ok(json!(null))
        }
        ("POST", "fault/kill-init") => {
            let vmid = vmid_of(lab, p)?;
            lab.rt.kill_init(vmid)?;
            Ok(json!(null))
        }
        ("POST", "fault/block-host") => {
            lab.rt.block_host(true)?;
            Ok(json!(null))
        }
        ("POST", "fault/unblock-host") => {
            lab.rt.block_host(false)?;
            Ok(json!(null))
        }
        ("POST", "fault/renumber-dhcp") => {
            let moved = lab.rt.dhcp_renumber_all()?;
            Ok(json!(moved
                .iter()
                .map(|(v, old, new)| json!({"vmid": v, "old": old.to_string(), "new": new.to_string()}))
                .collect::<Vec<_>>()))
        }
        ("POST", "fault/clear") => {
            lab.faults.clear();
            Ok(json!(null))
        }
        _ => Err(ApiError::Status {
            code: 501,
            message: format!("Method '{method} /lab/{what}' not implemented"),
        }),
    }
}

pub(super) async fn lab_admin(State(lab): State<Arc<Lab>>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let what = path
        .trim_start_matches("/lab/")
        .trim_end_matches('/')
        .to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let params = RawParams::parse(&query, &ct, &body)
        .map(|r| r.merged())
        .unwrap_or_default();
    let who = authenticate(&lab, &headers, method != "GET");
    let auth_id = who.as_ref().ok().map(|w| w.auth_id.clone());
    let (result, verdict, stage) = match who {
        Err(e) => {
            tokio::time::sleep(lab.auth_fail_delay).await;
            (Err(ApiError::Unauthorized(e)), Verdict::Rejected, "auth")
        }
        Ok(w) if !w.has_all_privs() => (
            Err(ApiError::Forbidden(Forbidden(format!(
                "{}, lab admin needs the root token",
                path
            )))),
            Verdict::Rejected,
            "permission",
        ),
        Ok(_) => {
            let lab2 = Arc::clone(&lab);
            let (m, w, p) = (method.clone(), what.clone(), params.clone());
            let r = tokio::task::spawn_blocking(move || handle(&lab2, &m, &w, &p))
                .await
                .unwrap_or_else(|e| Err(ApiError::server(format!("internal error: {e}"))));
            (r, Verdict::Ok, "handler")
        }
    };
    let status = result
        .as_ref()
        .map(|_| 200)
        .unwrap_or_else(ApiError::status);
    lab.access.append(&AccessEntry {
        ts: now_rfc3339(),
        method: method.clone(),
        path: path.clone(),
        params: redact(&params),
        status,
        verdict,
        stage: stage.to_string(),
        message: result.as_ref().err().map(ApiError::reason),
        errors: None,
        auth_id,
        fault: Some(format!("admin {what}")),
    });
    match result {
        Ok(data) => respond(200, "OK", Some(json!({ "data": data })), None),
        Err(e) => error_response(&e),
    }
}
