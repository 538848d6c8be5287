//! The database: indexes (settings, documents in insertion order), the task log and the task
//! counter, all in one JSON file under db_path rewritten atomically after every write, so an
//! acknowledged write survives SIGTERM. Writes run as tasks applied before the reply; dumps are
//! gzip'd JSON of the same state (not Meilisearch's tar format).

use crate::error::{ApiError, StartError};
use crate::Config;
use anyhow::Context;
use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const DATA_FILE: &str = "standin-db.json";
const DUMP_FORMAT: &str = "meili-standin-dump/1";

#[derive(Default, Serialize, Deserialize, Clone, PartialEq, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Db {
    pub next_task_uid: u64,
    pub indexes: BTreeMap<String, Index>,
    pub tasks: Vec<Value>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub primary_key: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Only the settings that were set; `settings()` adds the defaults.
    pub settings: Map<String, Value>,
    /// Document id (as text) to document, in insertion order.
    pub documents: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DumpFile {
    dump_format: String,
    pkg_version: String,
    created_at: String,
    db: Db,
}

/// Meilisearch v1's default settings, as GET /indexes/{uid}/settings shows them.
pub fn default_settings() -> Map<String, Value> {
    let v = json!({
        "displayedAttributes": ["*"], "searchableAttributes": ["*"], "filterableAttributes": [],
        "sortableAttributes": [],
        "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
        "stopWords": [], "nonSeparatorTokens": [], "separatorTokens": [], "dictionary": [],
        "synonyms": {}, "distinctAttribute": null, "proximityPrecision": "byWord",
        "typoTolerance": {"enabled": true, "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
                          "disableOnWords": [], "disableOnAttributes": []},
        "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}},
        "pagination": {"maxTotalHits": 1000}, "embedders": {}, "searchCutoffMs": null,
        "localizedAttributes": null, "facetSearch": true, "prefixSearch": "indexingTime",
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

impl Index {
    fn new(primary_key: Option<String>, now: &str) -> Index {
        Index {
            primary_key,
            created_at: now.into(),
            updated_at: now.into(),
            settings: Map::new(),
            documents: Map::new(),
        }
    }

    pub fn settings(&self) -> Map<String, Value> {
        let mut all = default_settings();
        for (k, v) in &self.settings {
            all.insert(k.clone(), v.clone());
        }
        all
    }

    /// A list setting (`searchableAttributes`, ...) as strings.
    pub fn list_setting(&self, key: &str) -> Vec<String> {
        let all = self.settings();
        let list = all
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        list.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    }

    pub fn view(&self, uid: &str) -> Value {
        json!({"uid": uid, "createdAt": self.created_at, "updatedAt": self.updated_at,
               "primaryKey": self.primary_key})
    }

    pub fn stats(&self) -> Value {
        let mut fields: BTreeMap<&str, u64> = BTreeMap::new();
        for doc in self.documents.values() {
            for k in doc.as_object().into_iter().flat_map(|o| o.keys()) {
                *fields.entry(k).or_default() += 1;
            }
        }
        json!({"numberOfDocuments": self.documents.len(), "isIndexing": false,
               "fieldDistribution": fields})
    }
}

pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A write, run as a task.
pub enum Op {
    CreateIndex {
        uid: String,
        primary_key: Option<String>,
    },
    UpdateIndex {
        uid: String,
        primary_key: Option<String>,
    },
    DeleteIndex {
        uid: String,
    },
    AddDocuments {
        uid: String,
        docs: Vec<Map<String, Value>>,
        primary_key: Option<String>,
        merge: bool,
    },
    /// `ids: None` deletes every document.
    DeleteDocuments {
        uid: String,
        ids: Option<Vec<String>>,
    },
    /// A `null` value resets that setting.
    UpdateSettings {
        uid: String,
        settings: Map<String, Value>,
    },
    Dump,
}

impl Op {
    fn kind(&self) -> &'static str {
        match self {
            Op::CreateIndex { .. } => "indexCreation",
            Op::UpdateIndex { .. } => "indexUpdate",
            Op::DeleteIndex { .. } => "indexDeletion",
            Op::AddDocuments { .. } => "documentAdditionOrUpdate",
            Op::DeleteDocuments { .. } => "documentDeletion",
            Op::UpdateSettings { .. } => "settingsUpdate",
            Op::Dump => "dumpCreation",
        }
    }

    fn index_uid(&self) -> Option<&str> {
        match self {
            Op::CreateIndex { uid, .. }
            | Op::UpdateIndex { uid, .. }
            | Op::DeleteIndex { uid }
            | Op::AddDocuments { uid, .. }
            | Op::DeleteDocuments { uid, .. }
            | Op::UpdateSettings { uid, .. } => Some(uid),
            Op::Dump => None,
        }
    }

    /// The task's `details` when it fails.
    fn failed_details(&self) -> Value {
        match self {
            Op::CreateIndex { primary_key, .. } | Op::UpdateIndex { primary_key, .. } => {
                json!({"primaryKey": primary_key})
            }
            Op::DeleteIndex { .. } => json!({"deletedDocuments": 0}),
            Op::AddDocuments { docs, .. } => {
                json!({"receivedDocuments": docs.len(), "indexedDocuments": 0})
            }
            Op::DeleteDocuments { ids, .. } => {
                json!({"providedIds": ids.as_ref().map_or(0, Vec::len),
                                                       "deletedDocuments": 0, "originalFilter": null})
            }
            Op::UpdateSettings { settings, .. } => Value::Object(settings.clone()),
            Op::Dump => json!({"dumpUid": null}),
        }
    }

    /// Applies the write to its index (`None`: absent); returns the task's `details`.
    fn apply(&self, slot: &mut Option<Index>, now: &str) -> Result<Value, ApiError> {
        let not_found = |uid: &str| ApiError::IndexNotFound(uid.to_string());
        let details = match self {
            Op::CreateIndex { uid, primary_key } => {
                if slot.is_some() {
                    return Err(ApiError::IndexAlreadyExists(uid.clone()));
                }
                *slot = Some(Index::new(primary_key.clone(), now));
                json!({"primaryKey": primary_key})
            }
            Op::UpdateIndex { uid, primary_key } => {
                let index = slot.as_mut().ok_or_else(|| not_found(uid))?;
                match (&index.primary_key, primary_key) {
                    (Some(old), Some(new)) if old != new && !index.documents.is_empty() => {
                        return Err(ApiError::PrimaryKeyAlreadyExists(old.clone()))
                    }
                    (_, Some(new)) => index.primary_key = Some(new.clone()),
                    _ => {}
                }
                json!({"primaryKey": primary_key})
            }
            Op::DeleteIndex { uid } => {
                let index = slot.take().ok_or_else(|| not_found(uid))?;
                json!({"deletedDocuments": index.documents.len()})
            }
            Op::AddDocuments {
                docs,
                primary_key,
                merge,
                ..
            } => {
                let index = slot.get_or_insert_with(|| Index::new(None, now));
                let pk = match (&index.primary_key, primary_key) {
                    (Some(old), Some(given)) if old != given => {
                        return Err(ApiError::PrimaryKeyAlreadyExists(old.clone()))
                    }
                    (Some(old), _) => old.clone(),
                    (None, Some(given)) => given.clone(),
                    (None, None) => match docs.first() {
                        Some(first) => infer_primary_key(first)?,
                        None => return Ok(json!({"receivedDocuments": 0, "indexedDocuments": 0})),
                    },
                };
                for doc in docs {
                    let id = document_id(doc, &pk)?;
                    match index.documents.get_mut(&id) {
                        Some(Value::Object(old)) if *merge => {
                            old.extend(doc.iter().map(|(k, v)| (k.clone(), v.clone())))
                        }
                        _ => {
                            index.documents.insert(id, Value::Object(doc.clone()));
                        }
                    }
                }
                index.primary_key = Some(pk);
                json!({"receivedDocuments": docs.len(), "indexedDocuments": docs.len()})
            }
            Op::DeleteDocuments { uid, ids } => {
                let index = slot.as_mut().ok_or_else(|| not_found(uid))?;
                let (provided, deleted) = match ids {
                    None => (0, std::mem::take(&mut index.documents).len()),
                    Some(ids) => {
                        let gone = ids
                            .iter()
                            .filter(|id| index.documents.shift_remove(*id).is_some());
                        (ids.len(), gone.count())
                    }
                };
                json!({"providedIds": provided, "deletedDocuments": deleted, "originalFilter": null})
            }
            Op::UpdateSettings { settings, .. } => {
                let index = slot.get_or_insert_with(|| Index::new(None, now));
                for (k, v) in settings {
                    if v.is_null() {
                        index.settings.remove(k);
                    } else {
                        index.settings.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(settings.clone())
            }
            Op::Dump => unreachable!("dumps are written by Store::submit"),
        };
        if let Some(index) = slot {
            index.updated_at = now.into();
        }
        Ok(details)
    }
}

/// Meilisearch's inference: the one field of the first document whose name ends in `id`.
fn infer_primary_key(doc: &Map<String, Value>) -> Result<String, ApiError> {
    let candidates: Vec<String> = doc
        .keys()
        .filter(|k| k.to_lowercase().ends_with("id"))
        .cloned()
        .collect();
    match candidates.len() {
        0 => Err(ApiError::NoPrimaryKeyCandidate),
        1 => Ok(candidates[0].clone()),
        _ => Err(ApiError::MultiplePrimaryKeyCandidates(candidates)),
    }
}

/// A document's id as text: an integer, or a string of `[A-Za-z0-9_-]`, at most 511 bytes.
pub fn document_id(doc: &Map<String, Value>, pk: &str) -> Result<String, ApiError> {
    let id = match doc.get(pk) {
        None => {
            return Err(ApiError::MissingDocumentId(
                pk.into(),
                Value::Object(doc.clone()).to_string(),
            ))
        }
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(ApiError::InvalidDocumentId(other.to_string())),
    };
    let ok = !id.is_empty()
        && id.len() <= 511
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(ApiError::InvalidDocumentId(format!("\"{id}\"")))
    }
}

pub struct Store {
    pub db: Db,
    dir: PathBuf,
    dump_dir: PathBuf,
    /// Held open: the flock on it keeps a second server off this database.
    _lock: File,
}

impl Store {
    /// Opens db_path, importing `import_dump` first when asked, with Meilisearch's rules.
    pub fn open(config: &Config) -> anyhow::Result<Store> {
        let dir = config.db_path.clone();
        let existed = dir.exists();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = lock(&dir)?;
        let data = dir.join(DATA_FILE);
        let has_data = data.exists();
        let imported = match &config.import_dump {
            Some(dump) if dump.exists() && !has_data => Some(read_dump(dump)),
            Some(_) if has_data && !config.ignore_dump_if_db_exists => {
                let shown = dir.canonicalize().unwrap_or(dir);
                return Err(StartError::DatabaseExists(shown).into());
            }
            Some(dump) if !dump.exists() && !config.ignore_missing_dump => {
                Some(Err(StartError::DumpMissing(dump.clone())))
            }
            _ => None,
        };
        let imported = match imported.transpose() {
            Ok(db) => db,
            Err(e) => {
                // As Meilisearch does: a failed import leaves no database behind.
                if !existed {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(e.into());
            }
        };
        let mut store = Store {
            db: Db::default(),
            dir,
            dump_dir: config.dump_dir.clone(),
            _lock: lock,
        };
        if let Some(db) = imported {
            store.db = db;
            store.save()?;
        } else if has_data {
            let text =
                std::fs::read(&data).with_context(|| format!("reading {}", data.display()))?;
            store.db = serde_json::from_slice(&text)
                .with_context(|| format!("{} is damaged", data.display()))?;
        }
        Ok(store)
    }

    fn save(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(&self.db)?;
        write_atomic(&self.dir.join(DATA_FILE), &bytes)
    }

    pub fn database_size(&self) -> u64 {
        std::fs::metadata(self.dir.join(DATA_FILE)).map_or(0, |m| m.len())
    }

    pub fn task(&self, uid: u64) -> Option<&Value> {
        self.db.tasks.iter().rev().find(|t| t["uid"] == uid)
    }

    /// Runs a write as a task: applied and saved before returning its summarized view (what
    /// the 202 answer carries). The task itself records success or failure.
    pub fn submit(&mut self, op: Op) -> anyhow::Result<Value> {
        let uid = self.db.next_task_uid;
        let enqueued = now();
        let started = std::time::Instant::now();
        let index_uid = op.index_uid().map(String::from);
        let before = index_uid
            .as_ref()
            .and_then(|u| self.db.indexes.get(u).cloned());
        let outcome = if let Op::Dump = op {
            self.db.next_task_uid += 1;
            self.write_dump().map_err(ApiError::from)
        } else {
            // Each write works on a copy of its index, so a failed one changes nothing.
            let mut slot = before.clone();
            let result = op.apply(&mut slot, &enqueued);
            if let (Ok(_), Some(u)) = (&result, &index_uid) {
                match slot {
                    Some(index) => self.db.indexes.insert(u.clone(), index),
                    None => self.db.indexes.remove(u),
                };
            }
            self.db.next_task_uid += 1;
            result
        };
        let (status, details, error) = match outcome {
            Ok(d) => ("succeeded", d, Value::Null),
            Err(e) => ("failed", op.failed_details(), e.to_json()),
        };
        let finished = now();
        self.db.tasks.push(json!({
            "uid": uid, "batchUid": uid, "indexUid": index_uid, "status": status,
            "type": op.kind(), "canceledBy": null, "details": details, "error": error,
            "duration": format!("PT{:.6}S", started.elapsed().as_secs_f64()),
            "enqueuedAt": enqueued, "startedAt": enqueued, "finishedAt": finished,
        }));
        if let Err(e) = self.save() {
            // Not on disk, so not acknowledged: undo in memory too.
            self.db.tasks.pop();
            self.db.next_task_uid = uid;
            if let Some(u) = &index_uid {
                match before {
                    Some(index) => self.db.indexes.insert(u.clone(), index),
                    None => self.db.indexes.remove(u),
                };
            }
            return Err(e);
        }
        Ok(
            json!({"taskUid": uid, "indexUid": index_uid, "status": "enqueued",
                  "type": op.kind(), "enqueuedAt": enqueued}),
        )
    }

    /// Writes `dump_dir/<dumpUid>.dump` and returns the task details naming it.
    fn write_dump(&self) -> anyhow::Result<Value> {
        let t = time::OffsetDateTime::now_utc();
        let dump_uid = format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}{:03}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        );
        let file = DumpFile {
            dump_format: DUMP_FORMAT.into(),
            pkg_version: crate::MEILI_VERSION.into(),
            created_at: now(),
            db: self.db.clone(),
        };
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        serde_json::to_writer(&mut gz, &file)?;
        std::fs::create_dir_all(&self.dump_dir)
            .with_context(|| format!("creating {}", self.dump_dir.display()))?;
        write_atomic(
            &self.dump_dir.join(format!("{dump_uid}.dump")),
            &gz.finish()?,
        )?;
        Ok(json!({"dumpUid": dump_uid}))
    }
}

fn read_dump(path: &Path) -> Result<Db, StartError> {
    let damaged = |reason: String| StartError::DumpDamaged {
        path: path.to_owned(),
        reason,
    };
    let mut text = Vec::new();
    File::open(path)
        .and_then(|f| GzDecoder::new(f).read_to_end(&mut text))
        .map_err(|e| damaged(format!("cannot read it as gzip: {e}")))?;
    let file: DumpFile =
        serde_json::from_slice(&text).map_err(|e| damaged(format!("bad content: {e}")))?;
    if file.dump_format != DUMP_FORMAT {
        return Err(damaged(format!(
            "unknown dump format `{}`",
            file.dump_format
        )));
    }
    Ok(file.db)
}

fn lock(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(StartError::DatabaseLocked(dir.to_owned()).into());
    }
    Ok(file)
}

/// Temp file (mode 0600) in the same directory, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", parent.display()))?;
    }
    Ok(())
}
