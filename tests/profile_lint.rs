//! `profiles lint` and profile directories (issue #12): the tutorial profile of
//! docs/profiles.md lints clean, and each class of mistake a profile can make is reported with
//! its file and line, exit 2, before any container exists. Real: the launch-tui binary, the
//! tutorial's files as the docs print them, nginx (with Debian's Lua module) for `nginx -t`,
//! systemd-analyze. No Proxmox is involved: lint needs none.

use predicates::prelude::*;
use std::path::{Path, PathBuf};

#[path = "support/lint.rs"]
mod lint_support;
use lint_support::{bin, edit, line_of};

/// The fenced blocks of docs/profiles.md that follow a `<!-- file: DIR/NAME -->` marker and
/// whose name starts with `prefix`, as (name, text).
fn doc_files(prefix: &str) -> Vec<(String, String)> {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/profiles.md"))
            .unwrap();
    let mut lines = doc.lines();
    let mut out = Vec::new();
    while let Some(l) = lines.next() {
        let Some(name) = l
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap();
        assert!(fence.starts_with("```"), "a fenced block follows {name}");
        let mut text = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            text.push_str(l);
            text.push('\n');
        }
        if name.starts_with(prefix) {
            out.push((name.to_string(), text));
        }
    }
    out
}

/// The tutorial's files, as docs/profiles.md prints them (`<!-- file: notes/NAME -->` before a
/// fenced block), written under `dir`.
fn tutorial(dir: &Path) -> PathBuf {
    let files = doc_files("notes/");
    assert_eq!(files.len(), 4, "the tutorial has four files");
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir.join("notes")
}

/// The second tutorial prints the built-in Radicale profile (which tests/e2e_apps.rs installs,
/// updates, backs up and restores in real containers): every file of it, byte for byte.
#[test]
fn the_radicale_tutorial_is_the_built_in_profile_byte_for_byte() {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/radicale");
    let printed = doc_files("radicale/");
    let mut names: Vec<String> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut printed_names: Vec<String> = printed
        .iter()
        .map(|(n, _)| n.trim_start_matches("radicale/").to_string())
        .collect();
    printed_names.sort();
    assert_eq!(
        printed_names, names,
        "the tutorial prints every file of profiles/radicale/"
    );
    for (name, text) in printed {
        let file = shipped.join(name.trim_start_matches("radicale/"));
        assert_eq!(
            text,
            std::fs::read_to_string(&file).unwrap(),
            "docs/profiles.md prints {} as it is",
            file.display()
        );
    }
}

/// Lints the tutorial after `mutate`, expecting exit 2 and every `want` in stderr.
fn lint_fails(mutate: impl FnOnce(&Path), want: &[&dyn Fn(&Path) -> String]) {
    let work = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let dir = tutorial(work.path());
    mutate(&dir);
    let wants: Vec<String> = want.iter().map(|w| w(&dir)).collect();
    let out = bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit 2 expected:\n{stderr}");
    for w in wants {
        assert!(stderr.contains(&w), "`{w}` missing from:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_tutorial_profile_lints_clean_with_every_check_run() {
    let work = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let dir = tutorial(work.path());
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok (notes format 2"))
        // nginx -t and systemd-analyze ran: CI installs both (nothing is skipped).
        .stdout(predicate::str::contains("not checked").not());
    // The built-in profiles lint clean by name.
    bin(cfg.path())
        .args(["profiles", "lint", "vikunja"])
        .assert()
        .success()
        .stdout(predicate::str::contains("not checked").not());
}

#[test]
fn schema_mistakes_point_at_the_line() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "    user: notes\n",
                "    user: notes\n    usr: x\n",
            )
        },
        &[
            &|d| {
                format!(
                    "profile.yaml:{}:",
                    line_of(&d.join("profile.yaml"), "usr: x")
                )
            },
            &|_| "unknown field `usr`".into(),
        ],
    );
    lint_fails(
        |d| edit(&d.join("profile.yaml"), "    port: 8310", "    port: 80"),
        &[&|_| "invalid port 80".into()],
    );
}

#[test]
fn missing_or_escaping_templates_are_named_with_their_line() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "unit: notes.service.j2",
                "unit: nope.service.j2",
            )
        },
        &[
            &|d| {
                format!(
                    "profile.yaml:{}:",
                    line_of(&d.join("profile.yaml"), "unit: nope")
                )
            },
            &|_| "template `nope.service.j2` is not in the profile's directory".into(),
        ],
    );
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "template: config.yml.j2",
                "template: ../../etc/passwd.yml.j2",
            )
        },
        &[&|_| "template `../../etc/passwd.yml.j2` is not in the profile's directory".into()],
    );
    // A symlink out of the directory is not a template.
    lint_fails(
        |d| {
            std::fs::remove_file(d.join("config.yml.j2")).unwrap();
            std::os::unix::fs::symlink("/etc/hostname", d.join("config.yml.j2")).unwrap();
        },
        &[&|_| "template `config.yml.j2` is not in the profile's directory".into()],
    );
}

