//! `meili-standin`: a Meilisearch server stand-in for tests (not Meilisearch). See README.md.

use clap::Parser;
use meili_standin::{run, Cli, MEILI_VERSION};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        // The version it stands in for, as `meilisearch --version` prints it.
        println!("meilisearch {MEILI_VERSION}");
        return ExitCode::SUCCESS;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
