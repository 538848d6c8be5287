//! `fixture-app package`: writes a release zip shaped like Vikunja's `-full.zip`
//! (`vikunja-vX-linux-amd64`, its `.sha256`, `config.yml.sample`, `LICENSE`) whose binary is a copy
//! of this one with a version trailer appended.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::build_info::{strip_trailer, BuildInfo};

pub struct Packaged {
    pub zip_path: PathBuf,
    pub sha256: String,
}

const CONFIG_SAMPLE: &str = "\
# Sample configuration for the Vikunja fixture (a stand-in used by Launch's tests).
# Keys and defaults follow Vikunja's config.yml; unknown sections are ignored.
service:
  # Required: the URL users reach Vikunja at. The server refuses to start without it.
  publicurl: \"\"
  interface: \":3456\"
  # Holds the sqlite file and the files folder when their paths are relative.
  rootpath: \"\"
  # Signs login sessions. Keep it stable across updates or everyone is logged out.
  secret: \"\"
  timezone: GMT
database:
  # sqlite, postgres or mysql
  type: sqlite
  path: vikunja.db
  host: localhost
  user: vikunja
  password: \"\"
  database: vikunja
files:
  basepath: files
  maxsize: 20MB
log:
  standard: stdout
";

const LICENSE: &str = "\
fixture-app: a small Vikunja stand-in for Launch's end-to-end tests.
Licensed under the MIT license or the Apache License 2.0, at your option.
It contains no code of Vikunja (which is AGPL-3.0); it only imitates its interfaces.
";

pub fn arch_name() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn package(exe: &Path, info: &BuildInfo, out_dir: &Path) -> anyhow::Result<Packaged> {
    let original = std::fs::read(exe).with_context(|| format!("reading {}", exe.display()))?;
    let mut binary = strip_trailer(&original).to_vec();
    binary.extend_from_slice(info.trailer().as_bytes());
    let binary_sum = hex::encode(Sha256::digest(&binary));

    let name = format!("vikunja-{}-linux-{}", info.version, arch_name());
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let zip_path = out_dir.join(format!("{name}-full.zip"));
    let partial = out_dir.join(format!(".{name}-full.zip.partial"));

    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    // A fixed timestamp: the same binary always packs to the same zip.
    let base = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let sum_name = format!("{name}.sha256");
    let sum_line = format!("{binary_sum}  {name}\n");
    let entries: [(&str, &[u8], u32); 4] = [
        (&name, &binary, 0o755),
        (&sum_name, sum_line.as_bytes(), 0o644),
        ("config.yml.sample", CONFIG_SAMPLE.as_bytes(), 0o644),
        ("LICENSE", LICENSE.as_bytes(), 0o644),
    ];
    for (entry, content, mode) in entries {
        zip.start_file(entry, base.unix_permissions(mode))
            .with_context(|| format!("adding {entry} to the zip"))?;
        zip.write_all(content)
            .with_context(|| format!("adding {entry} to the zip"))?;
    }
    let file = zip.finish().context("finishing the zip")?;
    file.sync_all().context("flushing the zip")?;
    drop(file);
    std::fs::rename(&partial, &zip_path)
        .with_context(|| format!("moving the zip to {}", zip_path.display()))?;

    let zip_bytes =
        std::fs::read(&zip_path).with_context(|| format!("reading {}", zip_path.display()))?;
    Ok(Packaged {
        zip_path,
        sha256: hex::encode(Sha256::digest(&zip_bytes)),
    })
}