#[test]
fn a_template_that_does_not_render_is_reported_at_its_own_line() {
    lint_fails(
        |d| {
            edit(
                &d.join("config.yml.j2"),
                "session_secret:",
                "colour: {{ settings.colour }}\nsession_secret:",
            )
        },
        &[
            &|d| {
                format!(
                    "config.yml.j2:{}:",
                    line_of(&d.join("config.yml.j2"), "colour:")
                )
            },
            &|_| "does not render".into(),
        ],
    );
    lint_fails(
        |d| {
            edit(
                &d.join("config.yml.j2"),
                "{{ public_url }}",
                "{{ public_url | safe }}",
            )
        },
        &[
            &|d| {
                format!(
                    "config.yml.j2:{}:",
                    line_of(&d.join("config.yml.j2"), "| safe")
                )
            },
            &|_| "would print a raw value".into(),
        ],
    );
}

#[test]
fn nginx_and_systemd_refusals_are_reported() {
    lint_fails(
        |d| {
            edit(
                &d.join("site.conf.j2"),
                "    location / {",
                "    proxy_bogus on;\n    location / {",
            )
        },
        &[
            &|_| "site.conf.j2".into(),
            &|_| "nginx -t refuses the rendered site".into(),
            &|_| "proxy_bogus".into(),
        ],
    );
    lint_fails(
        |d| {
            edit(
                &d.join("notes.service.j2"),
                "Restart=on-failure",
                "Restartt=on-failure",
            )
        },
        &[
            &|_| "notes.service.j2".into(),
            &|_| "systemd-analyze verify refuses the rendered unit".into(),
            &|_| "Restartt".into(),
        ],
    );
}

#[test]
fn roles_and_reserved_keys_are_checked() {
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "  admin_email: admin_email\n",
                "  admin_email: max_upload_mib\n",
            )
        },
        &[
            &|d| {
                format!(
                    "profile.yaml:{}:",
                    line_of(&d.join("profile.yaml"), "admin_email: max_upload_mib")
                )
            },
            &|_| "roles.admin_email".into(),
        ],
    );
    lint_fails(
        |d| edit(&d.join("profile.yaml"), "  public_url: public_url\n", ""),
        &[&|_| "roles.public_url: no question is the public URL".into()],
    );
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "  - key: max_upload_mib",
                "  - key: hostname",
            )
        },
        &[&|_| "`hostname` is reserved".into()],
    );
    lint_fails(
        |d| {
            std::fs::create_dir_all(d.join("launch")).unwrap();
            std::fs::write(d.join("launch/listen.conf.j2"), "listen 1;\n").unwrap();
        },
        &[&|_| "launch/listen.conf.j2".into(), &|_| {
            "is launch-tui's own".into()
        }],
    );
}

