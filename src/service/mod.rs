//! Service adapters: the one place that knows each kind of server an app uses besides its
//! database (Redis, Meilisearch, PostgreSQL with pgvector). Install, backup, restore, reconfigure and status ask the adapter of
//! each service an instance uses for its packages, unit, port, setup, dump, restore and check;
//! none of them matches on a kind. Adding a kind (MongoDB, Meilisearch) is one more adapter.
//!
//! Each service has a password, generated once at install and kept in the instance's secrets
//! under [`Adapter::secret_key`]. Scripts never carry it: the setup writes it into a private
//! file of the server's own config, and the dump reads it from there into the client's
//! environment.

mod meilisearch;
mod pgvector;
mod redis;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::database::q;
use crate::profile::{Profile, ServiceDef, ServiceKind};

/// The secret keys service adapters own (a profile's `secrets:` may not use them).
pub const SECRET_KEYS: &[&str] = &[
    redis::SECRET_KEY,
    meilisearch::SECRET_KEY,
    pgvector::SECRET_KEY,
];

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
    /// The login and the database of a server that has them (PostgreSQL's); empty otherwise.
    pub user: String,
    pub database: String,
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

    /// Where the server's release binary goes, for a server that is not in Debian: the
    /// profile then pins it (`services[].release`), and the setup installs it before its script.
    fn binary(&self) -> Option<&'static str> {
        None
    }

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

    /// The login and the database a client names, for a server that has them (PostgreSQL);
    /// empty otherwise.
    fn login(&self) -> (&'static str, &'static str) {
        ("", "")
    }

    fn context(&self, enabled: bool, password: &str) -> ServiceContext {
        let (user, database) = self.login();
        ServiceContext {
            enabled,
            host: "127.0.0.1".into(),
            port: self.port(),
            password: password.to_string(),
            unit: self.unit().into(),
            user: user.into(),
            database: database.into(),
        }
    }
}

static REDIS: redis::Redis = redis::Redis;
static MEILISEARCH: meilisearch::Meilisearch = meilisearch::Meilisearch;
static PGVECTOR: pgvector::Pgvector = pgvector::Pgvector;

pub fn adapter(kind: ServiceKind) -> &'static dyn Adapter {
    match kind {
        ServiceKind::Redis => &REDIS,
        ServiceKind::Meilisearch => &MEILISEARCH,
        ServiceKind::Pgvector => &PGVECTOR,
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
/// packages, installed here when a reconfigure turns one on) or the profile's pinned release
/// binary, password, restart, answer.
pub fn setup(
    ct: &dyn crate::ct::CtAccess,
    vmid: u32,
    profile: &Profile,
    adapters: &[&'static dyn Adapter],
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for a in adapters {
        let pkgs = a.packages().join(" ");
        if !pkgs.is_empty() {
            crate::ct::sh(
                ct,
                vmid,
                &format!("dpkg -s {pkgs} >/dev/null 2>&1 || {{ export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends {pkgs} >/dev/null; }}"),
            )?;
        }
        if let Some(dest) = a.binary() {
            install_binary(ct, vmid, profile, *a, dest)?;
        }
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

/// The profile's pinned release of a server that is not in Debian: fetched and checked on the
/// host (the release cache, as an app's release), pushed under a temporary name and renamed.
fn install_binary(
    ct: &dyn crate::ct::CtAccess,
    vmid: u32,
    profile: &Profile,
    a: &dyn Adapter,
    dest: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let label = a.kind().label();
    let rel = profile
        .services
        .iter()
        .find(|s| s.kind == a.kind())
        .and_then(|s| s.release.as_ref())
        .with_context(|| {
            format!(
                "profile {} lists {} without its release\n  help: add `release: {{version, artifacts}}` to its `services:` entry",
                profile.name,
                a.title()
            )
        })?;
    let arch = crate::release::host_arch()?;
    let artifact = rel.artifacts.get(arch).with_context(|| {
        format!(
            "{} {} has no build for {arch} in profile {}",
            a.title(),
            rel.version,
            profile.name
        )
    })?;
    let cache = crate::release::ReleaseCache::new(crate::install::cache_dir().join("releases"));
    let fetched = cache.fetch(
        profile.name.as_str(),
        &format!("{label}-{}", rel.version),
        artifact,
        &mut |_, _| {},
    )?;
    let staging = tempfile::tempdir()?;
    let bin = cache.unpack_binary(&fetched, artifact, staging.path(), label)?;
    let tmp = format!("{dest}.launch-new");
    ct.push(vmid, &bin, &tmp, 0o755, None)?;
    crate::ct::sh(ct, vmid, &format!("mv -f {} {}", q(&tmp), q(dest)))?;
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
