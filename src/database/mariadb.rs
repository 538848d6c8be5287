//! MariaDB: a local server in the container (Debian's `mariadb-server`; root reaches it through
//! its socket) or an external server (the client tools, credentials in a private option file).

use std::collections::BTreeMap;

use anyhow::Result;

use super::postgres::server_context;
use super::{local_name, q, Adapter, Client, Health, Restore, RestoreSpot};
use crate::ct::{sh, CtAccess};
use crate::profile::DatabaseKind;
use crate::render::DbContext;

pub const MYCNF: &str = "/run/launch-db.my.cnf";

pub struct Mariadb {
    pub external: bool,
}

impl Adapter for Mariadb {
    fn kind(&self) -> DatabaseKind {
        if self.external {
            DatabaseKind::ExternalMariadb
        } else {
            DatabaseKind::Mariadb
        }
    }

    fn is_server(&self) -> bool {
        true
    }

    fn is_external(&self) -> bool {
        self.external
    }

    fn default_port(&self) -> u16 {
        3306
    }

    fn packages(&self) -> &'static [&'static str] {
        if self.external {
            &["mariadb-client"]
        } else {
            &["mariadb-server"]
        }
    }

    fn tool(&self) -> Option<(&'static str, &'static str)> {
        self.external.then_some(("mariadb-dump", "mariadb-client"))
    }

    fn local_unit(&self) -> Option<&'static str> {
        (!self.external).then_some("mariadb.service")
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
            anyhow::bail!("an external MariaDB is not created by launch-tui");
        }
        let name = local_name(profile);
        sh(
            ct,
            vmid,
            "command -v mariadb >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null; }; systemctl enable --now mariadb.service",
        )?;
        let sql = format!(
            "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\nCREATE USER '{name}'@'localhost' IDENTIFIED BY '{password}';\nCREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}';\nGRANT ALL PRIVILEGES ON {name}.* TO '{name}'@'localhost';\nGRANT ALL PRIVILEGES ON {name}.* TO '{name}'@'127.0.0.1';\nFLUSH PRIVILEGES;\n"
        );
        ct.write(vmid, "/run/launch-db.sql", sql.as_bytes(), 0o600, None)?;
        let result = sh(ct, vmid, "mariadb < /run/launch-db.sql");
        let _ = ct.exec(vmid, &["rm", "-f", "/run/launch-db.sql"]);
        result?;
        Ok(server_context(self, &BTreeMap::new(), profile, password))
    }

    fn dump_entry(&self, _: Option<&str>) -> String {
        "db/mariadb.sql".into()
    }

    fn client_secret(&self, db: &DbContext) -> Option<(&'static str, String)> {
        self.external.then(|| {
            (
                MYCNF,
                format!(
                    "[client]\nhost={}\nport={}\nuser={}\npassword=\"{}\"\n",
                    db.host,
                    db.port,
                    db.user,
                    db.password.replace('\\', "\\\\").replace('"', "\\\"")
                ),
            )
        })
    }

    fn dump_script(&self, db: &DbContext, _: &str, _: Option<&str>, entry: &str) -> Result<String> {
        let out = format!("\"$S\"/{}", q(entry));
        Ok(if self.external {
            format!(
                "mariadb-dump --defaults-extra-file={MYCNF} --single-transaction --routines --triggers {} > {out}\n",
                q(&db.name)
            )
        } else {
            format!(
                "mariadb-dump --single-transaction --routines --triggers {} > {out}\n",
                q(&db.name)
            )
        })
    }

    fn restore(&self, db: &DbContext, at: &RestoreSpot) -> Result<Option<Restore>> {
        let n = &db.name;
        Ok(Some(if self.external {
            Restore {
                script: format!(
                    "mariadb --defaults-extra-file={MYCNF} {} < {}",
                    q(n),
                    q(at.dump)
                ),
                secret: self.client_secret(db),
                in_place: true,
            }
        } else {
            Restore {
                script: format!(
                    "set -e\nmariadb -e 'DROP DATABASE IF EXISTS `{n}`; CREATE DATABASE `{n}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'\nmariadb {n} < {dump}\n",
                    dump = q(at.dump)
                ),
                secret: None,
                in_place: true,
            }
        }))
    }

    fn restores_in_place(&self) -> bool {
        true
    }

    fn client(&self, db: &DbContext) -> Option<Client> {
        Some(Client {
            password_env: "MYSQL_PWD",
            conn: format!(
                "-h {} -P {} -u {} {}",
                q(&db.host),
                db.port,
                q(&db.user),
                q(&db.name)
            ),
        })
    }

    fn update_dump(&self, _: &DbContext, file: &str) -> String {
        format!("mariadb-dump --single-transaction {{conn}} > {}", q(file))
    }

    fn update_load(&self, _: &DbContext, file: &str, _: &str) -> String {
        format!("mariadb {{conn}} < {}", q(file))
    }
}
