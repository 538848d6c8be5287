//! The escaping filters: how a value is written into each kind of file Launch renders. Every
//! value a template prints goes through the filter of the template's syntax (from its file
//! name), so a value from an answers file, `--set` or a backup archive is always data, never
//! syntax. A value that a syntax cannot hold safely is refused, never written half-escaped.
//!
//! Hand-written: no maintained crate quotes for nginx, systemd unit files or `.env` files, and
//! YAML/shell quoting here must be exact (round-trip tested against the real parsers).

use std::fmt;

/// The syntax of a rendered file, from its template's name (`config.yml.j2` is YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Yaml,
    Nginx,
    Systemd,
    Env,
    Shell,
}

impl Syntax {
    /// `*.yml|yaml` YAML, `*.conf` nginx, `*.service|timer|socket` systemd, `*.env` env
    /// file, `*.sh` shell; anything else has no known syntax and cannot be rendered.
    pub fn of(template: &str) -> Option<Syntax> {
        let base = template.strip_suffix(".j2").unwrap_or(template);
        let file = base.rsplit('/').next().unwrap_or(base);
        let ext = file.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "yml" | "yaml" => Syntax::Yaml,
            "conf" => Syntax::Nginx,
            "service" | "timer" | "socket" => Syntax::Systemd,
            "env" => Syntax::Env,
            "sh" => Syntax::Shell,
            _ => return None,
        })
    }

    pub const KNOWN: &'static str =
        ".yml/.yaml (YAML), .conf (nginx), .service/.timer/.socket (systemd), .env, .sh (shell)";
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Syntax::Yaml => "a YAML file",
            Syntax::Nginx => "an nginx config",
            Syntax::Systemd => "a systemd unit",
            Syntax::Env => "an environment file",
            Syntax::Shell => "a shell script",
        })
    }
}

/// Characters that stand for themselves in every syntax here, unquoted.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./:@+,=-".contains(c)
}

/// Control characters, including C1, DEL and the Unicode line/paragraph separators and BOM:
/// invisible in a terminal and line breaks to some parsers.
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Writes `value` as one token of `syntax`, or says why it cannot be.
pub fn escape(syntax: Syntax, value: &str) -> Result<String, String> {
    match syntax {
        Syntax::Yaml => Ok(yaml(value)),
        Syntax::Shell => shell(value),
        Syntax::Nginx => nginx(value),
        Syntax::Systemd => systemd(value),
        Syntax::Env => env(value),
    }
}

