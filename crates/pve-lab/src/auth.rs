//! Who is calling and what they may do: API tokens (stored in STATE/auth.json, each also in a
//! 0600 token file for clients), root password tickets with CSRF tokens, and a generic evaluator
//! for the schema's `permissions` objects (`perm`, `and`, `or`, `any`, `userid-param` ...).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fsutil::{now_epoch, write_file_atomic};

/// The token `pve-lab up` creates; it holds every privilege.
pub const ROOT_TOKEN_NAME: &str = "launch";
pub const ROOT_USER: &str = "root@pam";
const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Every privilege PVE 8/9 knows, for `/access/permissions` of a full-rights caller.
pub const ALL_PRIVS: &[&str] = &[
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Audit",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
];

/// One ACL entry of a token: privileges on a path, propagating to the paths below or not. (PVE
/// grants roles; the lab names the privileges directly, one entry standing for one role.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    pub path: String,
    pub privs: Vec<String>,
    pub propagate: bool,
}

/// A resource pool: its guests and storages get the privileges granted on `/pool/NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    #[serde(default)]
    pub vms: Vec<u32>,
    #[serde(default)]
    pub storage: Vec<String>,
}

/// A privilege-separated token's grants: its ACL entries and the node's pools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub acl: Vec<AclEntry>,
    pub pools: BTreeMap<String, Pool>,
}

impl Grants {
    /// Role entries in effect on `path`, as pve-access-control's `roles()` walks the ACL tree
    /// (src/PVE/AccessControl.pm): from `/` down, each level holding entries for the token
    /// replaces what came before; above the path itself only propagating entries count.
    fn roles(&self, path: &str) -> Vec<(&AclEntry, bool)> {
        let mut roles = Vec::new();
        for (level, last) in path_levels(path) {
            let here: Vec<(&AclEntry, bool)> = self
                .acl
                .iter()
                .filter(|a| a.path == level && (last || a.propagate))
                .map(|a| (a, a.propagate))
                .collect();
            if !here.is_empty() {
                roles = here;
            }
        }
        roles
    }

    /// Privilege → propagate flag on `path` (RPCEnvironment's `compile_acl_path`): a key
    /// present means granted. Roles a pool gives its members are added without propagation.
    pub fn privs_at(&self, path: &str) -> BTreeMap<String, bool> {
        let mut roles = self.roles(path);
        let member = |pool: &Pool| match path.split('/').collect::<Vec<_>>().as_slice() {
            ["", "vms", id] => id.parse().is_ok_and(|id: u32| pool.vms.contains(&id)),
            ["", "storage", sid] => pool.storage.iter().any(|s| s == sid),
            _ => false,
        };
        for (name, pool) in &self.pools {
            if member(pool) {
                roles.extend(
                    self.roles(&format!("/pool/{name}"))
                        .into_iter()
                        .map(|(a, _)| (a, false)),
                );
            }
        }
        let mut out: BTreeMap<String, bool> = BTreeMap::new();
        for (entry, propagate) in roles {
            for p in &entry.privs {
                *out.entry(p.clone()).or_insert(false) |= propagate;
            }
        }
        out
    }

