//! `mongo-standin`: a MongoDB stand-in for tests (not MongoDB). See README.md.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mongo_standin::{tools, Config, Server};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mongo-standin",
    about = "A MongoDB wire-protocol stand-in for tests (not MongoDB)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Mongod {
        #[arg(long, short = 'f')]
        config: Option<PathBuf>,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long = "bind_ip")]
        bind_ip: Option<String>,
        #[arg(long)]
        dbpath: Option<PathBuf>,
        #[arg(long)]
        auth: bool,
    },
    /// Dump one database into an archive file (the stand-in's own format).
    Mongodump {
        #[arg(long)]
        uri: Option<String>,
        /// A YAML file with `uri` and/or `password`, as MongoDB's tools read it, so a password
        /// never goes on the command line.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        archive: PathBuf,
        #[arg(long)]
        gzip: bool,
        #[arg(long)]
        db: Option<String>,
        /// Accepted as MongoDB's tools do; the stand-in prints only errors anyway.
        #[arg(long)]
        quiet: bool,
    },
    /// Load an archive written by `mongodump`.
    Mongorestore {
        #[arg(long)]
        uri: Option<String>,
        /// A YAML file with `uri` and/or `password`, as MongoDB's tools read it, so a password
        /// never goes on the command line.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        archive: PathBuf,
        #[arg(long)]
        gzip: bool,
        #[arg(long)]
        drop: bool,
        #[arg(long = "nsInclude")]
        ns_include: Vec<String>,
        #[arg(long = "nsFrom")]
        ns_from: Option<String>,
        #[arg(long = "nsTo")]
        ns_to: Option<String>,
        /// Accepted as MongoDB's tools do; the stand-in prints only errors anyway.
        #[arg(long)]
        quiet: bool,
    },
    /// Run a file of a few fixed mongosh statement shapes (not JavaScript).
    Mongosh {
        uri: String,
        #[arg(long)]
        quiet: bool,
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
}

/// The subset of mongod.conf the stand-in reads.
#[derive(Deserialize, Default)]
struct ConfFile {
    #[serde(default)]
    net: Net,
    #[serde(default)]
    storage: Storage,
    #[serde(default)]
    security: Security,
}
#[derive(Deserialize, Default)]
struct Net {
    port: Option<u16>,
    #[serde(rename = "bindIp")]
    bind_ip: Option<String>,
}
#[derive(Deserialize, Default)]
struct Storage {
    #[serde(rename = "dbPath")]
    db_path: Option<PathBuf>,
}
#[derive(Deserialize, Default)]
struct Security {
    authorization: Option<String>,
}

extern "C" fn on_sigterm(_: libc::c_int) {
    // Every acknowledged write is already on disk (written, fsynced, renamed), so leaving at
    // once is clean; _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Mongod {
            config,
            port,
            bind_ip,
            dbpath,
            auth,
        } => {
            let conf: ConfFile = match &config {
                Some(p) => serde_yaml_ng::from_str(
                    &std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )
                .with_context(|| format!("parsing {}", p.display()))?,
                None => ConfFile::default(),
            };
            let mut cfg = Config::default();
            if let Some(p) = port.or(conf.net.port) {
                cfg.port = p;
            }
            if let Some(b) = bind_ip.or(conf.net.bind_ip) {
                cfg.bind_ips = b
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            cfg.db_path = dbpath.or(conf.storage.db_path);
            cfg.auth = auth || conf.security.authorization.as_deref() == Some("enabled");
            unsafe {
                libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
            }
            let server = Server::bind(&cfg)?;
            let addrs: Vec<String> = server
                .listeners
                .iter()
                .filter_map(|l| l.local_addr().ok())
                .map(|a| a.to_string())
                .collect();
            println!(
                "mongo-standin (a MongoDB stand-in for tests) listening on {} auth={}",
                addrs.join(","),
                cfg.auth
            );
            server.run();
            Ok(())
        }
        Cmd::Mongodump {
            uri,
            config,
            archive,
            gzip,
            db,
            quiet: _,
        } => tools::mongodump(
            &tools::tool_uri(uri.as_deref(), config.as_deref())?,
            &archive,
            gzip,
            db.as_deref(),
        ),
        Cmd::Mongorestore {
            uri,
            config,
            archive,
            gzip,
            drop,
            ns_include,
            ns_from,
            ns_to,
            quiet: _,
        } => tools::mongorestore(
            &tools::tool_uri(uri.as_deref(), config.as_deref())?,
            &archive,
            gzip,
            drop,
            &ns_include,
            ns_from.as_deref(),
            ns_to.as_deref(),
        ),
        Cmd::Mongosh { uri, quiet, file } => tools::mongosh(&uri, &file, quiet),
    }
}
