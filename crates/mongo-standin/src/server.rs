//! The server: a thread per connection, one global mutex over the data, commands as
//! documents in and documents out.

use crate::query::{self, QueryError};
use crate::scram::{self, Credentials, ServerConversation};
use crate::store::{Collection, Store, User};
use crate::wire::{self, Request};
use base64::Engine;
use bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, Document};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    pub bind_ips: Vec<String>,
    pub db_path: Option<PathBuf>,
    pub auth: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 27017,
            bind_ips: vec!["127.0.0.1".into()],
            db_path: None,
            auth: false,
        }
    }
}

/// A command failure in MongoDB's shape: `{ok: 0, errmsg, code, codeName}`.
#[derive(Debug)]
pub struct CmdError {
    pub code: i32,
    pub msg: String,
}

impl CmdError {
    fn new(code: i32, msg: impl Into<String>) -> Self {
        CmdError {
            code,
            msg: msg.into(),
        }
    }
    pub fn to_doc(&self) -> Document {
        doc! {"ok": 0.0, "errmsg": &self.msg, "code": self.code, "codeName": code_name(self.code)}
    }
}

impl From<QueryError> for CmdError {
    fn from(e: QueryError) -> Self {
        CmdError::new(e.code, e.msg)
    }
}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        CmdError::new(1, format!("storage error: {e}"))
    }
}

fn code_name(code: i32) -> &'static str {
    match code {
        2 => "BadValue",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        18 => "AuthenticationFailed",
        26 => "NamespaceNotFound",
        48 => "NamespaceExists",
        51003 => "Location51003",
        59 => "CommandNotFound",
        11000 => "DuplicateKey",
        _ => "UnknownError",
    }
}

type CmdResult = Result<Document, CmdError>;

pub struct Server {
    pub listeners: Vec<TcpListener>,
    pub store: Arc<Mutex<Store>>,
    pub auth: bool,
}

static CONNECTION_ID: AtomicI32 = AtomicI32::new(1);

impl Server {
    /// Binds every address (port 0 picks a free port, reused for the other addresses) and loads the data.
    pub fn bind(cfg: &Config) -> anyhow::Result<Server> {
        let store = Store::open(cfg.db_path.clone())?;
        let mut listeners = Vec::new();
        let mut port = cfg.port;
        for ip in &cfg.bind_ips {
            let ip: IpAddr = ip
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("bad bindIp {ip:?}: {e}"))?;
            let l = TcpListener::bind(SocketAddr::new(ip, port))?;
            port = l.local_addr()?.port();
            listeners.push(l);
        }
        anyhow::ensure!(!listeners.is_empty(), "no bind address");
        Ok(Server {
            listeners,
            store: Arc::new(Mutex::new(store)),
            auth: cfg.auth,
        })
    }

    pub fn port(&self) -> u16 {
        self.listeners[0]
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(0)
    }

    /// Accepts connections forever (one thread per listener, one per connection).
    pub fn run(self) {
        let mut handles = Vec::new();
        for l in self.listeners {
            let store = self.store.clone();
            let auth = self.auth;
            handles.push(std::thread::spawn(move || {
                for stream in l.incoming() {
                    let Ok(stream) = stream else { continue };
                    let store = store.clone();
                    std::thread::spawn(move || {
                        let peer = stream.peer_addr().ok();
                        match Connection::new(store, auth, peer).serve(stream) {
                            // A client that hangs up without a goodbye is normal.
                            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                            Err(e) => println!("connection {peer:?}: {e}"),
                            Ok(()) => {}
                        }
                    });
                }
            }));
        }
        for h in handles {
            let _ = h.join();
        }
    }
}

struct Connection {
    store: Arc<Mutex<Store>>,
    auth: bool,
    loopback: bool,
    id: i32,
    user: Option<User>,
    conversation: Option<ServerConversation>,
}

fn ok(mut d: Document) -> CmdResult {
    d.insert("ok", 1.0);
    Ok(d)
}

fn cursor(ns: &str, docs: Vec<Document>) -> CmdResult {
    ok(
        doc! {"cursor": {"firstBatch": docs.into_iter().map(Bson::Document).collect::<Vec<_>>(), "id": 0i64, "ns": ns}},
    )
}

fn as_i64(v: Option<&Bson>) -> i64 {
    match v {
        Some(Bson::Int32(i)) => *i as i64,
        Some(Bson::Int64(i)) => *i,
        Some(Bson::Double(d)) => *d as i64,
        Some(Bson::Boolean(b)) => *b as i64,
        _ => 0,
    }
}

fn get_doc(cmd: &Document, k: &str) -> Document {
    cmd.get_document(k).cloned().unwrap_or_default()
}

fn payload(cmd: &Document) -> String {
    match cmd.get("payload") {
        Some(Bson::Binary(b)) => String::from_utf8_lossy(&b.bytes).into_owned(),
        Some(Bson::String(s)) => String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_default(),
        )
        .unwrap_or_default(),
        _ => String::new(),
    }
}

fn bin_payload(s: &str) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: s.as_bytes().to_vec(),
    })
}

