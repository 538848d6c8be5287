//! The HTTP face (`vikunja web`): Vikunja's /health and /api/v1/info, a small tasks API with
//! attachments, login + API tokens, and two routes real Vikunja does NOT have: /api/v1/slow
//! (tests use it to hold a request in flight across a blue-green switch) and /api/v1/kv/KEY
//! (the key-value store, in memory or in Redis with `keyvalue.type: redis`, shown to tests).
//! Differences from Vikunja, on purpose: the tasks API needs no auth, and an attachment is the
//! raw request body (name in `?name=`), not multipart. SIGTERM drains in-flight requests for up
//! to 30 s, like Go's `http.Server.Shutdown`.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::build_info::BuildInfo;
use crate::config::Config;
use crate::db::Database;
use crate::error::FixtureError;
use crate::{auth, migrations, model};

const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const SLOW_MAX_MS: u64 = 30_000;
/// Vikunja's default service.jwtttl: three days.
const SESSION_TTL_SECS: i64 = 259_200;
/// After an upload passes files.maxsize we keep reading (and discarding) up to this much more,
/// so the client gets its 413 instead of a connection reset (nginx's lingering close, in small).
const DRAIN_CAP: u64 = 64 << 20;

struct AppState {
    info: BuildInfo,
    config: Config,
    db: Mutex<Database>,
    secret: Vec<u8>,
    kv: KeyValue,
}

/// Vikunja's key-value store: in memory, or a Redis server (`keyvalue.type: redis`).
enum KeyValue {
    Memory(Mutex<HashMap<String, String>>),
    Redis(redis::Client),
}

impl KeyValue {
    fn open(config: &Config) -> anyhow::Result<Self> {
        let Some(r) = &config.redis else {
            return Ok(KeyValue::Memory(Mutex::new(HashMap::new())));
        };
        // The password goes into the URL's user info, percent-encoded.
        let pw: String = r
            .password
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let url = format!("redis://:{pw}@{}/{}", r.host, r.db);
        let client = redis::Client::open(url).context("redis.host is not a HOST:PORT address")?;
        Ok(KeyValue::Redis(client))
    }

    fn describe(&self) -> &'static str {
        match self {
            KeyValue::Memory(_) => "memory",
            KeyValue::Redis(_) => "redis",
        }
    }

    fn connection(client: &redis::Client) -> anyhow::Result<redis::Connection> {
        client
            .get_connection_with_timeout(Duration::from_secs(5))
            .context("connecting to redis")
    }

    fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self {
            KeyValue::Memory(m) => Ok(m.lock().map_err(|_| anyhow!("poisoned"))?.get(key).cloned()),
            KeyValue::Redis(c) => Ok(redis::cmd("GET")
                .arg(key)
                .query(&mut Self::connection(c)?)
                .context("redis GET")?),
        }
    }

    fn set(&self, key: &str, value: &str) -> anyhow::Result<()> {
        match self {
            KeyValue::Memory(m) => {
                m.lock()
                    .map_err(|_| anyhow!("poisoned"))?
                    .insert(key.to_string(), value.to_string());
                Ok(())
            }
            KeyValue::Redis(c) => Ok(redis::cmd("SET")
                .arg(key)
                .arg(value)
                .query(&mut Self::connection(c)?)
                .context("redis SET")?),
        }
    }

    fn ping(&self) -> anyhow::Result<()> {
        match self {
            KeyValue::Memory(_) => Ok(()),
            KeyValue::Redis(c) => {
                let pong: String = redis::cmd("PING")
                    .query(&mut Self::connection(c)?)
                    .context("redis PING")?;
                anyhow::ensure!(pong == "PONG", "redis answered {pong:?} to PING");
                Ok(())
            }
        }
    }
}

type Shared = Arc<AppState>;

