//! Profiles: everything app-specific, as data. A profile is a directory: `profile.yaml` plus
//! the templates and scripts it names, built into the binary (`profiles/NAME/`), or under
//! `CONFIG/profiles/NAME/`, or anywhere (`install ./myapp/`). It says what to download, which
//! questions to ask, which components to run as which units, how nginx serves them, and what a
//! backup holds. The engine never names an app; it only reads profiles.

mod armor;
mod assets;
pub mod lint;
mod locate;
pub mod migrate;
pub mod types;

use std::path::{Path, PathBuf};

use crate::error::{FileProblem, LaunchError};
use assets::EMBEDDED_PROFILES;
pub use assets::{AssetError, Assets, RESERVED_PREFIX};
pub use types::*;

/// The file that makes a directory a profile.
pub const PROFILE_FILE: &str = "profile.yaml";

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
    /// The file it was read from, as messages show it.
    pub file: PathBuf,
}

/// Finds profiles: the configuration directory first (`CONFIG/profiles/NAME/profile.yaml`, or a
/// format 1 `CONFIG/profiles/NAME.yaml` that names built-in templates), then the built-in ones.
pub struct Catalog {
    override_dir: PathBuf,
}

impl Catalog {
    pub fn new(config_dir: &Path) -> Self {
        Catalog {
            override_dir: config_dir.join("profiles"),
        }
    }

    /// The directory of the profiles installed on this host (`install ./dir/` copies there).
    pub fn override_dir(&self) -> &Path {
        &self.override_dir
    }