#[test]
fn one_broken_profile_does_not_hide_the_others() {
    let cfg = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = tutorial(work.path());
    let installed = cfg.path().join("profiles/notes");
    std::fs::create_dir_all(cfg.path().join("profiles")).unwrap();
    std::fs::rename(&dir, &installed).unwrap();
    edit(
        &installed.join("profile.yaml"),
        "format: 2",
        "format: 2\nbogus: 1",
    );
    bin(cfg.path())
        .args(["profiles", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("vikunja"))
        .stdout(predicate::str::contains("notes").and(predicate::str::contains("INVALID")));
    // Fixed, it is listed as valid, from the configuration directory.
    edit(
        &installed.join("profile.yaml"),
        "format: 2\nbogus: 1",
        "format: 2",
    );
    bin(cfg.path())
        .args(["profiles", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("INVALID").not())
        .stdout(predicate::str::contains(installed.display().to_string()));
}

#[test]
fn install_from_a_directory_refuses_a_built_in_name_before_anything_changes() {
    let cfg = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = tutorial(work.path());
    edit(&dir.join("profile.yaml"), "name: notes", "name: vikunja");
    let answers = work.path().join("answers.yaml");
    std::fs::write(
        &answers,
        "public_url: http://n.example\nadmin_email: a@example.org\n",
    )
    .unwrap();
    bin(cfg.path())
        .args(["install"])
        .arg(&dir)
        .args(["--yes", "--answers"])
        .arg(&answers)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a built-in profile has this name"));
    assert!(!cfg.path().join("profiles").exists(), "nothing was copied");
}

#[test]
fn a_format_1_profile_migrates_to_a_directory_that_lints() {
    let cfg = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let to = work.path().join("mig");
    let v1 =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/format1-full.yaml");
    bin(cfg.path())
        .args(["profiles", "migrate"])
        .arg(&v1)
        .arg("--to")
        .arg(&to)
        .assert()
        .success()
        .stdout(predicate::str::contains("(format 2)"));
    let yaml = std::fs::read_to_string(to.join("profile.yaml")).unwrap();
    assert!(
        yaml.contains("format: 2") && yaml.contains("public_url: public_url"),
        "{yaml}"
    );
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&to)
        .assert()
        .success()
        .stdout(predicate::str::contains("format 2"));
    // Not over an existing directory.
    bin(cfg.path())
        .args(["profiles", "migrate"])
        .arg(&v1)
        .arg("--to")
        .arg(&to)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not empty"));
}

/// An app shipped as a directory: `strip_components` takes the whole archive, which a plain
/// binary is not; with a zip it lints clean.
#[test]
fn a_tree_release_needs_an_archive() {
    let tree = |d: &Path| {
        edit(
            &d.join("profile.yaml"),
            "install: { kind: release, binary: notes }",
            "install: { kind: release, binary: bin/notes, strip_components: 1 }",
        )
    };
    lint_fails(
        |d| {
            tree(d);
            edit(&d.join("profile.yaml"), "format: zip", "format: binary");
        },
        &[
            &|d| {
                format!(
                    "profile.yaml:{}:",
                    line_of(&d.join("profile.yaml"), "format: binary")
                )
            },
            &|_| "a plain binary is not a tree, but the install sets `strip_components`".into(),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let dir = tutorial(work.path());
    tree(&dir);
    bin(cfg.path())
        .args(["profiles", "lint"])
        .arg(&dir)
        .assert()
        .success();
    // And the built-in Radicale profile lints clean by name, every check run.
    bin(cfg.path())
        .args(["profiles", "lint", "radicale"])
        .assert()
        .success()
        .stdout(predicate::str::contains("not checked").not());
}

/// `services:` (issue #12): a service's `when` must be a bool question, each kind is listed
/// once, an unknown kind is named, the adapters' secret keys are theirs, and a template that
/// uses a service the profile does not list fails to render, all before any container exists.
#[test]
fn services_are_checked() {
    let add = |d: &Path, yaml: &str| {
        edit(
            &d.join("profile.yaml"),
            "databases:",
            &format!("{yaml}databases:"),
        )
    };
    lint_fails(
        |d| add(d, "services:\n  - kind: redis\n    when: max_upload_mib\n"),
        &[
            &|d| {
                format!(
                    "profile.yaml:{}:",
                    line_of(&d.join("profile.yaml"), "when: max_upload_mib")
                )
            },
            &|_| "services[0].when".into(),
            &|_| "`max_upload_mib` is not a `bool` question".into(),
        ],
    );
    lint_fails(
        |d| add(d, "services:\n  - kind: redis\n  - kind: redis\n"),
        &[&|_| "service redis is listed twice".into()],
    );
    lint_fails(
        |d| add(d, "services:\n  - kind: mongodb\n"),
        &[&|_| "mongodb".into(), &|_| "redis".into()],
    );
    // A server that is not in Debian must be pinned by the profile, and only such a one.
    lint_fails(
        |d| add(d, "services:\n  - kind: meilisearch\n"),
        &[&|_| "services[0].release".into(), &|_| {
            "meilisearch is not in Debian: the profile must pin its release".into()
        }],
    );
    let pinned = |version: &str, arch: &str| {
        format!("    release:\n      version: {version}\n      artifacts:\n        {arch}: {{ url: https://example.org/m, sha256: {}, format: binary }}\n", "ab".repeat(32))
    };
    lint_fails(
        |d| {
            add(
                d,
                &format!("services:\n  - kind: redis\n{}", pinned("v1", "amd64")),
            )
        },
        &[&|_| "redis comes from Debian's packages: a release is not used".into()],
    );
    lint_fails(
        |d| {
            add(
                d,
                &format!(
                    "services:\n  - kind: meilisearch\n{}",
                    pinned("'../x'", "sparc")
                ),
            )
        },
        &[&|_| "`../x` is not a version".into(), &|_| {
            "`sparc` is not an architecture".into()
        }],
    );
    {
        let work = tempfile::tempdir().unwrap();
        let cfg = tempfile::tempdir().unwrap();
        let dir = tutorial(work.path());
        add(
            &dir,
            &format!(
                "services:\n  - kind: meilisearch\n{}",
                pinned("v1.35.1", "amd64")
            ),
        );
        bin(cfg.path())
            .args(["profiles", "lint"])
            .arg(&dir)
            .assert()
            .success();
    }
    lint_fails(
        |d| {
            edit(
                &d.join("profile.yaml"),
                "  - key: session_secret\n",
                "  - key: redis_password\n",
            )
        },
        &[&|_| "`redis_password` is reserved".into()],
    );
    lint_fails(
        |d| {
            let unit = d.join("notes.service.j2");
            let text = std::fs::read_to_string(&unit).unwrap();
            std::fs::write(
                &unit,
                text.replacen(
                    "[Service]\n",
                    "[Service]\nEnvironment=R={{ services.redis.host }}\n",
                    1,
                ),
            )
            .unwrap();
        },
        &[
            &|d| {
                format!(
                    "notes.service.j2:{}: does not render",
                    line_of(&d.join("notes.service.j2"), "services.redis.host")
                )
            },
            &|_| "undefined value".into(),
        ],
    );
}
