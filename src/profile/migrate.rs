//! `profiles migrate`: a format 1 profile (one YAML file naming built-in templates) written as
//! a format 2 profile directory: `profile.yaml` with its roles spelled out, and a copy of every
//! template it names, so the directory stands on its own (`install ./dir/`).

use std::path::Path;

use super::{load_file, Profile, PROFILE_FILE};
use crate::error::LaunchError;

/// The templates a profile names.
pub fn template_names(p: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    for c in &p.components {
        out.push(c.unit.clone());
        out.extend(c.files.iter().map(|f| f.template.clone()));
    }
    out.push(p.nginx.site.clone());
    if let Some(b) = &p.bootstrap {
        out.push(b.script.clone());
    }
    out.sort();
    out.dedup();
    out
}

/// Writes `to/profile.yaml` and the templates; returns how many templates were written.
pub fn to_format2(file: &Path, to: &Path) -> Result<usize, LaunchError> {
    let loaded = load_file(file)?;
    let mut p = loaded.profile;
    if p.format != 1 {
        return Err(LaunchError::bad_input(
            file.display().to_string(),
            format!("it is already format {}", p.format),
            "nothing to migrate; lint it with `launch-tui profiles lint`",
        ));
    }
    let bad_dest = |problem: String| {
        LaunchError::bad_input(
            to.display().to_string(),
            problem,
            "name a new directory (it is created)",
        )
    };
    if to.exists()
        && std::fs::read_dir(to)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(bad_dest("the directory exists and is not empty".into()));
    }
    // Format 1's conventions, made explicit (roles, install-only questions) by the loader.
    p.format = 2;
    let yaml = serde_yaml_ng::to_string(&p)
        .map_err(|e| bad_dest(format!("cannot write the profile: {e}")))?;
    std::fs::create_dir_all(to).map_err(|e| bad_dest(format!("cannot create it: {e}")))?;
    let names = template_names(&p);
    for name in &names {
        let text = p.assets.text(name).map_err(|e| {
            LaunchError::bad_input(
                format!("template `{name}`"),
                e.to_string(),
                "fix the template name in the format 1 profile",
            )
        })?;
        let dest = to.join(name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| bad_dest(e.to_string()))?;
        }
        std::fs::write(&dest, text).map_err(|e| bad_dest(e.to_string()))?;
    }
    let header = format!(
        "# Converted from {} (format 1) by `launch-tui profiles migrate`.\n# Template names are relative to this directory. Reference: docs/profiles.md\n",
        file.display()
    );
    std::fs::write(to.join(PROFILE_FILE), header + &yaml).map_err(|e| bad_dest(e.to_string()))?;
    // What was written loads as format 2, or the migration says so.
    super::load_dir(to)?;
    Ok(names.len())
}
