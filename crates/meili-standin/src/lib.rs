//! `meili-standin`: a small stand-in for the Meilisearch server, for tests (not Meilisearch).
//! This module reads the configuration the way Meilisearch does (CLI > environment > config
//! file) and starts the server; see README.md for the surface.

pub mod error;
pub mod http;
pub mod search;
pub mod store;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::Parser;
use error::StartError;
use std::path::{Path, PathBuf};

/// The Meilisearch version this stands in for.
pub const MEILI_VERSION: &str = "1.35.1";
pub const MASTER_KEY_MIN_BYTES: usize = 16;

#[derive(Parser, Debug, Default)]
#[command(
    name = "meili-standin",
    about = "A small stand-in for the Meilisearch server, for tests. It is NOT Meilisearch.",
    long_about = "A small stand-in for the Meilisearch server, for tests. It is NOT Meilisearch: \
        it answers a subset of Meilisearch v1's HTTP API (indexes, documents, settings, a tiny \
        prefix-match search, tasks, dumps in its own format) and reads Meilisearch's options \
        (command line > environment > config file). See README.md.",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the Meilisearch version this stands in for (`meilisearch 1.35.1`) and exit.
    #[arg(long, short = 'V')]
    pub version: bool,
    /// TOML configuration file (default: ./config.toml when it exists).
    #[arg(long, env = "MEILI_CONFIG_FILE_PATH")]
    pub config_file_path: Option<PathBuf>,
    /// `development` or `production` (production needs a master key of 16 bytes or more).
    #[arg(long, env = "MEILI_ENV")]
    pub env: Option<String>,
    /// Address to listen on (default localhost:7700; port 0 picks a free port).
    #[arg(long, env = "MEILI_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Directory holding the database (default ./data.ms).
    #[arg(long, env = "MEILI_DB_PATH")]
    pub db_path: Option<PathBuf>,
    /// Directory where POST /dumps writes dumps (default dumps/).
    #[arg(long, env = "MEILI_DUMP_DIR")]
    pub dump_dir: Option<PathBuf>,
    /// The master key; every route but /health then needs `Authorization: Bearer KEY`.
    #[arg(long, env = "MEILI_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Accepted for compatibility; the stand-in never sends analytics.
    #[arg(long, env = "MEILI_NO_ANALYTICS", num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub no_analytics: Option<bool>,
    /// Import a dump written by meili-standin before listening (refused if the database exists).
    #[arg(long, env = "MEILI_IMPORT_DUMP")]
    pub import_dump: Option<PathBuf>,
    /// Start without the dump when --import-dump names a missing file.
    #[arg(long, env = "MEILI_IGNORE_MISSING_DUMP", num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub ignore_missing_dump: Option<bool>,
    /// Start on the existing database, skipping --import-dump, when one exists.
    #[arg(long, env = "MEILI_IGNORE_DUMP_IF_DB_EXISTS", num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub ignore_dump_if_db_exists: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    Development,
    Production,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: Env,
    pub http_addr: String,
    pub db_path: PathBuf,
    pub dump_dir: PathBuf,
    pub master_key: Option<String>,
    pub no_analytics: bool,
    pub import_dump: Option<PathBuf>,
    pub ignore_missing_dump: bool,
    pub ignore_dump_if_db_exists: bool,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

const STRING_KEYS: &[&str] = &[
    "env",
    "http_addr",
    "db_path",
    "dump_dir",
    "master_key",
    "import_dump",
];
const BOOL_KEYS: &[&str] = &[
    "no_analytics",
    "ignore_missing_dump",
    "ignore_dump_if_db_exists",
];

/// The keys of a config file this stand-in reads; others are reported as warnings.
#[derive(Default)]
struct FileValues {
    strings: std::collections::HashMap<&'static str, String>,
    bools: std::collections::HashMap<&'static str, bool>,
}

