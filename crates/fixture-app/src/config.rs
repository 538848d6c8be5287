//! Finds and reads config.yml the way Vikunja does, then lays `VIKUNJA_*` variables over it.
//! Lookup: `--config`, else `<rootpath>/config.yml` (rootpath = VIKUNJA_SERVICE_ROOTPATH or the
//! working directory), `/etc/vikunja/`, `~/.config/vikunja/`, `./`. Keys the fixture does not use
//! (log.*, mailer.*, ...) are accepted and ignored.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::error::FixtureError;

const FILE_NAMES: [&str; 2] = ["config.yml", "config.yaml"];

#[derive(Debug, Clone)]
pub struct Config {
    /// The file that was read, if any (`vikunja dump` puts it in the archive).
    pub file: Option<PathBuf>,
    /// As configured, with Vikunja's trailing `/` added; may be empty (checked by `require_public_url`).
    pub public_url: String,
    pub cors_enable: bool,
    pub interface: String,
    pub rootpath: PathBuf,
    pub secret: Option<String>,
    pub timezone: String,
    pub database: DatabaseConfig,
    pub files_basepath: PathBuf,
    /// The configured text (`20MB`), which /api/v1/info reports verbatim like Vikunja.
    pub files_maxsize: String,
    pub files_max_bytes: u64,
    /// Vikunja's `keyvalue.type: redis` with `redis.enabled`: the key-value store is a Redis
    /// server (`redis.host` as HOST:PORT, `redis.password`, `redis.db`); else it is in memory.
    pub redis: Option<RedisConfig>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub host: String,
    pub password: String,
    pub db: i64,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    Sqlite { path: PathBuf },
    Postgres(ServerDatabase),
    Mysql(ServerDatabase),
}

#[derive(Clone)]
pub struct ServerDatabase {
    /// `host`, `host:port`, or an absolute unix socket path (a directory for PostgreSQL).
    pub host: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

// Hand-written so the password can never reach a log line through `{:?}`.
impl std::fmt::Debug for ServerDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerDatabase")
            .field("host", &self.host)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("database", &self.database)
            .finish()
    }
}

impl ServerDatabase {
    /// `user@host/database`, safe to print.
    pub fn describe(&self) -> String {
        format!("{}@{}/{}", self.user, self.host, self.database)
    }
}

impl DatabaseConfig {
    pub fn describe(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { path } => format!("sqlite {}", path.display()),
            DatabaseConfig::Postgres(db) => format!("postgres {}", db.describe()),
            DatabaseConfig::Mysql(db) => format!("mysql {}", db.describe()),
        }
    }
}

/// What the process sees of its surroundings, passed in so tests need no global state.
pub struct Environment {
    pub vars: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
}

impl Environment {
    pub fn of_process() -> anyhow::Result<Self> {
        use anyhow::Context;
        Ok(Environment {
            vars: std::env::vars().collect(),
            cwd: std::env::current_dir().context("reading the working directory")?,
            home: std::env::var_os("HOME").map(PathBuf::from),
        })
    }

    /// Every `VIKUNJA_*` variable, as `vikunja dump` writes them into `.env`.
    pub fn vikunja_vars(&self) -> impl Iterator<Item = (&String, &String)> {
        self.vars.iter().filter(|(k, _)| k.starts_with("VIKUNJA_"))
    }
}

