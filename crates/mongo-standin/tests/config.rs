//! `mongod --config` reads the mongod.conf subset, and SIGTERM exits cleanly with data kept.

use mongodb::bson::{doc, Document};
use mongodb::sync::Client;
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

    let c = Client::with_uri_str(format!(
        "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=5000"
    ))
    .unwrap();
    let coll = c.database("d").collection::<Document>("c");
    coll.insert_one(doc! {"k": 1}).run().unwrap();
    // An unknown command gets MongoDB's CommandNotFound shape.
    let err = c
        .database("d")
        .run_command(doc! {"frobnicate": 1})
        .run()
        .unwrap_err();
    assert!(
        err.to_string().contains("no such command: 'frobnicate'"),
        "{err}"
    );

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
