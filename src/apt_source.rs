//! A profile's extra apt repositories (`apt_sources:`): each one's deb822 file, rendered by a
//! writer that refuses any value that could become syntax (every value was checked at load
//! too), its signing key in its own keyring, and the `apt-get update` that must accept them.

use anyhow::{bail, Result};

use crate::ct::{run, CtAccess};
use crate::engine::Reporter;
use crate::profile::{AptSource, Profile};

/// Where a source's key goes: apt reads an armored key from a `.asc` file named by `Signed-By`.
pub fn keyring_path(source: &AptSource) -> String {
    format!("/etc/apt/keyrings/launch-{}.asc", source.name)
}

pub fn sources_path(source: &AptSource) -> String {
    format!("/etc/apt/sources.list.d/launch-{}.sources", source.name)
}

/// A value deb822 cannot hold as one token of a one-line field.
#[derive(Debug, thiserror::Error)]
#[error("apt source `{name}`: {field} value `{value}` cannot be written into a deb822 file: {problem}\nhelp: fix `apt_sources` in the profile (`launch-tui profiles lint` names the line)")]
pub struct Deb822Error {
    name: String,
    field: &'static str,
    value: String,
    problem: &'static str,
}

/// Writes one deb822 stanza, a field at a time; each value must be one token of printable
/// ASCII, so no value can end a field, start another or comment one out.
struct Deb822 {
    name: String,
    text: String,
}

impl Deb822 {
    fn new(name: &str, comment: &str) -> Deb822 {
        Deb822 {
            name: name.to_string(),
            text: format!("# {comment}\n"),
        }
    }

    fn field(&mut self, name: &'static str, values: &[&str]) -> Result<&mut Self, Deb822Error> {
        let refuse = |value: &str, problem| Deb822Error {
            name: self.name.clone(),
            field: name,
            value: crate::escape::shown(value),
            problem,
        };
        if values.is_empty() {
            return Err(refuse("", "the field needs at least one value"));
        }
        for v in values {
            if v.is_empty() {
                return Err(refuse(v, "it is empty"));
            }
            if !v.chars().all(|c| c.is_ascii_graphic()) {
                return Err(refuse(
                    v,
                    "it holds a space, a line break or a character that is not printable ASCII",
                ));
            }
            if v.starts_with('#') {
                return Err(refuse(v, "it starts with `#`"));
            }
        }
        self.text.push_str(name);
        self.text.push_str(": ");
        self.text.push_str(&values.join(" "));
        self.text.push('\n');
        Ok(self)
    }
}

/// The deb822 `.sources` file of one apt source (pure: profile data in, text out).
pub fn sources_file(profile: &str, source: &AptSource) -> Result<String, Deb822Error> {
    let suites: Vec<&str> = source.suites.iter().map(|s| s.as_str()).collect();
    let components: Vec<&str> = source.components.iter().map(|s| s.as_str()).collect();
    let keyring = keyring_path(source);
    let mut w = Deb822::new(
        source.name.as_str(),
        &format!(
            "Written by launch-tui from profile {profile} (apt source {}).",
            source.name
        ),
    );
    w.field("Types", &["deb"])?
        .field("URIs", &[source.uri.as_str()])?
        .field("Suites", &suites)?
        .field("Components", &components)?
        .field("Signed-By", &[&keyring])?;
    Ok(w.text)
}

/// Writes every apt source of the profile (its key 0644, its sources file 0644) and runs
/// `apt-get update --error-on=any`: a repository apt cannot fetch or whose signature it
/// cannot verify fails here, named, before any of its packages is asked for.
pub fn apply(ct: &dyn CtAccess, vmid: u32, profile: &Profile, rep: &Reporter) -> Result<()> {
    if profile.apt_sources.is_empty() {
        return Ok(());
    }
    run(
        ct,
        vmid,
        &["mkdir", "-p", "-m", "0755", "/etc/apt/keyrings"],
    )?;
    for s in &profile.apt_sources {
        // Checked at load; read again here, from the same profile files.
        let key = profile
            .assets
            .text(&s.key)
            .map_err(|e| anyhow::anyhow!("apt source `{}`: key file `{}`: {e}", s.name, s.key))?;
        let text = sources_file(profile.name.as_str(), s)?;
        ct.write(vmid, &keyring_path(s), key.as_bytes(), 0o644, None)?;
        ct.write(vmid, &sources_path(s), text.as_bytes(), 0o644, None)?;
        rep.info(format!(
            "apt source {}: {} ({}), key {}",
            s.name,
            s.uri.as_str(),
            s.suites
                .iter()
                .map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            keyring_path(s)
        ));
    }
    let out = ct.exec(
        vmid,
        &[
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "update",
            "-q",
            "--error-on=any",
        ],
    )?;
    if out.ok() {
        rep.info("apt-get update --error-on=any accepted every source");
        return Ok(());
    }
    bail!("{}", update_failure(profile, vmid, &out))
}

