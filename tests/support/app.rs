//! The app side of the end-to-end tests: installing the fixture Vikunja into the lab and
//! talking to it through nginx from the host.
#![allow(dead_code)]

use std::time::Duration;

use super::lab::{launch, text, workspace_bin, Config, Lab};

pub fn record(cfg: &Config, name: &str) -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(cfg.path().join(format!("instances/{name}.yaml"))).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// Installs instance `vikunja` (fixture v1.0.0, no MCP) with these extra answer lines; returns
/// its address and CT id.
pub fn install(lab: &Lab, cfg: &Config, extra_answers: &str) -> (String, String) {
    let answers = cfg.path().join("answers.yaml");
    std::fs::write(
        &answers,
        format!("public_url: http://tasks.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\n{extra_answers}"),
    )
    .unwrap();
    let out = launch(
        lab,
        cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let r = record(cfg, "vikunja");
    (
        r["container"]["ip"].as_str().unwrap().to_string(),
        r["container"]["vmid"].as_u64().unwrap().to_string(),
    )
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// The version the app reports through nginx.
pub fn version_at(ip: &str) -> String {
    let r = client()
        .get(format!("http://{ip}/api/v1/info"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().unwrap();
    v["version"].as_str().unwrap().to_string()
}

pub fn create_task(ip: &str, title: &str) -> i64 {
    let r = client()
        .put(format!("http://{ip}/api/v1/tasks"))
        .header("Content-Type", "application/json")
        .body(format!("{{\"title\":\"{title}\"}}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json::<serde_json::Value>().unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Every task id answers 200 through nginx.
pub fn assert_rows(ip: &str, ids: &[i64], what: &str) {
    for id in ids {
        let r = client()
            .get(format!("http://{ip}/api/v1/tasks/{id}"))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{what}: task {id}");
    }
}

/// The ids a `launch-load` summary says it created.
pub fn created_ids(summary: &serde_json::Value) -> Vec<i64> {
    summary["created_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

/// `pvesh get PATH` against the lab, as JSON.
pub fn pvesh_get(lab: &Lab, path: &str) -> serde_json::Value {
    let out = std::process::Command::new(workspace_bin("pve-lab"))
        .arg("--state")
        .arg(lab.path())
        .args(["pvesh", "get", path, "--output-format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}
