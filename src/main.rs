fn main() {
    std::process::exit(launch::run());
}
