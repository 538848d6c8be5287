//! A small typed Proxmox VE client: HTTPS API or local pvesh, behind one transport trait.
//! `requests` builds every request as pure data, a `Transport` carries it, and `Client`
//! turns answers into typed values and errors into `PveError` with a help line.

pub mod auth;
pub mod client;
pub mod clock;
pub mod de;
pub mod error;
pub mod https;
pub mod model;
pub mod options;
pub mod pvesh;
pub mod requests;
pub mod tls;
pub mod upid;
pub mod validate;

pub use auth::{ApiToken, Auth, Secret, TOKEN_ENV_VAR};
pub use client::{Client, TaskOutcome, TaskProgress};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{MissingPrivilege, PveError};
pub use https::HttpsTransport;
pub use model::*;
pub use options::{
    BackupMode, Compress, ContentType, CreateCt, CtConfigUpdate, Features, IpConfig, NetConfig,
    ResourceType, RootFs, Vzdump,
};
pub use pvesh::{CommandOutput, CommandRunner, PveshTransport, SystemRunner};
pub use requests::{ApiRequest, Method};
pub use tls::{Fingerprint, TlsMode};
pub use upid::Upid;

/// Carries one API request and returns the `data` member of the answer.
///
/// Implementations: [`HttpsTransport`] (the REST API on port 8006) and [`PveshTransport`]
/// (root on a PVE node). Tests and simulators implement it too.
pub trait Transport: Send + Sync {
    fn call(&self, req: &ApiRequest) -> Result<serde_json::Value, PveError>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn call(&self, req: &ApiRequest) -> Result<serde_json::Value, PveError> {
        (**self).call(req)
    }
}

impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn call(&self, req: &ApiRequest) -> Result<serde_json::Value, PveError> {
        (**self).call(req)
    }
}
