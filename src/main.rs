fn main() {
    std::process::exit(launch::run(std::env::args_os()));
}