impl Config {
    pub fn load(explicit: Option<&Path>, env: &Environment) -> Result<Config, FixtureError> {
        let env_rootpath = env.vars.get("VIKUNJA_SERVICE_ROOTPATH").map(PathBuf::from);
        let file = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => find_file(env_rootpath.as_deref().unwrap_or(&env.cwd), env),
        };
        let mut tree = match &file {
            Some(path) => read_tree(path)?,
            None => Value::Mapping(Mapping::new()),
        };
        apply_env(&mut tree, &env.vars)?;
        Self::from_tree(&tree, file, &env.cwd)
    }

    fn from_tree(tree: &Value, file: Option<PathBuf>, cwd: &Path) -> Result<Config, FixtureError> {
        let rootpath = get(tree, "service.rootpath")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| cwd.to_path_buf());
        let rootpath = absolute(cwd, &rootpath);

        let mut public_url = get(tree, "service.publicurl").unwrap_or_default();
        if !public_url.is_empty() && !public_url.ends_with('/') {
            public_url.push('/');
        }
        let cors_enable = match get(tree, "cors.enable") {
            None => true,
            Some(v) => parse_bool("cors.enable", &v)?,
        };
        let interface = get(tree, "service.interface").unwrap_or_else(|| ":3456".to_string());
        // service.JWTSecret is the pre-2.3 name; Vikunja copies it over the same way.
        let secret = get(tree, "service.secret")
            .or_else(|| get(tree, "service.jwtsecret"))
            .filter(|s| !s.is_empty());
        let timezone = get(tree, "service.timezone").unwrap_or_else(|| "GMT".to_string());

        let server = || ServerDatabase {
            host: get(tree, "database.host").unwrap_or_else(|| "localhost".to_string()),
            user: get(tree, "database.user").unwrap_or_else(|| "vikunja".to_string()),
            password: get(tree, "database.password").unwrap_or_default(),
            database: get(tree, "database.database").unwrap_or_else(|| "vikunja".to_string()),
        };
        let db_type = get(tree, "database.type").unwrap_or_else(|| "sqlite".to_string());
        let database = match db_type.as_str() {
            "sqlite" => DatabaseConfig::Sqlite {
                path: absolute(
                    &rootpath,
                    Path::new(&get(tree, "database.path").unwrap_or_else(|| "vikunja.db".into())),
                ),
            },
            "postgres" => DatabaseConfig::Postgres(server()),
            "mysql" => DatabaseConfig::Mysql(server()),
            other => {
                return Err(FixtureError::BadValue {
                    key: "database.type",
                    value: other.to_string(),
                    problem: "unknown database type".into(),
                    help: "use one of sqlite, postgres, mysql".into(),
                })
            }
        };

        let files_basepath = absolute(
            &rootpath,
            Path::new(&get(tree, "files.basepath").unwrap_or_else(|| "files".into())),
        );
        let files_maxsize = get(tree, "files.maxsize").unwrap_or_else(|| "20MB".to_string());
        let files_max_bytes = parse_size(&files_maxsize).ok_or_else(|| FixtureError::BadValue {
            key: "files.maxsize",
            value: files_maxsize.clone(),
            problem: "not a size".into(),
            help:
                "write a number with an optional unit B, KB, MB, GB or TB (1024-based), e.g. `20MB`"
                    .into(),
        })?;

        let redis_enabled = match get(tree, "redis.enabled") {
            None => false,
            Some(v) => parse_bool("redis.enabled", &v)?,
        };
        let keyvalue = get(tree, "keyvalue.type").unwrap_or_else(|| "memory".to_string());
        let redis = match keyvalue.as_str() {
            "memory" => None,
            "redis" if redis_enabled => Some(RedisConfig {
                host: get(tree, "redis.host").unwrap_or_else(|| "localhost:6379".to_string()),
                password: get(tree, "redis.password").unwrap_or_default(),
                db: match get(tree, "redis.db") {
                    None => 0,
                    Some(v) => v.parse().map_err(|_| FixtureError::BadValue {
                        key: "redis.db",
                        value: v.clone(),
                        problem: "not a number".into(),
                        help: "write a database number such as 0".into(),
                    })?,
                },
            }),
            "redis" => {
                return Err(FixtureError::BadValue {
                    key: "keyvalue.type",
                    value: keyvalue,
                    problem: "redis is not enabled".into(),
                    help: "set redis.enabled: true (with redis.host), or keyvalue.type: memory"
                        .into(),
                })
            }
            other => {
                return Err(FixtureError::BadValue {
                    key: "keyvalue.type",
                    value: other.to_string(),
                    problem: "unknown key-value store".into(),
                    help: "use one of memory, redis".into(),
                })
            }
        };

        let config = Config {
            file,
            public_url,
            cors_enable,
            interface,
            rootpath,
            secret,
            timezone,
            database,
            files_basepath,
            files_maxsize,
            files_max_bytes,
            redis,
        };
        config.listen_addr()?;
        Ok(config)
    }

    /// Vikunja refuses to run (server and most CLI commands) without a public URL while CORS is on.
    pub fn require_public_url(&self) -> Result<(), FixtureError> {
        if self.public_url.is_empty() {
            if self.cors_enable {
                return Err(FixtureError::PublicUrlMissing);
            }
            return Ok(());
        }
        let invalid = |problem: &str| FixtureError::PublicUrlInvalid {
            value: self.public_url.clone(),
            problem: problem.to_string(),
        };
        let rest = self
            .public_url
            .strip_prefix("https://")
            .or_else(|| self.public_url.strip_prefix("http://"))
            .ok_or_else(|| invalid("it must start with http:// or https://"))?;
        if rest.starts_with('/') || rest.is_empty() {
            return Err(invalid("it has no host"));
        }
        if rest.contains(char::is_whitespace) {
            return Err(invalid("it contains whitespace"));
        }
        Ok(())
    }

    /// `:3456` means every IPv4 address, as Go's listener reads it.
    pub fn listen_addr(&self) -> Result<SocketAddr, FixtureError> {
        let bad = |problem: &str| FixtureError::BadValue {
            key: "service.interface",
            value: self.interface.clone(),
            problem: problem.to_string(),
            help: "use `:PORT` for all addresses or `HOST:PORT`, e.g. `127.0.0.1:3457`".into(),
        };
        let text = self.interface.trim();
        let text = match text.strip_prefix(':') {
            Some(port) => format!("0.0.0.0:{port}"),
            None => text.to_string(),
        };
        let mut addrs = text
            .to_socket_addrs()
            .map_err(|e| bad(&format!("not a listen address ({e})")))?;
        addrs.next().ok_or_else(|| bad("it resolves to no address"))
    }

    /// The value /api/v1/info reports: only SQLite serialises writes.
    pub fn concurrent_writes(&self) -> bool {
        !matches!(self.database, DatabaseConfig::Sqlite { .. })
    }
}

