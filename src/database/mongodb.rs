//! MongoDB: a local server in the container or an external one. MongoDB is not in Debian: its
//! packages come from MongoDB's own apt repository, which a profile that offers MongoDB lists
//! in `apt_sources` (with the repository's signing key), so they are installed in the
//! `database` step, after that repository was added, never with the base packages. A local
//! server runs with authorization on; the app's user is created through MongoDB's localhost
//! exception (no user exists yet) with `readWrite` on the app's two databases only: `NAME`,
//! and `NAME_green`, the green slot's own copy during an update (see
//! [`Adapter::slot_databases`]). Credentials reach `mongodump`, `mongorestore` and `mongosh`
//! through a private YAML file (`--config`, MongoDB's tools' own way) or a private script
//! file, never argv. The tools' connection string names no database: each dump names its
//! database (`--db`) and each load the namespaces it takes (`--nsInclude`, and `--nsFrom` /
//! `--nsTo` to load one database's dump into another), since mongo-tools would take a
//! database in the string as a filter on the archive's own names.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::postgres::server_context;
use super::{local_name, q, Adapter, Client, Health, Restore, RestoreSpot};
use crate::ct::{sh, CtAccess};
use crate::escape::{escape, Syntax};
use crate::profile::DatabaseKind;
use crate::render::DbContext;

/// The tools' private config file: the connection string without the password, and the
/// password.
pub const CLIENT_CONF: &str = "/run/launch-mongo.yaml";
const SETUP_JS: &str = "/run/launch-db.js";
const PING_JS: &str = "/run/launch-db-ping.js";
const LOCAL: &str = "mongodb://127.0.0.1:27017/admin";

/// What a URI's user and password keep unescaped (RFC 3986's unreserved characters).
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The mongosh line that drops every collection of a database (`$S`: its name as a string):
/// what a `readWrite` user may do, where `dropDatabase` needs more.
const DROP_COLLECTIONS: &str = r#"db.getSiblingDB($S).getCollectionNames().forEach(function (c) { if (!c.startsWith("system.")) { db.getSiblingDB($S).getCollection(c).drop(); } })"#;

const DROP_JS: &str = "/run/launch-mongo-empty.js";

