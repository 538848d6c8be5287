//! The release zip has Vikunja's layout and the binary runs with only glibc-level libraries.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::{
    arch_name, release, run_with_timeout, sha256_hex, zip_names, FIXTURE_BIN, VERSIONS,
};

#[test]
fn release_zips_have_vikunjas_layout_and_checksums() {
    for (version, broken) in VERSIONS {
        let r = release(version);
        let name = format!("vikunja-{version}-linux-{}", arch_name());
        assert_eq!(
            r.zip.file_name().unwrap().to_string_lossy(),
            format!("{name}-full.zip")
        );
        let zip_bytes = std::fs::read(&r.zip).unwrap();
        assert_eq!(
            r.printed_sha256,
            sha256_hex(&zip_bytes),
            "printed zip sha256"
        );

        let mut names = zip_names(&r.zip);
        names.sort();
        let mut expected = vec![
            name.clone(),
            format!("{name}.sha256"),
            "config.yml.sample".to_string(),
            "LICENSE".to_string(),
        ];
        expected.sort();
        assert_eq!(names, expected);

        let binary = std::fs::read(&r.binary).unwrap();
        let mode = std::fs::metadata(&r.binary).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "binary mode from the zip");
        let sum_file = std::fs::read_to_string(r.dir.join(format!("{name}.sha256"))).unwrap();
        assert_eq!(sum_file, format!("{}  {name}\n", sha256_hex(&binary)));
        let trailer = format!("\nFIXTURE-VERSION {version} broken={}\n", u8::from(broken));
        assert!(binary.ends_with(trailer.as_bytes()), "trailer of {version}");
        assert!(binary.starts_with(b"\x7fELF"));

        let out = run_with_timeout(Command::new(&r.binary).arg("version"), None);
        assert!(out.status.success());
        let mut lines = out.stdout.lines();
        assert_eq!(
            lines.next(),
            Some(format!("Vikunja api version {version}").as_str())
        );
        assert!(lines.next().unwrap_or("").starts_with("Built with "));
    }
}

#[test]
fn repackaging_a_packaged_binary_does_not_stack_trailers() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        Command::new(&release("v3.0.0").binary)
            .args(["package", "--version", "v9.9.9", "--out"])
            .arg(out_dir.path()),
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let dir = out_dir.path().join("x");
    crate::harness::unzip(
        &out_dir
            .path()
            .join(format!("vikunja-v9.9.9-linux-{}-full.zip", arch_name())),
        &dir,
    );
    let binary = std::fs::read(dir.join(format!("vikunja-v9.9.9-linux-{}", arch_name()))).unwrap();
    let text = String::from_utf8_lossy(&binary[binary.len() - 200..]).into_owned();
    assert_eq!(text.matches("FIXTURE-VERSION").count(), 1, "{text:?}");
    assert!(text.ends_with("\nFIXTURE-VERSION v9.9.9 broken=0\n"));
}

#[test]
fn bad_package_version_is_refused_with_help() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        Command::new(FIXTURE_BIN)
            .args(["package", "--version", "2.0", "--out"])
            .arg(out_dir.path()),
        None,
    );
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("`2.0` is not a fixture version") && out.stderr.contains("help:"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_dir(out_dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// Built on Debian 12, it must also run in Debian 12 and 13 containers: nothing beyond glibc,
/// and no glibc symbol newer than Debian 12's 2.36.
#[test]
fn binary_needs_only_glibc_level_libraries() {
    let binary = &release("v1.0.0").binary;
    let out = run_with_timeout(Command::new("ldd").arg(binary), None);
    assert!(out.status.success(), "ldd: {out:?}");
    let allowed = [
        "linux-vdso.so",
        "libc.so",
        "libm.so",
        "libgcc_s.so",
        "ld-linux",
        "libdl.so",
        "libpthread.so",
        "librt.so",
    ];
    for line in out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            allowed.iter().any(|a| line.contains(a)),
            "unexpected library: {line}"
        );
    }
    let out = run_with_timeout(Command::new("objdump").arg("-T").arg(binary), None);
    assert!(
        out.status.success(),
        "objdump (binutils) is needed: {out:?}"
    );
    let newest = out
        .stdout
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .expect("the binary links glibc symbols");
    assert!(
        newest <= (2, 36),
        "needs GLIBC_{}.{}, newer than Debian 12's 2.36",
        newest.0,
        newest.1
    );
}
