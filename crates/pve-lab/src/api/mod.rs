//! The node's HTTPS API under `/api2/json`, answering as pveproxy does: authenticate (token or
//! ticket + CSRF), validate against the official schema before any handler, check the
//! endpoint's permissions, then run the handler on a blocking thread. Every request and its
//! verdict goes to the access log. `/lab/...` holds the lab's own admin (fault) endpoints.

mod admin;
pub mod cluster;
pub mod error;
mod lxc;
pub mod node;
mod params;
pub mod sdn;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::access_log::{redact, AccessEntry, AccessLog, Verdict};
use crate::auth::{check_permissions, Auth, AuthError, Forbidden, Identity};
use crate::faults::{http_fault_reason, Faults};
use crate::fsutil::now_rfc3339;
use crate::runtime::{LabNet, Runtime};
use crate::tasks::Tasks;
pub use error::ApiError;
use params::RawParams;

/// PVE major version the lab pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PveVersion {
    /// PVE 8.0 with pve-container 5.0.8: `pct exec` has no `--keep-env` yet.
    V8_0,
    V8,
    V9,
}

impl PveVersion {
    pub fn from_major(n: u8) -> Option<PveVersion> {
        match n {
            8 => Some(PveVersion::V8),
            9 => Some(PveVersion::V9),
            _ => None,
        }
    }
    /// `--pve` as given: `8`, `8.0` or `9`.
    pub fn from_arg(s: &str) -> Option<PveVersion> {
        match s {
            "8.0" => Some(PveVersion::V8_0),
            _ => s.parse().ok().and_then(PveVersion::from_major),
        }
    }
    pub fn arg(self) -> &'static str {
        match self {
            PveVersion::V8_0 => "8.0",
            PveVersion::V8 => "8",
            PveVersion::V9 => "9",
        }
    }
    pub fn schema_major(self) -> pve_schema::PveMajor {
        match self {
            PveVersion::V8_0 | PveVersion::V8 => pve_schema::PveMajor::V8,
            PveVersion::V9 => pve_schema::PveMajor::V9,
        }
    }
    pub fn version(self) -> &'static str {
        match self {
            PveVersion::V8_0 => "8.0.4",
            PveVersion::V8 => "8.4.1",
            PveVersion::V9 => "9.1.2",
        }
    }
    pub fn release(self) -> &'static str {
        match self {
            PveVersion::V8_0 => "8.0",
            PveVersion::V8 => "8.4",
            PveVersion::V9 => "9.1",
        }
    }
    pub fn repoid(self) -> &'static str {
        match self {
            PveVersion::V8_0 => "d258a813cfa6b390",
            PveVersion::V8 => "2a5fa54a8503f96d",
            PveVersion::V9 => "8c5c1e7b1d0e4a2f",
        }
    }
    /// The pve-container package of that release; `pct exec --keep-env` came with 5.0.9.
    pub fn pve_container(self) -> &'static str {
        match self {
            PveVersion::V8_0 => "5.0.8",
            PveVersion::V8 => "5.2.7",
            PveVersion::V9 => "6.0.18",
        }
    }
    /// PVE 9 creates unprivileged containers unless told otherwise; PVE 8 privileged.
    pub fn default_unprivileged(self) -> bool {
        self == PveVersion::V9
    }
}

/// Everything the daemon needs to answer requests.
pub struct Lab {
    pub state: PathBuf,
    pub pve: PveVersion,
    pub schema: pve_schema::Schema,
    pub rt: Runtime,
    pub net: LabNet,
    pub tasks: Arc<Tasks>,
    pub faults: Arc<Faults>,
    pub auth: Auth,
    pub access: AccessLog,
    /// Serializes read-modify-write of container configs.
    pub conf_lock: Mutex<()>,
    pub fingerprint: String,
    pub auth_fail_delay: Duration,
    pub started: Instant,
}

pub struct LabSettings {
    pub state: PathBuf,
    pub cache: PathBuf,
    pub pve: PveVersion,
    pub schema_path: Option<PathBuf>,
    pub net: LabNet,
    pub fingerprint: String,
    pub auth_fail_delay: Duration,
}

