//! v1 on SQLite: health, info, the tasks API, attachments and their size limit, config lookup
//! with env overrides, the CLI checks, and users with login sessions and API tokens.

use serde_json::json;

use crate::harness::{free_port, random_bytes, release, Instance};

#[test]
fn v1_on_sqlite_serves_health_info_tasks_and_attachments() {
    let v1 = release("v1.0.0");
    let mut instance = Instance::sqlite();
    // The file names another port: VIKUNJA_SERVICE_INTERFACE has to win for the server to answer.
    let file_port = free_port();
    let config_path = instance.path().join("config.yml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace(
            &format!("127.0.0.1:{}", instance.port),
            &format!("127.0.0.1:{file_port}"),
        ),
    )
    .unwrap();
    instance.env.insert(
        "VIKUNJA_SERVICE_INTERFACE".into(),
        format!("127.0.0.1:{}", instance.port),
    );
    let server = instance.start(v1);

    let health = server.http.get(server.url("/health")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().unwrap(), "OK");
    let info = server.get_json("/api/v1/info");
    assert_eq!(info["version"], "v1.0.0");
    assert_eq!(info["frontend_url"], "http://vikunja.test/");
    assert_eq!(info["max_file_size"], "1MB");
    assert_eq!(info["concurrent_writes"], false);
    let page = server
        .http
        .get(server.url("/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("Vikunja (fixture) v1.0.0"), "{page}");

    let first = server.create_task(json!({"title": "first"}));
    let second = server.create_task(json!({"title": "second"}));
    assert_eq!(first["id"], 1);
    assert_eq!(second["id"], 2);
    assert_eq!(server.get_json("/api/v1/tasks/2")["title"], "second");
    let titles: Vec<String> = server
        .get_json("/api/v1/tasks")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles, ["first", "second"]);
    let missing = server
        .http
        .get(server.url("/api/v1/tasks/99"))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let empty = server
        .http
        .put(server.url("/api/v1/tasks"))
        .json(&json!({"title": " "}))
        .send()
        .unwrap();
    assert_eq!(empty.status().as_u16(), 400);
    assert_eq!(empty.json::<serde_json::Value>().unwrap()["code"], 4001);

    let payload = random_bytes(300_000);
    let resp = server.upload(1, "notes.bin", &payload);
    assert_eq!(resp.status().as_u16(), 201);
    let attachment: serde_json::Value = resp.json().unwrap();
    let aid = attachment["id"].as_i64().unwrap();
    assert_eq!(attachment["file"]["size"], 300_000);
    assert_eq!(attachment["file"]["name"], "notes.bin");
    let stored = std::fs::read(instance.path().join("files").join(aid.to_string())).unwrap();
    assert_eq!(
        stored, payload,
        "stored under files.basepath/<attachment id>"
    );
    let back = server.download(1, aid);
    assert_eq!(back.status().as_u16(), 200);
    assert_eq!(back.bytes().unwrap().as_ref(), payload.as_slice());
    assert_eq!(
        server.download(2, aid).status().as_u16(),
        404,
        "belongs to task 1"
    );

    // files.maxsize is 1MB (1024-based): exactly that fits, one byte more is 413.
    let exact = server.upload(2, "exact.bin", &random_bytes(1 << 20));
    assert_eq!(exact.status().as_u16(), 201);
    let over = server.upload(2, "over.bin", &random_bytes((1 << 20) + 1));
    assert_eq!(over.status().as_u16(), 413);
    assert!(over.text().unwrap().contains("1MB"));
    assert_eq!(server.upload(99, "x", b"x").status().as_u16(), 404);

    let too_slow = server
        .http
        .get(server.url("/api/v1/slow?ms=30001"))
        .send()
        .unwrap();
    assert_eq!(too_slow.status().as_u16(), 400);
    let quick = server
        .http
        .get(server.url("/api/v1/slow?ms=10"))
        .send()
        .unwrap();
    assert_eq!(quick.status().as_u16(), 200);

    let health_cli = instance.run(v1, &["healthcheck"]);
    assert!(health_cli.status.success(), "{health_cli:?}");
    let doctor = instance.run(v1, &["doctor"]);
    assert!(doctor.status.success(), "{doctor:?}");
    assert!(
        doctor.stdout.contains("All checks passed."),
        "{}",
        doctor.stdout
    );

    let log = server.stdout();
    assert!(
        log.contains("PUT /api/v1/tasks 201"),
        "requests are logged to stdout:\n{log}"
    );
    assert!(log.contains("PUT /api/v1/tasks/2/attachments 413"), "{log}");
    server.stop_ok();
}