/// Starts the server and returns once it has shut down.
pub fn run(info: BuildInfo, config: Config) -> anyhow::Result<ExitCode> {
    config.require_public_url()?;
    let addr = config.listen_addr()?;
    let mut db = Database::connect(&config.database)?;
    let applied = migrations::migrate(&mut db, &info)?;
    for id in &applied {
        println!("Ran migration {id}");
    }
    std::fs::create_dir_all(&config.files_basepath).with_context(|| {
        format!(
            "creating files.basepath {}",
            config.files_basepath.display()
        )
    })?;
    let secret = match &config.secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => {
            println!(
                "WARNING: service.secret is not set; using a random one, so sessions end at restart"
            );
            auth::random_hex(32).into_bytes()
        }
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|source| FixtureError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .context("making the listener non-blocking")?;
    println!(
        "Vikunja (fixture) {} starting: database {}, files in {}",
        info.version,
        config.database.describe(),
        config.files_basepath.display()
    );
    let kv = KeyValue::open(&config)?;
    kv.ping()?;
    println!("key-value store: {}", kv.describe());
    let state = Arc::new(AppState {
        info,
        config,
        db: Mutex::new(db),
        secret,
        kv,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(listener, state.clone()));
    // A blocking database call may outlive a timed-out shutdown; do not wait on it forever.
    runtime.shutdown_timeout(Duration::from_secs(1));
    // The postgres client owns a runtime of its own, which must not be dropped inside ours:
    // this clone makes sure the last reference goes here, outside.
    drop(state);
    result
}

async fn serve(listener: std::net::TcpListener, state: Shared) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered before we announce readiness, so an early SIGTERM is never the default (fatal) one.
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        println!("{name} received: no new connections, finishing in-flight requests");
        let _ = stop_tx.send(true);
    });

    let listener = tokio::net::TcpListener::from_std(listener).context("adopting the listener")?;
    let local = listener
        .local_addr()
        .context("reading the listen address")?;
    println!("Listening on http://{local}");

    let mut on_stop = stop_rx.clone();
    let graceful = async move {
        let _ = on_stop.wait_for(|stop| *stop).await;
    };
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(graceful);
    let mut on_stop = stop_rx;
    let deadline = async move {
        let _ = on_stop.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => {
            result.context("serving HTTP")?;
            println!("Shutdown complete");
            Ok(ExitCode::SUCCESS)
        }
        _ = deadline => {
            println!("Shutdown timed out after {} s; dropping the requests still running", SHUTDOWN_GRACE.as_secs());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/api/v1/info", get(info))
        .route("/api/v1/tasks", put(create_task).get(list_tasks))
        .route("/api/v1/tasks/{id}", get(get_task))
        .route(
            "/api/v1/tasks/{id}/attachments",
            // The size check is ours (files.maxsize, 413), not axum's fixed 2 MB default.
            put(upload_attachment).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/tasks/{id}/attachments/{aid}",
            get(download_attachment),
        )
        .route("/api/v1/login", post(login))
        .route("/api/v1/tokens", put(create_token))
        .route("/api/v1/user", get(current_user))
        .route("/api/v1/slow", get(slow))
        .route("/api/v1/kv/{key}", put(put_kv).get(get_kv))
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One line per request on stdout; the path only, since query strings are the client's business.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    println!(
        "{} {} {} {} {:.1}ms",
        model::now_rfc3339(),
        method,
        path,
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// Vikunja's error body: `{"code": N, "message": "..."}`.
struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn task_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 4002, "This task does not exist.")
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            11,
            "missing, malformed, expired or otherwise invalid token provided",
        )
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 2002, message)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        // The chain goes to the log only; clients learn nothing about the internals.
        println!("ERROR: {err:#}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            0,
            "Internal server error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

/// Runs blocking database work off the async threads, under the one connection's lock.
async fn with_db<T, F>(state: &Shared, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Database, &AppState) -> anyhow::Result<T> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut db = state
            .db
            .lock()
            .map_err(|_| anyhow!("the database lock was poisoned by an earlier panic"))?;
        work(&mut db, &state)
    })
    .await
    .map_err(|e| anyhow!("database worker failed: {e}"))?
    .map_err(ApiError::from)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid model provided: {e}")))
}

fn parse_id(text: &str) -> Option<i64> {
    text.parse().ok().filter(|id| *id > 0)
}

async fn index(State(s): State<Shared>) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html><head><title>Vikunja</title></head>\
         <body><h1>Vikunja (fixture) {}</h1><p>A stand-in for Vikunja used by Launch's tests.</p></body></html>\n",
        s.info.version
    ))
}

