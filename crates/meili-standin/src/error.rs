//! Errors as Meilisearch shows them: API errors (`{"message","code","type","link"}` with the
//! status Meilisearch uses, also the `error` of a failed task) and start-up errors (one message,
//! a `help:` line, exit 1).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("The Authorization header is missing. It must use the bearer authorization method.")]
    MissingAuthorizationHeader,
    #[error("The provided API key is invalid.")]
    InvalidApiKey,
    #[error("Meilisearch is running without a master key. To access this API endpoint, you must have set a master key at launch.")]
    MissingMasterKey,
    #[error("Index `{0}` not found.")]
    IndexNotFound(String),
    #[error("Index `{0}` already exists.")]
    IndexAlreadyExists(String),
    #[error("`{0}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes.")]
    InvalidIndexUid(String),
    #[error("Index already has a primary key: `{0}`.")]
    PrimaryKeyAlreadyExists(String),
    #[error("The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter.")]
    NoPrimaryKeyCandidate,
    #[error("The primary key inference failed as the engine found {} fields ending with `id` in their names: {}. Please specify the primary key manually using the `primaryKey` query parameter.", .0.len(), .0.iter().map(|f| format!("'{f}'")).collect::<Vec<_>>().join(" and "))]
    MultiplePrimaryKeyCandidates(Vec<String>),
    #[error("Document doesn't have a `{0}` attribute: `{1}`.")]
    MissingDocumentId(String, String),
    #[error("Document identifier `{0}` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes.")]
    InvalidDocumentId(String),
    #[error("Document `{0}` not found.")]
    DocumentNotFound(String),
    #[error("Task `{0}` not found.")]
    TaskNotFound(String),
    #[error("The json payload provided is malformed. `{0}`.")]
    MalformedPayload(String),
    #[error("The Content-Type `{0}` is invalid. This stand-in accepts only `application/json`.")]
    InvalidContentType(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidSearchFilter(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MissingAuthorizationHeader => "missing_authorization_header",
            InvalidApiKey => "invalid_api_key",
            MissingMasterKey => "missing_master_key",
            IndexNotFound(_) => "index_not_found",
            IndexAlreadyExists(_) => "index_already_exists",
            InvalidIndexUid(_) => "invalid_index_uid",
            PrimaryKeyAlreadyExists(_) => "index_primary_key_already_exists",
            NoPrimaryKeyCandidate => "index_primary_key_no_candidate_found",
            MultiplePrimaryKeyCandidates(_) => "index_primary_key_multiple_candidates_found",
            MissingDocumentId(..) => "missing_document_id",
            InvalidDocumentId(_) => "invalid_document_id",
            DocumentNotFound(_) => "document_not_found",
            TaskNotFound(_) => "task_not_found",
            MalformedPayload(_) => "malformed_payload",
            InvalidContentType(_) => "invalid_content_type",
            BadRequest(_) => "bad_request",
            InvalidSearchFilter(_) => "invalid_search_filter",
            Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MissingAuthorizationHeader | MissingMasterKey => StatusCode::UNAUTHORIZED,
            InvalidApiKey => StatusCode::FORBIDDEN,
            IndexNotFound(_) | DocumentNotFound(_) | TaskNotFound(_) => StatusCode::NOT_FOUND,
            IndexAlreadyExists(_) => StatusCode::CONFLICT,
            InvalidContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The body Meilisearch sends, and the `error` of a failed task.
    pub fn to_json(&self) -> Value {
        let kind = match self {
            ApiError::MissingAuthorizationHeader
            | ApiError::InvalidApiKey
            | ApiError::MissingMasterKey => "auth",
            ApiError::Internal(_) => "internal",
            _ => "invalid_request",
        };
        json!({
            "message": self.to_string(),
            "code": self.code(),
            "type": kind,
            "link": format!("https://docs.meilisearch.com/errors#{}", self.code()),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.to_json())).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(format!("{e:#}"))
    }
}

/// What stops the server from starting; `main` prints it and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("You must provide a master key to secure your instance in a production environment. It can be specified via the MEILI_MASTER_KEY environment variable or the --master-key launch option.\nhelp: set a master key of at least 16 bytes, or run with --env development")]
    MissingMasterKey,
    #[error("The master key must be at least 16 bytes in a production environment. The provided key is only {0} bytes.\nhelp: use a longer master key (for example 32 random bytes, base64-encoded)")]
    ShortMasterKey(usize),
    #[error("database already exists at {0:?}, try to delete it or rename it\nhelp: or pass --ignore-dump-if-db-exists to start on the existing database without the dump")]
    DatabaseExists(PathBuf),
    #[error("dump doesn't exist at {0:?}\nhelp: check the path, or pass --ignore-missing-dump to start without it")]
    DumpMissing(PathBuf),
    #[error("the dump {path:?} cannot be imported: {reason}\nhelp: only dumps written by meili-standin (POST /dumps) can be imported; the database was left empty")]
    DumpDamaged { path: PathBuf, reason: String },
    #[error("the database at {0:?} is in use by another meili-standin process\nhelp: stop that process first")]
    DatabaseLocked(PathBuf),
    #[error("configuration file {path:?}: {reason}\nhelp: see README.md for the keys this stand-in reads")]
    ConfigFile { path: PathBuf, reason: String },
    #[error("`{0}` is not a valid environment\nhelp: use `development` or `production`")]
    BadEnv(String),
}
