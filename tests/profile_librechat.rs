//! The built-in LibreChat profile before any container runs it: `profiles lint` passes (nginx -t
//! and systemd-analyze verify of every rendered file), the rendered files say what LibreChat
//! needs (its `.env` read back by `sh` as the bootstrap and systemd read it, MongoDB's URL with
//! the credentials percent-encoded, the SSE-friendly nginx location, the hardened unit), the
//! password never reaches a command line, each slot's own database, the RAG API's settings
//! (a hostile API key stays one value), lint's rules on files per slot and `required_when`, and
//! installs refused before anything is created: on a node whose CPU lacks AVX, and with chat
//! with files but no API key.
//!
//! Real: the launch-tui binary (lint, install), the profile as compiled in and as a directory,
//! nginx -t and systemd-analyze (through lint), `sh` reading the rendered environment file, the
//! lab's Proxmox VE API (pve-lab, the official schema) answering the install's questions about
//! the node. Stood in: Proxmox VE (pve-lab), with the node's CPU flags set by
//! `pve-lab node cpu-flags` to those of a CPU without AVX. No container is made: the point is
//! that none is. The lab lifecycle, with stand-ins for what cannot be reached from here, is
//! tests/e2e_librechat.rs; the RAG API stand-in's own unit tests run here with this machine's
//! Python.

#[path = "support/lab.rs"]
mod lab;

use std::collections::BTreeMap;
use std::path::PathBuf;

use assert_cmd::Command;
use lab::{launch, text, Config, Lab};
use launch::deploy::AppSettings;
use launch::instance::Slot;
use launch::render;

/// The lab tests here share the lab's names and subnet: one at a time.
static ONE_LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn profile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/librechat")
}

#[test]
fn lint_passes_through_the_real_binary_with_every_check_run() {
    let cfg = tempfile::tempdir().unwrap();
    for arg in [profile_dir().display().to_string(), "librechat".into()] {
        let out = Command::cargo_bin("launch-tui")
            .unwrap()
            .env("LAUNCH_CONFIG", cfg.path())
            .env("NO_COLOR", "1")
            .env_remove("LAUNCH_HOST")
            .args(["profiles", "lint", &arg])
            .output()
            .unwrap();
        let all = text(&out);
        assert!(out.status.success(), "lint {arg}: {all}");
        assert!(!all.contains("not checked"), "lint {arg}: {all}");
    }
    // `profiles list` shows it beside Vikunja.
    let out = Command::cargo_bin("launch-tui")
        .unwrap()
        .env("LAUNCH_CONFIG", cfg.path())
        .env("NO_COLOR", "1")
        .args(["profiles", "list"])
        .output()
        .unwrap();
    let all = text(&out);
    assert!(
        all.contains("librechat") && all.contains("vikunja"),
        "{all}"
    );
}

