//! `mongod --config` reads the mongod.conf subset, and SIGTERM exits cleanly with data kept.
//! The client is the stand-in's own (the one its tools use); the official drivers drive it in
//! `tests/e2e_librechat.rs` (Node.js, through LibreChat's shape).

use bson::doc;
use mongo_standin::client::{parse_uri, Client};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn config_file_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Take a free port from the OS, then hand it to the config file.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mongod.conf");
    let data = dir.path().join("db");
    std::fs::write(
        &conf,
        format!("net:\n  port: {port}\n  bindIp: 127.0.0.1\nstorage:\n  dbPath: {}\nsecurity:\n  authorization: disabled\n", data.display()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mongo-standin"))
        .args(["mongod", "--config", conf.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("auth=false"), "{line}");
    std::thread::spawn(move || for _ in out.lines() {});

    let mut c =
        Client::connect(&parse_uri(&format!("mongodb://127.0.0.1:{port}/d")).unwrap()).unwrap();
    c.command("d", doc! {"insert": "c", "documents": [{"k": 1}]})
        .unwrap();
    assert_eq!(c.find_all("d", "c").unwrap().len(), 1);
    // An unknown command gets MongoDB's CommandNotFound shape.
    let err = c.command("d", doc! {"frobnicate": 1}).unwrap_err();
    assert!(
        err.to_string().contains("no such command: 'frobnicate'"),
        "{err}"
    );
    assert!(err.to_string().contains("code 59"), "{err}");

    sigterm(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(data.join("d").join("c.bson").exists());
}

fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}
