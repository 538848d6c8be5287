//! The real binary on loopback (ephemeral ports): authentication, the production key check,
//! persistence across SIGTERM, dump and import, and configuration precedence.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const KEY: &str = "a-master-key-of-24-bytes";

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meili-standin"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MEILI_")) {
        cmd.env_remove(k);
    }
    cmd
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts the server on a free port and waits for its "listening" line.
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut all = vec!["--http-addr", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = command(dir, &all)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn meili-standin");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Server listening on: \"http://") {
                    let _ = tx.send(rest.trim_end_matches('"').to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("server did not start listening");
        Server { child, addr }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(k) = key {
            req += &format!("Authorization: Bearer {k}\r\n");
        }
        if !body.is_empty() {
            req += "Content-Type: application/json\r\n";
        }
        req += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
        stream.write_all(req.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let text = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(text).unwrap_or(Value::Null))
    }

    /// A write: answered 202, its task already final when asked.
    fn write(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, task) = self.call(method, path, Some(KEY), Some(body));
        assert_eq!(status, 202, "{task}");
        let (_, done) = self.call(
            "GET",
            &format!("/tasks/{}", task["taskUid"]),
            Some(KEY),
            None,
        );
        assert_eq!(done["status"], "succeeded", "{done}");
        done
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, Some(KEY), None);
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        wait(&mut self.child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn movies() -> Value {
    json!([
        {"id": 1, "title": "Carol", "genre": "drama"},
        {"id": "two", "title": "Wonder Woman", "genre": "action"},
        {"id": 3, "title": "Life of Brian", "genre": "comedy"},
    ])
}

#[test]
fn version_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--version"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "meilisearch 1.35.1\n");
    let s = Server::start(dir.path(), &["--master-key", KEY, "--db-path", "db"], &[]);
    assert_eq!(
        s.call("GET", "/health", None, None),
        (200, json!({"status": "available"}))
    );
    let (status, err) = s.call("GET", "/indexes", None, None);
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("missing_authorization_header"))
    );
    let (status, err) = s.call("GET", "/indexes", Some("wrong"), None);
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("invalid_api_key"))
    );
    assert_eq!(s.get("/indexes")["total"], 0);
    assert_eq!(s.get("/version")["pkgVersion"], "1.35.1");
    assert_eq!(
        s.get("/keys"),
        json!({"results": [], "offset": 0, "limit": 20, "total": 0})
    );
}

#[test]
fn production_needs_a_long_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--env", "production", "--db-path", "db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("You must provide a master key"),
        "{}",
        stderr(&out)
    );
    let out = run(
        dir.path(),
        &["--env", "production", "--master-key", "short-key"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("at least 16 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("short-key"),
        "the key is never printed"
    );
    let s = Server::start(
        dir.path(),
        &["--env", "production", "--db-path", "db"],
        &[("MEILI_MASTER_KEY", KEY)],
    );
    assert_eq!(s.get("/health")["status"], "available");
}

#[test]
fn writes_survive_sigterm_and_search_works() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--master-key", KEY, "--db-path", "db"];
    let s = Server::start(dir.path(), &args, &[]);
    let task = s.write("POST", "/indexes/movies/documents", movies());
    assert_eq!(
        task["details"],
        json!({"receivedDocuments": 3, "indexedDocuments": 3})
    );
    s.write(
        "PUT",
        "/indexes/movies/documents",
        json!([{"id": 1, "year": 2015}]),
    );
    assert!(s.stop().success());

    let s = Server::start(dir.path(), &args, &[]);
    assert_eq!(s.get("/indexes/movies")["primaryKey"], "id");
    assert_eq!(
        s.get("/indexes/movies/documents/1")["year"],
        2015,
        "PUT merges"
    );
    assert_eq!(s.get("/indexes/movies/documents/1")["title"], "Carol");
    let hits = s
        .call(
            "POST",
            "/indexes/movies/search",
            Some(KEY),
            Some(json!({"q": "WON wom"})),
        )
        .1;
    assert_eq!(
        hits["hits"],
        json!([{"id": "two", "title": "Wonder Woman", "genre": "action"}])
    );
    assert_eq!(hits["estimatedTotalHits"], 1);
    // The task counter lives on: the next write is task 2.
    let (_, task) = s.call("DELETE", "/indexes/movies/documents/3", Some(KEY), None);
    assert_eq!(task["taskUid"], 2);
    // A failed task: the primary key cannot be inferred.
    let (_, task) = s.call(
        "POST",
        "/indexes/other/documents",
        Some(KEY),
        Some(json!([{"a": 1}])),
    );
    let failed = s.get(&format!("/tasks/{}", task["taskUid"]));
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"]["code"],
        "index_primary_key_no_candidate_found"
    );
    assert_eq!(s.call("GET", "/indexes/other", Some(KEY), None).0, 404);
}