async fn health(State(s): State<Shared>) -> Response {
    if s.info.broken {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("fixture build {} is marked broken", s.info.version),
        )
            .into_response();
    }
    if with_db(&s, |db, _| db.ping()).await.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "database ping failed").into_response();
    }
    match with_db(&s, |_, st| st.kv.ping()).await {
        Ok(()) => (StatusCode::OK, "OK").into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "key-value store ping failed",
        )
            .into_response(),
    }
}

/// Not a Vikunja route: the key-value store made visible, so tests can write to Redis through
/// the app and read it back after an update or a restore. Keys are 1-64 of [A-Za-z0-9_-].
fn kv_key(key: &str) -> Result<String, ApiError> {
    if (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(format!("fixture:{key}"))
    } else {
        Err(ApiError::bad_request(
            "a key is 1-64 of letters, digits, _ and -",
        ))
    }
}

async fn put_kv(
    State(s): State<Shared>,
    Path(key): Path<String>,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    let k = kv_key(&key)?;
    let value = body.clone();
    with_db(&s, move |_, st| st.kv.set(&k, &value)).await?;
    Ok(Json(json!({"key": key, "value": body})))
}

async fn get_kv(
    State(s): State<Shared>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let k = kv_key(&key)?;
    match with_db(&s, move |_, st| st.kv.get(&k)).await? {
        Some(value) => Ok(Json(json!({"key": key, "value": value}))),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, 404, "no such key")),
    }
}

async fn info(State(s): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({
        "version": s.info.version,
        "frontend_url": s.config.public_url,
        "motd": "",
        "max_file_size": s.config.files_maxsize,
        "keyvalue": s.kv.describe(),
        "concurrent_writes": s.config.concurrent_writes(),
        "task_attachments_enabled": true,
        "caldav_enabled": false,
        "webhooks_enabled": false,
        "auth": {
            "local": {"enabled": true, "registration_enabled": false},
            "ldap": {"enabled": false},
            "openid_connect": {"enabled": false, "providers": []}
        }
    }))
}

#[derive(Deserialize)]
struct NewTask {
    #[serde(default)]
    title: String,
    priority: Option<i64>,
}

async fn create_task(State(s): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let new: NewTask = parse_json(&body)?;
    let title = new.title.trim().to_string();
    if title.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            4001,
            "Task title cannot be empty.",
        ));
    }
    if title.chars().count() > 250 {
        return Err(ApiError::bad_request(
            "Task title is too long (at most 250 characters).",
        ));
    }
    let task = with_db(&s, move |db, st| {
        model::create_task(db, &st.info, &title, new.priority)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(task)).into_response())
}

async fn list_tasks(State(s): State<Shared>) -> Result<Json<Vec<model::Task>>, ApiError> {
    Ok(Json(
        with_db(&s, |db, st| model::list_tasks(db, &st.info)).await?,
    ))
}

async fn get_task(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<model::Task>, ApiError> {
    let id = parse_id(&id).ok_or_else(ApiError::task_not_found)?;
    with_db(&s, move |db, st| model::get_task(db, &st.info, id))
        .await?
        .map(Json)
        .ok_or_else(ApiError::task_not_found)
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

/// Reads at most `limit` bytes; `None` when the body is larger (the rest is drained up to
/// DRAIN_CAP so the 413 reaches the client).
async fn read_limited(mut body: Body, limit: u64) -> anyhow::Result<Option<Vec<u8>>> {
    use http_body_util::BodyExt;
    let mut data = Vec::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the upload")?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        seen += chunk.len() as u64;
        if seen > limit.saturating_add(DRAIN_CAP) {
            return Ok(None);
        }
        if seen <= limit {
            data.extend_from_slice(&chunk);
        }
    }
    Ok((seen <= limit).then_some(data))
}

fn file_path(basepath: &FsPath, id: i64) -> PathBuf {
    basepath.join(id.to_string())
}

async fn upload_attachment(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let task_id = parse_id(&id).ok_or_else(ApiError::task_not_found)?;
    let exists = with_db(&s, move |db, st| {
        Ok(model::get_task(db, &st.info, task_id)?.is_some())
    })
    .await?;
    if !exists {
        return Err(ApiError::task_not_found());
    }
    let limit = s.config.files_max_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            4013,
            format!(
                "The file is too large. files.maxsize is {}.",
                s.config.files_maxsize
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Far over the limit: answer at once and let the connection close rather than drain it.
    if declared.is_some_and(|len| len > limit.saturating_add(DRAIN_CAP)) {
        return Err(too_large());
    }
    let Some(data) = read_limited(body, limit).await.map_err(ApiError::from)? else {
        return Err(too_large());
    };
    let name = query
        .name
        .as_deref()
        .map(|n| n.rsplit('/').next().unwrap_or(n).trim())
        .filter(|n| !n.is_empty())
        .unwrap_or("file")
        .chars()
        .take(250)
        .collect::<String>();
    let attachment = with_db(&s, move |db, st| {
        let id = db.next_id("attachments")?;
        let path = file_path(&st.config.files_basepath, id);
        write_file_atomically(&path, &data)?;
        match model::insert_attachment(db, id, task_id, &name, data.len() as i64) {
            Ok(attachment) => Ok(attachment),
            Err(err) => {
                let _ = std::fs::remove_file(&path);
                Err(err)
            }
        }
    })
    .await?;
    Ok((StatusCode::CREATED, Json(attachment)).into_response())
}

pub fn write_file_atomically(path: &FsPath, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("partial");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(data)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))
}