impl Lab {
    pub fn new(s: LabSettings) -> Result<Lab> {
        let schema_file = match &s.schema_path {
            Some(p) => p.clone(),
            None => pve_schema::find_schema_file(s.pve.schema_major()).with_context(|| {
                format!(
                    "cannot find the PVE {} API schema\nhelp: pass --schema PATH (shared/pve-api/apidata{}.json)",
                    s.pve.release(),
                    if s.pve == PveVersion::V9 { "-pve9" } else { "" }
                )
            })?,
        };
        let schema = pve_schema::Schema::load(&schema_file)
            .with_context(|| format!("loading the API schema {}", schema_file.display()))?;
        let faults = Arc::new(Faults::default());
        let tasks = Arc::new(Tasks::new(
            &s.state,
            crate::model::NODE,
            Arc::clone(&faults),
        ));
        Ok(Lab {
            rt: Runtime::new(s.state.clone(), s.cache.clone(), s.net.clone()),
            auth: Auth::new(&s.state),
            access: AccessLog::new(&s.state),
            state: s.state,
            pve: s.pve,
            schema,
            net: s.net,
            tasks,
            faults,
            conf_lock: Mutex::new(()),
            fingerprint: s.fingerprint,
            auth_fail_delay: s.auth_fail_delay,
            started: Instant::now(),
        })
    }

    pub fn state(&self) -> &Path {
        &self.state
    }
}

/// One validated, authorized request as handlers see it.
pub struct Call {
    pub method: String,
    pub path: String,
    pub template: String,
    /// Path and body parameters merged, as strings (JSON booleans become 0/1).
    pub params: BTreeMap<String, String>,
    /// `None` only on the public endpoints (ticket login).
    pub who: Option<Identity>,
}

impl Call {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1") | Some("true"))
    }
    pub fn who(&self) -> Result<&Identity, ApiError> {
        self.who
            .as_ref()
            .ok_or(ApiError::Unauthorized(AuthError::NoTicket))
    }
    pub fn user(&self) -> String {
        self.who
            .as_ref()
            .map(|w| w.auth_id.clone())
            .unwrap_or_else(|| "root@pam".into())
    }
    pub fn vmid(&self) -> Result<u32, ApiError> {
        let raw = self
            .get("vmid")
            .ok_or_else(|| ApiError::param("vmid", "property is missing and it is not optional"))?;
        raw.parse().map_err(|_| {
            ApiError::param(
                "vmid",
                format!("type check ('integer') failed - got '{raw}'"),
            )
        })
    }
    pub fn u64(&self, k: &str) -> Result<Option<u64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.trim_start_matches('+').parse().map(Some).map_err(|_| {
                ApiError::param(k, format!("type check ('integer') failed - got '{v}'"))
            }),
        }
    }
}

/// A handler's success: `data`, plus `total` for paged lists (task log).
pub struct Reply {
    pub data: Value,
    pub total: Option<u64>,
}

impl Reply {
    pub fn data(data: Value) -> Reply {
        Reply { data, total: None }
    }
    pub fn null() -> Reply {
        Reply::data(Value::Null)
    }
}

pub type ApiResult = Result<Reply, ApiError>;

/// Boots a container from its config inside a task (used for onboot at daemon start).
pub fn start_container(lab: &Lab, vmid: u32, ctx: &crate::tasks::TaskCtx) -> Result<()> {
    lxc::start_ct(lab, vmid, ctx)
}

pub fn router(lab: Arc<Lab>) -> axum::Router {
    axum::Router::new()
        .route("/api2/json", axum::routing::any(api2))
        .route("/api2/json/", axum::routing::any(api2))
        .route("/api2/json/{*rest}", axum::routing::any(api2))
        .route("/lab/{*rest}", axum::routing::any(admin::lab_admin))
        .fallback(not_found)
        .with_state(lab)
}

