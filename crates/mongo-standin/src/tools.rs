//! mongodump / mongorestore / mongosh look-alikes over the wire client.
//!
//! Archive format (the stand-in's own, not MongoDB's): a stream of BSON documents,
//! `{collection: ns, indexes: [...]}` once per collection, then `{ns, doc}` per document;
//! gzip-compressed as a whole with `--gzip`.

use crate::client::{first_batch, parse_uri, Client};
use anyhow::{anyhow, bail, Context, Result};
use bson::{doc, Bson, Document};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

/// The connection string of mongodump/mongorestore: `--uri`, or the `uri` of `--config`; a
/// `password` in the config file replaces the URI's (percent-encoded into it).
pub fn tool_uri(uri: Option<&str>, config: Option<&Path>) -> Result<String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ToolConfig {
        uri: Option<String>,
        password: Option<String>,
    }
    let conf = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --config {}", path.display()))?;
            serde_yaml_ng::from_str::<ToolConfig>(&text).with_context(|| {
                format!(
                    "--config {}: expected `uri:` and/or `password:`",
                    path.display()
                )
            })?
        }
        None => ToolConfig {
            uri: None,
            password: None,
        },
    };
    let uri = uri.map(str::to_string).or(conf.uri).ok_or_else(|| {
        anyhow::anyhow!("no connection string: pass --uri, or `uri:` in --config")
    })?;
    let Some(password) = conf.password else {
        return Ok(uri);
    };
    let rest = uri
        .strip_prefix("mongodb://")
        .ok_or_else(|| anyhow::anyhow!("URI must start with mongodb://"))?;
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (user, hosts) = authority
        .rsplit_once('@')
        .ok_or_else(|| anyhow::anyhow!("a password in --config needs a user in the URI"))?;
    let user = user.split_once(':').map_or(user, |(u, _)| u);
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(format!("mongodb://{user}:{encoded}@{hosts}{tail}"))
}

pub fn mongodump(uri: &str, archive: &Path, gzip: bool, db: Option<&str>) -> Result<()> {
    let uri = parse_uri(uri)?;
    if let (Some(a), Some(b)) = (db, uri.db.as_deref()) {
        if a != b {
            // mongo-tools refuses the same conflict.
            bail!("illegal argument combination: cannot specify database {b} in the URI and {a} with --db");
        }
    }
    let db = db
        .map(String::from)
        .or(uri.db.clone())
        .ok_or_else(|| anyhow!("name the database with --db or in the URI"))?;
    let mut c = Client::connect(&uri)?;
    let colls = first_batch(&c.command(&db, doc! {"listCollections": 1, "nameOnly": true})?)?;
    let file = BufWriter::new(
        File::create(archive).with_context(|| format!("creating {}", archive.display()))?,
    );
    let mut out: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        ))
    } else {
        Box::new(file)
    };
    let mut count = 0;
    for coll in colls {
        let name = coll.get_str("name")?.to_string();
        let ns = format!("{db}.{name}");
        let indexes = first_batch(&c.command(&db, doc! {"listIndexes": &name})?)?;
        doc! {"collection": &ns, "indexes": indexes.into_iter().map(Bson::Document).collect::<Vec<_>>()}.to_writer(&mut out)?;
        let docs = c.find_all(&db, &name)?;
        println!("dumped {} documents from {ns}", docs.len());
        for d in docs {
            doc! {"ns": &ns, "doc": d}.to_writer(&mut out)?;
            count += 1;
        }
    }
    out.flush()?;
    drop(out);
    println!("{count} document(s) dumped from {db}");
    Ok(())
}

/// Applies `--nsFrom A.* --nsTo B.*` (or exact namespaces) to a namespace.
fn rename(ns: &str, from: Option<&str>, to: Option<&str>) -> String {
    let (Some(from), Some(to)) = (from, to) else {
        return ns.to_string();
    };
    match (from.strip_suffix('*'), to.strip_suffix('*')) {
        (Some(fp), Some(tp)) => ns
            .strip_prefix(fp)
            .map(|rest| format!("{tp}{rest}"))
            .unwrap_or_else(|| ns.to_string()),
        _ if ns == from => to.to_string(),
        _ => ns.to_string(),
    }
}

/// Whether a namespace matches an `--nsInclude` pattern (`*` matches any run of characters,
/// `\` escapes the next one), as mongorestore's matcher does.
fn ns_matches(pattern: &str, ns: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len()).any(|i| go(&p[1..], &s[i..])),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&p[2..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = ns.chars().collect();
    go(&p, &s)
}

