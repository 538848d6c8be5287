//! A tiny client over the same wire code, used by the dump/restore/shell subcommands.

use crate::scram::ClientConversation;
use crate::wire::{self, Request};
use anyhow::{anyhow, bail, Context, Result};
use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use std::io::BufReader;
use std::net::TcpStream;

#[derive(Debug, Clone, PartialEq)]
pub struct Uri {
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    pub db: Option<String>,
    pub auth_source: String,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `mongodb://[user:pass@]host[:port][/db][?authSource=X]` (first host only).
pub fn parse_uri(uri: &str) -> Result<Uri> {
    let rest = uri
        .strip_prefix("mongodb://")
        .ok_or_else(|| anyhow!("URI must start with mongodb://"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => {
            let (a, b) = u.split_once(':').unwrap_or((u, ""));
            (Some(percent_decode(a)), Some(percent_decode(b)))
        }
        None => (None, None),
    };
    let host = hosts.split(',').next().unwrap_or("127.0.0.1");
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().context("bad port in URI")?),
        None => (host.to_string(), 27017),
    };
    let db = (!path.is_empty()).then(|| percent_decode(path));
    let auth_source = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("authSource="))
        .map(percent_decode)
        .or_else(|| db.clone())
        .unwrap_or_else(|| "admin".into());
    Ok(Uri {
        user,
        password,
        host: if h.is_empty() { "127.0.0.1".into() } else { h },
        port,
        db,
        auth_source,
    })
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: i32,
}

impl Client {
    /// Connects and, when the URI has credentials, authenticates with SCRAM-SHA-256.
    pub fn connect(uri: &Uri) -> Result<Client> {
        let stream = TcpStream::connect((uri.host.as_str(), uri.port))
            .with_context(|| format!("connecting to {}:{}", uri.host, uri.port))?;
        let mut c = Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        };
        c.command("admin", doc! {"hello": 1})?;
        if let (Some(u), Some(p)) = (&uri.user, &uri.password) {
            c.authenticate(&uri.auth_source, u, p)?;
        }
        Ok(c)
    }

    /// Runs one command; a reply with ok != 1 becomes an error carrying errmsg.
    pub fn command(&mut self, db: &str, mut cmd: Document) -> Result<Document> {
        cmd.insert("$db", db);
        self.next_id += 1;
        wire::write_all(&mut self.writer, &wire::encode_msg(self.next_id, 0, &cmd)?)?;
        let frame = wire::read_frame(&mut self.reader)?
            .ok_or_else(|| anyhow!("server closed the connection"))?;
        let Request::Msg { body, .. } = frame.request else {
            bail!("unexpected reply opcode")
        };
        let ok = match body.get("ok") {
            Some(Bson::Double(d)) => *d == 1.0,
            Some(Bson::Int32(i)) => *i == 1,
            _ => false,
        };
        if !ok {
            bail!(
                "{} (code {})",
                body.get_str("errmsg").unwrap_or("command failed"),
                body.get_i32("code").unwrap_or(0)
            );
        }
        if let Ok(errs) = body.get_array("writeErrors") {
            if let Some(Bson::Document(e)) = errs.first() {
                bail!(
                    "{} (code {})",
                    e.get_str("errmsg").unwrap_or("write error"),
                    e.get_i32("code").unwrap_or(0)
                );
            }
        }
        Ok(body)
    }

    /// SCRAM-SHA-256 on this connection (mongosh's `db.auth(user, pwd)`).
    pub fn authenticate(&mut self, db: &str, user: &str, password: &str) -> Result<()> {
        let bin = |s: &str| {
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: s.as_bytes().to_vec(),
            })
        };
        let text = |d: &Document| match d.get("payload") {
            Some(Bson::Binary(b)) => String::from_utf8_lossy(&b.bytes).into_owned(),
            _ => String::new(),
        };
        let mut conv = ClientConversation::new(user, password);
        let r = self.command(db, doc! {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": bin(&conv.client_first()), "options": {"skipEmptyExchange": true}})?;
        let id = r.get("conversationId").cloned().unwrap_or(Bson::Int32(1));
        let fin = conv.client_final(&text(&r))?;
        let r = self.command(
            db,
            doc! {"saslContinue": 1, "conversationId": id.clone(), "payload": bin(&fin)},
        )?;
        conv.check_server_final(&text(&r))?;
        if !r.get_bool("done").unwrap_or(false) {
            self.command(
                db,
                doc! {"saslContinue": 1, "conversationId": id, "payload": bin("")},
            )?;
        }
        Ok(())
    }

    /// All documents of a find (the stand-in returns everything in firstBatch).
    pub fn find_all(&mut self, db: &str, coll: &str) -> Result<Vec<Document>> {
        let r = self.command(db, doc! {"find": coll, "filter": {}})?;
        first_batch(&r)
    }
}

pub fn first_batch(reply: &Document) -> Result<Vec<Document>> {
    Ok(reply
        .get_document("cursor")?
        .get_array("firstBatch")?
        .iter()
        .filter_map(|d| d.as_document().cloned())
        .collect())
}
