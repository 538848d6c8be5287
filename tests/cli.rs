//! The real `launch-tui` binary given bad input: every case exits 2 with a message that names
//! the file or value, the line where there is one, and a fix; never a panic or a backtrace.
//! Real: the binary, clap, the YAML parser, the embedded profiles. Nothing is stood in.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::PathBuf;

fn bin(config: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("launch-tui").unwrap();
    c.env("LAUNCH_CONFIG", config)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "1")
        .env_remove("LAUNCH_HOST");
    c
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles")
        .join(name)
}

/// No panic text and no backtrace, whatever went wrong.
fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked")
        .or(predicate::str::contains("stack backtrace"))
        .or(predicate::str::contains("RUST_BACKTRACE"))
        .not()
}

#[test]
fn malformed_profile_yaml_names_file_line_and_fix() {
    let cfg = tempfile::tempdir().unwrap();
    let f = fixture("malformed.yaml");
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("malformed.yaml:7:"))
        .stderr(predicate::str::contains("help:"))
        .stderr(no_panic());
}

#[test]
fn unknown_profile_field_is_named_with_its_line() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(fixture("unknown-field.yaml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown-field.yaml:26:"))
        .stderr(predicate::str::contains("unknown field `colour`"))
        .stderr(predicate::str::contains(
            "help: remove the field or fix its spelling",
        ))
        .stderr(no_panic());
}

#[test]
fn semantic_profile_problems_are_all_listed_with_lines() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(fixture("inconsistent.yaml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("3 problem(s)"))
        .stderr(predicate::str::contains(
            "inconsistent.yaml:12:5: resources.default.memory_mib: default 256 is below the minimum 512",
        ))
        .stderr(predicate::str::contains("components[0].when: `nope` is not a yes/no question"))
        .stderr(predicate::str::contains("template `vikunja/missing.j2` is not in the profile's directory"))
        .stderr(no_panic());
}

#[test]
fn bad_sha256_in_profile_points_at_the_value() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(fixture("bad-sha.yaml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad-sha.yaml:22:"))
        .stderr(predicate::str::contains(
            "expected 64 hexadecimal characters",
        ))
        .stderr(no_panic());
}

#[test]
fn embedded_vikunja_profile_lints_clean() {
    let cfg = tempfile::tempdir().unwrap();
    let f = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/vikunja/profile.yaml");
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&f)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ok (vikunja format 2, 1 release(s)",
        ));
}

#[test]
fn missing_answers_file_is_named() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args([
            "install",
            "vikunja",
            "--answers",
            "/nonexistent/answers.yaml",
            "--yes",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/answers.yaml"))
        .stderr(predicate::str::contains("does not exist"))
        .stderr(predicate::str::contains("help:"))
        .stderr(no_panic());
}

#[test]
fn malformed_answers_file_gives_line() {
    let cfg = tempfile::tempdir().unwrap();
    let f = cfg.path().join("answers.yaml");
    std::fs::write(&f, "public_url: https://x.example\nadmin_email: [a, b\n").unwrap();
    bin(cfg.path())
        .args(["install", "vikunja", "--yes", "--answers"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("answers.yaml:"))
        .stderr(no_panic());
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["install", "nosuchapp"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "profile `nosuchapp`: no such profile",
        ))
        .stderr(predicate::str::contains("vikunja"));
}

#[test]
fn unknown_subcommand_is_usage_error() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .arg("frobnicate")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unrecognized subcommand 'frobnicate'",
        ))
        .stderr(no_panic());
}

#[test]
fn bad_instance_name_is_bad_input() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["update", "Bad_Name"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("instance name `Bad_Name`"))
        .stderr(predicate::str::contains("help:"));
}

