//! One small SQL surface over SQLite, PostgreSQL and MySQL/MariaDB.
//! Statements are written once with `?` placeholders and only integer/text values, which all three
//! accept; ids are allocated by the caller (`next_id`) so no backend's autoincrement syntax is needed.

use std::error::Error as StdError;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::config::{DatabaseConfig, ServerDatabase};
use crate::error::FixtureError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Int(i) => Some(i.to_string()),
            Value::Text(s) => Some(s.clone()),
            Value::Null => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Text(s) => serde_json::Value::from(s.as_str()),
        }
    }

    pub fn from_json(value: &serde_json::Value) -> anyhow::Result<Value> {
        match value {
            serde_json::Value::Null => Ok(Value::Null),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Value::Int)
                .ok_or_else(|| anyhow!("number {n} is not an integer")),
            serde_json::Value::String(s) => Ok(Value::Text(s.clone())),
            serde_json::Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
            other => bail!("unsupported JSON value {other}"),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}

#[derive(Debug, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn first_i64(&self) -> Option<i64> {
        self.rows.first()?.first()?.as_i64()
    }
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
    Mysql(mysql::Conn),
}

pub struct Database {
    config: DatabaseConfig,
    backend: Backend,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Database {
    pub fn connect(config: &DatabaseConfig) -> Result<Database, FixtureError> {
        let backend = match config {
            DatabaseConfig::Sqlite { path } => {
                let conn =
                    rusqlite::Connection::open(path).map_err(|e| FixtureError::SqliteOpen {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                // Another process (a dump, a healthcheck) may hold the file briefly.
                conn.busy_timeout(Duration::from_secs(5)).map_err(|e| {
                    FixtureError::SqliteOpen {
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?;
                // Opening is lazy: touch the file now so a bad path fails here, not mid-request.
                conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))
                    .map_err(|e| FixtureError::SqliteOpen {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                Backend::Sqlite(conn)
            }
            DatabaseConfig::Postgres(db) => Backend::Postgres(connect_postgres(db)?),
            DatabaseConfig::Mysql(db) => Backend::Mysql(connect_mysql(db)?),
        };
        Ok(Database {
            config: config.clone(),
            backend,
        })
    }

    /// A cheap round trip; after a failure it reconnects once, so a restarted server heals.
    pub fn ping(&mut self) -> anyhow::Result<()> {
        if self.query("SELECT 1", &[]).is_ok() {
            return Ok(());
        }
        let fresh = Database::connect(&self.config)?;
        *self = fresh;
        self.query("SELECT 1", &[]).map(|_| ())
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> anyhow::Result<u64> {
        match &mut self.backend {
            Backend::Sqlite(conn) => conn
                .execute(sql, rusqlite::params_from_iter(params.iter()))
                .map(|n| n as u64)
                .with_context(|| format!("running `{sql}` on sqlite")),
            Backend::Postgres(client) => {
                let sql = dollar_placeholders(sql);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                client
                    .execute(sql.as_str(), &refs)
                    .with_context(|| format!("running `{sql}` on postgres"))
            }
            Backend::Mysql(conn) => {
                use mysql::prelude::Queryable;
                if params.is_empty() {
                    // Text protocol: some statements (transaction control) cannot be prepared.
                    conn.query_drop(sql)
                } else {
                    conn.exec_drop(sql, mysql_params(params))
                }
                .with_context(|| format!("running `{sql}` on mysql"))?;
                Ok(conn.affected_rows())
            }
        }
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> anyhow::Result<Rows> {
        match &mut self.backend {
            Backend::Sqlite(conn) => query_sqlite(conn, sql, params)
                .with_context(|| format!("running `{sql}` on sqlite")),
            Backend::Postgres(client) => {
                let sql = dollar_placeholders(sql);
                query_postgres(client, &sql, params)
                    .with_context(|| format!("running `{sql}` on postgres"))
            }
            Backend::Mysql(conn) => {
                query_mysql(conn, sql, params).with_context(|| format!("running `{sql}` on mysql"))
            }
        }
    }

    /// Runs `work` inside a transaction. MySQL commits DDL implicitly, so there a failed
    /// migration can leave its earlier statements applied (the same as Vikunja on MySQL).
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Database) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let begin = match self.backend {
            Backend::Mysql(_) => "START TRANSACTION",
            _ => "BEGIN",
        };
        self.execute(begin, &[])?;
        match work(self) {
            Ok(value) => {
                self.execute("COMMIT", &[])?;
                Ok(value)
            }
            Err(err) => {
                if let Err(rollback) = self.execute("ROLLBACK", &[]) {
                    return Err(err.context(format!("and the rollback failed too: {rollback:#}")));
                }
                Err(err)
            }
        }
    }

    /// Callers hold the process-wide database lock, so MAX+1 cannot race within one process.
    pub fn next_id(&mut self, table: &str) -> anyhow::Result<i64> {
        let rows = self.query(
            &format!("SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"),
            &[],
        )?;
        rows.first_i64()
            .ok_or_else(|| anyhow!("no id came back from {table}"))
    }

    /// `table` must be one of our own constant names: it is spliced into the SQL.
    pub fn table_exists(&mut self, table: &str) -> anyhow::Result<bool> {
        let sql = match self.backend {
            Backend::Sqlite(_) => {
                format!(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
                )
            }
            Backend::Postgres(_) => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '{table}'"
            ),
            Backend::Mysql(_) => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
        };
        Ok(self.query(&sql, &[])?.first_i64().unwrap_or(0) > 0)
    }
}

fn connect_postgres(db: &ServerDatabase) -> Result<postgres::Client, FixtureError> {
    let mut config = postgres::Config::new();
    if db.host.starts_with('/') {
        config.host_path(&db.host);
    } else {
        let (host, port) = split_host_port(&db.host, 5432);
        config.host(&host).port(port);
    }
    config
        .user(&db.user)
        .password(db.password.as_bytes())
        .dbname(&db.database)
        .connect_timeout(CONNECT_TIMEOUT);
    config
        .connect(postgres::NoTls)
        .map_err(|e| FixtureError::DatabaseConnect {
            kind: "postgres",
            target: db.describe(),
            message: error_chain(&e),
        })
}

fn connect_mysql(db: &ServerDatabase) -> Result<mysql::Conn, FixtureError> {
    let mut opts = mysql::OptsBuilder::new()
        .user(Some(&db.user))
        .pass(Some(&db.password))
        .db_name(Some(&db.database))
        // The driver would otherwise switch a 127.0.0.1 connection to the server's unix socket,
        // where MySQL matches a different account (user@localhost).
        .prefer_socket(false)
        .tcp_connect_timeout(Some(CONNECT_TIMEOUT));
    if db.host.starts_with('/') {
        opts = opts.socket(Some(&db.host));
    } else {
        let (host, port) = split_host_port(&db.host, 3306);
        opts = opts.ip_or_hostname(Some(host)).tcp_port(port);
    }
    mysql::Conn::new(opts).map_err(|e| FixtureError::DatabaseConnect {
        kind: "mysql",
        target: db.describe(),
        message: error_chain(&e),
    })
}

fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `db.example:5433` or plain `db.example`; a bracketed IPv6 address keeps its colons.
fn split_host_port(text: &str, default_port: u16) -> (String, u16) {
    if let Some((host, port)) = text.rsplit_once(':') {
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if (bracketed || !host.contains(':')) && !host.is_empty() {
            if let Ok(port) = port.parse() {
                return (host.trim_matches(['[', ']']).to_string(), port);
            }
        }
    }
    (text.to_string(), default_port)
}

/// PostgreSQL numbers its placeholders. Our SQL has no `?` inside string literals, but quotes
/// are tracked anyway so a literal `'?'` would survive.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut in_quote = false;
    let mut n = 0;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_quote = !in_quote;
                out.push(c);
            }
            '?' if !in_quote => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn query_sqlite(conn: &rusqlite::Connection, sql: &str, params: &[Value]) -> anyhow::Result<Rows> {
    use rusqlite::types::ValueRef;
    let mut stmt = conn.prepare(sql)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let width = columns.len();
    let mut out = Rows {
        columns,
        rows: Vec::new(),
    };
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Text(v.to_string()),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.rows.push(values);
    }
    Ok(out)
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn StdError + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    i.to_string().as_str().to_sql(ty, out)
                }
                _ => Err(format!("cannot store an integer in a {ty} column").into()),
            },
            Value::Text(s) => match *ty {
                Type::INT8 | Type::INT4 | Type::INT2 => {
                    Value::Int(s.trim().parse()?).to_sql(ty, out)
                }
                _ => s.as_str().to_sql(ty, out),
            },
        }
    }

    fn accepts(_ty: &postgres::types::Type) -> bool {
        // Checked per value in to_sql, where the variant is known.
        true
    }

    postgres::types::to_sql_checked!();
}