/// Commands allowed before authentication.
const OPEN_COMMANDS: &[&str] = &[
    "hello",
    "ismaster",
    "ping",
    "saslstart",
    "saslcontinue",
    "buildinfo",
    "endsessions",
    "logout",
    "getnonce",
];
/// Commands any authenticated user may run whatever database they name.
const ANY_DB_COMMANDS: &[&str] = &[
    "connectionstatus",
    "listdatabases",
    "killcursors",
    "getparameter",
    "getlog",
    "serverstatus",
    "usersinfo",
    "getmore",
];

impl Connection {
    fn new(store: Arc<Mutex<Store>>, auth: bool, peer: Option<SocketAddr>) -> Self {
        Connection {
            store,
            auth,
            loopback: peer.is_some_and(|p| p.ip().is_loopback()),
            id: CONNECTION_ID.fetch_add(1, Ordering::SeqCst),
            user: None,
            conversation: None,
        }
    }

    fn serve(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = std::io::BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let mut next_id = 1;
        while let Some(frame) = wire::read_frame(&mut reader)? {
            next_id += 1;
            match frame.request {
                Request::Msg { flags, body } => {
                    let reply = self.run(body);
                    if flags & wire::MORE_TO_COME == 0 {
                        wire::write_all(
                            &mut writer,
                            &wire::encode_msg(next_id, frame.request_id, &reply)?,
                        )?;
                    }
                }
                Request::Query {
                    collection,
                    mut query,
                } => {
                    let db = collection
                        .strip_suffix(".$cmd")
                        .unwrap_or("admin")
                        .to_string();
                    query.insert("$db", db);
                    let reply = self.run(query);
                    wire::write_all(
                        &mut writer,
                        &wire::encode_reply(next_id, frame.request_id, &reply)?,
                    )?;
                }
                Request::Other(op) => {
                    println!("connection {}: unsupported opcode {op}, closing", self.id);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, cmd: Document) -> Document {
        let name = cmd.keys().next().cloned().unwrap_or_default();
        let db = cmd.get_str("$db").unwrap_or("admin").to_string();
        let result = self
            .authorize(&name, &db)
            .and_then(|()| self.dispatch(&name, &db, &cmd));
        result.unwrap_or_else(|e| {
            println!(
                "connection {}: command {name} on {db} failed: {} ({})",
                self.id, e.msg, e.code
            );
            e.to_doc()
        })
    }

    fn authorize(&self, name: &str, db: &str) -> Result<(), CmdError> {
        let lname = name.to_ascii_lowercase();
        if !self.auth || OPEN_COMMANDS.contains(&lname.as_str()) {
            return Ok(());
        }
        let unauthorized = || CmdError::new(13, format!("Command {name} requires authentication"));
        let Some(user) = &self.user else {
            // Localhost exception: the first user may be created from loopback.
            if lname == "createuser" && self.loopback && self.store.lock().unwrap().users.is_empty()
            {
                return Ok(());
            }
            return Err(unauthorized());
        };
        let user_admin = ["createuser", "dropuser", "updateuser"].contains(&lname.as_str());
        if user.is_root()
            || (!user_admin && (ANY_DB_COMMANDS.contains(&lname.as_str()) || user.may_use(db)))
        {
            return Ok(());
        }
        Err(CmdError::new(
            13,
            format!("not authorized on {db} to execute command {{ {name}: ... }}"),
        ))
    }

    fn dispatch(&mut self, name: &str, db: &str, cmd: &Document) -> CmdResult {
        let coll = cmd.get_str(name).unwrap_or("").to_string();
        let ns = format!("{db}.{coll}");
        match name.to_ascii_lowercase().as_str() {
            "hello" | "ismaster" => self.hello(name, cmd),
            "ping" | "logout" | "endsessions" | "killcursors" => {
                if name.eq_ignore_ascii_case("logout") {
                    self.user = None;
                }
                ok(doc! {})
            }
            "buildinfo" => ok(
                doc! {"version": "7.0.0-standin", "versionArray": [7, 0, 0, 0], "gitVersion": "standin", "bits": 64, "maxBsonObjectSize": 16777216, "storageEngines": ["standin"]},
            ),
            "getparameter" => ok(doc! {"featureCompatibilityVersion": {"version": "7.0"}}),
            "getlog" => ok(doc! {"totalLinesWritten": 0, "log": []}),
            "serverstatus" => ok(
                doc! {"host": "standin", "version": "7.0.0-standin", "process": "mongo-standin", "connections": {"current": 1}},
            ),
            "connectionstatus" => {
                let users: Vec<Bson> = self
                    .user
                    .iter()
                    .map(|u| Bson::Document(doc! {"user": &u.name, "db": "admin"}))
                    .collect();
                ok(doc! {"authInfo": {"authenticatedUsers": users, "authenticatedUserRoles": []}})
            }
            "saslstart" => self.sasl_start(cmd),
            "saslcontinue" => self.sasl_continue(cmd),
            "getmore" => ok(
                doc! {"cursor": {"nextBatch": [], "id": 0i64, "ns": format!("{db}.{}", cmd.get_str("collection").unwrap_or(""))}},
            ),
            "createuser" => self.create_user(db, cmd),
            "updateuser" => self.update_user(db, cmd),
            "dropuser" => self.drop_user(db, cmd),
            "usersinfo" => self.users_info(cmd),
            "listdatabases" => self.list_databases(cmd),
            _ => self.data_command(name, db, &coll, &ns, cmd),
        }
    }

    fn hello(&self, name: &str, cmd: &Document) -> CmdResult {
        let mut d = doc! {
            "isWritablePrimary": true,
            "ismaster": true,
            "maxBsonObjectSize": 16777216,
            "maxMessageSizeBytes": 48000000,
            "maxWriteBatchSize": 100000,
            "localTime": bson::DateTime::now(),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": self.id,
            "minWireVersion": 0,
            "maxWireVersion": 21,
            "readOnly": false,
        };
        if name == "hello" {
            d.remove("ismaster");
        }
        if let Ok(who) = cmd.get_str("saslSupportedMechs") {
            let user = who.split_once('.').map(|(_, u)| u).unwrap_or(who);
            if self
                .store
                .lock()
                .unwrap()
                .users
                .iter()
                .any(|u| u.name == user)
            {
                d.insert("saslSupportedMechs", vec!["SCRAM-SHA-256"]);
            }
        }
        ok(d)
    }

    fn sasl_start(&mut self, cmd: &Document) -> CmdResult {
        let failed = || CmdError::new(18, "Authentication failed.");
        if cmd.get_str("mechanism") != Ok("SCRAM-SHA-256") {
            return Err(CmdError::new(
                2,
                format!(
                    "Received authentication for mechanism {} which is not enabled",
                    cmd.get_str("mechanism").unwrap_or("?")
                ),
            ));
        }
        let client_first = payload(cmd);
        let bare = client_first
            .strip_prefix("n,,")
            .ok_or_else(failed)?
            .to_string();
        let user = scram::decode_name(&scram::attr(&bare, 'n').ok_or_else(failed)?);
        let client_nonce = scram::attr(&bare, 'r').ok_or_else(failed)?;
        let creds = self
            .store
            .lock()
            .unwrap()
            .users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.creds.clone());
        // An unknown user still gets a challenge, so the failure looks like a wrong password.
        let creds = creds.unwrap_or_else(|| Credentials::new(&scram::nonce()));
        let nonce = format!("{client_nonce}{}", scram::nonce());
        let b64 = base64::engine::general_purpose::STANDARD;
        let server_first = format!(
            "r={nonce},s={},i={}",
            b64.encode(&creds.salt),
            creds.iterations
        );
        self.conversation = Some(ServerConversation {
            user,
            client_first_bare: bare,
            server_first: server_first.clone(),
            nonce,
            creds,
            done: false,
        });
        ok(doc! {"conversationId": 1, "done": false, "payload": bin_payload(&server_first)})
    }

    fn sasl_continue(&mut self, cmd: &Document) -> CmdResult {
        let failed = CmdError::new(18, "Authentication failed.");
        let Some(conv) = self.conversation.as_mut() else {
            return Err(failed);
        };
        if conv.done {
            // The empty final exchange of drivers that do not skip it.
            self.conversation = None;
            return ok(doc! {"conversationId": 1, "done": true, "payload": bin_payload("")});
        }
        let Some(server_final) = conv.verify_final(&payload(cmd)) else {
            self.conversation = None;
            return Err(failed);
        };
        let store = self.store.lock().unwrap();
        let Some(user) = store
            .users
            .iter()
            .find(|u| u.name == conv.user && u.creds == conv.creds)
            .cloned()
        else {
            self.conversation = None;
            return Err(failed);
        };
        drop(store);
        println!("connection {}: authenticated as {}", self.id, user.name);
        self.user = Some(user);
        conv.done = true;
        // The driver asks to skip the empty exchange; we always may finish here.
        let skip = cmd
            .get_document("options")
            .ok()
            .and_then(|o| o.get_bool("skipEmptyExchange").ok())
            .unwrap_or(true);
        if skip {
            self.conversation = None;
        }
        ok(doc! {"conversationId": 1, "done": skip, "payload": bin_payload(&server_final)})
    }

    fn parse_roles(cmd: &Document) -> Result<Vec<(String, String)>, CmdError> {
        let mut roles = Vec::new();
        for r in cmd
            .get_array("roles")
            .map_err(|_| CmdError::new(9, "roles must be an array"))?
        {
            let (role, rdb) = match r {
                Bson::Document(d) => (
                    d.get_str("role").unwrap_or("").to_string(),
                    d.get_str("db").unwrap_or("admin").to_string(),
                ),
                Bson::String(s) => (s.clone(), "admin".to_string()),
                _ => return Err(CmdError::new(9, "bad role")),
            };
            if role != "readWrite" && role != "root" {
                return Err(CmdError::new(
                    31,
                    format!("Role {role}@{rdb} is not supported by this stand-in"),
                ));
            }
            roles.push((role, rdb));
        }
        Ok(roles)
    }

    fn create_user(&mut self, db: &str, cmd: &Document) -> CmdResult {
        if db != "admin" {
            return Err(CmdError::new(
                2,
                "the stand-in keeps users in the admin database only",
            ));
        }
        let name = cmd
            .get_str("createUser")
            .map_err(|_| CmdError::new(9, "createUser needs a name"))?
            .to_string();
        let pwd = cmd
            .get_str("pwd")
            .map_err(|_| CmdError::new(9, "createUser needs pwd"))?;
        let roles = Self::parse_roles(cmd)?;
        let mut store = self.store.lock().unwrap();
        if store.users.iter().any(|u| u.name == name) {
            return Err(CmdError::new(
                51003,
                format!("User \"{name}@admin\" already exists"),
            ));
        }
        store.users.push(User {
            name,
            roles,
            creds: Credentials::new(pwd),
        });
        store.persist_users()?;
        ok(doc! {})
    }

    fn update_user(&mut self, db: &str, cmd: &Document) -> CmdResult {
        let name = cmd.get_str("updateUser").unwrap_or("").to_string();
        let roles = if cmd.contains_key("roles") {
            Some(Self::parse_roles(cmd)?)
        } else {
            None
        };
        let mut store = self.store.lock().unwrap();
        let user = store
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| CmdError::new(11, format!("User {name}@{db} not found")))?;
        if let Ok(pwd) = cmd.get_str("pwd") {
            user.creds = Credentials::new(pwd);
        }
        if let Some(r) = roles {
            user.roles = r;
        }
        store.persist_users()?;
        ok(doc! {})
    }

    fn drop_user(&mut self, db: &str, cmd: &Document) -> CmdResult {
        let name = cmd.get_str("dropUser").unwrap_or("").to_string();
        let mut store = self.store.lock().unwrap();
        let before = store.users.len();
        store.users.retain(|u| u.name != name);
        if store.users.len() == before {
            return Err(CmdError::new(11, format!("User {name}@{db} not found")));
        }
        store.persist_users()?;
        ok(doc! {})
    }

    fn users_info(&self, cmd: &Document) -> CmdResult {
        let store = self.store.lock().unwrap();
        let want: Option<String> = match cmd.get("usersInfo") {
            Some(Bson::String(s)) => Some(s.clone()),
            Some(Bson::Document(d)) => d.get_str("user").ok().map(String::from),
            _ => None,
        };
        let users: Vec<Bson> = store
            .users
            .iter()
            .filter(|u| want.as_ref().is_none_or(|w| *w == u.name))
            .map(|u| {
                Bson::Document(doc! {"_id": format!("admin.{}", u.name), "user": &u.name, "db": "admin",
                "roles": u.roles.iter().map(|(r, d)| Bson::Document(doc! {"role": r, "db": d})).collect::<Vec<_>>(),
                "mechanisms": ["SCRAM-SHA-256"]})
            })
            .collect();
        ok(doc! {"users": users})
    }

    fn list_databases(&self, cmd: &Document) -> CmdResult {
        let store = self.store.lock().unwrap();
        let dbs: Vec<Bson> = store
            .dbs
            .iter()
            .filter(|(name, colls)| {
                !colls.is_empty() && self.user.as_ref().is_none_or(|u| u.may_use(name))
            })
            .map(|(name, colls)| {
                let size: i64 = colls
                    .values()
                    .flat_map(|c| c.docs.iter())
                    .map(|d| bson::to_vec(d).map(|v| v.len() as i64).unwrap_or(0))
                    .sum();
                if cmd.get_bool("nameOnly").unwrap_or(false) {
                    Bson::Document(doc! {"name": name})
                } else {
                    Bson::Document(doc! {"name": name, "sizeOnDisk": size, "empty": false})
                }
            })
            .collect();
        ok(doc! {"databases": dbs, "totalSize": 0i64})
    }

    fn data_command(
        &mut self,
        name: &str,
        db: &str,
        coll: &str,
        ns: &str,
        cmd: &Document,
    ) -> CmdResult {
        let mut guard = self.store.lock().unwrap();
        let store = &mut *guard;
        let lname = name.to_ascii_lowercase();
        match lname.as_str() {
            "find" => {
                let filter = get_doc(cmd, "filter");
                let mut docs = filtered(store, db, coll, &filter)?;
                if let Ok(sort) = cmd.get_document("sort") {
                    query::sort_docs(&mut docs, sort);
                }
                let skip = as_i64(cmd.get("skip")).max(0) as usize;
                let limit = as_i64(cmd.get("limit")).unsigned_abs() as usize;
                let proj = get_doc(cmd, "projection");
                let docs: Vec<Document> = docs
                    .into_iter()
                    .skip(skip)
                    .take(if limit == 0 { usize::MAX } else { limit })
                    .map(|d| query::project(&d, &proj))
                    .collect();
                cursor(ns, docs)
            }
            "count" => {
                let mut n = filtered(store, db, coll, &get_doc(cmd, "query"))?.len() as i64;
                n = (n - as_i64(cmd.get("skip")).max(0)).max(0);
                let limit = as_i64(cmd.get("limit")).abs();
                if limit > 0 {
                    n = n.min(limit);
                }
                ok(doc! {"n": n})
            }
            "distinct" => {
                let key = cmd.get_str("key").unwrap_or("");
                let mut values: Vec<Bson> = Vec::new();
                for d in filtered(store, db, coll, &get_doc(cmd, "query"))? {
                    let vals = match query::get_path(&d, key) {
                        Some(Bson::Array(a)) => a.clone(),
                        Some(v) => vec![v.clone()],
                        None => vec![],
                    };
                    for v in vals {
                        if !values.iter().any(|x| query::compare(x, &v).is_eq()) {
                            values.push(v);
                        }
                    }
                }
                ok(doc! {"values": values})
            }
            "aggregate" => {
                let pipeline = cmd
                    .get_array("pipeline")
                    .map_err(|_| CmdError::new(9, "aggregate needs a pipeline"))?;
                let docs = filtered(store, db, coll, &Document::new())?;
                cursor(ns, aggregate(docs, pipeline)?)
            }
            "insert" => {
                let docs = cmd
                    .get_array("documents")
                    .map_err(|_| CmdError::new(9, "insert needs documents"))?
                    .clone();
                let c = store
                    .dbs
                    .entry(db.into())
                    .or_default()
                    .entry(coll.into())
                    .or_default();
                let mut n = 0;
                let mut errors = Vec::new();
                let ordered = cmd.get_bool("ordered").unwrap_or(true);
                for (i, d) in docs.iter().enumerate() {
                    let Some(d) = d.as_document() else { continue };
                    // Like MongoDB, store `_id` first (generated when missing).
                    let mut rest = d.clone();
                    let id = rest
                        .remove("_id")
                        .unwrap_or_else(|| Bson::ObjectId(ObjectId::new()));
                    let mut d = doc! {"_id": id};
                    d.extend(rest);
                    if let Some(msg) = unique_violation(c, &d, None, ns) {
                        errors.push(Bson::Document(
                            doc! {"index": i as i32, "code": 11000, "errmsg": msg},
                        ));
                        if ordered {
                            break;
                        }
                        continue;
                    }
                    c.docs.push(d);
                    n += 1;
                }
                store.persist(db, coll)?;
                write_reply(n, errors, None)
            }
            "update" => {
                let updates = cmd
                    .get_array("updates")
                    .map_err(|_| CmdError::new(9, "update needs updates"))?
                    .clone();
                let (mut n, mut modified) = (0i64, 0i64);
                let mut upserted = Vec::new();
                let mut errors = Vec::new();
                for (i, u) in updates.iter().enumerate() {
                    let u = u.as_document().cloned().unwrap_or_default();
                    let spec = UpdateSpec {
                        filter: get_doc(&u, "q"),
                        update: u.get_document("u").cloned().map_err(|_| {
                            CmdError::new(9, "update pipelines are not supported by the stand-in")
                        })?,
                        multi: u.get_bool("multi").unwrap_or(false),
                        upsert: u.get_bool("upsert").unwrap_or(false),
                    };
                    match update_docs(store, db, coll, &spec) {
                        Ok(r) => {
                            n += r.matched;
                            modified += r.modified;
                            if let Some(id) = r.upserted {
                                n += 1;
                                upserted.push(Bson::Document(doc! {"index": i as i32, "_id": id}));
                            }
                        }
                        Err(e) => {
                            errors.push(Bson::Document(
                                doc! {"index": i as i32, "code": e.code, "errmsg": e.msg},
                            ));
                            break;
                        }
                    }
                }
                let mut reply = write_reply(n, errors, Some(modified))?;
                if !upserted.is_empty() {
                    reply.insert("upserted", upserted);
                }
                Ok(reply)
            }
            "delete" => {
                let deletes = cmd
                    .get_array("deletes")
                    .map_err(|_| CmdError::new(9, "delete needs deletes"))?
                    .clone();
                let mut n = 0i64;
                if let Some(c) = store.dbs.get_mut(db).and_then(|d| d.get_mut(coll)) {
                    for del in deletes.iter().filter_map(|d| d.as_document()) {
                        let filter = get_doc(del, "q");
                        let limit = as_i64(del.get("limit"));
                        // Matches are found before anything changes, so a bad filter removes nothing;
                        // limit 1 removes only the first match, limit 0 all of them.
                        let mut remove = Vec::new();
                        for (i, d) in c.docs.iter().enumerate() {
                            if query::matches(d, &filter)? {
                                remove.push(i);
                                if limit != 0 {
                                    break;
                                }
                            }
                        }
                        n += remove.len() as i64;
                        let mut i = 0;
                        c.docs.retain(|_| {
                            i += 1;
                            !remove.contains(&(i - 1))
                        });
                    }
                }
                store.persist(db, coll)?;
                write_reply(n, Vec::new(), None)
            }
            "findandmodify" => find_and_modify(store, db, coll, cmd),
            "createindexes" => {
                let c = store
                    .dbs
                    .entry(db.into())
                    .or_default()
                    .entry(coll.into())
                    .or_default();
                let before = c.indexes.len() as i32;
                for spec in cmd
                    .get_array("indexes")
                    .map_err(|_| CmdError::new(9, "createIndexes needs indexes"))?
                {
                    let Some(spec) = spec.as_document() else {
                        continue;
                    };
                    let name = spec
                        .get_str("name")
                        .map(String::from)
                        .unwrap_or_else(|_| index_name(&get_doc(spec, "key")));
                    if c.indexes
                        .iter()
                        .any(|i| i.get_str("name") == Ok(name.as_str()))
                    {
                        continue;
                    }
                    let mut spec = spec.clone();
                    spec.insert("name", name.clone());
                    spec.insert("v", 2);
                    if spec.get_bool("unique").unwrap_or(false) {
                        // Refuse a unique index the existing data already violates.
                        let key = get_doc(&spec, "key");
                        for (i, d) in c.docs.iter().enumerate() {
                            if c.docs[..i]
                                .iter()
                                .any(|o| index_key(o, &key) == index_key(d, &key))
                            {
                                return Err(CmdError::new(
                                    11000,
                                    format!(
                                        "E11000 duplicate key error collection: {ns} index: {name}"
                                    ),
                                ));
                            }
                        }
                    }
                    c.indexes.push(spec);
                }
                let after = c.indexes.len() as i32;
                store.persist(db, coll)?;
                ok(
                    doc! {"numIndexesBefore": before, "numIndexesAfter": after, "createdCollectionAutomatically": false},
                )
            }
            "listindexes" => {
                let c = store
                    .dbs
                    .get(db)
                    .and_then(|d| d.get(coll))
                    .ok_or_else(|| CmdError::new(26, format!("ns does not exist: {ns}")))?;
                cursor(ns, c.indexes.clone())
            }
            "dropindexes" => {
                let c = store
                    .dbs
                    .get_mut(db)
                    .and_then(|d| d.get_mut(coll))
                    .ok_or_else(|| CmdError::new(26, format!("ns not found {ns}")))?;
                match cmd.get("index") {
                    Some(Bson::String(s)) if s == "*" => c.indexes.truncate(1),
                    Some(Bson::String(s)) => c
                        .indexes
                        .retain(|i| i.get_str("name") != Ok(s.as_str()) || s == "_id_"),
                    Some(Bson::Document(k)) => c.indexes.retain(|i| {
                        i.get_document("key") != Ok(k) || i.get_str("name") == Ok("_id_")
                    }),
                    _ => {}
                }
                store.persist(db, coll)?;
                ok(doc! {"nIndexesWas": 0})
            }
            "listcollections" => {
                let filter = get_doc(cmd, "filter");
                let mut out = Vec::new();
                for name in store
                    .dbs
                    .get(db)
                    .map(|d| d.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    let info = doc! {"name": &name, "type": "collection", "options": {}, "info": {"readOnly": false}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}};
                    if query::matches(&info, &filter)? {
                        out.push(if cmd.get_bool("nameOnly").unwrap_or(false) {
                            doc! {"name": name, "type": "collection"}
                        } else {
                            info
                        });
                    }
                }
                cursor(&format!("{db}.$cmd.listCollections"), out)
            }
            "create" => {
                let d = store.dbs.entry(db.into()).or_default();
                if d.contains_key(coll) {
                    return Err(CmdError::new(
                        48,
                        format!("Collection {ns} already exists."),
                    ));
                }
                d.insert(coll.into(), Collection::new());
                store.persist(db, coll)?;
                ok(doc! {})
            }
            "drop" => {
                let removed = store.dbs.get_mut(db).and_then(|d| d.remove(coll));
                if removed.is_none() {
                    return Err(CmdError::new(26, "ns not found"));
                }
                store.persist(db, coll)?;
                ok(doc! {"ns": ns, "nIndexesWas": 1})
            }
            "dropdatabase" => {
                store.dbs.remove(db);
                store.persist_db_removed(db)?;
                ok(doc! {"dropped": db})
            }
            _ => Err(CmdError::new(59, format!("no such command: '{name}'"))),
        }
    }
}