async fn not_found() -> Response {
    respond(404, "Not Found", None, None)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    lab: Arc<Lab>,
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    handle: axum_server::Handle<SocketAddr>,
) -> Result<()> {
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
    axum_server::bind_rustls(addr, config)
        .handle(handle)
        .serve(router(lab).into_make_service())
        .await
        .with_context(|| format!("serving HTTPS on {addr}"))
}

/// A response with PVE's reason phrase in the status line.
pub(crate) fn respond(
    status: u16,
    reason: &str,
    body: Option<Value>,
    total: Option<u64>,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(code);
    // The status line carries one line of visible text; anything else would be refused by hyper.
    let clean: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if code.canonical_reason() != Some(clean.as_str()) && !clean.is_empty() {
        if let Ok(rp) = hyper::ext::ReasonPhrase::try_from(clean.into_bytes()) {
            builder = builder.extension(rp);
        }
    }
    let body = match (body, total) {
        (Some(mut v), Some(t)) => {
            v["total"] = json!(t);
            Body::from(v.to_string())
        }
        (Some(v), None) => Body::from(v.to_string()),
        (None, _) => Body::empty(),
    };
    builder
        .header("content-type", "application/json;charset=UTF-8")
        .header("cache-control", "max-age=0")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub(crate) fn error_response(e: &ApiError) -> Response {
    respond(e.status(), &e.reason(), e.body(), None)
}

/// Finds the credentials of a request; `needs_csrf` for non-GET ticket requests.
pub(crate) fn authenticate(
    lab: &Lab,
    headers: &HeaderMap,
    needs_csrf: bool,
) -> Result<Identity, AuthError> {
    if let Some(h) = headers.get("authorization") {
        let v = h.to_str().map_err(|_| AuthError::Failed)?;
        return lab.auth.verify_token_header(v);
    }
    let ticket = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix("PVEAuthCookie=")
                .map(params::percent_decode)
        });
    let Some(ticket) = ticket else {
        return Err(AuthError::NoTicket);
    };
    let csrf = headers
        .get("csrfpreventiontoken")
        .and_then(|v| v.to_str().ok());
    lab.auth.verify_ticket_request(&ticket, csrf, needs_csrf)
}

struct Logged {
    method: String,
    path: String,
    params: BTreeMap<String, String>,
    auth_id: Option<String>,
}

impl Logged {
    fn write(
        &self,
        lab: &Lab,
        status: u16,
        verdict: Verdict,
        stage: &str,
        err: Option<&ApiError>,
        fault: Option<String>,
    ) {
        lab.access.append(&AccessEntry {
            ts: now_rfc3339(),
            method: self.method.clone(),
            path: self.path.clone(),
            params: redact(&self.params),
            status,
            verdict,
            stage: stage.to_string(),
            message: err.map(|e| e.reason()),
            errors: err.and_then(|e| e.errors()),
            auth_id: self.auth_id.clone(),
            fault,
        });
    }
}

const MAX_BODY: usize = 16 * 1024 * 1024;

