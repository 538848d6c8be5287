//! End-to-end: the real `mongo-standin` binary as server and tools, the official Rust
//! `mongodb` driver (sync API) as client.

use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::sync::Client;
use mongodb::IndexModel;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mongo-standin");

/// A server child process; killed on drop.
struct Mongod {
    child: Child,
    port: u16,
}

impl Mongod {
    /// Starts on an ephemeral port and waits for the "listening on" line (the port is bound then).
    fn start(dbpath: &Path, auth: bool) -> Mongod {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "mongod",
            "--port",
            "0",
            "--bind_ip",
            "127.0.0.1",
            "--dbpath",
        ])
        .arg(dbpath);
        if auth {
            cmd.arg("--auth");
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn server");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split([' ', ',']).next())
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Mongod { child, port }
    }
    fn uri(&self, cred: &str, db: &str) -> String {
        format!(
            "mongodb://{cred}127.0.0.1:{}/{db}?authSource=admin&serverSelectionTimeoutMS=5000",
            self.port
        )
    }
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mongod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("run tool")
}

fn shell(uri: &str, dir: &Path, text: &str) -> std::process::Output {
    let f = dir.join("script.js");
    std::fs::write(&f, text).unwrap();
    tool(&["mongosh", uri, "--quiet", "--file", f.to_str().unwrap()])
}

fn code_of(e: &mongodb::error::Error) -> Option<i32> {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

#[test]
fn ping_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let s = Mongod::start(dir.path(), false);
    let c = Client::with_uri_str(s.uri("", "")).unwrap();
    let r = c
        .database("admin")
        .run_command(doc! {"ping": 1})
        .run()
        .unwrap();
    assert_eq!(r.get_f64("ok").unwrap(), 1.0);
}

