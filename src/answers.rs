//! Answers for unattended installs: a flat YAML map of question keys to values, overridden by
//! `LAUNCH_<KEY>` environment variables (`LAUNCH_PUBLIC_URL=...` answers `public_url`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{FileProblem, LaunchError};

/// Answers from `LAUNCH_<KEY>` environment variables, for the keys the caller knows (other
/// `LAUNCH_*` variables configure launch-tui itself and are not answers).
/// Variables that are not valid UTF-8 are skipped unless they would answer a key, which is
/// refused (exit 2) rather than guessed at.
pub fn env_answers(known: &[String]) -> Result<BTreeMap<String, String>, LaunchError> {
    let mut out = BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        let Some(key) = k
            .to_str()
            .and_then(|k| k.strip_prefix("LAUNCH_"))
            .map(str::to_ascii_lowercase)
        else {
            continue;
        };
        if !known.contains(&key) {
            continue;
        }
        match v.into_string() {
            Ok(v) => {
                out.insert(key, v);
            }
            Err(raw) => {
                return Err(LaunchError::bad_input(
                    format!(
                        "LAUNCH_{} = \"{}\"",
                        key.to_ascii_uppercase(),
                        crate::escape::shown(&raw.to_string_lossy())
                    ),
                    "the value is not valid UTF-8",
                    "set it to UTF-8 text, or unset it",
                ))
            }
        }
    }
    Ok(out)
}

/// The largest answers file read, and the deepest nesting of `[`/`{` in it: a YAML parser's
/// time and memory grow with both, and an answers file is a flat map.
pub const MAX_ANSWERS_BYTES: u64 = 1024 * 1024;
pub const MAX_YAML_DEPTH: usize = 32;

/// Reads a YAML file from outside with its size and flow nesting capped before any parsing.
pub fn read_capped_yaml(path: &Path) -> std::io::Result<Result<String, String>> {
    use std::io::Read;
    let mut text = String::new();
    let f = std::fs::File::open(path)?;
    let n = f.take(MAX_ANSWERS_BYTES + 1).read_to_string(&mut text)?;
    if n as u64 > MAX_ANSWERS_BYTES {
        return Ok(Err(format!(
            "larger than {} KiB; an answers file is a short list of `key: value` lines",
            MAX_ANSWERS_BYTES / 1024
        )));
    }
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_YAML_DEPTH {
        return Ok(Err(format!(
            "brackets nested {max} deep (at most {MAX_YAML_DEPTH}); an answers file is a flat map"
        )));
    }
    Ok(Ok(text))
}

pub fn load_answers(path: &Path) -> Result<BTreeMap<String, String>, LaunchError> {
    let text = read_capped_yaml(path).map_err(|e| {
        let problem = if e.kind() == std::io::ErrorKind::NotFound {
            "the answers file does not exist".to_string()
        } else {
            format!("cannot read the answers file: {e}")
        };
        LaunchError::bad_input(
            path.display().to_string(),
            problem,
            "check the path given to --answers (a YAML map such as `public_url: https://tasks.example.com`)",
        )
    })?;
    let problem = |line: Option<usize>,
                   column: Option<usize>,
                   field: Option<String>,
                   message: String| {
        LaunchError::InvalidFile {
            file: path.to_path_buf(),
            problems: vec![FileProblem {
                file: path.to_path_buf(),
                line,
                column,
                field,
                message,
                help: Some(
                    "answers are a flat YAML map of question keys to values; see `launch-tui profiles show PROFILE` for the keys".into(),
                ),
            }],
        }
    };
    let text = text.map_err(|m| problem(None, None, None, m))?;
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).map_err(|e| {
        let loc = e.location();
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        problem(
            loc.as_ref().map(|l| l.line()),
            loc.as_ref().map(|l| l.column()),
            None,
            msg,
        )
    })?;
    let mut out = BTreeMap::new();
    match value {
        serde_yaml_ng::Value::Null => {}
        serde_yaml_ng::Value::Mapping(m) => {
            for (k, v) in m {
                let Some(key) = k.as_str().map(str::to_string) else {
                    return Err(problem(
                        None,
                        None,
                        None,
                        format!(
                            "key `{}` is not a string",
                            crate::escape::shown(&format!("{k:?}"))
                        ),
                    ));
                };
                let val = match v {
                    serde_yaml_ng::Value::String(s) => s,
                    serde_yaml_ng::Value::Bool(b) => b.to_string(),
                    serde_yaml_ng::Value::Number(n) => n.to_string(),
                    serde_yaml_ng::Value::Null => String::new(),
                    _ => {
                        let line = text
                            .lines()
                            .position(|l| l.trim_start().starts_with(&format!("{key}:")))
                            .map(|i| i + 1);
                        return Err(problem(
                            line,
                            Some(1),
                            Some(key.clone()),
                            "expected a single value, found a list or map".into(),
                        ));
                    }
                };
                out.insert(key, val);
            }
        }
        _ => {
            return Err(problem(
                Some(1),
                Some(1),
                None,
                "expected a map of `key: value` lines".into(),
            ))
        }
    }
    Ok(out)
}
