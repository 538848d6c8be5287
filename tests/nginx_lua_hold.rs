//! The nginx site's Lua switch and write hold, on the host's real nginx with Debian's Lua module
//! (no container): writes wait during the hold and go to the slot named when it lifts, reads
//! pass, a keep-alive connection survives the switch (no reload), a write held past the maximum
//! gets 503 with `Retry-After`, and launch-tui's probes see the hold, the writes in flight and
//! the configuration id that proves a reload.
//!
//! Real: nginx 1.22 and libnginx-mod-http-lua from Debian, the site rendered from the Vikunja
//! profile by launch-tui's renderer, HTTP over loopback. Stood in: the two app slots (tiny HTTP
//! servers in this test that answer with their own name), and the container's paths (a temp
//! dir). Needs root (nginx's workers read the temp dir as root).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use launch::deploy::AppSettings;
use launch::instance::Slot;
use launch::profile::Catalog;
use launch::render::{self, DbContext};

/// An app slot: answers every request with `name`, one request per connection.
fn slot(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn);
                let (_, _, len) = read_head(&mut r);
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let mut w = r.into_inner();
                let _ = write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
            });
        }
    });
    port
}

/// Reads a request or response head: its first line, headers (lowercase names) and length.
fn read_head(r: &mut impl BufRead) -> (String, BTreeMap<String, String>, usize) {
    let mut first = String::new();
    r.read_line(&mut first).unwrap_or(0);
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (first.trim().to_string(), headers, len)
}

struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// One HTTP/1.1 request on a connection that stays open (keep-alive).
fn request(c: &mut BufReader<TcpStream>, method: &str, probe: bool) -> Answer {
    let extra = if probe { "X-Launch-Probe: 1\r\n" } else { "" };
    let body = if method == "GET" {
        ""
    } else {
        "{\"title\":\"t\"}"
    };
    write!(
        c.get_mut(),
        "{method} /api/v1/tasks HTTP/1.1\r\nHost: tasks.example.com\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (first, headers, len) = read_head(c);
    assert!(
        first.starts_with("HTTP/1.1 "),
        "no answer on the connection (reset?): {first:?}"
    );
    let mut b = vec![0; len];
    c.read_exact(&mut b).unwrap();
    Answer {
        status: first[9..12].parse().unwrap(),
        headers,
        body: String::from_utf8_lossy(&b).into_owned(),
    }
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    BufReader::new(s)
}

fn once(port: u16, method: &str, probe: bool) -> Answer {
    request(&mut connect(port), method, probe)
}

/// Writes a file the way launch-tui does in the container: a temp name, then a rename.
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("launch-new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn writes_wait_and_keep_alive_survives_the_switch() {
    let (blue, green) = (slot("blue"), slot("green"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let active = d.join("upstream.conf");
    let hold = d.join("vikunja.hold");
    put(&active, &render::nginx_upstream("vikunja_active", blue));

    let loaded = Catalog::new(Path::new("/nonexistent"))
        .load("vikunja")
        .unwrap();
    let settings: BTreeMap<String, String> = [
        ("public_url", "http://tasks.example.com/"),
        ("timezone", "Etc/UTC"),
        ("registration", "false"),
        ("max_upload_mib", "20"),
        ("mcp", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let secrets = BTreeMap::new();
    let app = AppSettings {
        profile: &loaded.profile,
        name: "vikunja",
        settings: &settings,
        secrets: &secrets,
        db: DbContext::sqlite(),
        tls: false,
    };
    let mut rc = app.render_context(&loaded.profile.components[0], Slot::Blue, "v1.0.0");
    let port = free_port();
    rc.http_port = port;
    rc.upstream_include = active.display().to_string();
    rc.hold_flag = hold.display().to_string();
    // A short maximum, so the test of a hold that outlasts it is quick.
    rc.hold_max_wait_s = 3;
    let site = render::nginx_site(&loaded.profile, &rc).unwrap();
    let config_id = render::site_config_id(&site).unwrap().to_string();
    assert_eq!(
        render::nginx_site(&loaded.profile, &rc).unwrap(),
        site,
        "the same settings give the same site (and id): an update needs no reload"
    );
    // Only IPv4 loopback here.
    let site = site.replace(&format!("    listen [::]:{port} default_server;\n"), "");
    std::fs::write(d.join("site.conf"), site).unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "load_module /usr/lib/nginx/modules/ndk_http_module.so;\nload_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\nuser root;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  include {d}/site.conf;\n}}\n",
            d = d.display()
        ),
    )
    .unwrap();
    let _nginx = Nginx(
        Command::new("nginx")
            .args(["-p"])
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx (scripts/test-all.sh installs nginx-light and libnginx-mod-http-lua)"),
    );
    // Up when it answers (bounded).
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < end,
            "nginx did not start: see {d:?}/error.log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A browser-like client: one connection for everything below.
    let mut keep = connect(port);
    let a = request(&mut keep, "GET", false);
    assert_eq!((a.status, a.body.as_str()), (200, "blue"));
    let a = request(&mut keep, "PUT", false);
    assert_eq!((a.status, a.body.as_str()), (200, "blue"));
    assert!(!a.headers.contains_key("x-launch-held-ms"));
    // The probe sees no hold and no write in flight.
    let a = once(port, "GET", true);
    assert_eq!(
        a.headers.get("x-launch-writes").map(String::as_str),
        Some("0")
    );
    // ... and that it is answered by exactly this configuration.
    assert_eq!(a.headers.get("x-launch-config"), Some(&config_id));
    // Clients other than launch-tui's probes see none of these headers.
    let a = once(port, "GET", false);
    assert!(
        !a.headers.contains_key("x-launch-config") && !a.headers.contains_key("x-launch-writes")
    );

    // The hold: a probe's write is answered at once, a client's write waits, reads pass.
    put(&hold, "held\n");
    let a = once(port, "POST", true);
    assert_eq!(a.status, 503);
    assert!(a.headers.contains_key("x-launch-hold"));
    let (tx, rx) = std::sync::mpsc::channel();
    let waiting = std::thread::spawn(move || {
        let a = once(port, "PUT", false);
        tx.send(()).unwrap();
        a
    });
    let a = request(&mut keep, "GET", false);
    assert_eq!((a.status, a.body.as_str()), (200, "blue"), "reads pass");
    assert!(rx.try_recv().is_err(), "the write did not wait");

    // The switch: a rename, no reload. Then the hold lifts and the write goes to green.
    put(&active, &render::nginx_upstream("vikunja_active", green));
    let a = once(port, "GET", true);
    assert!(
        a.headers
            .get("x-launch-upstream")
            .is_some_and(|u| u.ends_with(&format!(":{green}"))),
        "{:?}",
        a.headers
    );
    std::fs::remove_file(&hold).unwrap();
    let held = waiting.join().unwrap();
    assert_eq!((held.status, held.body.as_str()), (200, "green"));
    let ms: u64 = held.headers["x-launch-held-ms"].parse().unwrap();
    eprintln!("the held write waited {ms} ms and went to the new slot");
    // The same keep-alive connection, still open, now reaches green.
    let a = request(&mut keep, "PUT", false);
    assert_eq!((a.status, a.body.as_str()), (200, "green"));

    // A hold that outlasts the maximum: the write gets 503 with Retry-After, reads pass.
    put(&hold, "held\n");
    let a = request(&mut keep, "DELETE", false);
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.headers.get("retry-after").map(String::as_str), Some("5"));
    assert!(a.headers.contains_key("x-launch-hold"));
    let a = request(&mut keep, "OPTIONS", false);
    assert_eq!((a.status, a.body.as_str()), (200, "green"));
    std::fs::remove_file(&hold).unwrap();
    let a = request(&mut keep, "PUT", false);
    assert_eq!((a.status, a.body.as_str()), (200, "green"));
}
