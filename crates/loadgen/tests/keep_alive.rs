//! `launch-load --keep-alive` keeps one connection per worker; without it, one per request.
//! Real: the launch-load binary and TCP on loopback; the server is a minimal HTTP/1.1 responder
//! here that counts the connections it accepts (written by hand: it must count connections,
//! which no stock server reports).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn serve() -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let put = line.starts_with("PUT");
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let (status, text) = if put {
                        ("201 Created", "{\"id\":7}")
                    } else {
                        ("200 OK", "{\"version\":\"v1\"}")
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, conns)
}

fn run(url: &str, keep_alive: bool) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_launch-load"));
    cmd.args(["--url", url, "--concurrency", "1", "--max-requests", "20"])
        .args(["--pause-ms", "0", "--duration", "30"]);
    if keep_alive {
        cmd.arg("--keep-alive");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn keep_alive_reuses_one_connection_per_worker() {
    let (url, conns) = serve();
    let s = run(&url, true);
    assert_eq!(s["sent"], 20);
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["by_class"]["2xx"], 20, "{s}");
    assert_eq!(s["keep_alive"], true);
    assert_eq!(conns.load(Ordering::SeqCst), 1, "one persistent connection");

    let (url, conns) = serve();
    let s = run(&url, false);
    assert_eq!(s["sent"], 20);
    assert_eq!(conns.load(Ordering::SeqCst), 20, "a connection per request");
}
