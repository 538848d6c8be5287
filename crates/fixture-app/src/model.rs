//! The rows the fixture keeps (tasks, attachments, users, API tokens) and their queries.
//! Shared by the HTTP handlers and the CLI; every function expects the caller to hold the
//! process-wide database lock.

use anyhow::{anyhow, Context};
use serde::Serialize;

use crate::build_info::BuildInfo;
use crate::db::{Database, Value};
use crate::migrations;

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

fn has_priority(info: &BuildInfo) -> bool {
    migrations::knows(info, migrations::TASK_PRIORITY)
}

fn task_columns(info: &BuildInfo) -> &'static str {
    if has_priority(info) {
        "id, title, created, priority"
    } else {
        "id, title, created"
    }
}

fn task_from_row(row: &[Value]) -> anyhow::Result<Task> {
    Ok(Task {
        id: int(row, 0)?,
        title: text(row, 1)?,
        created: text(row, 2)?,
        priority: row.get(3).map(|v| v.as_i64().unwrap_or(0)),
    })
}

fn int(row: &[Value], i: usize) -> anyhow::Result<i64> {
    row.get(i)
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow!("column {i} is not an integer"))
}

fn text(row: &[Value], i: usize) -> anyhow::Result<String> {
    row.get(i)
        .and_then(Value::as_text)
        .ok_or_else(|| anyhow!("column {i} is empty"))
}

pub fn create_task(
    db: &mut Database,
    info: &BuildInfo,
    title: &str,
    priority: Option<i64>,
) -> anyhow::Result<Task> {
    let id = db.next_id("tasks")?;
    let created = now_rfc3339();
    if has_priority(info) {
        db.execute(
            "INSERT INTO tasks (id, title, created, priority) VALUES (?, ?, ?, ?)",
            &[
                id.into(),
                title.into(),
                created.clone().into(),
                priority.unwrap_or(0).into(),
            ],
        )?;
    } else {
        db.execute(
            "INSERT INTO tasks (id, title, created) VALUES (?, ?, ?)",
            &[id.into(), title.into(), created.clone().into()],
        )?;
    }
    get_task(db, info, id)?.ok_or_else(|| anyhow!("task {id} vanished right after its insert"))
}

pub fn list_tasks(db: &mut Database, info: &BuildInfo) -> anyhow::Result<Vec<Task>> {
    let sql = format!("SELECT {} FROM tasks ORDER BY id", task_columns(info));
    db.query(&sql, &[])?
        .rows
        .iter()
        .map(|r| task_from_row(r))
        .collect()
}

