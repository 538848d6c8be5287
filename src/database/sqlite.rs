//! SQLite: a file in the slot's data directory (`backup.sqlite_file`), copied consistently with
//! `VACUUM INTO` while the app keeps writing.

use anyhow::{Context, Result};

use super::{q, Adapter, Health, Restore, RestoreSpot};
use crate::profile::DatabaseKind;
use crate::render::DbContext;

pub struct Sqlite;

impl Sqlite {
    fn file<'a>(at: &RestoreSpot<'a>) -> Result<&'a str> {
        at.sqlite_file
            .context("the profile names no backup.sqlite_file")
    }
}

impl Adapter for Sqlite {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Sqlite
    }

    fn packages(&self) -> &'static [&'static str] {
        &["sqlite3"]
    }

    fn tool(&self) -> Option<(&'static str, &'static str)> {
        Some(("sqlite3", "sqlite3"))
    }

    fn health(&self) -> Health {
        Health::File
    }

    fn dump_entry(&self, sqlite_file: Option<&str>) -> String {
        format!(
            "db/{}",
            sqlite_file
                .and_then(|f| f.rsplit('/').next())
                .unwrap_or("database.sqlite")
        )
    }

    fn dump_script(
        &self,
        _db: &DbContext,
        data_dir: &str,
        sqlite_file: Option<&str>,
        entry: &str,
    ) -> Result<String> {
        let file = sqlite_file.context(
            "the profile names no `backup.sqlite_file`, so a SQLite instance cannot be backed up",
        )?;
        let src = format!("{data_dir}/{file}");
        // One read transaction (`VACUUM INTO`): a consistent copy even while the app keeps
        // writing, which `.backup` restarts on forever under a steady write load; `.timeout`
        // waits for a write in progress instead of failing "database is locked".
        Ok(format!(
            "test -f {src} || {{ echo \"no database at {src}\" >&2; exit 3; }}\n\
             sqlite3 {src} '.timeout 30000' \"VACUUM INTO '$S/{entry}'\"\n\
             test \"$(sqlite3 \"$S\"/{e} 'PRAGMA quick_check')\" = ok || {{ echo 'the copied database fails its check' >&2; exit 3; }}\n",
            src = q(&src),
            e = q(entry),
        ))
    }

    fn restore(&self, _db: &DbContext, at: &RestoreSpot) -> Result<Option<Restore>> {
        let f = format!("{}/{}", at.data_dir, Self::file(at)?);
        // The dump is a plain file (the archive's checks, and again here): chown and chmod
        // must never reach through a link to another file. The previous file and its journals
        // are set aside, not deleted, until the restore has succeeded.
        Ok(Some(Restore {
            script: format!(
                "set -e\nF={f}\nif [ -L {dump} ] || [ ! -f {dump} ]; then echo 'the staged database is not a plain file' >&2; exit 3; fi\nfor x in '' -wal -shm -journal; do rm -f \"$F.launch-old$x\"; if [ -e \"$F$x\" ] || [ -L \"$F$x\" ]; then mv \"$F$x\" \"$F.launch-old$x\"; fi; done\nmv {dump} \"$F\"\nchown -h {u}:{u} \"$F\"\nif [ ! -L \"$F\" ]; then chmod 0640 \"$F\"; fi\n",
                f = q(&f),
                dump = q(at.dump),
                u = at.user
            ),
            secret: None,
            in_place: false,
        }))
    }

    fn restore_undo(&self, _db: &DbContext, at: &RestoreSpot) -> Option<String> {
        let f = format!("{}/{}", at.data_dir, at.sqlite_file.unwrap_or_default());
        Some(format!(
            "F={f}\nif [ -e \"$F.launch-old\" ]; then\n  for x in '' -wal -shm -journal; do rm -f \"$F$x\"; if [ -e \"$F.launch-old$x\" ]; then mv \"$F.launch-old$x\" \"$F$x\"; fi; done\nfi\n",
            f = q(&f)
        ))
    }

    fn restore_cleanup(&self, _db: &DbContext, at: &RestoreSpot) -> Option<String> {
        let f = at.sqlite_file?;
        Some(format!(
            "rm -f {d}/{f}.launch-old {d}/{f}.launch-old-wal {d}/{f}.launch-old-shm {d}/{f}.launch-old-journal\n",
            d = q(at.data_dir),
            f = q(f)
        ))
    }
}