fn write_reply(n: i64, errors: Vec<Bson>, modified: Option<i64>) -> CmdResult {
    let mut d = doc! {"n": n};
    if let Some(m) = modified {
        d.insert("nModified", m);
    }
    if !errors.is_empty() {
        d.insert("writeErrors", errors);
    }
    ok(d)
}

fn filtered(
    store: &Store,
    db: &str,
    coll: &str,
    filter: &Document,
) -> Result<Vec<Document>, CmdError> {
    let mut out = Vec::new();
    if let Some(c) = store.dbs.get(db).and_then(|d| d.get(coll)) {
        for d in &c.docs {
            if query::matches(d, filter)? {
                out.push(d.clone());
            }
        }
    }
    Ok(out)
}

fn index_name(key: &Document) -> String {
    key.iter()
        .map(|(k, v)| format!("{k}_{}", as_i64(Some(v))))
        .collect::<Vec<_>>()
        .join("_")
}

fn index_key(d: &Document, key: &Document) -> Vec<Bson> {
    key.keys()
        .map(|k| query::get_path(d, k).cloned().unwrap_or(Bson::Null))
        .collect()
}

/// The E11000 message when `d` would collide with another document on `_id` or a unique index.
fn unique_violation(c: &Collection, d: &Document, skip: Option<usize>, ns: &str) -> Option<String> {
    for idx in &c.indexes {
        let name = idx.get_str("name").unwrap_or("");
        if name != "_id_" && !idx.get_bool("unique").unwrap_or(false) {
            continue;
        }
        let key = get_doc(idx, "key");
        let mine = index_key(d, &key);
        let clash = c.docs.iter().enumerate().any(|(i, o)| {
            Some(i) != skip
                && index_key(o, &key)
                    .iter()
                    .zip(&mine)
                    .all(|(a, b)| query::compare(a, b).is_eq())
        });
        if clash {
            let dup: Vec<String> = key
                .keys()
                .zip(&mine)
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            return Some(format!(
                "E11000 duplicate key error collection: {ns} index: {name} dup key: {{ {} }}",
                dup.join(", ")
            ));
        }
    }
    None
}

