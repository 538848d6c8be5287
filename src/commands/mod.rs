//! What each subcommand does: reads its inputs, builds the operation's plan, runs it on the
//! engine with the chosen renderers, and returns a result for `run` to print.

mod connect;
mod doctor;
mod profiles;

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::{json, Value};

use crate::answers::load_answers;
use crate::cli::{ChannelArg, Cli, Command, Global};
use crate::error::{LaunchError, Result};
use crate::instance::{check_instance_name, InstanceStore};
use crate::profile::Channel;
use crate::prompt::{Prompter, TerminalPrompter};
use crate::report::{Outcome, Output};
use crate::site::Site;

/// The output settings the global flags ask for.
pub fn output_for(g: &Global) -> Output {
    Output::new(g.json, g.no_color, g.verbose)
}

pub fn dispatch(cli: Cli, out: &Output) -> Result<Outcome> {
    let global = &cli.global;
    let site = global.site();
    let g = &site;
    let Some(command) = cli.command else {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            return crate::tui::run(g, &crate::cli::TuiArgs::default(), out);
        }
        return Err(LaunchError::Usage(
            "no command given and no terminal to run the dashboard on\n  help: run `launch-tui --help` to see the commands, or `launch-tui install PROFILE --answers FILE --yes` for an unattended install".into(),
        ));
    };
    match command {
        Command::Install(a) => {
            let catalog = crate::profile::Catalog::new(&g.config);
            if let Some(p) = &a.profile {
                let loaded = catalog.load_arg(p)?;
                if p.contains('/') {
                    catalog.check_adoptable(&loaded)?;
                }
            }
            if let Some(n) = &a.name {
                check_instance_name(n)?;
            }
            let answers = match &a.answers {
                Some(f) => Some(load_answers(f)?),
                None => None,
            };
            let req = crate::install::InstallRequest {
                profile: a.profile,
                answers,
                name: a.name,
                force: a.force,
                keep_on_failure: a.keep_on_failure,
                confirmed: global.yes,
            };
            // The wizard (no --answers) asks on the terminal, when there is one.
            let mut terminal = TerminalPrompter;
            crate::install::run(g, &req, terminal_prompter(&mut terminal, true), out)
        }
        Command::Tui(a) => crate::tui::run(g, &a, out),
        Command::List => list(g),
        Command::Doctor => doctor::run(g),
        Command::Status(a) => {
            let req = crate::status::StatusRequest {
                name: a.name,
                all: a.all,
                prometheus: a.prometheus,
                notify: a.notify,
            };
            crate::status::run(g, &req, out)
        }
        Command::Update(a) => {
            let req = crate::update::UpdateRequest {
                name: a.name,
                version: a.version,
                check: a.check,
                channel: match a.channel {
                    ChannelArg::Stable => Channel::Stable,
                    ChannelArg::Unstable => Channel::Unstable,
                },
                wait: Duration::from_secs(a.wait),
                watch: a.watch.map(Duration::from_secs),
            };
            crate::update::run(g, &req, out)
        }
        Command::Rollback(a) => {
            let req = crate::update::RollbackRequest {
                name: a.name,
                snapshot: a.snapshot,
                wait: Duration::from_secs(a.wait),
                watch: a.watch.map(Duration::from_secs),
                confirmed: global.yes,
            };
            let mut terminal = TerminalPrompter;
            crate::update::rollback(g, &req, terminal_prompter(&mut terminal, false), out)
        }
        Command::Reconfigure(a) => {
            let req = crate::reconfigure::ReconfigureRequest {
                name: a.name,
                sets: crate::reconfigure::parse_sets(&a.set)?,
            };
            // With nothing to --set, the settings are shown, and on a terminal one is asked for.
            let mut terminal = TerminalPrompter;
            crate::reconfigure::run(g, &req, terminal_prompter(&mut terminal, true), out)
        }
        Command::Backup(a) => {
            let req = crate::backup::BackupRequest {
                name: a.name,
                to: a.to,
                compression: match a.compress {
                    crate::cli::Compression::Zstd => crate::backup::Compression::Zstd,
                    crate::cli::Compression::Gzip => crate::backup::Compression::Gzip,
                },
            };
            crate::backup::backup(g, &req, out)
        }
        Command::Backups(a) => {
            let req = crate::backup::BackupsRequest {
                name: a.name,
                verify: a.verify,
            };
            crate::backup::backups(g, &req, out)
        }
        Command::Restore(a) => {
            if !a.archive.exists() {
                return Err(LaunchError::bad_input(
                    a.archive.display().to_string(),
                    "no such archive",
                    format!("list the backups with `launch-tui backups {}`", a.name),
                ));
            }
            if let Some(n) = &a.to_new {
                check_instance_name(n)?;
            }
            let req = crate::backup::RestoreRequest {
                name: a.name,
                archive: a.archive,
                to_new: a.to_new,
                keep_safety_backups: a.keep_safety_backups,
            };
            crate::backup::restore(g, &req, out)
        }
        Command::Uninstall(a) => {
            let req = crate::uninstall::UninstallRequest {
                name: a.name,
                keep_data: a.keep_data,
                confirmed: global.yes,
            };
            let mut terminal = TerminalPrompter;
            crate::uninstall::run(g, &req, terminal_prompter(&mut terminal, false), out)
        }
        Command::Profiles(p) => profiles::run(g, p, out),
        Command::Connect(a) => connect::run(global, &a),
        Command::SelfUpdate(a) => {
            let report = crate::selfupdate::run(&crate::selfupdate::Request {
                check: a.check,
                version: a.version,
                rollback: a.rollback,
            })?;
            let data = serde_json::to_value(&report)
                .map_err(|e| LaunchError::Failed(anyhow::anyhow!("{e}")))?;
            Ok(Outcome::new(report.text(), data))
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "launch-tui", &mut buf);
            Ok(Outcome::new(
                String::from_utf8_lossy(&buf).trim_end().to_string(),
                json!({ "shell": shell.to_string() }),
            ))
        }
    }
}

