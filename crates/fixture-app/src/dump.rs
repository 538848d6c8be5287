//! `vikunja dump` and `vikunja restore`, with the archive layout of Vikunja's dump module:
//! the config file in use, `.env` (every VIKUNJA_* variable, secrets included, hence mode 0600),
//! `VERSION`, `database/<table>.json` and `files/<id>`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use zip::write::SimpleFileOptions;

use crate::build_info::BuildInfo;
use crate::config::{Config, Environment};
use crate::db::{Database, Value};
use crate::error::FixtureError;
use crate::{migrations, model, server};

pub const CONFIRMATION: &str = "Yes, I understand";

/// Vikunja's default name, with real minutes (its Go layout prints the hour twice).
pub fn default_file_name() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "vikunja-dump_[year]-[month]-[day]_[hour]-[minute]-[second].zip"
    );
    now.format(&format)
        .unwrap_or_else(|_| "vikunja-dump.zip".to_string())
}

pub fn dump(
    info: &BuildInfo,
    config: &Config,
    env: &Environment,
    dir: Option<&Path>,
    file_name: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let mut db = Database::connect(&config.database)?;
    migrations::check_not_newer(&mut db, info)?;
    let dir = dir.map_or_else(|| config.rootpath.clone(), Path::to_path_buf);
    let name = file_name.map_or_else(default_file_name, str::to_string);
    let target = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));

    // 0600 from creation: the archive holds the database password and the secret.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);

    if let Some(path) = &config.file {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.yml".to_string());
        let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        zip.start_file(base, options)?;
        zip.write_all(&content)?;
    }

    zip.start_file(".env", options)?;
    for (key, value) in env.vikunja_vars() {
        writeln!(zip, "{key}={value}")?;
    }

    zip.start_file("VERSION", options)?;
    zip.write_all(info.version.as_bytes())?;

    for table in migrations::TABLES {
        if !db.table_exists(table)? {
            continue;
        }
        let rows = db.query(&format!("SELECT * FROM {table} ORDER BY id"), &[])?;
        let json: Vec<serde_json::Map<String, serde_json::Value>> = rows
            .rows
            .iter()
            .map(|row| {
                rows.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.clone(), v.to_json()))
                    .collect()
            })
            .collect();
        zip.start_file(format!("database/{table}.json"), options)?;
        serde_json::to_writer(&mut zip, &json)?;
    }

    for id in model::attachment_ids(&mut db)? {
        let path = config.files_basepath.join(id.to_string());
        match std::fs::read(&path) {
            Ok(content) => {
                zip.start_file(format!("files/{id}"), options)?;
                zip.write_all(&content)?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                println!(
                    "WARNING: attachment {id} has no file at {}; left out",
                    path.display()
                );
            }
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!("reading {}", path.display())))
            }
        }
    }

    let file = zip.finish().context("finishing the dump archive")?;
    file.sync_all().context("flushing the dump archive")?;
    std::fs::rename(&partial, &target)
        .with_context(|| format!("moving the dump to {}", target.display()))?;
    Ok(target)
}

struct DumpArchive {
    path: PathBuf,
    zip: zip::ZipArchive<File>,
}

impl DumpArchive {
    fn open(path: &Path) -> anyhow::Result<DumpArchive> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let zip = zip::ZipArchive::new(file).map_err(|e| FixtureError::BadDump {
            path: path.to_path_buf(),
            problem: format!("not a readable zip ({e})"),
        })?;
        Ok(DumpArchive {
            path: path.to_path_buf(),
            zip,
        })
    }

    fn bad(&self, problem: impl Into<String>) -> FixtureError {
        FixtureError::BadDump {
            path: self.path.clone(),
            problem: problem.into(),
        }
    }

    fn read(&mut self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut entry = match self.zip.by_name(name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(anyhow!("reading {name} from the dump: {e}")),
        };
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .with_context(|| format!("reading {name} from the dump"))?;
        Ok(Some(data))
    }

    fn names(&self) -> anyhow::Result<Vec<String>> {
        self.zip
            .file_names()
            .map(|name| {
                name.map(|n| n.into_owned())
                    .map_err(|e| anyhow!("listing the dump: {e}"))
            })
            .collect()
    }

    fn table(
        &mut self,
        table: &str,
    ) -> anyhow::Result<Option<Vec<BTreeMap<String, serde_json::Value>>>> {
        let Some(data) = self.read(&format!("database/{table}.json"))? else {
            return Ok(None);
        };
        let rows = serde_json::from_slice(&data)
            .map_err(|e| self.bad(format!("database/{table}.json is not a list of rows ({e})")))?;
        Ok(Some(rows))
    }
}

pub struct RestoreOptions<'a> {
    pub file: &'a Path,
    pub preserve_config: bool,
}