/// A string as a JavaScript (and JSON) literal on one line of a YAML comment: JSON's escapes,
/// plus the characters YAML 1.1 parsers take as line breaks (NEL, LS, PS), so no value can
/// end the comment.
fn js_line(s: &str) -> String {
    serde_json::to_string(s)
        .expect("a string serializes")
        .replace('\u{85}', "\\u0085")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Shell lines that empty the app's database before a dump is loaded, so it holds exactly the
/// dump afterwards: `mongorestore --drop` replaces only the collections the dump has, and a
/// collection the newer version made (a migration's record) would survive a rollback.
fn empty_first() -> String {
    format!(
        "if ( umask 077; sed -n 's/^# mongosh: //p' {CLIENT_CONF} > {DROP_JS} ) && mongosh \"$(sed -n 's/^# mongosh-uri: //p' {CLIENT_CONF})\" --quiet --file {DROP_JS} >/dev/null; then r=0; else r=1; fi; rm -f {DROP_JS}; if [ \"$r\" -ne 0 ]; then echo 'could not empty the database before loading the dump (mongosh failed)' >&2; exit 1; fi; "
    )
}

/// A database name in a namespace pattern of mongo-tools: `\`, `*` and `$` escaped, as its
/// `ns.Escape` does.
fn ns_escape(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('*', "\\*")
        .replace('$', "\\$")
}

/// mongorestore's options that load the dump of database `source` into `target`, and nothing
/// else the archive may hold.
fn load_namespaces(source: &str, target: &str) -> String {
    let from = format!("{}.*", ns_escape(source));
    let mut s = format!("--nsInclude={}", q(&from));
    if source != target {
        s.push_str(&format!(
            " --nsFrom={} --nsTo={}",
            q(&from),
            q(&format!("{}.*", ns_escape(target)))
        ));
    }
    s
}

pub struct Mongodb {
    pub external: bool,
}

impl Mongodb {
    /// `mongodb://USER[:PASSWORD]@HOST:PORT/NAME?authSource=admin`.
    fn uri(db: &DbContext, with_password: bool) -> String {
        let user = utf8_percent_encode(&db.user, USERINFO);
        let pw = if with_password {
            format!(":{}", utf8_percent_encode(&db.password, USERINFO))
        } else {
            String::new()
        };
        let host = if db.host.contains(':') {
            format!("[{}]", db.host)
        } else {
            db.host.clone()
        };
        format!(
            "mongodb://{user}{pw}@{host}:{}/{}?authSource=admin",
            db.port, db.name
        )
    }

    /// The tools' connection string: no password, and no database (see the module's note).
    fn tools_uri(db: &DbContext) -> String {
        let mut nameless = db.clone();
        nameless.name = String::new();
        Self::uri(&nameless, false)
    }
}

impl Adapter for Mongodb {
    fn kind(&self) -> DatabaseKind {
        if self.external {
            DatabaseKind::ExternalMongodb
        } else {
            DatabaseKind::Mongodb
        }
    }

    fn is_server(&self) -> bool {
        true
    }

    fn is_external(&self) -> bool {
        self.external
    }

    fn default_port(&self) -> u16 {
        27017
    }

    fn cpu_flags(&self) -> &'static [&'static str] {
        // MongoDB 5.0 and later need AVX on x86_64; an external server is another machine's.
        if self.external {
            &[]
        } else {
            &["avx"]
        }
    }

    fn cpu_help(&self) -> &'static str {
        "MongoDB 5.0 and later need a CPU with AVX, and this node's CPU has none (`grep -wo avx /proc/cpuinfo` prints nothing): use a MongoDB server on a machine with AVX (answer `database: external-mongodb`), or, if this node is itself a VM, give it a CPU type with AVX (`host` or `x86-64-v3`)"
    }

    fn url(&self, db: &DbContext) -> String {
        Self::uri(db, true)
    }

    // No Debian packages: MongoDB's come from its own repository, installed by `create_local`
    // (the server) or on demand by `tool` (an external server's client tools).

    fn tool(&self) -> Option<(&'static str, &'static str)> {
        Some(("mongodump", "mongodb-database-tools"))
    }

    fn local_unit(&self) -> Option<&'static str> {
        (!self.external).then_some("mongod.service")
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
        let mut db = server_context(self, settings, profile, password);
        db.url = self.url(&db);
        db
    }

    fn create_local(
        &self,
        ct: &dyn CtAccess,
        vmid: u32,
        profile: &str,
        password: &str,
    ) -> Result<DbContext> {
        if self.external {
            bail!("an external MongoDB is not created by launch-tui");
        }
        let name = local_name(profile);
        sh(
            ct,
            vmid,
            "command -v mongod >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends mongodb-org >/dev/null || { echo 'mongodb-org could not be installed: MongoDB is not in Debian, so the profile must list MongoDB'\"'\"'s apt repository in apt_sources' >&2; exit 1; }; }",
        )?;
        // Authorization on before the first start that matters: from then on every client
        // authenticates, and the localhost exception lets the first user be created.
        sh(
            ct,
            vmid,
            "grep -q '^security:' /etc/mongod.conf || printf '\\nsecurity:\\n  authorization: enabled\\n' >> /etc/mongod.conf; systemctl enable --quiet mongod.service && systemctl restart mongod.service",
        )?;
        ct.write(vmid, PING_JS, b"db.runCommand({ping: 1})\n", 0o600, None)?;
        // mongod takes a few seconds to accept connections after its unit started.
        let waited = sh(
            ct,
            vmid,
            &format!("i=0; until mongosh {LOCAL} --quiet --file {PING_JS} >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 120 ] || {{ echo 'mongod did not answer within 60 s' >&2; journalctl -u mongod.service -n 20 --no-pager >&2; exit 1; }}; sleep 0.5; done"),
        );
        let _ = ct.exec(vmid, &["rm", "-f", PING_JS]);
        waited?;
        let js = |s: &str| serde_json::to_string(s).expect("a string serializes");
        let green = super::slot_db_name(&name, crate::instance::Slot::Green);
        let script = format!(
            "db.getSiblingDB(\"admin\").createUser({{user: {u}, pwd: {p}, roles: [{{role: \"readWrite\", db: {u}}}, {{role: \"readWrite\", db: {g}}}]}})\n",
            u = js(&name),
            p = js(password),
            g = js(&green)
        );
        ct.write(vmid, SETUP_JS, script.as_bytes(), 0o600, None)?;
        let result = sh(
            ct,
            vmid,
            &format!("mongosh {LOCAL} --quiet --file {SETUP_JS} >/dev/null"),
        );
        let _ = ct.exec(vmid, &["rm", "-f", SETUP_JS]);
        result?;
        Ok(self.context(&BTreeMap::new(), profile, password))
    }

    fn dump_entry(&self, _: Option<&str>) -> String {
        "db/mongodb.archive".into()
    }

    fn client_secret(&self, db: &DbContext) -> Option<(&'static str, String)> {
        let yaml = |s: &str| escape(Syntax::Yaml, s).expect("YAML takes any string");
        let host = if db.host.contains(':') {
            format!("[{}]", db.host)
        } else {
            db.host.clone()
        };
        // mongosh has no config file: the lines that empty the database before a dump is
        // loaded ride along as comments, which the tools' YAML parser skips and `sed` reads.
        Some((
            CLIENT_CONF,
            format!(
                "uri: {}\npassword: {}\n# mongosh-uri: mongodb://{host}:{}/admin\n# mongosh: db.getSiblingDB(\"admin\").auth({}, {})\n# mongosh: {}\n",
                yaml(&Self::tools_uri(db)),
                yaml(&db.password),
                db.port,
                js_line(&db.user),
                js_line(&db.password),
                DROP_COLLECTIONS.replace("$S", &js_line(&db.name)),
            ),
        ))
    }

    fn dump_script(&self, db: &DbContext, _: &str, _: Option<&str>, entry: &str) -> Result<String> {
        Ok(format!(
            "mongodump --config={CLIENT_CONF} --db={} --archive=\"$S\"/{} --gzip --quiet\n",
            q(&db.name),
            q(entry)
        ))
    }

    fn restore(&self, db: &DbContext, at: &RestoreSpot) -> Result<Option<Restore>> {
        // Collection by collection, each dropped and loaded from the dump: in place, so the
        // safety backup taken before is the way back.
        Ok(Some(Restore {
            script: format!(
                "{}mongorestore --config={CLIENT_CONF} --archive={} --gzip --drop --quiet {}",
                empty_first(),
                q(at.dump),
                load_namespaces(at.source_db, &db.name)
            ),
            secret: self.client_secret(db),
            in_place: true,
        }))
    }

    fn restores_in_place(&self) -> bool {
        true
    }

    fn client(&self, _: &DbContext) -> Option<Client> {
        Some(Client {
            // The tools read the password from the config file, not from a variable.
            password_env: "LAUNCH_UNUSED_PASSWORD",
            conn: format!("--config={CLIENT_CONF}"),
        })
    }

    fn dump_ext(&self) -> &'static str {
        "archive"
    }

    fn update_dump(&self, db: &DbContext, file: &str) -> String {
        format!(
            "mongodump {{conn}} --db={} --archive={} --gzip --quiet",
            q(&db.name),
            q(file)
        )
    }

    fn update_load(&self, db: &DbContext, file: &str, source: &str) -> String {
        format!(
            "{}mongorestore {{conn}} --archive={} --gzip --drop --quiet {}",
            empty_first(),
            q(file),
            load_namespaces(source, &db.name)
        )
    }

    fn slot_databases(&self) -> bool {
        true
    }

    fn renamed(&self, mut db: DbContext, name: String) -> DbContext {
        db.name = name;
        db.url = Self::uri(&db, true);
        db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(user: &str, password: &str, host: &str) -> DbContext {
        let mut s = BTreeMap::new();
        s.insert("db_host".to_string(), host.to_string());
        s.insert("db_port".to_string(), "27018".to_string());
        s.insert("db_name".to_string(), "chat".to_string());
        s.insert("db_user".to_string(), user.to_string());
        Mongodb { external: true }.context(&s, "librechat", password)
    }

    /// A hostile external password (quotes, newlines, YAML 1.1's other line breaks) stays a
    /// value in the tools' YAML and in the mongosh lines riding as comments: no key is added,
    /// no comment is ended, and both give back the same password.
    #[test]
    fn the_client_file_keeps_any_password_a_value() {
        let pw = "p\"w'\nx: 1\r\u{85}\u{2028}y: 2\u{2029}# z\\";
        let d = db("u\"ser", pw, "db.example.org");
        let (_, text) = Mongodb { external: true }.client_secret(&d).unwrap();
        let tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let keys: Vec<_> = tree
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["uri", "password"], "{text}");
        assert_eq!(tree["password"].as_str(), Some(pw));
        let comments: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(comments.len(), 3, "{text}");
        assert_eq!(
            comments[0],
            "# mongosh-uri: mongodb://db.example.org:27018/admin"
        );
        let auth = comments[1]
            .strip_prefix("# mongosh: db.getSiblingDB(\"admin\").auth(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap();
        let args: Vec<String> = serde_json::from_str(&format!("[{auth}]")).unwrap();
        assert_eq!(args, ["u\"ser", pw]);
        assert!(comments[2].contains("db.getSiblingDB(\"chat\").getCollectionNames()"));
        assert!(!empty_first().contains(pw));
    }

    #[test]
    fn the_url_percent_encodes_user_and_password() {
        let d = db("a@b", "p:w/d@x%", "db.example.org");
        assert_eq!(
            d.url,
            "mongodb://a%40b:p%3Aw%2Fd%40x%25@db.example.org:27018/chat?authSource=admin"
        );
        let d = db("u", "p", "fd00::5");
        assert_eq!(d.url, "mongodb://u:p@[fd00::5]:27018/chat?authSource=admin");
        let local = Mongodb { external: false }.context(&BTreeMap::new(), "libre-chat", "pw");
        assert_eq!(
            local.url,
            "mongodb://libre_chat:pw@127.0.0.1:27017/libre_chat?authSource=admin"
        );
    }

    #[test]
    fn the_client_file_keeps_the_password_out_of_the_uri_and_is_yaml() {
        let d = db("u", "it's \"quoted\"\\ and: yaml", "h");
        let (path, text) = Mongodb { external: true }.client_secret(&d).unwrap();
        assert_eq!(path, CLIENT_CONF);
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            v["uri"].as_str(),
            Some("mongodb://u@h:27018/?authSource=admin")
        );
        assert_eq!(v["password"].as_str(), Some("it's \"quoted\"\\ and: yaml"));
    }

    /// A dump is loaded into the target's name, and only the source database's collections
    /// are taken from the archive.
    #[test]
    fn loads_name_their_namespaces() {
        let m = Mongodb { external: false };
        let green = m.renamed(db("u", "p", "h"), "chat_green".into());
        assert_eq!(
            green.url,
            "mongodb://u:p@h:27018/chat_green?authSource=admin"
        );
        let load = m.update_load(&green, "/x/d.archive", "chat");
        assert!(
            load.ends_with("--nsInclude='chat.*' --nsFrom='chat.*' --nsTo='chat_green.*'"),
            "{load}"
        );
        let same = m.update_load(&db("u", "p", "h"), "/x/d.archive", "chat");
        assert!(same.ends_with("--nsInclude='chat.*'"), "{same}");
        assert_eq!(ns_escape("a*b$c\\d"), "a\\*b\\$c\\\\d");
        assert!(m
            .update_dump(&green, "/x/d.archive")
            .contains("--db='chat_green'"));
    }

    #[test]
    fn only_a_local_server_needs_avx() {
        assert_eq!(Mongodb { external: false }.cpu_flags(), ["avx"]);
        assert!(Mongodb { external: true }.cpu_flags().is_empty());
    }
}