#[test]
fn dump_imports_into_a_fresh_database_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--master-key",
            KEY,
            "--db-path",
            "db1",
            "--dump-dir",
            "dumps",
        ],
        &[],
    );
    s.write("POST", "/indexes/movies/documents", movies());
    s.write(
        "PUT",
        "/indexes/movies/settings/filterable-attributes",
        json!(["genre"]),
    );
    let dump = s.write("POST", "/dumps", Value::Null);
    let file = format!(
        "dumps/{}.dump",
        dump["details"]["dumpUid"].as_str().unwrap()
    );
    let search = json!({"q": "o", "filter": "genre = \"comedy\""});
    let before = (
        s.get("/indexes/movies/documents?limit=100"),
        s.get("/indexes/movies/settings"),
        s.call(
            "POST",
            "/indexes/movies/search",
            Some(KEY),
            Some(search.clone()),
        )
        .1["hits"]
            .clone(),
    );
    drop(s);

    let s = Server::start(
        dir.path(),
        &[
            "--master-key",
            KEY,
            "--db-path",
            "db2",
            "--import-dump",
            &file,
        ],
        &[],
    );
    let after = (
        s.get("/indexes/movies/documents?limit=100"),
        s.get("/indexes/movies/settings"),
        s.call("POST", "/indexes/movies/search", Some(KEY), Some(search))
            .1["hits"]
            .clone(),
    );
    assert_eq!(before, after);
    assert_eq!(after.2.as_array().map(Vec::len), Some(1));
    drop(s);

    let out = run(dir.path(), &["--db-path", "db2", "--import-dump", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("database already exists at"),
        "{}",
        stderr(&out)
    );
    let s = Server::start(
        dir.path(),
        &[
            "--db-path",
            "db2",
            "--import-dump",
            &file,
            "--ignore-dump-if-db-exists",
        ],
        &[],
    );
    drop(s);

    std::fs::write(dir.path().join("bad.dump"), b"not a dump").unwrap();
    let out = run(
        dir.path(),
        &["--db-path", "db3", "--import-dump", "bad.dump"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot be imported"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("db3/standin-db.json").exists());
    let out = run(
        dir.path(),
        &["--db-path", "db4", "--import-dump", "missing.dump"],
    );
    assert!(
        stderr(&out).contains("dump doesn't exist"),
        "{}",
        stderr(&out)
    );
    drop(Server::start(
        dir.path(),
        &[
            "--db-path",
            "db4",
            "--import-dump",
            "missing.dump",
            "--ignore-missing-dump",
        ],
        &[],
    ));
}

#[test]
fn cli_over_environment_over_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "master_key = \"the-file-master-key\"\ndb_path = \"file-db\"\nenv = \"production\"\nmax_indexing_threads = 2\n",
    )
    .unwrap();
    // ./config.toml is read by default; its unknown key is only a warning.
    let out = run(dir.path(), &["--env", "nonsense"]);
    assert!(
        stderr(&out).contains("ignoring `max_indexing_threads`"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("`nonsense` is not a valid environment"),
        "{}",
        stderr(&out)
    );

    let s = Server::start(
        dir.path(),
        &["--db-path", "cli-db"],
        &[("MEILI_MASTER_KEY", KEY), ("MEILI_DB_PATH", "env-db")],
    );
    assert_eq!(
        s.call("GET", "/indexes", Some("the-file-master-key"), None)
            .0,
        403
    );
    s.write("POST", "/indexes", json!({"uid": "movies"}));
    assert!(dir.path().join("cli-db/standin-db.json").exists());
    assert!(!dir.path().join("env-db").exists() && !dir.path().join("file-db").exists());
    drop(s);

    // An explicit config file, and an environment variable over it.
    std::fs::rename(
        dir.path().join("config.toml"),
        dir.path().join("other.toml"),
    )
    .unwrap();
    let s = Server::start(
        dir.path(),
        &["--config-file-path", "other.toml"],
        &[("MEILI_DB_PATH", "env-db")],
    );
    let (status, _) = s.call("GET", "/indexes", Some("the-file-master-key"), None);
    assert_eq!(status, 200);
    s.call(
        "POST",
        "/indexes",
        Some("the-file-master-key"),
        Some(json!({"uid": "movies"})),
    );
    assert!(dir.path().join("env-db/standin-db.json").exists());
}
