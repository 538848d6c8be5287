//! The HTTP API: Meilisearch v1's routes that the `meilisearch` npm client and Launch use.
//! Writes answer 202 with a summarized task, but the work is already applied and on disk (the
//! store's lock is held for the short write, which is fine for lab-sized data).

use crate::error::ApiError;
use crate::search::{matching, retrieve, Filter};
use crate::store::{default_settings, document_id, Op, Store};
use crate::{Config, MEILI_VERSION};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Clone)]
struct App {
    store: Arc<Mutex<Store>>,
    master_key: Option<Arc<str>>,
}

impl App {
    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic cannot leave the store half-written (writes replace whole values), so a
        // poisoned lock is still usable.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(&self, op: Op) -> Result<Response, ApiError> {
        let task = self.store().submit(op)?;
        Ok((StatusCode::ACCEPTED, Json(task)).into_response())
    }
}

type Params = Query<HashMap<String, String>>;
type Answer = Result<Response, ApiError>;

pub async fn serve(config: Config, store: Store) -> anyhow::Result<()> {
    // Handlers first, so a SIGTERM right after the "listening" line is already graceful.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let listener = tokio::net::TcpListener::bind(&config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let app = App {
        store: Arc::new(Mutex::new(store)),
        master_key: config.master_key.as_deref().map(Arc::from),
    };
    println!("Server listening on: \"http://{addr}\"");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
        .await
        .context("serving HTTP")?;
    eprintln!("meili-standin: stopped (every acknowledged write is on disk)");
    Ok(())
}

fn router(app: App) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/keys", get(keys))
        .route("/stats", get(stats))
        .route("/dumps", post(create_dump))
        .route("/tasks", get(list_tasks))
        .route("/tasks/{task}", get(get_task))
        .route("/indexes", get(list_indexes).post(create_index))
        .route(
            "/indexes/{uid}",
            get(get_index).patch(update_index).delete(delete_index),
        )
        .route("/indexes/{uid}/stats", get(index_stats))
        .route(
            "/indexes/{uid}/documents",
            get(list_documents)
                .post(replace_documents)
                .put(update_documents)
                .delete(delete_all),
        )
        .route("/indexes/{uid}/documents/fetch", post(fetch_documents))
        .route("/indexes/{uid}/documents/delete-batch", post(delete_batch))
        .route(
            "/indexes/{uid}/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route(
            "/indexes/{uid}/settings",
            get(get_settings)
                .patch(patch_settings)
                .delete(reset_settings),
        )
        .route(
            "/indexes/{uid}/settings/{name}",
            get(get_setting)
                .put(put_setting)
                .patch(put_setting)
                .delete(reset_setting),
        )
        .route("/indexes/{uid}/search", get(search_get).post(search_post))
        .layer(middleware::from_fn_with_state(app.clone(), auth))
        .route(
            "/health",
            get(|| async { Json(json!({"status": "available"})) }),
        )
        .layer(DefaultBodyLimit::max(100 * 1024 * 1024))
        .with_state(app)
}

/// Only the master key exists here (no API keys): `Authorization: Bearer <master key>`.
async fn auth(State(app): State<App>, req: Request, next: Next) -> Response {
    if let Some(key) = &app.master_key {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        match header {
            None => return ApiError::MissingAuthorizationHeader.into_response(),
            Some(h) if h.strip_prefix("Bearer ").map(str::trim) != Some(&**key) => {
                return ApiError::InvalidApiKey.into_response()
            }
            Some(_) => {}
        }
    }
    next.run(req).await
}

fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        if !ct
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
        {
            return Err(ApiError::InvalidContentType(ct.into()));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedPayload("the payload is empty".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::MalformedPayload(e.to_string()))
}

fn number(params: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "Invalid value in parameter `{name}`: could not parse `{v}` as a positive integer"
            ))
        }),
    }
}

fn body_number(body: &Value, name: &str, default: usize) -> Result<usize, ApiError> {
    match &body[name] {
        Value::Null => Ok(default),
        v => v.as_u64().map(|n| n as usize).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Invalid value type at `.{name}`: expected a positive integer, but found `{v}`"
            ))
        }),
    }
}

fn comma_list(params: &HashMap<String, String>, name: &str) -> Option<Vec<String>> {
    params
        .get(name)
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    })
}

fn check_uid(uid: &str) -> Result<(), ApiError> {
    let ok = !uid.is_empty()
        && uid.len() <= 512
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidIndexUid(uid.into()))
    }
}

