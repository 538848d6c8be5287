//! PostgreSQL with the pgvector extension, for an app's vector store (a retrieval API's).
//! The server is Debian's `postgresql-15`; the extension is `postgresql-15-pgvector`, which
//! Debian 12 does not have: on Debian 12 it comes from PostgreSQL's own repository (PGDG),
//! which the profile lists in `apt_sources` with its signing key. The major version is named
//! (never the `postgresql` metapackage, which PGDG points at its newest major).
//!
//! launch-tui makes a login role `rag` (no superuser, no CREATEDB, no CREATEROLE), its
//! database `rag`, which it owns, and the `vector` extension in it, as the `postgres`
//! superuser (a plain role may not create it; the app is told not to try). Loopback only
//! (Debian's `listen_addresses = localhost`), password authentication (Debian's `pg_hba.conf`
//! asks scram-sha-256 on 127.0.0.1). The password is letters and digits, generated; it reaches
//! psql on standard input from a shell builtin, and the dump and restore read it from a
//! private pgpass file (`/etc/launch/pgvector.pgpass`, 0600 root), never argv.
//!
//! Dumps and restores run as `rag` over TCP, never as the superuser: a dump from an archive is
//! hostile, and what it holds runs with the rights of the role that loads it.

use super::{Adapter, RestoreScripts};
use crate::database::q;
use crate::profile::ServiceKind;

pub const SECRET_KEY: &str = "pgvector_password";

/// The role and the database (one name: the app's vector store).
pub const NAME: &str = "rag";
const OLD: &str = "rag_launch_old";
const UNIT: &str = "postgresql.service";
const PGPASS: &str = "/etc/launch/pgvector.pgpass";

/// psql as the superuser, over the local socket.
fn su() -> &'static str {
    "psql_() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 \"$@\"; }\n"
}

/// Waits (at most 30 s) until the server accepts connections.
fn wait_ready() -> &'static str {
    "i=0\nuntil runuser -u postgres -- pg_isready -q; do i=$((i+1)); if [ \"$i\" -ge 300 ]; then echo 'PostgreSQL does not accept connections after 30 s (journalctl -u postgresql@15-main)' >&2; exit 1; fi; sleep 0.1; done\n"
}

/// Ends the sessions on the store's databases (the app's pool reconnects), so they can be
/// renamed or dropped.
fn end_sessions() -> String {
    format!(
        "psql_ -d postgres -tA -c \"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ('{NAME}', '{OLD}') AND pid <> pg_backend_pid()\" >/dev/null\n"
    )
}

/// The role's own connection (the pgpass file gives the password).
fn as_role(tool: &str) -> String {
    format!("PGPASSFILE={PGPASS} {tool} -h 127.0.0.1 -p 5432 -U {NAME} -d {NAME}")
}

pub struct Pgvector;

impl Adapter for Pgvector {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Pgvector
    }

    fn title(&self) -> &'static str {
        "PostgreSQL with pgvector"
    }

    fn packages(&self) -> &'static [&'static str] {
        &["postgresql-15", "postgresql-15-pgvector"]
    }

    fn unit(&self) -> &'static str {
        UNIT
    }

    fn port(&self) -> u16 {
        5432
    }

    fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    fn setup_script(&self, secret_file: &str) -> String {
        format!(
            "set -eu\npw=$(cat {f})\ncase \"$pw\" in ''|*[!A-Za-z0-9]*) echo 'the vector store password must be letters and digits' >&2; exit 1;; esac\n\
             systemctl enable {UNIT} >/dev/null 2>&1\nsystemctl start {UNIT}\n{wait}{su}\
             {{ printf \"SELECT 'CREATE ROLE {NAME} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{NAME}')\\\\gexec\\n\"; \
             printf \"ALTER ROLE {NAME} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '%s';\\n\" \"$pw\"; \
             printf \"SELECT 'CREATE DATABASE {NAME} OWNER {NAME}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{NAME}')\\\\gexec\\n\"; }} | psql_ -d postgres\n\
             psql_ -d {NAME} -c 'CREATE EXTENSION IF NOT EXISTS vector'\n\
             umask 077\nmkdir -p /etc/launch\nprintf '127.0.0.1:5432:{NAME}:{NAME}:%s\\n' \"$pw\" > {PGPASS}.new\nmv -f {PGPASS}.new {PGPASS}\n\
             {check} >/dev/null\n",
            f = q(secret_file),
            wait = wait_ready(),
            su = su(),
            check = as_role("psql -X -tA -c 'SELECT 1'"),
        )
    }

    fn dump_entry(&self) -> &'static str {
        "db/pgvector.dump"
    }

    fn dump_script(&self) -> String {
        format!(
            "{} -Fc > \"$S\"/{}\n",
            as_role("pg_dump"),
            q(self.dump_entry())
        )
    }

    fn restore_scripts(&self, dump: &str) -> RestoreScripts {
        RestoreScripts {
            // The current database is renamed aside (kept for the undo); a new one, with the
            // extension made by the superuser, gets the dump loaded by the role itself.
            restore: format!(
                "set -e\n{su}{end}psql_ -d postgres -c 'DROP DATABASE IF EXISTS {OLD}'\n\
                 if psql_ -d postgres -tA -c \"SELECT 1 FROM pg_database WHERE datname = '{NAME}'\" | grep -qx 1; then psql_ -d postgres -c 'ALTER DATABASE {NAME} RENAME TO {OLD}'; fi\n\
                 psql_ -d postgres -c 'CREATE DATABASE {NAME} OWNER {NAME}'\n\
                 psql_ -d {NAME} -c 'CREATE EXTENSION IF NOT EXISTS vector'\n\
                 {restore} --no-owner --no-privileges --no-comments --exit-on-error < {dump}\n",
                su = su(),
                end = end_sessions(),
                restore = as_role("pg_restore"),
                dump = q(dump),
            ),
            undo: format!(
                "set -e\n{su}if psql_ -d postgres -tA -c \"SELECT 1 FROM pg_database WHERE datname = '{OLD}'\" | grep -qx 1; then {end}psql_ -d postgres -c 'DROP DATABASE IF EXISTS {NAME}'; psql_ -d postgres -c 'ALTER DATABASE {OLD} RENAME TO {NAME}'; fi\n",
                su = su(),
                end = end_sessions(),
            ),
            cleanup: format!(
                "{su}{end}psql_ -d postgres -c 'DROP DATABASE IF EXISTS {OLD}'\n",
                su = su(),
                end = end_sessions(),
            ),
        }
    }

    fn ping_script(&self) -> String {
        // The role logs in with its password, and the extension is there.
        format!(
            "{} -X -tA -c \"SELECT extversion FROM pg_extension WHERE extname = 'vector'\" | grep -q .",
            as_role("psql")
        )
    }

    fn login(&self) -> (&'static str, &'static str) {
        (NAME, NAME)
    }
}
