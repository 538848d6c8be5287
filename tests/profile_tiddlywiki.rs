//! The built-in TiddlyWiki profile before any container runs it: `profiles lint` passes, the
//! files it renders with sample answers keep the server on loopback behind its accounts, and a
//! hostile first user name is refused before anything is created.
//!
//! Real: the launch-tui binary (lint, install), the profile as compiled in, systemd-analyze
//! (through lint; nginx -t where nginx is installed), the lab's Proxmox VE API (pve-lab, the
//! official schema) answering the install's questions about the node. No container is made:
//! the point is that none is. Stood in: Proxmox VE (pve-lab).

#[path = "support/lab.rs"]
mod lab;

use std::collections::BTreeMap;
use std::path::PathBuf;

use assert_cmd::Command;
use lab::{launch, text, Config, Lab};
use launch::deploy::AppSettings;
use launch::instance::Slot;
use launch::render::{self, DbContext};

fn profile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles/tiddlywiki")
}

#[test]
fn lint_passes_through_the_real_binary() {
    let cfg = tempfile::tempdir().unwrap();
    for arg in [profile_dir().display().to_string(), "tiddlywiki".into()] {
        let out = Command::cargo_bin("launch-tui")
            .unwrap()
            .env("LAUNCH_CONFIG", cfg.path())
            .env("NO_COLOR", "1")
            .env_remove("LAUNCH_HOST")
            .args(["profiles", "lint", &arg])
            .output()
            .unwrap();
        assert!(out.status.success(), "lint {arg}: {}", text(&out));
    }
}

/// The unit, site and bootstrap as an install renders them (blue slot, 5.3.6).
fn rendered() -> (String, String, String) {
    let loaded = launch::profile::load_dir(&profile_dir()).unwrap();
    let profile = loaded.profile;
    let settings: BTreeMap<String, String> = [
        ("public_url", "http://wiki.lab.example"),
        ("admin_user", "admin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let secrets: BTreeMap<String, String> = [(
        "admin_password".to_string(),
        "S3cretS3cretS3cretS3cret".to_string(),
    )]
    .into();
    let a = AppSettings {
        profile: &profile,
        name: "wiki",
        settings: &settings,
        secrets: &secrets,
        db: DbContext::files("none"),
        tls: false,
    };
    let main = a.main_component();
    let rc = a.render_context(main, Slot::Blue, "5.3.6");
    let unit = render::unit(&profile, main, &rc).unwrap();
    let site = render::nginx_site(&profile, &rc).unwrap();
    let boot = render::file(&profile, &profile.bootstrap.as_ref().unwrap().script, &rc).unwrap();
    (unit, site, boot)
}

