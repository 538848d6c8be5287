//! Database adapters: the one place that knows each kind of database a profile can use
//! (files only, SQLite, PostgreSQL, MariaDB, MongoDB, and external servers of the last three). Install,
//! update, backup, restore, status, reconfigure and lint ask the adapter of an instance's kind
//! for its packages, unit, port, how to create the database, dump it, load a dump back and
//! check it; none of them matches on a kind. Adding a kind is one more adapter here.
//!
//! Scripts an adapter returns are `sh` text whose values are quoted with [`q`]; secrets never
//! appear in them: they travel in private files ([`Adapter::client_secret`],
//! [`Adapter::create_local`]) or environment variables read from such files.

mod files;
mod mariadb;
mod mongodb;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::ct::CtAccess;
use crate::profile::DatabaseKind;
use crate::render::DbContext;

/// Quotes a value for `sh`.
pub fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// How `status` checks a kind of database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Nothing to check: the app keeps its data in files.
    FilesOnly,
    /// The database file in the data directory, readable by the app's user.
    File,
    /// A local server's unit must be active.
    Unit(&'static str),
    /// A server outside the container: not checked from it.
    External,
}

/// Where a restore finds the dump and puts the database.
pub struct RestoreSpot<'a> {
    /// The staged dump in the container.
    pub dump: &'a str,
    /// The active slot's data directory.
    pub data_dir: &'a str,
    /// The profile's `backup.sqlite_file` (relative to the data directory).
    pub sqlite_file: Option<&'a str>,
    /// The app's user (owner of a database file).
    pub user: &'a str,
    /// The database the dump was taken of, as the archive records it (MongoDB restores its
    /// collections under the target's name).
    pub source_db: &'a str,
}

/// A restore of a dump: its script, a client secret file it needs, and whether it overwrites
/// the database in place (so only the safety backup can undo it).
pub struct Restore {
    pub script: String,
    pub secret: Option<(&'static str, String)>,
    pub in_place: bool,
}

/// A client connection for the update's pre-update dump and its rollback: the environment
/// variable that carries the password and the connection options (`{conn}`).
pub struct Client {
    pub password_env: &'static str,
    pub conn: String,
}

pub trait Adapter: Sync {
    fn kind(&self) -> DatabaseKind;

    fn label(&self) -> &'static str {
        self.kind().label()
    }

    /// A database server (local or external), as opposed to files in the data directory.
    fn is_server(&self) -> bool {
        false
    }

    /// A server outside the container.
    fn is_external(&self) -> bool {
        false
    }

