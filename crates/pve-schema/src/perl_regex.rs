//! Translates the Perl regexes found in `pattern` values of the PVE schema into `regex` crate syntax.
//! PVE matches them as `m/^$pattern$/`; `anchored` reproduces that, Perl quirks included.
//! Hand-written because no crate converts Perl's stringified `qr//` form (`(?^i:...)`).

use regex::{Regex, RegexBuilder};

/// Perl's Unicode `\w` under `/i` with `{0,256}` (the pool comment pattern) needs more than
/// the `regex` default of 10 MiB; PVE's inputs are character strings, so keep Unicode classes.
const SIZE_LIMIT: usize = 256 << 20;

/// Flags the `regex` crate understands; `(?^...)` resets all of them to off unless listed.
const RESETTABLE_FLAGS: &str = "imsx";

/// Rewrites one Perl pattern (not anchored) into the `regex` crate dialect.
///
/// Handled: `(?^flags:...)` (Perl 5.14+ stringified `qr//`), `\0` (NUL), `{,n}` (Perl 5.34+
/// means `{0,n}`; PVE 8 and 9 run Perl 5.36), `$` (end or before a final newline in Perl),
/// `\Z`, and escaped punctuation that `regex` would reject.
pub fn translate(perl: &str) -> Result<String, String> {
    let chars: Vec<char> = perl.chars().collect();
    let mut out = String::with_capacity(perl.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err(format!("pattern {perl:?} ends with a lone backslash"));
                };
                i += 2;
                match next {
                    '0' if !chars.get(i).is_some_and(|d| d.is_ascii_digit()) => {
                        out.push_str(r"\x00")
                    }
                    'Z' if !in_class => out.push_str(r"(?:\n?\z)"),
                    c if c.is_ascii_alphanumeric() => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if is_regex_meta(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    // `\@`, `\/`, `\:` ... are plain literals in Perl; `regex` is stricter about
                    // escapes inside classes, so drop the backslash.
                    c => out.push(c),
                }
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                i += 1;
                // A leading `^` and a leading `]` belong to the class syntax, not its end.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                continue;
            }
            '[' if in_class => {
                // POSIX class like `[:alnum:]` inside a bracket expression.
                if chars.get(i + 1) == Some(&':') {
                    if let Some(end) = find_posix_end(&chars, i + 2) {
                        out.extend(&chars[i..=end]);
                        i = end + 1;
                        continue;
                    }
                }
                out.push_str(r"\[");
                i += 1;
                continue;
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
                i += 1;
                continue;
            }
            '$' if !in_class => {
                out.push_str(r"(?:\n?\z)");
                i += 1;
                continue;
            }
            '(' if !in_class
                && chars.get(i + 1) == Some(&'?')
                && chars.get(i + 2) == Some(&'^') =>
            {
                let mut j = i + 3;
                let mut on = String::new();
                while let Some(&f) = chars.get(j) {
                    if f == ':' {
                        break;
                    }
                    if !f.is_ascii_alphabetic() {
                        return Err(format!("unsupported group flags in pattern {perl:?}"));
                    }
                    // Perl-only flags (n, a, u, l, d, p) do not change what matches here.
                    if RESETTABLE_FLAGS.contains(f) && !on.contains(f) {
                        on.push(f);
                    }
                    j += 1;
                }
                if chars.get(j) != Some(&':') {
                    return Err(format!("unterminated (?^...) group in pattern {perl:?}"));
                }
                let off: String = RESETTABLE_FLAGS
                    .chars()
                    .filter(|f| !on.contains(*f))
                    .collect();
                out.push_str("(?");
                out.push_str(&on);
                if !off.is_empty() {
                    out.push('-');
                    out.push_str(&off);
                }
                out.push(':');
                i = j + 1;
                continue;
            }
            '{' if !in_class && chars.get(i + 1) == Some(&',') => {
                let digits: String = chars[i + 2..]
                    .iter()
                    .take_while(|d| d.is_ascii_digit())
                    .collect();
                if !digits.is_empty() && chars.get(i + 2 + digits.len()) == Some(&'}') {
                    out.push_str("{0,");
                    out.push_str(&digits);
                    out.push('}');
                    i += 3 + digits.len();
                    continue;
                }
                out.push_str(r"\{");
                i += 1;
                continue;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if in_class {
        return Err(format!("unterminated character class in pattern {perl:?}"));
    }
    Ok(out)
}

/// Builds the regex PVE effectively runs: `m/^$pattern$/`. The pattern is interpolated, not
/// grouped, so a top-level `a|b` means `^a` or `b$`, exactly as on the server.
pub fn anchored(perl: &str) -> Result<Regex, String> {
    let body = translate(perl)?;
    RegexBuilder::new(&format!(r"^{body}(?:\n?\z)"))
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| format!("pattern {perl:?} does not compile after translation: {e}"))
}

