//! Service adapters: the one place that knows each kind of server an app uses besides its
//! database (Redis today). Install, backup, restore, reconfigure and status ask the adapter of
//! each service an instance uses for its packages, unit, port, setup, dump, restore and check;
//! none of them matches on a kind. Adding a kind (MongoDB, Meilisearch) is one more adapter.
//!
//! Each service has a password, generated once at install and kept in the instance's secrets
//! under [`Adapter::secret_key`]. Scripts never carry it: the setup writes it into a private
//! file of the server's own config, and the dump reads it from there into the client's
//! environment.

mod redis;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::profile::{Profile, ServiceDef, ServiceKind};

/// The secret keys service adapters own (a profile's `secrets:` may not use them).
pub const SECRET_KEYS: &[&str] = &[redis::SECRET_KEY];

/// A service as templates see it: `services.redis.enabled`, `.host`, `.port`, `.password`,
/// `.unit`. Every service the profile lists is there; one the instance does not use has
/// `enabled: false`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServiceContext {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub password: String,
    /// The server's unit, for the app's `After=`/`Wants=`.
    pub unit: String,
}

/// How a restore puts one service's data back.
pub struct RestoreScripts {
    /// Stops the server, keeps its current data aside, installs the dump, starts it.
    pub restore: String,
    /// Puts the kept data back (safe whether or not `restore` ran).
    pub undo: String,
    /// Removes the kept data after a restore that finished.
    pub cleanup: String,
}

pub trait Adapter: Sync {
    fn kind(&self) -> ServiceKind;

    /// Its name in messages ("Redis").
    fn title(&self) -> &'static str;

    /// Debian packages of the server.
    fn packages(&self) -> &'static [&'static str];

    fn unit(&self) -> &'static str;

    fn port(&self) -> u16;

    /// The instance secret holding its password.
    fn secret_key(&self) -> &'static str;

    /// Configures the installed server for the app (its password from the private file
    /// `secret_file`, loopback only), restarts it and waits until it answers.
    fn setup_script(&self, secret_file: &str) -> String;

    /// The archive entry of its dump (under `db/`).
    fn dump_entry(&self) -> &'static str;

    /// The lines that write a consistent dump to `"$S"/ENTRY`.
    fn dump_script(&self) -> String;

    /// Loads a staged dump back.
    fn restore_scripts(&self, dump: &str) -> RestoreScripts;

    /// A command whose success means the server answers (run after its unit is active).
    fn ping_script(&self) -> String;

    fn context(&self, enabled: bool, password: &str) -> ServiceContext {
        ServiceContext {
            enabled,
            host: "127.0.0.1".into(),
            port: self.port(),
            password: password.to_string(),
            unit: self.unit().into(),
        }
    }
}

static REDIS: redis::Redis = redis::Redis;

pub fn adapter(kind: ServiceKind) -> &'static dyn Adapter {
    match kind {
        ServiceKind::Redis => &REDIS,
    }
}

/// The services an instance with these settings uses, in the profile's order.
pub fn enabled<'a>(
    profile: &'a Profile,
    settings: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = &'static dyn Adapter> + 'a {
    profile
        .services
        .iter()
        .filter(move |s| s.enabled(settings))
        .map(|s: &ServiceDef| adapter(s.kind))
}

/// Every service of the profile as templates see it.
pub fn contexts(
    profile: &Profile,
    settings: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> BTreeMap<String, ServiceContext> {
    profile
        .services
        .iter()
        .map(|s| {
            let a = adapter(s.kind);
            let pw = secrets.get(a.secret_key()).cloned().unwrap_or_default();
            (
                s.kind.label().to_string(),
                a.context(s.enabled(settings), &pw),
            )
        })
        .collect()
}

/// The private file the setup reads a service's password from (removed after it).
pub fn secret_file(kind: ServiceKind) -> String {
    format!("/run/launch-{}.secret", kind.label())
}

/// Sets up every service the instance uses: packages (already installed with the base
/// packages, installed here when a reconfigure turns one on), password, restart, answer.
pub fn setup(
    ct: &dyn crate::ct::CtAccess,
    vmid: u32,
    adapters: &[&'static dyn Adapter],
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for a in adapters {
        let pkgs = a.packages().join(" ");
        crate::ct::sh(
            ct,
            vmid,
            &format!("dpkg -s {pkgs} >/dev/null 2>&1 || {{ export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends {pkgs} >/dev/null; }}"),
        )?;
        let password = secrets
            .get(a.secret_key())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the instance has no {} password ({})",
                    a.title(),
                    a.secret_key()
                )
            })?;
        let file = secret_file(a.kind());
        ct.write(vmid, &file, password.as_bytes(), 0o600, None)?;
        let r = crate::ct::sh(ct, vmid, &a.setup_script(&file));
        let _ = ct.exec(vmid, &["rm", "-f", &file]);
        r.map_err(|e| anyhow::anyhow!("setting up {}: {e:#}", a.title()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_secret_in_scripts_and_entries_under_db() {
        for k in ServiceKind::ALL {
            let a = adapter(k);
            assert_eq!(a.kind(), k);
            assert!(a.dump_entry().starts_with("db/"), "{k:?}");
            crate::backup::archive::check_entry_path(a.dump_entry()).unwrap();
            let ctx = a.context(true, "sample-password");
            assert_eq!(ctx.password, "sample-password");
            for script in [
                a.setup_script("/run/x"),
                a.dump_script(),
                a.ping_script(),
                a.restore_scripts("/s/db/x").restore,
            ] {
                assert!(!script.contains("sample-password"), "{k:?}: {script}");
            }
            assert!(SECRET_KEYS.contains(&a.secret_key()));
        }
    }
}