    /// CPU features the server needs on the node (MongoDB ≥ 5 on x86_64: `avx`); install
    /// checks the node's flags before anything is created.
    fn cpu_flags(&self) -> &'static [&'static str] {
        &[]
    }

    /// What to do on a node that lacks [`Adapter::cpu_flags`].
    fn cpu_help(&self) -> &'static str {
        ""
    }

    /// The connection string templates see as `db.url` ("" for kinds whose apps take parts).
    fn url(&self, db: &DbContext) -> String {
        let _ = db;
        String::new()
    }

    /// The port a server listens on unless told otherwise (0: no server).
    fn default_port(&self) -> u16 {
        0
    }

    /// Debian packages the container needs for this kind (the server, or the client that dumps
    /// and restores an external server's database, or the SQLite shell for consistent copies).
    fn packages(&self) -> &'static [&'static str] {
        &[]
    }

    /// A tool dumps and restores need, and its package: installed on demand in containers made
    /// before it was one of the base packages.
    fn tool(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// The local server's unit, ordered before the app's.
    fn local_unit(&self) -> Option<&'static str> {
        None
    }

    fn health(&self) -> Health;

    /// The database as templates and operations see it, from an instance's settings: a local
    /// server's database and user are named after the profile.
    fn context(
        &self,
        settings: &BTreeMap<String, String>,
        profile: &str,
        password: &str,
    ) -> DbContext {
        let _ = (settings, profile, password);
        DbContext::files(self.label())
    }

    /// Settings for lint's sample render.
    fn sample(&self, profile: &str) -> DbContext {
        let mut s = BTreeMap::new();
        s.insert("db_host".to_string(), "db.example.org".to_string());
        s.insert("db_port".to_string(), self.default_port().to_string());
        s.insert("db_name".to_string(), local_name(profile));
        s.insert("db_user".to_string(), local_name(profile));
        self.context(&s, profile, "sample-password")
    }

    /// Creates the app's database and user on a local server in the container (installing
    /// and starting it first if needed). The password travels in a private file.
    fn create_local(
        &self,
        ct: &dyn CtAccess,
        vmid: u32,
        profile: &str,
        password: &str,
    ) -> Result<DbContext> {
        let _ = (ct, vmid, profile, password);
        bail!("{} is not a local database server", self.label())
    }

    /// The archive entry of the dump ("" for no dump).
    fn dump_entry(&self, sqlite_file: Option<&str>) -> String {
        let _ = sqlite_file;
        String::new()
    }

    /// Whether a backup holds a dump of this kind (files-only apps have none).
    fn has_dump(&self) -> bool {
        !self.dump_entry(None).is_empty()
    }

    /// A private client file (path, text) the dump and restore scripts read credentials from.
    fn client_secret(&self, db: &DbContext) -> Option<(&'static str, String)> {
        let _ = db;
        None
    }

    /// The lines that write the dump to `"$S"/ENTRY` ("" for no dump).
    fn dump_script(
        &self,
        db: &DbContext,
        data_dir: &str,
        sqlite_file: Option<&str>,
        entry: &str,
    ) -> Result<String> {
        let _ = (db, data_dir, sqlite_file, entry);
        Ok(String::new())
    }

    /// Loads a backup's dump (None: nothing to load).
    fn restore(&self, db: &DbContext, at: &RestoreSpot) -> Result<Option<Restore>> {
        let _ = (db, at);
        Ok(None)
    }

    /// Whether a restore overwrites the database in place.
    fn restores_in_place(&self) -> bool {
        false
    }

    /// Puts the previous database back after a cut-off restore, from what is on disk
    /// (safe whether or not the restore ran).
    fn restore_undo(&self, db: &DbContext, at: &RestoreSpot) -> Option<String> {
        let _ = (db, at);
        None
    }

    /// Removes what a finished restore kept of the previous database.
    fn restore_cleanup(&self, db: &DbContext, at: &RestoreSpot) -> Option<String> {
        let _ = (db, at);
        None
    }

    /// The client connection of the update's pre-update dump (None: the slot's data copy is
    /// the pre-update copy).
    fn client(&self, db: &DbContext) -> Option<Client> {
        let _ = db;
        None
    }

    /// The update dump's file extension.
    fn dump_ext(&self) -> &'static str {
        "sql"
    }

    /// The update's pre-update dump of `{conn}` (the database `db`) into FILE (with `--clean`:
    /// loading it back replaces what the new version changed).
    fn update_dump(&self, db: &DbContext, file: &str) -> String {
        let _ = (db, file);
        String::new()
    }

    /// Loads an update dump of the database named `source` into `db`, which afterwards holds
    /// exactly the dump (rollback: the same database; a slot's own copy: another one).
    fn update_load(&self, db: &DbContext, file: &str, source: &str) -> String {
        let _ = (db, file, source);
        String::new()
    }

    /// Whether each slot can run on a database of its own (`NAME` for blue, `NAME_green` for
    /// green): the update loads the pre-update dump into the new slot's, so the version that
    /// serves keeps its data untouched until the switch, and rollback is a switch back.
    fn slot_databases(&self) -> bool {
        false
    }

    /// `db` under another database name (a connection string that holds it follows).
    fn renamed(&self, db: DbContext, name: String) -> DbContext {
        DbContext { name, ..db }
    }
}

/// The instance setting that records that each slot has its own database (set at install
/// when the adapter can; records without it share one database between the slots).
pub const SLOT_DBS: &str = "db_slots";

/// Whether an instance's settings give each slot a database of its own.
pub fn separate_slots(settings: &BTreeMap<String, String>) -> bool {
    settings.get(SLOT_DBS).map(String::as_str) == Some("separate")
        && of_settings(settings).slot_databases()
}

/// The name of `slot`'s database, from the blue slot's (`NAME`, `NAME_green`).
pub fn slot_db_name(base: &str, slot: crate::instance::Slot) -> String {
    match slot {
        crate::instance::Slot::Blue => base.to_string(),
        crate::instance::Slot::Green => format!("{base}_green"),
    }
}

/// The database `slot` runs on, from the blue slot's (`base`).
pub fn in_slot(
    base: &DbContext,
    settings: &BTreeMap<String, String>,
    slot: crate::instance::Slot,
) -> DbContext {
    if base.adapter().slot_databases()
        && settings.get(SLOT_DBS).map(String::as_str) == Some("separate")
    {
        base.adapter()
            .renamed(base.clone(), slot_db_name(&base.name, slot))
    } else {
        base.clone()
    }
}

/// The database and user name of a local server: the profile's name, `-` as `_`.
pub fn local_name(profile: &str) -> String {
    profile.replace('-', "_")
}