/// Restores a dump into the configured database and files.basepath.
/// Asks for the confirmation line on `input`; all prompts share that one reader.
pub fn restore(
    info: &BuildInfo,
    explicit_config: Option<&Path>,
    env: &Environment,
    options: RestoreOptions<'_>,
    input: &mut dyn BufRead,
) -> anyhow::Result<()> {
    let mut archive = DumpArchive::open(options.file)?;
    let version = archive
        .read("VERSION")?
        .ok_or_else(|| archive.bad("it has no VERSION file"))?;
    let version = String::from_utf8_lossy(&version).trim().to_string();
    if version != info.version {
        return Err(FixtureError::DumpVersionMismatch {
            dump: version,
            running: info.version.clone(),
        }
        .into());
    }

    println!("Restoring a dump wipes the database and the attachment files of this Vikunja.");
    println!("To continue, type '{CONFIRMATION}' and press enter:");
    let mut answer = String::new();
    input
        .read_line(&mut answer)
        .context("reading the confirmation from stdin")?;
    if answer.trim_end_matches(['\n', '\r']) != CONFIRMATION {
        return Err(FixtureError::RestoreNotConfirmed.into());
    }

    if !options.preserve_config {
        let config_entry = archive
            .names()?
            .into_iter()
            .find(|n| matches!(n.as_str(), "config.yml" | "config.yaml"));
        if let Some(name) = config_entry {
            let content = archive.read(&name)?.unwrap_or_default();
            let target = env.cwd.join(&name);
            write_private(&target, &content)?;
            println!(
                "The config file was restored to {}. Check it, then press enter to go on.",
                target.display()
            );
            // End of input counts as enter, so a piped confirmation alone is enough.
            let mut ignored = String::new();
            input
                .read_line(&mut ignored)
                .context("reading from stdin")?;
        }
    }
    let config = Config::load(explicit_config, env)?;
    config.require_public_url()?;

    let mut db = Database::connect(&config.database)?;
    migrations::drop_all(&mut db)?;
    let dump_migrations: Vec<String> = archive
        .table("migrations")?
        .unwrap_or_default()
        .iter()
        .filter_map(|row| row.get("id").and_then(|v| v.as_str()).map(str::to_string))
        .collect();
    let ids: Vec<&str> = dump_migrations.iter().map(String::as_str).collect();
    migrations::apply(&mut db, &ids)?;

    for table in migrations::TABLES.iter().filter(|t| **t != "migrations") {
        let Some(rows) = archive.table(table)? else {
            continue;
        };
        let count = rows.len();
        db.transaction(|db| {
            for row in &rows {
                insert_row(db, table, row)?;
            }
            Ok(())
        })
        .with_context(|| format!("loading {table}"))?;
        println!("Restored table {table}: {count} rows");
    }

    std::fs::create_dir_all(&config.files_basepath)
        .with_context(|| format!("creating {}", config.files_basepath.display()))?;
    remove_attachment_files(&config.files_basepath)?;
    let mut restored_files = 0;
    for name in archive.names()? {
        let Some(id) = name.strip_prefix("files/") else {
            continue;
        };
        // Only plain numeric names: a crafted archive must not write outside files.basepath.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(archive
                .bad(format!("it holds an unexpected entry `{name}`"))
                .into());
        }
        let content = archive.read(&name)?.unwrap_or_default();
        server::write_file_atomically(&config.files_basepath.join(id), &content)?;
        restored_files += 1;
    }
    println!("Restored {restored_files} files");

    migrations::migrate(&mut db, info)?;
    println!("Restore done.");
    Ok(())
}

fn insert_row(
    db: &mut Database,
    table: &str,
    row: &BTreeMap<String, serde_json::Value>,
) -> anyhow::Result<()> {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for (column, value) in row {
        // Column names go into the SQL text, so only plain identifiers are accepted.
        if column.is_empty()
            || !column
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(anyhow!(
                "column name `{column}` in {table} is not a plain identifier"
            ));
        }
        columns.push(column.as_str());
        values.push(Value::from_json(value).with_context(|| format!("{table}.{column}"))?);
    }
    let placeholders = vec!["?"; columns.len()].join(", ");
    db.execute(
        &format!(
            "INSERT INTO {table} ({}) VALUES ({placeholders})",
            columns.join(", ")
        ),
        &values,
    )?;
    Ok(())
}

/// Only numeric names are ours; anything else in the folder is left alone.
fn remove_attachment_files(basepath: &Path) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(basepath).with_context(|| format!("listing {}", basepath.display()))?
    {
        let entry = entry.with_context(|| format!("listing {}", basepath.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // `mode` only applies to a new file; an existing one is tightened too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    file.write_all(content)
        .with_context(|| format!("writing {}", path.display()))
}
