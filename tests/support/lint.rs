//! What the `profiles lint` tests share: the binary with its own config directory, a copy of
//! the test profile to break, an edit that must find its text, and the line a needle is on.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// launch-tui with `config` as its configuration directory, no colour, no API host.
pub fn bin(config: &Path) -> Command {
    let mut c = Command::cargo_bin("launch-tui").unwrap();
    c.env("LAUNCH_CONFIG", config)
        .env("NO_COLOR", "1")
        .env_remove("LAUNCH_HOST");
    c
}

/// A copy of the test profile tests/fixtures/profiles/srcdemo/ under `work`.
pub fn srcdemo_copy(work: &Path) -> PathBuf {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/srcdemo");
    let dir = work.join("srcdemo");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir
}

/// Replaces the first `from` in `path` by `to`; `from` must be there.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The 1-based line of the first line containing `needle`.
pub fn line_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{} has no `{needle}`", path.display()))
        + 1
}

/// `profiles lint`'s refusal: exit 2, the problem at `profile.yaml:LINE:`, each of `want` in
/// its words, and no panic.
pub fn assert_refused_at(out: &std::process::Output, line: usize, want: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit 2 expected:\n{stderr}");
    let located = format!("profile.yaml:{line}:");
    assert!(
        stderr.contains(&located),
        "`{located}` missing from:\n{stderr}"
    );
    for w in want {
        assert!(stderr.contains(w), "`{w}` missing from:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}
