//! What each subcommand does: reads its inputs, builds the operation's plan, runs it on the
//! engine with the chosen renderers, and returns a result for `run` to print.

mod connect;
mod doctor;
mod profiles;

use std::io::IsTerminal;

use serde_json::{json, Value};

use crate::answers::load_answers;
use crate::cli::{Cli, Command, Global};
use crate::error::{LaunchError, Result};
use crate::instance::{check_instance_name, InstanceStore};
use crate::report::{Outcome, Output};

/// The output settings the global flags ask for.
pub fn output_for(g: &Global) -> Output {
    Output::new(g.json, g.no_color, g.verbose)
}

pub fn dispatch(cli: Cli, out: &Output) -> Result<Outcome> {
    let g = &cli.global;
    let Some(command) = cli.command else {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            return crate::tui::run(g, &crate::cli::TuiArgs::default());
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
                confirmed: g.yes,
            };
            crate::install::run(g, &req, out)
        }
        Command::Tui(a) => crate::tui::run(g, &a),
        Command::List => list(g),
        Command::Doctor => doctor::run(g),
        Command::Status(a) => crate::status::run(g, &a, out),
        Command::Update(a) => crate::update::run(g, &a, out),
        Command::Rollback(a) => crate::update::rollback(g, &a, out),
        Command::Reconfigure(a) => crate::reconfigure::run(g, &a, out),
        Command::Backup(a) => crate::backup::backup(g, &a, out),
        Command::Backups(a) => crate::backup::backups(g, &a, out),
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
            crate::backup::restore(g, &a, out)
        }
        Command::Uninstall(a) => {
            let req = crate::uninstall::UninstallRequest {
                name: a.name,
                keep_data: a.keep_data,
                confirmed: g.yes,
            };
            // The typed confirmation is asked on the terminal when there is one.
            let mut terminal = crate::prompt::TerminalPrompter;
            let ask: Option<&mut dyn crate::prompt::Prompter> = std::io::stdin()
                .is_terminal()
                .then_some(&mut terminal as &mut dyn crate::prompt::Prompter);
            crate::uninstall::run(g, &req, ask, out)
        }
        Command::Profiles(p) => profiles::run(g, p, out),
        Command::Connect(a) => connect::run(g, &a),
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

fn list(g: &Global) -> Result<Outcome> {
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
