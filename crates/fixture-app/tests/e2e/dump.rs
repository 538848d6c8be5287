//! `vikunja dump` / `vikunja restore`: the archive layout, the round trip, and the two refusals
//! (no confirmation, another version).

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::harness::{random_bytes, release, zip_entry, zip_names, Instance, Server};

fn titles(server: &Server) -> Vec<String> {
    server
        .get_json("/api/v1/tasks")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

/// A v1 instance with two tasks and one attachment, and a dump of it taken while it runs.
fn instance_with_dump() -> (Instance, Vec<u8>, std::path::PathBuf) {
    let v1 = release("v1.0.0");
    let mut instance = Instance::sqlite();
    instance
        .env
        .insert("VIKUNJA_SERVICE_TIMEZONE".into(), "Europe/Paris".into());
    let server = instance.start(v1);
    server.create_task(json!({"title": "keep me"}));
    server.create_task(json!({"title": "me too"}));
    let payload = random_bytes(200_000);
    assert_eq!(server.upload(1, "a.bin", &payload).status().as_u16(), 201);
    let dumps = instance.path().join("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let out = instance.run(
        v1,
        &["dump", "-p", dumps.to_str().unwrap(), "-f", "before.zip"],
    );
    assert!(out.status.success(), "{out:?}");
    server.stop_ok();
    (instance, payload, dumps.join("before.zip"))
}

#[test]
fn dump_then_restore_gives_back_rows_and_files() {
    let v1 = release("v1.0.0");
    let (instance, payload, dump) = instance_with_dump();

    let mode = std::fs::metadata(&dump).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the dump holds secrets");
    let mut names = zip_names(&dump);
    names.sort();
    for expected in [
        ".env",
        "VERSION",
        "config.yml",
        "database/tasks.json",
        "database/attachments.json",
        "database/migrations.json",
        "files/1",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(zip_entry(&dump, "VERSION").unwrap(), b"v1.0.0");
    let env = String::from_utf8(zip_entry(&dump, ".env").unwrap()).unwrap();
    assert!(
        env.contains("VIKUNJA_SERVICE_TIMEZONE=Europe/Paris"),
        "{env}"
    );
    assert_eq!(zip_entry(&dump, "files/1").unwrap(), payload);

    // Change everything the dump covers.
    let server = instance.start(v1);
    server.create_task(json!({"title": "added after the dump"}));
    assert_eq!(server.upload(2, "b.bin", b"later").status().as_u16(), 201);
    server.stop_ok();
    std::fs::write(instance.path().join("files/1"), b"clobbered").unwrap();
    let config_path = instance.path().join("config.yml");
    let original_config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        format!("{original_config}# edited after the dump\n"),
    )
    .unwrap();

    let out = instance.run_with_input(
        v1,
        &["restore", dump.to_str().unwrap()],
        "Yes, I understand\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("config file was restored"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&config_path).unwrap(),
        original_config
    );

    let server = instance.start(v1);
    assert_eq!(titles(&server), ["keep me", "me too"]);
    assert_eq!(
        server.download(1, 1).bytes().unwrap().as_ref(),
        payload.as_slice()
    );
    assert_eq!(server.download(2, 2).status().as_u16(), 404);
    assert!(
        !instance.path().join("files/2").exists(),
        "files not in the dump are removed"
    );
    // Ids continue after the restored rows.
    assert_eq!(server.create_task(json!({"title": "next"}))["id"], 3);
    server.stop_ok();
}

#[test]
fn restore_without_the_confirmation_aborts_and_changes_nothing() {
    let v1 = release("v1.0.0");
    let (instance, _, dump) = instance_with_dump();
    let server = instance.start(v1);
    server.create_task(json!({"title": "after"}));
    server.stop_ok();

    for input in ["yes\n", "", "Yes, I understand!\n"] {
        let out = instance.run_with_input(
            v1,
            &["restore", "--preserve-config", dump.to_str().unwrap()],
            input,
        );
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("restore aborted") && out.stderr.contains("Yes, I understand"),
            "{out:?}"
        );
    }
    let server = instance.start(v1);
    assert_eq!(titles(&server), ["keep me", "me too", "after"]);
    server.stop_ok();
}

#[test]
fn restore_refuses_a_dump_from_another_version() {
    let (instance, _, dump) = instance_with_dump();
    let v2 = release("v2.0.0");
    let out = instance.run_with_input(
        v2,
        &["restore", "--preserve-config", dump.to_str().unwrap()],
        "Yes, I understand\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("made by Vikunja v1.0.0 but this binary is v2.0.0")
            && out.stderr.contains("help:"),
        "{out:?}"
    );
    // The refused restore left the v1 database alone (v1 still starts on it).
    let server = instance.start(release("v1.0.0"));
    assert_eq!(titles(&server), ["keep me", "me too"]);
    server.stop_ok();
}
