//! The command line, as clap types. Parsing only: `commands` decides what each one does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "launch-tui",
    version,
    about = "Install and manage self-hosted apps in unprivileged Debian LXCs on Proxmox VE",
    long_about = "Install and manage self-hosted apps in unprivileged Debian LXCs on Proxmox VE.\n\n\
        Run without arguments on a terminal for the dashboard (the TUI).\n\n\
        Exit codes: 0 ok, 1 operation failed, 2 bad input or usage, 3 another operation holds \
        the lock, 4 unhealthy (status)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// HTTPS to the Proxmox VE API (token or ticket auth)
    Https,
    /// The local `pvesh` command (root on the Proxmox VE host; no configuration needed)
    Pvesh,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print one JSON event per line, then a result object
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail (repeat for even more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Answer yes to confirmations
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// No colors (also when NO_COLOR is set)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Proxmox VE API address, e.g. https://pve.example:8006 (implies --transport https)
    #[arg(long, env = "LAUNCH_HOST", global = true, value_name = "URL")]
    pub host: Option<String>,
    /// How to reach Proxmox VE [default: pvesh on a PVE host, https when --host is given]
    #[arg(long, value_enum, global = true)]
    pub transport: Option<TransportKind>,
    /// The node to create containers on [default: the only node, or the local one]
    #[arg(long, env = "LAUNCH_NODE", global = true)]
    pub node: Option<String>,
    /// A file holding the API token `USER@REALM!TOKENID=SECRET` (mode 0600); or set LAUNCH_PVE_TOKEN
    #[arg(long, env = "LAUNCH_TOKEN_FILE", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Pin the node's certificate by its SHA-256 fingerprint (AB:CD:...)
    #[arg(long, env = "LAUNCH_FINGERPRINT", global = true, value_name = "SHA256")]
    pub fingerprint: Option<String>,
    /// Trust this CA certificate (e.g. the cluster's /etc/pve/pve-root-ca.pem)
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the node's certificate (warned about on every run)
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Launch's configuration directory (instances, profiles overrides, defaults)
    #[arg(
        long,
        env = "LAUNCH_CONFIG",
        default_value = "/etc/launch",
        global = true,
        value_name = "DIR"
    )]
    pub config: PathBuf,
}

