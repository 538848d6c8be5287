//! Which Vikunja version this copy of the binary pretends to be.
//! One build serves every fixture version: `package` appends a one-line trailer
//! (`\nFIXTURE-VERSION v2.0.0 broken=0\n`) to a copy of the ELF file, and each run reads it back.

use anyhow::Context;

use crate::error::FixtureError;

pub const TRAILER_TAG: &str = "FIXTURE-VERSION";
/// Enough for the longest trailer we write; reading only the tail keeps start-up cheap.
const TAIL_LEN: u64 = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    pub broken: bool,
}

impl BuildInfo {
    /// What a plain `cargo build` output (no trailer) reports: it knows every migration.
    pub fn dev() -> Self {
        BuildInfo {
            version: "v0.0.0-dev".to_string(),
            broken: false,
        }
    }

    pub fn new(version: &str, broken: bool) -> Result<Self, FixtureError> {
        parse_version(version)?;
        Ok(BuildInfo {
            version: version.to_string(),
            broken,
        })
    }

    /// Reads the trailer of the running executable; no trailer means a development build.
    pub fn of_running_binary() -> anyhow::Result<Self> {
        use std::io::{Read, Seek, SeekFrom};
        let path = "/proc/self/exe";
        let mut file = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
        let len = file
            .metadata()
            .with_context(|| format!("reading {path}"))?
            .len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL_LEN)))
            .with_context(|| format!("reading {path}"))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)
            .with_context(|| format!("reading {path}"))?;
        Ok(Self::from_tail(&tail).unwrap_or_else(Self::dev))
    }

    pub fn from_tail(tail: &[u8]) -> Option<Self> {
        let body = tail.strip_suffix(b"\n")?;
        let start = body.iter().rposition(|b| *b == b'\n')? + 1;
        let line = std::str::from_utf8(&body[start..]).ok()?;
        let mut words = line.split(' ');
        if words.next()? != TRAILER_TAG {
            return None;
        }
        let version = words.next()?;
        let broken = match words.next()? {
            "broken=0" => false,
            "broken=1" => true,
            _ => return None,
        };
        if words.next().is_some() {
            return None;
        }
        Self::new(version, broken).ok()
    }

    pub fn trailer(&self) -> String {
        format!(
            "\n{TRAILER_TAG} {} broken={}\n",
            self.version,
            u8::from(self.broken)
        )
    }

    pub fn is_dev(&self) -> bool {
        self.version.ends_with("-dev")
    }

    /// Whether this build includes what was introduced in `since`.
    pub fn at_least(&self, since: (u64, u64, u64)) -> bool {
        self.is_dev() || parse_version(&self.version).is_ok_and(|v| v >= since)
    }
}

/// The executable bytes without a trailer, so packaging a packaged binary does not stack trailers.
pub fn strip_trailer(bytes: &[u8]) -> &[u8] {
    let tail_start = bytes.len().saturating_sub(TAIL_LEN as usize);
    if BuildInfo::from_tail(&bytes[tail_start..]).is_none() {
        return bytes;
    }
    let body = &bytes[..bytes.len() - 1];
    match body.iter().rposition(|b| *b == b'\n') {
        Some(newline) => &bytes[..newline],
        None => bytes,
    }
}

/// `v1.2.3` or `v1.2.3-suffix` to (1, 2, 3).
pub fn parse_version(value: &str) -> Result<(u64, u64, u64), FixtureError> {
    let bad = || FixtureError::BadVersion {
        value: value.to_string(),
    };
    let rest = value.strip_prefix('v').ok_or_else(bad)?;
    let core = rest.split_once('-').map_or(
        rest,
        |(core, suffix)| {
            if suffix.is_empty() {
                ""
            } else {
                core
            }
        },
    );
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut numbers = [0u64; 3];
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        *slot = part.parse().map_err(|_| bad())?;
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(bad());
    }
    Ok((numbers[0], numbers[1], numbers[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_through_a_fake_executable() {
        let info = BuildInfo::new("v3.0.0", true).unwrap();
        let mut exe = b"\x7fELF....binary bytes\n with newlines\n".to_vec();
        exe.extend_from_slice(info.trailer().as_bytes());
        assert_eq!(BuildInfo::from_tail(&exe), Some(info));
        assert_eq!(
            strip_trailer(&exe),
            b"\x7fELF....binary bytes\n with newlines\n"
        );
    }

    #[test]
    fn binary_without_trailer_is_left_alone() {
        let exe = b"\x7fELF plain\n".to_vec();
        assert_eq!(BuildInfo::from_tail(&exe), None);
        assert_eq!(strip_trailer(&exe), exe.as_slice());
    }

    #[test]
    fn versions_parse_and_bad_ones_are_named() {
        assert_eq!(parse_version("v2.0.0").unwrap(), (2, 0, 0));
        assert_eq!(parse_version("v2.10.3-rc1").unwrap(), (2, 10, 3));
        for bad in ["2.0.0", "v2.0", "v2.0.0-", "vx.0.0", "v2.0.0 ", "v1.0.0/.."] {
            let err = parse_version(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("help:"), "{err}");
        }
    }

    #[test]
    fn feature_gates_follow_the_version() {
        let v1 = BuildInfo::new("v1.0.0", false).unwrap();
        let v2 = BuildInfo::new("v2.0.0", false).unwrap();
        assert!(!v1.at_least((2, 0, 0)));
        assert!(v2.at_least((2, 0, 0)));
        assert!(BuildInfo::dev().at_least((99, 0, 0)));
    }
}
