//! Property tests of what stands between outside values and the files Launch writes (issue
//! #11): the escaping filters (render, then parse back with the real parser: YAML with
//! serde_yaml_ng, shell words with /bin/sh), the answers resolver (any value either refused or
//! rendered into every file of the profile, and read back as given), and the archive reader
//! (any bytes refused, never a panic).
//!
//! CI runs a few hundred cases each; `scripts/fuzz.sh` runs many more (PROPTEST_CASES).

use std::collections::BTreeMap;
use std::path::Path;

use launch::escape::{escape, Syntax};
use launch::install::settings::{resolve, NodeFacts};
use launch::profile::Catalog;
use proptest::prelude::*;

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}

/// Strings rich in what breaks files: quotes, backslashes, `$`, braces, line breaks, escapes.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just("'".to_string()),
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just("$".to_string()),
                Just("$(id)".to_string()),
                Just("`".to_string()),
                Just("\n".to_string()),
                Just("\r".to_string()),
                Just("\u{1b}[2J".to_string()),
                Just(";".to_string()),
                Just("{".to_string()),
                Just("}".to_string()),
                Just("#".to_string()),
                Just(": ".to_string()),
                Just("%".to_string()),
                Just(" ".to_string()),
                Just("\u{2028}".to_string()),
                "[a-z0-9./@-]{1,6}",
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    /// A YAML scalar written by the filter reads back as exactly the value.
    #[test]
    fn yaml_round_trips(v in hostile()) {
        let doc = format!("key: {}\nnext: 1\n", escape(Syntax::Yaml, &v).unwrap());
        let parsed: BTreeMap<String, serde_yaml_ng::Value> = serde_yaml_ng::from_str(&doc)
            .map_err(|e| TestCaseError::fail(format!("{doc:?}: {e}")))?;
        prop_assert_eq!(parsed["key"].as_str(), Some(v.as_str()));
        prop_assert_eq!(parsed.len(), 2);
    }

    /// An nginx token is refused, bare and plain, or one quoted string holding the value.
    #[test]
    fn nginx_tokens_hold_only_the_value(v in hostile()) {
        if let Ok(t) = escape(Syntax::Nginx, &v) {
            prop_assert!(!t.chars().any(launch::escape::is_control));
            prop_assert!(!t.contains('$'));
            if let Some(inner) = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                let mut out = String::new();
                let mut chars = inner.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => out.push(chars.next().expect("no lone backslash at the end")),
                        '"' => return Err(TestCaseError::fail(format!("an unescaped quote in {t}"))),
                        c => out.push(c),
                    }
                }
                prop_assert_eq!(out, v);
            } else {
                prop_assert_eq!(&t, &v);
                prop_assert!(!t.is_empty());
                let special = [' ', ';', '{', '}', '#', '\'', '"', '\\'];
                prop_assert!(!t.contains(special), "special characters left bare in {}", t);
            }
        }
    }

    /// A systemd value has nothing that systemd splits, unquotes or expands.
    #[test]
    fn systemd_values_are_plain(v in hostile()) {
        if let Ok(t) = escape(Syntax::Systemd, &v) {
            prop_assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || "_./:@+,=-%".contains(c)));
            prop_assert_eq!(t.replace("%%", "%"), v);
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// A shell word written by the filter reaches a real /bin/sh as exactly the value.
    #[test]
    fn shell_words_round_trip(v in hostile()) {
        prop_assume!(!v.contains('\0'));
        let word = escape(Syntax::Shell, &v).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .output()
            .unwrap();
        prop_assert!(out.status.success());
        prop_assert_eq!(String::from_utf8_lossy(&out.stdout), v);
    }
}

fn facts() -> NodeFacts {
    NodeFacts {
        node: "pve".into(),
        next_id: 105,
        rootdir_storages: vec![("local-lvm".into(), 100 << 30)],
        template_storages: vec!["local".into()],
        free_memory_mib: 8192,
        bridges: vec!["vmbr0".into()],
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any answer is refused, or every file renders and the app's config reads back the
    /// values as given: no answer changes a file's structure.
    #[test]
    fn answers_are_refused_or_rendered_as_given(
        url_tail in hostile(),
        email_local in hostile(),
        tz in hostile(),
        upload in hostile(),
        bridge in hostile(),
        user in hostile(),
        pw in hostile(),
    ) {
        refused_or_rendered(&url_tail, &email_local, &tz, &upload, &bridge, &user, &pw)?;
    }

    /// Whatever bytes an archive holds, the reader refuses them without a panic.
    #[test]
    fn archive_reader_refuses_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096), gz in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(if gz { "x-20260101T000000Z-v1.tar.gz" } else { "x-20260101T000000Z-v1.tar.zst" });
        let data = if gz {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            e.finish().unwrap()
        } else {
            zstd::encode_all(&bytes[..], 1).unwrap()
        };
        std::fs::write(&path, data).unwrap();
        let r = launch::backup::archive::walk(&path, |_, _| Ok(()));
        prop_assert!(r.is_err());
    }
}