async fn api2(State(lab): State<Arc<Lab>>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let raw_path = req.uri().path().to_string();
    let rel = params::percent_decode(raw_path.strip_prefix("/api2/json").unwrap_or(""));
    let rel = if rel.is_empty() { "/".to_string() } else { rel };
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body: Bytes = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return respond(413, "Request Entity Too Large", None, None);
        }
    };
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut log = Logged {
        method: method.clone(),
        path: rel.clone(),
        params: BTreeMap::new(),
        auth_id: None,
    };
    let raw = match RawParams::parse(&query, content_type, &body) {
        Ok(r) => r,
        Err(e) => {
            log.write(
                &lab,
                e.status(),
                Verdict::Rejected,
                "schema",
                Some(&e),
                None,
            );
            return error_response(&e);
        }
    };
    log.params = raw.merged();

    // pveproxy lets these through without credentials.
    let public = (rel == "/access/ticket" && (method == "GET" || method == "POST"))
        || (rel == "/access/domains" && method == "GET");
    let who = if public {
        None
    } else {
        match authenticate(&lab, &headers, method != "GET") {
            Ok(who) => Some(who),
            Err(e) => {
                // PVE delays every failed authentication to slow down guessing.
                tokio::time::sleep(lab.auth_fail_delay).await;
                let e = ApiError::Unauthorized(e);
                log.write(&lab, 401, Verdict::Rejected, "auth", Some(&e), None);
                return error_response(&e);
            }
        }
    };
    log.auth_id = who.as_ref().map(|w| w.auth_id.clone());

    let api_path = raw_path.strip_prefix("/api2/json").unwrap_or("/");
    let api_path = if api_path.is_empty() { "/" } else { api_path };
    let validated = match raw.validate(&lab.schema, &method, api_path) {
        Ok(v) => v,
        Err(rej) => {
            let e = ApiError::Rejected(rej);
            log.write(
                &lab,
                e.status(),
                Verdict::Rejected,
                "schema",
                Some(&e),
                None,
            );
            return error_response(&e);
        }
    };
    // The schema check already refused body values that conflict with the URI.
    let mut merged = raw.merged();
    merged.extend(validated.path_params.clone());

    if let Some(status) = lab.faults.take_http(&rel) {
        let e = ApiError::Status {
            code: status,
            message: http_fault_reason(status).to_string(),
        };
        log.write(
            &lab,
            status,
            Verdict::Ok,
            "fault",
            Some(&e),
            Some(format!("http {status}")),
        );
        return respond(status, http_fault_reason(status), None, None);
    }

    if let Some(who) = &who {
        let endpoint = lab.schema.endpoint(&method, &validated.template);
        let allowed = match endpoint {
            Some(ep) if who.is_token() && !ep.allowtoken => Err(Forbidden(
                "API tokens are not allowed to call this endpoint".into(),
            )),
            Some(ep) => check_permissions(Some(&ep.permissions), who, &merged),
            None => Ok(()),
        };
        if let Err(f) = allowed {
            let e = ApiError::Forbidden(f);
            log.write(&lab, 403, Verdict::Rejected, "permission", Some(&e), None);
            return error_response(&e);
        }
    }

    let call = Call {
        method: method.clone(),
        path: rel.clone(),
        template: validated.template.clone(),
        params: merged,
        who,
    };
    let lab2 = Arc::clone(&lab);
    let result = tokio::task::spawn_blocking(move || dispatch(&lab2, &call))
        .await
        .unwrap_or_else(|e| Err(ApiError::server(format!("internal error: {e}"))));
    match result {
        Ok(reply) => {
            log.write(&lab, 200, Verdict::Ok, "handler", None, None);
            respond(200, "OK", Some(json!({ "data": reply.data })), reply.total)
        }
        Err(e) => {
            // A handler's own parameter, credential and privilege checks are still PVE's
            // refusals, so they count as rejections.
            let (verdict, stage) = match e {
                ApiError::Params(_) => (Verdict::Rejected, "schema"),
                ApiError::Unauthorized(_) => (Verdict::Rejected, "auth"),
                ApiError::Forbidden(_) => (Verdict::Rejected, "permission"),
                _ => (Verdict::Ok, "handler"),
            };
            log.write(&lab, e.status(), verdict, stage, Some(&e), None);
            error_response(&e)
        }
    }
}

