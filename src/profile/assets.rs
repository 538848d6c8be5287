//! A profile's files: its templates and scripts, read from the profile's own directory (built
//! into the binary, under `CONFIG/profiles/NAME/`, or any path), plus the engine's fragments
//! under the reserved prefix `launch/` (the nginx write hold, the probe headers), which every
//! site template may `{% include %}`.

use std::path::{Component as PathPart, Path, PathBuf};
use std::sync::Arc;

use include_dir::{include_dir, Dir};

pub(super) static EMBEDDED_PROFILES: Dir = include_dir!("$CARGO_MANIFEST_DIR/profiles");
static ENGINE_FRAGMENTS: Dir = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// The prefix of the engine's own fragments; a profile may not ship files under it.
pub const RESERVED_PREFIX: &str = "launch/";

/// A template larger than this is refused (a profile's templates are a few KiB).
pub const MAX_ASSET_BYTES: u64 = 1024 * 1024;

#[derive(Clone)]
enum Root {
    /// Nothing but the engine's fragments (a profile parsed from text alone).
    None,
    /// A directory inside the binary: `profiles/` itself for format 1 profiles (whose template
    /// names start with the profile's name), `profiles/NAME/` for format 2.
    Embedded(&'static Dir<'static>),
    /// A directory on disk, read when a template is needed.
    Disk(Arc<PathBuf>),
}

/// Where a profile's templates are found. Cheap to clone.
#[derive(Clone)]
pub struct Assets {
    root: Root,
}

impl Default for Assets {
    fn default() -> Self {
        Assets { root: Root::None }
    }
}

impl std::fmt::Debug for Assets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Assets({})", self.describe())
    }
}

/// Why a template cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetError {
    Missing,
    /// A name with `..`, an absolute path, or a symlink out of the profile's directory.
    Outside,
    TooLarge(u64),
    NotText,
    Unreadable(String),
}

impl std::fmt::Display for AssetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssetError::Missing => write!(f, "no such file in the profile's directory"),
            AssetError::Outside => write!(
                f,
                "the name leads out of the profile's directory (`..`, an absolute path or a symlink)"
            ),
            AssetError::TooLarge(n) => write!(
                f,
                "{n} bytes: larger than the {MAX_ASSET_BYTES} bytes a template may have"
            ),
            AssetError::NotText => write!(f, "not UTF-8 text"),
            AssetError::Unreadable(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

impl Assets {
    /// The whole built-in catalog (`profiles/`): format 1 names such as `app/x.service.j2`.
    pub fn catalog() -> Self {
        Assets {
            root: Root::Embedded(&EMBEDDED_PROFILES),
        }
    }

    /// A built-in profile's own directory.
    pub fn embedded(name: &str) -> Option<Self> {
        EMBEDDED_PROFILES.get_dir(name).map(|d| Assets {
            root: Root::Embedded(d),
        })
    }

    pub fn disk(dir: &Path) -> Self {
        Assets {
            root: Root::Disk(Arc::new(dir.to_path_buf())),
        }
    }

    /// For messages: where names are looked up.
    pub fn describe(&self) -> String {
        match &self.root {
            Root::None => "no directory".into(),
            Root::Embedded(d) if d.path().as_os_str().is_empty() => "profiles/ (built in)".into(),
            Root::Embedded(d) => format!("profiles/{} (built in)", d.path().display()),
            Root::Disk(p) => p.display().to_string(),
        }
    }

    /// The path a file is shown at in messages (`profiles/app/x.conf.j2`, `/root/app/x.sh.j2`).
    pub fn shown_path(&self, name: &str) -> PathBuf {
        if name.starts_with(RESERVED_PREFIX) {
            return PathBuf::from(format!("assets/{name} (built in)"));
        }
        match &self.root {
            Root::None => PathBuf::from(name),
            Root::Embedded(d) => Path::new("profiles").join(d.path()).join(name),
            Root::Disk(p) => p.join(name),
        }
    }

    /// The directory on disk, for profiles that have one.
    pub fn dir(&self) -> Option<&Path> {
        match &self.root {
            Root::Disk(p) => Some(p),
            _ => None,
        }
    }

    /// A template's text. Names are relative, `/`-separated, and stay inside the directory.
    pub fn text(&self, name: &str) -> Result<String, AssetError> {
        let rel = Path::new(name);
        if name.is_empty() || rel.components().any(|c| !matches!(c, PathPart::Normal(_))) {
            return Err(AssetError::Outside);
        }
        if let Some(fragment) = name.strip_prefix(RESERVED_PREFIX) {
            return ENGINE_FRAGMENTS
                .get_file(Path::new("launch").join(fragment))
                .and_then(|f| f.contents_utf8())
                .map(str::to_string)
                .ok_or(AssetError::Missing);
        }
        match &self.root {
            Root::None => Err(AssetError::Missing),
            Root::Embedded(d) => {
                let f = d.get_file(d.path().join(rel)).ok_or(AssetError::Missing)?;
                f.contents_utf8()
                    .map(str::to_string)
                    .ok_or(AssetError::NotText)
            }
            Root::Disk(dir) => read_inside(dir, rel),
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.text(name).is_ok()
    }

    /// Every file of the profile's own directory (not the engine's fragments), relative names,
    /// sorted: what `install ./dir/` copies and `profiles lint` checks.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.root {
            Root::None => {}
            Root::Embedded(d) => collect_embedded(d, d.path(), &mut out),
            Root::Disk(dir) => collect_disk(dir, dir, 0, &mut out),
        }
        out.sort();
        out
    }
}