/// Confirmations are asked on the terminal when there is one; without one, nobody can be
/// asked, and an operation that needs a yes refuses (`--yes` gives it). Commands whose
/// questions are a whole form (install's wizard, reconfigure) ask only when stdout is a
/// terminal too, so a script that captures their output never waits on a prompt.
fn terminal_prompter(terminal: &mut TerminalPrompter, form: bool) -> Option<&mut dyn Prompter> {
    (std::io::stdin().is_terminal() && (!form || std::io::stdout().is_terminal()))
        .then_some(terminal as &mut dyn Prompter)
}

fn list(g: &Site) -> Result<Outcome> {
    let store = InstanceStore::new(&g.config);
    let instances = store.list()?;
    if instances.is_empty() {
        return Ok(Outcome::new(
            "No instances yet. Install one with `launch-tui install APP` (`launch-tui profiles list` lists the apps).",
            json!({ "instances": [] }),
        ));
    }
    let mut text = format!(
        "{:<16} {:<10} {:<10} {:>6}  {}\n",
        "NAME", "PROFILE", "VERSION", "CT", "ADDRESS"
    );
    for i in &instances {
        text.push_str(&format!(
            "{:<16} {:<10} {:<10} {:>6}  {}\n",
            i.name,
            i.profile,
            i.app_version,
            i.container.vmid,
            i.container.ip.as_deref().unwrap_or("-")
        ));
    }
    let data: Vec<Value> = instances
        .iter()
        .map(|i| {
            json!({
                "name": i.name, "profile": i.profile, "version": i.app_version,
                "vmid": i.container.vmid, "node": i.container.node, "ip": i.container.ip,
            })
        })
        .collect();
    Ok(Outcome::new(
        text.trim_end().to_string(),
        json!({ "instances": data }),
    ))
}