impl Global {
    /// What an operation needs of these flags: the configuration directory and the connection.
    pub fn site(&self) -> crate::site::Site {
        crate::site::Site {
            config: self.config.clone(),
            host: self.host.clone(),
            transport: self.transport.map(|t| match t {
                TransportKind::Https => crate::site::Transport::Https,
                TransportKind::Pvesh => crate::site::Transport::Pvesh,
            }),
            node: self.node.clone(),
            token_file: self.token_file.clone(),
            fingerprint: self.fingerprint.clone(),
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The dashboard: every instance, its health, and its operations (also: no arguments on a terminal)
    Tui(TuiArgs),
    /// Install an app into a new container (wizard, or unattended with --answers)
    Install(InstallArgs),
    /// List installed instances
    List,
    /// Check the connection to Proxmox VE and what an install needs (changes nothing)
    Doctor,
    /// Health of an instance's container, units, database and endpoints, with fixes
    Status(StatusArgs),
    /// Move an instance to a newer version (blue-green, health-gated, automatic rollback)
    Update(UpdateArgs),
    /// Go back to the previous release
    Rollback(RollbackArgs),
    /// Change settings of a running instance
    Reconfigure(ReconfigureArgs),
    /// Take a verified backup archive
    Backup(BackupArgs),
    /// List an instance's backups, or verify one
    Backups(BackupsArgs),
    /// Restore a backup archive into the instance, or into a new one
    Restore(RestoreArgs),
    /// Remove an instance and its container
    Uninstall(UninstallArgs),
    /// Show and check app profiles
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Save how to reach a Proxmox VE node (address, pinned certificate, token file) for every
    /// later command: `connect --host https://NODE:8006 --token-file FILE [--fingerprint FP]`
    Connect(ConnectArgs),
    /// Replace launch-tui with the newest signed release (checked like install.sh), or go back
    SelfUpdate(SelfUpdateArgs),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct TuiArgs {
    /// Only look: hide every action that changes something
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The app: a profile's name (see `launch-tui profiles list`) or its directory (`./myapp/`)
    pub profile: Option<String>,
    /// Take every setting from this YAML file (unattended)
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// The instance's name [default: the profile's name, then NAME-2, ...]
    #[arg(long)]
    pub name: Option<String>,
    /// Install even below the profile's minimum resources
    #[arg(long)]
    pub force: bool,
    /// On failure keep the container for debugging instead of removing it
    #[arg(long)]
    pub keep_on_failure: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    pub name: Option<String>,
    /// Every instance
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    /// Also write Prometheus textfile metrics here
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// When unhealthy, send the report as configured in CONFIG/notify.yaml (a webhook, or a
    /// GitHub issue through `gh`); every run is also logged to /var/log/launch/health.log
    #[arg(long)]
    pub notify: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub name: String,
    /// A specific version instead of the newest allowed
    #[arg(long)]
    pub version: Option<String>,
    /// Only report what would be done
    #[arg(long)]
    pub check: bool,
    /// Release channel
    #[arg(long, value_enum, default_value = "stable")]
    pub channel: ChannelArg,
    /// Wait this long for another operation on the instance to finish
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait: u64,
    /// Seconds to watch the new version's health after the switch [default: the profile's, 30]
    #[arg(long, value_name = "SECS")]
    pub watch: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChannelArg {
    Stable,
    Unstable,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub name: String,
    /// Roll the whole container back to the pre-update Proxmox snapshot
    #[arg(long)]
    pub snapshot: bool,
    /// Wait this long for another operation on the instance to finish
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait: u64,
    /// Seconds to watch the previous version's health after the switch [default: the profile's]
    #[arg(long, value_name = "SECS")]
    pub watch: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ReconfigureArgs {
    pub name: String,
    /// Change one setting (repeatable), e.g. --set public_url=https://tasks.example.com
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    Zstd,
    Gzip,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    pub name: String,
    /// Directory for the archive [default: /var/lib/launch/backups/NAME]
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "zstd")]
    pub compress: Compression,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    pub name: String,
    /// Re-check one archive
    #[arg(long, value_name = "ARCHIVE")]
    pub verify: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    pub name: String,
    pub archive: PathBuf,
    /// Restore into a new instance (a new container) with this name
    #[arg(long, value_name = "NAME2")]
    pub to_new: Option<String>,
    /// Safety backups (taken before each restore) to keep; older ones are removed
    #[arg(
        long,
        value_name = "N",
        env = "LAUNCH_KEEP_SAFETY_BACKUPS",
        default_value_t = 3
    )]
    pub keep_safety_backups: usize,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Remove the saved connection instead
    #[arg(long)]
    pub forget: bool,
}

#[derive(Debug, Args)]
pub struct SelfUpdateArgs {
    /// Only tell whether a newer release exists
    #[arg(long)]
    pub check: bool,
    /// Install this release (also an older one: naming it allows the downgrade)
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Go back to the binary the last install or self-update replaced
    #[arg(long, conflicts_with_all = ["check", "version"])]
    pub rollback: bool,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    pub name: String,
    /// Take a final backup first and keep it
    #[arg(long)]
    pub keep_data: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// The available profiles
    List,
    /// One profile's versions, questions and components
    Show { name: String },
    /// Check a profile (a name, a profile's directory or its profile.yaml) before any container
    /// exists: schema, templates rendered with sample answers, nginx -t, systemd-analyze verify;
    /// every problem with its file and line
    Lint { profile: String },
    /// Write a format 1 profile as a format 2 profile directory
    Migrate {
        /// The format 1 profile file
        file: PathBuf,
        /// The directory to write (profile.yaml and the templates it names)
        #[arg(long)]
        to: PathBuf,
    },
}
