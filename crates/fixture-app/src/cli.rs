//! The command line, shaped like Vikunja's cobra CLI (`web`, `version`, `migrate`, `dump`,
//! `restore`, `healthcheck`, `doctor`, `user create`) plus the fixture's own `package`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::build_info::BuildInfo;
use crate::config::{Config, Environment};
use crate::db::Database;
use crate::error::FixtureError;
use crate::{auth, doctor, dump, migrations, model, package, server};

#[derive(Parser)]
#[command(
    name = "vikunja",
    about = "Vikunja (fixture): a small stand-in for Vikunja used by Launch's end-to-end tests",
    disable_version_flag = true
)]
struct Cli {
    /// Read this config file instead of looking in rootpath, /etc/vikunja, ~/.config/vikunja, ./
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the web server (also what plain `vikunja` does)
    Web,
    /// Print the version
    Version,
    /// Run the pending database migrations
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Write a zip of the config, VIKUNJA_* variables, database tables and attachment files
    Dump {
        /// Folder for the dump (default: service.rootpath)
        #[arg(short = 'p', long = "path", value_name = "DIR")]
        path: Option<PathBuf>,
        /// File name (default: vikunja-dump_YYYY-MM-DD_HH-MM-SS.zip)
        #[arg(short = 'f', long = "filename", value_name = "NAME")]
        filename: Option<String>,
    },
    /// Wipe the database and files, then load a dump made by this same version
    Restore {
        /// Keep the current config instead of writing the dump's one into the working directory
        #[arg(long)]
        preserve_config: bool,
        /// The dump zip
        file: PathBuf,
    },
    /// Ping the database: exit 0 when healthy, 1 otherwise
    Healthcheck,
    /// Check the system, config, database and files; exit 1 if anything fails
    Doctor,
    /// Manage users
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Fixture only: write vikunja-<VERSION>-linux-<arch>-full.zip with this binary as that version
    Package {
        /// The version the packaged binary reports, e.g. v2.0.0
        #[arg(long, value_name = "VERSION")]
        version: String,
        /// Package a build that starts but whose /health answers 500
        #[arg(long)]
        broken: bool,
        /// Output folder
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// List the migrations this binary knows and whether they are applied
    List,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user
    Create {
        #[arg(short = 'u', long)]
        username: String,
        #[arg(short = 'e', long)]
        email: String,
        /// Read from stdin when left out
        #[arg(short = 'p', long)]
        password: Option<String>,
        /// Accepted for compatibility and ignored
        #[arg(short = 'a', long = "avatar-provider")]
        avatar_provider: Option<String>,
    },
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return Ok(if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    let info = BuildInfo::of_running_binary()?;
    let env = Environment::of_process()?;
    let explicit = cli.config.as_deref();
    // Vikunja's InitConfig stops every command that needs the config when publicurl is empty.
    let load = || -> anyhow::Result<Config> {
        let config = Config::load(explicit, &env)?;
        config.require_public_url()?;
        Ok(config)
    };

    match cli.command.unwrap_or(Command::Web) {
        Command::Web => server::run(info, load()?),
        Command::Version => {
            println!("Vikunja api version {}", info.version);
            println!(
                "Built with rustc: fixture-app {}, a stand-in for Vikunja",
                env!("CARGO_PKG_VERSION")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { action: None } => {
            let config = load()?;
            let mut db = Database::connect(&config.database)?;
            for id in migrations::migrate(&mut db, &info)? {
                println!("Ran migration {id}");
            }
            println!("Ran all migrations successfully.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate {
            action: Some(MigrateAction::List),
        } => {
            let config = load()?;
            let mut db = Database::connect(&config.database)?;
            let applied = migrations::applied(&mut db)?;
            for m in migrations::known(&info) {
                let state = if applied.iter().any(|a| a == m.id) {
                    "applied"
                } else {
                    "pending"
                };
                println!("{}  {state:8} {}", m.id, m.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dump { path, filename } => {
            let config = load()?;
            let out = dump::dump(&info, &config, &env, path.as_deref(), filename.as_deref())?;
            println!("Dump saved at {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore {
            preserve_config,
            file,
        } => {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            dump::restore(
                &info,
                explicit,
                &env,
                dump::RestoreOptions {
                    file: &file,
                    preserve_config,
                },
                &mut input,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck => match load().and_then(|c| doctor::healthcheck(&info, &c)) {
            Ok(()) => {
                println!("OK");
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                eprintln!("Health check failed: {err:#}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Doctor => Ok(if doctor::doctor(&info, explicit, &env) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::User {
            action:
                UserAction::Create {
                    username,
                    email,
                    password,
                    avatar_provider: _,
                },
        } => {
            let password = match password {
                Some(p) => p,
                None => read_password()?,
            };
            validate_user(&username, &email, &password)?;
            let config = load()?;
            let mut db = Database::connect(&config.database)?;
            migrations::migrate(&mut db, &info)?;
            let hash = auth::hash_password(&password)?;
            let user = model::create_user(&mut db, &username, &email, &hash)?;
            println!("\nUser was created successfully.");
            println!("id: {}, username: {}", user.id, user.username);
            Ok(ExitCode::SUCCESS)
        }
        Command::Package {
            version,
            broken,
            out,
        } => {
            let target = BuildInfo::new(&version, broken)?;
            let packaged = package::package(std::path::Path::new("/proc/self/exe"), &target, &out)?;
            println!("{}  {}", packaged.sha256, packaged.zip_path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    eprint!("Enter Password: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn validate_user(username: &str, email: &str, password: &str) -> Result<(), FixtureError> {
    if username.is_empty() || username.len() > 250 || username.contains(char::is_whitespace) {
        return Err(FixtureError::BadUserInput {
            field: "username",
            value: username.to_string(),
            problem: "it must be 1 to 250 characters without spaces".into(),
            help: "pick a username like `admin`".into(),
        });
    }
    let valid_email = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.contains(char::is_whitespace)
        && email.len() <= 250;
    if !valid_email {
        return Err(FixtureError::BadUserInput {
            field: "email",
            value: email.to_string(),
            problem: "it is not an email address".into(),
            help: "pass one like `admin@example.org`".into(),
        });
    }
    // Same bounds as Vikunja: at least 8 characters, and bcrypt reads no more than 72 bytes.
    if password.chars().count() < 8 || password.len() > 72 {
        return Err(FixtureError::BadUserInput {
            field: "password",
            value: "<hidden>".into(),
            problem: "it must be 8 to 72 bytes long".into(),
            help: "choose a longer (or shorter) password".into(),
        });
    }
    Ok(())
}