struct UpdateSpec {
    filter: Document,
    update: Document,
    multi: bool,
    upsert: bool,
}

struct UpdateResult {
    matched: i64,
    modified: i64,
    upserted: Option<Bson>,
    /// Index of the last touched document (for findAndModify).
    last: Option<usize>,
}

fn update_docs(
    store: &mut Store,
    db: &str,
    coll: &str,
    spec: &UpdateSpec,
) -> Result<UpdateResult, CmdError> {
    let ns = format!("{db}.{coll}");
    let c = store
        .dbs
        .entry(db.into())
        .or_default()
        .entry(coll.into())
        .or_default();
    let mut r = UpdateResult {
        matched: 0,
        modified: 0,
        upserted: None,
        last: None,
    };
    for i in 0..c.docs.len() {
        if !query::matches(&c.docs[i], &spec.filter)? {
            continue;
        }
        r.matched += 1;
        let mut new = c.docs[i].clone();
        query::apply_update(&mut new, &spec.update, false)?;
        if new.get("_id") != c.docs[i].get("_id") {
            return Err(CmdError::new(
                66,
                "Performing an update on the path '_id' would modify the immutable field '_id'",
            ));
        }
        if let Some(msg) = unique_violation(c, &new, Some(i), &ns) {
            return Err(CmdError::new(11000, msg));
        }
        if new != c.docs[i] {
            r.modified += 1;
            c.docs[i] = new;
        }
        r.last = Some(i);
        if !spec.multi {
            break;
        }
    }
    if r.matched == 0 && spec.upsert {
        let mut new = if query::is_operator_update(&spec.update) {
            query::upsert_seed(&spec.filter)
        } else {
            Document::new()
        };
        query::apply_update(&mut new, &spec.update, true)?;
        if !new.contains_key("_id") {
            let id = query::upsert_seed(&spec.filter)
                .get("_id")
                .cloned()
                .unwrap_or_else(|| Bson::ObjectId(ObjectId::new()));
            let mut with_id = doc! {"_id": id};
            with_id.extend(new);
            new = with_id;
        }
        if let Some(msg) = unique_violation(c, &new, None, &ns) {
            return Err(CmdError::new(11000, msg));
        }
        r.upserted = new.get("_id").cloned();
        c.docs.push(new);
        r.last = Some(c.docs.len() - 1);
    }
    if r.modified > 0 || r.upserted.is_some() {
        store.persist(db, coll)?;
    }
    Ok(r)
}

