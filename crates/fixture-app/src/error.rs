//! The errors a person running the fixture can meet, each naming the value at fault and the fix.
//! Messages follow Vikunja's wording where Launch or an admin would recognise it (the publicurl one).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    // Same first line as Vikunja's `log.Fatalf`, so log scrapers written for the real app match.
    #[error(
        "service.publicurl is required when cors.enable is true\n  \
         help: set `service.publicurl` in config.yml (e.g. `publicurl: \"https://tasks.example.org/\"`) \
         or export VIKUNJA_SERVICE_PUBLICURL"
    )]
    PublicUrlMissing,

    #[error(
        "service.publicurl `{value}` is not usable: {problem}\n  \
         help: use an absolute http(s) URL such as `https://tasks.example.org/`"
    )]
    PublicUrlInvalid { value: String, problem: String },

    #[error("could not read the config file {path}: {source}\n  help: check that it exists and that this user may read it")]
    ConfigUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the config file {path} is not valid YAML: {message}\n  help: fix the YAML at the position shown")]
    ConfigInvalid { path: PathBuf, message: String },

    #[error("config key `{key}` has the value `{value}`: {problem}\n  help: {help}")]
    BadValue {
        key: &'static str,
        value: String,
        problem: String,
        help: String,
    },

    #[error(
        "could not connect to the {kind} database {target}: {message}\n  \
         help: check database.host/user/password/database (or VIKUNJA_DATABASE_*) and that the server runs"
    )]
    DatabaseConnect {
        kind: &'static str,
        target: String,
        message: String,
    },

    #[error(
        "could not open the sqlite database {path}: {message}\n  \
         help: check database.path and that its folder exists and is writable by this user"
    )]
    SqliteOpen { path: PathBuf, message: String },

    #[error(
        "the database schema is newer than this binary: migration `{migration}` was applied by a newer \
         Vikunja and this binary is {version}\n  \
         help: run the newer version again, or restore the dump taken before the update \
         (`vikunja restore`) and start {version} on that"
    )]
    SchemaNewer { migration: String, version: String },

    #[error(
        "the dump was made by Vikunja {dump} but this binary is {running}\n  \
         help: restore it with the {dump} binary; a dump only restores into the version that made it"
    )]
    DumpVersionMismatch { dump: String, running: String },

    #[error(
        "{path} is not a Vikunja dump: {problem}\n  help: pass a zip written by `vikunja dump`"
    )]
    BadDump { path: PathBuf, problem: String },

    #[error(
        "restore aborted: the confirmation `Yes, I understand` was not given\n  \
         help: type it exactly and press enter, or pipe it: printf 'Yes, I understand\\n' | vikunja restore FILE"
    )]
    RestoreNotConfirmed,

    #[error(
        "`{value}` is not a fixture version\n  help: use the form vMAJOR.MINOR.PATCH, e.g. v2.0.0"
    )]
    BadVersion { value: String },

    #[error("a user named `{username}` already exists\n  help: pick another username")]
    UserExists { username: String },

    #[error("{field} `{value}` is not accepted: {problem}\n  help: {help}")]
    BadUserInput {
        field: &'static str,
        value: String,
        problem: String,
        help: String,
    },

    #[error(
        "could not listen on {addr}: {source}\n  \
         help: pick a free address with service.interface (or VIKUNJA_SERVICE_INTERFACE), e.g. `127.0.0.1:3457`"
    )]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}