    /// Every path PVE's `get_effective_permissions` lists: the top levels, the ACL paths and
    /// the pools' members.
    pub fn listed_paths(&self) -> BTreeSet<String> {
        let mut paths: BTreeSet<String> = [
            "/",
            "/access",
            "/access/groups",
            "/nodes",
            "/pool",
            "/sdn",
            "/storage",
            "/vms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        paths.extend(self.acl.iter().map(|a| a.path.clone()));
        for pool in self.pools.values() {
            paths.extend(pool.vms.iter().map(|v| format!("/vms/{v}")));
            paths.extend(pool.storage.iter().map(|s| format!("/storage/{s}")));
        }
        paths
    }
}

/// `/`, `/a`, `/a/b` for `/a/b`, each with whether it is the path itself.
fn path_levels(path: &str) -> Vec<(String, bool)> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut out = vec![("/".to_string(), parts.is_empty())];
    for i in 0..parts.len() {
        out.push((format!("/{}", parts[..=i].join("/")), i + 1 == parts.len()));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privs {
    All,
    Acl(std::sync::Arc<Grants>),
}

impl Privs {
    /// Whether `p` is granted on `path`.
    pub fn has_at(&self, path: &str, p: &str) -> bool {
        match self {
            Privs::All => true,
            Privs::Acl(g) => g.privs_at(path).contains_key(p),
        }
    }

    /// Privilege → propagate on `path`, as `/access/permissions` reports them.
    pub fn at(&self, path: &str) -> BTreeMap<String, bool> {
        match self {
            Privs::All => ALL_PRIVS.iter().map(|p| (p.to_string(), true)).collect(),
            Privs::Acl(g) => g.privs_at(path),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `root@pam` for a ticket, `root@pam!launch` for a token.
    pub auth_id: String,
    pub user: String,
    pub token: Option<String>,
    pub privs: Privs,
}

impl Identity {
    pub fn is_token(&self) -> bool {
        self.token.is_some()
    }
    /// Only the root user itself (ticket) is `root@pam` in PVE; its tokens are not.
    pub fn is_root_pam(&self) -> bool {
        self.user == ROOT_USER && self.token.is_none()
    }
    pub fn has_all_privs(&self) -> bool {
        self.privs == Privs::All
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("No ticket")]
    NoTicket,
    #[error("Authentication failed!")]
    Failed,
    #[error("Permission denied - invalid csrf token")]
    BadCsrf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Permission check failed ({0})")]
pub struct Forbidden(pub String);

impl Forbidden {
    pub fn perm(path: &str, privs: &str) -> Forbidden {
        Forbidden(format!("{path}, {privs}"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    id: String,
    secret: String,
    /// `None` means every privilege; a list is granted on `/`, propagating.
    privs: Option<Vec<String>>,
    /// Further path-scoped entries.
    #[serde(default)]
    acl: Vec<AclEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    tokens: Vec<TokenRecord>,
    #[serde(default)]
    pools: BTreeMap<String, Pool>,
}

/// Sets a pool's members (guests and storages), as `pveum pool add/modify` would.
pub fn set_pool(state: &Path, name: &str, pool: Pool) -> Result<()> {
    if !valid_token_name(name) {
        return Err(TokenNameError::Invalid(name.to_string()).into());
    }
    let mut file = load_auth(state)?;
    file.pools.insert(name.to_string(), pool);
    save_auth(state, &file)
}

fn auth_file(state: &Path) -> PathBuf {
    state.join("auth.json")
}

pub fn token_file(state: &Path, name: &str) -> PathBuf {
    if name == ROOT_TOKEN_NAME {
        state.join("token")
    } else {
        state.join(format!("token-{name}"))
    }
}

pub fn password_file(state: &Path) -> PathBuf {
    state.join("root-password")
}

fn load_auth(state: &Path) -> Result<AuthFile> {
    let path = auth_file(state);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save_auth(state: &Path, file: &AuthFile) -> Result<()> {
    write_file_atomic(&auth_file(state), &serde_json::to_vec_pretty(file)?, 0o600)
}

#[derive(Debug, thiserror::Error)]
pub enum TokenNameError {
    #[error("token name '{0}' is not valid\nhelp: use letters, digits, '-', '_' or '.', starting with a letter (PVE's pve-tokenid format)")]
    Invalid(String),
    #[error("privilege '{0}' is not a PVE privilege\nhelp: use names such as VM.Audit,Sys.Audit,VM.Allocate")]
    UnknownPriv(String),
}

fn valid_token_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= 64
}

/// Creates (or keeps) a token and writes its `user@realm!name=secret` line to its token file.
/// `privs: None` grants everything. Returns the token file path.
pub fn ensure_token(state: &Path, name: &str, privs: Option<Vec<String>>) -> Result<PathBuf> {
    ensure_token_acl(state, name, privs, Vec::new())
}

/// `ensure_token` with path-scoped ACL entries besides the privileges on `/`.
pub fn ensure_token_acl(
    state: &Path,
    name: &str,
    privs: Option<Vec<String>>,
    acl: Vec<AclEntry>,
) -> Result<PathBuf> {
    if !valid_token_name(name) {
        return Err(TokenNameError::Invalid(name.to_string()).into());
    }
    let named = privs
        .iter()
        .flatten()
        .chain(acl.iter().flat_map(|a| a.privs.iter()));
    for p in named {
        if !ALL_PRIVS.contains(&p.as_str()) {
            return Err(TokenNameError::UnknownPriv(p.clone()).into());
        }
    }
    let id = format!("{ROOT_USER}!{name}");
    let mut file = load_auth(state)?;
    let secret = match file.tokens.iter_mut().find(|t| t.id == id) {
        Some(t) => {
            t.privs = privs;
            t.acl = acl;
            t.secret.clone()
        }
        None => {
            let secret = uuid::Uuid::new_v4().to_string();
            file.tokens.push(TokenRecord {
                id: id.clone(),
                secret: secret.clone(),
                privs,
                acl,
            });
            secret
        }
    };
    save_auth(state, &file)?;
    let path = token_file(state, name);
    write_file_atomic(&path, format!("{id}={secret}\n").as_bytes(), 0o600)?;
    Ok(path)
}

/// The root password for ticket logins, created on first use (0600).
pub fn ensure_root_password(state: &Path) -> Result<String> {
    let path = password_file(state);
    if let Ok(pw) = std::fs::read_to_string(&path) {
        if !pw.trim().is_empty() {
            return Ok(pw.trim().to_string());
        }
    }
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    let pw = hex::encode(bytes);
    write_file_atomic(&path, format!("{pw}\n").as_bytes(), 0o600)?;
    Ok(pw)
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
/// Hand-written: two lines do not justify a dependency.
fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

struct TicketInfo {
    user: String,
    csrf: String,
    issued: Instant,
}

/// Authentication state of the running daemon.
pub struct Auth {
    state: PathBuf,
    tickets: Mutex<HashMap<String, TicketInfo>>,
}

pub struct TicketGrant {
    pub username: String,
    pub ticket: String,
    pub csrf: String,
}

impl Auth {
    pub fn new(state: &Path) -> Auth {
        Auth {
            state: state.to_path_buf(),
            tickets: Mutex::new(HashMap::new()),
        }
    }

    /// `PVEAPIToken=USER@REALM!TOKENID=SECRET` (also with a space after `PVEAPIToken`);
    /// the secret starts after the last `=`.
    pub fn verify_token_header(&self, header: &str) -> Result<Identity, AuthError> {
        let rest = header
            .strip_prefix("PVEAPIToken=")
            .or_else(|| header.strip_prefix("PVEAPIToken "))
            .ok_or(AuthError::Failed)?
            .trim();
        let (id, secret) = rest.rsplit_once('=').ok_or(AuthError::Failed)?;
        let file = load_auth(&self.state).map_err(|_| AuthError::Failed)?;
        let rec = file
            .tokens
            .iter()
            .find(|t| t.id == id)
            .ok_or(AuthError::Failed)?;
        if !secret_eq(&rec.secret, secret) {
            return Err(AuthError::Failed);
        }
        let (user, token) = id.split_once('!').ok_or(AuthError::Failed)?;
        Ok(Identity {
            auth_id: id.to_string(),
            user: user.to_string(),
            token: Some(token.to_string()),
            privs: match &rec.privs {
                None => Privs::All,
                Some(list) => {
                    let mut acl = vec![AclEntry {
                        path: "/".into(),
                        privs: list.clone(),
                        propagate: true,
                    }];
                    acl.extend(rec.acl.iter().cloned());
                    Privs::Acl(std::sync::Arc::new(Grants {
                        acl,
                        pools: file.pools.clone(),
                    }))
                }
            },
        })
    }

    /// Password login (or ticket renewal: PVE accepts a valid ticket as the password).
    pub fn login(
        &self,
        username: &str,
        realm: Option<&str>,
        password: &str,
    ) -> Result<TicketGrant, AuthError> {
        let user = match (username.contains('@'), realm) {
            (true, _) => username.to_string(),
            (false, Some(r)) => format!("{username}@{r}"),
            (false, None) => return Err(AuthError::Failed),
        };
        if user != ROOT_USER {
            return Err(AuthError::Failed);
        }
        let renewing = self
            .verify_ticket(password)
            .map(|who| who == user)
            .unwrap_or(false);
        if !renewing {
            let expected = ensure_root_password(&self.state).map_err(|_| AuthError::Failed)?;
            if !secret_eq(&expected, password) {
                return Err(AuthError::Failed);
            }
        }
        let mut sig = [0u8; 32];
        rand::rng().fill_bytes(&mut sig);
        let stamp = format!("{:08X}", now_epoch());
        let ticket = format!("PVE:{user}:{stamp}::{}", hex::encode(sig));
        let mut csrf_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut csrf_bytes);
        let csrf = format!("{stamp}:{}", hex::encode(csrf_bytes));
        let mut map = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| t.issued.elapsed() < TICKET_LIFETIME);
        map.insert(
            ticket.clone(),
            TicketInfo {
                user: user.clone(),
                csrf: csrf.clone(),
                issued: Instant::now(),
            },
        );
        Ok(TicketGrant {
            username: user,
            ticket,
            csrf,
        })
    }

    fn verify_ticket(&self, ticket: &str) -> Option<String> {
        let map = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        map.get(ticket)
            .filter(|t| t.issued.elapsed() < TICKET_LIFETIME)
            .map(|t| t.user.clone())
    }

    /// Ticket from the `PVEAuthCookie` cookie; non-GET requests must carry its CSRF token.
    pub fn verify_ticket_request(
        &self,
        ticket: &str,
        csrf: Option<&str>,
        needs_csrf: bool,
    ) -> Result<Identity, AuthError> {
        let map = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        let info = map
            .get(ticket)
            .filter(|t| t.issued.elapsed() < TICKET_LIFETIME)
            .ok_or(AuthError::Failed)?;
        if needs_csrf && !csrf.is_some_and(|c| secret_eq(&info.csrf, c)) {
            return Err(AuthError::BadCsrf);
        }
        Ok(Identity {
            auth_id: info.user.clone(),
            user: info.user.clone(),
            token: None,
            privs: Privs::All,
        })
    }
}

/// Replaces `{name}` in an ACL path with the request's parameter values.
fn expand_path(template: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                let key = &rest[start + 1..start + end];
                out.push_str(params.get(key).map(String::as_str).unwrap_or(""));
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Checks one privilege (or any of several) on an ACL path.
pub fn check_privs(who: &Identity, path: &str, privs: &[&str], any: bool) -> Result<(), Forbidden> {
    if any {
        if privs.iter().any(|p| who.privs.has_at(path, p)) {
            Ok(())
        } else {
            Err(Forbidden::perm(path, &privs.join("|")))
        }
    } else {
        match privs.iter().find(|p| !who.privs.has_at(path, p)) {
            None => Ok(()),
            Some(p) => Err(Forbidden::perm(path, p)),
        }
    }
}

/// Evaluates a schema `permissions` object for a caller, with the request's parameters
/// (path and body merged) filling `{vmid}`-style placeholders.
pub fn check_permissions(
    perm: Option<&Value>,
    who: &Identity,
    params: &BTreeMap<String, String>,
) -> Result<(), Forbidden> {
    let Some(perm) = perm.filter(|p| !p.is_null()) else {
        // No permissions declared: PVE allows only root@pam itself.
        return if who.is_root_pam() {
            Ok(())
        } else {
            Err(Forbidden("user != root@pam".to_string()))
        };
    };
    if let Some(check) = perm.get("check") {
        return eval_check(check, who, params);
    }
    match perm.get("user").and_then(Value::as_str) {
        Some("all") | Some("world") => Ok(()),
        _ if who.is_root_pam() => Ok(()),
        _ => Err(Forbidden("user != root@pam".to_string())),
    }
}

fn eval_check(
    check: &Value,
    who: &Identity,
    params: &BTreeMap<String, String>,
) -> Result<(), Forbidden> {
    let Some(items) = check.as_array() else {
        return Err(Forbidden("unsupported permission check".to_string()));
    };
    let op = items.first().and_then(Value::as_str).unwrap_or("");
    match op {
        "perm" => {
            let path = expand_path(items.get(1).and_then(Value::as_str).unwrap_or("/"), params);
            let privs: Vec<&str> = items
                .get(2)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut any = false;
            let mut i = 3;
            while i < items.len() {
                match items[i].as_str() {
                    Some("any") => any = true,
                    Some("require_param") => {
                        // The check only applies when that parameter is present.
                        let p = items.get(i + 1).and_then(Value::as_str).unwrap_or("");
                        if !params.contains_key(p) {
                            return Ok(());
                        }
                        i += 1;
                    }
                    _ => {}
                }
                i += 2;
            }
            check_privs(who, &path, &privs, any)
        }
        "and" => items[1..]
            .iter()
            .try_for_each(|sub| eval_check(sub, who, params)),
        "or" => {
            let mut last = Forbidden("Permission check failed".to_string());
            for sub in &items[1..] {
                match eval_check(sub, who, params) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        "userid-param" => {
            let wanted = items.get(1).and_then(Value::as_str).unwrap_or("");
            let userid = params.get("userid").map(String::as_str).unwrap_or("");
            if (wanted == "self" && userid == who.user) || who.has_all_privs() {
                Ok(())
            } else {
                Err(Forbidden("user != userid".to_string()))
            }
        }
        "userid-group" => {
            let privs: Vec<&str> = items
                .get(1)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            check_privs(who, "/access/groups", &privs, true)
        }
        "perm-modify" => {
            let path = expand_path(items.get(1).and_then(Value::as_str).unwrap_or("/"), params);
            check_privs(who, &path, &["Permissions.Modify"], false)
        }
        other => Err(Forbidden(format!("unsupported permission check '{other}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ident(privs: &[&str]) -> Identity {
        Identity {
            auth_id: "root@pam!t".into(),
            user: "root@pam".into(),
            token: Some("t".into()),
            privs: Privs::Acl(std::sync::Arc::new(Grants {
                acl: vec![AclEntry {
                    path: "/".into(),
                    privs: privs.iter().map(|s| s.to_string()).collect(),
                    propagate: true,
                }],
                pools: BTreeMap::new(),
            })),
        }
    }

    fn params(vmid: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("vmid".to_string(), vmid.to_string())])
    }

    #[test]
    fn perm_checks_name_path_and_privilege() {
        let perm = json!({"check": ["perm", "/vms/{vmid}", ["VM.Allocate"]]});
        let err =
            check_permissions(Some(&perm), &ident(&["VM.Audit"]), &params("101")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Permission check failed (/vms/101, VM.Allocate)"
        );
        assert!(check_permissions(Some(&perm), &ident(&["VM.Allocate"]), &params("101")).is_ok());
    }

    #[test]
    fn any_and_or() {
        let any = json!({"check": ["perm", "/vms/{vmid}", ["VM.Snapshot", "VM.Snapshot.Rollback"], "any", 1]});
        let err = check_permissions(Some(&any), &ident(&[]), &params("7")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Permission check failed (/vms/7, VM.Snapshot|VM.Snapshot.Rollback)"
        );
        assert!(
            check_permissions(Some(&any), &ident(&["VM.Snapshot.Rollback"]), &params("7")).is_ok()
        );
        let and =
            json!({"check": ["and", ["perm", "/", ["Sys.Audit"]], ["perm", "/", ["Sys.Modify"]]]});
        assert!(check_permissions(Some(&and), &ident(&["Sys.Audit"]), &params("1")).is_err());
        let or =
            json!({"check": ["or", ["perm", "/", ["Sys.Audit"]], ["perm", "/", ["Sys.Modify"]]]});
        assert!(check_permissions(Some(&or), &ident(&["Sys.Modify"]), &params("1")).is_ok());
        let req = json!({"check": ["perm", "/", ["Sys.Modify"], "require_param", "bwlimit"]});
        assert!(check_permissions(Some(&req), &ident(&[]), &params("1")).is_ok());
    }

    #[test]
    fn user_all_and_null() {
        assert!(
            check_permissions(Some(&json!({"user": "all"})), &ident(&[]), &params("1")).is_ok()
        );
        assert!(check_permissions(None, &ident(&[]), &params("1")).is_err());
    }

    #[test]
    fn token_header_forms_and_tickets() {
        let dir = tempfile::tempdir().unwrap();
        let path = ensure_token(dir.path(), "ro", Some(vec!["VM.Audit".into()])).unwrap();
        let line = std::fs::read_to_string(&path).unwrap();
        let line = line.trim();
        let auth = Auth::new(dir.path());
        let who = auth
            .verify_token_header(&format!("PVEAPIToken={line}"))
            .unwrap();
        assert_eq!(who.auth_id, "root@pam!ro");
        assert!(auth
            .verify_token_header(&format!("PVEAPIToken {line}"))
            .is_ok());
        assert_eq!(
            auth.verify_token_header("PVEAPIToken=root@pam!ro=nope")
                .unwrap_err(),
            AuthError::Failed
        );
        let pw = ensure_root_password(dir.path()).unwrap();
        assert!(auth.login("root@pam", None, "wrong").is_err());
        let grant = auth.login("root", Some("pam"), &pw).unwrap();
        assert!(auth
            .verify_ticket_request(&grant.ticket, None, false)
            .is_ok());
        assert_eq!(
            auth.verify_ticket_request(&grant.ticket, None, true)
                .unwrap_err(),
            AuthError::BadCsrf
        );
        assert!(auth
            .verify_ticket_request(&grant.ticket, Some(&grant.csrf), true)
            .is_ok());
        assert!(auth.login("root@pam", None, &grant.ticket).is_ok());
        assert!(ensure_token(dir.path(), "x", Some(vec!["VM.Bogus".into()])).is_err());
        assert!(ensure_token(dir.path(), "9bad", None).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn acl_paths_propagation_and_pools_as_pve_computes_them() {
        let entry = |path: &str, privs: &[&str], propagate| AclEntry {
            path: path.into(),
            privs: privs.iter().map(|s| s.to_string()).collect(),
            propagate,
        };
        let g = Grants {
            acl: vec![
                entry("/", &["VM.Audit"], true),
                entry("/vms/100", &["VM.PowerMgmt"], false),
                entry("/storage/local-lvm", &["Datastore.AllocateSpace"], false),
                entry("/pool/apps", &["VM.Allocate"], true),
                entry("/sdn/zones/localnetwork/vmbr0", &["SDN.Use"], true),
            ],
            pools: BTreeMap::from([(
                "apps".to_string(),
                Pool {
                    vms: vec![101],
                    storage: vec![],
                },
            )]),
        };
        let at = |p: &str| g.privs_at(p).into_iter().collect::<Vec<_>>();
        let s = |p: &str, f| (p.to_string(), f);
        // A deeper entry replaces what was inherited; on the path itself it needs no propagate.
        assert_eq!(at("/vms/100"), vec![s("VM.PowerMgmt", false)]);
        assert_eq!(at("/vms/102"), vec![s("VM.Audit", true)]);
        // A non-propagating entry stops at its path: below it the inherited roles hold.
        assert_eq!(
            at("/storage/local-lvm"),
            vec![s("Datastore.AllocateSpace", false)]
        );
        assert_eq!(at("/storage/local-lvm/x"), vec![s("VM.Audit", true)]);
        // Pool members get the pool's roles, never propagated.
        assert_eq!(
            at("/vms/101"),
            vec![s("VM.Allocate", false), s("VM.Audit", true)]
        );
        // A VLAN path inherits from its bridge.
        assert_eq!(
            at("/sdn/zones/localnetwork/vmbr0/20"),
            vec![s("SDN.Use", true)]
        );
        let who = Identity {
            auth_id: "root@pam!t".into(),
            user: "root@pam".into(),
            token: Some("t".into()),
            privs: Privs::Acl(std::sync::Arc::new(g.clone())),
        };
        assert!(check_privs(&who, "/vms/101", &["VM.Allocate"], false).is_ok());
        assert!(check_privs(&who, "/vms/102", &["VM.Allocate"], false).is_err());
        assert!(g.listed_paths().contains("/vms/101"));
    }
}