fn query_postgres(
    client: &mut postgres::Client,
    sql: &str,
    params: &[Value],
) -> anyhow::Result<Rows> {
    use postgres::types::Type;
    let stmt = client.prepare(sql)?;
    let columns: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect();
    let mut out = Rows {
        columns,
        rows: Vec::new(),
    };
    for row in client.query(&stmt, &refs)? {
        let mut values = Vec::with_capacity(row.len());
        for (i, column) in row.columns().iter().enumerate() {
            let value = match *column.type_() {
                Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)?
                    .map(|v| Value::Int(v.into())),
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(i)?
                    .map(|v| Value::Int(v.into())),
                Type::BOOL => row
                    .try_get::<_, Option<bool>>(i)?
                    .map(|v| Value::Int(v.into())),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    row.try_get::<_, Option<String>>(i)?.map(Value::Text)
                }
                ref other => bail!(
                    "column `{}` has the unsupported type {other}",
                    column.name()
                ),
            };
            values.push(value.unwrap_or(Value::Null));
        }
        out.rows.push(values);
    }
    Ok(out)
}

fn mysql_params(params: &[Value]) -> mysql::Params {
    mysql::Params::Positional(
        params
            .iter()
            .map(|p| match p {
                Value::Null => mysql::Value::NULL,
                Value::Int(i) => mysql::Value::Int(*i),
                Value::Text(s) => mysql::Value::Bytes(s.as_bytes().to_vec()),
            })
            .collect(),
    )
}