/// What a route under /indexes/{uid} gets: its path parameters, query, headers and body.
struct Call {
    app: App,
    path: Vec<String>,
    params: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Call {
    fn uid(&self) -> String {
        self.path[0].clone()
    }

    fn json(&self) -> Result<Value, ApiError> {
        json_body(&self.headers, &self.body)
    }
}

impl FromRequest<App> for Call {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let bad = |e: &dyn std::fmt::Display| ApiError::BadRequest(e.to_string());
        let Path(path) = Path::<Vec<String>>::from_request_parts(&mut parts, app)
            .await
            .map_err(|e| bad(&e))?;
        let Query(params) = Params::from_request_parts(&mut parts, app)
            .await
            .map_err(|e| bad(&e))?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|e| bad(&e))?;
        Ok(Call {
            app: app.clone(),
            path,
            params,
            headers,
            body,
        })
    }
}

fn with_index<T>(
    c: &Call,
    f: impl FnOnce(&crate::store::Index) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let store = c.app.store();
    let uid = &c.path[0];
    f(store
        .db
        .indexes
        .get(uid)
        .ok_or_else(|| ApiError::IndexNotFound(uid.clone()))?)
}

async fn version() -> Json<Value> {
    Json(
        json!({"pkgVersion": MEILI_VERSION, "commitSha": "standin", "commitDate": "2026-01-01T00:00:00Z"}),
    )
}

async fn keys(State(app): State<App>) -> Answer {
    if app.master_key.is_none() {
        return Err(ApiError::MissingMasterKey);
    }
    Ok(Json(json!({"results": [], "offset": 0, "limit": 20, "total": 0})).into_response())
}

async fn stats(State(app): State<App>) -> Json<Value> {
    let store = app.store();
    let indexes: Map<String, Value> = store
        .db
        .indexes
        .iter()
        .map(|(uid, i)| (uid.clone(), i.stats()))
        .collect();
    let last = store.db.tasks.last().map(|t| t["finishedAt"].clone());
    let size = store.database_size();
    Json(
        json!({"databaseSize": size, "usedDatabaseSize": size, "lastUpdate": last, "indexes": indexes}),
    )
}

async fn create_dump(State(app): State<App>) -> Answer {
    app.submit(Op::Dump)
}

async fn list_tasks(State(app): State<App>, Query(p): Params) -> Answer {
    let limit = number(&p, "limit", 20)?;
    let from = p
        .get("from")
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|_| {
            ApiError::BadRequest("Invalid value in parameter `from`: expected a task uid".into())
        })?;
    let filters: Vec<(&str, Vec<String>)> = [
        ("indexUid", "indexUids"),
        ("status", "statuses"),
        ("type", "types"),
    ]
    .into_iter()
    .filter_map(|(field, param)| comma_list(&p, param).map(|l| (field, l)))
    .collect();
    let store = app.store();
    let selected: Vec<&Value> = store
        .db
        .tasks
        .iter()
        .rev()
        .filter(|t| from.is_none_or(|f| t["uid"].as_u64() <= Some(f)))
        .filter(|t| {
            filters
                .iter()
                .all(|(field, l)| l.iter().any(|v| v == "*" || t[*field] == **v))
        })
        .collect();
    let total = store.db.tasks.len();
    let page: Vec<&Value> = selected.iter().take(limit).copied().collect();
    let next = selected.get(limit).map(|t| t["uid"].clone());
    let first = page.first().map(|t| t["uid"].clone());
    Ok(
        Json(json!({"results": page, "total": total, "limit": limit, "from": first, "next": next}))
            .into_response(),
    )
}

async fn get_task(State(app): State<App>, Path(task): Path<String>) -> Answer {
    let uid: u64 = task.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "Invalid task uid `{task}`: expected a positive integer"
        ))
    })?;
    let store = app.store();
    let t = store.task(uid).ok_or(ApiError::TaskNotFound(task))?;
    Ok(Json(t.clone()).into_response())
}

async fn list_indexes(State(app): State<App>, Query(p): Params) -> Answer {
    let (offset, limit) = (number(&p, "offset", 0)?, number(&p, "limit", 20)?);
    let store = app.store();
    let results: Vec<Value> = store
        .db
        .indexes
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(uid, i)| i.view(uid))
        .collect();
    let total = store.db.indexes.len();
    Ok(
        Json(json!({"results": results, "offset": offset, "limit": limit, "total": total}))
            .into_response(),
    )
}

