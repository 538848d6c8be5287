//! pgvector for the lab's Debian 12 containers, packaged as a `.deb` for a lab apt repository.
//!
//! Real: pgvector 0.8.0, Debian's own source tarball (the one Debian 13 builds its package
//! from), compiled here with `make` against Debian 12's PostgreSQL 15 (`postgresql-server-dev-15`)
//! and installed with its own `make install`: `vector.so`, `vector.control`, its SQL scripts and
//! JIT bitcode. Stood in: the packaging. On a real host `postgresql-15-pgvector` comes from
//! PostgreSQL's PGDG apt repository; this `.deb` has that name, built by `dpkg-deb` here.
//!
//! The tarball is fetched once by `scripts/test-all.sh` (tests never download anything); the
//! built `.deb` is kept under the target directory, so only the first test binary waits for it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Debian's pgvector source tarball, put there by `scripts/test-all.sh`.
pub const TARBALL: &str = "/var/cache/launch-tests/pgvector_0.8.0.orig.tar.gz";
/// Its sum, from Debian 13's signed Sources index.
pub const TARBALL_SHA256: &str = "867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0";
pub const VERSION: &str = "0.8.0";
/// PGDG's package name, so a profile names the same package in the lab as on a real host.
pub const PACKAGE: &str = "postgresql-15-pgvector";
pub const DEB_VERSION: &str = "0.8.0-1.launchlab";

const PG_CONFIG: &str = "/usr/lib/postgresql/15/bin/pg_config";

/// One build at a time inside a test binary; across binaries the cache's rename is enough.
static BUILD: Mutex<()> = Mutex::new(());

/// The `.deb`'s file name in a repository's pool.
pub fn deb_file_name() -> String {
    format!("{PACKAGE}_{DEB_VERSION}_amd64.deb")
}

/// Writes `out_dir/postgresql-15-pgvector_0.8.0-1.launchlab_amd64.deb`, built on first use
/// (about ten seconds) and copied from the cache after that; its path.
pub fn pgvector_deb(out_dir: &Path) -> PathBuf {
    let sha = checked_tarball_sha256();
    let cached = cache_dir().join(format!("pgvector-{}-{DEB_VERSION}.deb", &sha[..16]));
    {
        let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if !cached.is_file() {
            build(&cached);
        }
    }
    std::fs::create_dir_all(out_dir).unwrap();
    let out = out_dir.join(deb_file_name());
    std::fs::copy(&cached, &out)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", cached.display(), out.display()));
    out
}

/// Asserts that `deb` is the package `pgvector_deb` makes: PGDG's name, amd64, depending on
/// Debian 12's PostgreSQL 15, with the library and extension files where PostgreSQL 15 looks.
pub fn check_deb(deb: &Path) {
    let field = |name: &str| {
        run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), PACKAGE);
    assert_eq!(field("Version"), DEB_VERSION);
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Depends"), "postgresql-15");
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb));
    let files: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in [
        "./usr/lib/postgresql/15/lib/vector.so",
        "./usr/share/postgresql/15/extension/vector.control",
        "./usr/share/postgresql/15/extension/vector--0.8.0.sql",
    ] {
        assert!(
            files.contains(&want),
            "{} has no {want}:\n{listing}",
            deb.display()
        );
    }
}

/// The tarball's sha256, which must be `TARBALL_SHA256`.
fn checked_tarball_sha256() -> String {
    use sha2::Digest;
    let bytes = std::fs::read(TARBALL).unwrap_or_else(|e| {
        panic!("{TARBALL} cannot be read ({e}): run scripts/test-all.sh, which downloads it once")
    });
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    assert_eq!(
        sha, TARBALL_SHA256,
        "{TARBALL} is not Debian's pgvector 0.8.0 source: delete it and run scripts/test-all.sh"
    );
    sha
}

fn cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("lab-cache")
}

/// Builds pgvector from the tarball and packages it at `cached`, atomically.
fn build(cached: &Path) {
    assert!(
        Path::new(PG_CONFIG).exists(),
        "{PG_CONFIG} is missing: install postgresql-server-dev-15 (scripts/test-all.sh does)"
    );
    let work = tempfile::Builder::new()
        .prefix("pgvector")
        .tempdir()
        .unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(TARBALL)
        .arg("-C")
        .arg(work.path()));
    let src = work.path().join(format!("pgvector-{VERSION}"));
    let root = work.path().join("root");
    // OPTFLAGS= drops the Makefile's -march=native, as Debian's and PGDG's packages do: the
    // library must load on whatever CPU runs the lab.
    let make = |args: &[&str]| {
        run(Command::new("make")
            .current_dir(&src)
            .args(args)
            .arg(format!("PG_CONFIG={PG_CONFIG}"))
            .arg("OPTFLAGS="))
    };
    make(&["-j2"]);
    make(&["install", &format!("DESTDIR={}", root.display())]);
    let control = root.join("DEBIAN/control");
    std::fs::create_dir_all(control.parent().unwrap()).unwrap();
    std::fs::write(
        &control,
        format!(
            "Package: {PACKAGE}\nVersion: {DEB_VERSION}\nArchitecture: amd64\nDepends: postgresql-15\n\
             Maintainer: Launch tests <tests@launch.invalid>\n\
             Description: pgvector {VERSION} for PostgreSQL 15, built by Launch's tests for the lab\n \
             pgvector {VERSION} compiled from Debian's source tarball against Debian 12's\n \
             PostgreSQL 15, standing in for PGDG's postgresql-15-pgvector on real hosts.\n"
        ),
    )
    .unwrap();
    // The temp dir is 0700 and make's directories follow the umask; dpkg wants 0755.
    run(Command::new("chmod")
        .arg("-R")
        .arg("u=rwX,go=rX")
        .arg(&root));
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    let part = cached.with_extension(format!("deb.{}.part", std::process::id()));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&root)
        .arg(&part));
    std::fs::rename(&part, cached).unwrap();
}

/// Runs `cmd`, which must succeed; its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let mut start = all.len().saturating_sub(4000);
        while !all.is_char_boundary(start) {
            start += 1;
        }
        let tail = &all[start..];
        panic!("{cmd:?} failed ({}):\n{tail}", out.status);
    }
    stdout
}
