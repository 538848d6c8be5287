//! `profiles lint` on `health` (the check's forms: HTTP with a body or JSON match, TCP, a
//! command) and on a version read by a command: each form loads and lints clean, and each
//! mistake is reported with its file and line, exit 2. Real: the launch-tui binary on a copy of
//! the test profile (tests/fixtures/profiles/srcdemo/, whose main component already uses an
//! HTTP check with a JSON match and reads its version by a command). No Proxmox is involved.

use predicates::prelude::*;
use std::path::Path;

#[path = "support/lint.rs"]
mod lint_support;
use lint_support::{assert_refused_at, bin, line_of, srcdemo_copy as fixture};

/// The fixture's health block, from `health:` up to (not including) `unit:`, replaced by
/// `block` (indented as the fixture's component fields are).
fn with_health(dir: &Path, block: &str) {
    let path = dir.join("profile.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("    health:\n").unwrap();
    let end = text[start..].find("    unit: ").unwrap() + start;
    std::fs::write(
        &path,
        format!("{}{}{}", &text[..start], block, &text[end..]),
    )
    .unwrap();
}

fn lint(dir: &Path) -> std::process::Output {
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(dir)
        .output()
        .unwrap()
}

/// Lints the profile with `block` as its health, expecting it clean.
fn lints_clean(block: &str) {
    let work = tempfile::tempdir().unwrap();
    let dir = fixture(work.path());
    with_health(&dir, block);
    let out = lint(&dir);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{block}\n{all}");
    assert!(all.contains("ok (srcdemo format 2"), "{all}");
}

/// Lints the profile with `block` as its health, expecting exit 2, `profile.yaml:LINE:` for
/// the first line containing `at`, and every `want` in stderr.
fn lint_fails(block: &str, at: &str, want: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let dir = fixture(work.path());
    with_health(&dir, block);
    let line = line_of(&dir.join("profile.yaml"), at);
    let out = lint(&dir);
    assert_refused_at(&out, line, want);
}

#[test]
fn every_form_loads_and_lints_clean() {
    // Format 1's HTTP check, unchanged.
    lints_clean("    health:\n      path: /healthz\n      expect_status: 200\n      version: { path: /api/version, field: version }\n");
    lints_clean("    health:\n      path: /healthz\n      body: greeting\n");
    lints_clean(
        "    health:\n      path: /healthz\n      json: { field: info.ready, equals: true }\n",
    );
    lints_clean("    health:\n      tcp: true\n      timeout_s: 2\n");
    lints_clean("    health:\n      command: [sh, -c, 'test -S /run/app.sock']\n      version:\n        command: [/opt/srcdemo/bin/srcdemo, --version]\n        pattern: '^srcdemo (.+)$'\n");
}

#[test]
fn two_forms_at_once_are_refused_at_the_health_line() {
    lint_fails(
        "    health:\n      path: /healthz\n      tcp: true\n",
        "    health:",
        &["components[0].health", "path and tcp at once"],
    );
    lint_fails(
        "    health:\n      tcp: true\n      command: [true]\n",
        "    health:",
        &["tcp and command at once"],
    );
}

#[test]
fn no_form_is_refused() {
    lint_fails(
        "    health:\n      timeout_s: 3\n",
        "    health:",
        &["no health check"],
    );
}

#[test]
fn a_body_or_json_without_http_is_refused_at_its_line() {
    lint_fails(
        "    health:\n      tcp: true\n      body: ready\n",
        "      body: ready",
        &["components[0].health.body", "has no `path`"],
    );
    lint_fails(
        "    health:\n      command: [true]\n      json: { field: ok, equals: true }\n",
        "      json:",
        &["components[0].health.json"],
    );
    lint_fails(
        "    health:\n      tcp: true\n      expect_status: 204\n",
        "      expect_status: 204",
        &["components[0].health.expect_status"],
    );
}

#[test]
fn an_empty_command_or_one_with_a_control_character_is_refused() {
    lint_fails(
        "    health:\n      command: []\n",
        "      command: []",
        &["components[0].health.command", "an empty command"],
    );
    lint_fails(
        "    health:\n      command: [check, \"a\\u0007b\"]\n",
        "      command: [check",
        &["argument 1", "control character"],
    );
    lint_fails(
        "    health:\n      path: /healthz\n      version:\n        command: []\n",
        "        command: []",
        &["components[0].health.version.command", "an empty command"],
    );
}

#[test]
fn a_version_read_two_ways_is_refused() {
    lint_fails(
        "    health:\n      path: /healthz\n      version:\n        path: /api/version\n        command: [app, --version]\n",
        "      version:",
        &["a `path` or a `command`, one of them"],
    );
    lint_fails(
        "    health:\n      path: /healthz\n      version:\n        command: [app, --version]\n        header: X-Version\n",
        "      version:",
        &["not a command's output"],
    );
}

#[test]
fn an_unknown_field_is_refused_at_its_line() {
    lint_fails(
        "    health:\n      path: /healthz\n      kind: http\n",
        "      kind: http",
        &["unknown field `kind`"],
    );
    lint_fails(
        "    health:\n      path: /healthz\n      json: { field: ok, value: true }\n",
        "      json:",
        &["unknown field `value`"],
    );
}

#[test]
fn the_test_profile_reads_its_version_by_a_command() {
    let work = tempfile::tempdir().unwrap();
    let dir = fixture(work.path());
    let cfg = tempfile::tempdir().unwrap();
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok (srcdemo format 2"));
    let yaml = std::fs::read_to_string(dir.join("profile.yaml")).unwrap();
    assert!(yaml.contains("json: { field: greeting"), "{yaml}");
    assert!(yaml.contains("        command:\n"), "{yaml}");
}