pub fn get_task(db: &mut Database, info: &BuildInfo, id: i64) -> anyhow::Result<Option<Task>> {
    let sql = format!("SELECT {} FROM tasks WHERE id = ?", task_columns(info));
    db.query(&sql, &[id.into()])?
        .rows
        .first()
        .map(|r| task_from_row(r))
        .transpose()
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub id: i64,
    pub task_id: i64,
    pub file: AttachedFile,
    pub created: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachedFile {
    pub id: i64,
    pub name: String,
    pub size: i64,
}

pub fn insert_attachment(
    db: &mut Database,
    id: i64,
    task_id: i64,
    name: &str,
    size: i64,
) -> anyhow::Result<Attachment> {
    let created = now_rfc3339();
    db.execute(
        "INSERT INTO attachments (id, task_id, file_name, file_size, created) VALUES (?, ?, ?, ?, ?)",
        &[
            id.into(),
            task_id.into(),
            name.into(),
            size.into(),
            created.clone().into(),
        ],
    )?;
    Ok(Attachment {
        id,
        task_id,
        file: AttachedFile {
            id,
            name: name.to_string(),
            size,
        },
        created,
    })
}

pub fn get_attachment(
    db: &mut Database,
    task_id: i64,
    id: i64,
) -> anyhow::Result<Option<Attachment>> {
    let rows = db.query(
        "SELECT id, task_id, file_name, file_size, created FROM attachments WHERE id = ? AND task_id = ?",
        &[id.into(), task_id.into()],
    )?;
    rows.rows
        .first()
        .map(|r| {
            Ok(Attachment {
                id: int(r, 0)?,
                task_id: int(r, 1)?,
                file: AttachedFile {
                    id: int(r, 0)?,
                    name: text(r, 2)?,
                    size: int(r, 3)?,
                },
                created: text(r, 4)?,
            })
        })
        .transpose()
}

pub fn attachment_ids(db: &mut Database) -> anyhow::Result<Vec<i64>> {
    if !db.table_exists("attachments")? {
        return Ok(Vec::new());
    }
    db.query("SELECT id FROM attachments ORDER BY id", &[])?
        .rows
        .iter()
        .map(|r| int(r, 0))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub created: String,
}

/// The stored bcrypt hash travels separately so a `User` can be serialised safely.
pub fn create_user(
    db: &mut Database,
    username: &str,
    email: &str,
    password_hash: &str,
) -> anyhow::Result<User> {
    if find_user(db, username)?.is_some() {
        return Err(crate::error::FixtureError::UserExists {
            username: username.to_string(),
        }
        .into());
    }
    let id = db.next_id("users")?;
    let created = now_rfc3339();
    db.execute(
        "INSERT INTO users (id, username, email, password, created) VALUES (?, ?, ?, ?, ?)",
        &[
            id.into(),
            username.into(),
            email.into(),
            password_hash.into(),
            created.clone().into(),
        ],
    )?;
    Ok(User {
        id,
        username: username.to_string(),
        email: email.to_string(),
        created,
    })
}

fn user_from_row(r: &[Value]) -> anyhow::Result<User> {
    Ok(User {
        id: int(r, 0)?,
        username: text(r, 1)?,
        email: text(r, 2)?,
        created: text(r, 3)?,
    })
}

/// The user and their password hash.
pub fn find_user(db: &mut Database, username: &str) -> anyhow::Result<Option<(User, String)>> {
    let rows = db.query(
        "SELECT id, username, email, created, password FROM users WHERE username = ?",
        &[username.into()],
    )?;
    rows.rows
        .first()
        .map(|r| Ok((user_from_row(r)?, text(r, 4)?)))
        .transpose()
}

pub fn get_user(db: &mut Database, id: i64) -> anyhow::Result<Option<User>> {
    let rows = db.query(
        "SELECT id, username, email, created FROM users WHERE id = ?",
        &[id.into()],
    )?;
    rows.rows.first().map(|r| user_from_row(r)).transpose()
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub title: String,
    /// Only filled in the answer to the request that created it, as in Vikunja.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub token_last_eight: String,
    pub created: String,
    pub expires_at: Option<String>,
}

pub fn create_api_token(
    db: &mut Database,
    owner_id: i64,
    title: &str,
    expires_at: Option<String>,
) -> anyhow::Result<ApiToken> {
    let (token, hash) = crate::auth::new_api_token();
    let last_eight = token[token.len() - 8..].to_string();
    let id = db.next_id("api_tokens")?;
    let created = now_rfc3339();
    db.execute(
        "INSERT INTO api_tokens (id, title, token_hash, token_last_eight, owner_id, created, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            id.into(),
            title.into(),
            hash.into(),
            last_eight.clone().into(),
            owner_id.into(),
            created.clone().into(),
            expires_at.clone().into(),
        ],
    )
    .context("storing the API token")?;
    Ok(ApiToken {
        id,
        title: title.to_string(),
        token: Some(token),
        token_last_eight: last_eight,
        created,
        expires_at,
    })
}

/// The owner of an unexpired token with this hash.
pub fn user_for_token_hash(db: &mut Database, hash: &str) -> anyhow::Result<Option<User>> {
    let rows = db.query(
        "SELECT owner_id, expires_at FROM api_tokens WHERE token_hash = ?",
        &[hash.into()],
    )?;
    let Some(row) = rows.rows.first() else {
        return Ok(None);
    };
    if let Some(expires) = row.get(1).and_then(Value::as_text) {
        let expires =
            time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
                .context("reading a stored token expiry")?;
        if expires <= time::OffsetDateTime::now_utc() {
            return Ok(None);
        }
    }
    get_user(db, int(row, 0)?)
}
