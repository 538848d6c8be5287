//! Files only: the app keeps its data in the paths under `backup.paths`; no dump, nothing to
//! create or check.

use super::{Adapter, Health};
use crate::profile::DatabaseKind;

pub struct Files;

impl Adapter for Files {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::None
    }

    fn health(&self) -> Health {
        Health::FilesOnly
    }
}
