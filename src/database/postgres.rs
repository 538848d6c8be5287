//! PostgreSQL: a local server in the container (Debian's `postgresql`; root reaches it as the
//! `postgres` user through its socket) or an external server (the client tools, credentials in
//! a private pgpass file).

use std::collections::BTreeMap;

use anyhow::Result;

use super::{local_name, q, Adapter, Client, Health, Restore, RestoreSpot};
use crate::ct::{sh, CtAccess};
use crate::profile::DatabaseKind;
use crate::render::DbContext;

pub const PGPASS: &str = "/run/launch-db.pgpass";

pub struct Postgres {
    pub external: bool,
}

impl Adapter for Postgres {
    fn kind(&self) -> DatabaseKind {
        if self.external {
            DatabaseKind::ExternalPostgres
        } else {
            DatabaseKind::Postgres
        }
    }

    fn is_server(&self) -> bool {
        true
    }

    fn is_external(&self) -> bool {
        self.external
    }

    fn default_port(&self) -> u16 {
        5432
    }

    fn packages(&self) -> &'static [&'static str] {
        if self.external {
            &["postgresql-client"]
        } else {
            &["postgresql"]
        }
    }

    fn tool(&self) -> Option<(&'static str, &'static str)> {
        self.external.then_some(("pg_dump", "postgresql-client"))
    }

    fn local_unit(&self) -> Option<&'static str> {
        (!self.external).then_some("postgresql.service")
    }

    fn health(&self) -> Health {
        match self.local_unit() {
            Some(u) => Health::Unit(u),
            None => Health::External,
        }
    }

    fn context(
        &self,
        settings: &BTreeMap<String, String>,
        profile: &str,
        password: &str,
    ) -> DbContext {
        server_context(self, settings, profile, password)
    }

    fn create_local(
        &self,
        ct: &dyn CtAccess,
        vmid: u32,
        profile: &str,
        password: &str,
    ) -> Result<DbContext> {
        if self.external {
            anyhow::bail!("an external PostgreSQL is not created by launch-tui");
        }
        let name = local_name(profile);
        sh(
            ct,
            vmid,
            "command -v psql >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; systemctl enable --now postgresql.service",
        )?;
        let sql = format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{password}';\nCREATE DATABASE {name} OWNER {name};\n"
        );
        ct.write(
            vmid,
            "/run/launch-db.sql",
            sql.as_bytes(),
            0o600,
            Some("postgres"),
        )?;
        let result = sh(
            ct,
            vmid,
            "runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -f /run/launch-db.sql",
        );
        let _ = ct.exec(vmid, &["rm", "-f", "/run/launch-db.sql"]);
        result?;
        Ok(server_context(self, &BTreeMap::new(), profile, password))
    }

    fn dump_entry(&self, _: Option<&str>) -> String {
        "db/postgres.sql".into()
    }

    fn client_secret(&self, db: &DbContext) -> Option<(&'static str, String)> {
        let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
        self.external.then(|| {
            (
                PGPASS,
                format!(
                    "{}:{}:{}:{}:{}\n",
                    esc(&db.host),
                    db.port,
                    esc(&db.name),
                    esc(&db.user),
                    esc(&db.password)
                ),
            )
        })
    }

    fn dump_script(&self, db: &DbContext, _: &str, _: Option<&str>, entry: &str) -> Result<String> {
        let out = format!("\"$S\"/{}", q(entry));
        Ok(if self.external {
            // An external database is restored over the existing one, so its dump drops first.
            format!(
                "PGPASSFILE={PGPASS} pg_dump --clean --if-exists --no-owner --no-privileges -h {} -p {} -U {} -d {} > {out}\n",
                q(&db.host),
                db.port,
                q(&db.user),
                q(&db.name)
            )
        } else {
            format!(
                "runuser -u postgres -- pg_dump --no-owner --no-privileges -d {} > {out}\n",
                q(&db.name)
            )
        })
    }

    fn restore(&self, db: &DbContext, at: &RestoreSpot) -> Result<Option<Restore>> {
        Ok(Some(if self.external {
            Restore {
                script: format!(
                    "PGPASSFILE={PGPASS} psql -v ON_ERROR_STOP=1 -q -h {} -p {} -U {} -d {} -f {} >/dev/null",
                    q(&db.host),
                    db.port,
                    q(&db.user),
                    q(&db.name),
                    q(at.dump)
                ),
                secret: self.client_secret(db),
                in_place: true,
            }
        } else {
            // The previous database is renamed aside, not dropped, until the restore succeeded.
            let n = &db.name;
            Restore {
                script: format!(
                    "set -e\nrunuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d postgres -c 'DROP DATABASE IF EXISTS {n}_launch_old' -c 'ALTER DATABASE {n} RENAME TO {n}_launch_old' -c 'CREATE DATABASE {n} OWNER {u}'\n{{ echo 'SET ROLE {u};'; cat {dump}; }} | runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d {n} >/dev/null\n",
                    u = db.user,
                    dump = q(at.dump)
                ),
                secret: None,
                in_place: false,
            }
        }))
    }

    fn restores_in_place(&self) -> bool {
        self.external
    }

    fn restore_undo(&self, db: &DbContext, _: &RestoreSpot) -> Option<String> {
        let n = &db.name;
        (!self.external).then(|| format!(
            "if [ \"$(runuser -u postgres -- psql -tA -d postgres -c \"SELECT 1 FROM pg_database WHERE datname = '{n}_launch_old'\")\" = 1 ]; then runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d postgres -c 'DROP DATABASE IF EXISTS {n}' -c 'ALTER DATABASE {n}_launch_old RENAME TO {n}'; fi"
        ))
    }

    fn restore_cleanup(&self, db: &DbContext, _: &RestoreSpot) -> Option<String> {
        (!self.external).then(|| {
            format!(
                "runuser -u postgres -- psql -q -d postgres -c 'DROP DATABASE IF EXISTS {}_launch_old'\n",
                db.name
            )
        })
    }

    fn client(&self, db: &DbContext) -> Option<Client> {
        Some(Client {
            password_env: "PGPASSWORD",
            conn: format!(
                "-h {} -p {} -U {} {}",
                q(&db.host),
                db.port,
                q(&db.user),
                q(&db.name)
            ),
        })
    }

    fn update_dump(&self, _: &DbContext, file: &str) -> String {
        format!("pg_dump --clean --if-exists {{conn}} > {}", q(file))
    }

    fn update_load(&self, _: &DbContext, file: &str, _: &str) -> String {
        format!("psql -q -v ON_ERROR_STOP=1 {{conn}} < {}", q(file))
    }
}

/// A server's database as the instance's settings and the adapter's defaults give it: a local
/// server's database and user are the profile's name; an external one's come from the settings.
pub(super) fn server_context(
    a: &dyn Adapter,
    settings: &BTreeMap<String, String>,
    profile: &str,
    password: &str,
) -> DbContext {
    let get = |k: &str| settings.get(k).cloned().unwrap_or_default();
    if a.is_external() {
        DbContext {
            kind: a.label().into(),
            host: get("db_host"),
            port: get("db_port").parse().unwrap_or(0),
            name: get("db_name"),
            user: get("db_user"),
            password: password.to_string(),
            local_unit: None,
            url: String::new(),
        }
    } else {
        DbContext {
            kind: a.label().into(),
            host: "127.0.0.1".into(),
            port: a.default_port(),
            name: local_name(profile),
            user: local_name(profile),
            password: password.to_string(),
            local_unit: a.local_unit().map(String::from),
            url: String::new(),
        }
    }
}
