//! End to end: the built-in LibreChat profile's whole lifecycle in the lab, with stand-ins for
//! what cannot be reached from here: install (with chat with files: the RAG API and
//! PostgreSQL with pgvector) → chat-shaped writes → a file embedded and a question about it
//! answered with the right chunk (the RAG API bound to loopback, refusing an unsigned request)
//! → the admin edits
//! librechat.yaml → reconfigure turns registration and Meilisearch on (the messages written
//! before are found) → update and rollback (the green slot migrates its own copy of the
//! database; rollback switches back to blue's untouched one, what green wrote kept in a dump)
//! → update to the newer version under load (0 failed requests, every acknowledged write read
//! back; the pre-update database dump kept; the admin's librechat.yaml untouched) → status
//! healthy, with Meilisearch checked → an update to a release that migrates and then dies
//! (`v0.8.7`, the stand-in with a `throw` after its migrations, made by this test): undone, the
//! database `rollback` goes back to loaded back, so the rollback after it finds v0.8.0's data
//! → update again → backup → uninstall --keep-data → restore --to-new → every written
//! item present, found by search, Meilisearch's own data back from its dump, the file's
//! vectors back from the pgvector dump, librechat.yaml as the admin left it.
//!
//! Real: the launch-tui binary and its code paths as a real host runs them (source archive
//! downloaded and checked on the host, the vendor apt repository added with its key in
//! `Signed-By:` and verified by the container's apt, `mongodb-org` installed from it in the
//! database step, authorization turned on and the app's user created through the localhost
//! exception by `mongosh`, the build run in the container as the app's user: `npm ci` of real
//! dependencies from the npm registry (express, the official `mongodb` Node.js driver,
//! bcryptjs, dotenv, esbuild) and `npm run frontend`, the hardened unit with the tree
//! read-only and the data bound onto it, `.env` through systemd, create-user with the password
//! on standard input, mongodump/mongorestore with `--config`, nginx with Lua and SSE), Debian
//! 12 containers with systemd booted by pve-lab, Debian's Node.js 18 and npm; for chat with
//! files: Debian's PostgreSQL 15 with real pgvector 0.8.0 (built by tests/support/pgvector.rs
//! from Debian's own source, packaged as PGDG's `postgresql-15-pgvector` in a repository signed
//! by a throwaway key, at PGDG's suite `bookworm-pgdg`), the service adapter's role, database,
//! extension, `pg_dump` and `pg_restore` as the role, and the RAG API's venv built in the
//! container by real pip from PyPI (FastAPI, uvicorn, psycopg2, PyJWT).
//!
//! Stood in, each named:
//! - Proxmox VE: pve-lab (every request checked against the official schema).
//! - LibreChat's source releases: `tests/fixtures/librechat-standin` (a LibreChat-shaped
//!   Node.js app, not LibreChat) packed as `LibreChat-0.8.0/` and `LibreChat-0.8.6/` archives,
//!   served over the lab bridge with their sums in the profile.
//! - MongoDB: `mongo-standin` (a wire-protocol stand-in, not MongoDB) packaged as a
//!   `mongodb-org` .deb (`mongod`, `mongosh`, `mongodump`, `mongorestore`, `mongod.service`,
//!   `/etc/mongod.conf`) in a repository signed by a throwaway key, at the suite path of
//!   MongoDB's own (`bookworm/mongodb-org/8.0`).
//! - NodeSource: not stood in; the lab profile takes Debian's `nodejs` and `npm` instead.
//! - Meilisearch's release binary: `meili-standin` (a small HTTP stand-in, not Meilisearch:
//!   its configuration file, master key, indexes, documents, search, tasks, dumps and dump
//!   import), served over the lab bridge with its sum in the profile, installed by the
//!   adapter's real path (downloaded and checked on the host, pushed, its unit and config
//!   written, `POST /dumps` for the backup, `MEILI_IMPORT_DUMP` for the restore). LibreChat's
//!   side of search is the stand-in app using the real `meilisearch` npm client.
//! - rag_api's source release: `tests/fixtures/rag-api-standin` (a FastAPI app shaped like
//!   rag_api v0.9.0's routes, JWT check and settings, not rag_api: its embeddings are a
//!   deterministic hash of the words, no provider is called; the vectors and the ranking are
//!   pgvector's) packed as `rag_api-0.9.0/`, served over the lab bridge with its sum in the
//!   profile. LibreChat's side is the stand-in app's `/api/files` and `/api/files/query`
//!   (LibreChat does the same calls inside a chat's file search).
//!
//! The lab profile is the built-in one with only these changes, made here: its name
//! (`librechat-lab`: a built-in name cannot be overridden), the versions' URLs and sums, the
//! MongoDB and PGDG repositories' URIs and keys, Meilisearch's release URL and sum, the RAG
//! API's source URL and sum, no NodeSource source
//! (Debian's `nodejs` and `npm` instead), and smaller resources (the stand-in's build needs far less
//! than LibreChat's).

