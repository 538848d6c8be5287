//! The engine knows no app (issue #12): outside the built-in profiles' directories, `src/`
//! names no profile (its name or title), and no question key, component name or app command
//! of a profile appears as a string literal. Test code (`#[cfg(test)]` modules, `tests.rs`)
//! may use the built-in profiles as fixtures. Database kinds have one adapter each in
//! `src/database/`, the only place that names them. Real: the repository's own files, read as
//! text.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The engine's code of one file: everything before its first `#[cfg(test)]`.
fn engine_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().unwrap() != "tests" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") && p.file_name().unwrap() != "tests.rs" {
            out.push(p);
        }
    }
}

struct Words {
    /// Case-insensitive, as whole words.
    names: Vec<String>,
    /// As string literals (`"KEY"`).
    literals: Vec<String>,
}

fn profile_words() -> Words {
    let mut names = Vec::new();
    let mut literals = Vec::new();
    for e in std::fs::read_dir(root().join("profiles"))
        .unwrap()
        .flatten()
    {
        let file = e.path().join("profile.yaml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        names.push(y["name"].as_str().unwrap().to_lowercase());
        names.push(y["title"].as_str().unwrap().to_lowercase());
        let seq = |k: &str| y[k].as_sequence().cloned().unwrap_or_default();
        for q in seq("questions") {
            literals.push(q["key"].as_str().unwrap().to_string());
        }
        for c in seq("components") {
            literals.push(c["name"].as_str().unwrap().to_string());
        }
        for k in ["command", "export", "import"] {
            for w in y["migrations"][k]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
            {
                if let Some(w) = w
                    .as_str()
                    .filter(|w| !w.starts_with('-') && !w.contains('{'))
                {
                    literals.push(w.to_string());
                }
            }
        }
    }
    assert!(!names.is_empty(), "no built-in profiles found");
    names.sort();
    names.dedup();
    // Words that are the engine's own and happen to be a profile's too: the names of the
    // roles (format 2's `roles:` fields, read by the format 1 conversion), Proxmox's container
    // option `timezone`, and launch-tui's own `restore` operation.
    let engine_own: Vec<String> = launch::profile::Role::ALL
        .iter()
        .map(|r| r.field().to_string())
        .chain(["timezone".to_string(), "restore".to_string()])
        .collect();
    literals.retain(|l| !engine_own.contains(l));
    literals.sort();
    literals.dedup();
    Words { names, literals }
}

#[test]
fn no_app_names_keys_or_commands_in_the_engine() {
    let words = profile_words();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    assert!(files.len() > 20, "the engine's sources were not found");
    let mut found = Vec::new();
    for f in &files {
        let code = engine_code(f);
        for (n, line) in code.lines().enumerate() {
            let lower = line.to_lowercase();
            let words_in_line: Vec<&str> = lower
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .collect();
            for name in &words.names {
                if words_in_line.contains(&name.as_str()) {
                    found.push(format!(
                        "{}:{}: `{name}`: {}",
                        f.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
            for lit in &words.literals {
                if line.contains(&format!("\"{lit}\"")) {
                    found.push(format!(
                        "{}:{}: \"{lit}\": {}",
                        f.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine names an app's profile, keys or commands ({} places):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// Issue #12: "one adapter per kind ... the only place that knows a database kind". Outside
/// `src/database/` (and the profile format's enum, which only spells the labels), no string
/// literal names a kind and no code matches on a server kind's variant.
#[test]
fn only_the_database_adapters_know_database_kinds() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let db_dir = root().join("src/database");
    let types = root().join("src/profile/types.rs");
    let mut found = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.starts_with(&db_dir) && **f != types)
    {
        for (n, line) in engine_code(f).lines().enumerate() {
            let kinds = launch::profile::DatabaseKind::ALL;
            let literal = kinds
                .iter()
                .map(|k| format!("\"{}\"", k.label()))
                // `none` is also a plain English word in messages ("none found").
                .filter(|l| l != "\"none\"")
                .find(|l| line.contains(l.as_str()));
            let variant = [
                "Postgres",
                "Mariadb",
                "ExternalPostgres",
                "ExternalMariadb",
                "Sqlite",
            ]
            .iter()
            .map(|v| format!("DatabaseKind::{v}"))
            .find(|v| line.contains(v.as_str()));
            if let Some(w) = literal.or(variant) {
                found.push(format!("{}:{}: {w}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "database kinds outside their adapters ({} places):\n{}",
        found.len(),
        found.join("\n")
    );
}