/// The property of `answers_are_refused_or_rendered_as_given`; true when the answers were
/// taken and rendered (so a test can prove that branch is reached).
#[allow(clippy::too_many_arguments)]
fn refused_or_rendered(
    url_tail: &str,
    email_local: &str,
    tz: &str,
    upload: &str,
    bridge: &str,
    user: &str,
    pw: &str,
) -> Result<bool, TestCaseError> {
    let profile = Catalog::new(Path::new("/none"))
        .load("vikunja")
        .unwrap()
        .profile;
    let answers: BTreeMap<String, String> = [
        ("public_url", format!("http://tasks.example.com/{url_tail}")),
        ("admin_email", format!("{email_local}@example.com")),
        ("timezone", tz.to_string()),
        ("max_upload_mib", upload.to_string()),
        ("bridge", bridge.to_string()),
        ("database", "external-postgres".into()),
        // An address nothing listens on: refused as unreachable, the other checks still run.
        ("db_host", "127.0.0.1".into()),
        ("db_port", "9".into()),
        ("db_user", user.to_string()),
        ("db_password", pw.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let problems = match resolve(&profile, &facts(), &answers, false) {
        Ok(_) => panic!("db_host 127.0.0.1:9 should be unreachable"),
        Err(p) => p,
    };
    // Without the unreachable database, the rest resolves exactly when no other field
    // was refused; then every file renders and reads back.
    let rendered = problems.iter().all(|p| p.field == "db_host");
    if rendered {
        let mut ok = answers.clone();
        ok.insert("database".into(), "sqlite".into());
        for k in ["db_host", "db_port", "db_user", "db_password"] {
            ok.remove(k);
        }
        let s = resolve(&profile, &facts(), &ok, false).expect("resolves without the database");
        // The database user and password as an external server's, when they are taken.
        let external = launch::install::settings::check_db_field("db_user", user).is_ok()
            && launch::install::settings::check_value("db_password", pw).is_ok();
        let db = if external {
            launch::render::DbContext {
                kind: "external-postgres".into(),
                host: "127.0.0.1".into(),
                port: 5432,
                name: "vikunja".into(),
                user: user.to_string(),
                password: pw.to_string(),
                local_unit: None,
                url: String::new(),
            }
        } else {
            launch::render::DbContext::sqlite()
        };
        let secrets: BTreeMap<String, String> = [
            "service_secret",
            "mcp_encryption_key",
            "admin_password",
            "mcp_token",
            "db_password",
        ]
        .into_iter()
        .map(|k| (k.to_string(), "s3cret".to_string()))
        .collect();
        let a = launch::deploy::AppSettings {
            profile: &profile,
            name: "vikunja",
            settings: &s.app,
            secrets: &secrets,
            db: db.clone(),
            tls: false,
        };
        launch::deploy::check_renders(&a, &s.version)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let rc = a.render_context(
            &profile.components[0],
            launch::instance::Slot::Blue,
            &s.version,
        );
        let text =
            launch::render::file(&profile, &profile.components[0].files[0].template, &rc).unwrap();
        let cfg: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(
            cfg["service"]["publicurl"].as_str(),
            Some(answers["public_url"].as_str())
        );
        prop_assert_eq!(
            cfg["service"]["timezone"].as_str(),
            Some(answers["timezone"].as_str())
        );
        if external {
            prop_assert_eq!(cfg["database"]["user"].as_str(), Some(user));
            prop_assert_eq!(cfg["database"]["password"].as_str(), Some(pw));
            prop_assert_eq!(cfg["database"]["type"].as_str(), Some("postgres"));
        }
    }
    for p in &problems {
        let shown = p.to_string();
        prop_assert!(
            !shown
                .chars()
                .any(|c| launch::escape::is_control(c) && c != '\n'),
            "{:?}",
            shown
        );
        prop_assert!(shown.len() < 2048);
    }
    Ok(rendered)
}

/// Values that are legal but hostile-looking are taken and written as given.
#[test]
fn legal_but_awkward_answers_render() {
    assert!(refused_or_rendered(
        "a/b~c",
        "o'brien",
        "Europe/Berlin",
        "20",
        "vmbr0",
        "launch",
        "p\"w'$x"
    )
    .unwrap());
}