async fn create_index(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Answer {
    let body = json_body(&headers, &body)?;
    let uid = body["uid"]
        .as_str()
        .ok_or_else(|| ApiError::BadRequest("Missing field `uid`".into()))?;
    check_uid(uid)?;
    let primary_key = body["primaryKey"].as_str().map(String::from);
    app.submit(Op::CreateIndex {
        uid: uid.into(),
        primary_key,
    })
}

async fn get_index(c: Call) -> Answer {
    with_index(&c, |i| Ok(Json(i.view(&c.uid())).into_response()))
}

async fn update_index(c: Call) -> Answer {
    let primary_key = c.json()?["primaryKey"].as_str().map(String::from);
    c.app.submit(Op::UpdateIndex {
        uid: c.uid(),
        primary_key,
    })
}

async fn delete_index(c: Call) -> Answer {
    c.app.submit(Op::DeleteIndex { uid: c.uid() })
}

async fn index_stats(c: Call) -> Answer {
    with_index(&c, |i| Ok(Json(i.stats()).into_response()))
}

async fn add_documents(c: Call, merge: bool) -> Answer {
    check_uid(&c.uid())?;
    let not_docs = |v: &Value| {
        ApiError::MalformedPayload(format!(
            "expected a JSON array of documents (objects), or one, found `{v}`"
        ))
    };
    let docs = match c.json()? {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        other => return Err(not_docs(&other)),
    };
    let docs = docs
        .into_iter()
        .map(|d| match d {
            Value::Object(m) => Ok(m),
            other => Err(not_docs(&other)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let primary_key = c.params.get("primaryKey").cloned();
    c.app.submit(Op::AddDocuments {
        uid: c.uid(),
        docs,
        primary_key,
        merge,
    })
}

async fn replace_documents(c: Call) -> Answer {
    add_documents(c, false).await
}

async fn update_documents(c: Call) -> Answer {
    add_documents(c, true).await
}

/// The document listing shared by GET /documents and POST /documents/fetch.
fn documents_page(
    c: &Call,
    offset: usize,
    limit: usize,
    fields: Option<Vec<String>>,
    filter: &Value,
) -> Answer {
    with_index(c, |index| {
        let filter = Filter::parse(filter, index)?;
        let all: Vec<&Value> = matching(index, "", filter.as_ref()).collect();
        let results: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|d| retrieve(index, d, fields.as_deref()))
            .collect();
        Ok(
            Json(json!({"results": results, "offset": offset, "limit": limit, "total": all.len()}))
                .into_response(),
        )
    })
}

async fn list_documents(c: Call) -> Answer {
    let filter = c
        .params
        .get("filter")
        .map_or(Value::Null, |f| Value::String(f.clone()));
    let (offset, limit) = (
        number(&c.params, "offset", 0)?,
        number(&c.params, "limit", 20)?,
    );
    documents_page(&c, offset, limit, comma_list(&c.params, "fields"), &filter)
}

async fn fetch_documents(c: Call) -> Answer {
    let body = c.json()?;
    let (offset, limit) = (
        body_number(&body, "offset", 0)?,
        body_number(&body, "limit", 20)?,
    );
    documents_page(
        &c,
        offset,
        limit,
        string_list(&body["fields"]),
        &body["filter"],
    )
}

async fn get_document(c: Call) -> Answer {
    with_index(&c, |index| {
        let id = c.path[1].clone();
        let doc = index
            .documents
            .get(&id)
            .ok_or(ApiError::DocumentNotFound(id))?;
        Ok(Json(retrieve(
            index,
            doc,
            comma_list(&c.params, "fields").as_deref(),
        ))
        .into_response())
    })
}

async fn delete_document(c: Call) -> Answer {
    c.app.submit(Op::DeleteDocuments {
        uid: c.uid(),
        ids: Some(vec![c.path[1].clone()]),
    })
}

async fn delete_batch(c: Call) -> Answer {
    let Value::Array(ids) = c.json()? else {
        return Err(ApiError::MalformedPayload(
            "expected a JSON array of document ids".into(),
        ));
    };
    let ids = ids
        .into_iter()
        .map(|id| document_id(&Map::from_iter([("id".to_string(), id)]), "id"))
        .collect::<Result<Vec<_>, _>>()?;
    c.app.submit(Op::DeleteDocuments {
        uid: c.uid(),
        ids: Some(ids),
    })
}

async fn delete_all(c: Call) -> Answer {
    c.app.submit(Op::DeleteDocuments {
        uid: c.uid(),
        ids: None,
    })
}

async fn get_settings(c: Call) -> Answer {
    with_index(&c, |i| Ok(Json(i.settings()).into_response()))
}

/// Known settings only; list settings must be arrays of strings (or null to reset).
fn check_settings(settings: &Map<String, Value>) -> Result<(), ApiError> {
    let defaults = default_settings();
    for (k, v) in settings {
        let Some(default) = defaults.get(k) else {
            let known: Vec<&String> = defaults.keys().collect();
            return Err(ApiError::BadRequest(format!(
                "Unknown field `{k}`: expected one of {known:?}"
            )));
        };
        let list_ok = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if default.is_array() && !v.is_null() && !list_ok(v) {
            return Err(ApiError::BadRequest(format!(
                "Invalid value type at `.{k}`: expected an array of strings, but found `{v}`"
            )));
        }
    }
    Ok(())
}

fn update_settings(c: &Call, settings: Map<String, Value>) -> Answer {
    check_uid(&c.uid())?;
    check_settings(&settings)?;
    c.app.submit(Op::UpdateSettings {
        uid: c.uid(),
        settings,
    })
}

async fn patch_settings(c: Call) -> Answer {
    let Value::Object(settings) = c.json()? else {
        return Err(ApiError::MalformedPayload(
            "expected a JSON object of settings".into(),
        ));
    };
    update_settings(&c, settings)
}

async fn reset_settings(c: Call) -> Answer {
    update_settings(
        &c,
        default_settings()
            .keys()
            .map(|k| (k.clone(), Value::Null))
            .collect(),
    )
}

/// `filterable-attributes` → `filterableAttributes`, if it is a known setting.
fn setting_name(route: &str) -> Result<String, ApiError> {
    let mut parts = route.split('-');
    let first = parts.next().unwrap_or_default().to_string();
    let name = parts.fold(first, |mut name, part| {
        let mut chars = part.chars();
        name.extend(chars.next().map(|c| c.to_ascii_uppercase()));
        name.extend(chars);
        name
    });
    if default_settings().contains_key(&name) {
        Ok(name)
    } else {
        Err(ApiError::BadRequest(format!("Unknown setting `{route}`")))
    }
}

async fn get_setting(c: Call) -> Answer {
    let name = setting_name(&c.path[1])?;
    with_index(
        &c,
        |i| Ok(Json(i.settings()[&name].clone()).into_response()),
    )
}

async fn put_setting(c: Call) -> Answer {
    update_settings(&c, Map::from_iter([(setting_name(&c.path[1])?, c.json()?)]))
}

async fn reset_setting(c: Call) -> Answer {
    update_settings(
        &c,
        Map::from_iter([(setting_name(&c.path[1])?, Value::Null)]),
    )
}

struct SearchQuery {
    q: String,
    offset: usize,
    limit: usize,
    filter: Value,
    attributes: Option<Vec<String>>,
}

fn search(c: &Call, query: SearchQuery) -> Answer {
    let started = std::time::Instant::now();
    with_index(c, |index| {
        let filter = Filter::parse(&query.filter, index)?;
        let all: Vec<&Value> = matching(index, &query.q, filter.as_ref()).collect();
        let hits: Vec<Value> = all
            .iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|d| retrieve(index, d, query.attributes.as_deref()))
            .collect();
        Ok(Json(json!({
            "hits": hits, "query": query.q, "processingTimeMs": started.elapsed().as_millis() as u64,
            "limit": query.limit, "offset": query.offset, "estimatedTotalHits": all.len(),
        }))
        .into_response())
    })
}

async fn search_get(c: Call) -> Answer {
    let p = &c.params;
    let query = SearchQuery {
        q: p.get("q").cloned().unwrap_or_default(),
        offset: number(p, "offset", 0)?,
        limit: number(p, "limit", 20)?,
        filter: p
            .get("filter")
            .map_or(Value::Null, |f| Value::String(f.clone())),
        attributes: comma_list(p, "attributesToRetrieve"),
    };
    search(&c, query)
}

/// Other search parameters (highlighting, facets, sort, ...) are accepted and ignored.
async fn search_post(c: Call) -> Answer {
    let body = if c.body.is_empty() {
        json!({})
    } else {
        c.json()?
    };
    let query = SearchQuery {
        q: body["q"].as_str().unwrap_or_default().to_string(),
        offset: body_number(&body, "offset", 0)?,
        limit: body_number(&body, "limit", 20)?,
        filter: body["filter"].clone(),
        attributes: string_list(&body["attributesToRetrieve"]),
    };
    search(&c, query)
}
