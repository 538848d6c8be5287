//! `pve-lab`: turns the library's `cli::run` result into the process exit code.

fn main() {
    std::process::exit(pve_lab::cli::run(std::env::args_os().collect()));
}
