//! A small Vikunja stand-in for Launch's end-to-end tests: same release zip, CLI verbs, config
//! keys and health/info endpoints as Vikunja, one build serving every fixture version.
//! This file only turns `cli::run`'s outcome into an exit code.

mod auth;
mod build_info;
mod cli;
mod config;
mod db;
mod doctor;
mod dump;
mod error;
mod migrations;
mod model;
mod package;
mod server;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
