//! Validates Proxmox VE API requests against the official schema dump (pve-docs apidata.json),
//! answering like the real server: 501 for unknown routes, 400 with PVE's per-parameter messages.
//! Used by Launch's PVE client (pre-flight checks) and by the lab's API simulator.
//!
//! ```
//! use pve_schema::{PveMajor, Rejection, Schema};
//!
//! let schema = Schema::load_shared(PveMajor::V9)?;
//! let form = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
//!
//! let ok = schema.validate("GET", "/nodes/pve/lxc/100/config", &[])?;
//! assert_eq!(ok.template, "/nodes/{node}/lxc/{vmid}/config");
//!
//! let err = schema.validate("POST", "/nodes/pve/lxc/100/status/start", &form(&[("skiplock", "true")]));
//! match err {
//!     Err(Rejection::Parameters { errors }) => {
//!         assert_eq!(errors["skiplock"], "type check ('boolean') failed - got 'true'")
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod check;
mod error;
mod formats;
mod model;
pub mod perl_regex;
mod schema;

use std::collections::BTreeMap;

pub use check::split_property_string;
pub use error::{LoadError, Rejection};
pub use formats::split_list;
pub use schema::{find_schema_file, Endpoint, PveMajor, Schema};

/// A request that passed validation: which endpoint it hit and the values of its `{params}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub template: String,
    pub path_params: BTreeMap<String, String>,
    pub method: String,
}

/// Named formats that occur in the schemas but are accepted without a check (see formats.rs).
pub fn unchecked_formats() -> &'static [&'static str] {
    formats::UNCHECKED_FORMATS
}

/// Named formats (base names, without `-list`/`-opt`) that ARE checked.
pub fn checked_formats() -> Vec<&'static str> {
    formats::checked_formats().collect()
}