fn find_file(rootpath: &Path, env: &Environment) -> Option<PathBuf> {
    let mut dirs = vec![rootpath.to_path_buf(), PathBuf::from("/etc/vikunja")];
    if let Some(home) = &env.home {
        dirs.push(home.join(".config/vikunja"));
    }
    dirs.push(env.cwd.clone());
    dirs.iter()
        .flat_map(|dir| FILE_NAMES.iter().map(move |name| dir.join(name)))
        .find(|path| path.is_file())
}

fn read_tree(path: &Path) -> Result<Value, FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|source| FixtureError::ConfigUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Mapping(Mapping::new()));
    }
    let tree: Value = serde_yaml_ng::from_str(&text).map_err(|e| FixtureError::ConfigInvalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    match tree {
        Value::Mapping(_) => Ok(lowercase_keys(tree)),
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        _ => Err(FixtureError::ConfigInvalid {
            path: path.to_path_buf(),
            message: "the top level must be a mapping of sections (service:, database:, ...)"
                .into(),
        }),
    }
}

/// Viper matches keys case-insensitively (`JWTSecret` == `jwtsecret`).
fn lowercase_keys(value: Value) -> Value {
    match value {
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .map(|(k, v)| {
                    let k = match k {
                        Value::String(s) => Value::String(s.to_lowercase()),
                        other => other,
                    };
                    (k, lowercase_keys(v))
                })
                .collect(),
        ),
        other => other,
    }
}

/// `VIKUNJA_DATABASE_PASSWORD=x` sets database.password; `..._FILE=/path` reads it from a file.
fn apply_env(tree: &mut Value, vars: &BTreeMap<String, String>) -> Result<(), FixtureError> {
    // Plain values first so an explicit value and a _FILE variant resolve the same way every time.
    let mut entries: Vec<(String, String)> = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("VIKUNJA_") else {
            continue;
        };
        let key = rest.to_lowercase();
        if let Some(key) = key.strip_suffix("_file") {
            let content = std::fs::read_to_string(value).map_err(|source| {
                FixtureError::ConfigUnreadable {
                    path: PathBuf::from(value),
                    source,
                }
            })?;
            entries.push((
                key.to_string(),
                content.trim_end_matches(['\r', '\n']).to_string(),
            ));
        } else {
            entries.push((key, value.clone()));
        }
    }
    for (key, value) in entries {
        set(tree, &key.split('_').collect::<Vec<_>>(), value);
    }
    Ok(())
}

