fn main() -> std::process::ExitCode {
    kmsim::cli::main()
}
