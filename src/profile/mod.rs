//! Profiles: everything app-specific, as data. A profile (`profiles/NAME.yaml`, embedded in the
//! binary, overridable from `CONFIG/profiles/`) says what to download, which questions to ask,
//! which components to run as which units, how nginx serves them, and what a backup holds.
//! The engine never names an app; it only reads profiles.

mod locate;
pub mod types;

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use crate::error::{FileProblem, LaunchError};
pub use types::*;

static EMBEDDED_PROFILES: Dir = include_dir!("$CARGO_MANIFEST_DIR/profiles");
static EMBEDDED_ASSETS: Dir = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// Where a profile came from, for messages and `profiles list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Embedded,
    Override(PathBuf),
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded => write!(f, "built in"),
            Origin::Override(p) | Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub profile: Profile,
    pub origin: Origin,
    /// The YAML text, kept so later checks can point at lines.
    pub source: String,
}

/// Finds profiles: the override directory first (`CONFIG/profiles/NAME.yaml`), then the
/// embedded ones.
pub struct Catalog {
    override_dir: PathBuf,
}

impl Catalog {
    pub fn new(config_dir: &Path) -> Self {
        Catalog {
            override_dir: config_dir.join("profiles"),
        }
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = EMBEDDED_PROFILES
            .files()
            .filter_map(|f| profile_name_of(f.path()))
            .collect();
        if let Ok(rd) = std::fs::read_dir(&self.override_dir) {
            for e in rd.flatten() {
                if let Some(n) = profile_name_of(&e.path()) {
                    names.push(n);
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    pub fn load(&self, name: &str) -> Result<LoadedProfile, LaunchError> {
        // A name from outside (the command line, a backup archive) never becomes a path.
        check_name(name).map_err(|problem| {
            LaunchError::bad_input(
                format!("profile `{}`", crate::escape::shown(name)),
                problem,
                format!("choose one of: {}", self.names().join(", ")),
            )
        })?;
        let over = self.override_dir.join(format!("{name}.yaml"));
        if over.exists() {
            let mut p = load_file(&over)?;
            p.origin = Origin::Override(over);
            return Ok(p);
        }
        let file = EMBEDDED_PROFILES
            .get_file(format!("{name}.yaml"))
            .ok_or_else(|| {
                LaunchError::bad_input(
                    format!("profile `{name}`"),
                    "no such profile",
                    format!(
                        "choose one of: {} (see `launch-tui profiles list`)",
                        self.names().join(", ")
                    ),
                )
            })?;
        let source = file.contents_utf8().unwrap_or_default().to_string();
        let display = PathBuf::from(format!("profiles/{name}.yaml (built in)"));
        let profile = parse(&source, &display)?;
        Ok(LoadedProfile {
            profile,
            origin: Origin::Embedded,
            source,
        })
    }
}

fn profile_name_of(p: &Path) -> Option<String> {
    (p.extension()? == "yaml")
        .then(|| p.file_stem()?.to_str().map(str::to_string))
        .flatten()
}

/// Reads and checks a profile file (`profiles lint FILE` and overrides).
pub fn load_file(path: &Path) -> Result<LoadedProfile, LaunchError> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        LaunchError::bad_input(
            path.display().to_string(),
            format!("cannot read the profile: {e}"),
            "check the path and that the file is readable",
        )
    })?;
    let profile = parse(&source, path)?;
    Ok(LoadedProfile {
        profile,
        origin: Origin::File(path.to_path_buf()),
        source,
    })
}

/// Parses and validates profile YAML. Every problem found names the file, line and column, the
/// field, and what was expected.
pub fn parse(source: &str, file: &Path) -> Result<Profile, LaunchError> {
    let profile: Profile = serde_yaml_ng::from_str(source).map_err(|e| {
        let loc = e.location();
        let message = e.to_string();
        // serde_yaml_ng appends " at line L column C"; the location is shown in front instead.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        let (line, column) = refine_position(
            source,
            loc.as_ref().map(|l| (l.line(), l.column())),
            &message,
        );
        LaunchError::InvalidFile {
            file: file.to_path_buf(),
            problems: vec![FileProblem {
                file: file.to_path_buf(),
                line,
                column,
                field: None,
                help: Some(help_for_serde_message(&message)),
                message,
            }],
        }
    })?;
    let mut problems: Vec<FileProblem> = profile
        .check(&|name| asset_exists(name))
        .into_iter()
        .map(|issue| {
            let (line, column) = locate::locate(source, &issue.path)
                .map(|(l, c)| (Some(l), Some(c)))
                .unwrap_or((None, None));
            FileProblem {
                file: file.to_path_buf(),
                line,
                column,
                field: Some(issue.path),
                message: issue.message,
                help: Some(issue.help),
            }
        })
        .collect();
    problems.extend(template_problems(&profile, source, file));
    if problems.is_empty() {
        Ok(profile)
    } else {
        Err(LaunchError::InvalidFile {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Every template must render through an escaping filter: its name must say its syntax, and
/// it must not try to print a raw value (`|safe`, `autoescape`). The renderer escapes anyway;
/// lint says so before anyone relies on it.
fn template_problems(profile: &Profile, source: &str, file: &Path) -> Vec<FileProblem> {
    use crate::escape::Syntax;
    let mut named: Vec<(String, String)> = Vec::new();
    for (i, c) in profile.components.iter().enumerate() {
        named.push((format!("components[{i}].unit"), c.unit.clone()));
        for (j, f) in c.files.iter().enumerate() {
            named.push((
                format!("components[{i}].files[{j}].template"),
                f.template.clone(),
            ));
        }
    }
    named.push(("nginx.site".into(), profile.nginx.site.clone()));
    if let Some(b) = &profile.bootstrap {
        named.push(("bootstrap.script".into(), b.script.clone()));
    }
    let raw = regex::Regex::new(r"\|\s*safe\b|\{%-?\s*autoescape\b").expect("a valid regex");
    let mut out = Vec::new();
    for (field, t) in named {
        let Some(text) = asset(&t) else { continue };
        if Syntax::of(&t).is_none() {
            let (line, column) = locate::locate(source, &field)
                .map(|(l, c)| (Some(l), Some(c)))
                .unwrap_or((None, None));
            out.push(FileProblem {
                file: file.to_path_buf(),
                line,
                column,
                field: Some(field),
                message: format!(
                    "template `{t}`: its name says no syntax Launch can escape values for"
                ),
                help: Some(format!("name it after its syntax: {}", Syntax::KNOWN)),
            });
        }
        for (n, l) in text.lines().enumerate() {
            if let Some(m) = raw.find(l) {
                out.push(FileProblem {
                    file: PathBuf::from(format!("assets/{t}")),
                    line: Some(n + 1),
                    column: Some(m.start() + 1),
                    field: None,
                    message: format!("`{}` would print a raw value", m.as_str()),
                    help: Some(
                        "remove it: every value is written through the file's escaping filter"
                            .into(),
                    ),
                });
            }
        }
    }
    out
}

/// serde reports a value's own check (a bad sha256) at the start of the enclosing map; when the
/// message quotes the bad value in backticks, point at the line that holds it instead.
fn refine_position(
    source: &str,
    at: Option<(usize, usize)>,
    message: &str,
) -> (Option<usize>, Option<usize>) {
    let Some((line, column)) = at else {
        return (None, None);
    };
    let quoted = message
        .split('`')
        .nth(1)
        .filter(|q| !q.is_empty() && message.contains("invalid"));
    if let Some(q) = quoted {
        for (i, l) in source
            .lines()
            .enumerate()
            .skip(line.saturating_sub(1))
            .take(40)
        {
            if let Some(c) = l.find(q) {
                return (Some(i + 1), Some(c + 1));
            }
        }
    }
    (Some(line), Some(column))
}

fn help_for_serde_message(message: &str) -> String {
    if message.contains("unknown field") {
        "remove the field or fix its spelling; the expected fields are listed above".into()
    } else if message.contains("missing field") {
        "add the missing field (see profiles/vikunja.yaml for a complete example)".into()
    } else {
        "fix the value at that position (see profiles/vikunja.yaml for a complete example)".into()
    }
}

/// A file under `assets/` (templates for units, configs, nginx sites).
pub fn asset(name: &str) -> Option<&'static str> {
    EMBEDDED_ASSETS
        .get_file(name)
        .and_then(|f| f.contents_utf8())
}

fn asset_exists(name: &str) -> bool {
    EMBEDDED_ASSETS.get_file(name).is_some()
}

#[cfg(test)]
mod tests;
