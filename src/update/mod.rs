//! `launch-tui update` and `rollback` (issue #5).

use crate::cli::{Global, RollbackArgs, UpdateArgs};
use crate::commands::{Outcome, Output};
use crate::error::{LaunchError, Result};
use crate::instance::check_instance_name;

pub fn run(_g: &Global, a: &UpdateArgs, _out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    Err(LaunchError::NotImplemented("update"))
}

pub fn rollback(_g: &Global, a: &RollbackArgs, _out: &Output) -> Result<Outcome> {
    check_instance_name(&a.name)?;
    Err(LaunchError::NotImplemented("rollback"))
}