fn collect_embedded(d: &Dir<'static>, base: &Path, out: &mut Vec<String>) {
    for f in d.files() {
        if let Ok(rel) = f.path().strip_prefix(base) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    for sub in d.dirs() {
        collect_embedded(sub, base, out);
    }
}

/// Bounded: a profile directory is small; deeper or larger trees are not walked further.
fn collect_disk(base: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    if depth > 4 || out.len() > 512 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        if ft.is_dir() {
            collect_disk(base, &path, depth + 1, out);
        } else if ft.is_file() {
            if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}

fn read_inside(dir: &Path, rel: &Path) -> Result<String, AssetError> {
    let path = dir.join(rel);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(AssetError::Missing),
        Err(e) => return Err(AssetError::Unreadable(e.to_string())),
    };
    // A symlink may point anywhere on the host (/etc/shadow): templates are plain files.
    if meta.file_type().is_symlink() {
        return Err(AssetError::Outside);
    }
    if !meta.is_file() {
        return Err(AssetError::Missing);
    }
    if meta.len() > MAX_ASSET_BYTES {
        return Err(AssetError::TooLarge(meta.len()));
    }
    // The directories on the way must not be symlinks out of the profile either.
    let real_dir = dir
        .canonicalize()
        .map_err(|e| AssetError::Unreadable(e.to_string()))?;
    let real = path
        .canonicalize()
        .map_err(|e| AssetError::Unreadable(e.to_string()))?;
    if !real.starts_with(&real_dir) {
        return Err(AssetError::Outside);
    }
    let bytes = std::fs::read(&real).map_err(|e| AssetError::Unreadable(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| AssetError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.conf.j2"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("p.conf.j2")).unwrap();
        let a = Assets::disk(dir.path());
        assert_eq!(a.text("a.conf.j2").unwrap(), "x");
        assert_eq!(a.text("../a.conf.j2"), Err(AssetError::Outside));
        assert_eq!(a.text("/etc/passwd"), Err(AssetError::Outside));
        assert_eq!(a.text("p.conf.j2"), Err(AssetError::Outside));
        assert_eq!(a.text("none.conf.j2"), Err(AssetError::Missing));
        assert_eq!(a.files(), vec!["a.conf.j2".to_string()]);
    }

    #[test]
    fn engine_fragments_are_there_for_every_profile() {
        assert!(Assets::default().exists("launch/site-head.conf.j2"));
        assert!(Assets::embedded("vikunja")
            .unwrap()
            .exists("nginx-site.conf.j2"));
        assert!(Assets::catalog().exists("vikunja/nginx-site.conf.j2"));
    }
}