static FILES: files::Files = files::Files;
static SQLITE: sqlite::Sqlite = sqlite::Sqlite;
static POSTGRES: postgres::Postgres = postgres::Postgres { external: false };
static EXTERNAL_POSTGRES: postgres::Postgres = postgres::Postgres { external: true };
static MARIADB: mariadb::Mariadb = mariadb::Mariadb { external: false };
static EXTERNAL_MARIADB: mariadb::Mariadb = mariadb::Mariadb { external: true };
static MONGODB: mongodb::Mongodb = mongodb::Mongodb { external: false };
static EXTERNAL_MONGODB: mongodb::Mongodb = mongodb::Mongodb { external: true };

/// The adapter of a kind.
pub fn adapter(kind: DatabaseKind) -> &'static dyn Adapter {
    match kind {
        DatabaseKind::None => &FILES,
        DatabaseKind::Sqlite => &SQLITE,
        DatabaseKind::Postgres => &POSTGRES,
        DatabaseKind::ExternalPostgres => &EXTERNAL_POSTGRES,
        DatabaseKind::Mariadb => &MARIADB,
        DatabaseKind::ExternalMariadb => &EXTERNAL_MARIADB,
        DatabaseKind::Mongodb => &MONGODB,
        DatabaseKind::ExternalMongodb => &EXTERNAL_MONGODB,
    }
}

/// The kind a label names (`postgres`, `external-mariadb` ...), as records and archives store it.
pub fn kind_of(label: &str) -> Option<DatabaseKind> {
    DatabaseKind::ALL.into_iter().find(|k| k.label() == label)
}

/// The adapter of a label; an unknown label is an error naming it.
pub fn by_label(label: &str) -> Result<&'static dyn Adapter> {
    match kind_of(label) {
        Some(k) => Ok(adapter(k)),
        None => bail!("unknown database kind `{}`", label.escape_debug()),
    }
}

/// The adapter of an instance record's `database` setting. A record without one was written
/// before the kind was stored, when every instance used SQLite.
pub fn of_settings(settings: &BTreeMap<String, String>) -> &'static dyn Adapter {
    settings
        .get("database")
        .and_then(|k| kind_of(k))
        .map(adapter)
        .unwrap_or(&SQLITE)
}

/// The database of the format-1 default (SQLite), for renders without an instance.
pub fn default_context() -> DbContext {
    SQLITE.context(&BTreeMap::new(), "", "")
}

impl DbContext {
    /// The adapter of this database's kind (an unknown kind reads as SQLite, as in
    /// [`of_settings`]).
    pub fn adapter(&self) -> &'static dyn Adapter {
        kind_of(&self.kind).map(adapter).unwrap_or(&SQLITE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_an_adapter_of_its_own_label() {
        for k in DatabaseKind::ALL {
            assert_eq!(adapter(k).kind(), k);
            assert_eq!(kind_of(k.label()), Some(k));
        }
        assert!(by_label("mongo").is_err());
    }

    #[test]
    fn servers_have_ports_and_clients_files_do_not() {
        for k in DatabaseKind::ALL {
            let a = adapter(k);
            assert_eq!(a.is_server(), a.default_port() != 0, "{k:?}");
            assert_eq!(
                a.is_server(),
                a.client(&a.sample("my-app")).is_some(),
                "{k:?}"
            );
            assert_eq!(
                a.local_unit().is_some(),
                matches!(a.health(), Health::Unit(_))
            );
        }
    }

    #[test]
    fn no_secret_in_scripts() {
        for k in DatabaseKind::ALL {
            let a = adapter(k);
            let db = a.sample("app");
            let entry = a.dump_entry(Some("app.db"));
            let dump = a
                .dump_script(&db, "/var/lib/app/blue", Some("app.db"), &entry)
                .unwrap();
            assert!(!dump.contains("sample-password"), "{k:?}: {dump}");
            let at = RestoreSpot {
                dump: "/s/db",
                data_dir: "/d",
                sqlite_file: Some("app.db"),
                user: "app",
                source_db: "app",
            };
            if let Some(r) = a.restore(&db, &at).unwrap() {
                assert!(!r.script.contains("sample-password"), "{k:?}");
                assert_eq!(r.in_place, a.restores_in_place());
                if let Some((_, text)) = r.secret {
                    assert!(text.contains("sample-password"));
                }
            }
            assert!(!a.update_dump(&db, "/f").contains("sample-password"));
            assert!(!a.update_load(&db, "/f", "app").contains("sample-password"));
        }
    }
}
