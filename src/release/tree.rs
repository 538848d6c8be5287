//! A release that is a whole tree (an app shipped as a directory: its binary beside assets,
//! libraries or scripts): every entry of the verified archive, minus `strip_components`
//! leading path parts, checked on the host and repacked as a plain tar with every entry owned
//! by root and modes normalised (0755 for directories and executables, 0644 for the rest), so
//! the container unpacks exactly what was checked. Symlinks stay only when they point inside
//! the tree; hard links, devices and FIFOs are refused.

use std::collections::BTreeSet;
use std::io::Read;

use super::*;

/// An archive unpacks to at most this much (a zip bomb in a pinned release is still a bomb).
const MAX_TREE_BYTES: u64 = 8 << 30;
const MAX_TREE_ENTRIES: usize = 500_000;

/// What [`ReleaseCache::repack_tree`] made.
#[derive(Debug)]
pub struct Tree {
    /// The plain tar to unpack in the release directory.
    pub tar: PathBuf,
    pub files: usize,
    pub bytes: u64,
}

/// One entry after stripping: its path inside the release directory.
struct Placed {
    path: String,
    kind: EntryKind,
    executable: bool,
    link: Option<String>,
}

/// `name` without its first `strip` parts; `None` when nothing is left (the stripped
/// top directories themselves).
fn strip(name: &str, strip: u32) -> Option<String> {
    let name = normalize_entry(name);
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let rest = parts.get(strip as usize..)?;
    (!rest.is_empty()).then(|| rest.join("/"))
}

/// Whether a symlink at `path` pointing to `target` stays inside the tree.
fn link_inside(path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let mut depth: Vec<&str> = path.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            p => depth.push(p),
        }
    }
    true
}