#[test]
fn update_and_rollback_of_an_unknown_instance_are_bad_input() {
    let cfg = tempfile::tempdir().unwrap();
    for args in [
        vec!["update", "vikunja"],
        vec!["update", "vikunja", "--check"],
        vec!["rollback", "vikunja", "--yes"],
        vec!["rollback", "vikunja", "--snapshot", "--yes"],
        vec!["reconfigure", "vikunja", "--set", "timezone=Europe/Berlin"],
    ] {
        bin(cfg.path())
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "instance `vikunja`: no such instance",
            ))
            .stderr(predicate::str::contains("help:"))
            .stderr(no_panic());
    }
}

#[test]
fn uninstall_of_an_unknown_instance_changes_nothing() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["uninstall", "vikunja", "--yes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "instance `vikunja`: no such instance",
        ))
        .stderr(no_panic());
}

#[test]
fn json_errors_are_a_result_object() {
    let cfg = tempfile::tempdir().unwrap();
    let out = bin(cfg.path())
        .args(["--json", "install", "nosuchapp"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result"], "error");
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn list_and_profiles_work_without_proxmox() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("No instances yet"));
    bin(cfg.path())
        .args(["profiles", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("vikunja"));
    bin(cfg.path())
        .args(["profiles", "show", "vikunja"])
        .assert()
        .success()
        .stdout(predicate::str::contains("public_url"));
    bin(cfg.path())
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("launch-tui"));
}

#[test]
fn no_command_without_terminal_is_usage_error() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no command given"));
}

#[test]
fn override_profile_in_config_dir_is_used_and_checked() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cfg.path().join("profiles")).unwrap();
    std::fs::copy(
        fixture("unknown-field.yaml"),
        cfg.path().join("profiles/vikunja.yaml"),
    )
    .unwrap();
    bin(cfg.path())
        .args(["profiles", "show", "vikunja"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("profiles/vikunja.yaml:26:"));
}

#[test]
fn doctor_without_proxmox_says_how_to_connect() {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .env("PATH", "/usr/bin:/bin")
        .arg("doctor")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no `pvesh` on PATH"))
        .stderr(predicate::str::contains("--host https://NODE:8006"));
}

#[test]
fn readable_token_file_is_refused_without_showing_the_secret() {
    use std::os::unix::fs::PermissionsExt;
    let cfg = tempfile::tempdir().unwrap();
    let tok = cfg.path().join("token");
    std::fs::write(&tok, "launch@pve!ci=11111111-2222-3333-4444-555555555555\n").unwrap();
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o644)).unwrap();
    bin(cfg.path())
        .args(["doctor", "--host", "https://127.0.0.1:9", "--token-file"])
        .arg(&tok)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("chmod 600"))
        .stderr(predicate::str::contains("11111111-2222").not());
}

#[test]
fn bad_fingerprint_is_bad_input() {
    use std::os::unix::fs::PermissionsExt;
    let cfg = tempfile::tempdir().unwrap();
    let tok = cfg.path().join("token");
    std::fs::write(&tok, "launch@pve!ci=11111111-2222-3333-4444-555555555555\n").unwrap();
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
    bin(cfg.path())
        .args([
            "doctor",
            "--host",
            "https://127.0.0.1:9",
            "--fingerprint",
            "AB:CD",
            "--token-file",
        ])
        .arg(&tok)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid certificate fingerprint `AB:CD`",
        ))
        .stderr(predicate::str::contains("32 bytes"));
}

#[test]
fn unreachable_api_is_an_operation_failure_naming_the_url() {
    use std::os::unix::fs::PermissionsExt;
    let cfg = tempfile::tempdir().unwrap();
    let tok = cfg.path().join("token");
    std::fs::write(&tok, "launch@pve!ci=11111111-2222-3333-4444-555555555555\n").unwrap();
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    bin(cfg.path())
        .args([
            "doctor",
            "--host",
            "https://127.0.0.1:9",
            "--insecure",
            "--token-file",
        ])
        .arg(&tok)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("127.0.0.1:9"))
        .stderr(predicate::str::contains("TLS certificate checks are OFF"))
        .stderr(predicate::str::contains("11111111-2222").not());
}