    /// Every profile name, built in or in the configuration directory; a broken one is listed
    /// too (loading it says what is wrong), so one bad profile never hides the others.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = EMBEDDED_PROFILES
            .dirs()
            .filter(|d| d.get_file(d.path().join(PROFILE_FILE)).is_some())
            .filter_map(|d| d.path().file_name()?.to_str().map(str::to_string))
            .collect();
        if let Ok(rd) = std::fs::read_dir(&self.override_dir) {
            for e in rd.flatten() {
                let path = e.path();
                let name = if path.join(PROFILE_FILE).is_file() {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .map(str::to_string)
                } else {
                    profile_name_of(&path)
                };
                if let Some(n) = name.filter(|n| check_name(n).is_ok()) {
                    names.push(n);
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        EMBEDDED_PROFILES
            .get_file(Path::new(name).join(PROFILE_FILE))
            .is_some()
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
        let dir = self.override_dir.join(name);
        if dir.join(PROFILE_FILE).is_file() {
            let mut p = load_dir(&dir)?;
            expect_name(&p, name)?;
            p.origin = Origin::Override(dir);
            return Ok(p);
        }
        // A lone `NAME.yaml` overrides the YAML only: a format 2 one keeps the built-in
        // profile's templates (or, for a profile not built in, reads them beside the file).
        let over = self.override_dir.join(format!("{name}.yaml"));
        if over.exists() {
            let own = Assets::embedded(name).unwrap_or_else(|| Assets::disk(&self.override_dir));
            let mut p = load_file_with(&over, own)?;
            expect_name(&p, name)?;
            p.origin = Origin::Override(over);
            return Ok(p);
        }
        let file = EMBEDDED_PROFILES
            .get_file(Path::new(name).join(PROFILE_FILE))
            .ok_or_else(|| {
                LaunchError::bad_input(
                    format!("profile `{name}`"),
                    "no such profile",
                    format!(
                        "choose one of: {} (see `launch-tui profiles list`), or give a profile's directory: install ./myapp/",
                        self.names().join(", ")
                    ),
                )
            })?;
        let source = file.contents_utf8().unwrap_or_default().to_string();
        let display = PathBuf::from(format!("profiles/{name}/{PROFILE_FILE} (built in)"));
        let own = Assets::embedded(name).unwrap_or_default();
        let profile = parse_with(&source, &display, own)?;
        Ok(LoadedProfile {
            profile,
            origin: Origin::Embedded,
            source,
            file: display,
        })
    }

    /// A profile named on the command line: a name from the catalog, or a path to a profile's
    /// directory or file (anything with a `/`).
    pub fn load_arg(&self, arg: &str) -> Result<LoadedProfile, LaunchError> {
        if arg.contains('/') {
            load_path(Path::new(arg))
        } else {
            self.load(arg)
        }
    }

    /// Whether [`Catalog::adopt`] would copy this profile (true), finds the same one already
    /// there (false), or must refuse (an error naming why): checked before anything changes.
    pub fn check_adoptable(&self, loaded: &LoadedProfile) -> Result<bool, LaunchError> {
        let name = loaded.profile.name.as_str();
        let Some(src) = loaded.profile.assets.dir() else {
            return Ok(false);
        };
        let dest = self.override_dir.join(name);
        if src.canonicalize().ok() == dest.canonicalize().ok() {
            return Ok(false);
        }
        let files = loaded.profile.assets.files();
        if self.is_builtin(name) {
            return Err(LaunchError::bad_input(
                format!("profile `{name}` ({})", src.display()),
                "a built-in profile has this name",
                "give your profile another `name:` in its profile.yaml",
            ));
        }
        if dest.exists() {
            let same = Assets::disk(&dest).files() == files
                && files
                    .iter()
                    .all(|f| std::fs::read(dest.join(f)).ok() == std::fs::read(src.join(f)).ok());
            if same {
                return Ok(false);
            }
            return Err(LaunchError::bad_input(
                format!("profile `{name}` ({})", src.display()),
                format!("another profile of that name is installed at {}", dest.display()),
                format!(
                    "install it by name (`launch-tui install {name}`), or remove {} first if no instance uses it",
                    dest.display()
                ),
            ));
        }
        Ok(true)
    }

    /// Copies a profile directory into `CONFIG/profiles/NAME/`, so that every later operation
    /// (update, status, backup, restore) finds the same profile by name. Refused when that name
    /// is built in or another profile of that name is already there (never replaced silently).
    pub fn adopt(&self, loaded: &LoadedProfile) -> Result<LoadedProfile, LaunchError> {
        let name = loaded.profile.name.as_str();
        if !self.check_adoptable(loaded)? {
            return self.load(name);
        }
        let Some(src) = loaded.profile.assets.dir() else {
            return self.load(name);
        };
        let files = loaded.profile.assets.files();
        let dest = self.override_dir.join(name);
        let staging = self.override_dir.join(format!(".{name}.new"));
        let _ = std::fs::remove_dir_all(&staging);
        let io = |e: std::io::Error, what: &Path| {
            LaunchError::bad_input(
                what.display().to_string(),
                format!("cannot copy the profile: {e}"),
                "check that the configuration directory is writable",
            )
        };
        for f in &files {
            let text = loaded.profile.assets.text(f).map_err(|e| {
                LaunchError::bad_input(
                    src.join(f).display().to_string(),
                    e.to_string(),
                    "profiles hold text files only, inside their directory",
                )
            })?;
            let to = staging.join(f);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
            }
            std::fs::write(&to, text).map_err(|e| io(e, &to))?;
        }
        std::fs::rename(&staging, &dest).map_err(|e| io(e, &dest))?;
        self.load(name)
    }
}

fn expect_name(p: &LoadedProfile, name: &str) -> Result<(), LaunchError> {
    if p.profile.name.as_str() == name {
        return Ok(());
    }
    Err(LaunchError::bad_input(
        p.file.display().to_string(),
        format!(
            "its `name:` is `{}` but it is stored as profile `{name}`",
            p.profile.name
        ),
        "make the directory (or file) name and the profile's `name:` the same",
    ))
}

fn profile_name_of(p: &Path) -> Option<String> {
    (p.extension()? == "yaml")
        .then(|| p.file_stem()?.to_str().map(str::to_string))
        .flatten()
}

/// Reads a profile from a directory (its `profile.yaml`) or a file.
pub fn load_path(path: &Path) -> Result<LoadedProfile, LaunchError> {
    if path.is_dir() {
        load_dir(path)
    } else {
        load_file(path)
    }
}

/// A profile directory: `profile.yaml` and its templates, read from that directory.
pub fn load_dir(dir: &Path) -> Result<LoadedProfile, LaunchError> {
    let file = dir.join(PROFILE_FILE);
    let source = read_profile_text(&file)?;
    let profile = parse_with(&source, &file, Assets::disk(dir))?;
    Ok(LoadedProfile {
        profile,
        origin: Origin::File(dir.to_path_buf()),
        source,
        file,
    })
}

/// Reads and checks a profile file (`profiles lint FILE` and format 1 overrides). A format 2
/// file reads its templates from its own directory; format 1 names built-in templates.
pub fn load_file(path: &Path) -> Result<LoadedProfile, LaunchError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    load_file_with(path, Assets::disk(dir.unwrap_or(Path::new("."))))
}

