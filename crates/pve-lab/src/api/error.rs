//! What a handler can answer besides success, each mapped to PVE's status code, reason phrase
//! and body shape.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::auth::{AuthError, Forbidden};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 "Parameter verification failed." with per-parameter messages.
    #[error("Parameter verification failed.")]
    Params(BTreeMap<String, String>),
    #[error("{0}")]
    Rejected(pve_schema::Rejection),
    #[error("{0}")]
    Unauthorized(AuthError),
    #[error("{0}")]
    Forbidden(Forbidden),
    /// Any error a PVE handler raises with `die`: 500 with the message as reason phrase.
    #[error("{0}")]
    Server(String),
    /// A status of our choosing (injected faults, 404 outside the API).
    #[error("{message}")]
    Status { code: u16, message: String },
}

impl ApiError {
    pub fn param(key: &str, msg: impl Into<String>) -> ApiError {
        ApiError::Params(BTreeMap::from([(key.to_string(), msg.into())]))
    }

    pub fn server(msg: impl Into<String>) -> ApiError {
        ApiError::Server(msg.into())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Params(_) => 400,
            ApiError::Rejected(r) => r.status(),
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::Server(_) => 500,
            ApiError::Status { code, .. } => *code,
        }
    }

    /// The status line text: pve-http-server sends the first line of the message.
    pub fn reason(&self) -> String {
        let full = match self {
            ApiError::Rejected(r) => r.status_text(),
            other => other.to_string(),
        };
        full.lines().next().unwrap_or("").to_string()
    }

    /// Body as PVE >= 8.3 sends it; 401s have an empty body.
    pub fn body(&self) -> Option<Value> {
        match self {
            ApiError::Unauthorized(_) => None,
            ApiError::Rejected(r) => Some(r.body()),
            ApiError::Params(errors) => Some(json!({
                "data": null,
                "errors": errors,
                "message": "Parameter verification failed.\n",
            })),
            other => Some(json!({ "data": null, "message": format!("{other}\n") })),
        }
    }

    pub fn errors(&self) -> Option<BTreeMap<String, String>> {
        match self {
            ApiError::Params(e) => Some(e.clone()),
            ApiError::Rejected(pve_schema::Rejection::Parameters { errors }) => {
                Some(errors.clone())
            }
            _ => None,
        }
    }
}

impl From<Forbidden> for ApiError {
    fn from(f: Forbidden) -> ApiError {
        ApiError::Forbidden(f)
    }
}

/// Unexpected failures of the lab itself surface as 500 with their context chain.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::Server(format!("{e:#}"))
    }
}
