//! Release download, cache and unpack against real HTTP servers on 127.0.0.1: an axum server
//! that serves, counts, fails once or answers 404, and a raw TCP server that cuts connections.
//! Archives are built here with the zip, tar and flate2 crates.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use launch::profile::types::Artifact;
use launch::release::{debian_arch, host_arch, ReleaseCache, ReleaseError};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- test servers

#[derive(Default)]
struct Shared {
    files: Mutex<HashMap<String, Bytes>>,
    hits: Mutex<HashMap<String, u32>>,
    user_agents: Mutex<Vec<String>>,
}

impl Shared {
    fn hit(&self, key: String, headers: &HeaderMap) -> u32 {
        if let Some(ua) = headers.get("user-agent").and_then(|v| v.to_str().ok()) {
            self.user_agents.lock().unwrap().push(ua.to_string());
        }
        let mut hits = self.hits.lock().unwrap();
        let n = hits.entry(key).or_insert(0);
        *n += 1;
        *n
    }

    fn file(&self, name: &str) -> Response {
        match self.files.lock().unwrap().get(name) {
            Some(b) => b.clone().into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
}

struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    fn start() -> Server {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/f/{name}", get(serve_file))
            .route("/flaky/{name}", get(serve_flaky))
            .route("/broken/{name}", get(serve_broken))
            .with_state(shared.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1:0");
                tx.send(listener.local_addr().expect("local addr"))
                    .expect("send addr");
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("server address");
        Server { addr, shared }
    }

    fn put(&self, name: &str, body: Vec<u8>) {
        self.shared
            .files
            .lock()
            .unwrap()
            .insert(name.to_string(), Bytes::from(body));
    }

    fn url(&self, route: &str, name: &str) -> String {
        format!("http://{}/{route}/{name}", self.addr)
    }

    fn hits(&self, route: &str, name: &str) -> u32 {
        let key = format!("{route}/{name}");
        *self.shared.hits.lock().unwrap().get(&key).unwrap_or(&0)
    }
}

async fn serve_file(
    State(st): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    st.hit(format!("f/{name}"), &headers);
    st.file(&name)
}

/// 500 on the first request, the file afterwards.
async fn serve_flaky(
    State(st): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if st.hit(format!("flaky/{name}"), &headers) == 1 {
        (StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response()
    } else {
        st.file(&name)
    }
}

/// Always 503.
async fn serve_broken(
    State(st): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    st.hit(format!("broken/{name}"), &headers);
    (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
}

#[derive(Clone, Copy)]
enum Cut {
    /// Promise 1 MiB, send 100 KiB, close.
    MidBody,
    /// Read the request and close without answering.
    BeforeResponse,
}

/// A raw HTTP/1.1 server whose connections break; counts connections.
fn cut_server(mode: Cut) -> (SocketAddr, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        // Bounded: the client makes at most a handful of attempts.
        for _ in 0..10 {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            // Read the whole request first so closing sends FIN, not RST.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
                match sock.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if let Cut::MidBody = mode {
                let _ = sock.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\nContent-Type: application/zip\r\n\r\n",
                );
                let _ = sock.write_all(&vec![7u8; 100 * 1024]);
            }
            drop(sock);
        }
    });
    (addr, count)
}

// ---------------------------------------------------------------- helpers

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn artifact(url: &str, sha256: &str, format: &str, binary: Option<&str>) -> Artifact {
    let mut v = serde_json::json!({ "url": url, "sha256": sha256, "format": format });
    if let Some(b) = binary {
        v["binary"] = b.into();
    }
    serde_json::from_value(v).expect("artifact from test values")
}

/// Deterministic pseudo-random bytes (xorshift), so sums differ between sizes and seeds.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every non-directory under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn no_progress() -> impl FnMut(u64, Option<u64>) {
    |_, _| {}
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

// ---------------------------------------------------------------- fetch

#[test]
fn fetch_verifies_caches_and_replaces_a_damaged_entry() {
    let srv = Server::start();
    let body = bytes(300_000, 1);
    srv.put("app-1.0-linux-amd64.zip", body.clone());
    let url = srv.url("f", "app-1.0-linux-amd64.zip");
    let art = artifact(&url, &sha256_hex(&body), "zip", Some("app"));
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().join("releases"));