/// Names the apt sources that `apt-get update`'s output blames, with its lines about them.
fn update_failure(profile: &Profile, vmid: u32, out: &crate::ct::ExecOutput) -> String {
    let all = format!("{}\n{}", out.stdout, out.stderr);
    let mut blamed = Vec::new();
    for s in &profile.apt_sources {
        let uri = s.uri.as_str().trim_end_matches('/');
        let lines: Vec<&str> = all
            .lines()
            .filter(|l| {
                l.contains(uri)
                    && (l.starts_with("E:") || l.starts_with("W:") || l.starts_with("Err:"))
            })
            .collect();
        if !lines.is_empty() {
            blamed.push(format!(
                "apt source `{}` ({}) of the profile failed apt's check:\n    {}\n  help: check that the key file `{}` holds the key that signs this repository (`gpg --show-keys {}`), and its uri, suites and components",
                s.name,
                s.uri.as_str(),
                crate::escape::terminal_safe(&lines.join("\n")).replace('\n', "\n    "),
                s.key,
                s.key
            ));
        }
    }
    if blamed.is_empty() {
        let names: Vec<&str> = profile
            .apt_sources
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        format!(
            "`apt-get update --error-on=any` failed in CT {vmid} (exit {}) with the profile's apt sources {} added:\n    {}\n  help: check the container's network and its Debian mirror",
            out.code,
            names.join(", "),
            crate::escape::terminal_safe(&out.tail(12)).replace('\n', "\n    ")
        )
    } else {
        blamed.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(yaml: &str) -> AptSource {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn a_source_renders_as_one_deb822_stanza_with_its_keyring() {
        let s = source(
            "{ name: vendor, uri: 'https://repo.example.org/debian', suites: [bookworm, bookworm-updates], components: [main, non-free-firmware], key: vendor.asc }",
        );
        insta::assert_snapshot!(sources_file("notes", &s).unwrap());
    }

    #[test]
    fn a_value_that_could_become_syntax_is_refused_by_the_writer() {
        let mut w = Deb822::new("x", "c");
        for bad in ["a b", "a\nSigned-By: /tmp/k", "", "#x", "a\tb", "é"] {
            assert!(w.field("Suites", &[bad]).is_err(), "{bad:?} accepted");
        }
        assert!(w.field("Suites", &[]).is_err());
        assert_eq!(w.text, "# c\n", "nothing was written");
    }

    #[test]
    fn values_that_could_become_syntax_never_parse() {
        for bad in [
            "{ name: v, uri: 'https://a.example/x\ny', suites: [s], components: [c], key: k }",
            "{ name: v, uri: 'https://a.example/x y', suites: [s], components: [c], key: k }",
            "{ name: v, uri: 'ftp://a.example/', suites: [s], components: [c], key: k }",
            "{ name: v, uri: 'https://u:p@a.example/', suites: [s], components: [c], key: k }",
            "{ name: v, uri: 'https://a.example/', suites: ['a b'], components: [c], key: k }",
            "{ name: v, uri: 'https://a.example/', suites: ['a/../b'], components: [c], key: k }",
            "{ name: v, uri: 'https://a.example/', suites: ['a//b'], components: [c], key: k }",
            "{ name: v, uri: 'https://a.example/', suites: ['a/'], components: [c], key: k }",
            "{ name: v, uri: 'https://a.example/', suites: [s], components: [\"c\\nX: y\"], key: k }",
            "{ name: 'V x', uri: 'https://a.example/', suites: [s], components: [c], key: k }",
        ] {
            assert!(
                serde_yaml_ng::from_str::<AptSource>(bad).is_err(),
                "{bad} parsed"
            );
        }
    }
}