/// What mongorestore restores of an archive: `--nsInclude` patterns, plus `DB.*` when the
/// connection string names a database (mongo-tools treats it as `--db`, matched against the
/// archive's own namespaces, before any renaming); everything when neither is given.
fn includes(uri_db: Option<&str>, ns_include: &[String]) -> Vec<String> {
    let mut all = ns_include.to_vec();
    if let Some(db) = uri_db {
        all.push(format!(
            "{}.*",
            db.replace('\\', "\\\\")
                .replace('*', "\\*")
                .replace('$', "\\$")
        ));
    }
    if all.is_empty() {
        all.push("*".into());
    }
    all
}

pub fn mongorestore(
    uri: &str,
    archive: &Path,
    gzip: bool,
    drop: bool,
    ns_include: &[String],
    ns_from: Option<&str>,
    ns_to: Option<&str>,
) -> Result<()> {
    if ns_from.is_some() != ns_to.is_some() {
        bail!("--nsFrom and --nsTo go together");
    }
    let uri = parse_uri(uri)?;
    let include = includes(uri.db.as_deref(), ns_include);
    let wanted = |ns: &str| include.iter().any(|p| ns_matches(p, ns));
    let file = BufReader::new(
        File::open(archive).with_context(|| format!("opening {}", archive.display()))?,
    );
    let mut input: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let mut r = &bytes[..];
    let mut c = Client::connect(&uri)?;
    let mut batch: Vec<Bson> = Vec::new();
    let mut batch_bytes = 0;
    let mut current: Option<(String, String)> = None;
    let mut count = 0;
    let mut skipping = false;
    let flush =
        |c: &mut Client, target: &Option<(String, String)>, batch: &mut Vec<Bson>| -> Result<()> {
            if let (Some((db, coll)), false) = (target, batch.is_empty()) {
                c.command(
                    db,
                    doc! {"insert": coll, "documents": std::mem::take(batch), "ordered": true},
                )?;
            }
            Ok(())
        };
    while !r.is_empty() {
        let rec = Document::from_reader(&mut r).context("reading the archive")?;
        if let Ok(ns) = rec.get_str("collection") {
            flush(&mut c, &current, &mut batch)?;
            batch_bytes = 0;
            skipping = !wanted(ns);
            if skipping {
                println!("skipping {ns}: not included");
                current = None;
                continue;
            }
            let target = rename(ns, ns_from, ns_to);
            let (db, coll) = target
                .split_once('.')
                .ok_or_else(|| anyhow!("bad namespace {target}"))?;
            if drop {
                // A missing collection is fine to "drop".
                let _ = c.command(db, doc! {"drop": coll});
            }
            let indexes: Vec<Bson> = rec
                .get_array("indexes")
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|i| i.as_document().and_then(|d| d.get_str("name").ok()) != Some("_id_"))
                .collect();
            if indexes.is_empty() {
                let _ = c.command(db, doc! {"create": coll});
            } else {
                c.command(db, doc! {"createIndexes": coll, "indexes": indexes})?;
            }
            println!("restoring {ns} to {target}");
            current = Some((db.to_string(), coll.to_string()));
        } else if skipping {
            continue;
        } else {
            let d = rec
                .get_document("doc")
                .context("archive record without doc")?
                .clone();
            batch_bytes += bson::to_vec(&d)?.len();
            batch.push(Bson::Document(d));
            count += 1;
            // Stay well under the 16 MiB command size.
            if batch_bytes > 8 << 20 {
                flush(&mut c, &current, &mut batch)?;
                batch_bytes = 0;
            }
        }
    }
    flush(&mut c, &current, &mut batch)?;
    println!("{count} document(s) restored successfully. 0 document(s) failed to restore.");
    Ok(())
}

/// One accepted mongosh line, already parsed.
#[derive(Debug, PartialEq)]
pub enum ShellCommand {
    /// `createUser` with one or two roles (`(role, db)`), the shapes launch-tui writes.
    CreateUser {
        user: String,
        pwd: String,
        roles: Vec<(String, String)>,
    },
    DropUser(String),
    UpdateUser {
        user: String,
        pwd: String,
    },
    DropDatabase(String),
    /// `db.getSiblingDB(DB).auth(USER, PWD)`: authenticates the shell's connection.
    Auth {
        db: String,
        user: String,
        pwd: String,
    },
    /// Drops every collection of a database but the `system.` ones (what a `readWrite` user
    /// may do; `dropDatabase` needs more).
    DropCollections(String),
    Ping,
}

/// The drop-every-collection line, as launch-tui writes it.
const DROP_COLLECTIONS: &str = r#"db.getSiblingDB($S).getCollectionNames().forEach(function (c) { if (!c.startsWith("system.")) { db.getSiblingDB($S).getCollection(c).drop(); } })"#;