fn load_file_with(path: &Path, own: Assets) -> Result<LoadedProfile, LaunchError> {
    let source = read_profile_text(path)?;
    let profile = parse_with(&source, path, own)?;
    Ok(LoadedProfile {
        profile,
        origin: Origin::File(path.to_path_buf()),
        source,
        file: path.to_path_buf(),
    })
}

fn read_profile_text(path: &Path) -> Result<String, LaunchError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        LaunchError::bad_input(
            path.display().to_string(),
            format!("cannot read the profile: {e}"),
            "give a profile's directory (with profile.yaml) or its profile.yaml",
        )
    })?;
    if meta.len() > assets::MAX_ASSET_BYTES {
        return Err(LaunchError::bad_input(
            path.display().to_string(),
            format!("{} bytes: a profile is at most 1 MiB", meta.len()),
            "check that this is a profile",
        ));
    }
    std::fs::read_to_string(path).map_err(|e| {
        LaunchError::bad_input(
            path.display().to_string(),
            format!("cannot read the profile: {e}"),
            "check the path and that the file is readable UTF-8 text",
        )
    })
}

/// Parses profile text with no directory of its own: format 1 names built-in templates, a
/// format 2 profile finds only the engine's fragments.
pub fn parse(source: &str, file: &Path) -> Result<Profile, LaunchError> {
    parse_with(source, file, Assets::default())
}

/// Parses and validates profile YAML. Every problem found names the file, line and column, the
/// field, and what was expected. `own` is the profile's directory (format 2 template names are
/// relative to it); format 1 profiles name templates of the built-in catalog.
pub fn parse_with(source: &str, file: &Path, own: Assets) -> Result<Profile, LaunchError> {
    if source.len() as u64 > assets::MAX_ASSET_BYTES {
        return Err(LaunchError::bad_input(
            file.display().to_string(),
            "a profile is at most 1 MiB",
            "check that this is a profile",
        ));
    }
    let mut profile: Profile = serde_yaml_ng::from_str(source).map_err(|e| {
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
    profile.assets = if profile.format == 1 {
        profile.fill_format1_roles();
        Assets::catalog()
    } else {
        own
    };
    let assets = profile.assets.clone();
    let mut problems: Vec<FileProblem> = profile
        .check(&|name| assets.exists(name))
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
    problems.extend(apt_key_problems(&profile, source, file));
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
        let Ok(text) = profile.assets.text(&t) else {
            continue;
        };
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
                    file: profile.assets.shown_path(&t),
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

/// Each apt source's key file must be one ASCII-armored public key (its existence is
/// `Profile::check`'s).
fn apt_key_problems(profile: &Profile, source: &str, file: &Path) -> Vec<FileProblem> {
    let mut out = Vec::new();
    for (i, a) in profile.apt_sources.iter().enumerate() {
        if !profile.assets.exists(&a.key) {
            continue;
        }
        let problem = match profile.assets.text(&a.key) {
            Ok(text) => armor::check_public_key(&text).err(),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            let field = format!("apt_sources[{i}].key");
            let (line, column) = locate::locate(source, &field)
                .map(|(l, c)| (Some(l), Some(c)))
                .unwrap_or((None, None));
            out.push(FileProblem {
                file: file.to_path_buf(),
                line,
                column,
                field: Some(field),
                message: format!(
                    "the key file `{}` of apt source `{}` is not an armored public key: {problem}",
                    crate::escape::shown(&a.key),
                    a.name
                ),
                help: Some(
                    "put the repository's public signing key there as `gpg --armor --export KEYID` writes it".into(),
                ),
            });
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
        "add the missing field (docs/profiles.md lists every field)".into()
    } else {
        "fix the value at that position (docs/profiles.md lists every field)".into()
    }
}

#[cfg(test)]
mod tests;