#[test]
fn empty_publicurl_refuses_to_start_with_vikunjas_message() {
    let instance = Instance::sqlite();
    let config_path = instance.path().join("config.yml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace("\"http://vikunja.test\"", "\"\""),
    )
    .unwrap();
    let out = instance.start_expecting_refusal(release("v1.0.0"));
    assert!(
        out.stderr
            .contains("service.publicurl is required when cors.enable is true")
            && out.stderr.contains("help:"),
        "{out:?}"
    );
    assert!(
        !instance.path().join("vikunja.db").exists(),
        "refused before touching the database"
    );
}

#[test]
fn doctor_and_healthcheck_fail_on_an_unreachable_database() {
    let v1 = release("v1.0.0");
    let instance = Instance::new("  type: sqlite\n  path: /nonexistent-folder/vikunja.db");
    let health = instance.run(v1, &["healthcheck"]);
    assert_eq!(health.status.code(), Some(1), "{health:?}");
    assert!(
        health.stderr.contains("/nonexistent-folder/vikunja.db"),
        "{health:?}"
    );
    let doctor = instance.run(v1, &["doctor"]);
    assert_eq!(doctor.status.code(), Some(1), "{doctor:?}");
    assert!(doctor.stdout.contains("✗ Connection"), "{}", doctor.stdout);
}

#[test]
fn users_log_in_and_mint_api_tokens_that_survive_a_restart() {
    let v1 = release("v1.0.0");
    let instance = Instance::sqlite();
    let created = instance.run(
        v1,
        &[
            "user",
            "create",
            "-u",
            "alice",
            "-e",
            "alice@example.org",
            "-p",
            "correct horse",
        ],
    );
    assert!(created.status.success(), "{created:?}");
    assert!(created.stdout.contains("User was created successfully."));
    let again = instance.run(
        v1,
        &[
            "user",
            "create",
            "-u",
            "alice",
            "-e",
            "a@example.org",
            "-p",
            "correct horse",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stderr.contains("`alice` already exists"), "{again:?}");
    let short = instance.run(
        v1,
        &[
            "user",
            "create",
            "-u",
            "bob",
            "-e",
            "bob@example.org",
            "-p",
            "hunter2",
        ],
    );
    assert_eq!(short.status.code(), Some(1));
    assert!(
        short.stderr.contains("password") && !short.stderr.contains("hunter2"),
        "{short:?}"
    );

    let server = instance.start(v1);
    let wrong = server
        .http
        .post(server.url("/api/v1/login"))
        .json(&json!({"username": "alice", "password": "nope"}))
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 412);
    let login: serde_json::Value = server
        .http
        .post(server.url("/api/v1/login"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let session = login["token"].as_str().unwrap().to_string();

    let anonymous = server
        .http
        .put(server.url("/api/v1/tokens"))
        .json(&json!({"title": "ci"}))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let minted = server
        .http
        .put(server.url("/api/v1/tokens"))
        .bearer_auth(&session)
        .json(&json!({"title": "mcp", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .unwrap();
    assert_eq!(minted.status().as_u16(), 201);
    let token = minted.json::<serde_json::Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(token.starts_with("tk_"), "{token}");

    let me = |server: &crate::harness::Server, bearer: &str| {
        server
            .http
            .get(server.url("/api/v1/user"))
            .bearer_auth(bearer)
            .send()
            .unwrap()
    };
    let user: serde_json::Value = me(&server, &token).json().unwrap();
    assert_eq!(user["username"], "alice");
    assert!(user.get("password").is_none());
    assert_eq!(
        me(&server, "tk_0000000000000000000000000000000000000000")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        me(&server, &session.replace("fxs1.1.", "fxs1.2."))
            .status()
            .as_u16(),
        401
    );
    server.stop_ok();

    // Same service.secret after a restart: the session still holds, and so does the stored token.
    let server = instance.start(v1);
    assert_eq!(me(&server, &session).status().as_u16(), 200);
    assert_eq!(me(&server, &token).status().as_u16(), 200);
    server.stop_ok();
}