#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;
#[path = "support/pgvector.rs"]
mod pgvector;
#[path = "support/vendor.rs"]
mod vendor;
#[path = "support/www.rs"]
mod www;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use lab::{launch, text, workspace_bin, Config, Lab};
use load::{assert_no_failures, Load};
use vendor::{bridge_ip, sh, sha256_of, Gpg};
use www::Server;

const NAME: &str = "librechat-lab";
const OLD: &str = "v0.8.0";
const NEW: &str = "v0.8.6";
/// A release of the stand-in that migrates, then fails to start (see `source_archive`).
const BROKEN: &str = "v0.8.7";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/librechat-standin")
}

/// The stand-in's source archive of `version` (`v0.8.6`), as GitHub packs LibreChat's:
/// one top directory `LibreChat-0.8.6/`.
fn source_archive(www: &Path, version: &str) -> PathBuf {
    let bare = version.trim_start_matches('v');
    let work = tempfile::tempdir().unwrap();
    let top = work.path().join(format!("LibreChat-{bare}"));
    sh(Command::new("cp").arg("-a").arg(fixture()).arg(&top));
    let _ = std::fs::remove_dir_all(top.join("node_modules"));
    let _ = std::fs::remove_dir_all(top.join("client/dist"));
    for (file, pointers) in [
        ("package.json", &["/version"][..]),
        ("package-lock.json", &["/version", "/packages//version"][..]),
    ] {
        let p = top.join(file);
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        for ptr in pointers {
            *v.pointer_mut(ptr).unwrap() = serde_json::Value::String(bare.into());
        }
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }
    if version == BROKEN {
        // A release that runs its migrations on the database it is given, then dies before
        // it answers: the update must be undone.
        let p = top.join("api/server/index.js");
        let js = std::fs::read_to_string(&p).unwrap();
        let at = "  await migrate(db, version);\n";
        assert!(js.contains(at), "the stand-in migrates at start");
        std::fs::write(
            &p,
            js.replacen(
                at,
                &format!(
                    "{at}  throw new Error('{BROKEN}: broken on purpose, after its migrations');\n"
                ),
                1,
            ),
        )
        .unwrap();
    }
    let out = www.join("src").join(format!("{version}.tar.gz"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    sh(Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(work.path())
        .arg(format!("LibreChat-{bare}")));
    out
}

/// The RAG API stand-in's source archive, as GitHub packs rag_api's tag v0.9.0: one top
/// directory `rag_api-0.9.0/`.
fn rag_archive(www: &Path) -> PathBuf {
    let work = tempfile::tempdir().unwrap();
    let top = work.path().join("rag_api-0.9.0");
    sh(Command::new("cp")
        .arg("-a")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rag-api-standin"))
        .arg(&top));
    for junk in ["venv", "__pycache__", ".venv"] {
        let _ = std::fs::remove_dir_all(top.join(junk));
    }
    let out = www.join("src").join("rag_api-v0.9.0.tar.gz");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    sh(Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("--exclude=__pycache__")
        .arg("-C")
        .arg(work.path())
        .arg("rag_api-0.9.0"));
    out
}

/// The `mongodb-org` stand-in package: mongo-standin and MongoDB's command names, unit and
/// config file, and the system user MongoDB's own package makes.
fn mongodb_org_deb(repo: &Path) {
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path().join("mongodb-org");
    vendor::put(
        &root,
        "DEBIAN/control",
        b"Package: mongodb-org\nVersion: 8.0.99~standin\nArchitecture: amd64\nMaintainer: Launch tests <tests@launch.invalid>\nDescription: stand-in for MongoDB's mongodb-org (mongo-standin, not MongoDB)\n",
        0o644,
    );
    vendor::put(
        &root,
        "DEBIAN/postinst",
        b"#!/bin/sh\nset -e\nid mongodb >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/mongodb --shell /usr/sbin/nologin mongodb\ninstall -d -o mongodb -g mongodb -m 0750 /var/lib/mongodb\n",
        0o755,
    );
    let bin = std::fs::read(workspace_bin("mongo-standin")).unwrap();
    vendor::put(&root, "usr/bin/mongo-standin", &bin, 0o755);
    for tool in ["mongod", "mongosh", "mongodump", "mongorestore"] {
        vendor::put(
            &root,
            &format!("usr/bin/{tool}"),
            format!("#!/bin/sh\nexec /usr/bin/mongo-standin {tool} \"$@\"\n").as_bytes(),
            0o755,
        );
    }
    vendor::put(
        &root,
        "etc/mongod.conf",
        b"# mongod.conf (the stand-in reads the same keys as MongoDB)\nstorage:\n  dbPath: /var/lib/mongodb\nnet:\n  port: 27017\n  bindIp: 127.0.0.1\n",
        0o644,
    );
    vendor::put(
        &root,
        "lib/systemd/system/mongod.service",
        b"[Unit]\nDescription=MongoDB stand-in (mongo-standin, for Launch's tests)\nAfter=network.target\n\n[Service]\nUser=mongodb\nGroup=mongodb\nExecStart=/usr/bin/mongod --config /etc/mongod.conf\n\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    );
    vendor::build_deb(
        &root,
        &repo.join("pool/main/mongodb-org_8.0.99~standin_amd64.deb"),
    );
}

/// The lab profile: the built-in one with the changes the header lists.
fn write_profile(cfg: &Config, server: &Server, www: &Path, key: &str) {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/librechat");
    let dir = cfg.path().join("profiles").join(NAME);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "librechat.service.j2",
        "librechat.env.j2",
        "db.env.j2",
        "rag-api.service.j2",
        "rag-api.env.j2",
        "site.conf.j2",
        "bootstrap.sh.j2",
        "librechat.yaml.j2",
    ] {
        std::fs::copy(shipped.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("mongodb-server-8.0.asc"), key).unwrap();
    std::fs::write(dir.join("pgdg.asc"), key).unwrap();
    let mut yaml = std::fs::read_to_string(shipped.join("profile.yaml")).unwrap();
    let mut swap = |from: &str, to: &str| {
        assert!(yaml.contains(from), "the shipped profile has `{from}`");
        yaml = yaml.replacen(from, to, 1);
    };
    swap("name: librechat\n", &format!("name: {NAME}\n"));
    swap(
        "minimum: { cores: 2, memory_mib: 4096, disk_gib: 16 }",
        "minimum: { cores: 1, memory_mib: 1024, disk_gib: 4 }",
    );
    swap(
        "default: { cores: 4, memory_mib: 6144, disk_gib: 24, swap_mib: 1024 }",
        "default: { cores: 2, memory_mib: 2048, disk_gib: 8, swap_mib: 512 }",
    );
    swap("update_free_mib: 6144", "update_free_mib: 512");
    swap("build_memory_mib: 4096", "build_memory_mib: 1024");
    swap("build_disk_mib: 6144", "build_disk_mib: 512");
    swap("build_disk_mib: 4096", "build_disk_mib: 256");
    swap(
        "uri: https://repo.mongodb.org/apt/debian",
        &format!("uri: {}/repo", server.base),
    );
    swap(
        "uri: https://apt.postgresql.org/pub/repos/apt",
        &format!("uri: {}/repo-pgdg", server.base),
    );
    let rag = www.join("src").join("rag_api-v0.9.0.tar.gz");
    swap(
        "url: https://github.com/danny-avila/rag_api/archive/refs/tags/v0.9.0.tar.gz",
        &format!("url: {}/src/rag_api-v0.9.0.tar.gz", server.base),
    );
    swap(
        "sha256: 679d5a30d4a151099b38b255e4ba82f20efe8925549a5ff71b3105f790384882",
        &format!("sha256: {}", sha256_of(&rag)),
    );
    swap(
        "packages: [nodejs, python3-venv,",
        "packages: [nodejs, npm, python3-venv,",
    );
    let start = yaml.find("  # NodeSource's Node.js 24").unwrap();
    let end = yaml.find("  # PostgreSQL's own repository (PGDG)").unwrap();
    yaml.replace_range(start..end, "");
    let start = yaml.find("    release:\n      version: v1.35.1\n").unwrap();
    let end = yaml.find("\n  # PostgreSQL with pgvector").unwrap();
    let meili = www.join("meilisearch-linux-amd64");
    yaml.replace_range(
        start..end,
        &format!(
            "    release:\n      version: v1.35.1\n      artifacts:\n        amd64:\n          url: {}/meilisearch-linux-amd64\n          sha256: {}\n          format: binary\n",
            server.base,
            sha256_of(&meili)
        ),
    );
    let start = yaml.find("versions:\n").unwrap();
    let end = yaml.find("\nquestions:").unwrap();
    let mut block = String::from("versions:\n");
    for v in [OLD, NEW, BROKEN] {
        let file = www.join("src").join(format!("{v}.tar.gz"));
        block.push_str(&format!(
            "  - version: {v}\n    source:\n      url: {}/src/{v}.tar.gz\n      sha256: {}\n",
            server.base,
            sha256_of(&file)
        ));
    }
    yaml.replace_range(start..end, &block);
    std::fs::write(dir.join("profile.yaml"), yaml).unwrap();
}

struct Instance {
    ip: String,
    vmid: String,
    password: String,
}

fn instance(cfg: &Config) -> Instance {
    let path = cfg.path().join(format!("instances/{NAME}.yaml"));
    let rec: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    Instance {
        ip: rec["container"]["ip"].as_str().unwrap().to_string(),
        vmid: rec["container"]["vmid"].as_u64().unwrap().to_string(),
        password: rec["secrets"]["admin_password"]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(40))
        .build()
        .unwrap()
}

/// Signs in as the first account (made by the bootstrap); its bearer token.
fn login(at: &Instance) -> String {
    let r = http()
        .post(format!("http://{}/api/auth/login", at.ip))
        .json(&serde_json::json!({"email": "admin@lab.example", "password": at.password}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "login");
    r.json::<serde_json::Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn api(
    at: &Instance,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = http()
        .request(method.parse().unwrap(), format!("http://{}{path}", at.ip))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(serde_json::Value::Null))
}

fn app_version(at: &Instance) -> String {
    let (s, v) = api(at, "", "GET", "/api/config", None);
    assert_eq!(s, 200);
    format!("v{}", v["version"].as_str().unwrap())
}

/// A bounded scenario run (no update going on): every request succeeds; the acknowledged
/// writes are listed in `written`.
fn writes(at: &Instance, token: &str, first_worker: usize, written: &Path) {
    let auth = ("LAUNCH_LOAD_TOKEN", token);
    load::bounded_writes(&at.ip, &scenario(), auth, first_worker, 80, 10, written);
}

fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/librechat.json")
}

fn verify(at: &Instance, token: &str, files: &[&Path]) -> u64 {
    load::verify_writes(&at.ip, &scenario(), ("LAUNCH_LOAD_TOKEN", token), files)
}

/// The file chat with files is tried on.
const MANUAL: &str = "manual";

/// Three paragraphs on unrelated things, each longer than the RAG API's chunk, so each makes
/// chunks of its own.
const PARAGRAPHS: [(&str, &str); 3] = [
    ("walrus", "tusks ice floes Arctic blubber whiskers"),
    ("volcano", "lava magma eruption crater ash basalt"),
    ("violin", "strings bow concerto orchestra rosin bridge"),
];

fn manual_text() -> String {
    PARAGRAPHS
        .iter()
        .map(|(w, more)| format!("The {w} {more}. ").repeat(60))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A question in the words of one paragraph (the stand-in's embedding is a hash of the
/// words): the RAG API, through LibreChat, ranks a chunk of that paragraph first, by
/// pgvector's cosine distance.
fn rag_finds(at: &Instance, token: &str, word: &str) {
    let more = PARAGRAPHS.iter().find(|(w, _)| *w == word).unwrap().1;
    let (s, r) = api(
        at,
        token,
        "POST",
        "/api/files/query",
        Some(serde_json::json!({"file_id": MANUAL, "query": format!("{word} {more}"), "k": 3})),
    );
    assert_eq!(s, 200, "{r}");
    let first = r[0][0]["page_content"].as_str().unwrap_or_default();
    assert!(
        first.contains(word),
        "the RAG API ranked another chunk first: {r:#}"
    );
}

const YAML: &str = "/etc/librechat/librechat.yaml";
const ADMIN_LINE: &str = "# edited by the admin: launch-tui keeps this line";

/// LibreChat's search finds the one message with `word` and its reply (the stand-in's reply
/// echoes it), in conversation `convo`.
fn found(at: &Instance, token: &str, word: &str, convo: &str) {
    let (s, r) = api(at, token, "GET", &format!("/api/search?q={word}"), None);
    assert_eq!(s, 200, "{r}");
    let hits = r["messages"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(hits.len(), 2, "{word}: {r}");
    assert!(hits.iter().all(|h| h["conversationId"] == convo), "{r}");
    assert!(
        hits.iter().any(|h| h["sender"] == "User")
            && hits.iter().any(|h| h["sender"] == "Assistant"),
        "{r}"
    );
}

/// Runs `script` in the container with Meilisearch's master key in `$K` (read from its
/// configuration file, as the adapter's own scripts do); its output.
fn meili(lab: &Lab, vmid: &str, script: &str) -> String {
    lab.pct_ok(&[
        "exec",
        vmid,
        "--",
        "sh",
        "-c",
        &format!(
            "K=$(sed -n 's/^master_key = \"\\(.*\\)\"$/\\1/p' /etc/meilisearch.toml)\n{script}"
        ),
    ])
}

fn healthy(lab: &Lab, cfg: &Config) -> serde_json::Value {
    lab::healthy(lab, cfg, NAME)
}

/// A streamed reply through nginx arrives event by event: the first event is read while the
/// stream is still going (a buffering proxy would hand it over only with the last).
fn streams_unbuffered(at: &Instance, token: &str) {
    let mut s = std::net::TcpStream::connect((at.ip.as_str(), 80)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "GET /api/ask/stream?text=one+two+three+four+five+six+seven+eight HTTP/1.1\r\nHost: chat.lab.example\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the stream ended early: {seen}"
        );
        seen.push_str(&line);
        if line.starts_with("data: {\"text\":\"one\"}") {
            break;
        }
    }
    // What had arrived when the first event did: not the end of the stream.
    assert!(!seen.contains("event: done"), "{seen}");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut r, &mut rest);
    assert!(
        rest.contains("\"text\":\"eight\"") && rest.contains("event: done"),
        "{rest}"
    );
}

#[test]
fn librechat_lifecycle_with_stand_ins() {
    let lab = Lab::start();
    let cfg = Config {
        dir: tempfile::tempdir().unwrap(),
    };
    let work = tempfile::tempdir().unwrap();
    let file = |n: &str| work.path().join(n);

    // The vendors: MongoDB's repository (signed) and LibreChat's source archives.
    let www = tempfile::tempdir().unwrap();
    let signer = Gpg::new("Launch e2e MongoDB stand-in (throwaway) <mongodb@launch.invalid>");
    let repo = www.path().join("repo");
    mongodb_org_deb(&repo);
    vendor::sign_repo(&repo, "bookworm/mongodb-org/8.0", &signer);
    // PGDG's repository: real pgvector 0.8.0, built from Debian's source for PostgreSQL 15.
    let pgdg = www.path().join("repo-pgdg");
    std::fs::create_dir_all(pgdg.join("pool/main")).unwrap();
    let deb = pgvector::pgvector_deb(&pgdg.join("pool/main"));
    pgvector::check_deb(&deb);
    vendor::sign_repo(&pgdg, "bookworm-pgdg", &signer);
    for v in [OLD, NEW, BROKEN] {
        source_archive(www.path(), v);
    }
    rag_archive(www.path());
    std::fs::copy(
        workspace_bin("meili-standin"),
        www.path().join("meilisearch-linux-amd64"),
    )
    .unwrap();
    let server = Server::start(www.path().to_path_buf(), bridge_ip());
    write_profile(&cfg, &server, www.path(), &signer.armored_public_key());

    // 1. Install the older version.
    let answers = file("answers.yaml");
    std::fs::write(
        &answers,
        format!("name: {NAME}\nversion: {OLD}\npublic_url: http://chat.lab.example\nadmin_email: admin@lab.example\nuse_rag: true\nrag_embeddings_provider: ollama\nrag_ollama_url: http://127.0.0.1:11434\n"),
    )
    .unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            NAME,
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    eprintln!("install:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "install: {}", text(&out));
    let first = instance(&cfg);
    assert!(!text(&out).contains(&first.password), "the password leaked");
    assert_eq!(app_version(&first), OLD);
    // MongoDB runs with authorization on: without credentials nothing is readable.
    let anon = lab.pct(&[
        "exec",
        &first.vmid,
        "--",
        "mongo-standin",
        "mongodump",
        "--uri",
        "mongodb://127.0.0.1:27017/librechat_lab",
        "--archive=/tmp/anon",
        "--gzip",
    ]);
    assert!(
        !anon.status.success(),
        "an anonymous dump worked: {}",
        text(&anon)
    );

    // 2. Chat-shaped writes through nginx, and a streamed reply.
    let token = login(&first);
    let mut convos = Vec::new();
    for i in 0..3 {
        let (s, c) = api(
            &first,
            &token,
            "POST",
            "/api/convos",
            Some(serde_json::json!({"title": format!("chat {i}")})),
        );
        assert_eq!(s, 201, "{c}");
        let id = c["conversationId"].as_str().unwrap().to_string();
        for m in ["hello there".to_string(), format!("how are you quokka{i}")] {
            let (s, r) = api(
                &first,
                &token,
                "POST",
                &format!("/api/messages/{id}"),
                Some(serde_json::json!({"text": m})),
            );
            assert_eq!(s, 201, "{r}");
        }
        convos.push(id);
    }
    streams_unbuffered(&first, &token);
    writes(&first, &token, 0, &file("before-update"));

    // Chat with files: LibreChat sends the file to the RAG API (a JWT of the user, signed with
    // the secret they share), which stores its chunks' vectors in PostgreSQL with pgvector; a
    // question finds the right chunk, ranked by pgvector. The RAG API is LibreChat's only:
    // bound to loopback, not served by nginx, and it refuses a request without a token.
    let (s, r) = api(
        &first,
        &token,
        "POST",
        "/api/files",
        Some(
            serde_json::json!({"file_id": MANUAL, "filename": "manual.txt", "text": manual_text()}),
        ),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], true, "{r}");
    rag_finds(&first, &token, "walrus");
    let rag_direct = std::net::TcpStream::connect_timeout(
        &format!("{}:8000", first.ip).parse().unwrap(),
        std::time::Duration::from_secs(3),
    );
    assert!(
        rag_direct.is_err(),
        "the RAG API answers from outside the container"
    );
    let unsigned = lab.pct_ok(&[
        "exec",
        &first.vmid,
        "--",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        "{\"file_id\": \"manual\", \"query\": \"walrus\"}",
        "http://127.0.0.1:8000/query",
    ]);
    assert_eq!(
        unsigned.trim(),
        "401",
        "the RAG API answered a request without a token"
    );

    // 3. The admin makes librechat.yaml their own (launch-tui wrote it once, for CONFIG_PATH),
    // then opens registration and turns search on: Meilisearch is installed and set up, and
    // LibreChat, restarted, indexes the messages written before.
    let conf = lab.pct_ok(&["exec", &first.vmid, "--", "cat", YAML]);
    assert!(conf.contains("version:"), "{conf}");
    lab.pct_ok(&[
        "exec",
        &first.vmid,
        "--",
        "sh",
        "-c",
        &format!("printf '%s\\n' '{ADMIN_LINE}' >> {YAML}"),
    ]);
    let admins = format!("{conf}{ADMIN_LINE}\n");
    assert_eq!(
        lab.pct_ok(&["exec", &first.vmid, "--", "cat", YAML]),
        admins
    );
    let out = launch(
        &lab,
        &cfg,
        &[
            "reconfigure",
            NAME,
            "--set",
            "allow_registration=true",
            "--set",
            "use_search=true",
        ],
    );
    eprintln!("reconfigure:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "reconfigure: {}", text(&out));
    let (_, config) = api(&first, "", "GET", "/api/config", None);
    assert_eq!(config["registrationEnabled"], true, "{config}");
    found(&first, &token, "quokka1", &convos[1]);
    // Meilisearch wants its master key; the admin's file was left alone and is not drift.
    let anon = meili(
        &lab,
        &first.vmid,
        "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:7700/indexes",
    );
    assert_eq!(anon.trim(), "401", "Meilisearch answered without its key");
    assert_eq!(
        lab.pct_ok(&["exec", &first.vmid, "--", "cat", YAML]),
        admins
    );
    let out = launch(&lab, &cfg, &["reconfigure", NAME]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no drift"),
        "{}",
        text(&out)
    );

    // 4. An update, then a rollback. Each slot runs on its own database: the update loads a
    // dump of blue's (taken while writes are held) into green's, and the new version migrates
    // that copy at start (LibreChat has no down-migrations), so blue's database is untouched.
    // Rollback is a switch back to it: the old version finds the data as it left it, and what
    // the new version wrote meanwhile is kept in a dump.
    let db = NAME.replace('-', "_");
    let slot_uri = |slot: &str| {
        lab.pct_ok(&[
            "exec",
            &first.vmid,
            "--",
            "cat",
            &format!("/etc/librechat/db-{slot}.env"),
        ])
    };
    assert!(
        slot_uri("blue").contains(&format!("/{db}?authSource=admin")),
        "{}",
        slot_uri("blue")
    );
    let convo = |at: &Instance, token: &str, id: &str| -> u16 {
        api(at, token, "GET", &format!("/api/convos/{id}"), None).0
    };
    let token_counts = |at: &Instance, token: &str| -> Vec<bool> {
        let (s, msgs) = api(
            at,
            token,
            "GET",
            &format!("/api/messages/{}", convos[0]),
            None,
        );
        assert_eq!(s, 200, "{msgs}");
        msgs.as_array()
            .unwrap()
            .iter()
            .map(|m| m["tokenCount"].is_number())
            .collect()
    };
    let out = launch(
        &lab,
        &cfg,
        &["update", NAME, "--version", NEW, "--yes", "--watch", "2"],
    );
    eprintln!("update (to roll back):\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "update: {}", text(&out));
    assert_eq!(app_version(&first), NEW);
    assert!(
        text(&out).contains(&format!("as {db}_green, the green slot's own")),
        "{}",
        text(&out)
    );
    assert!(
        slot_uri("green").contains(&format!("/{db}_green?authSource=admin")),
        "{}",
        slot_uri("green")
    );
    assert_eq!(token_counts(&first, &token), vec![true; 4]);
    // A conversation made on the new version, after the switch.
    let (s, r) = api(
        &first,
        &token,
        "POST",
        "/api/convos",
        Some(serde_json::json!({"conversationId": "after-switch", "title": "after the switch"})),
    );
    assert_eq!(s, 201, "{r}");
    let out = launch(&lab, &cfg, &["rollback", NAME, "--yes", "--watch", "2"]);
    eprintln!("rollback:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "rollback: {}", text(&out));
    assert_eq!(app_version(&first), OLD);
    assert_eq!(
        token_counts(&first, &token),
        vec![false; 4],
        "blue's database is as the old version left it: the migration ran on green's copy only"
    );
    found(&first, &token, "quokka0", &convos[0]);
    assert_eq!(
        convo(&first, &token, "after-switch"),
        404,
        "blue runs on its own database, untouched since the switch"
    );
    let kept = lab.pct_ok(&[
        "exec",
        &first.vmid,
        "--",
        "sh",
        "-c",
        &format!("ls /var/backups/launch/{NAME}/"),
    ]);
    assert!(
        kept.contains(&format!("rolled-back-{NEW}-")),
        "what the new version wrote is kept: {kept}"
    );

    // 5. The update under load: no request fails; the new version migrated the database at
    // start; the pre-update dump is kept in the container.
    let load = Load::start_with_env(
        &first.ip,
        &[
            "--scenario",
            scenario().to_str().unwrap(),
            "--first-worker",
            "10",
            "--written",
            file("during-update").to_str().unwrap(),
        ],
        &[("LAUNCH_LOAD_TOKEN", &token)],
    );
    // A 5 s watch after the switch (the profile's is longer): the switch is what this proves;
    // the watch itself is tested in e2e_update.
    let out = launch(
        &lab,
        &cfg,
        &["update", NAME, "--version", NEW, "--yes", "--watch", "5"],
    );
    let summary = load.stop();
    eprintln!("update:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "update: {}", text(&out));
    assert_no_failures("update under load", &summary);
    assert_eq!(app_version(&first), NEW);
    let (_, msgs) = api(
        &first,
        &token,
        "GET",
        &format!("/api/messages/{}", convos[0]),
        None,
    );
    assert!(
        msgs.as_array()
            .unwrap()
            .iter()
            .all(|m| m["tokenCount"].is_number()),
        "{msgs}"
    );
    let dumps = lab.pct_ok(&[
        "exec",
        &first.vmid,
        "--",
        "sh",
        "-c",
        &format!("ls /var/backups/launch/{NAME}/"),
    ]);
    assert!(
        dumps.contains(&format!("pre-update-{OLD}-")) && dumps.contains(".archive"),
        "{dumps}"
    );
    let status = healthy(&lab, &cfg);
    for want in [
        "mongod.service",
        "service-meilisearch",
        "service-pgvector",
        "librechat-lab-rag-api.service",
    ] {
        assert!(status.to_string().contains(want), "{want}: {status:#}");
    }
    // The update left the RAG API and its vectors alone.
    rag_finds(&first, &token, "volcano");
    assert_eq!(
        lab.pct_ok(&["exec", &first.vmid, "--", "cat", YAML]),
        admins
    );
    found(&first, &token, "quokka2", &convos[2]);
    // Every write acknowledged during the update is there (checked now: the rollback below
    // goes back to blue's database as it was at that switch).
    let during = verify(&first, &token, &[&file("during-update")]);

    // 5b. An update undone: the new release migrates, then dies before it answers. Its slot
    // (blue) holds what `rollback` goes back to, so blue's database was dumped before it was
    // emptied for the copy, and is loaded back when the update is undone: the rollback after
    // it finds the data as v0.8.0 left it, not the copy the broken release migrated.
    let out = launch(
        &lab,
        &cfg,
        &["update", NAME, "--version", BROKEN, "--yes", "--watch", "2"],
    );
    eprintln!("update to a broken release:\n{}", text(&out));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    for want in [
        "what rollback went back to) dumped to",
        &format!("database {db} is back as it was before this update"),
    ] {
        assert!(text(&out).contains(want), "{want}: {}", text(&out));
    }
    assert_eq!(app_version(&first), NEW);
    let out = launch(&lab, &cfg, &["rollback", NAME, "--yes", "--watch", "2"]);
    eprintln!("rollback after the undone update:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "rollback: {}", text(&out));
    assert_eq!(app_version(&first), OLD);
    assert_eq!(
        token_counts(&first, &token),
        vec![false; 4],
        "blue's database was loaded back after the undone update"
    );
    let out = launch(
        &lab,
        &cfg,
        &["update", NAME, "--version", NEW, "--yes", "--watch", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "update: {}", text(&out));
    assert_eq!(app_version(&first), NEW);
    assert_eq!(token_counts(&first, &token), vec![true; 4]);

    // 6. Backup (with a document only Meilisearch holds, so its dump is what comes back), more
    // writes, uninstall keeping the data, restore into a new container.
    meili(
        &lab,
        &first.vmid,
        "printf 'Authorization: Bearer %s\\n' \"$K\" | curl -fsS -X POST -H @- -H 'Content-Type: application/json' --data '[{\"id\":\"p1\",\"note\":\"only in meilisearch\"}]' http://127.0.0.1:7700/indexes/launch-probe/documents",
    );
    let out = launch(&lab, &cfg, &["backup", NAME]);
    assert_eq!(out.status.code(), Some(0), "backup: {}", text(&out));
    writes(&first, &token, 20, &file("after-backup"));
    let out = launch(&lab, &cfg, &["uninstall", NAME, "--keep-data", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "uninstall: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let kept = std::fs::read_dir(cfg.path().join("state/backups").join(NAME))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .find(|p| p.ends_with(".tar.zst") && stdout.contains(p.as_str()))
        .unwrap_or_else(|| panic!("the kept archive is named: {stdout}"));
    let out = launch(
        &lab,
        &cfg,
        &["restore", NAME, &kept, "--to-new", NAME, "--yes"],
    );
    eprintln!("restore --to-new:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "restore: {}", text(&out));
    let second = instance(&cfg);
    assert_eq!(
        second.password, first.password,
        "the record took the archive's secrets"
    );
    assert_eq!(app_version(&second), NEW);
    let status = healthy(&lab, &cfg);
    assert!(
        status.to_string().contains("service-meilisearch"),
        "{status:#}"
    );
    assert_eq!(
        lab.pct_ok(&["exec", &second.vmid, "--", "cat", YAML]),
        admins,
        "librechat.yaml came back as the admin left it"
    );
    let probe = meili(
        &lab,
        &second.vmid,
        "printf 'Authorization: Bearer %s\\n' \"$K\" | curl -fsS -H @- http://127.0.0.1:7700/indexes/launch-probe/documents/p1",
    );
    assert!(probe.contains("only in meilisearch"), "{probe}");
    // The same account signs in (the users came back, JWT_SECRET was kept), every
    // conversation and message is there, and every acknowledged write up to the backup.
    let token2 = login(&second);
    for id in &convos {
        let (s, msgs) = api(
            &second,
            &token2,
            "GET",
            &format!("/api/messages/{id}"),
            None,
        );
        assert_eq!(s, 200);
        assert_eq!(msgs.as_array().unwrap().len(), 4, "{msgs}");
    }
    found(&second, &token2, "quokka0", &convos[0]);
    // The vectors came back from the archive's pgvector dump, loaded by the RAG API's role.
    rag_finds(&second, &token2, "violin");
    let checked = verify(
        &second,
        &token2,
        &[&file("before-update"), &file("after-backup")],
    );
    eprintln!(
        "librechat (stand-ins): {} requests during the update, 0 failed, {during} acknowledged writes read back after it; {checked} acknowledged writes read back after restore --to-new, 0 missing",
        summary["sent"]
    );
}
