//! Errors: `LoadError` for reading a schema file, `Rejection` for a request PVE would refuse.
//! A `Rejection` carries exactly what the real API answers (status, reason phrase, JSON body).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Why a schema file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "cannot find the PVE API schema `{file}`; looked in $PVE_SCHEMA_DIR and for shared/pve-api/{file} in and above: {}\nhelp: set PVE_SCHEMA_DIR to the directory that holds {file} (the repository's ../shared/pve-api)",
        searched_text(.searched)
    )]
    NotFound {
        file: &'static str,
        searched: Vec<PathBuf>,
    },

    #[error("cannot read the PVE API schema {}: {source}\nhelp: check that the file exists and is readable", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the PVE API schema {} is not valid JSON: {source}\nhelp: use the apidata.json from shared/pve-api (the JavaScript wrapper of pve-docs' apidata.js must be stripped)", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("the file {} does not look like a PVE API schema: {detail}\nhelp: expected the apidata.json tree from pve-docs (an array of {{path, text, info, children}} nodes)", .path.display())]
    Shape { path: PathBuf, detail: String },
}

fn searched_text(searched: &[PathBuf]) -> String {
    if searched.is_empty() {
        return "(no candidate directories)".to_string();
    }
    searched
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What PVE answers to a request that fails routing or parameter verification.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// 501, status text "Method 'GET /foo' not implemented"
    NotImplemented { method: String, path: String },
    /// 400 "Parameter verification failed." with PVE's per-parameter messages
    Parameters { errors: BTreeMap<String, String> },
}

const PARAM_FAILED: &str = "Parameter verification failed.";

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::NotImplemented { .. } => 501,
            Rejection::Parameters { .. } => 400,
        }
    }

    /// The HTTP reason phrase: pve-http-server puts the first line of the message there.
    pub fn status_text(&self) -> String {
        match self {
            Rejection::NotImplemented { method, path } => not_implemented_message(method, path),
            Rejection::Parameters { .. } => PARAM_FAILED.to_string(),
        }
    }

    /// The JSON body PVE (libpve-http-server-perl >= 5.2) sends with the error.
    pub fn body(&self) -> serde_json::Value {
        match self {
            Rejection::NotImplemented { method, path } => serde_json::json!({
                "data": null,
                "message": not_implemented_message(method, path),
            }),
            Rejection::Parameters { errors } => serde_json::json!({
                "data": null,
                "errors": errors,
                "message": format!("{PARAM_FAILED}\n"),
            }),
        }
    }
}

fn not_implemented_message(method: &str, path: &str) -> String {
    format!("Method '{method} {path}' not implemented")
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.status_text())?;
        if let Rejection::Parameters { errors } = self {
            for (key, msg) in errors {
                write!(f, "\n{key}: {}", msg.trim_end())?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}