/// Routes a validated call to its handler by schema template.
fn dispatch(lab: &Arc<Lab>, call: &Call) -> ApiResult {
    if let Some(node) = call.params.get("node") {
        if node != crate::model::NODE && node != "localhost" {
            return match cluster::peer(&lab.state).filter(|p| p == node) {
                Some(peer) => cluster::dispatch_peer(lab, call, &peer),
                None => Err(ApiError::server(format!("no such cluster node '{node}'"))),
            };
        }
    }
    let m = call.method.as_str();
    let t = call.template.as_str();
    match (m, t) {
        ("POST", "/access/ticket") => node::ticket(lab, call),
        ("GET", "/access/ticket") => Ok(Reply::null()),
        ("GET", "/access/domains") => node::domains(),
        ("GET", "/access/permissions") => node::permissions(call),
        ("GET", "/version") => node::version(lab),
        ("GET", "/cluster/nextid") => node::nextid(lab, call),
        ("GET", "/cluster/resources") => node::resources(lab, call),
        ("GET", "/cluster/status") => node::cluster_status(lab),
        ("GET", "/cluster/sdn/vnets") => sdn::list(call, &lab.state),
        ("GET", "/cluster/sdn/vnets/{vnet}") => sdn::index(call, &lab.state),
        ("GET", "/nodes") => node::nodes(lab),
        ("GET", "/nodes/{node}") => node::node_index(),
        ("GET", "/nodes/{node}/status") => node::node_status(lab),
        ("GET", "/nodes/{node}/version") => node::version(lab),
        ("GET", "/nodes/{node}/network") => node::network(lab, call),
        ("GET", "/storage") => node::storage_config(lab),
        ("GET", "/nodes/{node}/storage") => node::storage_list(lab, call),
        ("GET", "/nodes/{node}/storage/{storage}/status") => node::storage_status(lab, call),
        ("GET", "/nodes/{node}/storage/{storage}/content") => node::storage_content(lab, call),
        ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}") => {
            node::storage_delete(lab, call)
        }
        ("GET", "/nodes/{node}/aplinfo") => node::aplinfo(lab),
        ("POST", "/nodes/{node}/aplinfo") => node::aplinfo_download(lab, call),
        ("GET", "/nodes/{node}/tasks") => node::task_list(lab, call),
        ("GET", "/nodes/{node}/tasks/{upid}") => node::task_index(lab, call),
        ("GET", "/nodes/{node}/tasks/{upid}/status") => node::task_status(lab, call),
        ("GET", "/nodes/{node}/tasks/{upid}/log") => node::task_log(lab, call),
        ("DELETE", "/nodes/{node}/tasks/{upid}") => node::task_stop(lab, call),
        ("POST", "/nodes/{node}/vzdump") => lxc::vzdump(lab, call),
        ("GET", "/nodes/{node}/lxc") => lxc::list(lab, call),
        ("POST", "/nodes/{node}/lxc") => lxc::create(lab, call),
        ("GET", "/nodes/{node}/lxc/{vmid}") => lxc::index(lab, call),
        ("DELETE", "/nodes/{node}/lxc/{vmid}") => lxc::destroy(lab, call),
        ("GET", "/nodes/{node}/lxc/{vmid}/config") => lxc::config_get(lab, call),
        ("PUT", "/nodes/{node}/lxc/{vmid}/config") => lxc::config_put(lab, call),
        ("GET", "/nodes/{node}/lxc/{vmid}/pending") => lxc::pending(lab, call),
        ("PUT", "/nodes/{node}/lxc/{vmid}/resize") => lxc::resize(lab, call),
        ("GET", "/nodes/{node}/lxc/{vmid}/status") => lxc::status_index(lab, call),
        ("GET", "/nodes/{node}/lxc/{vmid}/status/current") => lxc::status_current(lab, call),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/start") => lxc::power(lab, call, "vzstart"),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/stop") => lxc::power(lab, call, "vzstop"),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/shutdown") => lxc::power(lab, call, "vzshutdown"),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/reboot") => lxc::power(lab, call, "vzreboot"),
        ("GET", "/nodes/{node}/lxc/{vmid}/interfaces") => lxc::interfaces(lab, call),
        ("POST", "/nodes/{node}/lxc/{vmid}/migrate") => {
            cluster::migrate(lab, call, crate::model::NODE)
        }
        ("GET", "/nodes/{node}/lxc/{vmid}/snapshot") => lxc::snapshot_list(lab, call),
        ("POST", "/nodes/{node}/lxc/{vmid}/snapshot") => lxc::snapshot_create(lab, call),
        ("GET", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}") => lxc::snapshot_index(lab, call),
        ("DELETE", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}") => {
            lxc::snapshot_delete(lab, call)
        }
        ("GET", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config") => {
            lxc::snapshot_config(lab, call)
        }
        ("POST", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback") => {
            lxc::snapshot_rollback(lab, call)
        }
        _ => Err(ApiError::Status {
            code: 501,
            message: format!("Method '{m} {t}' not implemented by pve-lab"),
        }),
    }
}
