//! Launch: installs and manages self-hosted apps in unprivileged Debian LXCs on Proxmox VE.
//! `run` is the whole program; `main` only turns its result into an exit code, so tests can
//! call it in-process as well as through the binary.

pub mod acme;
pub mod answers;
pub mod apt_source;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod ct;
pub mod database;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod escape;
pub mod fsutil;
pub mod health;
pub mod install;
pub mod instance;
pub mod oplock;
pub mod profile;
pub mod prompt;
pub mod pve;
pub mod reconfigure;
pub mod release;
pub mod render;
pub mod report;
pub mod selfupdate;
pub mod service;
pub mod site;
pub mod status;
pub mod tui;
pub mod uninstall;
pub mod update;

use std::ffi::OsString;

use clap::Parser;

use crate::error::{ExitCode, LaunchError};

/// Runs launch-tui with these arguments (the first is the program name) and returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::Ok as i32
                }
                _ => {
                    let _ = e.print();
                    ExitCode::BadInput as i32
                }
            };
        }
    };
    let out = commands::output_for(&cli.global);
    match commands::dispatch(cli, &out) {
        Ok(outcome) => {
            if out.json {
                let mut data = outcome.data;
                if let serde_json::Value::Object(m) = &mut data {
                    m.entry("result").or_insert_with(|| "ok".into());
                }
                println!("{data}");
            } else if !outcome.text.is_empty() {
                println!("{}", outcome.text);
            }
            match &outcome.failure {
                Some(e) => report(e, &out),
                None => ExitCode::Ok as i32,
            }
        }
        Err(e) => report(&e, &out),
    }
}

fn report(e: &LaunchError, out: &report::Output) -> i32 {
    let code = e.exit_code() as i32;
    if out.json {
        println!(
            "{}",
            serde_json::json!({ "result": "error", "exit_code": code, "error": e.to_string() })
        );
    }
    // A message may quote values from outside: no control character reaches the terminal
    // (each value is also escaped and shortened where it is quoted).
    let text = escape::terminal_safe(&e.to_string());
    if out.color {
        eprintln!("\x1b[1;31merror:\x1b[0m {text}");
    } else {
        eprintln!("error: {text}");
    }
    code
}
