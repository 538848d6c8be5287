//! Schema migrations, run at every start like Vikunja's, recorded in the `migrations` table.
//! A binary meeting a database with a migration it does not know refuses to run: that is how an
//! older release meets a newer schema, and why a rollback must restore the pre-update dump.

use anyhow::Context;

use crate::build_info::BuildInfo;
use crate::db::{Database, Value};
use crate::error::FixtureError;

pub struct Migration {
    pub id: &'static str,
    /// First release that ships this migration.
    pub since: (u64, u64, u64),
    pub description: &'static str,
    pub statements: &'static [&'static str],
}

/// The migration v2.0.0 introduced; the task API shows `priority` only where it is known.
pub const TASK_PRIORITY: &str = "20250301120000";

/// Types are the common ground of SQLite, PostgreSQL and MySQL: BIGINT and bounded VARCHAR
/// (MySQL cannot index unbounded TEXT). Timestamps are RFC 3339 text.
pub const ALL: &[Migration] = &[
    Migration {
        id: "20240101000000",
        since: (1, 0, 0),
        description: "initial schema: tasks, attachments, users, api_tokens",
        statements: &[
            "CREATE TABLE tasks (id BIGINT NOT NULL PRIMARY KEY, title VARCHAR(250) NOT NULL, \
             created VARCHAR(64) NOT NULL)",
            "CREATE TABLE attachments (id BIGINT NOT NULL PRIMARY KEY, task_id BIGINT NOT NULL, \
             file_name VARCHAR(250) NOT NULL, file_size BIGINT NOT NULL, created VARCHAR(64) NOT NULL)",
            "CREATE TABLE users (id BIGINT NOT NULL PRIMARY KEY, username VARCHAR(250) NOT NULL UNIQUE, \
             email VARCHAR(250) NOT NULL, password VARCHAR(250) NOT NULL, created VARCHAR(64) NOT NULL)",
            "CREATE TABLE api_tokens (id BIGINT NOT NULL PRIMARY KEY, title VARCHAR(250) NOT NULL, \
             token_hash VARCHAR(64) NOT NULL UNIQUE, token_last_eight VARCHAR(8) NOT NULL, \
             owner_id BIGINT NOT NULL, created VARCHAR(64) NOT NULL, expires_at VARCHAR(64))",
        ],
    },
    Migration {
        id: TASK_PRIORITY,
        since: (2, 0, 0),
        description: "tasks.priority; tasks that predate it become priority 1 (low)",
        statements: &[
            "ALTER TABLE tasks ADD COLUMN priority BIGINT DEFAULT 0",
            "UPDATE tasks SET priority = 1",
        ],
    },
];

/// Every table the app owns, in the order a restore loads them.
pub const TABLES: &[&str] = &["migrations", "users", "api_tokens", "tasks", "attachments"];

pub fn known(info: &BuildInfo) -> impl Iterator<Item = &'static Migration> + '_ {
    ALL.iter().filter(|m| info.at_least(m.since))
}

pub fn knows(info: &BuildInfo, id: &str) -> bool {
    known(info).any(|m| m.id == id)
}

fn ensure_table(db: &mut Database) -> anyhow::Result<()> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS migrations (id VARCHAR(190) NOT NULL PRIMARY KEY, \
         applied_at VARCHAR(64) NOT NULL)",
        &[],
    )
    .map(|_| ())
}

pub fn applied(db: &mut Database) -> anyhow::Result<Vec<String>> {
    if !db.table_exists("migrations")? {
        return Ok(Vec::new());
    }
    let rows = db.query("SELECT id FROM migrations ORDER BY id", &[])?;
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| r.first().and_then(Value::as_text))
        .collect())
}

/// Fails when the database carries a migration this build does not ship.
pub fn check_not_newer(db: &mut Database, info: &BuildInfo) -> anyhow::Result<()> {
    for id in applied(db)? {
        if !knows(info, &id) {
            return Err(FixtureError::SchemaNewer {
                migration: id,
                version: info.version.clone(),
            }
            .into());
        }
    }
    Ok(())
}

/// Applies every pending migration this build knows; returns the ids applied now.
pub fn migrate(db: &mut Database, info: &BuildInfo) -> anyhow::Result<Vec<&'static str>> {
    check_not_newer(db, info)?;
    let wanted: Vec<&str> = known(info).map(|m| m.id).collect();
    apply(db, &wanted)
}

/// Applies the listed migrations (if pending) in schema order; restore uses it to rebuild the
/// schema a dump was taken at before loading its rows.
pub fn apply(db: &mut Database, ids: &[&str]) -> anyhow::Result<Vec<&'static str>> {
    ensure_table(db)?;
    let done = applied(db)?;
    let mut now = Vec::new();
    for migration in ALL.iter().filter(|m| ids.contains(&m.id)) {
        if done.iter().any(|d| d == migration.id) {
            continue;
        }
        db.transaction(|db| {
            for statement in migration.statements {
                db.execute(statement, &[])?;
            }
            db.execute(
                "INSERT INTO migrations (id, applied_at) VALUES (?, ?)",
                &[migration.id.into(), crate::model::now_rfc3339().into()],
            )?;
            Ok(())
        })
        .with_context(|| {
            format!(
                "applying migration {} ({})",
                migration.id, migration.description
            )
        })?;
        now.push(migration.id);
    }
    Ok(now)
}

/// Drops every table the app owns; restore starts from this.
pub fn drop_all(db: &mut Database) -> anyhow::Result<()> {
    for table in TABLES.iter().rev() {
        db.execute(&format!("DROP TABLE IF EXISTS {table}"), &[])?;
    }
    Ok(())
}
