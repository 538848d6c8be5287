//! What a user sees when something goes wrong: each error says what happened, with which
//! value, and what to do next (`help: ...`), and maps to one of the documented exit codes.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// The process exit codes documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    Failed = 1,
    BadInput = 2,
    Locked = 3,
    Unhealthy = 4,
}

/// One problem found in a file the user wrote (a profile, an answers file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field, as a dotted path (`versions[0].sha256`), when known.
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// One invalid value given on the command line, in an answers file or at a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub field: String,
    pub value: String,
    pub problem: String,
    pub help: String,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value came from outside: shown escaped and cut short, never raw.
        write!(
            f,
            "{} = \"{}\": {}\n  help: {}",
            self.field,
            crate::escape::shown(&self.value),
            self.problem,
            self.help
        )
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| format!("- {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Error)]
pub enum LaunchError {
    /// The command line itself is wrong (clap already formatted the message).
    #[error("{0}")]
    Usage(String),

    #[error("{what}: {problem}\n  help: {help}")]
    BadInput {
        what: String,
        problem: String,
        help: String,
    },

    #[error("{} problem(s) in {}:\n{}", .problems.len(), .file.display(), join(.problems))]
    InvalidFile {
        file: PathBuf,
        problems: Vec<FileProblem>,
    },

    #[error("{} invalid value(s); nothing was changed:\n{}", .0.len(), join(.0))]
    InvalidValues(Vec<InvalidValue>),

    #[error("`{0}` is not implemented yet\n  help: see the README for what this version can do")]
    NotImplemented(&'static str),

    #[error("{0}")]
    Locked(String),

    #[error("{0}")]
    Unhealthy(String),

    #[error(transparent)]
    Pve(#[from] crate::pve::PveError),

    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

impl LaunchError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            LaunchError::Usage(_)
            | LaunchError::BadInput { .. }
            | LaunchError::InvalidFile { .. }
            | LaunchError::InvalidValues(_) => ExitCode::BadInput,
            LaunchError::Locked(_) => ExitCode::Locked,
            LaunchError::Unhealthy(_) => ExitCode::Unhealthy,
            // What the user typed or pointed at (a token file, a fingerprint) is bad input;
            // anything the node or the network did is an operation failure.
            LaunchError::Pve(e) => {
                use crate::pve::PveError as P;
                match e {
                    P::InvalidHost { .. }
                    | P::InvalidInput { .. }
                    | P::InvalidUpid { .. }
                    | P::InvalidFingerprint { .. }
                    | P::InvalidToken { .. }
                    | P::TokenFile { .. }
                    | P::TokenFileMode { .. } => ExitCode::BadInput,
                    _ => ExitCode::Failed,
                }
            }
            LaunchError::NotImplemented(_) | LaunchError::Failed(_) => ExitCode::Failed,
        }
    }

    pub fn bad_input(
        what: impl Into<String>,
        problem: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        LaunchError::BadInput {
            what: what.into(),
            problem: problem.into(),
            help: help.into(),
        }
    }
}

pub type Result<T, E = LaunchError> = std::result::Result<T, E>;