    let mut last = (0, None);
    let mut calls = 0;
    let path = cache
        .fetch("vikunja", "v1.0", &art, &mut |done, total| {
            last = (done, total);
            calls += 1;
        })
        .expect("first fetch");
    assert_eq!(
        path,
        tmp.path()
            .join("releases/vikunja/v1.0/app-1.0-linux-amd64.zip")
    );
    assert_eq!(fs::read(&path).unwrap(), body);
    assert_eq!(last, (body.len() as u64, Some(body.len() as u64)));
    assert!(calls >= 2, "progress reported only {calls} times");
    assert_eq!(srv.hits("f", "app-1.0-linux-amd64.zip"), 1);
    let ua = srv.shared.user_agents.lock().unwrap().clone();
    assert_eq!(
        ua,
        vec![format!("launch-tui/{}", env!("CARGO_PKG_VERSION"))]
    );
    assert_eq!(files_under(tmp.path()), vec![path.clone()], "no temp files");

    // Cached and still valid: no request.
    let again = cache
        .fetch("vikunja", "v1.0", &art, &mut no_progress())
        .expect("cached fetch");
    assert_eq!(again, path);
    assert_eq!(srv.hits("f", "app-1.0-linux-amd64.zip"), 1);

    // Damage one byte of the cached file: it is detected and downloaded again.
    let mut damaged = body.clone();
    damaged[1234] ^= 0xff;
    fs::write(&path, &damaged).unwrap();
    let again = cache
        .fetch("vikunja", "v1.0", &art, &mut no_progress())
        .expect("fetch after damage");
    assert_eq!(srv.hits("f", "app-1.0-linux-amd64.zip"), 2);
    assert_eq!(fs::read(&again).unwrap(), body);

    // A truncated cache entry too.
    fs::write(&path, &body[..1000]).unwrap();
    cache
        .fetch("vikunja", "v1.0", &art, &mut no_progress())
        .expect("fetch after truncation");
    assert_eq!(srv.hits("f", "app-1.0-linux-amd64.zip"), 3);
    assert_eq!(fs::read(&path).unwrap(), body);
    assert_eq!(files_under(tmp.path()), vec![path]);
}