fn read_config_file(path: &Path, warnings: &mut Vec<String>) -> Result<FileValues, StartError> {
    let err = |reason: String| StartError::ConfigFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| err(format!("not valid TOML: {e}")))?;
    let mut out = FileValues::default();
    for (key, value) in table {
        if key == "config_file_path" {
            return Err(err(
                "`config_file_path` cannot be set inside the config file".into(),
            ));
        } else if let Some(k) = STRING_KEYS.iter().find(|k| **k == key) {
            let s = value
                .as_str()
                .ok_or_else(|| err(format!("`{key}` must be a string")))?;
            out.strings.insert(k, s.to_string());
        } else if let Some(k) = BOOL_KEYS.iter().find(|k| **k == key) {
            let b = value
                .as_bool()
                .ok_or_else(|| err(format!("`{key}` must be a boolean")))?;
            out.bools.insert(k, b);
        } else {
            warnings.push(format!(
                "{}: ignoring `{key}` (meili-standin does not implement it)",
                path.display()
            ));
        }
    }
    Ok(out)
}

impl Config {
    /// CLI and environment (both through clap) over the config file over Meilisearch's defaults.
    /// Adds warnings for the caller to print, also when it fails.
    pub fn resolve(cli: Cli, warnings: &mut Vec<String>) -> Result<Config, StartError> {
        let config_file = match cli.config_file_path {
            Some(p) => Some(p),
            None => Some(PathBuf::from("./config.toml")).filter(|p| p.is_file()),
        };
        let file = match &config_file {
            Some(p) => read_config_file(p, warnings)?,
            None => FileValues::default(),
        };
        let s = |given: Option<String>, key: &str| given.or_else(|| file.strings.get(key).cloned());
        let b = |given: Option<bool>, key: &str| {
            given
                .or_else(|| file.bools.get(key).copied())
                .unwrap_or(false)
        };
        let path = |given: Option<PathBuf>, key: &str| {
            given.or_else(|| file.strings.get(key).map(PathBuf::from))
        };
        let env = match s(cli.env, "env").as_deref() {
            None | Some("development") => Env::Development,
            Some("production") => Env::Production,
            Some(other) => return Err(StartError::BadEnv(other.to_string())),
        };
        let config = Config {
            env,
            http_addr: s(cli.http_addr, "http_addr").unwrap_or_else(|| "localhost:7700".into()),
            db_path: path(cli.db_path, "db_path").unwrap_or_else(|| "./data.ms".into()),
            dump_dir: path(cli.dump_dir, "dump_dir").unwrap_or_else(|| "dumps/".into()),
            // An empty key is no key, as clap treats an empty environment variable.
            master_key: s(cli.master_key, "master_key").filter(|k| !k.is_empty()),
            no_analytics: b(cli.no_analytics, "no_analytics"),
            import_dump: path(cli.import_dump, "import_dump"),
            ignore_missing_dump: b(cli.ignore_missing_dump, "ignore_missing_dump"),
            ignore_dump_if_db_exists: b(cli.ignore_dump_if_db_exists, "ignore_dump_if_db_exists"),
            config_file,
        };
        Ok(config)
    }

    /// Meilisearch refuses to start in production without a master key of 16 bytes or more.
    pub fn check_master_key(&self) -> Result<(), StartError> {
        match (self.env, &self.master_key) {
            (Env::Production, None) => Err(StartError::MissingMasterKey),
            (Env::Production, Some(k)) if k.len() < MASTER_KEY_MIN_BYTES => {
                Err(StartError::ShortMasterKey(k.len()))
            }
            _ => Ok(()),
        }
    }
}

/// Resolve the configuration, open (or import) the database, then serve until SIGTERM/SIGINT.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut warnings = Vec::new();
    let config = Config::resolve(cli, &mut warnings);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let config = config?;
    config.check_master_key()?;
    let store = store::Store::open(&config)?;
    eprintln!(
        "meili-standin {} (a Meilisearch {MEILI_VERSION} stand-in for tests, NOT Meilisearch): env={:?} db_path={} config_file={} master_key={}",
        env!("CARGO_PKG_VERSION"),
        config.env,
        config.db_path.display(),
        config.config_file.as_deref().map_or("none".into(), |p| p.display().to_string()),
        if config.master_key.is_some() { "set" } else { "none" },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(http::serve(config, store))
}