fn find_and_modify(store: &mut Store, db: &str, coll: &str, cmd: &Document) -> CmdResult {
    let filter = get_doc(cmd, "query");
    let mut candidates = filtered(store, db, coll, &filter)?;
    if let Ok(sort) = cmd.get_document("sort") {
        query::sort_docs(&mut candidates, sort);
    }
    let target = candidates.into_iter().next();
    let proj = get_doc(cmd, "fields");
    let out = |d: Option<Document>| {
        d.map(|d| Bson::Document(query::project(&d, &proj)))
            .unwrap_or(Bson::Null)
    };
    if cmd.get_bool("remove").unwrap_or(false) {
        if let Some(t) = &target {
            if let Some(c) = store.dbs.get_mut(db).and_then(|d| d.get_mut(coll)) {
                c.docs.retain(|d| d.get("_id") != t.get("_id"));
            }
            store.persist(db, coll)?;
        }
        let n = target.is_some() as i32;
        return ok(doc! {"lastErrorObject": {"n": n}, "value": out(target)});
    }
    let update = cmd
        .get_document("update")
        .map_err(|_| CmdError::new(9, "findAndModify needs update or remove"))?
        .clone();
    // Narrow to the chosen document by _id so sort decides which one is updated.
    let narrowed = match &target {
        Some(t) => doc! {"_id": t.get("_id").cloned().unwrap_or(Bson::Null)},
        None => filter.clone(),
    };
    let spec = UpdateSpec {
        filter: narrowed,
        update,
        multi: false,
        upsert: cmd.get_bool("upsert").unwrap_or(false) && target.is_none(),
    };
    let r = update_docs(store, db, coll, &spec)?;
    let after = r.last.and_then(|i| {
        store
            .dbs
            .get(db)
            .and_then(|d| d.get(coll))
            .map(|c| c.docs[i].clone())
    });
    let mut leo = doc! {"n": 1, "updatedExisting": target.is_some()};
    if let Some(id) = &r.upserted {
        leo.insert("upserted", id.clone());
    }
    if target.is_none() && r.upserted.is_none() {
        leo = doc! {"n": 0, "updatedExisting": false};
    }
    let value = if cmd.get_bool("new").unwrap_or(false) {
        after
    } else {
        target
    };
    ok(doc! {"lastErrorObject": leo, "value": out(value)})
}