fn is_regex_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

fn find_posix_end(chars: &[char], from: usize) -> Option<usize> {
    let mut j = from;
    while let Some(&c) = chars.get(j) {
        if c == ':' {
            return (chars.get(j + 1) == Some(&']')).then_some(j + 1);
        }
        if !c.is_ascii_alphabetic() {
            return None;
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(perl: &str, value: &str) -> bool {
        match anchored(perl) {
            Ok(re) => re.is_match(value),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn caret_flag_groups_reset_and_set_flags() {
        assert_eq!(translate("(?^:abc)").as_deref(), Ok("(?-imsx:abc)"));
        assert_eq!(translate("(?^i:abc)").as_deref(), Ok("(?i-msx:abc)"));
        assert!(m("(?^i:[a-z]+)", "ABC"));
        assert!(!m("(?^:[a-z]+)", "ABC"));
        // An inner (?^:...) turns case-insensitivity off again, as in Perl.
        assert!(!m("(?^i:a(?^:b))", "AB"));
        assert!(m("(?^i:a(?^:b))", "Ab"));
    }

    #[test]
    fn nul_escape_and_open_lower_bound() {
        assert_eq!(translate(r"a\0b").as_deref(), Ok(r"a\x00b"));
        assert!(m(
            r"(?^:(?:\w+=[^\x00-\x08]*)(?:\0\w+=[^\x00-\x08]*)*)",
            "A=1\0B=2"
        ));
        assert_eq!(translate("[a-z]{,8}").as_deref(), Ok("[a-z]{0,8}"));
        assert!(m("[A-Za-z0-9\\-_\\s]{,8}", "ab cd"));
        assert!(!m("[A-Za-z0-9\\-_\\s]{,8}", "abcdefghi"));
    }

    #[test]
    fn dollar_allows_one_trailing_newline_like_perl() {
        assert!(m(r"\d+", "12\n"));
        assert!(!m(r"\d+", "12\n\n"));
        assert!(m(r"^(\d+(\.\d+)?)([KMGT])?$", "8G"));
    }

    #[test]
    fn top_level_alternation_is_not_grouped() {
        // Perl interpolates: m/^a\d|b$/ is "starts with a digit-suffixed a" OR "ends with b".
        assert!(m(
            r"/dev/parport\d+|/dev/usb/lp\d+",
            "/dev/parport0-anything"
        ));
        assert!(m(r"/dev/parport\d+|/dev/usb/lp\d+", "junk/dev/usb/lp1"));
        assert!(!m(r"/dev/parport\d+|/dev/usb/lp\d+", "junk"));
    }

    #[test]
    fn escaped_punctuation_and_posix_classes() {
        assert!(m(
            r"(?^:^(?^:[^\s:/]+)\@(?^:[A-Za-z][A-Za-z0-9\.\-_]+)$)",
            "root@pam"
        ));
        assert!(!m(
            r"(?^:^(?^:[^\s:/]+)\@(?^:[A-Za-z][A-Za-z0-9\.\-_]+)$)",
            "root@1pam"
        ));
        assert!(m(r"[[:alnum:]\-\.]+", "host-1.example"));
        assert!(m(r"(?^i:[\(\)-_.\w\d\s]{0,256})", "My Pool (2)"));
    }

    #[test]
    fn malformed_patterns_are_reported_not_panicked() {
        assert!(translate("[abc").is_err());
        assert!(translate("abc\\").is_err());
        assert!(anchored("a(b").is_err());
    }
}
