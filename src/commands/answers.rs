//! Answers for unattended installs: a flat YAML map of question keys to values, overridden by
//! `LAUNCH_<KEY>` environment variables (`LAUNCH_PUBLIC_URL=...` answers `public_url`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{FileProblem, LaunchError};

/// Answers from `LAUNCH_<KEY>` environment variables, for the keys the caller knows (other
/// `LAUNCH_*` variables configure launch-tui itself and are not answers).
pub fn env_answers(known: &[String]) -> BTreeMap<String, String> {
    std::env::vars()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("LAUNCH_")?.to_ascii_lowercase();
            known.contains(&key).then_some((key, v))
        })
        .collect()
}

pub fn load_answers(path: &Path) -> Result<BTreeMap<String, String>, LaunchError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
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
                        format!("key {k:?} is not a string"),
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
