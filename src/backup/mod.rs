//! `launch-tui backup`, `backups` and `restore` (issue #7).

use crate::cli::{BackupArgs, BackupsArgs, Global, RestoreArgs};
use crate::commands::{Outcome, Output};
use crate::error::{LaunchError, Result};
use crate::instance::check_instance_name;

pub fn backup(_g: &Global, a: &BackupArgs, _out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    Err(LaunchError::NotImplemented("backup"))
}

pub fn backups(_g: &Global, a: &BackupsArgs, _out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    Err(LaunchError::NotImplemented("backups"))
}

pub fn restore(_g: &Global, a: &RestoreArgs, _out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    Err(LaunchError::NotImplemented("restore"))
}