async fn download_attachment(
    State(s): State<Shared>,
    Path((id, aid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            4011,
            "This task attachment does not exist.",
        )
    };
    let (Some(task_id), Some(aid)) = (parse_id(&id), parse_id(&aid)) else {
        return Err(missing());
    };
    let attachment = with_db(&s, move |db, _| model::get_attachment(db, task_id, aid))
        .await?
        .ok_or_else(missing)?;
    let path = file_path(&s.config.files_basepath, aid);
    let data = match tokio::fs::read(&path).await {
        Ok(data) => data,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                4011,
                "The attachment's file is missing from files.basepath.",
            ))
        }
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context(format!("reading {}", path.display()))
                .into())
        }
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        attachment.file.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        data,
    )
        .into_response())
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(State(s): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let login: Login = parse_json(&body)?;
    let user = with_db(&s, move |db, _| {
        Ok(model::find_user(db, &login.username)?
            .filter(|(_, hash)| auth::verify_password(&login.password, hash))
            .map(|(user, _)| user))
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            1011,
            "Wrong username or password.",
        )
    })?;
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + SESSION_TTL_SECS;
    let token = auth::issue_session(&s.secret, user.id, expires).map_err(ApiError::from)?;
    Ok(Json(json!({ "token": token })).into_response())
}

/// Accepts a login session or an API token (`tk_...`) as `Authorization: Bearer ...`.
async fn authenticated_user(s: &Shared, headers: &HeaderMap) -> Result<model::User, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?
        .to_string();
    let secret = s.secret.clone();
    with_db(s, move |db, _| {
        if token.starts_with("tk_") {
            return model::user_for_token_hash(db, &auth::hash_token(&token));
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match auth::verify_session(&secret, &token, now) {
            Some(id) => model::get_user(db, id),
            None => Ok(None),
        }
    })
    .await?
    .ok_or_else(ApiError::unauthorized)
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    title: String,
    expires_at: Option<String>,
}

async fn create_token(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = authenticated_user(&s, &headers).await?;
    let new: NewToken = parse_json(&body)?;
    let title = new.title.trim().to_string();
    if title.is_empty() {
        return Err(ApiError::bad_request("The token needs a title."));
    }
    if let Some(expires) = &new.expires_at {
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "expires_at `{expires}` is not an RFC 3339 time such as 2030-01-01T00:00:00Z"
                ))
            })?;
    }
    let token = with_db(&s, move |db, _| {
        model::create_api_token(db, user.id, &title, new.expires_at)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

async fn current_user(
    State(s): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<model::User>, ApiError> {
    Ok(Json(authenticated_user(&s, &headers).await?))
}

async fn slow(
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ms = query
        .get("ms")
        .map(String::as_str)
        .unwrap_or("0")
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms <= SLOW_MAX_MS)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "ms must be a whole number of milliseconds from 0 to {SLOW_MAX_MS}"
            ))
        })?;
    // Tests wait for this line to know the request is in flight.
    println!("slow request: holding for {ms} ms");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(Json(json!({ "slept_ms": ms })))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
}