#[test]
fn wrong_checksum_names_url_and_both_sums_and_leaves_nothing() {
    let srv = Server::start();
    let pinned = bytes(50_000, 2);
    let served = bytes(50_000, 3);
    srv.put("app.tar.gz", served.clone());
    let url = srv.url("f", "app.tar.gz");
    let art = artifact(&url, &sha256_hex(&pinned), "tar.gz", Some("app"));
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().join("releases"));

    let err = cache
        .fetch("app", "1.0", &art, &mut no_progress())
        .expect_err("the sum does not match");
    assert!(matches!(err, ReleaseError::Checksum { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "checksum failed for '{url}': expected '{}', calculated '{}'",
            sha256_hex(&pinned),
            sha256_hex(&served)
        )),
        "{msg}"
    );
    assert!(msg.contains("help: "), "{msg}");
    // A wrong sum is not transient: no retry.
    assert_eq!(srv.hits("f", "app.tar.gz"), 1);
    assert_eq!(files_under(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn connection_cut_mid_body_fails_after_bounded_retries_and_leaves_nothing() {
    let (addr, conns) = cut_server(Cut::MidBody);
    let url = format!("http://{addr}/app.zip");
    let art = artifact(&url, &sha256_hex(b"whatever"), "zip", Some("app"));
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().to_path_buf());

    let mut max_seen = 0;
    let err = cache
        .fetch("app", "1.0", &art, &mut |done, _| {
            max_seen = max_seen.max(done)
        })
        .expect_err("body is cut short");
    assert!(matches!(err, ReleaseError::Download { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains("tried 3 times"), "{msg}");
    assert!(msg.contains("help: "), "{msg}");
    assert_eq!(conns.load(Ordering::SeqCst), 3);
    assert!(max_seen > 0 && max_seen < 1_048_576, "{max_seen}");
    assert_eq!(files_under(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn connection_closed_before_response_fails_and_leaves_nothing() {
    let (addr, conns) = cut_server(Cut::BeforeResponse);
    let url = format!("http://{addr}/app.zip");
    let art = artifact(&url, &sha256_hex(b"whatever"), "zip", Some("app"));
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().to_path_buf());

    let err = cache
        .fetch("app", "1.0", &art, &mut no_progress())
        .expect_err("no response");
    assert!(matches!(err, ReleaseError::Download { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
    assert_eq!(conns.load(Ordering::SeqCst), 3);
    assert_eq!(files_under(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn connection_refused_is_a_download_error() {
    // Bind then drop: the port is closed, so connecting fails at once.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/app.zip");
    let art = artifact(&url, &sha256_hex(b"x"), "zip", Some("app"));
    let tmp = tempfile::tempdir().unwrap();
    let err = ReleaseCache::new(tmp.path().to_path_buf())
        .fetch("app", "1.0", &art, &mut no_progress())
        .expect_err("nothing listens");
    let msg = err.to_string();
    assert!(matches!(err, ReleaseError::Download { .. }), "{err:?}");
    assert!(msg.contains(&url) && msg.contains("help: "), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[test]
fn server_error_once_is_retried() {
    let srv = Server::start();
    let body = bytes(10_000, 4);
    srv.put("app.zip", body.clone());
    let art = artifact(
        &srv.url("flaky", "app.zip"),
        &sha256_hex(&body),
        "zip",
        None,
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = ReleaseCache::new(tmp.path().to_path_buf())
        .fetch("app", "1.0", &art, &mut no_progress())
        .expect("second attempt succeeds");
    assert_eq!(fs::read(path).unwrap(), body);
    assert_eq!(srv.hits("flaky", "app.zip"), 2);
}

#[test]
fn persistent_server_error_gives_up_after_three_attempts() {
    let srv = Server::start();
    let url = srv.url("broken", "app.zip");
    let art = artifact(&url, &sha256_hex(b"x"), "zip", None);
    let tmp = tempfile::tempdir().unwrap();
    let err = ReleaseCache::new(tmp.path().to_path_buf())
        .fetch("app", "1.0", &art, &mut no_progress())
        .expect_err("always 503");
    assert!(
        matches!(
            err,
            ReleaseError::HttpStatus {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    assert_eq!(srv.hits("broken", "app.zip"), 3);
    assert_eq!(files_under(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn not_found_is_clear_and_not_retried() {
    let srv = Server::start();
    let url = srv.url("f", "vikunja-v9.9.9-linux-amd64-full.zip");
    let art = artifact(&url, &sha256_hex(b"x"), "zip", Some("vikunja"));
    let tmp = tempfile::tempdir().unwrap();
    let err = ReleaseCache::new(tmp.path().to_path_buf())
        .fetch("vikunja", "v9.9.9", &art, &mut no_progress())
        .expect_err("404");
    assert!(
        matches!(err, ReleaseError::NotFound { status: 404, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains("may have been removed"), "{msg}");
    assert!(msg.contains("help: "), "{msg}");
    assert_eq!(srv.hits("f", "vikunja-v9.9.9-linux-amd64-full.zip"), 1);
    assert_eq!(files_under(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn bad_cache_keys_are_refused_before_any_request() {
    let srv = Server::start();
    srv.put("app.zip", b"data".to_vec());
    let art = artifact(&srv.url("f", "app.zip"), &sha256_hex(b"data"), "zip", None);
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().to_path_buf());
    for (profile, version) in [
        ("app", "../../etc"),
        ("..", "1.0"),
        ("app", ""),
        ("a/b", "1"),
    ] {
        let err = cache
            .fetch(profile, version, &art, &mut no_progress())
            .expect_err("unsafe cache path");
        assert!(matches!(err, ReleaseError::InvalidValue { .. }), "{err:?}");
        assert!(err.to_string().contains("help: "), "{err}");
    }
    // A URL without a file name.
    let art = artifact(
        &format!("http://{}/", srv.addr),
        &sha256_hex(b"x"),
        "zip",
        None,
    );
    let err = cache
        .fetch("app", "1.0", &art, &mut no_progress())
        .expect_err("no file name in URL");
    assert!(err.to_string().contains("artifact URL"), "{err}");
    assert_eq!(srv.hits("f", "app.zip"), 0);
}

#[test]
fn a_64_mib_release_streams_to_disk_in_chunks() {
    const SIZE: usize = 64 * 1024 * 1024;
    let srv = Server::start();
    let body = bytes(SIZE, 5);
    let sum = sha256_hex(&body);
    srv.put("big.tar.gz", body);
    let art = artifact(&srv.url("f", "big.tar.gz"), &sum, "tar.gz", Some("big"));
    let tmp = tempfile::tempdir().unwrap();

    let mut calls = 0u32;
    let mut prev = 0u64;
    let mut monotonic = true;
    let path = ReleaseCache::new(tmp.path().to_path_buf())
        .fetch("big", "1.0", &art, &mut |done, total| {
            calls += 1;
            monotonic &= done >= prev;
            prev = done;
            assert_eq!(total, Some(SIZE as u64));
        })
        .expect("large fetch");
    assert!(monotonic);
    assert_eq!(prev, SIZE as u64);
    // Each chunk is reported; a buffered download would report once.
    assert!(calls >= 256, "only {calls} progress reports for 64 MiB");
    assert_eq!(fs::metadata(&path).unwrap().len(), SIZE as u64);
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(&path).unwrap(), &mut hasher).unwrap();
    assert_eq!(hex::encode(hasher.finalize()), sum);
}

// ---------------------------------------------------------------- unpack

fn zip_archive(path: &Path, entries: &[(&str, &[u8])], dirs: &[&str]) {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(File::create(path).unwrap());
    for d in dirs {
        w.add_directory(*d, SimpleFileOptions::default()).unwrap();
    }
    for (name, data) in entries {
        w.start_file(*name, SimpleFileOptions::default().unix_permissions(0o644))
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

/// Writes names byte for byte into the header, because `tar::Builder`'s path setters refuse
/// the unsafe names these tests need.
fn tar_gz_archive(path: &Path, entries: &[(&str, &[u8])]) {
    let gz =
        flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        let raw = &mut h.as_gnu_mut().unwrap().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn unpack_from_zip_writes_the_executable_with_mode_0755() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("vikunja-v1.0-linux-amd64-full.zip");
    let exe = bytes(200_000, 6);
    zip_archive(
        &archive,
        &[
            ("vikunja-v1.0-linux-amd64", &exe),
            ("config.yml.sample", b"service: {}\n"),
            ("LICENSE", b"AGPL"),
        ],
        &["docs/"],
    );
    let art = artifact(
        "https://dl.example.org/vikunja-v1.0-linux-amd64-full.zip",
        &sha256_hex(b"unused"),
        "zip",
        Some("vikunja-v1.0-linux-amd64"),
    );
    let dest = tmp.path().join("stage");
    let cache = ReleaseCache::new(tmp.path().join("cache"));
    let out = cache
        .unpack_binary(&archive, &art, &dest, "vikunja")
        .expect("unpack");
    assert_eq!(out, dest.join("vikunja"));
    assert_eq!(fs::read(&out).unwrap(), exe);
    assert_eq!(mode_of(&out), 0o755);
    assert_eq!(files_under(&dest), vec![out.clone()], "no temp files");

    // Unpacking again replaces the file atomically.
    fs::write(&out, b"old").unwrap();
    cache
        .unpack_binary(&archive, &art, &dest, "vikunja")
        .expect("unpack again");
    assert_eq!(fs::read(&out).unwrap(), exe);
}

#[test]
fn unpack_finds_a_binary_inside_a_top_directory_and_refuses_ambiguity() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("app.zip");
    zip_archive(
        &archive,
        &[("app-1.0/bin/app", b"exe"), ("app-1.0/README", b"r")],
        &["app-1.0/", "app-1.0/bin/"],
    );
    let art = artifact(
        "https://x.example/app.zip",
        &sha256_hex(b"u"),
        "zip",
        Some("app"),
    );
    let cache = ReleaseCache::new(tmp.path().join("cache"));
    let out = cache
        .unpack_binary(&archive, &art, tmp.path(), "app")
        .expect("nested binary");
    assert_eq!(fs::read(out).unwrap(), b"exe");

    let archive = tmp.path().join("two.zip");
    zip_archive(&archive, &[("a/app", b"1"), ("b/app", b"2")], &[]);
    let dest = tmp.path().join("two");
    let err = cache
        .unpack_binary(&archive, &art, &dest, "app")
        .expect_err("two candidates");
    assert!(
        matches!(err, ReleaseError::AmbiguousBinary { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("a/app") && msg.contains("b/app") && msg.contains("help: "),
        "{msg}"
    );
    assert_eq!(files_under(&dest), Vec::<PathBuf>::new());
}

#[test]
fn unpack_from_tar_gz_writes_the_executable_with_mode_0755() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("app.tar.gz");
    let exe = bytes(300_000, 7);
    tar_gz_archive(
        &archive,
        &[("./README.md", b"hello"), ("./app-server", &exe)],
    );
    let art = artifact(
        "https://x.example/app.tar.gz",
        &sha256_hex(b"u"),
        "tar.gz",
        Some("app-server"),
    );
    let dest = tmp.path().join("stage");
    let out = ReleaseCache::new(tmp.path().join("cache"))
        .unpack_binary(&archive, &art, &dest, "app")
        .expect("unpack tar.gz");
    assert_eq!(fs::read(&out).unwrap(), exe);
    assert_eq!(mode_of(&out), 0o755);
    assert_eq!(files_under(&dest), vec![out]);
}

#[test]
fn unsafe_entries_are_refused_in_zip_and_tar_gz() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().join("cache"));
    let dest = tmp.path().join("stage");
    for evil in ["../evil", "/etc/evil", "bin/../../evil"] {
        let z = tmp.path().join("evil.zip");
        zip_archive(&z, &[("app", b"exe"), (evil, b"boom")], &[]);
        let art = artifact(
            "https://x.example/evil.zip",
            &sha256_hex(b"u"),
            "zip",
            Some("app"),
        );
        let err = cache
            .unpack_binary(&z, &art, &dest, "app")
            .expect_err("zip with unsafe entry");
        assert!(
            matches!(err, ReleaseError::UnsafeEntry { .. }),
            "{evil}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("`{evil}`")) && msg.contains("help: "),
            "{msg}"
        );

        let t = tmp.path().join("evil.tar.gz");
        tar_gz_archive(&t, &[("app", b"exe"), (evil, b"boom")]);
        let art = artifact(
            "https://x.example/evil.tar.gz",
            &sha256_hex(b"u"),
            "tar.gz",
            Some("app"),
        );
        let err = cache
            .unpack_binary(&t, &art, &dest, "app")
            .expect_err("tar.gz with unsafe entry");
        assert!(
            matches!(err, ReleaseError::UnsafeEntry { .. }),
            "{evil}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("`{evil}`")), "{err}");
    }
    assert_eq!(files_under(&dest), Vec::<PathBuf>::new());
    assert!(!tmp.path().join("evil").exists());
}

#[test]
fn missing_binary_lists_the_archive_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().join("cache"));
    let dest = tmp.path().join("stage");

    let z = tmp.path().join("app.zip");
    zip_archive(&z, &[("app-linux", b"exe"), ("LICENSE", b"l")], &["docs/"]);
    let art = artifact(
        "https://x.example/app.zip",
        &sha256_hex(b"u"),
        "zip",
        Some("app"),
    );
    let err = cache
        .unpack_binary(&z, &art, &dest, "app")
        .expect_err("no such entry");
    assert!(
        matches!(err, ReleaseError::BinaryNotFound { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("`app`"), "{msg}");
    assert!(msg.contains("app-linux, LICENSE"), "{msg}");
    assert!(!msg.contains("docs/"), "directories are not listed: {msg}");
    assert!(msg.contains("help: "), "{msg}");

    let t = tmp.path().join("app.tar.gz");
    tar_gz_archive(&t, &[("server", b"exe"), ("web/index.html", b"<p>")]);
    let art = artifact(
        "https://x.example/app.tar.gz",
        &sha256_hex(b"u"),
        "tar.gz",
        Some("app"),
    );
    let err = cache
        .unpack_binary(&t, &art, &dest, "app")
        .expect_err("no such entry");
    let msg = err.to_string();
    assert!(msg.contains("server, web/index.html"), "{msg}");
    assert_eq!(files_under(&dest), Vec::<PathBuf>::new());
}

#[test]
fn a_link_named_as_the_binary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("app.tar.gz");
    let gz = flate2::write::GzEncoder::new(File::create(&t).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "app", "/usr/bin/sh").unwrap();
    b.into_inner().unwrap().finish().unwrap();
    let art = artifact(
        "https://x.example/app.tar.gz",
        &sha256_hex(b"u"),
        "tar.gz",
        Some("app"),
    );
    let err = ReleaseCache::new(tmp.path().join("cache"))
        .unpack_binary(&t, &art, tmp.path(), "out")
        .expect_err("symlink");
    assert!(matches!(err, ReleaseError::NotAFile { .. }), "{err:?}");
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn plain_binary_is_copied_with_mode_0755() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app-linux-amd64");
    let exe = bytes(70_000, 8);
    fs::write(&src, &exe).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o600)).unwrap();
    let art = artifact(
        "https://x.example/app-linux-amd64",
        &sha256_hex(b"u"),
        "binary",
        None,
    );
    let dest = tmp.path().join("stage");
    let out = ReleaseCache::new(tmp.path().join("cache"))
        .unpack_binary(&src, &art, &dest, "app")
        .expect("copy");
    assert_eq!(fs::read(&out).unwrap(), exe);
    assert_eq!(mode_of(&out), 0o755);
}

#[test]
fn bad_unpack_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ReleaseCache::new(tmp.path().join("cache"));
    let z = tmp.path().join("app.zip");
    zip_archive(&z, &[("app", b"exe")], &[]);

    // An archive artifact without `binary:`.
    let art = artifact("https://x.example/app.zip", &sha256_hex(b"u"), "zip", None);
    let err = cache
        .unpack_binary(&z, &art, tmp.path(), "app")
        .expect_err("no binary");
    assert!(err.to_string().contains("`binary:` is missing"), "{err}");

    // A `binary:` that climbs out.
    let art = artifact(
        "https://x.example/app.zip",
        &sha256_hex(b"u"),
        "zip",
        Some("../app"),
    );
    let err = cache
        .unpack_binary(&z, &art, tmp.path(), "app")
        .expect_err("bad binary");
    assert!(matches!(err, ReleaseError::InvalidValue { .. }), "{err:?}");

    // A destination name that is a path.
    let art = artifact(
        "https://x.example/app.zip",
        &sha256_hex(b"u"),
        "zip",
        Some("app"),
    );
    let err = cache
        .unpack_binary(&z, &art, tmp.path(), "../app")
        .expect_err("bad dest");
    assert!(err.to_string().contains("destination file name"), "{err}");

    // Not a zip at all.
    let junk = tmp.path().join("junk.zip");
    fs::write(&junk, bytes(5000, 9)).unwrap();
    let err = cache
        .unpack_binary(&junk, &art, tmp.path(), "app")
        .expect_err("junk zip");
    assert!(matches!(err, ReleaseError::BadArchive { .. }), "{err:?}");
    assert!(err.to_string().contains("help: "), "{err}");

    // Not a tar.gz either.
    let art = artifact(
        "https://x.example/app.tar.gz",
        &sha256_hex(b"u"),
        "tar.gz",
        Some("app"),
    );
    let err = cache
        .unpack_binary(&junk, &art, tmp.path(), "app")
        .expect_err("junk tar.gz");
    assert!(matches!(err, ReleaseError::BadArchive { .. }), "{err:?}");
    // Every refusal left nothing behind: only the two archives the test wrote.
    let mut left = files_under(tmp.path());
    left.sort();
    assert_eq!(left, vec![z, junk]);
}

// ---------------------------------------------------------------- architecture

#[test]
fn architectures_map_to_debian_names() {
    assert_eq!(debian_arch("x86_64").unwrap(), "amd64");
    assert_eq!(debian_arch("aarch64").unwrap(), "arm64");
    let err = debian_arch("riscv64").expect_err("unsupported");
    let msg = err.to_string();
    assert!(msg.contains("`riscv64`") && msg.contains("help: "), "{msg}");
    let host = host_arch().expect("CI runs on amd64 or arm64");
    assert_eq!(host, debian_arch(std::env::consts::ARCH).unwrap());
}

// ---------------------------------------------------------------- whole trees (strip_components)

/// A tar.gz with `app-1.0/` on top: an executable, a data file, a link inside, a directory.
fn tree_tar_gz(path: &Path, extra: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<File>>)) {
    let gz =
        flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut add = |name: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("app-1.0/bin/app", 0o775, b"#!/bin/sh\necho app\n");
    add("app-1.0/share/app/index.html", 0o664, b"<h1>app</h1>\n");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "app-1.0/share/current", "app")
        .unwrap();
    extra(&mut b);
    b.into_inner().unwrap().finish().unwrap();
}

/// (path, mode, uid, kind, link) of every entry of a plain tar.
fn tar_listing(path: &Path) -> Vec<(String, u32, u64, char, String)> {
    let mut t = tar::Archive::new(File::open(path).unwrap());
    t.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Regular => 'f',
                _ => '?',
            };
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                kind,
                e.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn a_tree_is_repacked_stripped_owned_by_root_with_normal_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app.tar.gz");
    tree_tar_gz(&src, |_| {});
    let art = artifact(
        "https://x.example/app.tar.gz",
        &sha256_hex(b"u"),
        "tar.gz",
        None,
    );
    let tree = ReleaseCache::new(tmp.path().join("cache"))
        .repack_tree(&src, &art, 1, "bin/app", &tmp.path().join("stage"))
        .unwrap();
    assert_eq!(tree.files, 3);
    assert_eq!(mode_of(&tree.tar), 0o600);
    let got = tar_listing(&tree.tar);
    assert_eq!(
        got,
        vec![
            ("bin/app".into(), 0o755, 0, 'f', String::new()),
            ("share/app/index.html".into(), 0o644, 0, 'f', String::new()),
            ("share/current".into(), 0o777, 0, 'l', "app".into()),
        ]
    );

    // The same tree from a zip.
    let z = tmp.path().join("app.zip");
    zip_archive(
        &z,
        &[("app-1.0/bin/app", b"exe"), ("app-1.0/README", b"read me")],
        &["app-1.0/"],
    );
    let art = artifact("https://x.example/app.zip", &sha256_hex(b"u"), "zip", None);
    let tree = ReleaseCache::new(tmp.path().join("cache"))
        .repack_tree(&z, &art, 1, "bin/app", &tmp.path().join("stage2"))
        .unwrap();
    let names: Vec<(String, u32)> = tar_listing(&tree.tar)
        .into_iter()
        .map(|(p, m, ..)| (p, m))
        .collect();
    assert_eq!(
        names,
        vec![("bin/app".into(), 0o755), ("README".into(), 0o644)],
        "the binary is executable even when the zip forgot to say so"
    );
}

#[test]
fn a_tree_with_an_escaping_link_a_hard_link_or_no_binary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let art = artifact(
        "https://x.example/app.tar.gz",
        &sha256_hex(b"u"),
        "tar.gz",
        None,
    );
    let cache = ReleaseCache::new(tmp.path().join("cache"));
    type Extra = fn(&mut tar::Builder<flate2::write::GzEncoder<File>>);
    let cases: [(&str, Extra, &str); 3] = [
        (
            "escaping link",
            |b| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, "app-1.0/share/passwd", "../../../etc/passwd")
                    .unwrap();
            },
            "points outside the release",
        ),
        (
            "hard link",
            |b| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, "app-1.0/share/shadow", "/etc/shadow")
                    .unwrap();
            },
            "hard link",
        ),
        (
            "file above the stripped part",
            |b| {
                let mut h = tar::Header::new_gnu();
                h.set_size(1);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, "stray", &b"x"[..]).unwrap();
            },
            "strip_components",
        ),
    ];
    for (what, extra, want) in cases {
        let src = tmp.path().join("app.tar.gz");
        tree_tar_gz(&src, extra);
        let stage = tmp.path().join("stage");
        let err = cache
            .repack_tree(&src, &art, 1, "bin/app", &stage)
            .expect_err(what);
        assert!(
            matches!(err, ReleaseError::UnsafeEntry { .. }),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains(want), "{what}: {err}");
        assert_eq!(
            files_under(&stage),
            Vec::<PathBuf>::new(),
            "{what}: nothing left"
        );
    }
    // `..` in a name, as in unpack_binary.
    let evil = tmp.path().join("evil.tar.gz");
    tar_gz_archive(
        &evil,
        &[("app-1.0/bin/app", b"exe"), ("app-1.0/../../evil", b"boom")],
    );
    let err = cache
        .repack_tree(&evil, &art, 1, "bin/app", &tmp.path().join("stage"))
        .expect_err("..");
    assert!(matches!(err, ReleaseError::UnsafeEntry { .. }), "{err:?}");
    // The binary is not in the tree.
    let src = tmp.path().join("app.tar.gz");
    tree_tar_gz(&src, |_| {});
    let err = cache
        .repack_tree(&src, &art, 1, "bin/other", &tmp.path().join("stage"))
        .expect_err("no binary");
    assert!(
        matches!(err, ReleaseError::BinaryNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bin/app"), "{err}");
}