fn aggregate(mut docs: Vec<Document>, pipeline: &[Bson]) -> Result<Vec<Document>, CmdError> {
    for stage in pipeline {
        let stage = stage
            .as_document()
            .ok_or_else(|| CmdError::new(9, "pipeline stages must be objects"))?;
        let (op, arg) = stage
            .iter()
            .next()
            .ok_or_else(|| CmdError::new(9, "empty stage"))?;
        docs = match op.as_str() {
            "$match" => {
                let f = arg.as_document().cloned().unwrap_or_default();
                let mut out = Vec::new();
                for d in docs {
                    if query::matches(&d, &f)? {
                        out.push(d);
                    }
                }
                out
            }
            "$sort" => {
                query::sort_docs(&mut docs, &arg.as_document().cloned().unwrap_or_default());
                docs
            }
            "$skip" => docs
                .into_iter()
                .skip(as_i64(Some(arg)).max(0) as usize)
                .collect(),
            "$limit" => docs
                .into_iter()
                .take(as_i64(Some(arg)).max(0) as usize)
                .collect(),
            "$project" => {
                let p = arg.as_document().cloned().unwrap_or_default();
                docs.iter().map(|d| query::project(d, &p)).collect()
            }
            "$unwind" => {
                // Only the plain form: "$path" or {path: "$path"}; documents without an array there are dropped.
                let path = match arg {
                    Bson::String(p) => p.clone(),
                    Bson::Document(d) => d.get_str("path").unwrap_or("").to_string(),
                    _ => String::new(),
                };
                let path = path
                    .strip_prefix('$')
                    .ok_or_else(|| CmdError::new(28818, "$unwind needs a '$path'"))?;
                let mut out = Vec::new();
                for d in docs {
                    match query::get_path(&d, path) {
                        Some(Bson::Array(a)) => {
                            for e in a.clone() {
                                let mut n = d.clone();
                                query::set_path(&mut n, path, e);
                                out.push(n);
                            }
                        }
                        Some(Bson::Null) | None => {}
                        Some(_) => out.push(d),
                    }
                }
                out
            }
            "$count" => vec![doc! {arg.as_str().unwrap_or("count"): docs.len() as i32}],
            "$group" => group(docs, arg.as_document().cloned().unwrap_or_default())?,
            other => {
                return Err(CmdError::new(
                    40324,
                    format!("Unrecognized pipeline stage name: '{other}'"),
                ))
            }
        };
    }
    Ok(docs)
}

