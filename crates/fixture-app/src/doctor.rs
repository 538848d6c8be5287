//! `vikunja doctor` (a checklist, exit 1 on any failure) and `vikunja healthcheck` (DB ping, exit 0/1).
//! A build packaged with `--broken` fails both, as its /health does.

use std::path::Path;

use crate::build_info::BuildInfo;
use crate::config::{Config, Environment};
use crate::db::Database;
use crate::migrations;

struct Report {
    failed: usize,
}

impl Report {
    fn section(&self, name: &str) {
        println!("\n{name}");
    }

    fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("  ✓ {what}: {detail}");
    }

    fn warn(&self, what: &str, detail: impl std::fmt::Display) {
        println!("  ! {what}: {detail}");
    }

    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed += 1;
        println!("  ✗ {what}: {detail}");
    }
}

/// Prints the checks; returns whether all passed.
pub fn doctor(info: &BuildInfo, explicit_config: Option<&Path>, env: &Environment) -> bool {
    let mut r = Report { failed: 0 };
    println!("Vikunja Doctor");
    println!("==============");

    r.section("System");
    r.ok("Version", &info.version);
    if info.broken {
        r.fail("Build", "this fixture build is marked broken");
    } else {
        r.ok("Build", "ok");
    }

    r.section("Configuration");
    let config = match Config::load(explicit_config, env) {
        Ok(config) => config,
        Err(err) => {
            r.fail("Config", err);
            return finish(r);
        }
    };
    match &config.file {
        Some(path) => r.ok("Config file", path.display()),
        None => r.warn(
            "Config file",
            "none found; using defaults and VIKUNJA_* variables",
        ),
    }
    match config.require_public_url() {
        Ok(()) => r.ok("Public URL", &config.public_url),
        Err(err) => r.fail("Public URL", err),
    }
    match &config.secret {
        Some(_) => r.ok("Secret", "set"),
        None => r.warn(
            "Secret",
            "service.secret is not set; every start picks a new one and logs everyone out",
        ),
    }
    r.ok("Timezone", &config.timezone);
    match config.listen_addr() {
        Ok(addr) => r.ok("Interface", addr),
        Err(err) => r.fail("Interface", err),
    }

    r.section("Database");
    r.ok("Type", config.database.describe());
    match Database::connect(&config.database) {
        Err(err) => r.fail("Connection", err),
        Ok(mut db) => {
            match db.ping() {
                Ok(()) => r.ok("Connection", "ok"),
                Err(err) => r.fail("Connection", format!("{err:#}")),
            }
            match migrations::applied(&mut db) {
                Err(err) => r.fail("Migrations", format!("{err:#}")),
                Ok(applied) => {
                    let unknown: Vec<&String> = applied
                        .iter()
                        .filter(|id| !migrations::knows(info, id))
                        .collect();
                    let pending = migrations::known(info)
                        .filter(|m| !applied.iter().any(|a| a == m.id))
                        .count();
                    if !unknown.is_empty() {
                        r.fail(
                            "Migrations",
                            format!(
                                "the schema is newer than {} (unknown migrations {unknown:?})",
                                info.version
                            ),
                        );
                    } else if pending > 0 {
                        r.ok(
                            "Migrations",
                            format!("{pending} pending, applied at next start"),
                        );
                    } else {
                        r.ok("Migrations", "up to date");
                    }
                }
            }
        }
    }

    r.section("Files");
    check_files(&mut r, &config.files_basepath);
    finish(r)
}

fn check_files(r: &mut Report, basepath: &Path) {
    if !basepath.is_dir() {
        r.fail(
            "Base path",
            format!("{} is not a directory", basepath.display()),
        );
        return;
    }
    let probe = basepath.join(".doctor-probe");
    match std::fs::write(&probe, b"probe").and_then(|_| std::fs::remove_file(&probe)) {
        Ok(()) => r.ok("Base path", format!("{} is writable", basepath.display())),
        Err(err) => r.fail(
            "Base path",
            format!("{} is not writable: {err}", basepath.display()),
        ),
    }
}

fn finish(r: Report) -> bool {
    if r.failed == 0 {
        println!("\nAll checks passed.");
    } else {
        println!("\n{} check(s) failed.", r.failed);
    }
    r.failed == 0
}

/// What `vikunja healthcheck` checks: the database answers (and the build is not the broken one).
pub fn healthcheck(info: &BuildInfo, config: &Config) -> anyhow::Result<()> {
    if info.broken {
        anyhow::bail!("fixture build {} is marked broken", info.version);
    }
    let mut db = Database::connect(&config.database)?;
    db.ping()
}