/// A YAML double-quoted scalar: `"` and `\` escaped, every control character as `\uXXXX`.
fn yaml(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_control(c) || c == '\u{85}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One shell word in single quotes (a `'` becomes `'\''`).
fn shell(v: &str) -> Result<String, String> {
    if v.contains('\0') {
        return Err("it contains a NUL byte".into());
    }
    Ok(format!("'{}'", v.replace('\'', r"'\''")))
}

/// An nginx token: bare when plain, else double-quoted with `"` and `\` escaped. nginx has no
/// way to quote `$` (it starts a variable everywhere), nor a line break.
fn nginx(v: &str) -> Result<String, String> {
    if let Some(c) = v.chars().find(|c| is_control(*c)) {
        return Err(format!(
            "it contains the control character {}",
            show_char(c)
        ));
    }
    if v.contains('$') {
        return Err("it contains `$`, which nginx reads as a variable".into());
    }
    if !v.is_empty() && v.chars().all(|c| plain(c) || "~?!&*%".contains(c)) {
        return Ok(v.to_string());
    }
    Ok(format!(
        "\"{}\"",
        v.replace('\\', r"\\").replace('"', "\\\"")
    ))
}

/// A systemd unit setting's value: only plain characters (any other would be split, unquoted
/// or expanded differently by each setting); `%` doubled (specifiers).
fn systemd(v: &str) -> Result<String, String> {
    match v.chars().find(|c| !(plain(*c) || *c == '%')) {
        Some(c) => Err(format!(
            "it contains {}; a systemd unit takes only letters, digits and _./:@+,=-%",
            show_char(c)
        )),
        None if v.is_empty() => Err("it is empty".into()),
        None => Ok(v.replace('%', "%%")),
    }
}

/// An environment file's value, read the same by systemd's `EnvironmentFile=` and the usual
/// dotenv readers: bare when plain, else single-quoted (literal), else double-quoted when no
/// character needs a backslash there.
fn env(v: &str) -> Result<String, String> {
    if let Some(c) = v.chars().find(|c| is_control(*c)) {
        return Err(format!(
            "it contains the control character {}",
            show_char(c)
        ));
    }
    if v.chars().all(|c| plain(c) || c == '%') {
        return Ok(v.to_string());
    }
    if !v.contains('\'') && !v.contains('\\') {
        return Ok(format!("'{v}'"));
    }
    if !v.contains(['"', '\\', '$', '`']) {
        return Ok(format!("\"{v}\""));
    }
    Err("it holds both `'` and one of \" \\ $ `, which an environment file cannot quote for every reader".into())
}

fn show_char(c: char) -> String {
    if is_control(c) {
        format!("`\\u{{{:x}}}`", c as u32)
    } else {
        format!("`{c}`")
    }
}

/// A whole message made safe for a terminal: line breaks and tabs kept, every other control
/// character escaped.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if is_control(c) => shown(&c.to_string()),
            c => c.to_string(),
        })
        .collect()
}

/// A value from outside as it may be shown in a message: control characters escaped (no
/// escape sequence reaches the terminal) and cut to a readable length, with its size.
pub fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count >= MAX {
            out.push_str(&format!("… ({} bytes)", value.len()));
            return out;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if is_control(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_from_template_name() {
        assert_eq!(Syntax::of("vikunja/config.yml.j2"), Some(Syntax::Yaml));
        assert_eq!(
            Syntax::of("vikunja/nginx-site.conf.j2"),
            Some(Syntax::Nginx)
        );
        assert_eq!(Syntax::of("a/b.service.j2"), Some(Syntax::Systemd));
        assert_eq!(Syntax::of("a/mcp.env.j2"), Some(Syntax::Env));
        assert_eq!(Syntax::of("a/bootstrap.sh.j2"), Some(Syntax::Shell));
        assert_eq!(Syntax::of("a/readme.txt.j2"), None);
        assert_eq!(Syntax::of("a/noext"), None);
    }

    #[test]
    fn values_are_data_in_each_syntax() {
        assert_eq!(yaml("a\"b\n"), r#""a\"b\u000a""#);
        assert_eq!(shell("it's").unwrap(), r"'it'\''s'");
        assert_eq!(nginx("example.com").unwrap(), "example.com");
        assert_eq!(nginx("a b;}").unwrap(), "\"a b;}\"");
        assert!(nginx("a\nserver {").is_err());
        assert!(nginx("$host").is_err());
        assert_eq!(systemd("/var/lib/x%").unwrap(), "/var/lib/x%%");
        assert!(systemd("a b").is_err());
        assert!(systemd("a\nExecStartPre=/bin/sh").is_err());
        assert_eq!(env("abc").unwrap(), "abc");
        assert_eq!(env("a b\"c").unwrap(), "'a b\"c'");
        assert_eq!(env("o'brien").unwrap(), "\"o'brien\"");
        assert!(env("a'b\"c").is_err());
        assert!(env("a\nB=c").is_err());
    }

    #[test]
    fn shown_values_are_escaped_and_short() {
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(shown("\u{9b}x"), "\\x9bx");
        let long = "x".repeat(1 << 20);
        let s = shown(&long);
        assert!(s.len() < 120, "{s}");
        assert!(s.ends_with("(1048576 bytes)"), "{s}");
    }
}