#[test]
fn the_rendered_files_keep_the_wiki_on_loopback_behind_its_accounts() {
    let (unit, site, boot) = rendered();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    assert!(
        exec.starts_with(
            "/opt/tiddlywiki/releases/5.3.6/node_modules/.bin/tiddlywiki /var/lib/tiddlywiki/blue/wiki --listen "
        ),
        "{exec}"
    );
    for want in [
        " host=127.0.0.1 ",
        " port=8080 ",
        " credentials=/etc/tiddlywiki/users.csv ",
        " readers=(authenticated) ",
        " writers=(authenticated)",
    ] {
        assert!(exec.contains(want), "ExecStart lacks `{want}`: {exec}");
    }
    // No anonymous access, no CSRF switch-off, no second way in.
    for never in [
        "(anon)",
        "csrf-disable",
        "host=0.0.0.0",
        "username=",
        "password=",
    ] {
        assert!(!unit.contains(never), "the unit has `{never}`:\n{unit}");
    }
    // The wiki is made once; the credentials file exists before the first start, as root.
    assert!(
        unit.contains("test -e /var/lib/tiddlywiki/blue/wiki/tiddlywiki.info || exec /opt/tiddlywiki/releases/5.3.6/node_modules/.bin/tiddlywiki /var/lib/tiddlywiki/blue/wiki --init server"),
        "{unit}"
    );
    assert!(unit.contains("ExecStartPre=+/bin/sh -c 'install -d -m 0750 -o root -g tiddlywiki /etc/tiddlywiki && if [ ! -e /etc/tiddlywiki/users.csv ]; then echo username,password >"), "{unit}");
    for hardening in [
        "User=tiddlywiki",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/tiddlywiki/blue",
    ] {
        assert!(unit.lines().any(|l| l == hardening), "{hardening}:\n{unit}");
    }
    // nginx proxies to the active slot for the public name.
    assert!(site.contains("server_name wiki.lab.example"), "{site}");
    assert!(site.contains("location / {"), "{site}");
    // The bootstrap: the account from its input files (never this text), a CSV that only the
    // app's group reads, the restart that loads it, proven by the account signing in.
    assert!(
        !boot.contains("S3cretS3cret"),
        "the password is not in the script"
    );
    for want in [
        r#"user=$(cat "$in/admin_user")"#,
        r#"password=$(cat "$in/admin_password")"#,
        "*[!A-Za-z0-9._@-]*",
        "printf 'username,password\\n%s,%s\\n' \"$user\" \"$password\" > \"$tmp\"",
        "chgrp 'tiddlywiki' \"$tmp\"",
        "chmod 0640 \"$tmp\"",
        "mv -f \"$tmp\" /etc/tiddlywiki/users.csv",
        "systemctl restart 'tiddlywiki-wiki-blue.service'",
        "-K \"$in/curl.conf\" 'http://127.0.0.1:8080/status')\" = 200",
    ] {
        assert!(boot.contains(want), "the bootstrap lacks `{want}`:\n{boot}");
    }
}

/// The lockfiles pin exactly the version they are named after, from the npm registry, with
/// its integrity hash, for the manifest launch-tui writes (`npm ci` refuses any other).
#[test]
fn each_version_has_its_lockfile() {
    for v in ["5.3.6", "5.3.8"] {
        let lock: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(profile_dir().join(format!("package-lock-{v}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(lock["name"], "launch-release");
        assert_eq!(lock["packages"][""]["dependencies"]["tiddlywiki"], v);
        let pkg = &lock["packages"]["node_modules/tiddlywiki"];
        assert_eq!(pkg["version"], v, "{lock}");
        assert!(
            pkg["integrity"].as_str().unwrap().starts_with("sha512-"),
            "{lock}"
        );
        // TiddlyWiki has no dependencies: the tree is the package alone.
        assert_eq!(lock["packages"].as_object().unwrap().len(), 2, "{lock}");
    }
}

#[test]
fn a_hostile_first_user_name_is_refused_before_anything_is_created() {
    let lab = Lab::start();
    // A config directory of its own, with the built-in profiles only.
    let cfg = Config {
        dir: tempfile::tempdir().unwrap(),
    };
    let canary = cfg.path().join("canary");
    for (i, (user, what)) in [
        ("a,b", "a comma (a second CSV field)"),
        ("x\nroot,pw", "a newline (a second account)"),
        ("$(touch CANARY)", "shell"),
        ("ad:min", "a colon (basic auth's separator)"),
        ("-admin", "a leading dash"),
    ]
    .into_iter()
    .enumerate()
    {
        let user = user.replace("CANARY", &canary.display().to_string());
        let answers = cfg.path().join(format!("answers-{i}.yaml"));
        std::fs::write(
            &answers,
            format!(
                "public_url: http://wiki.lab.example\nadmin_user: {}\n",
                serde_json::to_string(&user).unwrap()
            ),
        )
        .unwrap();
        let out = launch(
            &lab,
            &cfg,
            &[
                "install",
                "tiddlywiki",
                "--yes",
                "--answers",
                answers.to_str().unwrap(),
            ],
        );
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {all}");
        assert!(
            all.contains("admin_user"),
            "{what}: the field is named: {all}"
        );
        assert!(!all.contains("panicked"), "{what}: {all}");
        assert!(!canary.exists(), "{what}: a command ran");
        assert!(lab.vmids().is_empty(), "{what}: a container was created");
    }
}
