//! In-memory data behind one global mutex, persisted synchronously: one file per
//! collection (`<dbPath>/<db>/<coll>.bson`: a metadata document with the index specs,
//! then every document), and `<dbPath>/users.bson` for users. Each file is rewritten
//! whole and atomically (temp file, fsync, rename) on every write: simple over fast.

use crate::scram::Credentials;
use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Collection {
    pub docs: Vec<Document>,
    /// Index specs as listIndexes returns them (`_id_` always first).
    pub indexes: Vec<Document>,
}

/// A new collection always has the `_id_` index.
impl Default for Collection {
    fn default() -> Self {
        Self::new()
    }
}

impl Collection {
    pub fn new() -> Self {
        Collection {
            docs: Vec::new(),
            indexes: vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}],
        }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// (role, db): only `readWrite` on one db and `root` are understood.
    pub roles: Vec<(String, String)>,
    pub creds: Credentials,
}

impl User {
    pub fn is_root(&self) -> bool {
        self.roles.iter().any(|(r, _)| r == "root")
    }
    pub fn may_use(&self, db: &str) -> bool {
        self.is_root() || self.roles.iter().any(|(r, d)| r == "readWrite" && d == db)
    }
}

pub struct Store {
    pub dir: Option<PathBuf>,
    pub dbs: BTreeMap<String, BTreeMap<String, Collection>>,
    pub users: Vec<User>,
}

/// File names keep `[A-Za-z0-9_-]` and percent-escape the rest, so any name is safe on disk.
fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unescape(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&name[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_atomic(path: &Path, docs: &[Document]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    let mut buf = Vec::new();
    for d in docs {
        d.to_writer(&mut buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    f.write_all(&buf)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        // Make the rename itself durable.
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn read_stream(path: &Path) -> io::Result<Vec<Document>> {
    let bytes = fs::read(path)?;
    let mut r = &bytes[..];
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(
            Document::from_reader(&mut r)
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?,
        );
    }
    Ok(out)
}

fn bin(v: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: v.to_vec(),
    })
}

fn get_bin(d: &Document, k: &str) -> Vec<u8> {
    match d.get(k) {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        _ => Vec::new(),
    }
}

impl Store {
    /// Opens (and loads) a store under `dir`; `None` keeps everything in memory.
    pub fn open(dir: Option<PathBuf>) -> io::Result<Store> {
        let mut store = Store {
            dir: dir.clone(),
            dbs: BTreeMap::new(),
            users: Vec::new(),
        };
        let Some(dir) = dir else { return Ok(store) };
        fs::create_dir_all(&dir)?;
        let users = dir.join("users.bson");
        if users.exists() {
            for d in read_stream(&users)? {
                let roles = d
                    .get_array("roles")
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_document())
                            .map(|r| {
                                (
                                    r.get_str("role").unwrap_or("").to_string(),
                                    r.get_str("db").unwrap_or("").to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                store.users.push(User {
                    name: d.get_str("user").unwrap_or("").to_string(),
                    roles,
                    creds: Credentials {
                        salt: get_bin(&d, "salt"),
                        iterations: d.get_i32("iterations").unwrap_or(15000) as u32,
                        stored_key: get_bin(&d, "storedKey"),
                        server_key: get_bin(&d, "serverKey"),
                    },
                });
            }
        }
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let db = unescape(&entry.file_name().to_string_lossy());
            for f in fs::read_dir(entry.path())? {
                let path = f?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("bson") {
                    continue;
                }
                let name = unescape(&path.file_stem().unwrap_or_default().to_string_lossy());
                let mut docs = read_stream(&path)?;
                if docs.is_empty() {
                    continue;
                }
                let meta = docs.remove(0);
                let indexes = meta
                    .get_array("indexes")
                    .map(|a| a.iter().filter_map(|i| i.as_document().cloned()).collect())
                    .unwrap_or_default();
                store
                    .dbs
                    .entry(db.clone())
                    .or_default()
                    .insert(name, Collection { docs, indexes });
            }
        }
        Ok(store)
    }

    fn coll_path(&self, db: &str, coll: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(escape(db)).join(format!("{}.bson", escape(coll))))
    }

    /// Writes one collection (or removes its file when the collection is gone).
    pub fn persist(&self, db: &str, coll: &str) -> io::Result<()> {
        let Some(path) = self.coll_path(db, coll) else {
            return Ok(());
        };
        match self.dbs.get(db).and_then(|d| d.get(coll)) {
            Some(c) => {
                fs::create_dir_all(path.parent().unwrap())?;
                let mut all = vec![
                    doc! {"indexes": c.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>()},
                ];
                all.extend(c.docs.iter().cloned());
                write_atomic(&path, &all)
            }
            None => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    pub fn persist_db_removed(&self, db: &str) -> io::Result<()> {
        if let Some(dir) = &self.dir {
            let p = dir.join(escape(db));
            if p.exists() {
                fs::remove_dir_all(p)?;
            }
        }
        Ok(())
    }

    pub fn persist_users(&self) -> io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let docs: Vec<Document> = self
            .users
            .iter()
            .map(|u| {
                doc! {
                    "user": &u.name,
                    "roles": u.roles.iter().map(|(r, d)| Bson::Document(doc! {"role": r, "db": d})).collect::<Vec<_>>(),
                    "salt": bin(&u.creds.salt),
                    "iterations": u.creds.iterations as i32,
                    "storedKey": bin(&u.creds.stored_key),
                    "serverKey": bin(&u.creds.server_key),
                }
            })
            .collect();
        write_atomic(&dir.join("users.bson"), &docs)
    }
}