/// Matches `line` against a template where `$S` is a double-quoted JSON string;
/// whitespace outside strings is ignored, and one trailing `;` is allowed.
fn match_template(template: &str, line: &str) -> Option<Vec<String>> {
    let line = line.trim().strip_suffix(';').unwrap_or(line.trim());
    let mut out = Vec::new();
    let mut l = line;
    let mut t = template;
    loop {
        l = l.trim_start();
        t = t.trim_start();
        if t.is_empty() {
            return l.is_empty().then_some(out);
        }
        if let Some(rest) = t.strip_prefix("$S") {
            if !l.starts_with('"') {
                return None;
            }
            // Find the closing quote, honouring backslash escapes.
            let bytes = l.as_bytes();
            let mut i = 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            if i >= bytes.len() {
                return None;
            }
            out.push(serde_json::from_str::<String>(&l[..=i]).ok()?);
            l = &l[i + 1..];
            t = rest;
        } else {
            let c = t.chars().next()?;
            l = l.strip_prefix(c)?;
            t = &t[c.len_utf8()..];
        }
    }
}

pub fn parse_shell_line(line: &str) -> Option<ShellCommand> {
    for template in [
        r#"db.getSiblingDB("admin").createUser({user: $S, pwd: $S, roles: [{role: $S, db: $S}]})"#,
        r#"db.getSiblingDB("admin").createUser({user: $S, pwd: $S, roles: [{role: $S, db: $S}, {role: $S, db: $S}]})"#,
    ] {
        if let Some(v) = match_template(template, line) {
            return Some(ShellCommand::CreateUser {
                user: v[0].clone(),
                pwd: v[1].clone(),
                roles: v[2..]
                    .chunks(2)
                    .map(|r| (r[0].clone(), r[1].clone()))
                    .collect(),
            });
        }
    }
    if let Some(v) = match_template(r#"db.getSiblingDB("admin").dropUser($S)"#, line) {
        return Some(ShellCommand::DropUser(v[0].clone()));
    }
    if let Some(v) = match_template(
        r#"db.getSiblingDB("admin").updateUser($S, {pwd: $S})"#,
        line,
    ) {
        return Some(ShellCommand::UpdateUser {
            user: v[0].clone(),
            pwd: v[1].clone(),
        });
    }
    if let Some(v) = match_template(r#"db.getSiblingDB($S).dropDatabase()"#, line) {
        return Some(ShellCommand::DropDatabase(v[0].clone()));
    }
    if let Some(v) = match_template(r#"db.getSiblingDB($S).auth($S, $S)"#, line) {
        return Some(ShellCommand::Auth {
            db: v[0].clone(),
            user: v[1].clone(),
            pwd: v[2].clone(),
        });
    }
    if let Some(v) = match_template(DROP_COLLECTIONS, line) {
        // Both names must be the same database.
        return (v[0] == v[1]).then(|| ShellCommand::DropCollections(v[0].clone()));
    }
    match_template("db.runCommand({ping: 1})", line).map(|_| ShellCommand::Ping)
}

/// Parses the whole file first, so a file with any unsupported line runs nothing.
pub fn parse_shell_file(text: &str) -> Result<Vec<ShellCommand>> {
    let mut cmds = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        cmds.push(parse_shell_line(line).ok_or_else(|| {
            anyhow!(
                "line {}: not one of the shapes this stand-in accepts: {}",
                i + 1,
                line.trim()
            )
        })?);
    }
    Ok(cmds)
}