#[test]
fn auth_crud_persistence_dump_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Mongod::start(&data, true);

    // Localhost exception: the first user is created without credentials.
    let out = shell(&s.uri("", "admin"), dir.path(), "db.getSiblingDB(\"admin\").createUser({user: \"root\", pwd: \"rootpw\", roles: [{role: \"root\", db: \"admin\"}]})\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Now the exception is gone.
    let out = shell(&s.uri("", "admin"), dir.path(), "db.getSiblingDB(\"admin\").createUser({user: \"x\", pwd: \"y\", roles: [{role: \"root\", db: \"admin\"}]})\n");
    assert!(!out.status.success());
    let out = shell(&s.uri("root:rootpw@", "admin"), dir.path(), "db.getSiblingDB(\"admin\").createUser({user: \"app\", pwd: \"s3cret\", roles: [{role: \"readWrite\", db: \"appdb\"}]})\ndb.runCommand({ping: 1})\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("{ ok: 1 }"));

    // Wrong password refused.
    let bad = Client::with_uri_str(s.uri("app:wrong@", "appdb")).unwrap();
    let err = bad
        .database("appdb")
        .run_command(doc! {"ping": 1})
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("uthentication"), "{err}");

    // Unauthenticated data access refused.
    let anon = Client::with_uri_str(s.uri("", "appdb")).unwrap();
    let err = anon
        .database("appdb")
        .collection::<Document>("t")
        .insert_one(doc! {"a": 1})
        .run()
        .unwrap_err();
    assert_eq!(code_of(&err), Some(13), "{err}");

    let c = Client::with_uri_str(s.uri("app:s3cret@", "appdb")).unwrap();
    let db = c.database("appdb");
    let users = db.collection::<Document>("users");
    users
        .insert_one(doc! {"name": "ann", "age": 31, "tags": ["a"], "addr": {"city": "Oslo"}})
        .run()
        .unwrap();
    users
        .insert_many(vec![
            doc! {"name": "bob", "age": 25},
            doc! {"name": "cid", "age": 40},
            doc! {"name": "dee", "age": 35},
        ])
        .run()
        .unwrap();
    let names = |filter: Document| -> Vec<String> {
        users
            .find(filter)
            .sort(doc! {"age": -1})
            .run()
            .unwrap()
            .map(|d| d.unwrap().get_str("name").unwrap().to_string())
            .collect()
    };
    assert_eq!(names(doc! {"age": {"$gte": 30}}), ["cid", "dee", "ann"]);
    assert_eq!(names(doc! {"addr.city": "Oslo"}), ["ann"]);
    assert_eq!(
        names(doc! {"$or": [{"name": "bob"}, {"age": {"$in": [40]}}]}),
        ["cid", "bob"]
    );
    let r = users
        .update_one(doc! {"name": "bob"}, doc! {"$set": {"age": 26}})
        .run()
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    assert_eq!(
        users
            .find_one(doc! {"name": "bob"})
            .run()
            .unwrap()
            .unwrap()
            .get_i32("age")
            .unwrap(),
        26
    );
    assert_eq!(
        users
            .delete_one(doc! {"name": "dee"})
            .run()
            .unwrap()
            .deleted_count,
        1
    );
    assert_eq!(users.count_documents(doc! {}).run().unwrap(), 3);
    assert_eq!(
        users
            .count_documents(doc! {"age": {"$lt": 30}})
            .run()
            .unwrap(),
        1
    );

    users
        .create_index(
            IndexModel::builder()
                .keys(doc! {"name": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .run()
        .unwrap();
    let err = users.insert_one(doc! {"name": "ann"}).run().unwrap_err();
    assert_eq!(code_of(&err), Some(11000), "{err}");

    // readWrite on appdb does not reach other databases.
    let err = c
        .database("other")
        .collection::<Document>("t")
        .insert_one(doc! {"a": 1})
        .run()
        .unwrap_err();
    assert_eq!(code_of(&err), Some(13), "{err}");
    drop(c);

    // Data, users and indexes survive a restart.
    s.stop();
    let s = Mongod::start(&data, true);
    let c = Client::with_uri_str(s.uri("app:s3cret@", "appdb")).unwrap();
    let users = c.database("appdb").collection::<Document>("users");
    assert_eq!(users.count_documents(doc! {}).run().unwrap(), 3);
    assert_eq!(
        code_of(&users.insert_one(doc! {"name": "bob"}).run().unwrap_err()),
        Some(11000)
    );

    // mongodump -> drop -> mongorestore returns every document.
    let archive = dir.path().join("appdb.archive.gz");
    let archive_arg = format!("--archive={}", archive.display());
    let app_uri = s.uri("app:s3cret@", "appdb");
    // The password in a --config file (0600 in real use), as MongoDB's tools take it: never argv.
    let conf = dir.path().join("dump.yaml");
    std::fs::write(&conf, "password: s3cret\n").unwrap();
    let out = tool(&[
        "mongodump",
        "--uri",
        &s.uri("app@", "appdb"),
        "--config",
        conf.to_str().unwrap(),
        &archive_arg,
        "--gzip",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before: Vec<Document> = users
        .find(doc! {})
        .sort(doc! {"name": 1})
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    users.drop().run().unwrap();
    assert_eq!(users.count_documents(doc! {}).run().unwrap(), 0);
    let out = tool(&[
        "mongorestore",
        "--uri",
        &app_uri,
        &archive_arg,
        "--gzip",
        "--drop",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after: Vec<Document> = users
        .find(doc! {})
        .sort(doc! {"name": 1})
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        code_of(&users.insert_one(doc! {"name": "cid"}).run().unwrap_err()),
        Some(11000),
        "unique index restored"
    );

    // nsFrom/nsTo restores into another database (root may write anywhere).
    let root_uri = s.uri("root:rootpw@", "admin");
    let out = tool(&[
        "mongorestore",
        "--uri",
        &root_uri,
        &archive_arg,
        "--gzip",
        "--nsFrom",
        "appdb.*",
        "--nsTo",
        "appcopy.*",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = Client::with_uri_str(&root_uri).unwrap();
    let copy: Vec<Document> = root
        .database("appcopy")
        .collection::<Document>("users")
        .find(doc! {})
        .sort(doc! {"name": 1})
        .run()
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(copy, before);

    // A file with a line outside the accepted shapes exits 1 and runs nothing.
    let out = shell(
        &root_uri,
        dir.path(),
        "db.getSiblingDB(\"appcopy\").dropDatabase()\ndb.users.find()\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    assert_eq!(
        root.database("appcopy")
            .collection::<Document>("users")
            .count_documents(doc! {})
            .run()
            .unwrap(),
        3
    );

    // The accepted shapes do run: drop the copy, change and drop a user.
    let out = shell(&root_uri, dir.path(), "db.getSiblingDB(\"appcopy\").dropDatabase()\ndb.getSiblingDB(\"admin\").updateUser(\"app\", {pwd: \"new\"})\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root
        .list_database_names()
        .run()
        .unwrap()
        .contains(&"appcopy".to_string()));
    let c2 = Client::with_uri_str(s.uri("app:new@", "appdb")).unwrap();
    assert_eq!(
        c2.database("appdb")
            .collection::<Document>("users")
            .count_documents(doc! {})
            .run()
            .unwrap(),
        3
    );
    let out = shell(
        &root_uri,
        dir.path(),
        "db.getSiblingDB(\"admin\").dropUser(\"app\")\n",
    );
    assert!(out.status.success());
}
