//! `launch-tui profiles list|show|lint`.

use serde_json::json;

use super::{Outcome, Output};
use crate::cli::{Global, ProfilesCommand};
use crate::error::Result;
use crate::profile::{self, Catalog};

pub fn run(g: &Global, cmd: ProfilesCommand, _out: &Output) -> Result<Outcome> {
    let catalog = Catalog::new(&g.config);
    match cmd {
        ProfilesCommand::List => {
            let mut text = String::new();
            let mut rows = Vec::new();
            for name in catalog.names() {
                let p = catalog.load(&name)?;
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
                    "name": name, "latest": latest,
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
                    c.location
                ));
            }
            Ok(Outcome::new(
                t.trim_end(),
                serde_json::to_value(pr).unwrap_or_default(),
            ))
        }
        ProfilesCommand::Lint { file } => {
            let p = profile::load_file(&file)?;
            Ok(Outcome::new(
                format!(
                    "{}: ok ({}, {} release(s))",
                    file.display(),
                    p.profile.name,
                    p.profile.versions.len()
                ),
                json!({ "file": file, "ok": true }),
            ))
        }
    }
}