fn set(tree: &mut Value, path: &[&str], value: String) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if !matches!(tree, Value::Mapping(_)) {
        *tree = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(map) = tree {
        let key = Value::String((*first).to_string());
        if rest.is_empty() {
            map.insert(key, Value::String(value));
        } else {
            let child = map
                .entry(key)
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            set(child, rest, value);
        }
    }
}

/// A dotted key as text; numbers and booleans are stringified, null counts as unset.
fn get(tree: &Value, dotted: &str) -> Option<String> {
    let mut node = tree;
    for part in dotted.split('.') {
        node = node.as_mapping()?.get(part)?;
    }
    match node {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_bool(key: &'static str, value: &str) -> Result<bool, FixtureError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(FixtureError::BadValue {
            key,
            value: value.to_string(),
            problem: "not a boolean".into(),
            help: "use true or false".into(),
        }),
    }
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// `20MB` to bytes; units are 1024-based like Vikunja's datasize parser.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        "T" | "TB" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], cwd: &Path) -> Environment {
        Environment {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: cwd.to_path_buf(),
            home: None,
        }
    }

    #[test]
    fn sizes_use_1024_units() {
        assert_eq!(parse_size("20MB"), Some(20 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1 kb"), Some(1024));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("20XB"), None);
    }

    #[test]
    fn file_in_working_dir_is_read_and_env_overrides_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yml"),
            "service:\n  publicurl: https://t.example\n  interface: \":3456\"\n  JWTSecret: old\n\
             database:\n  type: postgres\n  password: from-file\nfiles:\n  maxsize: 1MB\nlog:\n  level: DEBUG\n",
        )
        .unwrap();
        let secret_file = dir.path().join("pw");
        std::fs::write(&secret_file, "from-secret-file\n").unwrap();
        let e = env(
            &[
                ("VIKUNJA_SERVICE_INTERFACE", "127.0.0.1:4000"),
                (
                    "VIKUNJA_DATABASE_PASSWORD_FILE",
                    secret_file.to_str().unwrap(),
                ),
            ],
            dir.path(),
        );
        let config = Config::load(None, &e).unwrap();
        assert_eq!(config.file, Some(dir.path().join("config.yml")));
        assert_eq!(config.public_url, "https://t.example/");
        assert_eq!(config.listen_addr().unwrap().to_string(), "127.0.0.1:4000");
        assert_eq!(config.secret.as_deref(), Some("old"));
        assert_eq!(config.files_max_bytes, 1 << 20);
        assert_eq!(config.files_basepath, dir.path().join("files"));
        match &config.database {
            DatabaseConfig::Postgres(db) => {
                assert_eq!(db.password, "from-secret-file");
                assert!(!format!("{db:?}").contains("from-secret-file"));
            }
            other => panic!("expected postgres, got {other:?}"),
        }
        assert!(config.concurrent_writes());
    }

    #[test]
    fn no_file_means_defaults_and_a_missing_public_url_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(None, &env(&[], dir.path())).unwrap();
        assert_eq!(config.file, None);
        assert_eq!(config.listen_addr().unwrap().to_string(), "0.0.0.0:3456");
        let err = config.require_public_url().unwrap_err().to_string();
        assert!(err.starts_with("service.publicurl is required when cors.enable is true"));
        assert!(err.contains("help:"));
    }

    #[test]
    fn bad_values_are_named_with_a_fix() {
        let dir = tempfile::tempdir().unwrap();
        for (var, value) in [
            ("VIKUNJA_DATABASE_TYPE", "oracle"),
            ("VIKUNJA_FILES_MAXSIZE", "huge"),
            ("VIKUNJA_SERVICE_INTERFACE", "nowhere"),
        ] {
            let err = Config::load(None, &env(&[(var, value)], dir.path()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(value) && err.contains("help:"), "{err}");
        }
        let config = Config::load(
            None,
            &env(
                &[("VIKUNJA_SERVICE_PUBLICURL", "tasks.example")],
                dir.path(),
            ),
        )
        .unwrap();
        let err = config.require_public_url().unwrap_err().to_string();
        assert!(
            err.contains("tasks.example/") && err.contains("http"),
            "{err}"
        );
    }

    #[test]
    fn broken_yaml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yml"), "service: [unclosed\n").unwrap();
        let err = Config::load(None, &env(&[], dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.yml") && err.contains("help:"), "{err}");
    }
}
