//! `launch-tui profiles list|show|lint`.

use serde_json::json;

use super::{Outcome, Output};
use crate::cli::ProfilesCommand;
use crate::error::Result;
use crate::profile::{self, Catalog};
use crate::site::Site;

pub fn run(g: &Site, cmd: ProfilesCommand, _out: &Output) -> Result<Outcome> {
    let catalog = Catalog::new(&g.config);
    match cmd {
        ProfilesCommand::List => {
            let mut text = String::new();
            let mut rows = Vec::new();
            for name in catalog.names() {
                // One broken profile is listed as such; it never hides the others.
                let p = match catalog.load(&name) {
                    Ok(p) => p,
                    Err(e) => {
                        let message = e.to_string();
                        // The first problem itself, not the "N problem(s) in FILE:" header.
                        let first = message
                            .lines()
                            .find_map(|l| l.strip_prefix("- "))
                            .or_else(|| message.lines().next())
                            .unwrap_or_default()
                            .to_string();
                        text.push_str(&format!(
                            "{name:<12} {:<10} INVALID: {first} (launch-tui profiles lint {name})\n",
                            "-"
                        ));
                        rows.push(json!({ "name": name, "valid": false, "problem": first }));
                        continue;
                    }
                };
                let latest = p
                    .profile
                    .latest(profile::Channel::Stable)
                    .map(|r| r.version.clone())
                    .unwrap_or_default();
                text.push_str(&format!(
                    "{:<12} {:<10} {} ({})\n",
                    name, latest, p.profile.description, p.origin
                ));
                rows.push(json!({
                    "name": name, "valid": true, "latest": latest,
                    "description": p.profile.description, "origin": p.origin.to_string(),
                }));
            }
            Ok(Outcome::new(text.trim_end(), json!({ "profiles": rows })))
        }
        ProfilesCommand::Show { name } => {
            let p = catalog.load(&name)?;
            let pr = &p.profile;
            let mut t = format!("{} ({}) — {}\n", pr.title, pr.name, pr.description);
            t.push_str(&format!("source: {}\n", p.origin));
            t.push_str(&format!(
                "resources: minimum {} cores, {} MiB RAM, {} GiB disk; default {} cores, {} MiB, {} GiB\n",
                pr.resources.minimum.cores, pr.resources.minimum.memory_mib, pr.resources.minimum.disk_gib,
                pr.resources.default.cores, pr.resources.default.memory_mib, pr.resources.default.disk_gib
            ));
            t.push_str("versions:\n");
            for r in &pr.versions {
                let arches: Vec<&str> = r.artifacts.keys().map(|s| s.as_str()).collect();
                t.push_str(
                    &format!("  {} ({:?}; {})\n", r.version, r.channel, arches.join(", "))
                        .to_lowercase(),
                );
            }
            t.push_str("questions (answers-file keys):\n");
            for q in &pr.questions {
                t.push_str(&format!(
                    "  {:<16} {}{}\n",
                    q.key,
                    q.prompt,
                    q.default
                        .as_ref()
                        .map(|d| format!(" [default: {d}]"))
                        .unwrap_or_default()
                ));
            }
            t.push_str("components:\n");
            for c in &pr.components {
                t.push_str(&format!(
                    "  {:<8} {} (port {}, {})\n",
                    c.name,
                    c.description,
                    c.port.get(),
                    if c.location.is_empty() {
                        "loopback only"
                    } else {
                        c.location.as_str()
                    }
                ));
            }
            Ok(Outcome::new(
                t.trim_end(),
                serde_json::to_value(pr).unwrap_or_default(),
            ))
        }
        ProfilesCommand::Lint { profile } => {
            let loaded = catalog.load_arg(&profile)?;
            let report = profile::lint::lint(&loaded, true);
            if !report.problems.is_empty() {
                return Err(crate::error::LaunchError::InvalidFile {
                    file: loaded.file.clone(),
                    problems: report.problems,
                });
            }
            let mut text = format!(
                "{}: ok ({} format {}, {} release(s), {} rendering(s) checked)",
                loaded.file.display(),
                loaded.profile.name,
                loaded.profile.format,
                loaded.profile.versions.len(),
                report.rendered
            );
            for n in &report.not_checked {
                text.push_str(&format!("\n  not checked here: {n}"));
            }
            Ok(Outcome::new(
                text,
                json!({ "file": loaded.file, "ok": true, "rendered": report.rendered,
                        "not_checked": report.not_checked }),
            ))
        }
        ProfilesCommand::Migrate { file, to } => {
            let written = profile::migrate::to_format2(&file, &to)?;
            Ok(Outcome::new(
                format!(
                    "wrote {} (format 2) and {} template(s); check it with: launch-tui profiles lint {}",
                    to.join(profile::PROFILE_FILE).display(),
                    written,
                    to.display()
                ),
                json!({ "dir": to, "templates": written }),
            ))
        }
    }
}