pub fn mongosh(uri: &str, file: &Path, quiet: bool) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let cmds = parse_shell_file(&text)?;
    let uri = parse_uri(uri)?;
    let mut c = Client::connect(&uri)?;
    for cmd in cmds {
        match cmd {
            ShellCommand::CreateUser { user, pwd, roles } => {
                let roles: Vec<Bson> = roles
                    .into_iter()
                    .map(|(role, db)| Bson::Document(doc! {"role": role, "db": db}))
                    .collect();
                c.command(
                    "admin",
                    doc! {"createUser": user, "pwd": pwd, "roles": roles},
                )?;
            }
            ShellCommand::DropUser(u) => {
                c.command("admin", doc! {"dropUser": u})?;
            }
            ShellCommand::UpdateUser { user, pwd } => {
                c.command("admin", doc! {"updateUser": user, "pwd": pwd})?;
            }
            ShellCommand::DropDatabase(db) => {
                c.command(&db, doc! {"dropDatabase": 1})?;
            }
            ShellCommand::Auth { db, user, pwd } => {
                c.authenticate(&db, &user, &pwd)?;
            }
            ShellCommand::DropCollections(db) => {
                let r = c.command(&db, doc! {"listCollections": 1, "nameOnly": true})?;
                for coll in crate::client::first_batch(&r)? {
                    let name = coll.get_str("name").unwrap_or_default().to_string();
                    if !name.is_empty() && !name.starts_with("system.") {
                        c.command(&db, doc! {"drop": name})?;
                    }
                }
            }
            ShellCommand::Ping => {
                c.command("admin", doc! {"ping": 1})?;
                println!("{{ ok: 1 }}");
            }
        }
    }
    if !quiet {
        println!("done");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_includes_follow_mongo_tools() {
        assert_eq!(includes(None, &[]), ["*"]);
        assert_eq!(includes(Some("chat"), &[]), ["chat.*"]);
        let inc = includes(None, &["chat.*".to_string()]);
        assert!(ns_matches(&inc[0], "chat.messages"));
        assert!(!ns_matches(&inc[0], "chat_green.messages"));
        assert!(!ns_matches(&inc[0], "admin.system.users"));
        assert!(ns_matches("a\\*b.*", "a*b.c"));
        assert!(!ns_matches("a\\*b.*", "axb.c"));
    }

    #[test]
    fn shell_shapes() {
        assert_eq!(
            parse_shell_line(
                r#"db.getSiblingDB("admin").createUser({user: "u", pwd: "p\"q", roles: [{role: "readWrite", db: "d"}]})"#
            ),
            Some(ShellCommand::CreateUser {
                user: "u".into(),
                pwd: "p\"q".into(),
                roles: vec![("readWrite".into(), "d".into())]
            })
        );
        assert_eq!(
            parse_shell_line(
                r#"db.getSiblingDB("admin").createUser({user: "u", pwd: "p", roles: [{role: "readWrite", db: "d"}, {role: "readWrite", db: "d_green"}]})"#
            ),
            Some(ShellCommand::CreateUser {
                user: "u".into(),
                pwd: "p".into(),
                roles: vec![
                    ("readWrite".into(), "d".into()),
                    ("readWrite".into(), "d_green".into())
                ]
            })
        );
        assert_eq!(
            parse_shell_line(r#"db.getSiblingDB("x").dropDatabase();"#),
            Some(ShellCommand::DropDatabase("x".into()))
        );
        assert_eq!(
            parse_shell_line("db.runCommand({ping: 1})"),
            Some(ShellCommand::Ping)
        );
        assert_eq!(parse_shell_line("db.users.find()"), None);
        assert!(parse_shell_file("db.runCommand({ping: 1})\nprint(1)\n").is_err());
        assert_eq!(
            parse_shell_line(r#"db.getSiblingDB("admin").auth("u", "p\u2028w")"#),
            Some(ShellCommand::Auth {
                db: "admin".into(),
                user: "u".into(),
                pwd: "p\u{2028}w".into()
            })
        );
        let drop = |a: &str, b: &str| DROP_COLLECTIONS.replacen("$S", a, 1).replacen("$S", b, 1);
        assert_eq!(
            parse_shell_line(&drop("\"d\"", "\"d\"")),
            Some(ShellCommand::DropCollections("d".into()))
        );
        assert_eq!(parse_shell_line(&drop("\"d\"", "\"e\"")), None);
    }

    #[test]
    fn ns_rename() {
        assert_eq!(rename("a.c", Some("a.*"), Some("b.*")), "b.c");
        assert_eq!(rename("x.c", Some("a.*"), Some("b.*")), "x.c");
        assert_eq!(rename("a.c", None, None), "a.c");
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn a_config_password_replaces_the_uri_one_and_survives_any_character() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        std::fs::write(&f, "password: \"p@ss:w/rd%?\"\n").unwrap();
        let u = tool_uri(
            Some("mongodb://app@127.0.0.1:27017/db?authSource=admin"),
            Some(&f),
        )
        .unwrap();
        let parsed = parse_uri(&u).unwrap();
        assert_eq!(parsed.user.as_deref(), Some("app"));
        assert_eq!(parsed.password.as_deref(), Some("p@ss:w/rd%?"));
        assert_eq!(parsed.db.as_deref(), Some("db"));
        std::fs::write(&f, "uri: mongodb://root@127.0.0.1:1/admin\npassword: x\n").unwrap();
        assert_eq!(
            tool_uri(None, Some(&f)).unwrap(),
            "mongodb://root:x@127.0.0.1:1/admin"
        );
        assert!(tool_uri(None, None).is_err());
        std::fs::write(&f, "pasword: typo\n").unwrap();
        assert!(tool_uri(Some("mongodb://a@h/d"), Some(&f)).is_err());
    }
}