/// Lint refuses what would give both slots one database while each has its own: `MONGO_URI`
/// in the file both slots read, and a file per slot where there is no slot to give it.
#[test]
fn lint_keeps_each_slots_database_its_own() {
    let lint = |mutate: &dyn Fn(&mut String, &std::path::Path)| -> String {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("librechat");
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(profile_dir()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        let mut yaml = std::fs::read_to_string(dir.join("profile.yaml")).unwrap();
        mutate(&mut yaml, &dir);
        std::fs::write(dir.join("profile.yaml"), yaml).unwrap();
        let out = Command::cargo_bin("launch-tui")
            .unwrap()
            .env("LAUNCH_CONFIG", d.path())
            .env("NO_COLOR", "1")
            .args(["profiles", "lint", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        text(&out)
    };
    // MONGO_URI back in the shared env file.
    let all = lint(&|_, dir| {
        let env = dir.join("librechat.env.j2");
        let t = std::fs::read_to_string(&env).unwrap();
        std::fs::write(env, format!("{t}MONGO_URI={{{{ db.url }}}}\n")).unwrap();
    });
    assert!(
        all.contains("librechat.env.j2")
            && all.contains("names the slot's own database")
            && all.contains("/etc/librechat/librechat.env"),
        "{all}"
    );
    // A seeded file per slot, and a placeholder that is not `{slot}`.
    let all = lint(&|y, _| {
        *y = y.replacen(
            "path: /etc/librechat/librechat.yaml",
            "path: /etc/librechat/librechat-{slot}.yaml",
            1,
        );
        *y = y.replacen(
            "path: /etc/librechat/librechat.env",
            "path: /etc/librechat/{name}.env",
            1,
        );
    });
    assert!(
        all.contains("a seeded file is the admin's")
            && all.contains("`{slot}` is the only placeholder"),
        "{all}"
    );
    // A condition on an answer no question gives.
    let all = lint(&|y, _| {
        *y = y.replacen(
            "rag_embeddings_provider: openai }",
            "rag_embeddings_provider: azure }",
            1,
        );
    });
    assert!(
        all.contains("required_when.rag_embeddings_provider")
            && all.contains("`rag_embeddings_provider: azure` is not an answer"),
        "{all}"
    );
}

struct Rendered {
    unit: String,
    site: String,
    env: String,
    /// The slot's own file (MONGO_URI), and where it goes.
    db_env: (String, String),
    boot: String,
    /// librechat.yaml, and whether it is a seed (written once, then the admin's).
    yaml: (String, bool),
}

/// Every file an install renders (blue slot), for a database as the adapter describes it.
fn rendered(database: &str, extra: &[(&str, &str)], db_password: &str) -> Rendered {
    rendered_in(Slot::Blue, database, extra, db_password)
}

/// Every file `slot` renders.
fn rendered_in(slot: Slot, database: &str, extra: &[(&str, &str)], db_password: &str) -> Rendered {
    let loaded = launch::profile::load_dir(&profile_dir()).unwrap();
    let profile = loaded.profile;
    let mut settings: BTreeMap<String, String> = [
        ("public_url", "https://chat.lab.example"),
        ("admin_email", "admin@lab.example"),
        ("admin_user", "admin"),
        ("allow_registration", "false"),
        ("database", database),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        settings.insert(k.to_string(), v.to_string());
    }
    let secrets: BTreeMap<String, String> = [
        ("creds_key", "ab".repeat(32)),
        ("creds_iv", "cd".repeat(16)),
        ("jwt_secret", "ef".repeat(32)),
        ("jwt_refresh_secret", "12".repeat(32)),
        ("admin_password", "S3cretS3cretS3cretS3cret".into()),
        ("db_password", db_password.into()),
        (
            "meili_master_key",
            "MeiliKey0123456789abcdefABCDEF01".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let db = launch::database::of_settings(&settings).context(&settings, "librechat", db_password);
    let a = AppSettings {
        profile: &profile,
        name: "chat",
        settings: &settings,
        secrets: &secrets,
        db,
        tls: false,
    };
    let main = a.main_component();
    let rc = a.render_context(main, slot, "v0.8.1");
    let unit = render::unit(&profile, main, &rc).unwrap();
    let site = render::nginx_site(&profile, &rc).unwrap();
    let file = &main.files[0];
    let env = render::file(&profile, &file.template, &rc).unwrap();
    let boot = render::file(&profile, &profile.bootstrap.as_ref().unwrap().script, &rc).unwrap();
    let y = main
        .files
        .iter()
        .find(|f| f.path == "/etc/librechat/librechat.yaml")
        .expect("librechat.yaml is among the api's files");
    let yaml = (render::file(&profile, &y.template, &rc).unwrap(), y.seed);
    let d = main
        .files
        .iter()
        .find(|f| f.per_slot())
        .expect("the api has a file per slot");
    let db_env = (
        d.path_in(Some(slot)),
        render::file(&profile, &d.template, &rc).unwrap(),
    );
    Rendered {
        unit,
        site,
        env,
        db_env,
        boot,
        yaml,
    }
}

/// The environment file as `sh` reads it (`set -a; . FILE`), which is how the bootstrap reads
/// it; its values are plain or single-quoted, which systemd's EnvironmentFile= and dotenv read
/// the same way.
fn read_env(text: &str) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("librechat.env");
    std::fs::write(&f, text).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("set -a; . \"$1\"; set +a; env -0")
        .arg("sh")
        .arg(&f)
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text_of(&out.stderr));
    out.stdout
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let s = String::from_utf8(e.to_vec()).unwrap();
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_rendered_files_give_librechat_what_it_reads() {
    let r = rendered("mongodb", &[], "Lc0calPassw0rd");
    let env = read_env(&r.env);
    assert_eq!(r.db_env.0, "/etc/librechat/db-blue.env");
    assert_eq!(
        read_env(&r.db_env.1)["MONGO_URI"],
        "mongodb://librechat:Lc0calPassw0rd@127.0.0.1:27017/librechat?authSource=admin"
    );
    // The shared file names no database: both slots read it, and each has its own.
    assert!(!env.contains_key("MONGO_URI"), "{}", r.env);
    for (k, v) in [
        ("DOMAIN_CLIENT", "https://chat.lab.example"),
        ("DOMAIN_SERVER", "https://chat.lab.example"),
        ("CREDS_KEY", &"ab".repeat(32)),
        ("CREDS_IV", &"cd".repeat(16)),
        ("JWT_SECRET", &"ef".repeat(32)),
        ("JWT_REFRESH_SECRET", &"12".repeat(32)),
        ("ALLOW_REGISTRATION", "false"),
        ("ALLOW_EMAIL_LOGIN", "true"),
    ] {
        assert_eq!(
            env.get(k).map(String::as_str),
            Some(v),
            "{k} in:\n{}",
            r.env
        );
    }
    assert_eq!(env["CREDS_KEY"].len(), 64);
    assert_eq!(env["CREDS_IV"].len(), 32);
    // HOST and PORT are each slot's own: in the unit, never in the shared file (an
    // EnvironmentFile= setting would override the unit's Environment=).
    assert!(
        !env.contains_key("PORT") && !env.contains_key("HOST"),
        "{}",
        r.env
    );
    for line in [
        "User=librechat",
        "WorkingDirectory=/opt/librechat/releases/v0.8.1",
        "EnvironmentFile=/etc/librechat/librechat.env",
        "EnvironmentFile=/etc/librechat/db-blue.env",
        "Environment=NODE_ENV=production",
        "Environment=HOST=127.0.0.1",
        "Environment=PORT=3080",
        "ExecStart=/opt/librechat/releases/v0.8.1/launch-start",
        "BindPaths=-/var/lib/librechat/blue/uploads:/opt/librechat/releases/v0.8.1/uploads",
        "BindPaths=-/var/lib/librechat/blue/images:/opt/librechat/releases/v0.8.1/client/public/images",
        "BindPaths=-/var/lib/librechat/blue/logs:/opt/librechat/releases/v0.8.1/api/logs",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/librechat/blue",
    ] {
        assert!(r.unit.lines().any(|l| l == line), "{line}:\n{}", r.unit);
    }
    // The local MongoDB starts first.
    assert!(
        r.unit
            .contains("After=network-online.target mongod.service"),
        "{}",
        r.unit
    );
    // Streamed replies pass nginx unbuffered; websockets are upgraded (the engine's fragment).
    for want in [
        "proxy_buffering off;",
        "proxy_read_timeout 300s;",
        "proxy_set_header Upgrade $http_upgrade;",
        "server_name chat.lab.example",
    ] {
        assert!(r.site.contains(want), "{want}:\n{}", r.site);
    }
    // The first account: its password from a file on standard input, never in this text or
    // on a command line; the email verified, so create-user asks nothing else.
    assert!(!r.boot.contains("S3cretS3cret"), "{}", r.boot);
    for want in [
        r#"cat "$in/admin_password" > "$in/stdin""#,
        "config/create-user.js \"$email\" \"$user\" \"$user\" --email-verified=true < \"$in/stdin\"",
        "runuser -u 'librechat' -- /usr/bin/node",
        ". /etc/librechat/librechat.env",
        ". '/etc/librechat/db-blue.env'",
    ] {
        assert!(r.boot.contains(want), "the bootstrap lacks `{want}`:\n{}", r.boot);
    }
    let (pw_line, _) = r
        .boot
        .split_once("< \"$in/stdin\"")
        .expect("create-user reads stdin");
    assert!(!pw_line.contains("admin_password\")"), "{}", r.boot);
}

/// Meilisearch off (the default): LibreChat is told so and given no key; on: the local server
/// and its master key (the service's own secret), and the unit starts after it. librechat.yaml
/// is a seed LibreChat finds through CONFIG_PATH.
#[test]
fn search_and_librechat_yaml() {
    let off = rendered("mongodb", &[], "Lc0calPassw0rd");
    let env = read_env(&off.env);
    assert_eq!(env["SEARCH"], "false", "{}", off.env);
    assert!(!env.keys().any(|k| k.starts_with("MEILI_")), "{}", off.env);
    assert!(!off.unit.contains("meilisearch"), "{}", off.unit);
    let on = rendered("mongodb", &[("use_search", "true")], "Lc0calPassw0rd");
    let env = read_env(&on.env);
    for (k, v) in [
        ("SEARCH", "true"),
        ("MEILI_HOST", "http://127.0.0.1:7700"),
        ("MEILI_MASTER_KEY", "MeiliKey0123456789abcdefABCDEF01"),
        ("MEILI_NO_ANALYTICS", "true"),
        ("CONFIG_PATH", "/etc/librechat/librechat.yaml"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}: {}", on.env);
    }
    assert!(
        on.unit
            .lines()
            .any(|l| l.starts_with("After=") && l.contains("meilisearch.service"))
            && on
                .unit
                .lines()
                .any(|l| l.starts_with("Wants=") && l.contains("meilisearch.service")),
        "{}",
        on.unit
    );
    let (yaml, seed) = &on.yaml;
    assert!(
        seed,
        "librechat.yaml must be written once, then left to the admin"
    );
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    assert!(v["version"].as_str().is_some(), "{yaml}");
}

/// Each slot runs on its own database: the green slot's unit reads its own file, which names
/// `librechat_green`; the blue slot's still names `librechat`. A record from before (no
/// `db_slots`) keeps one database for both.
#[test]
fn each_slot_has_its_own_database() {
    let sep = [("db_slots", "separate")];
    let green = rendered_in(Slot::Green, "mongodb", &sep, "pw");
    assert_eq!(green.db_env.0, "/etc/librechat/db-green.env");
    assert_eq!(
        read_env(&green.db_env.1)["MONGO_URI"],
        "mongodb://librechat:pw@127.0.0.1:27017/librechat_green?authSource=admin"
    );
    assert!(
        green
            .unit
            .lines()
            .any(|l| l == "EnvironmentFile=/etc/librechat/db-green.env"),
        "{}",
        green.unit
    );
    let blue = rendered_in(Slot::Blue, "mongodb", &sep, "pw");
    assert_eq!(
        read_env(&blue.db_env.1)["MONGO_URI"],
        "mongodb://librechat:pw@127.0.0.1:27017/librechat?authSource=admin"
    );
    // Both slots read the shared file: it is the same for both.
    assert_eq!(green.env, blue.env);
    let old = rendered_in(Slot::Green, "mongodb", &[], "pw");
    assert!(
        read_env(&old.db_env.1)["MONGO_URI"].ends_with("/librechat?authSource=admin"),
        "{}",
        old.db_env.1
    );
    let ext = rendered_in(
        Slot::Green,
        "external-mongodb",
        &[
            ("db_slots", "separate"),
            ("db_host", "mongo.lab.example"),
            ("db_port", "27018"),
            ("db_name", "chat"),
            ("db_user", "chat"),
        ],
        "pw",
    );
    assert!(
        read_env(&ext.db_env.1)["MONGO_URI"].ends_with(":27018/chat_green?authSource=admin"),
        "{}",
        ext.db_env.1
    );
}

#[test]
fn an_external_mongodb_password_of_any_characters_reaches_the_app_whole() {
    // A password an attacker or an unlucky generator could pick: URL syntax, quotes, shell.
    let hostile = "p@ss:w/rd?#[]'\"$(touch /tmp/x)`;%20";
    let r = rendered(
        "external-mongodb",
        &[
            ("db_host", "mongo.lab.example"),
            ("db_port", "27018"),
            ("db_name", "chat"),
            ("db_user", "chat@ops"),
        ],
        hostile,
    );
    let env = read_env(&r.db_env.1);
    let uri = url::Url::parse(&env["MONGO_URI"]).unwrap();
    assert_eq!(uri.scheme(), "mongodb");
    assert_eq!(uri.host_str(), Some("mongo.lab.example"));
    assert_eq!(uri.port(), Some(27018));
    assert_eq!(uri.path(), "/chat");
    assert_eq!(uri.query(), Some("authSource=admin"));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .unwrap()
            .into_owned()
    };
    assert_eq!(decode(uri.username()), "chat@ops");
    assert_eq!(decode(uri.password().unwrap()), hostile);
    // No local server to wait for.
    assert!(!r.unit.contains("mongod.service"), "{}", r.unit);
}

#[test]
fn a_node_without_avx_is_refused_before_anything_is_created() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::start();
    let cfg = Config {
        dir: tempfile::tempdir().unwrap(),
    };
    let answers = cfg.path().join("answers.yaml");
    std::fs::write(
        &answers,
        "public_url: http://chat.lab.example\nadmin_email: admin@lab.example\n",
    )
    .unwrap();
    // An x86_64 CPU of 2010: SSE4.2, no AVX.
    lab.pve_lab_ok(&[
        "node",
        "cpu-flags",
        "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm constant_tsc pni ssse3 cx16 sse4_1 sse4_2 popcnt",
    ]);
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            "librechat",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    for want in ["avx", "AVX", "external-mongodb"] {
        assert!(all.contains(want), "`{want}` missing: {all}");
    }
    assert!(!all.contains("panicked"), "{all}");
    assert!(lab.vmids().is_empty(), "a container was created");
}

/// Chat with files: the RAG API's env file gives rag_api what it reads (the pgvector
/// service's role and database, the JWT secret LibreChat signs with, no extension creation by
/// a role that may not), LibreChat is told where it is, and an API key answer of any
/// characters stays one value: it cannot add a setting to the file.
#[test]
fn the_rag_api_gets_its_settings_and_a_hostile_key_stays_a_value() {
    let loaded = launch::profile::load_dir(&profile_dir()).unwrap();
    let profile = loaded.profile;
    // Quotes, a command substitution, a comment and a would-be setting: one value still.
    let hostile = "sk-1\"$(touch /tmp/x)`;# POSTGRES_HOST=evil";
    let settings: BTreeMap<String, String> = [
        ("public_url", "https://chat.lab.example"),
        ("admin_email", "admin@lab.example"),
        ("admin_user", "admin"),
        ("allow_registration", "false"),
        ("database", "mongodb"),
        ("use_rag", "true"),
        ("rag_embeddings_provider", "openai"),
        ("rag_openai_api_key", hostile),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let secrets: BTreeMap<String, String> = [
        ("creds_key", "ab".repeat(32)),
        ("creds_iv", "cd".repeat(16)),
        ("jwt_secret", "ef".repeat(32)),
        ("jwt_refresh_secret", "12".repeat(32)),
        ("pgvector_password", "PgV3ctorPassw0rd".into()),
        ("db_password", "pw".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let db = launch::database::of_settings(&settings).context(&settings, "librechat", "pw");
    let a = AppSettings {
        profile: &profile,
        name: "chat",
        settings: &settings,
        secrets: &secrets,
        db,
        tls: false,
    };
    let extras = a.extra_components();
    let rag = extras
        .iter()
        .find(|c| c.name.as_str() == "rag-api")
        .expect("use_rag turns the RAG API on");
    assert!(rag.location.is_empty(), "nginx must not serve the RAG API");
    let rc = a.render_context(rag, Slot::Blue, "v0.8.1");
    let env = read_env(&render::file(&profile, &rag.files[0].template, &rc).unwrap());
    for (k, v) in [
        ("RAG_HOST", "127.0.0.1"),
        ("RAG_PORT", "8000"),
        ("DB_HOST", "127.0.0.1"),
        ("DB_PORT", "5432"),
        ("POSTGRES_DB", "rag"),
        ("POSTGRES_USER", "rag"),
        ("POSTGRES_PASSWORD", "PgV3ctorPassw0rd"),
        ("PGVECTOR_CREATE_EXTENSION", "False"),
        ("EMBEDDINGS_PROVIDER", "openai"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}: {env:?}");
    }
    assert_eq!(env["JWT_SECRET"], "ef".repeat(32));
    assert_eq!(env["RAG_OPENAI_API_KEY"], hostile);
    assert!(!env.contains_key("POSTGRES_HOST"), "{env:?}");
    // A line break would start a setting of its own: refused, so install stops (exit 2)
    // before anything is made.
    let mut broken = settings.clone();
    broken.insert(
        "rag_openai_api_key".into(),
        "sk-1\nPOSTGRES_HOST=evil".into(),
    );
    let b = AppSettings {
        settings: &broken,
        db: a.db.clone(),
        ..a
    };
    let rc = b.render_context(rag, Slot::Blue, "v0.8.1");
    let e = render::file(&profile, &rag.files[0].template, &rc).unwrap_err();
    assert!(e.detail.contains("control character"), "{}", e.detail);
    let unit = render::unit(&profile, rag, &rc).unwrap();
    for line in [
        "EnvironmentFile=/etc/librechat/rag-api.env",
        "ExecStart=/opt/librechat/rag-api-venv/launch-start",
        "ProtectSystem=strict",
        "StateDirectory=librechat-rag-api",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}:\n{unit}");
    }
    let main = a.render_context(a.main_component(), Slot::Blue, "v0.8.1");
    let lc =
        read_env(&render::file(&profile, &a.main_component().files[0].template, &main).unwrap());
    assert_eq!(lc["RAG_API_URL"], "http://127.0.0.1:8000");
    let site = render::nginx_site(&profile, &main).unwrap();
    assert!(!site.contains(":8000"), "{site}");
}

/// The RAG API stand-in's own logic (chunking, the embedding, the JWT check, the query's
/// authorisation filter), checked by its stdlib unittest file with this machine's Python; the
/// lab test runs the whole stand-in in a container.
#[test]
fn the_rag_api_stand_in_passes_its_own_tests() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rag-api-standin");
    let out = std::process::Command::new("python3")
        .args(["-B", "-m", "unittest", "-q"])
        .current_dir(&dir)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", text(&out));
}

/// Chat with files with OpenAI embeddings and no API key: refused at once (exit 2, the
/// question named), before any container exists; the key is never echoed when given.
#[test]
fn chat_with_files_without_its_key_is_refused_before_anything_is_created() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::start();
    let cfg = Config {
        dir: tempfile::tempdir().unwrap(),
    };
    let answers = cfg.path().join("answers.yaml");
    std::fs::write(
        &answers,
        "public_url: http://chat.lab.example\nadmin_email: admin@lab.example\nuse_rag: true\nrag_embeddings_provider: openai\n",
    )
    .unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            "librechat",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    for want in [
        "rag_openai_api_key",
        "needed with rag_embeddings_provider: openai, use_rag: true",
    ] {
        assert!(all.contains(want), "`{want}` missing: {all}");
    }
    assert!(lab.vmids().is_empty(), "a container was created");
    // Without chat with files, nothing is asked of the key.
    std::fs::write(
        &answers,
        "public_url: http://chat.lab.example\nadmin_email: admin@lab.example\nrag_embeddings_provider: openai\nhostname: \"bad host\"\n",
    )
    .unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            "librechat",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    assert!(!text(&out).contains("rag_openai_api_key"), "{}", text(&out));
}