/// Resolves `"$field"` references; anything else is a constant.
fn expr(d: &Document, e: &Bson) -> Bson {
    match e {
        Bson::String(s) if s.starts_with('$') => {
            query::get_path(d, &s[1..]).cloned().unwrap_or(Bson::Null)
        }
        other => other.clone(),
    }
}

fn group(docs: Vec<Document>, spec: Document) -> Result<Vec<Document>, CmdError> {
    let id_expr = spec.get("_id").cloned().unwrap_or(Bson::Null);
    let mut groups: Vec<(Bson, Document)> = Vec::new();
    for d in &docs {
        let key = expr(d, &id_expr);
        let pos = match groups
            .iter()
            .position(|(k, _)| query::compare(k, &key).is_eq())
        {
            Some(p) => p,
            None => {
                groups.push((key.clone(), doc! {"_id": key.clone()}));
                groups.len() - 1
            }
        };
        let acc = &mut groups[pos].1;
        for (field, a) in spec.iter().filter(|(k, _)| *k != "_id") {
            let a = a.as_document().ok_or_else(|| {
                CmdError::new(
                    40234,
                    format!("The field '{field}' must be an accumulator object"),
                )
            })?;
            let (aop, aarg) = a
                .iter()
                .next()
                .ok_or_else(|| CmdError::new(9, "empty accumulator"))?;
            if aop != "$sum" {
                return Err(CmdError::new(
                    15952,
                    format!("unknown group operator '{aop}' (the stand-in supports $sum)"),
                ));
            }
            let v = expr(d, aarg);
            let cur = acc.get(field).cloned().unwrap_or(Bson::Int32(0));
            let sum = match (&cur, &v) {
                (Bson::Int32(a), Bson::Int32(b)) => a
                    .checked_add(*b)
                    .map(Bson::Int32)
                    .unwrap_or(Bson::Int64(*a as i64 + *b as i64)),
                (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
                    Bson::Int64(as_i64(Some(&cur)) + as_i64(Some(&v)))
                }
                (_, Bson::Double(b)) => Bson::Double(match cur {
                    Bson::Double(a) => a + b,
                    ref o => as_i64(Some(o)) as f64 + b,
                }),
                (Bson::Double(a), o) if matches!(o, Bson::Int32(_) | Bson::Int64(_)) => {
                    Bson::Double(a + as_i64(Some(o)) as f64)
                }
                _ => cur.clone(), // non-numbers are ignored by $sum
            };
            acc.insert(field.clone(), sum);
        }
    }
    Ok(groups.into_iter().map(|(_, d)| d).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_stages() {
        let docs = vec![
            doc! {"u": "a", "t": ["x", "y"], "n": 2},
            doc! {"u": "b", "t": ["x"], "n": 3},
            doc! {"u": "a", "n": 4},
        ];
        // What the drivers' countDocuments sends.
        let count = aggregate(
            docs.clone(),
            &[
                Bson::Document(doc! {"$match": {"u": "a"}}),
                Bson::Document(doc! {"$group": {"_id": 1, "n": {"$sum": 1}}}),
            ],
        )
        .unwrap();
        assert_eq!(count, vec![doc! {"_id": 1, "n": 2}]);
        let per_tag = aggregate(
            docs.clone(),
            &[
                Bson::Document(doc! {"$unwind": "$t"}),
                Bson::Document(doc! {"$group": {"_id": "$t", "total": {"$sum": "$n"}}}),
                Bson::Document(doc! {"$sort": {"_id": 1}}),
            ],
        )
        .unwrap();
        assert_eq!(
            per_tag,
            vec![doc! {"_id": "x", "total": 5}, doc! {"_id": "y", "total": 2}]
        );
        let c = aggregate(
            docs,
            &[
                Bson::Document(doc! {"$skip": 1}),
                Bson::Document(doc! {"$count": "c"}),
            ],
        )
        .unwrap();
        assert_eq!(c, vec![doc! {"c": 2}]);
    }
}
