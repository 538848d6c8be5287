//! `profiles lint` on `kind: source` and `apt_sources:` (issue #12): the test profile
//! (tests/fixtures/profiles/srcdemo/) lints clean, and each mistake it can make in them is
//! reported with its file and line, exit 2, before any container exists. Real: the
//! launch-tui binary, nginx and systemd-analyze for the clean lint, a real armored public key
//! (a throwaway key's, its private half discarded). No Proxmox is involved: lint needs none.

use predicates::prelude::*;
use std::path::Path;

#[path = "support/lint.rs"]
mod lint_support;
use lint_support::{assert_refused_at, bin, edit, line_of, srcdemo_copy as fixture};

/// Lints the test profile after `mutate`, expecting exit 2, `profile.yaml:LINE:` for the first
/// line containing `at` (after the mutation), and every `want` in stderr.
fn lint_fails(mutate: impl FnOnce(&Path), at: &str, want: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let dir = fixture(work.path());
    mutate(&dir);
    let line = line_of(&dir.join("profile.yaml"), at);
    let out = bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_refused_at(&out, line, want);
}

#[test]
fn the_test_profile_lints_clean() {
    let work = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let dir = fixture(work.path());
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok (srcdemo format 2"))
        .stdout(predicate::str::contains("not checked").not());
}

#[test]
fn a_source_without_its_sha256_is_refused_at_its_line() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "      sha256: 1111111111111111111111111111111111111111111111111111111111111111\n",
                "",
            )
        },
        "url: https://src.example.org/srcdemo-1.0.0.tar.gz",
        &["versions[0].source", "missing field `sha256`"],
    );
}

#[test]
fn a_version_without_its_source_is_refused() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "  - version: 1.1.0\n    source:\n      url: https://src.example.org/srcdemo-1.1.0.tar.gz\n      sha256: 2222222222222222222222222222222222222222222222222222222222222222\n",
                "  - version: 1.1.0\n",
            )
        },
        "- version: 1.1.0",
        &["release 1.1.0 has no `source`"],
    );
}

#[test]
fn a_source_build_without_build_memory_mib_is_refused_at_its_install() {
    lint_fails(
        |d| edit(&d.join("profile.yaml"), "      build_memory_mib: 384\n", ""),
        "    install:",
        &["components[0].install", "needs `build_memory_mib`"],
    );
    // More than the default container has: an install with the defaults would be refused.
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "build_memory_mib: 384",
                "build_memory_mib: 4096",
            )
        },
        "  default: { cores: 1, memory_mib: 512",
        &["below the build's `build_memory_mib` of 4096 MiB"],
    );
}

#[test]
fn an_apt_suite_with_a_line_break_or_a_space_is_refused_at_its_line() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "suites: [stable]",
                r#"suites: ["stable\nSigned-By: /tmp/k"]"#,
            )
        },
        "suites: [",
        &[
            "apt_sources[0].suites",
            r"invalid apt suite or component `stable\nSigned-By: /tmp/k`",
        ],
    );
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "suites: [stable]",
                "suites: [stable, sta ble]",
            )
        },
        "suites: [",
        &["invalid apt suite or component `sta ble`"],
    );
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "components: [main]",
                "components: [\"main contrib\"]",
            )
        },
        "components: [",
        &["invalid apt suite or component `main contrib`"],
    );
}

#[test]
fn an_apt_uri_that_is_not_http_is_refused_at_its_line() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "uri: https://apt.example.org/srcdemo",
                "uri: ftp://apt.example.org/srcdemo",
            )
        },
        "uri: ftp://",
        &["invalid apt URI `ftp://apt.example.org/srcdemo`"],
    );
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "uri: https://apt.example.org/srcdemo",
                r#"uri: "https://apt.example.org/srcdemo\nSigned-By: /tmp/k""#,
            )
        },
        "uri: \"https://",
        &["invalid apt URI"],
    );
}

#[test]
fn a_missing_key_file_is_named_at_its_line() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "key: vendor.asc",
                "key: missing.asc",
            )
        },
        "key: missing.asc",
        &[
            "apt_sources[0].key",
            "the key file `missing.asc` is not in the profile's directory",
        ],
    );
}

#[test]
fn a_key_file_that_is_no_armored_public_key_is_named_at_its_line() {
    lint_fails(
        |d| std::fs::write(d.join("vendor.asc"), "not a key\n").unwrap(),
        "key: vendor.asc",
        &["the key file `vendor.asc` of apt source `srcdemo-vendor` is not an armored public key"],
    );
    // A private key block, which must never ship in a profile.
    lint_fails(
        |d| {
            std::fs::write(
                d.join("vendor.asc"),
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgEZ\n-----END PGP PRIVATE KEY BLOCK-----\n",
            )
            .unwrap()
        },
        "key: vendor.asc",
        &["PRIVATE key"],
    );
    // The real key with one character of its body changed: the armor checksum says so.
    lint_fails(
        |d| {
            let key = std::fs::read_to_string(d.join("vendor.asc")).unwrap();
            let damaged = key.replacen("mDMEaxRe", "mDMEaxRf", 1);
            assert_ne!(key, damaged);
            std::fs::write(d.join("vendor.asc"), damaged).unwrap()
        },
        "key: vendor.asc",
        &["checksum does not match"],
    );
}
