//! Consistency between this crate and the shipped schema files: every Perl pattern translates,
//! every named format is either checked or listed as unchecked, and file discovery reports well.

mod common;

use std::collections::BTreeSet;

use common::{schema, BOTH};
use pve_schema::{checked_formats, unchecked_formats, LoadError, PveMajor, Schema};

#[test]
fn every_pattern_in_both_schemas_translates_and_compiles() {
    for v in BOTH {
        let bad = schema(v).untranslatable_patterns();
        assert!(
            bad.is_empty(),
            "{v:?}: patterns that would silently accept everything: {bad:#?}"
        );
    }
}

#[test]
fn every_named_format_is_checked_or_declared_unchecked() {
    let checked: BTreeSet<&str> = checked_formats().into_iter().collect();
    let unchecked: BTreeSet<&str> = unchecked_formats().iter().copied().collect();
    assert!(
        checked.is_disjoint(&unchecked),
        "both checked and unchecked: {:?}",
        checked.intersection(&unchecked)
    );

    let mut used: BTreeSet<String> = BTreeSet::new();
    for v in BOTH {
        used.extend(schema(v).named_formats());
    }
    assert!(used.len() > 80, "suspiciously few formats found: {used:?}");
    let unaccounted: Vec<&String> = used
        .iter()
        .filter(|f| !checked.contains(f.as_str()) && !unchecked.contains(f.as_str()))
        .collect();
    assert!(
        unaccounted.is_empty(),
        "formats in the schemas that are neither checked nor listed: {unaccounted:?}"
    );

    let stale: Vec<&&str> = unchecked.iter().filter(|f| !used.contains(**f)).collect();
    assert!(
        stale.is_empty(),
        "unchecked_formats() lists formats no schema uses: {stale:?}"
    );

    // The formats the brief names must really be checked.
    for f in [
        "pve-vmid",
        "pve-node",
        "pve-storage-id",
        "pve-configid",
        "dns-name",
        "pve-tag",
        "pve-ipv4-config",
        "pve-ipv6-config",
        "pve-lxc-mp-string",
        "pve-ct-timezone",
        "ipv4",
        "ipv6",
        "CIDRv4",
        "mac-addr",
        "disk-size",
        "pve-volume-id",
        "pve-bridge-id",
        "pve-storage-content",
        "email",
        "pve-userid",
        "lxc-ip-with-ll-iface",
    ] {
        assert!(checked.contains(f), "{f} is not checked");
    }
}

#[test]
fn missing_file_names_the_path_and_the_fix() {
    let path = std::env::temp_dir().join("pve-schema-test-does-not-exist.json");
    let err = match Schema::load(&path) {
        Err(e) => e,
        Ok(_) => panic!("loaded a file that does not exist"),
    };
    assert!(matches!(err, LoadError::Read { .. }));
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("help:"), "{text}");
}

#[test]
fn malformed_files_are_reported_not_panicked() {
    let dir = std::env::temp_dir().join(format!("pve-schema-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        ("notjson.json", "const apiSchema = [];", "is not valid JSON"),
        (
            "object.json",
            "{\"path\": \"/\"}",
            "top level is not an array",
        ),
        ("empty.json", "[]", "defines no endpoints"),
        ("nopath.json", "[{\"text\": \"x\"}]", "has no \"path\""),
    ];
    for (name, content, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
        match Schema::load(&path) {
            Ok(_) => panic!("{name} loaded"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(expected) && text.contains("help:"),
                    "{name}: {text}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn schema_dir_override_and_not_found_message() {
    // Run as a child process so the environment change cannot race the other tests.
    if let Ok(mode) = std::env::var("PVE_SCHEMA_TEST_CHILD") {
        match mode.as_str() {
            "override" => {
                let found = pve_schema::find_schema_file(PveMajor::V9);
                let expected = std::path::PathBuf::from(
                    std::env::var_os("PVE_SCHEMA_DIR").unwrap_or_default(),
                )
                .join("apidata-pve9.json");
                assert_eq!(found, Some(expected));
            }
            other => panic!("unknown child mode {other}"),
        }
        return;
    }
    let real =
        pve_schema::find_schema_file(PveMajor::V9).unwrap_or_else(|| panic!("schema not found"));
    let copy_dir = std::env::temp_dir().join(format!("pve-schema-override-{}", std::process::id()));
    std::fs::create_dir_all(&copy_dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&real, copy_dir.join("apidata-pve9.json")).unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let status = std::process::Command::new(exe)
        .args([
            "--exact",
            "schema_dir_override_and_not_found_message",
            "--test-threads=1",
        ])
        .env("PVE_SCHEMA_TEST_CHILD", "override")
        .env("PVE_SCHEMA_DIR", &copy_dir)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&copy_dir);
    assert!(status.success(), "child run failed");

    let err = LoadError::NotFound {
        file: "apidata.json",
        searched: vec!["/nowhere".into()],
    };
    let text = err.to_string();
    assert!(
        text.contains("/nowhere") && text.contains("help: set PVE_SCHEMA_DIR"),
        "{text}"
    );
}