impl ReleaseCache {
    /// Repacks the verified `archive` (a path from [`ReleaseCache::fetch`]) as a checked
    /// plain tar in `dest_dir`, `strip` leading path parts removed; `binary` (a path inside
    /// the tree) must be a regular file in it and is made executable.
    pub fn repack_tree(
        &self,
        archive: &Path,
        artifact: &Artifact,
        strip_parts: u32,
        binary: &str,
        dest_dir: &Path,
    ) -> Result<Tree, ReleaseError> {
        let unsafe_entry = |entry: &str, problem: &'static str| ReleaseError::UnsafeEntry {
            archive: archive.to_path_buf(),
            entry: entry.to_string(),
            problem,
        };
        fs::create_dir_all(dest_dir).map_err(io_err("create directory", dest_dir))?;
        let mut staged = Staged::create(dest_dir, "tree.tar", 0o600)?;
        let mut out = tar::Builder::new(&mut staged.file);
        let mut seen = BTreeSet::new();
        let (mut files, mut bytes) = (0usize, 0u64);
        let mut found_binary = None;
        let mut add = |placed: Placed,
                       raw: &str,
                       size: u64,
                       data: &mut dyn Read,
                       out: &mut tar::Builder<&mut File>|
         -> Result<(), ReleaseError> {
            if let Some(problem) = entry_problem(raw) {
                return Err(unsafe_entry(raw, problem));
            }
            if !seen.insert(placed.path.clone()) && placed.kind != EntryKind::Dir {
                return Err(unsafe_entry(raw, "it appears twice"));
            }
            files += 1;
            bytes += size;
            if files > MAX_TREE_ENTRIES || bytes > MAX_TREE_BYTES {
                return Err(unsafe_entry(
                    raw,
                    "the archive unpacks to more than 8 GiB or 500,000 entries",
                ));
            }
            let is_binary = placed.path == binary;
            if is_binary {
                found_binary = Some(placed.kind);
            }
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            let write_err = |e: io::Error| ReleaseError::BadArchive {
                archive: archive.to_path_buf(),
                format: "tar",
                reason: error_chain(&e),
            };
            match placed.kind {
                EntryKind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    out.append_data(&mut h, &placed.path, io::empty())
                        .map_err(write_err)?;
                }
                EntryKind::File => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(if placed.executable || is_binary {
                        0o755
                    } else {
                        0o644
                    });
                    h.set_size(size);
                    out.append_data(&mut h, &placed.path, data.take(size))
                        .map_err(write_err)?;
                }
                EntryKind::Symlink => {
                    let target = placed.link.unwrap_or_default();
                    if !link_inside(&placed.path, &target) {
                        return Err(unsafe_entry(
                            raw,
                            "it is a link that points outside the release",
                        ));
                    }
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    out.append_link(&mut h, &placed.path, &target)
                        .map_err(write_err)?;
                }
                EntryKind::Other => {
                    return Err(unsafe_entry(raw, "it is a device, FIFO or hard link"));
                }
            }
            Ok(())
        };

        match artifact.format {
            ArchiveFormat::Binary => {
                return Err(ReleaseError::InvalidValue {
                    what: "artifact format",
                    value: "binary".into(),
                    problem: "a plain binary is not a tree".into(),
                    help: "remove `strip_components` from the component's install, or ship a zip or tar.gz".into(),
                })
            }
            ArchiveFormat::TarGz => {
                let bad = |e: io::Error| ReleaseError::BadArchive {
                    archive: archive.to_path_buf(),
                    format: "tar.gz",
                    reason: error_chain(&e),
                };
                let mut tar = open_tar_gz(archive)?;
                for entry in tar.entries().map_err(bad)? {
                    let mut entry = entry.map_err(bad)?;
                    let raw = tar_name(&entry);
                    let et = entry.header().entry_type();
                    // PAX and GNU long-name headers are folded into the entry by the tar crate.
                    if matches!(et, tar::EntryType::XGlobalHeader) {
                        continue;
                    }
                    let kind = match et {
                        tar::EntryType::Link => EntryKind::Other,
                        t => tar_kind(t),
                    };
                    let Some(path) = strip(&raw, strip_parts) else {
                        if kind == EntryKind::Dir {
                            continue;
                        }
                        return Err(unsafe_entry(&raw, "it lies above `strip_components`"));
                    };
                    let link = entry
                        .link_name()
                        .map_err(bad)?
                        .map(|l| l.to_string_lossy().into_owned());
                    let mode = entry.header().mode().unwrap_or(0o644);
                    let size = entry.header().size().map_err(bad)?;
                    let placed = Placed {
                        path,
                        kind,
                        executable: mode & 0o111 != 0,
                        link,
                    };
                    add(placed, &raw, size, &mut entry, &mut out)?;
                }
            }
            ArchiveFormat::Zip => {
                let bad = |reason: String| ReleaseError::BadArchive {
                    archive: archive.to_path_buf(),
                    format: "zip",
                    reason,
                };
                let file = File::open(archive).map_err(io_err("open", archive))?;
                let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(error_chain(&e)))?;
                for i in 0..zip.len() {
                    let mut entry = zip.by_index(i).map_err(|e| bad(error_chain(&e)))?;
                    let raw = entry.name().map_err(|e| bad(error_chain(&e)))?.into_owned();
                    let kind = if entry.is_dir() {
                        EntryKind::Dir
                    } else if entry.is_symlink() {
                        EntryKind::Symlink
                    } else {
                        EntryKind::File
                    };
                    let Some(path) = strip(&raw, strip_parts) else {
                        if kind == EntryKind::Dir {
                            continue;
                        }
                        return Err(unsafe_entry(&raw, "it lies above `strip_components`"));
                    };
                    let executable = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
                    let size = entry.size();
                    let link = if kind == EntryKind::Symlink {
                        let mut t = String::new();
                        (&mut entry)
                            .take(4096)
                            .read_to_string(&mut t)
                            .map_err(|e| bad(error_chain(&e)))?;
                        Some(t)
                    } else {
                        None
                    };
                    let placed = Placed {
                        path,
                        kind,
                        executable,
                        link,
                    };
                    add(placed, &raw, size, &mut entry, &mut out)?;
                }
            }
        }
        match found_binary {
            Some(EntryKind::File) => {}
            Some(kind) => {
                return Err(ReleaseError::NotAFile {
                    archive: archive.to_path_buf(),
                    entry: binary.to_string(),
                    kind: kind.label(),
                })
            }
            None => {
                return Err(ReleaseError::BinaryNotFound {
                    archive: archive.to_path_buf(),
                    binary: binary.to_string(),
                    entries: seen.into_iter().take(MAX_LISTED).collect(),
                })
            }
        }
        out.finish().map_err(|e| ReleaseError::BadArchive {
            archive: archive.to_path_buf(),
            format: "tar",
            reason: error_chain(&e),
        })?;
        drop(out);
        let dest = dest_dir.join("tree.tar");
        staged.persist(&dest)?;
        Ok(Tree {
            tar: dest,
            files,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_removes_leading_parts_and_keeps_the_rest() {
        assert_eq!(strip("app-1.0/bin/app", 1).as_deref(), Some("bin/app"));
        assert_eq!(strip("./app-1.0/bin/app", 1).as_deref(), Some("bin/app"));
        assert_eq!(strip("app-1.0/", 1), None);
        assert_eq!(strip("bin/app", 0).as_deref(), Some("bin/app"));
        assert_eq!(strip("a/b", 3), None);
    }

    #[test]
    fn links_must_stay_inside_the_tree() {
        assert!(link_inside("bin/app", "../lib/app.so"));
        assert!(link_inside("lib/current", "app-1.0"));
        assert!(!link_inside("bin/app", "../../etc/passwd"));
        assert!(!link_inside("app", "../x"));
        assert!(!link_inside("bin/app", "/usr/bin/env"));
        assert!(!link_inside("bin/app", ""));
    }
}