fn query_mysql(conn: &mut mysql::Conn, sql: &str, params: &[Value]) -> anyhow::Result<Rows> {
    use mysql::prelude::Queryable;
    // Prepared statements use the binary protocol, so integers come back typed.
    let rows: Vec<mysql::Row> = conn.exec(sql, mysql_params(params))?;
    let mut out = Rows::default();
    if let Some(first) = rows.first() {
        out.columns = first
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
    }
    for row in rows {
        let values = row
            .unwrap()
            .into_iter()
            .map(|v| match v {
                mysql::Value::NULL => Ok(Value::Null),
                mysql::Value::Int(i) => Ok(Value::Int(i)),
                mysql::Value::UInt(u) => i64::try_from(u)
                    .map(Value::Int)
                    .map_err(|_| anyhow!("value {u} does not fit a signed 64-bit integer")),
                mysql::Value::Bytes(b) => Ok(Value::Text(String::from_utf8_lossy(&b).into_owned())),
                other => Ok(Value::Text(
                    other.as_sql(true).trim_matches('\'').to_string(),
                )),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.rows.push(values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            dollar_placeholders("INSERT INTO t (a, b) VALUES (?, ?) -- '?'"),
            "INSERT INTO t (a, b) VALUES ($1, $2) -- '?'"
        );
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(split_host_port("db", 5432), ("db".into(), 5432));
        assert_eq!(
            split_host_port("127.0.0.1:3307", 3306),
            ("127.0.0.1".into(), 3307)
        );
        assert_eq!(split_host_port("[::1]:5433", 5432), ("::1".into(), 5433));
        assert_eq!(split_host_port("::1", 5432), ("::1".into(), 5432));
    }

    #[test]
    fn sqlite_round_trips_values_and_transactions_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::connect(&DatabaseConfig::Sqlite {
            path: dir.path().join("t.db"),
        })
        .unwrap();
        db.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(20))",
            &[],
        )
        .unwrap();
        db.execute(
            "INSERT INTO t (id, name) VALUES (?, ?)",
            &[1.into(), Value::Null],
        )
        .unwrap();
        let failed: anyhow::Result<()> = db.transaction(|db| {
            db.execute(
                "INSERT INTO t (id, name) VALUES (?, ?)",
                &[2.into(), "x".into()],
            )?;
            bail!("abandon")
        });
        assert!(failed.is_err());
        let rows = db.query("SELECT * FROM t", &[]).unwrap();
        assert_eq!(rows.columns, ["id", "name"]);
        assert_eq!(rows.rows, vec![vec![Value::Int(1), Value::Null]]);
        assert_eq!(db.next_id("t").unwrap(), 2);
        assert!(db.table_exists("t").unwrap());
        assert!(!db.table_exists("nope").unwrap());
    }

    #[test]
    fn unopenable_sqlite_path_is_named() {
        let err = Database::connect(&DatabaseConfig::Sqlite {
            path: "/nonexistent-dir/x/vikunja.db".into(),
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("/nonexistent-dir/x/vikunja.db") && err.contains("help:"),
            "{err}"
        );
    }
}
